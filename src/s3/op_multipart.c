/* op_multipart.c - multipart uploads: CreateMultipartUpload, UploadPart,
 * UploadPartCopy, CompleteMultipartUpload, AbortMultipartUpload, ListParts.
 *
 * The metadata service keeps the upload and its parts (each part a data
 * locator, its size, MD5 and optional checksum) and builds the final
 * object's multipart locator at completion; this file moves the bytes and
 * speaks S3.
 *
 * UploadPart streams the body straight into a data-node put on the loop's
 * stream (memory: one data-node chunk plus the HTTP read buffer), the body
 * pipeline hashing MD5 and the client's x-amz-checksum on the way; the part
 * is recorded only after the body was complete and every digest matched.
 * UploadPartCopy reads the source range through the router and writes it
 * into a new part with the copy pump (s3/copy.h: S3COPY_STEP bytes per
 * loop turn, so a 5 GiB copy does not stall the loop's other connections).
 *
 * Data made unreachable (a replaced part, parts left out of a completed
 * upload, an aborted upload's parts) comes back from the metadata service
 * in a `freed` list and is freed here after the metadata change committed;
 * a put whose metadata update failed frees its own fresh data.
 *
 * Every metadata write here -- CreateMultipartUpload, UploadPart(Copy),
 * CompleteMultipartUpload, AbortMultipartUpload -- goes through the group
 * committer (s3/commit.h), which answers through *_committed.
 *
 * Threads: everything on the request's loop thread, but the metadata calls
 * of the jobs handed to the committer. */
#include "core/platform.h"
#include "core/log.h"
#include "core/util.h"
#include "s3/commit.h"
#include "s3/copy.h"
#include "s3/route.h"
#include "s3/service.h"

#include <ctype.h>

#define PART_MAX_SIZE (5ll << 30)        /* S3's part size limit */
#define COMPLETE_BODY_MAX (4u << 20)

/* ---- small helpers ------------------------------------------------------- */

/* Strict decimal in [lo, hi]; false otherwise. */
static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	if (!s || !*s)
		return false;
	int64_t n = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		n = n * 10 + (*p - '0');
		if (n > hi)
			return false;
	}
	if (n < lo)
		return false;
	*out = n;
	return true;
}

static bool part_number(struct s3req *r, int *pn)
{
	int64_t v;
	if (!parse_int(s3_query(r, "partNumber", NULL), 1, S3META_PART_MAX, &v)) {
		s3_error(r, 400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
		return false;
	}
	*pn = (int)v;
	return true;
}

static const char *upload_id(struct s3req *r)
{
	const char *u = s3_query(r, "uploadId", NULL);
	return u ? u : "";
}

static void owner_elem(struct s3req *r, struct s3_xw *w, const char *tag, const char *owner)
{
	char name[S3META_DISPLAY_MAX + 1] = "";
	owner = owner ? owner : "";
	if (s3meta_user_display_name(r->svc->meta, owner, name) != 0)
		name[0] = '\0';
	s3_xw_open(w, tag);
	s3_xw_elem(w, "ID", owner);
	s3_xw_elem(w, "DisplayName", name[0] ? name : owner);
	s3_xw_close(w, tag);
}

/* "ChecksumCRC32" etc. for an algorithm name as the metadata stores it. */
static void cksum_elem(struct s3_xw *w, const char *algo, const char *value)
{
	if (!algo || !*algo || !value || !*value)
		return;
	char tag[40];
	snprintf(tag, sizeof(tag), "Checksum%s", algo);
	s3_xw_elem(w, tag, value);
}

/* The upload must exist (NoSuchUpload answered otherwise); copies its
 * checksum algorithm ("" if none) into algo. */
static bool upload_head(struct s3req *r, const char *uid, char *algo, size_t algosz)
{
	struct s3meta_parts ps;
	int rc = s3meta_mpu_list_parts(r->svc->meta, r->bucket, r->key, uid, 0, 0, &ps);
	if (rc != 0) {
		s3_error_meta(r, rc);
		s3meta_parts_destroy(&ps);
		return false;
	}
	snprintf(algo, algosz, "%s", ps.cksum_algo ? ps.cksum_algo : "");
	s3meta_parts_destroy(&ps);
	return true;
}

/* ---- CreateMultipartUpload ------------------------------------------------- */

/* The object attributes PutObject would store, from the request headers.
 * User metadata goes to um (the caller owns it). */
static bool attrs_from_headers(struct s3req *r, struct s3meta_put *p, struct wbuf *um)
{
	p->owner = r->user;
	p->content_type = s3_header(r, "Content-Type");
	p->cache_control = s3_header(r, "Cache-Control");
	p->content_disposition = s3_header(r, "Content-Disposition");
	p->content_encoding = s3_header(r, "Content-Encoding");
	p->content_language = s3_header(r, "Content-Language");
	p->expires = s3_header(r, "Expires");
	const struct http_head *h = &r->h->h;
	static const char pre[] = "x-amz-meta-";
	const size_t pl = sizeof(pre) - 1;
	for (int i = 0; i < h->nheaders; i++) {
		const struct http_view *n = &h->headers[i].name;
		if (n->len <= pl || strncasecmp(n->base, pre, pl) != 0)
			continue;
		char *name = http_req_strndup(r->h, n->base + pl, n->len - pl);
		for (char *c = name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		const char *val = http_req_strndup(r->h, h->headers[i].value.base, h->headers[i].value.len);
		s3meta_umeta_add(um, name, val);
	}
	if (um->err || um->len > S3META_USER_META_MAX) {
		s3_error(r, 400, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.");
		return false;
	}
	p->user_meta = um->p;
	p->user_meta_len = um->len;
	const char *ca = s3_header(r, "x-amz-checksum-algorithm");
	if (ca) {
		enum s3_cksum_alg a = s3_cksum_alg_from_name(ca, strlen(ca));
		if (a == S3_CKSUM_NONE || a == S3_CKSUM_MD5) {
			s3_error(r, 400, "InvalidRequest", "Checksum algorithm provided is unsupported.");
			return false;
		}
		p->cksum_algo = s3_cksum_alg_name(a);
	}
	return true;
}

/* The attributes and their user metadata, until the answer. */
struct create_op {
	struct wbuf um;
	struct s3commit_job job;
};

static void create_op_free(struct s3req *r)
{
	struct create_op *op = r->ops;
	if (!op)
		return;
	wbuf_destroy(&op->um);
	free(op);
	r->ops = NULL;
}

static void create_committed(struct s3req *r, struct s3commit_job *j)
{
	if (j->rc != 0) {
		s3_error_meta(r, j->rc);
		return;
	}
	log_debug("s3", "%s: upload %s created", r->resource, j->new_upload_id);
	if (j->put.cksum_algo)
		http_resp_header(r->h, "x-amz-checksum-algorithm", j->put.cksum_algo);
	struct wbuf b;
	struct s3_xw w;
	s3_xml_begin(r, &b, &w, "InitiateMultipartUploadResult");
	s3_xw_elem(&w, "Bucket", r->bucket);
	s3_xw_elem(&w, "Key", r->key);
	s3_xw_elem(&w, "UploadId", j->new_upload_id);
	s3_xw_close(&w, "InitiateMultipartUploadResult");
	s3_respond_xml(r, 200, &b);
}

void s3op_create_multipart_upload(struct s3req *r)
{
	if (!s3_bucket_check(r))
		return;
	struct create_op *op = xcalloc(1, sizeof(*op));
	r->ops = op;
	r->op_free = create_op_free;
	wbuf_init(&op->um, 0, S3META_USER_META_MAX + 1);
	struct s3commit_job *j = &op->job;
	if (!attrs_from_headers(r, &j->put, &op->um))
		return;
	j->kind = S3COMMIT_MPU_CREATE;
	j->bucket = r->bucket;
	j->key = r->key;
	s3_commit(r, j, create_committed);
}

/* ---- UploadPart ------------------------------------------------------------ */

struct part_op {
	int part;
	const char *upload_id;
	char algo[16];                   /* the upload's checksum algorithm, or "" */
	struct s3route_put *put;
	/* UploadPartCopy */
	struct s3copy cp;
	const char *src_version;         /* x-amz-copy-source-version-id, or NULL */
	/* The group commit: the part's MD5 (hex) and checksum for the answer. */
	struct s3commit_job job;
	char hex[33];
	char ck_b64[S3_CKSUM_B64_MAX];   /* the checksum kept with the part */
	enum s3_cksum_alg alg;           /* UploadPart: the body's checksum... */
	char resp_ck[64];                /* ...and its value, for the answer */
};

static void part_op_free(struct s3req *r)
{
	struct part_op *op = r->ops;
	if (!op)
		return;
	if (op->put)
		s3route_put_abort(op->put);
	s3copy_destroy(&op->cp);
	free(op);
	r->ops = NULL;
}

static struct part_op *part_op_new(struct s3req *r)
{
	struct part_op *op = xcalloc(1, sizeof(*op));
	r->ops = op;
	r->op_free = part_op_free;
	return op;
}

static int part_data(struct s3req *r, const uint8_t *p, size_t n)
{
	struct part_op *op = r->ops;
	int rc = s3route_put_write(op->put, p, n);
	if (rc != 0) {
		s3_error_internal(r, "data write", rc);
		return -1;
	}
	return 0;
}

/* Seals the put and hands it with the part record to the group committer,
 * which answers through `done`. */
static void part_commit(struct s3req *r, struct part_op *op, int64_t size, const uint8_t md5[16],
			const char *cksum_b64, void (*done)(struct s3req *, struct s3commit_job *))
{
	int rc = s3route_put_seal(op->put);
	if (rc != 0) {
		s3_error_internal(r, "data write", rc);
		return;
	}
	s3_hex_encode(md5, 16, op->hex);
	snprintf(op->ck_b64, sizeof(op->ck_b64), "%s", cksum_b64 ? cksum_b64 : "");
	struct s3commit_job *j = &op->job;
	j->kind = S3COMMIT_PART;
	j->bucket = r->bucket;
	j->key = r->key;
	j->upload_id = op->upload_id;
	j->data = op->put;
	op->put = NULL;
	j->part = (struct s3meta_part_put){
		.part_number = op->part,
		.size = size,
		.etag = op->hex,
		.cksum_value = cksum_b64 ? op->ck_b64 : NULL,
	};
	s3_commit(r, j, done);
}

/* The common part of the answer; false if the commit failed (answered). */
static void part_end_committed(struct s3req *r, struct s3commit_job *j)
{
	struct part_op *op = r->ops;
	/* A metadata failure: the upload went away meanwhile (completed,
	 * aborted); the new part's data was freed by the committer. */
	if (!s3_commit_ok(r, j))
		return;
	char etag[40];
	snprintf(etag, sizeof(etag), "\"%s\"", op->hex);
	http_resp_header(r->h, "ETag", etag);
	if (op->alg != S3_CKSUM_NONE && s3_cksum_alg_header(op->alg))
		http_resp_header(r->h, s3_cksum_alg_header(op->alg), op->resp_ck);
	s3_respond_empty(r, 200);
}

static void part_end(struct s3req *r, const struct s3body_digest *d)
{
	struct part_op *op = r->ops;
	/* A checksum is kept with the part only in the upload's algorithm
	 * (the composite checksum at completion is over those). */
	const char *ck = NULL;
	if (d->alg != S3_CKSUM_NONE && op->algo[0] && strcmp(op->algo, s3_cksum_alg_name(d->alg)) == 0)
		ck = d->cksum_b64;
	op->alg = d->alg;
	snprintf(op->resp_ck, sizeof(op->resp_ck), "%s", d->cksum_b64);
	part_commit(r, op, d->size, d->md5, ck, part_end_committed);
}

void s3op_upload_part(struct s3req *r)
{
	int pn;
	if (!part_number(r, &pn) || !s3_bucket_check(r))
		return;
	struct part_op *op = part_op_new(r);
	op->part = pn;
	op->upload_id = upload_id(r);
	if (!upload_head(r, op->upload_id, op->algo, sizeof(op->algo)))
		return;
	int rc = s3route_put_begin(r->svc->route, (unsigned)r->loop_idx, &op->put);
	if (rc != 0) {
		op->put = NULL;
		s3_error_internal(r, "data put", rc);
		return;
	}
	s3_body_stream(r, PART_MAX_SIZE, true, part_data, part_end);
}

/* ---- UploadPartCopy ---------------------------------------------------------- */

/* x-amz-copy-source-range "bytes=first-last" within size; false after
 * answering. Absent: the whole object. */
static bool copy_range(struct s3req *r, int64_t size, int64_t *off, int64_t *len)
{
	const char *v = s3_header(r, "x-amz-copy-source-range");
	*off = 0;
	*len = size;
	if (!v)
		return true;
	int64_t a, b;
	const char *dash = strncmp(v, "bytes=", 6) == 0 ? strchr(v + 6, '-') : NULL;
	char first[24];
	size_t fl = dash ? (size_t)(dash - (v + 6)) : 0;
	if (!dash || fl == 0 || fl >= sizeof(first)) {
		s3_error(r, 400, "InvalidArgument",
			 "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last "
			 "are the zero-based offsets of the first and last bytes to copy");
		return false;
	}
	memcpy(first, v + 6, fl);
	first[fl] = '\0';
	if (!parse_int(first, 0, INT64_MAX / 2, &a) || !parse_int(dash + 1, 0, INT64_MAX / 2, &b) || b < a) {
		s3_error(r, 400, "InvalidArgument",
			 "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last "
			 "are the zero-based offsets of the first and last bytes to copy");
		return false;
	}
	if (b >= size) {
		char msg[96];
		snprintf(msg, sizeof(msg), "Range specified is not valid for source object of size: %" PRId64, size);
		s3_error(r, 400, "InvalidArgument", msg);
		return false;
	}
	*off = a;
	*len = b - a + 1;
	return true;
}

static void copy_committed(struct s3req *r, struct s3commit_job *j)
{
	struct part_op *op = r->ops;
	if (!s3_commit_ok(r, j))
		return;
	if (op->src_version)
		http_resp_header(r->h, "x-amz-copy-source-version-id", op->src_version);
	char etag[40];
	snprintf(etag, sizeof(etag), "\"%s\"", op->hex);
	struct wbuf b;
	struct s3_xw w;
	s3_xml_begin(r, &b, &w, "CopyPartResult");
	char date[40];
	s3_iso_date(now_ms(), date);
	s3_xw_elem(&w, "LastModified", date);
	s3_xw_elem(&w, "ETag", etag);
	if (op->cp.have_ck)
		cksum_elem(&w, op->algo, op->ck_b64);
	s3_xw_close(&w, "CopyPartResult");
	s3_respond_xml(r, 200, &b);
}

/* The source is copied: the new part goes to the committer. */
static void copy_copied(struct s3req *r, struct s3copy *cp)
{
	struct part_op *op = r->ops;
	uint8_t md5[S3_CKSUM_MAX_DIGEST];
	char ck[S3_CKSUM_B64_MAX];
	s3copy_digests(cp, md5, ck);
	op->put = cp->put;
	cp->put = NULL;
	part_commit(r, op, cp->size, md5, cp->have_ck ? ck : NULL, copy_committed);
}

void s3op_upload_part_copy(struct s3req *r)
{
	int pn;
	if (!part_number(r, &pn) || !s3_bucket_check(r))
		return;
	struct part_op *op = part_op_new(r);
	op->part = pn;
	op->upload_id = upload_id(r);
	if (!upload_head(r, op->upload_id, op->algo, sizeof(op->algo)))
		return;
	/* Source parsing, ownership and x-amz-copy-source-if-* as CopyObject
	 * does them. */
	struct s3meta_bucket sb;
	struct s3meta_obj o;
	const char *src_key;
	if (!s3_copy_source(r, &sb, &o, &src_key))
		return;
	int64_t off, len;
	if (!copy_range(r, o.size, &off, &len)) {
		s3meta_obj_destroy(&o);
		return;
	}
	if (len > PART_MAX_SIZE) {
		s3meta_obj_destroy(&o);
		s3_error(r, 400, "InvalidRequest",
			 "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120");
		return;
	}
	if (strcmp(o.version_id, "null") != 0 && o.version_id[0])
		op->src_version = http_req_strndup(r->h, o.version_id, strlen(o.version_id));
	enum s3_cksum_alg alg = op->algo[0] ? s3_cksum_alg_from_name(op->algo, strlen(op->algo)) : S3_CKSUM_NONE;
	s3copy_start(r, &op->cp, o.locator, o.locator_len, off, len, alg, copy_copied);
	s3meta_obj_destroy(&o);
}

/* ---- CompleteMultipartUpload ------------------------------------------------ */

static void complete_committed(struct s3req *r, struct s3commit_job *j)
{
	if (j->rc != 0) {
		s3_error_meta(r, j->rc);
		return;
	}
	const struct s3meta_complete *out = &j->complete;
	log_debug("s3", "%s: upload %s completed, %" PRId64 " bytes", r->resource, j->upload_id, out->size);
	if (out->version_id[0])
		http_resp_header(r->h, "x-amz-version-id", out->version_id);
	struct wbuf b;
	struct s3_xw w;
	s3_xml_begin(r, &b, &w, "CompleteMultipartUploadResult");
	struct wbuf loc;
	wbuf_init(&loc, 256, 0);
	static const char scheme[] = "http://";
	wbuf_put(&loc, scheme, sizeof(scheme) - 1);
	wbuf_put(&loc, r->h->h.host.base, r->h->h.host.len);
	wbuf_u8(&loc, '/');
	s3_url_encode_buf(&loc, r->bucket, strlen(r->bucket), false);
	wbuf_u8(&loc, '/');
	s3_url_encode_buf(&loc, r->key, strlen(r->key), false);
	s3_xw_elem_n(&w, "Location", (const char *)loc.p, loc.len);
	wbuf_destroy(&loc);
	s3_xw_elem(&w, "Bucket", r->bucket);
	s3_xw_elem(&w, "Key", r->key);
	char etag[S3META_ETAG_SIZE + 4];
	snprintf(etag, sizeof(etag), "\"%s\"", out->etag);
	s3_xw_elem(&w, "ETag", etag);
	/* The composite checksum, when the upload had an algorithm and every
	 * part a value: read back from the version just stored. */
	struct s3meta_obj o;
	if (s3meta_object_get(r->svc->meta, r->bucket, r->key, out->version_id[0] ? out->version_id : NULL, &o) == 0 &&
	    o.etag && strcmp(o.etag, out->etag) == 0)
		cksum_elem(&w, o.cksum_algo, o.cksum_value);
	s3meta_obj_destroy(&o);
	s3_xw_close(&w, "CompleteMultipartUploadResult");
	s3_respond_xml(r, 200, &b);
}

static void complete_body(struct s3req *r, const struct s3body_digest *d)
{
	(void)d;
	size_t len;
	const uint8_t *body = s3_body_bytes(r, &len);
	struct s3_complete_mpu m;
	const char *why = NULL;
	memset(&m, 0, sizeof(m));
	if (s3_xml_parse_complete_mpu(body, len, NULL, &m, &why) != 0) {
		s3_complete_mpu_free(&m);
		s3_error(r, 400, "MalformedXML",
			 why ? why : "The XML you provided was not well-formed or did not validate against our published schema.");
		return;
	}
	/* The list must outlive the parse: the committer reads it later. */
	struct s3meta_part_ref *refs = http_req_alloc(r->h, sizeof(*refs) * (m.nparts ? m.nparts : 1));
	for (size_t i = 0; i < m.nparts; i++) {
		refs[i].part_number = m.parts[i].part_number;
		refs[i].etag = m.parts[i].etag ? http_req_strndup(r->h, m.parts[i].etag, strlen(m.parts[i].etag))
					       : NULL;
	}
	size_t nparts = m.nparts;
	s3_complete_mpu_free(&m);
	struct s3commit_job *j = s3_commit_job_new(r, S3COMMIT_COMPLETE);
	j->upload_id = upload_id(r);
	j->parts = refs;
	j->nparts = nparts;
	s3_commit(r, j, complete_committed);
}

void s3op_complete_multipart_upload(struct s3req *r)
{
	if (!s3_bucket_check(r))
		return;
	s3_body_collect(r, COMPLETE_BODY_MAX, complete_body);
}

/* ---- AbortMultipartUpload ---------------------------------------------------- */

static void abort_committed(struct s3req *r, struct s3commit_job *j)
{
	if (j->rc != 0) {
		s3_error_meta(r, j->rc);
		return;
	}
	log_debug("s3", "%s: upload %s aborted", r->resource, j->upload_id);
	s3_respond_empty(r, 204);
}

/* The upload's end goes through the committer, which also frees the
 * parts' data once the metadata change committed. */
void s3op_abort_multipart_upload(struct s3req *r)
{
	if (!s3_bucket_check(r))
		return;
	struct s3commit_job *j = s3_commit_job_new(r, S3COMMIT_MPU_ABORT);
	j->upload_id = upload_id(r);
	s3_commit(r, j, abort_committed);
}

/* ---- ListParts ---------------------------------------------------------------- */

void s3op_list_parts(struct s3req *r)
{
	bool present;
	int64_t marker = 0, max = S3META_LIST_MAX;
	const char *v = s3_query(r, "part-number-marker", &present);
	if (present && !parse_int(v, 0, INT32_MAX, &marker)) {
		s3_error(r, 400, "InvalidArgument", "Provided part-number-marker not an integer or within integer range");
		return;
	}
	v = s3_query(r, "max-parts", &present);
	if (present && !parse_int(v, 0, INT32_MAX, &max)) {
		s3_error(r, 400, "InvalidArgument", "Provided max-parts not an integer or within integer range");
		return;
	}
	if (max > S3META_LIST_MAX)
		max = S3META_LIST_MAX;
	bool url = false;
	v = s3_query(r, "encoding-type", &present);
	if (present) {
		if (!v || strcasecmp(v, "url") != 0) {
			s3_error(r, 400, "InvalidArgument", "Invalid Encoding Method specified in Request");
			return;
		}
		url = true;
	}
	if (!s3_bucket_check(r))
		return;
	struct s3meta_parts ps;
	const char *uid = upload_id(r);
	int rc = s3meta_mpu_list_parts(r->svc->meta, r->bucket, r->key, uid, (int)marker, (int)max, &ps);
	if (rc != 0) {
		s3_error_meta(r, rc);
		return;
	}
	struct wbuf b;
	struct s3_xw w;
	s3_xml_begin(r, &b, &w, "ListPartsResult");
	s3_xw_elem(&w, "Bucket", r->bucket);
	if (url) {
		struct wbuf k;
		wbuf_init(&k, 256, 0);
		s3_url_encode_buf(&k, r->key, strlen(r->key), false);
		s3_xw_elem_n(&w, "Key", (const char *)k.p, k.len);
		wbuf_destroy(&k);
	} else {
		s3_xw_elem(&w, "Key", r->key);
	}
	s3_xw_elem(&w, "UploadId", uid);
	owner_elem(r, &w, "Initiator", ps.owner);
	owner_elem(r, &w, "Owner", ps.owner);
	s3_xw_elem(&w, "StorageClass", "STANDARD");
	s3_xw_elem_i64(&w, "PartNumberMarker", marker);
	s3_xw_elem_i64(&w, "NextPartNumberMarker", ps.n ? ps.v[ps.n - 1].part_number : 0);
	s3_xw_elem_i64(&w, "MaxParts", max);
	s3_xw_elem_bool(&w, "IsTruncated", ps.truncated);
	if (url)
		s3_xw_elem(&w, "EncodingType", "url");
	if (ps.cksum_algo && *ps.cksum_algo)
		s3_xw_elem(&w, "ChecksumAlgorithm", ps.cksum_algo);
	for (size_t i = 0; i < ps.n; i++) {
		const struct s3meta_part *p = &ps.v[i];
		char date[40], etag[S3META_ETAG_SIZE + 4];
		s3_iso_date(p->mtime_ms, date);
		snprintf(etag, sizeof(etag), "\"%s\"", p->etag ? p->etag : "");
		s3_xw_open(&w, "Part");
		s3_xw_elem_i64(&w, "PartNumber", p->part_number);
		s3_xw_elem(&w, "LastModified", date);
		s3_xw_elem(&w, "ETag", etag);
		s3_xw_elem_i64(&w, "Size", p->size);
		cksum_elem(&w, ps.cksum_algo, p->cksum_value);
		s3_xw_close(&w, "Part");
	}
	s3_xw_close(&w, "ListPartsResult");
	s3meta_parts_destroy(&ps);
	s3_respond_xml(r, 200, &b);
}
