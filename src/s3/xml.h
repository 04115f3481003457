/* xml.h - the S3 request bodies we parse (expat) and a small XML writer for
 * responses.
 *
 * Parsers take the whole body (the caller buffers it, bounded by the
 * document cap checked first) and return a struct that owns its strings;
 * release it with the matching _free. Any document that is not well-formed
 * XML, has a DOCTYPE, the wrong root element, a missing required element,
 * or goes over a cap (size, depth, item count, text length) is rejected:
 * -SILT_EINVAL, or -SILT_ETOOBIG for the size cap, and the S3 error is
 * MalformedXML either way. Namespaces are accepted and ignored: elements
 * match on their local name. Unknown elements are skipped.
 *
 * The writer appends to a wbuf (whose hard max bounds the response) and
 * escapes text and attribute values.
 *
 * Threads: pure functions, any thread. */
#ifndef SILT_S3_XML_H
#define SILT_S3_XML_H

#include "core/platform.h"
#include "core/wbuf.h"

#define S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"

struct s3_xml_limits {
	size_t max_doc;   /* bytes; 0 = per-document default */
	size_t max_items; /* Parts / Objects; 0 = S3's limit (10000 / 1000) */
	int max_depth;    /* 0 = 16 */
	size_t max_text;  /* bytes of one element's text; 0 = 4096 */
};

/* ---- CompleteMultipartUpload ---- */

struct s3_complete_part {
	int32_t part_number;
	char *etag; /* surrounding quotes removed */
	char *checksum_crc32, *checksum_crc32c, *checksum_crc64nvme;
	char *checksum_sha1, *checksum_sha256; /* NULL when absent */
};

struct s3_complete_mpu {
	struct s3_complete_part *parts; /* in document order */
	size_t nparts;
};

/* Default cap 4 MiB. Each Part needs PartNumber (1..2^31-1) and ETag;
 * at least one Part. Order and range against the upload are the caller's. */
int s3_xml_parse_complete_mpu(const void *doc, size_t len, const struct s3_xml_limits *lim,
			      struct s3_complete_mpu *out, const char **why);
void s3_complete_mpu_free(struct s3_complete_mpu *m);

/* ---- Delete (DeleteObjects) ---- */

struct s3_delete_obj {
	char *key; /* UTF-8 as decoded by the parser; may be empty */
	size_t key_len;
	char *version_id; /* NULL when absent */
};

struct s3_delete_req {
	bool quiet;
	struct s3_delete_obj *objs;
	size_t nobjs;
};

/* Default cap 2 MiB and 1000 objects; at least one Object, each with Key. */
int s3_xml_parse_delete(const void *doc, size_t len, const struct s3_xml_limits *lim,
			struct s3_delete_req *out, const char **why);
void s3_delete_req_free(struct s3_delete_req *d);

/* ---- VersioningConfiguration ---- */

enum s3_versioning_status { S3_VERSIONING_UNSET = 0, S3_VERSIONING_ENABLED, S3_VERSIONING_SUSPENDED };
enum s3_mfa_delete { S3_MFA_DELETE_UNSET = 0, S3_MFA_DELETE_ENABLED, S3_MFA_DELETE_DISABLED };

struct s3_versioning_cfg {
	enum s3_versioning_status status;
	enum s3_mfa_delete mfa_delete;
};

/* Default cap 64 KiB. Values outside the enums are MalformedXML. */
int s3_xml_parse_versioning(const void *doc, size_t len, const struct s3_xml_limits *lim,
			    struct s3_versioning_cfg *out, const char **why);

/* ---- CreateBucketConfiguration ---- */

struct s3_create_bucket_cfg {
	char *location_constraint; /* NULL when absent; may be "" */
};

/* Default cap 64 KiB. (An empty body means no configuration: the caller
 * does not call this.) */
int s3_xml_parse_create_bucket(const void *doc, size_t len, const struct s3_xml_limits *lim,
			       struct s3_create_bucket_cfg *out, const char **why);
void s3_create_bucket_cfg_free(struct s3_create_bucket_cfg *c);

/* ---- writer ---- */

struct s3_xw {
	struct wbuf *b;
	int depth;
};

void s3_xw_init(struct s3_xw *w, struct wbuf *b);
/* <?xml version="1.0" encoding="UTF-8"?>\n */
void s3_xw_decl(struct s3_xw *w);
/* <name> / <name xmlns="ns"> (ns NULL = none) */
void s3_xw_open(struct s3_xw *w, const char *name);
void s3_xw_open_ns(struct s3_xw *w, const char *name, const char *ns);
void s3_xw_close(struct s3_xw *w, const char *name);
/* Escaped text: & < > " ' as entities, CR LF TAB and other C0 controls as
 * numeric references (keys with controls are why S3 offers encoding-type=url). */
void s3_xw_text(struct s3_xw *w, const char *s, size_t n);
/* <name>text</name> */
void s3_xw_elem(struct s3_xw *w, const char *name, const char *text);
void s3_xw_elem_n(struct s3_xw *w, const char *name, const char *text, size_t n);
void s3_xw_elem_i64(struct s3_xw *w, const char *name, int64_t v);
void s3_xw_elem_bool(struct s3_xw *w, const char *name, bool v);
/* Whether everything fit under the wbuf's hard max. */
static inline bool s3_xw_ok(const struct s3_xw *w)
{
	return !w->b->err;
}

#endif
