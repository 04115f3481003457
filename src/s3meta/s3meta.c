/* s3meta.c - the metadata service's core: database and connection pool,
 * error table, users, buckets and the helpers the other s3meta files use.
 * Objects are in s3meta_obj.c, listings in s3meta_list.c, multipart
 * uploads in s3meta_mpu.c. */
#include "core/platform.h"
#include "core/base64.h"
#include "s3meta/s3meta_int.h"

#include "core/log.h"
#include "core/util.h"
#include "core/wbuf.h"

#include <time.h>

/* ---- schema ------------------------------------------------------------
 *
 * versions holds every object version and delete marker. Its rowid is the
 * version's sequence number (microseconds since the epoch, strictly
 * increasing), which orders versions by age and is the version id; so the
 * newest version of a key is the first row of versions_key for (bucket,
 * name). `latest` marks that row, redundantly, so that versions_cur can be
 * a partial index of exactly what ListObjects shows: latest versions that
 * are not delete markers, keyed (bucket_id, name) and covering every column
 * a listing prints (latest and dm too: SQLite 3.40 does not count a
 * partial index's own WHERE columns as covered). A listing page is then one ordered index range read,
 * with no table lookups; skipping a common prefix is one index seek.
 *
 * Names are bound as BLOBs everywhere, so they compare with memcmp: the
 * UTF-8 binary order S3 lists in. (A TEXT and a BLOB never compare equal in
 * SQLite, which is why no statement may bind a name as TEXT.) */
static const char *const schema_sql =
	"CREATE TABLE IF NOT EXISTS users("
	" access_key TEXT PRIMARY KEY, secret TEXT NOT NULL, display_name TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS buckets("
	" id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, owner TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL, versioning INTEGER NOT NULL DEFAULT 0,"
	" objects INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,"
	" versions INTEGER NOT NULL DEFAULT 0, version_bytes INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS buckets_owner ON buckets(owner, name);"
	"CREATE TABLE IF NOT EXISTS versions("
	" id INTEGER PRIMARY KEY, bucket_id INTEGER NOT NULL, name BLOB NOT NULL,"
	" is_null INTEGER NOT NULL, latest INTEGER NOT NULL, dm INTEGER NOT NULL,"
	" size INTEGER NOT NULL, mtime_ms INTEGER NOT NULL, etag TEXT, owner TEXT,"
	" ctype TEXT, cache_control TEXT, disposition TEXT, encoding TEXT, language TEXT,"
	" expires TEXT, umeta BLOB, cksum_algo TEXT, cksum_value TEXT,"
	" parts INTEGER NOT NULL DEFAULT 0, locator BLOB);"
	"CREATE UNIQUE INDEX IF NOT EXISTS versions_key ON versions(bucket_id, name, id DESC);"
	"CREATE INDEX IF NOT EXISTS versions_cur ON versions(bucket_id, name, size, mtime_ms, etag,"
	" owner, cksum_algo, latest, dm) WHERE latest = 1 AND dm = 0;"
	"CREATE TABLE IF NOT EXISTS uploads("
	" id INTEGER PRIMARY KEY, upload_id TEXT NOT NULL UNIQUE, bucket_id INTEGER NOT NULL,"
	" name BLOB NOT NULL, initiated_ms INTEGER NOT NULL, owner TEXT,"
	" ctype TEXT, cache_control TEXT, disposition TEXT, encoding TEXT, language TEXT,"
	" expires TEXT, umeta BLOB, cksum_algo TEXT);"
	"CREATE INDEX IF NOT EXISTS uploads_key ON uploads(bucket_id, name, upload_id);"
	"CREATE INDEX IF NOT EXISTS uploads_age ON uploads(initiated_ms);"
	"CREATE TABLE IF NOT EXISTS parts("
	" upload INTEGER NOT NULL, part_number INTEGER NOT NULL, size INTEGER NOT NULL,"
	" etag TEXT NOT NULL, cksum_value TEXT, mtime_ms INTEGER NOT NULL, locator BLOB,"
	" PRIMARY KEY(upload, part_number)) WITHOUT ROWID;"
	"PRAGMA user_version = 1;";

#define VER_COLS                                                                                  \
	"id, is_null, latest, dm, size, mtime_ms, etag, owner, ctype, cache_control, disposition," \
	" encoding, language, expires, umeta, cksum_algo, cksum_value, parts, locator"

static const char *const st_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN",
	[ST_BEGIN_IMM] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT one",
	[ST_RELEASE] = "RELEASE one",
	[ST_ROLLBACK_TO] = "ROLLBACK TO one",
	[ST_USER_INS] = "INSERT INTO users VALUES(?1, ?2, ?3, ?4)",
	[ST_USER_UPD] = "UPDATE users SET secret = ?2, display_name = ?3 WHERE access_key = ?1",
	[ST_USER_DEL] = "DELETE FROM users WHERE access_key = ?1",
	[ST_USER_ALL] = "SELECT access_key, secret, display_name, created_ms FROM users ORDER BY access_key",
	[ST_USER_HAS_BUCKETS] = "SELECT 1 FROM buckets WHERE owner = ?1 LIMIT 1",
	[ST_BKT_GET] = "SELECT id, owner, created_ms, versioning FROM buckets WHERE name = ?1",
	[ST_BKT_INS] = "INSERT INTO buckets(name, owner, created_ms) VALUES(?1, ?2, ?3)",
	[ST_BKT_LIST_OWNER] = "SELECT name, owner, created_ms, versioning FROM buckets"
			      " WHERE owner = ?1 ORDER BY name",
	[ST_BKT_LIST_ALL] = "SELECT name, owner, created_ms, versioning FROM buckets ORDER BY name",
	[ST_BKT_DEL] = "DELETE FROM buckets WHERE id = ?1",
	[ST_BKT_HAS_VERSIONS] = "SELECT 1 FROM versions WHERE bucket_id = ?1 LIMIT 1",
	[ST_BKT_HAS_UPLOADS] = "SELECT 1 FROM uploads WHERE bucket_id = ?1 LIMIT 1",
	[ST_BKT_SET_VERS] = "UPDATE buckets SET versioning = ?2 WHERE id = ?1",
	[ST_BKT_USAGE] = "SELECT objects, bytes, versions, version_bytes FROM buckets WHERE name = ?1",
	[ST_BKT_ADJ] = "UPDATE buckets SET objects = objects + ?2, bytes = bytes + ?3,"
		       " versions = versions + ?4, version_bytes = version_bytes + ?5 WHERE id = ?1",
	[ST_VER_LATEST] = "SELECT " VER_COLS " FROM versions WHERE bucket_id = ?1 AND name = ?2"
			  " ORDER BY id DESC LIMIT 1",
	[ST_VER_BY_ID] = "SELECT " VER_COLS " FROM versions WHERE bucket_id = ?1 AND name = ?2"
			 " AND id = ?3 AND is_null = 0",
	[ST_VER_NULL] = "SELECT " VER_COLS " FROM versions WHERE bucket_id = ?1 AND name = ?2"
			" AND is_null = 1",
	[ST_VER_INS] = "INSERT INTO versions(id, bucket_id, name, is_null, latest, dm, size, mtime_ms,"
		       " etag, owner, ctype, cache_control, disposition, encoding, language, expires,"
		       " umeta, cksum_algo, cksum_value, parts, locator) VALUES(?1, ?2, ?3, ?4, ?5, ?6,"
		       " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
	[ST_VER_DEL] = "DELETE FROM versions WHERE id = ?1",
	[ST_VER_SET_LATEST] = "UPDATE versions SET latest = ?2 WHERE id = ?1",
	[ST_LIST_CUR] = "SELECT name, size, mtime_ms, etag, owner, cksum_algo FROM versions"
			" INDEXED BY versions_cur"
			" WHERE bucket_id = ?1 AND latest = 1 AND dm = 0 AND name >= ?2 ORDER BY name",
	[ST_LIST_VER] = "SELECT name, id, is_null, latest, dm, size, mtime_ms, etag, owner, cksum_algo"
			" FROM versions INDEXED BY versions_key WHERE bucket_id = ?1 AND name >= ?2"
			" ORDER BY name, id DESC",
	[ST_LIST_UP] = "SELECT name, upload_id, initiated_ms, owner FROM uploads INDEXED BY uploads_key"
		       " WHERE bucket_id = ?1 AND name >= ?2 ORDER BY name, upload_id",
	[ST_UP_INS] = "INSERT INTO uploads(id, upload_id, bucket_id, name, initiated_ms, owner, ctype,"
		      " cache_control, disposition, encoding, language, expires, umeta, cksum_algo)"
		      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
	[ST_UP_GET] = "SELECT id, bucket_id, name, initiated_ms, owner, ctype, cache_control, disposition,"
		      " encoding, language, expires, umeta, cksum_algo FROM uploads WHERE upload_id = ?1",
	[ST_UP_DEL] = "DELETE FROM uploads WHERE id = ?1",
	[ST_UP_OLD] = "SELECT b.name, u.name, u.upload_id, u.initiated_ms, u.owner FROM uploads u"
		      " JOIN buckets b ON b.id = u.bucket_id WHERE u.initiated_ms < ?1"
		      " ORDER BY u.initiated_ms LIMIT ?2",
	[ST_PART_GET] = "SELECT size, etag, cksum_value, mtime_ms, locator FROM parts"
			" WHERE upload = ?1 AND part_number = ?2",
	[ST_PART_PUT] = "INSERT OR REPLACE INTO parts VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_PART_LIST] = "SELECT part_number, size, etag, cksum_value, mtime_ms, locator FROM parts"
			 " WHERE upload = ?1 AND part_number > ?2 ORDER BY part_number",
	[ST_PART_DEL_ALL] = "DELETE FROM parts WHERE upload = ?1",
};

/* ---- errors ------------------------------------------------------------- */

static const struct s3meta_errinfo err_table[S3META_ELAST - S3META_EBASE] = {
	[0] = { "OK", 200, "OK" },
	[S3META_EINTERNAL - S3META_EBASE] = { "InternalError", 500,
					      "We encountered an internal error. Please try again." },
	[S3META_ESLOWDOWN - S3META_EBASE] = { "SlowDown", 503, "Please reduce your request rate." },
	[S3META_ENOSUCHBUCKET - S3META_EBASE] = { "NoSuchBucket", 404,
						  "The specified bucket does not exist." },
	[S3META_ENOSUCHKEY - S3META_EBASE] = { "NoSuchKey", 404, "The specified key does not exist." },
	[S3META_ENOSUCHVERSION - S3META_EBASE] = { "NoSuchVersion", 404,
						   "The specified version does not exist." },
	[S3META_ENOSUCHUPLOAD - S3META_EBASE] = {
		"NoSuchUpload", 404,
		"The specified upload does not exist. The upload ID may be invalid, or the upload may "
		"have been aborted or completed." },
	[S3META_EBUCKETNOTEMPTY - S3META_EBASE] = { "BucketNotEmpty", 409,
						    "The bucket you tried to delete is not empty." },
	[S3META_EBUCKETEXISTS - S3META_EBASE] = {
		"BucketAlreadyExists", 409,
		"The requested bucket name is not available. The bucket namespace is shared by all "
		"users of the system. Please select a different name and try again." },
	[S3META_EBUCKETOWNED - S3META_EBASE] = {
		"BucketAlreadyOwnedByYou", 409,
		"Your previous request to create the named bucket succeeded and you already own it." },
	[S3META_EINVALIDBUCKETNAME - S3META_EBASE] = { "InvalidBucketName", 400,
						       "The specified bucket is not valid." },
	[S3META_EINVALIDPART - S3META_EBASE] = {
		"InvalidPart", 400,
		"One or more of the specified parts could not be found. The part may not have been "
		"uploaded, or the specified entity tag may not match the part's entity tag." },
	[S3META_EINVALIDPARTORDER - S3META_EBASE] = {
		"InvalidPartOrder", 400,
		"The list of parts was not in ascending order. Parts must be ordered by part number." },
	[S3META_EENTITYTOOSMALL - S3META_EBASE] = {
		"EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size." },
	[S3META_EKEYTOOLONG - S3META_EBASE] = { "KeyTooLongError", 400, "Your key is too long." },
	[S3META_EINVALIDARGUMENT - S3META_EBASE] = { "InvalidArgument", 400, "Invalid Argument" },
	[S3META_EINVALIDREQUEST - S3META_EBASE] = { "InvalidRequest", 400, "Invalid Request" },
	[S3META_EMALFORMEDXML - S3META_EBASE] = {
		"MalformedXML", 400,
		"The XML you provided was not well-formed or did not validate against our published "
		"schema." },
	[S3META_EMETHODNOTALLOWED - S3META_EBASE] = {
		"MethodNotAllowed", 405, "The specified method is not allowed against this resource." },
	[S3META_EMETADATATOOLARGE - S3META_EBASE] = {
		"MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size." },
	[S3META_EINVALIDACCESSKEYID - S3META_EBASE] = {
		"InvalidAccessKeyId", 403,
		"The AWS Access Key Id you provided does not exist in our records." },
	[S3META_EUSEREXISTS - S3META_EBASE] = { "EntityAlreadyExists", 409, "The user already exists." },
	[S3META_ENOSUCHUSER - S3META_EBASE] = { "NoSuchEntity", 404, "The user does not exist." },
	[S3META_EUSERINUSE - S3META_EBASE] = { "DeleteConflict", 409,
					       "The user still owns buckets; delete them first." },
};

const struct s3meta_errinfo *s3meta_errinfo(int err)
{
	if (err == 0)
		return &err_table[0];
	int e = -err;
	if (e > S3META_EBASE && e < S3META_ELAST && err_table[e - S3META_EBASE].code)
		return &err_table[e - S3META_EBASE];
	return &err_table[S3META_EINTERNAL - S3META_EBASE];
}

int sqlerr(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -S3META_ESLOWDOWN;
	default:
		return -S3META_EINTERNAL;
	}
}

/* ---- connections ---------------------------------------------------------- */

static struct conn *conn_open(struct s3meta *m)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	int rc = sqlite3_open_v2(m->path, &c->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		log_error("s3meta", "open %s: %s", m->path, c->db ? sqlite3_errmsg(c->db) : "no memory");
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	/* Another process (an admin command) may hold the write lock briefly;
	 * writers inside this process never wait on each other here (wmu). */
	sqlite3_busy_timeout(c->db, 5000);
	char *msg = NULL;
	/* wal_autocheckpoint: checkpoints are s3meta_checkpoint's, from a
	 * background thread; SQLite's automatic one would run inside the
	 * commit that crosses its threshold and stall it for the fsyncs, so
	 * it stays only as a backstop at 64 MiB of WAL. */
	rc = sqlite3_exec(c->db,
			  "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768;"
			  " PRAGMA mmap_size = 268435456; PRAGMA temp_store = MEMORY;"
			  " PRAGMA wal_autocheckpoint = 16384;",
			  NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		log_error("s3meta", "pragmas: %s", msg ? msg : "?");
		sqlite3_free(msg);
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	return c;
}

static void conn_close(struct conn *c)
{
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c->inval.buf);
	free(c);
}

/* The group commit this thread has open (s3meta_batch_begin): every call on
 * `m` from this thread then uses its connection, and write transactions
 * become savepoints in its transaction. */
#define BATCH_BUCKETS 8

/* A group's bucket rows (bkt_lookup) and, when optimistic, its buckets'
 * usage deltas, written once at the end (usage_apply): per call they were
 * a fifth of a small PUT's metadata work. */
struct batch_bkt {
	char name[S3META_BUCKET_SIZE];
	struct bkt b;
};

struct batch_usage {
	int64_t bucket_id;
	struct usage_delta d;
};

static _Thread_local struct {
	struct s3meta *m;
	struct conn *c;
	bool isolated;      /* calls in savepoints (else optimistic) */
	bool broken;        /* SQLite rolled the transaction back: the group is lost */
	bool spoiled;       /* optimistic: a call failed after changing rows */
	int64_t changes0;   /* sqlite3_total_changes64 when the current call began */
	struct batch_bkt bkts[BATCH_BUCKETS];
	int nbkts;
	struct batch_usage usage[BATCH_BUCKETS], usage0[BATCH_BUCKETS]; /* usage0: at the call's start */
	int nusage, nusage0;
} tl_batch;

static bool in_batch(const struct conn *c)
{
	return c && c == tl_batch.c;
}

struct conn *conn_get(struct s3meta *m)
{
	if (tl_batch.m == m)
		return tl_batch.c;
	pthread_mutex_lock(&m->pool_mu);
	for (;;) {
		struct conn *c = m->idle;
		if (c) {
			m->idle = c->next;
			pthread_mutex_unlock(&m->pool_mu);
			c->next = NULL;
			return c;
		}
		if (m->nconns < m->max_conns)
			break;
		pthread_cond_wait(&m->pool_cv, &m->pool_mu);
	}
	m->nconns++;
	pthread_mutex_unlock(&m->pool_mu);
	struct conn *c = conn_open(m);
	if (!c) {
		pthread_mutex_lock(&m->pool_mu);
		m->nconns--;
		pthread_cond_signal(&m->pool_cv);
		pthread_mutex_unlock(&m->pool_mu);
	}
	return c;
}

void conn_put(struct s3meta *m, struct conn *c)
{
	if (!c || in_batch(c))
		return;
	/* Normally wend flushed already; this catches any write path that
	 * committed some other way. */
	if (c->inval.len)
		rc_flush(m, c, false);
	pthread_mutex_lock(&m->pool_mu);
	c->next = m->idle;
	m->idle = c;
	pthread_cond_signal(&m->pool_cv);
	pthread_mutex_unlock(&m->pool_mu);
}

sqlite3_stmt *stmt(struct conn *c, enum st_id id)
{
	sqlite3_stmt *st = c->st[id];
	if (SILT_LIKELY(st != NULL)) {
		/* Bindings outlive a reset: clear them, so that a parameter a
		 * caller leaves unbound is NULL, not the previous call's value
		 * (whose SQLITE_STATIC memory is gone). */
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return st;
	}
	int rc = sqlite3_prepare_v3(c->db, st_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK) {
		log_error("s3meta", "prepare %d: %s", (int)id, sqlite3_errmsg(c->db));
		return NULL;
	}
	c->st[id] = st;
	return st;
}

int step(struct conn *c, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		log_error("s3meta", "step: %s (%s)", sqlite3_errmsg(c->db), sqlite3_sql(st));
	return rc;
}

int exec_done(struct conn *c, sqlite3_stmt *st)
{
	if (!st)
		return -S3META_EINTERNAL;
	int rc = step(c, st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlerr(rc);
}

int wbegin(struct s3meta *m, struct conn *c)
{
	if (in_batch(c)) {
		/* A call inside a group commit. Isolated: its own savepoint, so
		 * that its failure undoes only its own changes. Optimistic: no
		 * savepoint (which costs a copy of every page the call touches);
		 * wend notes whether a failed call had changed anything. */
		if (tl_batch.broken || tl_batch.spoiled || sqlite3_get_autocommit(c->db))
			return -S3META_EINTERNAL;
		tl_batch.changes0 = sqlite3_total_changes64(c->db);
		memcpy(tl_batch.usage0, tl_batch.usage, sizeof(tl_batch.usage));
		tl_batch.nusage0 = tl_batch.nusage;
		return tl_batch.isolated ? exec_done(c, stmt(c, ST_SAVEPOINT)) : 0;
	}
	pthread_mutex_lock(&m->wmu);
	int rc = exec_done(c, stmt(c, ST_BEGIN_IMM));
	if (rc)
		pthread_mutex_unlock(&m->wmu);
	return rc;
}

int wend(struct s3meta *m, struct conn *c, int rc)
{
	if (in_batch(c)) {
		if (!tl_batch.isolated) {
			/* Every error S3 names is found before a call writes; one
			 * that struck after (I/O, disk full) leaves changes the
			 * group must not commit. */
			if (rc && sqlite3_total_changes64(c->db) != tl_batch.changes0)
				tl_batch.spoiled = true;
			if (rc) {
				memcpy(tl_batch.usage, tl_batch.usage0, sizeof(tl_batch.usage));
				tl_batch.nusage = tl_batch.nusage0;
			}
		} else {
			if (rc == 0)
				rc = exec_done(c, stmt(c, ST_RELEASE));
			if (rc && !sqlite3_get_autocommit(c->db)) {
				/* ROLLBACK TO leaves the savepoint open: release it. */
				(void)exec_done(c, stmt(c, ST_ROLLBACK_TO));
				(void)exec_done(c, stmt(c, ST_RELEASE));
			}
		}
		if (sqlite3_get_autocommit(c->db)) {
			tl_batch.broken = true;
			if (rc == 0)
				rc = -S3META_EINTERNAL;
		}
		/* A failed call's noted rows may have been undone (a rolled
		 * back savepoint): the group's commit then only invalidates. */
		if (rc)
			c->inval.no_rows = true;
		return rc;
	}
	if (rc == 0) {
		rc = exec_done(c, stmt(c, ST_COMMIT));
		if (rc)
			(void)exec_done(c, stmt(c, ST_ROLLBACK));
	} else {
		(void)exec_done(c, stmt(c, ST_ROLLBACK));
	}
	/* After the commit (or rollback: then only invalidate, harmlessly). */
	rc_flush(m, c, rc == 0);
	pthread_mutex_unlock(&m->wmu);
	return rc;
}

int rbegin(struct conn *c)
{
	/* Inside a group commit a read sees the group's own changes. */
	return in_batch(c) ? 0 : exec_done(c, stmt(c, ST_BEGIN));
}

void rend(struct conn *c)
{
	if (!in_batch(c))
		(void)exec_done(c, stmt(c, ST_COMMIT));
}

static int usage_write(struct conn *c, int64_t bucket_id, const struct usage_delta *d);

/* Bucket rows change only through the bucket calls, which drop what a group
 * on this thread remembers (none runs in the committer's groups). */
static void batch_forget_buckets(void)
{
	tl_batch.nbkts = 0;
}

/* Groups run on a connection of their own, kept from group to group: as
 * the one that writes most, its page cache then stays valid (a pooled
 * connection would find the database changed by others and start cold). */
int s3meta_batch_begin(struct s3meta *m, bool isolated)
{
	if (tl_batch.m)
		return -S3META_EINTERNAL; /* one group at a time per thread */
	pthread_mutex_lock(&m->wmu);
	if (!m->batch_conn && !(m->batch_conn = conn_open(m))) {
		pthread_mutex_unlock(&m->wmu);
		return -S3META_EINTERNAL;
	}
	struct conn *c = m->batch_conn;
	int rc = exec_done(c, stmt(c, ST_BEGIN_IMM));
	if (rc) {
		pthread_mutex_unlock(&m->wmu);
		return rc;
	}
	tl_batch.m = m;
	tl_batch.c = c;
	tl_batch.isolated = isolated;
	tl_batch.broken = false;
	tl_batch.spoiled = false;
	tl_batch.nbkts = 0;
	tl_batch.nusage = 0;
	return 0;
}

int s3meta_batch_end(struct s3meta *m)
{
	if (tl_batch.m != m)
		return -S3META_EINTERNAL;
	struct conn *c = tl_batch.c;
	int rc = tl_batch.broken || sqlite3_get_autocommit(c->db) ? -S3META_EINTERNAL
		 : tl_batch.spoiled					 ? -EAGAIN
									 : 0;
	for (int i = 0; i < tl_batch.nusage && rc == 0; i++)
		rc = usage_write(c, tl_batch.usage[i].bucket_id, &tl_batch.usage[i].d);
	tl_batch.m = NULL;
	tl_batch.c = NULL;
	tl_batch.broken = false;
	tl_batch.spoiled = false;
	/* The same as wend outside a group. */
	return wend(m, c, rc);
}

int64_t next_seq(struct s3meta *m)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	m->last_seq = us > m->last_seq ? us : m->last_seq + 1;
	return m->last_seq;
}

void bind_str(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

void bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	/* A zero-length blob must stay a blob (not NULL): names compare. */
	sqlite3_bind_blob64(st, i, n ? p : "", n, SQLITE_STATIC);
}

const char *col_str(struct s3meta_arena *a, sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	const char *s = (const char *)sqlite3_column_text(st, i);
	return arena_strndup(a, s ? s : "", (size_t)sqlite3_column_bytes(st, i));
}

/* ---- arena ------------------------------------------------------------------ */

struct s3meta_achunk {
	struct s3meta_achunk *next;
	size_t used, cap;
	max_align_t data[];
};

/* Every GET and HEAD fills one object into a fresh arena, so each thread
 * keeps one spare first chunk (ARENA_FIRST bytes) that arena_free hands back
 * instead of a malloc and free per request. Released at thread exit. */
#define ARENA_FIRST 2048
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static pthread_key_t spare_key;

static void spare_init(void)
{
	if (pthread_key_create(&spare_key, free) != 0)
		abort();
}

static struct s3meta_achunk *chunk_new(size_t cap)
{
	struct s3meta_achunk *ch = NULL;
	if (cap == ARENA_FIRST) {
		pthread_once(&spare_once, spare_init);
		ch = pthread_getspecific(spare_key);
		if (ch && pthread_setspecific(spare_key, NULL) != 0)
			abort();
	}
	if (!ch)
		ch = xmalloc(sizeof(*ch) + cap);
	ch->used = 0;
	ch->cap = cap;
	return ch;
}

static void chunk_free(struct s3meta_achunk *ch)
{
	if (ch->cap == ARENA_FIRST) {
		pthread_once(&spare_once, spare_init);
		if (!pthread_getspecific(spare_key)) {
			if (pthread_setspecific(spare_key, ch) != 0)
				abort();
			return;
		}
	}
	free(ch);
}

void *arena_alloc(struct s3meta_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct s3meta_achunk *ch = a->head;
	if (!ch || ch->cap - ch->used < n) {
		/* A single-row result (a GET's object) needs a few hundred
		 * bytes: start small, then grow in big chunks for listings. */
		size_t min = ch ? 32768 : ARENA_FIRST;
		size_t cap = n > min ? n : min;
		ch = chunk_new(cap);
		ch->next = a->head;
		a->head = ch;
	}
	void *p = (char *)ch->data + ch->used;
	ch->used += n;
	return p;
}

char *arena_strndup(struct s3meta_arena *a, const char *s, size_t n)
{
	char *d = arena_alloc(a, n + 1);
	if (n)
		memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

void arena_free(struct s3meta_arena *a)
{
	struct s3meta_achunk *ch = a->head;
	while (ch) {
		struct s3meta_achunk *next = ch->next;
		chunk_free(ch);
		ch = next;
	}
	a->head = NULL;
}

/* ---- small helpers ---------------------------------------------------------- */

void locs_add(struct s3meta_locs *l, const void *p, size_t len)
{
	if (!l || !len)
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n].p = xmalloc(len);
	memcpy(l->v[l->n].p, p, len);
	l->v[l->n].len = len;
	l->n++;
}

void s3meta_locs_destroy(struct s3meta_locs *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].p);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

bool utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		uint32_t cp, min;
		if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

int key_check(const char *key, size_t *len)
{
	if (!key || !*key)
		return -S3META_EINVALIDARGUMENT;
	size_t n = strnlen(key, S3META_KEY_MAX + 1);
	if (n > S3META_KEY_MAX)
		return -S3META_EKEYTOOLONG;
	if (!utf8_valid((const uint8_t *)key, n))
		return -S3META_EINVALIDARGUMENT;
	*len = n;
	return 0;
}

void vid_format(char *out, int64_t seq, bool is_null)
{
	if (is_null)
		memcpy(out, "null", 5);
	else
		snprintf(out, S3META_VID_SIZE, "%016" PRIx64, (uint64_t)seq);
}

int vid_parse(const char *s, int64_t *seq)
{
	if (!strcmp(s, "null"))
		return 1;
	if (strlen(s) != 16)
		return -1;
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		char c = s[i];
		int d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	if (v > INT64_MAX)
		return -1;
	*seq = (int64_t)v;
	return 0;
}

size_t b64_enc(char *out, const uint8_t *in, size_t n)
{
	return b64_encode(in, n, out);
}

long b64_dec(uint8_t *out, size_t cap, const char *in, size_t n)
{
	size_t len;
	return b64_decode(in, n, out, cap, &len) == 0 ? (long)len : -1;
}

/* ---- user metadata and multipart locators -------------------------------------- */

void s3meta_umeta_add(struct wbuf *w, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);
	wbuf_uvarint(w, n);
	wbuf_put(w, name, n);
	wbuf_uvarint(w, v);
	wbuf_put(w, value, v);
}

static bool uv_read(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return false;
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

bool s3meta_umeta_next(const uint8_t *blob, size_t len, size_t *pos, const char **name, size_t *nlen,
		       const char **value, size_t *vlen)
{
	if (*pos >= len)
		return false;
	const uint8_t *p = blob + *pos, *end = blob + len;
	uint64_t a, b;
	if (!uv_read(&p, end, &a) || a > (uint64_t)(end - p))
		return false;
	*name = (const char *)p;
	*nlen = (size_t)a;
	p += a;
	if (!uv_read(&p, end, &b) || b > (uint64_t)(end - p))
		return false;
	*value = (const char *)p;
	*vlen = (size_t)b;
	p += b;
	*pos = (size_t)(p - blob);
	return true;
}

bool s3meta_mploc_init(struct s3meta_mploc_iter *it, const uint8_t *loc, size_t len, uint64_t *nparts)
{
	memset(it, 0, sizeof(*it));
	if (len < 2 || loc[0] != 'M')
		return false;
	it->p = loc + 1;
	it->end = loc + len;
	if (!uv_read(&it->p, it->end, &it->left) || it->left > S3META_PART_MAX) {
		it->err = true;
		return false;
	}
	if (nparts)
		*nparts = it->left;
	return true;
}

bool s3meta_mploc_next(struct s3meta_mploc_iter *it, int64_t *size, const uint8_t **loc, size_t *len)
{
	if (it->err || !it->left)
		return false;
	uint64_t sz, n;
	if (!uv_read(&it->p, it->end, &sz) || !uv_read(&it->p, it->end, &n) ||
	    n > (uint64_t)(it->end - it->p) || sz > INT64_MAX) {
		it->err = true;
		return false;
	}
	*size = (int64_t)sz;
	*loc = it->p;
	*len = (size_t)n;
	it->p += n;
	it->left--;
	return true;
}

/* ---- users ------------------------------------------------------------------ */

/* The secret lookup runs on every request, so users live in a small
 * in-memory hash table (rwlock: many readers, rare writers). */
struct ucache_ent {
	struct ucache_ent *next;
	char access_key[S3META_ACCESS_KEY_MAX + 1];
	char secret[S3META_SECRET_MAX + 1];
	char display_name[S3META_DISPLAY_MAX + 1];
	int64_t created_ms;
};

#define UCACHE_BUCKETS 256

static unsigned uhash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h % UCACHE_BUCKETS;
}

static struct ucache_ent **ufind(struct s3meta *m, const char *ak)
{
	struct ucache_ent **pp = &m->users[uhash(ak)];
	while (*pp && strcmp((*pp)->access_key, ak))
		pp = &(*pp)->next;
	return pp;
}

static void ucache_clear(struct s3meta *m)
{
	for (int i = 0; i < UCACHE_BUCKETS; i++) {
		struct ucache_ent *e = m->users[i];
		while (e) {
			struct ucache_ent *n = e->next;
			free(e);
			e = n;
		}
		m->users[i] = NULL;
	}
}

static void ucache_set(struct s3meta *m, const char *ak, const char *secret, const char *display,
		       int64_t created_ms)
{
	struct ucache_ent **pp = ufind(m, ak);
	struct ucache_ent *e = *pp;
	if (!e) {
		e = xcalloc(1, sizeof(*e));
		snprintf(e->access_key, sizeof(e->access_key), "%s", ak);
		e->created_ms = created_ms;
		*pp = e;
	}
	snprintf(e->secret, sizeof(e->secret), "%s", secret);
	snprintf(e->display_name, sizeof(e->display_name), "%s", display);
}

int s3meta_users_reload(struct s3meta *m)
{
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	sqlite3_stmt *st = stmt(c, ST_USER_ALL);
	int rc = st ? 0 : -S3META_EINTERNAL;
	pthread_rwlock_wrlock(&m->users_mu);
	ucache_clear(m);
	while (st && (rc = step(c, st)) == SQLITE_ROW) {
		ucache_set(m, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
			   (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3));
	}
	pthread_rwlock_unlock(&m->users_mu);
	if (st) {
		rc = sqlerr(rc);
		sqlite3_reset(st);
	}
	conn_put(m, c);
	return rc;
}

static bool access_key_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 3 || n > S3META_ACCESS_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      strchr("_+=,.@-", ch)))
			return false;
	}
	return true;
}

static bool secret_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 8 || n > S3META_SECRET_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return true;
}

static int user_write(struct s3meta *m, const char *ak, const char *secret, const char *display,
		      bool update_ok)
{
	if (!display)
		display = ak;
	if (!access_key_ok(ak) || !secret_ok(secret) || strlen(display) > S3META_DISPLAY_MAX ||
	    !utf8_valid((const uint8_t *)display, strlen(display)))
		return -S3META_EINVALIDARGUMENT;
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	int64_t created = now_ms();
	int rc = wbegin(m, c);
	if (rc) {
		conn_put(m, c);
		return rc;
	}
	sqlite3_stmt *st = stmt(c, ST_USER_UPD);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	bind_str(st, 1, ak);
	bind_str(st, 2, secret);
	bind_str(st, 3, display);
	if ((rc = exec_done(c, st)))
		goto out;
	if (sqlite3_changes(c->db) > 0) {
		if (!update_ok)
			rc = -S3META_EUSEREXISTS;
		goto out;
	}
	st = stmt(c, ST_USER_INS);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	bind_str(st, 1, ak);
	bind_str(st, 2, secret);
	bind_str(st, 3, display);
	sqlite3_bind_int64(st, 4, created);
	rc = exec_done(c, st);
out:
	rc = wend(m, c, rc);
	if (rc == 0) {
		pthread_rwlock_wrlock(&m->users_mu);
		ucache_set(m, ak, secret, display, created);
		pthread_rwlock_unlock(&m->users_mu);
	}
	conn_put(m, c);
	return rc;
}

int s3meta_user_create(struct s3meta *m, const char *access_key, const char *secret,
		       const char *display_name)
{
	return user_write(m, access_key, secret, display_name, false);
}

int s3meta_user_ensure(struct s3meta *m, const char *access_key, const char *secret,
		       const char *display_name)
{
	return user_write(m, access_key, secret, display_name, true);
}

int s3meta_user_secret(struct s3meta *m, const char *access_key, char *secret)
{
	int rc = -S3META_EINVALIDACCESSKEYID;
	pthread_rwlock_rdlock(&m->users_mu);
	struct ucache_ent *e = *ufind(m, access_key);
	if (e) {
		memcpy(secret, e->secret, strlen(e->secret) + 1);
		rc = 0;
	}
	pthread_rwlock_unlock(&m->users_mu);
	return rc;
}

int s3meta_user_display_name(struct s3meta *m, const char *access_key, char *name)
{
	int rc = -S3META_ENOSUCHUSER;
	pthread_rwlock_rdlock(&m->users_mu);
	struct ucache_ent *e = *ufind(m, access_key);
	if (e) {
		memcpy(name, e->display_name, strlen(e->display_name) + 1);
		rc = 0;
	}
	pthread_rwlock_unlock(&m->users_mu);
	return rc;
}

static int user_cmp(const void *a, const void *b)
{
	return strcmp(((const struct s3meta_user *)a)->access_key, ((const struct s3meta_user *)b)->access_key);
}

int s3meta_user_list(struct s3meta *m, struct s3meta_user **out, size_t *n)
{
	size_t cnt = 0, cap = 16;
	struct s3meta_user *v = xmalloc(cap * sizeof(*v));
	pthread_rwlock_rdlock(&m->users_mu);
	for (int i = 0; i < UCACHE_BUCKETS; i++) {
		for (struct ucache_ent *e = m->users[i]; e; e = e->next) {
			if (cnt == cap) {
				cap *= 2;
				v = xrealloc(v, cap * sizeof(*v));
			}
			memcpy(v[cnt].access_key, e->access_key, sizeof(v[cnt].access_key));
			memcpy(v[cnt].display_name, e->display_name, sizeof(v[cnt].display_name));
			v[cnt].created_ms = e->created_ms;
			cnt++;
		}
	}
	pthread_rwlock_unlock(&m->users_mu);
	qsort(v, cnt, sizeof(*v), user_cmp);
	*out = v;
	*n = cnt;
	return 0;
}

int s3meta_user_delete(struct s3meta *m, const char *access_key)
{
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	int rc = wbegin(m, c);
	if (rc) {
		conn_put(m, c);
		return rc;
	}
	sqlite3_stmt *st = stmt(c, ST_USER_HAS_BUCKETS);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	bind_str(st, 1, access_key);
	int s = step(c, st);
	sqlite3_reset(st);
	if (s == SQLITE_ROW) {
		rc = -S3META_EUSERINUSE;
		goto out;
	}
	if (s != SQLITE_DONE) {
		rc = sqlerr(s);
		goto out;
	}
	st = stmt(c, ST_USER_DEL);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	bind_str(st, 1, access_key);
	if ((rc = exec_done(c, st)))
		goto out;
	if (sqlite3_changes(c->db) == 0)
		rc = -S3META_ENOSUCHUSER;
out:
	rc = wend(m, c, rc);
	if (rc == 0) {
		pthread_rwlock_wrlock(&m->users_mu);
		struct ucache_ent **pp = ufind(m, access_key);
		struct ucache_ent *e = *pp;
		if (e) {
			*pp = e->next;
			free(e);
		}
		pthread_rwlock_unlock(&m->users_mu);
	}
	conn_put(m, c);
	return rc;
}

/* ---- buckets ------------------------------------------------------------------ */

static bool is_ipv4_form(const char *s)
{
	int groups = 0;
	while (*s) {
		int digits = 0;
		while (*s >= '0' && *s <= '9')
			s++, digits++;
		if (!digits)
			return false;
		groups++;
		if (*s == '.')
			s++;
		else if (*s)
			return false;
	}
	return groups == 4;
}

static bool ends_with(const char *s, size_t n, const char *suf)
{
	size_t k = strlen(suf);
	return n >= k && !memcmp(s + n - k, suf, k);
}

int s3meta_bucket_name_check(const char *name)
{
	if (!name)
		return -S3META_EINVALIDBUCKETNAME;
	size_t n = strnlen(name, 64);
	if (n < 3 || n > 63)
		return -S3META_EINVALIDBUCKETNAME;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
		if (!alnum && ch != '.' && ch != '-')
			return -S3META_EINVALIDBUCKETNAME;
		if ((i == 0 || i == n - 1) && !alnum)
			return -S3META_EINVALIDBUCKETNAME;
		if (ch == '.' && name[i + 1] == '.')
			return -S3META_EINVALIDBUCKETNAME;
	}
	if (is_ipv4_form(name) || !strncmp(name, "xn--", 4) || !strncmp(name, "sthree-", 7) ||
	    ends_with(name, n, "-s3alias") || ends_with(name, n, "--ol-s3") || ends_with(name, n, ".mrap") ||
	    ends_with(name, n, "--x-s3"))
		return -S3META_EINVALIDBUCKETNAME;
	return 0;
}

int bkt_lookup(struct conn *c, const char *name, struct bkt *b)
{
	bool batch = in_batch(c);
	for (int i = 0; batch && i < tl_batch.nbkts; i++)
		if (strcmp(tl_batch.bkts[i].name, name) == 0) {
			*b = tl_batch.bkts[i].b;
			return 0;
		}
	sqlite3_stmt *st = stmt(c, ST_BKT_GET);
	if (!st)
		return -S3META_EINTERNAL;
	bind_str(st, 1, name);
	int rc = step(c, st);
	if (rc == SQLITE_ROW) {
		b->id = sqlite3_column_int64(st, 0);
		b->versioning = (enum s3meta_versioning)sqlite3_column_int(st, 3);
		rc = 0;
		if (batch && strlen(name) < S3META_BUCKET_SIZE) {
			/* Full: the oldest goes. */
			int i = tl_batch.nbkts < BATCH_BUCKETS ? tl_batch.nbkts++ : 0;
			memcpy(tl_batch.bkts[i].name, name, strlen(name) + 1);
			tl_batch.bkts[i].b = *b;
		}
	} else {
		rc = rc == SQLITE_DONE ? -S3META_ENOSUCHBUCKET : sqlerr(rc);
	}
	sqlite3_reset(st);
	return rc;
}

static void bucket_from_row(sqlite3_stmt *st, struct s3meta_bucket *b, int name_col, int owner_col,
			    int created_col, int vers_col)
{
	snprintf(b->name, sizeof(b->name), "%s", (const char *)sqlite3_column_text(st, name_col));
	snprintf(b->owner, sizeof(b->owner), "%s", (const char *)sqlite3_column_text(st, owner_col));
	b->created_ms = sqlite3_column_int64(st, created_col);
	b->versioning = (enum s3meta_versioning)sqlite3_column_int(st, vers_col);
}

int s3meta_bucket_create(struct s3meta *m, const char *name, const char *owner, int64_t created_ms)
{
	int rc = s3meta_bucket_name_check(name);
	if (rc)
		return rc;
	if (!owner || !*owner || strlen(owner) > S3META_ACCESS_KEY_MAX)
		return -S3META_EINVALIDARGUMENT;
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	if ((rc = wbegin(m, c))) {
		conn_put(m, c);
		return rc;
	}
	sqlite3_stmt *st = stmt(c, ST_BKT_GET);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	bind_str(st, 1, name);
	int s = step(c, st);
	if (s == SQLITE_ROW) {
		rc = strcmp((const char *)sqlite3_column_text(st, 1), owner) ? -S3META_EBUCKETEXISTS
									       : -S3META_EBUCKETOWNED;
		sqlite3_reset(st);
		goto out;
	}
	sqlite3_reset(st);
	if (s != SQLITE_DONE) {
		rc = sqlerr(s);
		goto out;
	}
	st = stmt(c, ST_BKT_INS);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	bind_str(st, 1, name);
	bind_str(st, 2, owner);
	sqlite3_bind_int64(st, 3, created_ms ? created_ms : now_ms());
	rc_note_bucket(c, name);
	rc = exec_done(c, st);
out:
	rc = wend(m, c, rc);
	conn_put(m, c);
	return rc;
}

/* What the cache keeps of a bucket row. */
struct bkt_cached {
	struct bkt b;
	struct s3meta_bucket row;
};

static void bkt_copy(void *arg, const void *val, size_t vlen)
{
	if (vlen == sizeof(struct bkt_cached))
		memcpy(arg, val, vlen);
}

int bkt_get_cached(struct s3meta *m, const char *name, struct bkt *b, struct s3meta_bucket *out)
{
	uint8_t key[1 + S3META_BUCKET_SIZE];
	size_t klen = rc_bucket_key(key, name);
	struct bkt_cached v;
	uint64_t gen;
	if (klen == 0)
		return -S3META_ENOSUCHBUCKET; /* longer than any valid name */
	if (rc_get(m->cache, key, klen, bkt_copy, &v, &gen))
		goto found;
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	int rc;
	sqlite3_stmt *st = stmt(c, ST_BKT_GET);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	bind_str(st, 1, name);
	rc = step(c, st);
	if (rc == SQLITE_ROW) {
		memset(&v, 0, sizeof(v));
		v.b.id = sqlite3_column_int64(st, 0);
		v.b.versioning = (enum s3meta_versioning)sqlite3_column_int(st, 3);
		snprintf(v.row.name, sizeof(v.row.name), "%s", name);
		snprintf(v.row.owner, sizeof(v.row.owner), "%s", (const char *)sqlite3_column_text(st, 1));
		v.row.created_ms = sqlite3_column_int64(st, 2);
		v.row.versioning = v.b.versioning;
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -S3META_ENOSUCHBUCKET : sqlerr(rc);
	}
	sqlite3_reset(st);
out:
	conn_put(m, c);
	if (rc)
		return rc;
	rc_put(m->cache, key, klen, &v, sizeof(v), gen);
found:
	if (b)
		*b = v.b;
	if (out)
		*out = v.row;
	return 0;
}

int s3meta_bucket_head(struct s3meta *m, const char *name, struct s3meta_bucket *out)
{
	return bkt_get_cached(m, name, NULL, out);
}

int s3meta_bucket_list(struct s3meta *m, const char *owner, struct s3meta_bucket **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	int rc;
	sqlite3_stmt *st = stmt(c, owner ? ST_BKT_LIST_OWNER : ST_BKT_LIST_ALL);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	if (owner)
		bind_str(st, 1, owner);
	size_t cnt = 0, cap = 0;
	struct s3meta_bucket *v = NULL;
	while ((rc = step(c, st)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		bucket_from_row(st, &v[cnt++], 0, 1, 2, 3);
	}
	sqlite3_reset(st);
	rc = sqlerr(rc);
	if (rc) {
		free(v);
		goto out;
	}
	*out = v;
	*n = cnt;
out:
	conn_put(m, c);
	return rc;
}

static int exists(struct conn *c, enum st_id id, int64_t bucket_id, bool *yes)
{
	sqlite3_stmt *st = stmt(c, id);
	if (!st)
		return -S3META_EINTERNAL;
	sqlite3_bind_int64(st, 1, bucket_id);
	int s = step(c, st);
	sqlite3_reset(st);
	*yes = s == SQLITE_ROW;
	return s == SQLITE_ROW || s == SQLITE_DONE ? 0 : sqlerr(s);
}

int s3meta_bucket_delete(struct s3meta *m, const char *name)
{
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	int rc = wbegin(m, c);
	if (rc) {
		conn_put(m, c);
		return rc;
	}
	struct bkt b;
	bool v = false, u = false;
	if ((rc = bkt_lookup(c, name, &b)))
		goto out;
	if ((rc = exists(c, ST_BKT_HAS_VERSIONS, b.id, &v)) || (rc = exists(c, ST_BKT_HAS_UPLOADS, b.id, &u)))
		goto out;
	if (v || u) {
		rc = -S3META_EBUCKETNOTEMPTY;
		goto out;
	}
	sqlite3_stmt *st = stmt(c, ST_BKT_DEL);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	sqlite3_bind_int64(st, 1, b.id);
	rc_note_bucket(c, name);
	rc = exec_done(c, st);
out:
	rc = wend(m, c, rc);
	conn_put(m, c);
	batch_forget_buckets();
	return rc;
}

int s3meta_bucket_versioning_set(struct s3meta *m, const char *name, enum s3meta_versioning v)
{
	if (v != S3META_VERSIONING_ENABLED && v != S3META_VERSIONING_SUSPENDED)
		return -S3META_EMALFORMEDXML;
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	int rc = wbegin(m, c);
	if (rc) {
		conn_put(m, c);
		return rc;
	}
	struct bkt b;
	if ((rc = bkt_lookup(c, name, &b)))
		goto out;
	sqlite3_stmt *st = stmt(c, ST_BKT_SET_VERS);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	sqlite3_bind_int64(st, 1, b.id);
	sqlite3_bind_int(st, 2, (int)v);
	rc_note_bucket(c, name);
	rc = exec_done(c, st);
out:
	rc = wend(m, c, rc);
	conn_put(m, c);
	batch_forget_buckets();
	return rc;
}

int s3meta_bucket_usage(struct s3meta *m, const char *name, struct s3meta_usage *out)
{
	memset(out, 0, sizeof(*out));
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	int rc;
	sqlite3_stmt *st = stmt(c, ST_BKT_USAGE);
	if (!st) {
		rc = -S3META_EINTERNAL;
		goto out;
	}
	bind_str(st, 1, name);
	rc = step(c, st);
	if (rc == SQLITE_ROW) {
		out->objects = (uint64_t)sqlite3_column_int64(st, 0);
		out->bytes = (uint64_t)sqlite3_column_int64(st, 1);
		out->versions = (uint64_t)sqlite3_column_int64(st, 2);
		out->version_bytes = (uint64_t)sqlite3_column_int64(st, 3);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -S3META_ENOSUCHBUCKET : sqlerr(rc);
	}
	sqlite3_reset(st);
out:
	conn_put(m, c);
	return rc;
}

int usage_apply(struct conn *c, int64_t bucket_id, const struct usage_delta *d)
{
	if (!d->objects && !d->bytes && !d->versions && !d->version_bytes)
		return 0;
	if (in_batch(c) && !tl_batch.isolated) {
		/* Summed per bucket, written by s3meta_batch_end. */
		int i = 0;
		while (i < tl_batch.nusage && tl_batch.usage[i].bucket_id != bucket_id)
			i++;
		if (i < BATCH_BUCKETS) {
			if (i == tl_batch.nusage)
				tl_batch.usage[tl_batch.nusage++] = (struct batch_usage){ bucket_id, { 0 } };
			struct usage_delta *t = &tl_batch.usage[i].d;
			t->objects += d->objects;
			t->bytes += d->bytes;
			t->versions += d->versions;
			t->version_bytes += d->version_bytes;
			return 0;
		}
	}
	return usage_write(c, bucket_id, d);
}

static int usage_write(struct conn *c, int64_t bucket_id, const struct usage_delta *d)
{
	if (!d->objects && !d->bytes && !d->versions && !d->version_bytes)
		return 0;
	sqlite3_stmt *st = stmt(c, ST_BKT_ADJ);
	if (!st)
		return -S3META_EINTERNAL;
	sqlite3_bind_int64(st, 1, bucket_id);
	sqlite3_bind_int64(st, 2, d->objects);
	sqlite3_bind_int64(st, 3, d->bytes);
	sqlite3_bind_int64(st, 4, d->versions);
	sqlite3_bind_int64(st, 5, d->version_bytes);
	return exec_done(c, st);
}

int s3meta_checkpoint(struct s3meta *m, int *wal_frames, int *done_frames)
{
	struct conn *c = conn_get(m);
	if (!c)
		return -S3META_EINTERNAL;
	int nlog = 0, nckpt = 0;
	int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_warn("s3meta", "checkpoint: %s", sqlite3_errmsg(c->db));
	conn_put(m, c);
	if (wal_frames)
		*wal_frames = SILT_MAX(nlog, 0);
	if (done_frames)
		*done_frames = SILT_MAX(nckpt, 0);
	return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : sqlerr(rc);
}

/* ---- open / close ----------------------------------------------------------------- */

static int64_t max_id(struct conn *c, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = 0;
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int s3meta_open(const struct s3meta_config *cfg, struct s3meta **out)
{
	*out = NULL;
	if (!cfg || !cfg->path)
		return -S3META_EINVALIDARGUMENT;
	struct s3meta *m = xcalloc(1, sizeof(*m));
	m->path = xstrdup(cfg->path);
	m->min_part_size = cfg->min_part_size > 0 ? cfg->min_part_size : S3META_MIN_PART_SIZE;
	m->max_conns = cfg->max_conns > 0 ? cfg->max_conns : 64;
	pthread_mutex_init(&m->pool_mu, NULL);
	pthread_cond_init(&m->pool_cv, NULL);
	pthread_mutex_init(&m->wmu, NULL);
	pthread_rwlock_init(&m->users_mu, NULL);
	m->users = xcalloc(UCACHE_BUCKETS, sizeof(*m->users));
	if (cfg->cache_bytes >= 0)
		m->cache = rc_new(cfg->cache_bytes > 0 ? (size_t)cfg->cache_bytes : S3META_CACHE_DEFAULT);

	struct conn *c = conn_get(m);
	if (!c) {
		s3meta_close(m);
		return -S3META_EINTERNAL;
	}
	char *msg = NULL;
	int rc = sqlite3_exec(c->db, "PRAGMA journal_mode = WAL", NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
	if (rc == SQLITE_OK) {
		rc = sqlite3_exec(c->db, schema_sql, NULL, NULL, &msg);
		int rc2 = sqlite3_exec(c->db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = rc2;
	}
	if (rc != SQLITE_OK) {
		log_error("s3meta", "schema on %s: %s", m->path, msg ? msg : sqlite3_errmsg(c->db));
		sqlite3_free(msg);
		conn_put(m, c);
		s3meta_close(m);
		return -S3META_EINTERNAL;
	}
	int64_t a = max_id(c, "SELECT max(id) FROM versions");
	int64_t b = max_id(c, "SELECT max(id) FROM uploads");
	m->last_seq = a > b ? a : b;
	conn_put(m, c);
	if ((rc = s3meta_users_reload(m))) {
		s3meta_close(m);
		return rc;
	}
	*out = m;
	return 0;
}

void s3meta_close(struct s3meta *m)
{
	if (!m)
		return;
	if (m->batch_conn)
		conn_close(m->batch_conn);
	struct conn *c = m->idle;
	while (c) {
		struct conn *n = c->next;
		conn_close(c);
		c = n;
	}
	if (m->users) {
		ucache_clear(m);
		free(m->users);
	}
	rc_free(m->cache);
	pthread_rwlock_destroy(&m->users_mu);
	pthread_mutex_destroy(&m->wmu);
	pthread_cond_destroy(&m->pool_cv);
	pthread_mutex_destroy(&m->pool_mu);
	free(m->path);
	free(m);
}
