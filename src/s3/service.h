/* service.h - the S3 API service: routing, authentication, errors and the
 * request-body pipeline that the operation files (op_*.c) build on.
 *
 * Request flow (every step on the connection's loop thread, except the
 * group commit of writes, s3/commit.h):
 *   http on_head -> s3req created (request id, bucket/key from the path or
 *   a virtual-host Host header) -> SigV4 verified (s3/auth.c; secrets from
 *   the metadata service) -> operation chosen from method + bucket/key +
 *   query subresources -> op's start function. The op answers at once
 *   (s3_respond_xml / s3_error ...) or asks for the body:
 *     s3_body_stream(r, on_data, on_end)  payload bytes in order,
 *       aws-chunked framing removed and signatures checked, MD5/SHA-256 and
 *       the requested x-amz-checksum computed on the way (the bytes are
 *       staged and reach on_data in data-node chunks, and the MD5 of the
 *       uploads on one loop is computed in batches: service.c, "batched
 *       MD5"); on_end runs once
 *       the body is complete and every digest matched what the client
 *       promised (else the pipeline answers BadDigest/IncompleteBody/...
 *       itself and on_end never runs);
 *     s3_body_collect(r, max, on_end)      the same, buffered (XML bodies).
 * Ops never touch volume files: object bytes go through the data routing
 * layer (s3/route.h) to data nodes; names and versions through the
 * metadata service (s3meta/).
 *
 * Memory: an s3req lives until the HTTP layer's on_done; strings in it are
 * in the request arena (http_req_alloc). */
#ifndef SILT_S3_SERVICE_H
#define SILT_S3_SERVICE_H

#include "core/platform.h"
#include "core/wbuf.h"
#include "http/server.h"
#include "s3/auth.h"
#include "s3/checksum.h"
#include "s3/commit.h"
#include "s3/chunked.h"
#include "s3/xml.h"
#include "s3meta/s3meta.h"

struct s3route;
struct s3_md5q;
struct s3commit;
struct s3commit_job;

struct s3svc_conf {
	const char *host;
	int port;
	int nthreads;
	bool sched_batch; /* HTTP loop threads under SCHED_BATCH */
	const char *data_dir;
	const char *root_user;
	const char *root_password;
	const char *domain;  /* virtual-host suffix: "<bucket>.<domain>" (default "localhost") */
	const char *region;  /* what GetBucketLocation reports (default "us-east-1") */
	int64_t mpu_expire_ms; /* abandoned multipart uploads are aborted after this; 0 = S3SVC_MPU_EXPIRE_MS */
};

/* Multipart uploads older than this are reclaimed by housekeeping. */
#define S3SVC_MPU_EXPIRE_MS (24ll * 3600 * 1000)

struct s3svc {
	struct s3svc_conf conf;
	char domain[256];
	char region[64];
	struct s3meta *meta;
	struct s3route *route;
	struct s3commit *commit; /* group committer of the writes after a body */
	struct s3_auth_ctx *auth;
	struct http_server *http;
	/* Batched MD5 of streamed bodies: one queue per HTTP loop (service.c). */
	struct s3_md5q *md5q;
	int nmd5q;
	uint32_t stage_bytes; /* a body's staging buffer: one data-node chunk */
};

enum s3op {
	S3OP_NONE = 0,
	S3OP_LIST_BUCKETS,
	S3OP_CREATE_BUCKET,
	S3OP_HEAD_BUCKET,
	S3OP_DELETE_BUCKET,
	S3OP_GET_BUCKET_LOCATION,
	S3OP_GET_BUCKET_VERSIONING,
	S3OP_PUT_BUCKET_VERSIONING,
	S3OP_LIST_OBJECTS,
	S3OP_LIST_OBJECTS_V2,
	S3OP_LIST_OBJECT_VERSIONS,
	S3OP_LIST_MULTIPART_UPLOADS,
	S3OP_DELETE_OBJECTS,
	S3OP_PUT_OBJECT,
	S3OP_COPY_OBJECT,
	S3OP_GET_OBJECT,
	S3OP_HEAD_OBJECT,
	S3OP_DELETE_OBJECT,
	S3OP_CREATE_MULTIPART_UPLOAD,
	S3OP_UPLOAD_PART,
	S3OP_UPLOAD_PART_COPY,
	S3OP_COMPLETE_MULTIPART_UPLOAD,
	S3OP_ABORT_MULTIPART_UPLOAD,
	S3OP_LIST_PARTS,
	S3OP__COUNT
};

struct s3body;

struct s3req {
	struct http_req *h;
	struct s3svc *svc;
	enum s3op op;
	char id[17];             /* x-amz-request-id */
	const char *bucket;      /* decoded, NUL-terminated; NULL at service level */
	const char *key;         /* decoded object key; NULL at bucket level */
	const char *resource;    /* "/bucket/key" for error documents */
	char user[S3_AUTH_MAX_AKID + 1]; /* authenticated access key */
	struct s3_auth_result auth;
	struct s3meta_bucket bucket_row; /* valid after s3_bucket_check */
	struct s3body *body;
	int loop_idx;            /* which loop thread (picks a data node stream) */
	bool answered;
	int status;              /* for the access log */
	int64_t t0_us;
	/* Op-private state and its destructor (called from on_done). */
	void *ops;
	void (*op_free)(struct s3req *r); /* s3_ops_free when ops is one heap block */
	/* A streaming response's producer (GET): called on_writable. */
	void (*on_writable)(struct s3req *r);
	void (*on_abort)(struct s3req *r);
	/* The answer to a job handed to the committer (s3_commit). */
	void (*on_commit)(struct s3req *r, struct s3commit_job *j);
};

/* ---- errors ---------------------------------------------------------- */

/* Answers with the S3 XML error document (no body for HEAD). code is the
 * S3 error code ("NoSuchKey"), message its human text. */
void s3_error(struct s3req *r, int status, const char *code, const char *message);
/* An op_free for state that is one heap block in r->ops. */
void s3_ops_free(struct s3req *r);
/* Answers a metadata-service error (-S3META_E*, -errno). */
void s3_error_meta(struct s3req *r, int err);
/* InternalError, with a log line saying what failed. */
void s3_error_internal(struct s3req *r, const char *what, int err);

/* ---- responses ------------------------------------------------------- */

/* Starts an XML document in the request arena: declaration and root with
 * the S3 namespace. Finish with s3_respond_xml. */
void s3_xml_begin(struct s3req *r, struct wbuf *b, struct s3_xw *w, const char *root);
void s3_respond_xml(struct s3req *r, int status, struct wbuf *b);
/* Answers with no body (200/204 with headers already set). */
void s3_respond_empty(struct s3req *r, int status);

/* ---- the body pipeline ------------------------------------------------ */

/* What the pipeline computed over the payload. */
struct s3body_digest {
	int64_t size;
	uint8_t md5[16];
	char etag[36];             /* quoted hex MD5 */
	enum s3_cksum_alg alg;     /* the x-amz-checksum the client sent or asked for */
	char cksum_b64[64];        /* its value (verified if the client gave one) */
};

/* on_data: payload bytes in order; returns 0 or an error already answered
 * (the pipeline then stops). */
typedef int (*s3body_data_fn)(struct s3req *r, const uint8_t *p, size_t n);
typedef void (*s3body_end_fn)(struct s3req *r, const struct s3body_digest *d);

/* Expects a body of at most max bytes (after decoding); MD5 and the
 * checksum are computed when want_digests. */
void s3_body_stream(struct s3req *r, int64_t max, bool want_digests, s3body_data_fn on_data,
		    s3body_end_fn on_end);
/* Buffers the whole body (at most max bytes) into *out (request arena) and
 * calls on_end(r, digest); the bytes are at s3_body_bytes(r). */
void s3_body_collect(struct s3req *r, int64_t max, s3body_end_fn on_end);
const uint8_t *s3_body_bytes(struct s3req *r, size_t *len);
/* Like s3_body_collect, with the digests of s3_body_stream: MD5 and the
 * client's x-amz-checksum (header or trailer) computed and verified (for
 * bodies that such a header covers: DeleteObjects). s3_body_collect checks
 * only Content-MD5, when sent. */
void s3_body_collect_verified(struct s3req *r, int64_t max, s3body_end_fn on_end);

/* ---- helpers ---------------------------------------------------------- */

/* Looks the bucket up and checks the caller owns it; answers NoSuchBucket /
 * AccessDenied itself and returns false. Fills r->bucket_row. */
bool s3_bucket_check(struct s3req *r);
/* Header value (NUL-terminated copy in the arena) or NULL. */
const char *s3_header(struct s3req *r, const char *name);
/* Query parameter, percent-decoded, NUL-terminated in the arena, or NULL;
 * *present tells "?versioning" (no value) from absent. */
const char *s3_query(struct s3req *r, const char *name, bool *present);
/* RFC 7231 date for Last-Modified etc., and ISO 8601 for XML. */
void s3_http_date(int64_t ms, char out[40]);
void s3_iso_date(int64_t ms, char out[40]);
/* Frees the data of every locator in l (what a metadata call reported as
 * unreachable) and destroys l. Failures are logged, not returned: the bytes
 * are then garbage the data node's GC cannot see, never data loss. */
void s3_locs_release(struct s3svc *svc, struct s3meta_locs *l);
/* Hands the write j (filled in by the op, see s3/commit.h) to the group
 * committer; on_commit(r, j) then runs on this loop with j's results and
 * answers. Until then the request waits: a client that disconnects
 * meanwhile is noted by the HTTP layer and the answer goes nowhere (the
 * write still happens). j must live until on_commit (put it in r->ops).
 * Refused while the service shuts down: answered 503 here (and j's data
 * put aborted). */
void s3_commit(struct s3req *r, struct s3commit_job *j, void (*on_commit)(struct s3req *r, struct s3commit_job *j));
/* A zeroed job of this kind on the request's bucket, key and user (owner),
 * kept in r->ops and freed with the request. */
struct s3commit_job *s3_commit_job_new(struct s3req *r, enum s3commit_kind kind);
/* The start of a data-writing job's answer in on_commit: false, and the
 * request answered (500 for the data commit, the metadata error
 * otherwise), if either commit failed; the committer already freed the
 * new data then. */
bool s3_commit_ok(struct s3req *r, const struct s3commit_job *j);
/* HTTP date (IMF-fixdate, RFC 850 or asctime) to ms since the epoch. */
bool s3_parse_http_date(const char *s, int64_t *ms);
/* Starts a streamed response of len bytes (common headers added, status
 * noted); then http_stream_write / http_stream_end. For HEAD, call
 * http_stream_end without writing. Returns http_respond_stream's result. */
int s3_respond_stream(struct s3req *r, int status, int64_t len);
/* The whole body at once, sent from the caller's memory without a copy:
 * body must stay valid until the request's op_free (on_done), which the
 * layer calls only after the last byte went out or the connection died. */
int s3_respond_ref(struct s3req *r, int status, const void *body, size_t len);
/* Evaluates If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since
 * (prefix "") or their x-amz-copy-source-if-* forms (prefix
 * "x-amz-copy-source-") against an object's unquoted ETag and mtime, with
 * S3's precedence: 0 (go on), 304 (not modified) or 412 (failed). */
int s3_eval_conditions(struct s3req *r, const char *prefix, const char *etag, int64_t mtime_ms);
/* CopyObject / UploadPartCopy: resolves x-amz-copy-source ("[/]bucket/key"
 * URL-encoded, optional "?versionId="), checks the caller owns the source
 * bucket, reads the version and evaluates x-amz-copy-source-if-*. On false
 * the error was answered (and *src needs no destroy); on true destroy *src.
 * *src_key: the decoded source key (request arena). */
bool s3_copy_source(struct s3req *r, struct s3meta_bucket *src_bucket, struct s3meta_obj *src,
		    const char **src_key);

/* Lifecycle, from the CLI. */
int s3svc_start(const struct s3svc_conf *conf, struct s3svc **out);
void s3svc_stop(struct s3svc *s);
/* Bytes of volume files, and bytes GC could reclaim from sealed volumes. */
int s3svc_space(struct s3svc *s, uint64_t *used, uint64_t *reclaimable);
/* Background duties (abandoned uploads, GC); housekeeping thread. */
void s3svc_housekeeping(struct s3svc *s, int64_t now_ms);

/* ---- operations (op_*.c) --------------------------------------------- */

void s3op_list_buckets(struct s3req *r);
void s3op_create_bucket(struct s3req *r);
void s3op_head_bucket(struct s3req *r);
void s3op_delete_bucket(struct s3req *r);
void s3op_get_bucket_location(struct s3req *r);
void s3op_get_bucket_versioning(struct s3req *r);
void s3op_put_bucket_versioning(struct s3req *r);
void s3op_list_objects(struct s3req *r);        /* v1 and v2 */
void s3op_list_object_versions(struct s3req *r);
void s3op_list_multipart_uploads(struct s3req *r);
void s3op_delete_objects(struct s3req *r);
void s3op_put_object(struct s3req *r);
void s3op_copy_object(struct s3req *r);
void s3op_get_object(struct s3req *r);          /* GET and HEAD */
void s3op_delete_object(struct s3req *r);
void s3op_create_multipart_upload(struct s3req *r);
void s3op_upload_part(struct s3req *r);
void s3op_upload_part_copy(struct s3req *r);
void s3op_complete_multipart_upload(struct s3req *r);
void s3op_abort_multipart_upload(struct s3req *r);
void s3op_list_parts(struct s3req *r);

#endif
