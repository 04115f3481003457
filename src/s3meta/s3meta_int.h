/* s3meta_int.h - what the s3meta_*.c files share: the handle, the
 * connection pool, prepared statements, the arena and small helpers.
 * Not for use outside src/s3meta/. */
#ifndef SILT_S3META_INT_H
#define SILT_S3META_INT_H

#include "core/platform.h"
#include "s3meta/s3meta.h"

#include <pthread.h>
#include <sqlite3.h>

/* Every statement a connection may prepare; SQL text in s3meta.c. */
enum st_id {
	ST_BEGIN,
	ST_BEGIN_IMM,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_USER_INS,
	ST_USER_UPD,
	ST_USER_DEL,
	ST_USER_ALL,
	ST_USER_HAS_BUCKETS,
	ST_BKT_GET,
	ST_BKT_INS,
	ST_BKT_LIST_OWNER,
	ST_BKT_LIST_ALL,
	ST_BKT_DEL,
	ST_BKT_HAS_VERSIONS,
	ST_BKT_HAS_UPLOADS,
	ST_BKT_SET_VERS,
	ST_BKT_USAGE,
	ST_BKT_ADJ,
	ST_VER_LATEST,
	ST_VER_BY_ID,
	ST_VER_NULL,
	ST_VER_INS,
	ST_VER_DEL,
	ST_VER_SET_LATEST,
	ST_LIST_CUR,
	ST_LIST_VER,
	ST_LIST_UP,
	ST_UP_INS,
	ST_UP_GET,
	ST_UP_DEL,
	ST_UP_OLD,
	ST_PART_GET,
	ST_PART_PUT,
	ST_PART_LIST,
	ST_PART_DEL_ALL,
	ST__COUNT
};

/* Cache keys a write transaction changed, invalidated after it ends
 * (rc_flush, from wend and conn_put), and the new latest rows it wrote
 * (layout in s3meta_cache.c). */
struct rc_pending {
	uint8_t *buf;
	size_t len, cap;
	unsigned n;
	bool no_rows;
};

struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT];
	struct conn *next;
	struct rc_pending inval;
};

struct ucache_ent;

struct s3meta {
	char *path;
	int64_t min_part_size;
	int max_conns;

	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;
	struct conn *idle;
	int nconns;

	/* Serialises write transactions in this process, so they never meet
	 * SQLITE_BUSY from each other; last_seq is guarded by it. */
	pthread_mutex_t wmu;
	int64_t last_seq;
	struct conn *batch_conn; /* group commits' own connection (under wmu) */

	pthread_rwlock_t users_mu;
	struct ucache_ent **users; /* hash table, 256 chains */

	struct rcache *cache; /* bucket and latest-version rows; NULL = off */
};

/* ---- read cache (s3meta_cache.c; the race rule is explained there) ---- */

struct rcache;
/* Copies a cached value out, under the shard lock. */
typedef void (*rc_copy_fn)(void *arg, const void *val, size_t vlen);
struct rcache *rc_new(size_t max_bytes);
void rc_free(struct rcache *c);
/* Hit: calls copy and returns true. Either way *gen is the shard's
 * generation, to hand to rc_put after reading SQLite on a miss. Take it
 * BEFORE the SQLite read begins. c may be NULL (always a miss). */
bool rc_get(struct rcache *c, const void *key, size_t klen, rc_copy_fn copy, void *arg, uint64_t *gen);
/* Installs a row read from SQLite unless the shard's generation moved
 * since gen was taken (a write may have changed the row since the read
 * began). Returns whether it was installed. */
bool rc_put(struct rcache *c, const void *key, size_t klen, const void *val, size_t vlen, uint64_t gen);
/* Drops the key and moves its shard's generation. After the commit. */
void rc_invalidate(struct rcache *c, const void *key, size_t klen);
size_t rc_count(struct rcache *c);
/* Cache keys: 'o' + bucket id + object key, 'b' + bucket name. Return the
 * length (0 if too long: never cached). out holds 1 + 8 + S3META_KEY_MAX. */
size_t rc_object_key(uint8_t *out, int64_t bucket_id, const char *key, size_t klen);
size_t rc_bucket_key(uint8_t *out, const char *name);
/* Inside a write transaction: the row of this key / bucket changes; its
 * cache entry is invalidated when the transaction ends (rc_flush). Every
 * statement that changes a versions or buckets row notes it. */
void rc_note(struct conn *c, const void *key, size_t klen);
void rc_note_object(struct conn *c, int64_t bucket_id, const char *key, size_t klen);
void rc_note_bucket(struct conn *c, const char *name);
/* Also: `row` is the key's new latest row as this transaction wrote it. It
 * is installed after the commit (so a GET right after a PUT needs no
 * SQLite), unless the transaction changed the key again afterwards. */
void rc_note_row(struct conn *c, const void *key, size_t klen, const void *row, size_t rlen);
/* Invalidates every noted key; then, with install (only wend: after a
 * commit, still holding the write lock, so installs happen in commit
 * order), installs the noted rows. Empties the list. */
void rc_flush(struct s3meta *m, struct conn *c, bool install);

/* Connections. conn_get never fails for lack of a slot (waits); NULL only
 * if SQLite could not open the file. */
struct conn *conn_get(struct s3meta *m);
void conn_put(struct s3meta *m, struct conn *c);
/* The connection's prepared statement (prepared on first use), reset and
 * ready to bind; NULL (logged) if it failed to prepare. */
sqlite3_stmt *stmt(struct conn *c, enum st_id id);
/* Step with logging: SQLITE_ROW, SQLITE_DONE or a (logged) error. */
int step(struct conn *c, sqlite3_stmt *st);
/* Maps a SQLite result code to -S3META_E*. */
int sqlerr(int rc);
/* Runs a statement that returns no rows; 0 or -S3META_E*. */
int exec_done(struct conn *c, sqlite3_stmt *st);

/* Write transactions: wbegin takes the write mutex and BEGIN IMMEDIATE;
 * wend commits when rc == 0, else rolls back, drops the mutex, returns rc
 * (or the commit's error). Inside a group commit (s3meta_batch_begin on
 * this thread; conn_get then hands out the group's connection) they open
 * and release a savepoint instead, and rbegin/rend do nothing. */
int wbegin(struct s3meta *m, struct conn *c);
int wend(struct s3meta *m, struct conn *c, int rc);
/* Read transactions: one consistent snapshot for a multi-statement read. */
int rbegin(struct conn *c);
void rend(struct conn *c);
/* A fresh, strictly increasing id (microseconds since the epoch); call
 * inside a write transaction. */
int64_t next_seq(struct s3meta *m);

/* Binding helpers; the bound memory must outlive the step (SQLITE_STATIC). */
void bind_str(sqlite3_stmt *st, int i, const char *s);
void bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n);
/* Column as a string copied into the arena; NULL for SQL NULL. */
struct s3meta_arena;
const char *col_str(struct s3meta_arena *a, sqlite3_stmt *st, int i);

/* Arena: bump allocation in chunks, freed together. */
void *arena_alloc(struct s3meta_arena *a, size_t n);
char *arena_strndup(struct s3meta_arena *a, const char *s, size_t n);
void arena_free(struct s3meta_arena *a);

/* Appends a copy of a locator to `freed` (no-op if len == 0 or !freed). */
void locs_add(struct s3meta_locs *l, const void *p, size_t len);

/* Moves `staged` locators to `freed` when rc == 0 (the transaction
 * committed), and frees `staged` either way. */
void locs_commit(struct s3meta_locs *staged, struct s3meta_locs *freed, int rc);

/* Bucket row lookup inside a transaction. */
struct bkt {
	int64_t id;
	enum s3meta_versioning versioning;
};
int bkt_lookup(struct conn *c, const char *name, struct bkt *b);
/* Outside any transaction: the bucket row through the read cache (b and
 * out may be NULL). */
int bkt_get_cached(struct s3meta *m, const char *name, struct bkt *b, struct s3meta_bucket *out);

/* Key checks: 0, KeyTooLongError or InvalidArgument (empty, bad UTF-8). */
int key_check(const char *key, size_t *len);
bool utf8_valid(const uint8_t *p, size_t n);

/* Version ids: "null" or 16 hex digits of the id. */
void vid_format(char *out, int64_t seq, bool is_null);
/* 1: "null"; 0: *seq parsed; -1: malformed. */
int vid_parse(const char *s, int64_t *seq);

/* base64 (standard alphabet, padded). dec returns the length or -1. */
size_t b64_enc(char *out, const uint8_t *in, size_t n);
long b64_dec(uint8_t *out, size_t cap, const char *in, size_t n);

/* The usage counters' deltas a transaction accumulates for one bucket. */
struct usage_delta {
	int64_t objects, bytes, versions, version_bytes;
};
int usage_apply(struct conn *c, int64_t bucket_id, const struct usage_delta *d);

/* Shared by put and complete: adds a version of key following the
 * bucket's versioning, inside the caller's write transaction. */
struct ver_new {
	const struct s3meta_put *p;
	int parts; /* parts_count */
	const uint8_t *locator;
	size_t locator_len;
};
int ver_put(struct s3meta *m, struct conn *c, const struct bkt *b, const char *key, size_t klen,
	    const struct ver_new *vn, char *version_id, struct s3meta_locs *freed);

#endif
