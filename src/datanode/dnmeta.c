/* dnmeta.c - SQLite tables of the data node (see dnmeta.h). */
#include "core/platform.h"
#include "datanode/dnmeta.h"

#include "core/log.h"

#include <pthread.h>
#include <sqlite3.h>

#define SUB "datanode"
#define SCHEMA_VERSION 2
#define STR_(x) #x
#define STR(x) STR_(x)
#define HDR STR(DNCHUNK_HDR)
/* The automatic checkpoint's threshold (pages): a backstop only, see conn_new. */
#define DNMETA_AUTOCKPT_PAGES 16384

/* Chunk header size is spelled into the triggers; keep them in step. */
_Static_assert(DNCHUNK_HDR == 56, "update the trigger SQL");

/* The accounting a trigger applies for one chunk row (R is NEW or OLD). */
#define SEG_ADD(R)                                                                          \
	" INSERT INTO segments(stream, seg, live_bytes, live_chunks, max_end)"              \
	"  VALUES(" R ".stream, " R ".seg, " R ".len + " HDR ", 1, " R ".pos + " R ".len + " HDR ")" \
	"  ON CONFLICT(stream, seg) DO UPDATE SET live_bytes = live_bytes + excluded.live_bytes," \
	"  live_chunks = live_chunks + 1, max_end = max(max_end, excluded.max_end);"
#define SEG_SUB(R)                                                                  \
	" UPDATE segments SET live_bytes = live_bytes - " R ".len - " HDR ","       \
	"  live_chunks = live_chunks - 1 WHERE stream = " R ".stream AND seg = " R ".seg;"
/* Inserts are accounted by the writer (dnmeta_seg_add), once per segment
 * and group commit instead of once per row: a trigger per inserted row
 * cost as much as the rest of a small put's data-node work. */
#define LOC_TRIGGERS(T)                                                                       \
	"CREATE TRIGGER IF NOT EXISTS " T "_del AFTER DELETE ON " T                           \
	" WHEN OLD.stream IS NOT NULL BEGIN" SEG_SUB("OLD") " END;"                          \
	"CREATE TRIGGER IF NOT EXISTS " T "_move AFTER UPDATE OF stream, seg, pos ON " T      \
	" WHEN OLD.stream IS NOT NULL BEGIN" SEG_SUB("OLD") SEG_ADD("NEW") " END;"

static const char *const schema_sql =
	"CREATE TABLE IF NOT EXISTS objects("
	" oid BLOB PRIMARY KEY, size INTEGER NOT NULL, chunk_bytes INTEGER NOT NULL,"
	" nchunks INTEGER NOT NULL, ctime INTEGER NOT NULL,"
	" stream INTEGER, seg INTEGER, seq INTEGER, pos INTEGER, len INTEGER, crc INTEGER"
	") WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS chunks("
	" oid BLOB NOT NULL, idx INTEGER NOT NULL, stream INTEGER NOT NULL, seg INTEGER NOT NULL,"
	" seq INTEGER NOT NULL, pos INTEGER NOT NULL, len INTEGER NOT NULL, crc INTEGER NOT NULL,"
	" PRIMARY KEY(oid, idx)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS segments("
	" stream INTEGER NOT NULL, seg INTEGER NOT NULL, live_bytes INTEGER NOT NULL,"
	" live_chunks INTEGER NOT NULL, max_end INTEGER NOT NULL,"
	" PRIMARY KEY(stream, seg)) WITHOUT ROWID;"
	LOC_TRIGGERS("objects") LOC_TRIGGERS("chunks")
	"PRAGMA user_version = " STR(SCHEMA_VERSION) ";";

enum {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_OBJ_INS,
	S_OBJ_GET,
	S_OBJ_DEL,
	S_OBJ_MOVE,
	S_CH_INS,
	S_CH_RANGE,
	S_CH_LOC,
	S_CH_DEL,
	S_CH_MOVE,
	S_SCAN_OBJ,
	S_SCAN_CH,
	S_SEG_GET,
	S_SEG_LIST,
	S_SEG_DEL,
	S_SEG_MAXEND,
	S_SEG_ADD,
	S_COUNT
};

#define LOC_COLS "stream, seg, seq, pos, len, crc"
#define MOVE_SET " SET stream = ?, seg = ?, seq = ?, pos = ?"
#define MOVE_WHERE " AND stream = ? AND seg = ? AND pos = ?"
#define SCAN_WHERE " WHERE stream = ? AND seg = ? AND pos + len + " HDR " > ? LIMIT ?"

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SAVEPOINT] = "SAVEPOINT one",
	[S_RELEASE] = "RELEASE one",
	[S_ROLLBACK_TO] = "ROLLBACK TO one",
	[S_OBJ_INS] = "INSERT INTO objects(oid, size, chunk_bytes, nchunks, ctime, " LOC_COLS ")"
		      " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
	[S_OBJ_GET] = "SELECT size, chunk_bytes, nchunks, ctime, " LOC_COLS
		      " FROM objects WHERE oid = ?",
	[S_OBJ_DEL] = "DELETE FROM objects WHERE oid = ?",
	[S_OBJ_MOVE] = "UPDATE objects" MOVE_SET " WHERE oid = ?" MOVE_WHERE,
	[S_CH_INS] = "INSERT INTO chunks(oid, idx, " LOC_COLS ") VALUES(?,?,?,?,?,?,?,?)",
	[S_CH_RANGE] = "SELECT idx, " LOC_COLS " FROM chunks"
		       " WHERE oid = ? AND idx >= ? AND idx <= ? ORDER BY idx LIMIT ?",
	[S_CH_LOC] = "SELECT idx, " LOC_COLS " FROM chunks WHERE oid = ? AND idx = ?",
	[S_CH_DEL] = "DELETE FROM chunks WHERE oid = ?",
	[S_CH_MOVE] = "UPDATE chunks" MOVE_SET " WHERE oid = ? AND idx = ?" MOVE_WHERE,
	[S_SCAN_OBJ] = "SELECT oid, 0, " LOC_COLS " FROM objects" SCAN_WHERE,
	[S_SCAN_CH] = "SELECT oid, idx, " LOC_COLS " FROM chunks" SCAN_WHERE,
	[S_SEG_GET] = "SELECT live_bytes, live_chunks, max_end FROM segments"
		      " WHERE stream = ? AND seg = ?",
	[S_SEG_LIST] = "SELECT stream, seg, live_bytes, live_chunks, max_end FROM segments"
		       " ORDER BY stream, seg",
	[S_SEG_DEL] = "DELETE FROM segments WHERE stream = ? AND seg = ? AND live_chunks = 0",
	[S_SEG_MAXEND] = "UPDATE segments SET max_end = ? WHERE stream = ? AND seg = ?",
	[S_SEG_ADD] = "INSERT INTO segments(stream, seg, live_bytes, live_chunks, max_end) VALUES(?,?,?,?,?)"
		      " ON CONFLICT(stream, seg) DO UPDATE SET live_bytes = live_bytes + excluded.live_bytes,"
		      " live_chunks = live_chunks + excluded.live_chunks,"
		      " max_end = max(max_end, excluded.max_end)",
};

struct dnconn {
	struct dnmeta *m;
	sqlite3 *db;
	sqlite3_stmt *st[S_COUNT];
	bool durable; /* this transaction switched synchronous to FULL */
	struct dnconn *next;
};

struct dnmeta {
	char *path;
	bool sync_full;
	pthread_mutex_t pool_mu;
	struct dnconn *free_list;
	pthread_mutex_t write_mu;
};

static int db_err(sqlite3 *db, int rc, const char *what)
{
	log_error(SUB, "sqlite %s: %s (%d)", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		return -SILT_EEXIST;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -SILT_ECORRUPT;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	default:
		return -EIO;
	}
}

static int exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		log_error(SUB, "sqlite: %s: %s", sql, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return db_err(NULL, rc, "exec");
	}
	return 0;
}

static void conn_free(struct dnconn *c)
{
	if (!c)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c);
}

static int conn_new(struct dnmeta *m, struct dnconn **out)
{
	struct dnconn *c = xcalloc(1, sizeof(*c));
	int rc;
	c->m = m;
	/* NOMUTEX: a connection is used by one thread at a time (the pool
	 * guarantees it), so SQLite's per-connection mutex is pure cost. */
	rc = sqlite3_open_v2(m->path, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = db_err(c->db, rc, "open");
		goto fail;
	}
	sqlite3_busy_timeout(c->db, 10000);
	if ((rc = exec(c->db, m->sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")))
		goto fail;
	/* Checkpoints belong to dnmeta_checkpoint, called from a background
	 * thread: SQLite's automatic one would run inside whichever commit
	 * crosses the threshold and stall it for the checkpoint's fsyncs. The
	 * automatic checkpoint stays only as a backstop far above what the
	 * background thread lets the WAL grow to. */
	if ((rc = exec(c->db, "PRAGMA wal_autocheckpoint=" STR(DNMETA_AUTOCKPT_PAGES))))
		goto fail;
	for (int i = 0; i < S_COUNT; i++) {
		int r = sqlite3_prepare_v3(c->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i],
					   NULL);
		if (r != SQLITE_OK) {
			rc = db_err(c->db, r, stmt_sql[i]);
			goto fail;
		}
	}
	*out = c;
	return 0;
fail:
	conn_free(c);
	return rc;
}

int dnmeta_open(const char *path, bool sync_full, struct dnmeta **out)
{
	struct dnmeta *m = xcalloc(1, sizeof(*m));
	struct dnconn *c = NULL;
	sqlite3 *db = NULL;
	int rc;

	m->path = xstrdup(path);
	m->sync_full = sync_full;
	pthread_mutex_init(&m->pool_mu, NULL);
	pthread_mutex_init(&m->write_mu, NULL);
	*out = NULL;

	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		rc = db_err(db, rc, "open");
		goto out;
	}
	sqlite3_busy_timeout(db, 10000);
	if ((rc = exec(db, "PRAGMA journal_mode=WAL")) != 0)
		goto out;
	sqlite3_stmt *st;
	int version = -1;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			version = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	if (version != 0 && version != 1 && version != SCHEMA_VERSION) {
		log_error(SUB, "%s: schema version %d, this build knows %d", path, version,
			  SCHEMA_VERSION);
		rc = -SILT_EINVAL;
		goto out;
	}
	if ((rc = exec(db, "BEGIN IMMEDIATE")) != 0)
		goto out;
	/* Version 1 accounted inserts with triggers; from 2 the writer does. */
	if ((version == 1 && (rc = exec(db, "DROP TRIGGER IF EXISTS objects_ins;"
					   " DROP TRIGGER IF EXISTS chunks_ins;")) != 0) ||
	    (rc = exec(db, schema_sql)) != 0 || (rc = exec(db, "COMMIT")) != 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	/* One connection up front proves the statements compile. */
	if ((rc = conn_new(m, &c)) != 0)
		goto out;
	m->free_list = c;
	*out = m;
	m = NULL;
out:
	sqlite3_close(db);
	if (m)
		dnmeta_close(m);
	return rc;
}

void dnmeta_close(struct dnmeta *m)
{
	if (!m)
		return;
	while (m->free_list) {
		struct dnconn *c = m->free_list;
		m->free_list = c->next;
		conn_free(c);
	}
	pthread_mutex_destroy(&m->pool_mu);
	pthread_mutex_destroy(&m->write_mu);
	free(m->path);
	free(m);
}

/* Connections are made on demand and kept: the pool grows to the number of
 * threads that use the data node at once, which the caller bounds. */
struct dnconn *dnmeta_conn_get(struct dnmeta *m)
{
	pthread_mutex_lock(&m->pool_mu);
	struct dnconn *c = m->free_list;
	if (c)
		m->free_list = c->next;
	pthread_mutex_unlock(&m->pool_mu);
	if (c)
		return c;
	int rc = conn_new(m, &c);
	if (rc) {
		/* The first connection opened fine with the same file and
		 * statements, so this is fd or memory exhaustion. */
		log_error(SUB, "%s: cannot open another connection: %s", m->path, silt_strerror(rc));
		abort();
	}
	return c;
}

void dnmeta_conn_put(struct dnconn *c)
{
	struct dnmeta *m = c->m;
	pthread_mutex_lock(&m->pool_mu);
	c->next = m->free_list;
	m->free_list = c;
	pthread_mutex_unlock(&m->pool_mu);
}

/* ---- statement helpers -------------------------------------------------- */

static sqlite3_stmt *stmt(struct dnconn *c, int i)
{
	return c->st[i];
}

static void done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows. */
static int run(struct dnconn *c, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE ? 0 : db_err(c->db, rc, what);
	done(st);
	return ret;
}

static void bind_oid(sqlite3_stmt *st, int i, const struct dn_oid *oid)
{
	sqlite3_bind_blob(st, i, oid->b, sizeof(oid->b), SQLITE_STATIC);
}

static void bind_i64(sqlite3_stmt *st, int i, int64_t v)
{
	sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

static int64_t col_i64(sqlite3_stmt *st, int i)
{
	return (int64_t)sqlite3_column_int64(st, i);
}

/* ---- transactions -------------------------------------------------------- */

int dnmeta_begin(struct dnconn *c, bool durable)
{
	pthread_mutex_lock(&c->m->write_mu);
	c->durable = durable && !c->m->sync_full;
	int rc = c->durable ? exec(c->db, "PRAGMA synchronous=FULL") : 0;
	if (rc == 0)
		rc = run(c, stmt(c, S_BEGIN), "begin");
	if (rc) {
		if (c->durable)
			exec(c->db, "PRAGMA synchronous=NORMAL");
		c->durable = false;
		pthread_mutex_unlock(&c->m->write_mu);
	}
	return rc;
}

static void end_txn(struct dnconn *c)
{
	if (c->durable)
		exec(c->db, "PRAGMA synchronous=NORMAL");
	c->durable = false;
	pthread_mutex_unlock(&c->m->write_mu);
}

int dnmeta_commit(struct dnconn *c)
{
	int rc = run(c, stmt(c, S_COMMIT), "commit");
	if (rc && sqlite3_get_autocommit(c->db) == 0)
		run(c, stmt(c, S_ROLLBACK), "rollback");
	end_txn(c);
	return rc;
}

void dnmeta_rollback(struct dnconn *c)
{
	if (sqlite3_get_autocommit(c->db) == 0)
		run(c, stmt(c, S_ROLLBACK), "rollback");
	end_txn(c);
}

int dnmeta_savepoint(struct dnconn *c)
{
	if (sqlite3_get_autocommit(c->db))
		return -EIO; /* the transaction is gone (SQLite rolled it back) */
	return run(c, stmt(c, S_SAVEPOINT), "savepoint");
}

int dnmeta_release(struct dnconn *c, int rc)
{
	if (rc == 0)
		rc = run(c, stmt(c, S_RELEASE), "release");
	if (rc && !sqlite3_get_autocommit(c->db)) {
		/* ROLLBACK TO keeps the savepoint open: release it too. */
		run(c, stmt(c, S_ROLLBACK_TO), "rollback to savepoint");
		run(c, stmt(c, S_RELEASE), "release");
	}
	return rc;
}

bool dnmeta_in_txn(struct dnconn *c)
{
	return !sqlite3_get_autocommit(c->db);
}

int dnmeta_checkpoint(struct dnmeta *m, int *wal_frames, int *done_frames)
{
	struct dnconn *c = dnmeta_conn_get(m);
	int nlog = 0, nckpt = 0;
	int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);
	int ret = 0;
	/* BUSY: another checkpoint is running, which is as good. */
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		ret = db_err(c->db, rc, "checkpoint");
	dnmeta_conn_put(c);
	if (wal_frames)
		*wal_frames = SILT_MAX(nlog, 0);
	if (done_frames)
		*done_frames = SILT_MAX(nckpt, 0);
	return ret;
}

/* ---- rows ------------------------------------------------------------------- */

static void bind_loc(sqlite3_stmt *st, int i, const struct dnloc *l)
{
	bind_i64(st, i, l->stream);
	bind_i64(st, i + 1, l->seg);
	bind_i64(st, i + 2, l->seq);
	bind_i64(st, i + 3, (int64_t)l->pos);
	bind_i64(st, i + 4, l->len);
	bind_i64(st, i + 5, l->crc);
}

/* Reads stream, seg, seq, pos, len, crc from column col on; false if any
 * is out of its range (a damaged database must not steer a read). */
static bool col_loc(sqlite3_stmt *st, int col, struct dnloc *l)
{
	int64_t stream = col_i64(st, col), seg = col_i64(st, col + 1), seq = col_i64(st, col + 2);
	int64_t pos = col_i64(st, col + 3), len = col_i64(st, col + 4), crc = col_i64(st, col + 5);
	if (stream < 0 || stream > UINT32_MAX || seg < 0 || seq < seg || pos < 0 || len < 0 ||
	    len > DNCHUNK_MAX_DATA || crc < 0 || crc > UINT32_MAX)
		return false;
	*l = (struct dnloc){ (uint32_t)stream, seg, seq, (uint64_t)pos, (uint32_t)len, (uint32_t)crc };
	return true;
}

/* oid, idx, then the location. */
static bool col_chunk(sqlite3_stmt *st, struct dnmeta_chunk *ch)
{
	const void *blob = sqlite3_column_blob(st, 0);
	int64_t idx = col_i64(st, 1);
	if (!blob || sqlite3_column_bytes(st, 0) != 16 || idx < 0 || idx > UINT32_MAX ||
	    !col_loc(st, 2, &ch->loc))
		return false;
	memcpy(ch->oid.b, blob, 16);
	ch->index = (uint32_t)idx;
	return true;
}

/* ---- writes --------------------------------------------------------------- */

int dnmeta_obj_insert(struct dnconn *c, const struct dn_oid *oid, const struct dnmeta_obj *o,
		      const struct dnloc *loc0)
{
	sqlite3_stmt *st = stmt(c, S_OBJ_INS);
	bind_oid(st, 1, oid);
	bind_i64(st, 2, (int64_t)o->size);
	bind_i64(st, 3, o->chunk_bytes);
	bind_i64(st, 4, o->nchunks);
	bind_i64(st, 5, o->ctime_ms);
	if (loc0)
		bind_loc(st, 6, loc0); /* unbound parameters are NULL */
	int rc = sqlite3_step(st);
	int ret = 0;
	if (rc != SQLITE_DONE)
		ret = (rc & 0xff) == SQLITE_CONSTRAINT ? -SILT_EEXIST : db_err(c->db, rc, "insert object");
	done(st);
	return ret;
}

int dnmeta_chunk_insert(struct dnconn *c, const struct dn_oid *oid, uint32_t index,
			const struct dnloc *loc)
{
	sqlite3_stmt *st = stmt(c, S_CH_INS);
	bind_oid(st, 1, oid);
	bind_i64(st, 2, index);
	bind_loc(st, 3, loc);
	return run(c, st, "insert chunk");
}

int dnmeta_obj_delete(struct dnconn *c, const struct dn_oid *oid)
{
	sqlite3_stmt *st = stmt(c, S_CH_DEL);
	bind_oid(st, 1, oid);
	int rc = run(c, st, "delete chunks");
	if (rc)
		return rc;
	st = stmt(c, S_OBJ_DEL);
	bind_oid(st, 1, oid);
	if ((rc = run(c, st, "delete object")) != 0)
		return rc;
	return sqlite3_changes(c->db) > 0 ? 0 : -SILT_ENOENT;
}

int dnmeta_chunk_move(struct dnconn *c, const struct dn_oid *oid, uint32_t index,
		      const struct dnloc *from, const struct dnloc *to, bool *moved)
{
	sqlite3_stmt *st = stmt(c, index == 0 ? S_OBJ_MOVE : S_CH_MOVE);
	int i = 1;
	bind_i64(st, i++, to->stream);
	bind_i64(st, i++, to->seg);
	bind_i64(st, i++, to->seq);
	bind_i64(st, i++, (int64_t)to->pos);
	bind_oid(st, i++, oid);
	if (index > 0)
		bind_i64(st, i++, index);
	bind_i64(st, i++, from->stream);
	bind_i64(st, i++, from->seg);
	bind_i64(st, i++, (int64_t)from->pos);
	int rc = run(c, st, "move chunk");
	*moved = rc == 0 && sqlite3_changes(c->db) > 0;
	return rc;
}

int dnmeta_seg_forget(struct dnconn *c, uint32_t stream, int64_t seg)
{
	sqlite3_stmt *st = stmt(c, S_SEG_DEL);
	bind_i64(st, 1, stream);
	bind_i64(st, 2, seg);
	return run(c, st, "forget segment");
}

int dnmeta_seg_add(struct dnconn *c, uint32_t stream, int64_t seg, uint64_t bytes, uint64_t chunks,
		   uint64_t max_end)
{
	sqlite3_stmt *st = stmt(c, S_SEG_ADD);
	bind_i64(st, 1, stream);
	bind_i64(st, 2, seg);
	bind_i64(st, 3, (int64_t)bytes);
	bind_i64(st, 4, (int64_t)chunks);
	bind_i64(st, 5, (int64_t)max_end);
	return run(c, st, "account segment");
}

int dnmeta_seg_set_max_end(struct dnconn *c, uint32_t stream, int64_t seg, uint64_t max_end)
{
	sqlite3_stmt *st = stmt(c, S_SEG_MAXEND);
	bind_i64(st, 1, (int64_t)max_end);
	bind_i64(st, 2, stream);
	bind_i64(st, 3, seg);
	return run(c, st, "set max_end");
}

/* ---- reads ---------------------------------------------------------------- */

int dnmeta_obj_get(struct dnconn *c, const struct dn_oid *oid, struct dnmeta_obj *o,
		   struct dnloc *loc0)
{
	sqlite3_stmt *st = stmt(c, S_OBJ_GET);
	bind_oid(st, 1, oid);
	int rc = sqlite3_step(st), ret = 0;
	if (rc == SQLITE_ROW) {
		int64_t size = col_i64(st, 0), cb = col_i64(st, 1), n = col_i64(st, 2);
		bool has0 = sqlite3_column_type(st, 4) != SQLITE_NULL;
		struct dnloc l0 = { 0 };
		if (size < 0 || cb <= 0 || cb > DNCHUNK_MAX_DATA || n < 0 || n > UINT32_MAX ||
		    has0 != (n > 0) || (has0 && !col_loc(st, 4, &l0))) {
			ret = -SILT_ECORRUPT;
		} else {
			o->size = (uint64_t)size;
			o->chunk_bytes = (uint32_t)cb;
			o->nchunks = (uint32_t)n;
			o->ctime_ms = col_i64(st, 3);
			if (loc0)
				*loc0 = l0;
		}
	} else {
		ret = rc == SQLITE_DONE ? -SILT_ENOENT : db_err(c->db, rc, "get object");
	}
	done(st);
	return ret;
}

int dnmeta_chunk_loc(struct dnconn *c, const struct dn_oid *oid, uint32_t index,
		     struct dnloc *loc)
{
	if (index == 0) {
		struct dnmeta_obj o;
		int rc = dnmeta_obj_get(c, oid, &o, loc);
		return rc == 0 && o.nchunks == 0 ? -SILT_ENOENT : rc;
	}
	struct dnmeta_chunk ch;
	size_t n;
	int rc = dnmeta_chunks_get(c, oid, index, index, &ch, 1, &n);
	if (rc == 0 && n == 0)
		rc = -SILT_ENOENT;
	if (rc == 0)
		*loc = ch.loc;
	return rc;
}

int dnmeta_chunks_get(struct dnconn *c, const struct dn_oid *oid, uint32_t first, uint32_t last,
		      struct dnmeta_chunk *out, size_t max, size_t *n)
{
	sqlite3_stmt *st = stmt(c, S_CH_RANGE);
	int rc, ret = 0;
	bind_oid(st, 1, oid);
	bind_i64(st, 2, first);
	bind_i64(st, 3, last);
	bind_i64(st, 4, (int64_t)max);
	*n = 0;
	while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct dnmeta_chunk *ch = &out[*n];
		int64_t idx = col_i64(st, 0);
		if (idx < 1 || idx > UINT32_MAX || !col_loc(st, 1, &ch->loc)) {
			ret = -SILT_ECORRUPT;
			break;
		}
		ch->oid = *oid;
		ch->index = (uint32_t)idx;
		(*n)++;
	}
	if (ret == 0 && *n < max && rc != SQLITE_DONE)
		ret = db_err(c->db, rc, "get chunks");
	done(st);
	return ret;
}

int dnmeta_seg_scan(struct dnconn *c, uint32_t stream, int64_t seg, uint64_t min_end,
		    struct dnmeta_chunk *out, size_t max, size_t *n)
{
	int ret = 0;
	*n = 0;
	for (int t = 0; t < 2 && ret == 0 && *n < max; t++) {
		sqlite3_stmt *st = stmt(c, t == 0 ? S_SCAN_OBJ : S_SCAN_CH);
		int rc = SQLITE_DONE;
		bind_i64(st, 1, stream);
		bind_i64(st, 2, seg);
		bind_i64(st, 3, (int64_t)min_end);
		bind_i64(st, 4, (int64_t)(max - *n));
		while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (!col_chunk(st, &out[*n])) {
				ret = -SILT_ECORRUPT;
				break;
			}
			(*n)++;
		}
		if (ret == 0 && *n < max && rc != SQLITE_DONE)
			ret = db_err(c->db, rc, "scan segment");
		done(st);
	}
	return ret;
}

int dnmeta_seg_get(struct dnconn *c, uint32_t stream, int64_t seg, struct dnmeta_seg *out)
{
	sqlite3_stmt *st = stmt(c, S_SEG_GET);
	bind_i64(st, 1, stream);
	bind_i64(st, 2, seg);
	*out = (struct dnmeta_seg){ stream, seg, 0, 0, 0 };
	int rc = sqlite3_step(st), ret = 0;
	if (rc == SQLITE_ROW) {
		int64_t b = col_i64(st, 0), n = col_i64(st, 1), e = col_i64(st, 2);
		if (b < 0 || n < 0 || e < 0)
			ret = -SILT_ECORRUPT;
		out->live_bytes = (uint64_t)SILT_MAX(b, 0);
		out->live_chunks = (uint64_t)SILT_MAX(n, 0);
		out->max_end = (uint64_t)SILT_MAX(e, 0);
	} else if (rc != SQLITE_DONE) {
		ret = db_err(c->db, rc, "get segment");
	}
	done(st);
	return ret;
}

int dnmeta_seg_list(struct dnconn *c, struct dnmeta_seg **out, size_t *n)
{
	sqlite3_stmt *st = stmt(c, S_SEG_LIST);
	struct dnmeta_seg *v = NULL;
	size_t cnt = 0, cap = 0;
	int rc, ret = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t stream = col_i64(st, 0), seg = col_i64(st, 1);
		int64_t b = col_i64(st, 2), k = col_i64(st, 3), e = col_i64(st, 4);
		if (stream < 0 || stream > UINT32_MAX || seg < 0 || b < 0 || k < 0 || e < 0) {
			ret = -SILT_ECORRUPT;
			break;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[cnt++] = (struct dnmeta_seg){ (uint32_t)stream, seg, (uint64_t)b, (uint64_t)k,
						(uint64_t)e };
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = db_err(c->db, rc, "list segments");
	done(st);
	if (ret) {
		free(v);
		v = NULL;
		cnt = 0;
	}
	*out = v;
	*n = cnt;
	return ret;
}
