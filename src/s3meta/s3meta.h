/* s3meta.h - the object store's metadata service: users, buckets, object
 * versions and multipart uploads, kept in one SQLite database.
 *
 * The service knows nothing of HTTP or of how data nodes store bytes. An
 * object version points at its bytes through an opaque "data locator" (a
 * blob the data layer hands in, e.g. an object id); whenever a call makes a
 * locator unreachable (overwrite, delete, abort, parts left out of a
 * completed upload) the locator is appended to the caller's `freed` list so
 * the caller can reclaim the bytes after the call returned 0. Nothing is
 * appended when a call fails: a failed call changed nothing.
 *
 * Versioning (as S3 does it):
 *   Unversioned  a put replaces the key's single "null" version.
 *   Enabled      a put adds a version with a fresh id; a delete without a
 *                version id adds a delete marker.
 *   Suspended    a put or delete without version id replaces the key's null
 *                version (if any) with a new null version / delete marker,
 *                keeping every other version.
 * Version ids are 16 lowercase hex digits (microseconds since the epoch,
 * made unique), so they sort by creation time; the null version's id is the
 * string "null". The latest version of a key is always its newest.
 *
 * Errors: every int-returning function gives 0 or a negative code: -errno,
 * or -S3META_E* below, which map 1:1 to S3 (or, for users, IAM) error codes
 * through s3meta_errinfo(). SQLite failures are logged and reported as
 * -S3META_EINTERNAL (or -S3META_ESLOWDOWN when the database stayed locked).
 *
 * Threads: every function is safe to call from any thread at the same time
 * (one s3meta per database file per process). Each call borrows a pooled
 * SQLite connection (one per concurrently calling thread, with its prepared
 * statements kept), so the API service's loops read in parallel; writes are
 * serialised by one in-process mutex around short IMMEDIATE transactions.
 * Calls block on SQLite page reads and WAL appends (journal_mode=WAL,
 * synchronous=NORMAL: a commit survives a process crash, the last commits may
 * be lost on power failure); checkpoints are s3meta_checkpoint's.
 * Secret lookups (s3meta_user_secret) never touch SQLite: users live in an
 * in-memory table loaded at open and updated by the user calls.
 * Bucket rows (s3meta_bucket_head) and latest versions (s3meta_object_get
 * without version id) are served from a bounded in-memory read cache when
 * hot; every write invalidates what it changed once it has committed, so a
 * caller that got a write's answer reads what it wrote (s3meta_cache.c).
 * Hence buckets and objects may be changed only through this process's
 * s3meta handle (other processes may change users only).
 *
 * Strings are NUL-terminated UTF-8. Results that carry strings (struct
 * s3meta_obj, s3meta_list, s3meta_parts) own them in an arena: every pointer
 * in them stays valid until the matching *_destroy. */
#ifndef SILT_S3META_H
#define SILT_S3META_H

#include "core/platform.h"

enum {
	S3META_EBASE = 11000,
	S3META_EINTERNAL = S3META_EBASE + 1,     /* InternalError 500 */
	S3META_ESLOWDOWN,                        /* SlowDown 503 */
	S3META_ENOSUCHBUCKET,                    /* NoSuchBucket 404 */
	S3META_ENOSUCHKEY,                       /* NoSuchKey 404 */
	S3META_ENOSUCHVERSION,                   /* NoSuchVersion 404 */
	S3META_ENOSUCHUPLOAD,                    /* NoSuchUpload 404 */
	S3META_EBUCKETNOTEMPTY,                  /* BucketNotEmpty 409 */
	S3META_EBUCKETEXISTS,                    /* BucketAlreadyExists 409 */
	S3META_EBUCKETOWNED,                     /* BucketAlreadyOwnedByYou 409 */
	S3META_EINVALIDBUCKETNAME,               /* InvalidBucketName 400 */
	S3META_EINVALIDPART,                     /* InvalidPart 400 */
	S3META_EINVALIDPARTORDER,                /* InvalidPartOrder 400 */
	S3META_EENTITYTOOSMALL,                  /* EntityTooSmall 400 */
	S3META_EKEYTOOLONG,                      /* KeyTooLongError 400 */
	S3META_EINVALIDARGUMENT,                 /* InvalidArgument 400 */
	S3META_EINVALIDREQUEST,                  /* InvalidRequest 400 */
	S3META_EMALFORMEDXML,                    /* MalformedXML 400 */
	S3META_EMETHODNOTALLOWED,                /* MethodNotAllowed 405 */
	S3META_EMETADATATOOLARGE,                /* MetadataTooLarge 400 */
	S3META_EINVALIDACCESSKEYID,              /* InvalidAccessKeyId 403 */
	S3META_EUSEREXISTS,                      /* EntityAlreadyExists 409 (IAM) */
	S3META_ENOSUCHUSER,                      /* NoSuchEntity 404 (IAM) */
	S3META_EUSERINUSE,                       /* DeleteConflict 409 (IAM) */
	S3META_ELAST
};

struct s3meta_errinfo {
	const char *code;    /* "NoSuchKey" */
	int http_status;     /* 404 */
	const char *message; /* S3's usual message text */
};

/* The S3 code, HTTP status and message for 0-or-negative err; any code not
 * in the table (-errno included) gives InternalError. Never NULL. */
const struct s3meta_errinfo *s3meta_errinfo(int err);

/* Limits. Buffers named *_SIZE include the NUL. */
#define S3META_KEY_MAX 1024          /* object key bytes */
#define S3META_ACCESS_KEY_MAX 128
#define S3META_SECRET_MAX 128
#define S3META_DISPLAY_MAX 256
#define S3META_BUCKET_SIZE 64        /* 63 chars + NUL */
#define S3META_VID_SIZE 17           /* 16 hex digits or "null", + NUL */
#define S3META_UPLOAD_ID_SIZE 33     /* 32 hex digits + NUL */
#define S3META_ETAG_SIZE 48          /* 32 hex + "-10000" + NUL, unquoted */
#define S3META_USER_META_MAX 8192    /* encoded x-amz-meta-* blob */
#define S3META_LIST_MAX 1000         /* max-keys, max-uploads, max-parts cap */
#define S3META_PART_MAX 10000        /* part numbers are 1..10000 */
#define S3META_MIN_PART_SIZE (5ll << 20)

struct s3meta;

struct s3meta_config {
	const char *path;       /* database file, created if missing */
	int64_t min_part_size;  /* EntityTooSmall threshold; 0 = 5 MiB */
	int max_conns;          /* pooled connections cap; 0 = 64 */
	/* Read cache of bucket rows and latest versions (what GET and HEAD
	 * read): bytes; 0 = S3META_CACHE_DEFAULT, negative = no cache. */
	int64_t cache_bytes;
};

#define S3META_CACHE_DEFAULT (64ll << 20)

/* Opens (creating schema if needed) the database. 0 and *out, or an error. */
int s3meta_open(const struct s3meta_config *cfg, struct s3meta **out);
/* Closes every pooled connection. No call may be in progress. */
void s3meta_close(struct s3meta *m);
/* Copies the WAL back into the database (PASSIVE: never waits for readers
 * or writers). SQLite's automatic checkpoint, which would run inside a
 * writer's commit and stall it for the checkpoint's fsyncs, only acts as a
 * backstop at 64 MiB of WAL: a long-running process calls this from a
 * background thread every few hundred milliseconds. *wal_frames (may be
 * NULL) gets the WAL's length in frames -- it starts over only when a
 * writer finds it entirely checkpointed -- and *done_frames how many of
 * them are now in the database file. */
int s3meta_checkpoint(struct s3meta *m, int *wal_frames, int *done_frames);

/* ---- group commit ------------------------------------------------------ *
 *
 * Between s3meta_batch_begin(m) and s3meta_batch_end(m), every call on m
 * that the calling thread makes runs inside ONE write transaction (on one
 * connection, holding the write mutex throughout). Reads on this thread
 * see the group's changes. Nothing is committed, visible to other threads
 * or durable before s3meta_batch_end returns 0; if it fails, every call of
 * the group is undone: the caller must then treat every result as void --
 * above all it must NOT free the locators the calls put on `freed` lists
 * (their versions still exist).
 *
 * A call that fails must change nothing, while the others stand. Every
 * error a write call reports by its S3 name (NoSuchBucket, InvalidPart...)
 * is found before it writes, so a group can be run optimistically
 * (isolated = false): calls write straight into the transaction, and only
 * a call that fails after writing (an I/O error, a full disk) spoils the
 * group: s3meta_batch_end then rolls it all back and returns -EAGAIN, and
 * the caller runs the group again isolated (isolated = true: each call in
 * its own savepoint, undone alone when it fails; a savepoint copies every
 * page it modifies, which costs about a fifth of a PUT's work here).
 *
 * An optimistic group sums the bucket usage counters' changes and writes
 * them once, in s3meta_batch_end: s3meta_bucket_usage inside the group
 * does not see them yet. A cache that a write call invalidates must be
 * invalidated (again) after s3meta_batch_end, since other threads can read
 * the old rows until then.
 * One group per thread at a time; other threads' writes wait for the group
 * to end, so keep groups short. */
int s3meta_batch_begin(struct s3meta *m, bool isolated);
int s3meta_batch_end(struct s3meta *m);

/* ---- data locators to free ------------------------------------------- */

struct s3meta_blob {
	uint8_t *p; /* heap, owned by the list */
	size_t len;
};

/* Zero-initialise; mutating calls append; s3meta_locs_destroy frees. */
struct s3meta_locs {
	struct s3meta_blob *v;
	size_t n, cap;
};

void s3meta_locs_destroy(struct s3meta_locs *l);

/* ---- arena (owner of strings in results) --------------------------- */

struct s3meta_achunk;
struct s3meta_arena {
	struct s3meta_achunk *head;
};

/* ---- users ----------------------------------------------------------- */

struct s3meta_user {
	char access_key[S3META_ACCESS_KEY_MAX + 1];
	char display_name[S3META_DISPLAY_MAX + 1];
	int64_t created_ms;
};

/* Access keys: 3..128 of [A-Za-z0-9_+=,.@-]; secrets 8..128 printable ASCII.
 * -S3META_EINVALIDARGUMENT otherwise; -S3META_EUSEREXISTS if present. */
int s3meta_user_create(struct s3meta *m, const char *access_key, const char *secret,
		       const char *display_name);
/* Creates the user, or updates an existing user's secret and display name
 * (the root user, from config, at every start). */
int s3meta_user_ensure(struct s3meta *m, const char *access_key, const char *secret,
		       const char *display_name);
/* Copies the secret into `secret` (S3META_SECRET_MAX + 1 bytes). From memory,
 * no SQLite: called on every request. -S3META_EINVALIDACCESSKEYID if unknown. */
int s3meta_user_secret(struct s3meta *m, const char *access_key, char *secret);
/* Copies the display name (S3META_DISPLAY_MAX + 1 bytes); for Owner elements. */
int s3meta_user_display_name(struct s3meta *m, const char *access_key, char *name);
/* All users, sorted by access key; *out is one heap array the caller frees. */
int s3meta_user_list(struct s3meta *m, struct s3meta_user **out, size_t *n);
/* -S3META_EUSERINUSE while the user owns buckets, -S3META_ENOSUCHUSER. */
int s3meta_user_delete(struct s3meta *m, const char *access_key);
/* Re-reads the user table (after another process changed it). */
int s3meta_users_reload(struct s3meta *m);

/* ---- buckets --------------------------------------------------------- */

enum s3meta_versioning {
	S3META_UNVERSIONED = 0,
	S3META_VERSIONING_ENABLED = 1,
	S3META_VERSIONING_SUSPENDED = 2,
};

struct s3meta_bucket {
	char name[S3META_BUCKET_SIZE];
	char owner[S3META_ACCESS_KEY_MAX + 1]; /* access key */
	int64_t created_ms;
	enum s3meta_versioning versioning;
};

/* S3's bucket naming rules: 0 or -S3META_EINVALIDBUCKETNAME. */
int s3meta_bucket_name_check(const char *name);
/* created_ms 0 = now. BucketAlreadyOwnedByYou when `owner` has it,
 * BucketAlreadyExists when someone else does. */
int s3meta_bucket_create(struct s3meta *m, const char *name, const char *owner, int64_t created_ms);
/* NoSuchBucket or 0 (and *out filled when out != NULL). */
int s3meta_bucket_head(struct s3meta *m, const char *name, struct s3meta_bucket *out);
/* Buckets of `owner` (NULL: all), by name; *out a heap array to free(). */
int s3meta_bucket_list(struct s3meta *m, const char *owner, struct s3meta_bucket **out, size_t *n);
/* BucketNotEmpty while any version, delete marker or upload remains. */
int s3meta_bucket_delete(struct s3meta *m, const char *name);
/* ENABLED or SUSPENDED (a bucket never returns to UNVERSIONED). */
int s3meta_bucket_versioning_set(struct s3meta *m, const char *name, enum s3meta_versioning v);

/* Kept up to date in the bucket row by every change, so reading is one row. */
struct s3meta_usage {
	uint64_t objects;       /* keys whose latest version is an object */
	uint64_t bytes;         /* their sizes */
	uint64_t versions;      /* every stored object version (not markers) */
	uint64_t version_bytes; /* their sizes: the space the bucket uses */
};
int s3meta_bucket_usage(struct s3meta *m, const char *name, struct s3meta_usage *out);

/* ---- objects --------------------------------------------------------- */

/* What PutObject (or CreateMultipartUpload) stores. NULL strings are absent
 * headers. */
struct s3meta_put {
	int64_t size;
	const char *etag;  /* unquoted, e.g. hex MD5 */
	const char *owner; /* access key of the writer */
	int64_t mtime_ms;  /* 0 = now */
	const char *content_type, *cache_control, *content_disposition, *content_encoding,
		*content_language, *expires;
	const uint8_t *user_meta; /* see s3meta_umeta_*; <= S3META_USER_META_MAX */
	size_t user_meta_len;
	const char *cksum_algo;  /* "CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME" */
	const char *cksum_value; /* base64, as S3 prints it */
	const uint8_t *locator;
	size_t locator_len;
};

/* One object version (or delete marker) as read back. */
struct s3meta_obj {
	char version_id[S3META_VID_SIZE]; /* "null" for the null version */
	bool is_latest;
	bool delete_marker;
	int64_t size, mtime_ms;
	int parts_count; /* 0: single-part locator; N: s3meta_mploc with N parts */
	const char *etag, *owner;
	const char *content_type, *cache_control, *content_disposition, *content_encoding,
		*content_language, *expires, *cksum_algo, *cksum_value; /* NULL if absent */
	const uint8_t *user_meta;
	size_t user_meta_len;
	const uint8_t *locator;
	size_t locator_len;
	struct s3meta_arena arena;
};

void s3meta_obj_destroy(struct s3meta_obj *o);

/* Adds a version following the bucket's versioning state. version_id gets
 * the new version's id ("" in an unversioned bucket, "null" if suspended).
 * The replaced null version's locator, if any, goes to `freed`.
 * KeyTooLongError, InvalidArgument (empty key, not UTF-8), NoSuchBucket. */
int s3meta_object_put(struct s3meta *m, const char *bucket, const char *key, const struct s3meta_put *p,
		      char *version_id, struct s3meta_locs *freed);

/* Puts n objects in one transaction (imports, tests, benchmarks); all or
 * nothing. No version ids are returned. */
int s3meta_object_put_many(struct s3meta *m, const char *bucket, size_t n, const char *const *keys,
			   const struct s3meta_put *puts, struct s3meta_locs *freed);

/* version_id NULL: the latest version; NoSuchKey if none, and also NoSuchKey
 * with out->delete_marker set (and out->version_id) when the latest is a
 * delete marker (GET answers x-amz-delete-marker: true). With a version id:
 * NoSuchVersion, InvalidArgument for a malformed id, and MethodNotAllowed
 * with out->delete_marker set when it names a delete marker. `out` is always
 * initialised (destroy it even after an error). */
int s3meta_object_get(struct s3meta *m, const char *bucket, const char *key, const char *version_id,
		      struct s3meta_obj *out);

struct s3meta_del {
	char version_id[S3META_VID_SIZE]; /* x-amz-version-id to answer, or "" */
	bool delete_marker; /* x-amz-delete-marker: a marker was created/removed */
	bool found;         /* with a version id: whether it existed */
};

/* Without version id: unversioned removes the object; enabled adds a delete
 * marker; suspended replaces the null version by a null delete marker. With
 * a version id: removes that version for good (deleting a missing version
 * is not an error, out->found = false); if it was the latest, the next
 * newest becomes latest. Removed data goes to `freed`. `owner` (the
 * requester's access key) owns a new delete marker. */
int s3meta_object_delete(struct s3meta *m, const char *bucket, const char *key, const char *version_id,
			 const char *owner, struct s3meta_del *out, struct s3meta_locs *freed);

/* User metadata blob: pairs of (uvarint len, name bytes, uvarint len, value
 * bytes), in the order added. Names are stored as given (lower-case them
 * before, without the x-amz-meta- prefix). */
struct wbuf;
void s3meta_umeta_add(struct wbuf *w, const char *name, const char *value);
/* Iterates: *pos starts at 0; false at the end or on a malformed blob. The
 * name/value views point into the blob and are not NUL-terminated. */
bool s3meta_umeta_next(const uint8_t *blob, size_t len, size_t *pos, const char **name, size_t *nlen,
		       const char **value, size_t *vlen);

/* ---- listing ---------------------------------------------------------- *
 *
 * One result shape for ListObjects(V2), ListObjectVersions and
 * ListMultipartUploads. What stays with the API layer: XML, encoding-type=url
 * (percent-encode Key, Prefix, Delimiter, markers and CommonPrefixes in the
 * response), v1's rule that NextMarker is sent only with a delimiter (else
 * clients resume from the last Key, which equals next_marker), echoing
 * Marker/StartAfter/ContinuationToken, and StorageClass (always STANDARD).
 * The walk costs one index seek per common prefix plus one index step per
 * key, never a scan of the keys rolled up in a prefix (s3meta_list.c). */

/* One Contents / Version / DeleteMarker / Upload / CommonPrefix element. */
struct s3meta_entry {
	const char *key; /* the key, or the common prefix when is_prefix */
	size_t key_len;
	bool is_prefix;
	bool is_latest, delete_marker;     /* versions */
	char version_id[S3META_VID_SIZE];  /* versions */
	char upload_id[S3META_UPLOAD_ID_SIZE]; /* uploads */
	int64_t size, mtime_ms;            /* mtime_ms: Initiated for uploads */
	const char *etag, *owner, *cksum_algo; /* cksum_algo NULL if none */
	const char *bucket;                /* s3meta_mpu_list_abandoned only */
};

struct s3meta_list_req {
	const char *prefix;    /* NULL/"": everything */
	const char *delimiter; /* NULL/"": none; any string, not only "/" */
	/* Exclusive start: v1 marker, v2 start-after, versions' and uploads'
	 * key-marker. A marker that is itself a common prefix under this prefix
	 * and delimiter (as NextMarker can be) skips everything rolled up in it. */
	const char *marker;
	const char *token;     /* v2 continuation token; wins over marker */
	const char *id_marker; /* version-id-marker / upload-id-marker */
	int max;               /* max-keys etc.: <0 or >1000 means 1000; 0 allowed */
};

struct s3meta_list {
	struct s3meta_entry *v; /* keys and prefixes interleaved, in key order */
	size_t n;
	size_t n_keys, n_prefixes; /* KeyCount = n */
	bool truncated;
	/* When truncated: the last entry's key or prefix (v1 NextMarker, which
	 * S3 sends only with a delimiter; NextKeyMarker), the last version's or
	 * upload's id (NULL after a prefix), and the v2 NextContinuationToken. */
	const char *next_marker;
	const char *next_id_marker;
	const char *next_token;
	struct s3meta_arena arena;
};

void s3meta_list_destroy(struct s3meta_list *l);

/* ListObjects (v1) and ListObjectsV2: latest versions that are not delete
 * markers. InvalidArgument for a bad token. `out` always initialised. */
int s3meta_list_objects(struct s3meta *m, const char *bucket, const struct s3meta_list_req *req,
			struct s3meta_list *out);
/* ListObjectVersions: every version and delete marker, keys ascending,
 * newest first within a key. req->marker = key-marker, id_marker =
 * version-id-marker (InvalidArgument if malformed). */
int s3meta_list_versions(struct s3meta *m, const char *bucket, const struct s3meta_list_req *req,
			 struct s3meta_list *out);
/* ListMultipartUploads: by key, then by upload id (= initiation order). */
int s3meta_list_uploads(struct s3meta *m, const char *bucket, const struct s3meta_list_req *req,
			struct s3meta_list *out);

/* ---- multipart uploads -------------------------------------------------- */

/* Stores the object's intended attributes (size, etag, locator ignored)
 * and returns the new upload id (32 hex digits: 16 of time, 16 random). */
int s3meta_mpu_create(struct s3meta *m, const char *bucket, const char *key, const struct s3meta_put *attrs,
		      char *upload_id);

struct s3meta_part_put {
	int part_number; /* 1..10000 else InvalidArgument */
	int64_t size;
	const char *etag; /* unquoted hex MD5 */
	const char *cksum_value; /* base64, in the upload's algorithm, or NULL */
	int64_t mtime_ms; /* 0 = now */
	const uint8_t *locator;
	size_t locator_len;
};

/* NoSuchUpload unless upload_id is an upload of bucket/key. A replaced
 * part's locator goes to `freed`. */
int s3meta_mpu_put_part(struct s3meta *m, const char *bucket, const char *key, const char *upload_id,
			const struct s3meta_part_put *pp, struct s3meta_locs *freed);

struct s3meta_part_ref {
	int part_number;
	const char *etag; /* as the client sent it, quotes allowed */
};

struct s3meta_complete {
	char version_id[S3META_VID_SIZE];
	char etag[S3META_ETAG_SIZE]; /* md5(concat of binary part MD5s) "-" N */
	int64_t size;
};

/* Validates the client's list (MalformedXML if empty; InvalidPartOrder
 * unless part numbers strictly ascend; InvalidPart for a part not uploaded
 * or whose ETag differs; EntityTooSmall for a part but the last under the
 * minimum part size), then stores the object as a version (versioning as
 * for a put) whose locator is an s3meta_mploc of the listed parts, and ends
 * the upload. Parts uploaded but not listed, and a replaced null version,
 * go to `freed`. If the upload was created with a checksum algorithm and
 * every listed part has a value, the object gets S3's composite checksum
 * ("base64(hash(concat of part checksums))-N"). mtime_ms 0 = now. */
int s3meta_mpu_complete(struct s3meta *m, const char *bucket, const char *key, const char *upload_id,
			const struct s3meta_part_ref *parts, size_t n, int64_t mtime_ms,
			struct s3meta_complete *out, struct s3meta_locs *freed);

/* Ends the upload; every part's locator goes to `freed`. */
int s3meta_mpu_abort(struct s3meta *m, const char *bucket, const char *key, const char *upload_id,
		     struct s3meta_locs *freed);

struct s3meta_part {
	int part_number;
	int64_t size, mtime_ms;
	const char *etag, *cksum_value;
};

struct s3meta_parts {
	/* the upload */
	const char *owner;
	int64_t initiated_ms;
	const char *cksum_algo;
	/* parts after the marker */
	struct s3meta_part *v;
	size_t n;
	bool truncated;
	int next_marker; /* NextPartNumberMarker: last part returned */
	struct s3meta_arena arena;
};

void s3meta_parts_destroy(struct s3meta_parts *p);

/* ListParts: parts numbered above `marker`, at most max (clamped as for
 * listings). `out` always initialised. */
int s3meta_mpu_list_parts(struct s3meta *m, const char *bucket, const char *key, const char *upload_id,
			  int marker, int max, struct s3meta_parts *out);

/* Uploads initiated before now - age_ms, oldest first, at most max (any
 * bucket; entries carry bucket, key, upload_id, mtime_ms = initiated), for a
 * reclaimer that then calls s3meta_mpu_abort. */
int s3meta_mpu_list_abandoned(struct s3meta *m, int64_t age_ms, size_t max, struct s3meta_list *out);

/* ---- multipart locators ------------------------------------------------ */

/* A completed upload's locator lists its parts in order:
 *   'M', uvarint N, then N times: uvarint size, uvarint len, len bytes of
 *   the part's own locator. */
struct s3meta_mploc_iter {
	const uint8_t *p, *end;
	uint64_t left;
	bool err;
};

/* false if the blob is not a multipart locator. */
bool s3meta_mploc_init(struct s3meta_mploc_iter *it, const uint8_t *loc, size_t len, uint64_t *nparts);
/* Next part's size and locator view (into the blob); false at the end or on
 * a malformed blob (it->err). */
bool s3meta_mploc_next(struct s3meta_mploc_iter *it, int64_t *size, const uint8_t **loc, size_t *len);

#endif
