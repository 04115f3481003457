/* dnmeta.h - the data node's SQLite tables: where each chunk of each object
 * lives, and how many live bytes each volume segment holds.
 *
 * Schema (meta.db in the data node directory, WAL mode):
 *
 *   objects(oid BLOB PK, size, chunk_bytes, nchunks, ctime,
 *           stream, seg, seq, pos, len, crc)   chunk 0's location, inline
 *                                              (NULL for a 0-byte object)
 *   chunks(oid, idx, stream, seg, seq, pos, len, crc; PK(oid, idx))
 *                                              chunks 1.. of larger objects
 *   segments(stream, seg, live_bytes, live_chunks, max_end; PK(stream, seg))
 *       maintained in the same transaction as the locations: deletes and
 *       moves by triggers on both tables, inserts by the writer
 *       (dnmeta_seg_add once per segment and group commit: a trigger per
 *       inserted row cost as much as the rest of a small put); max_end is
 *       the highest end of any chunk ever recorded there
 *
 * `stream` names the volume (seglog), `seg` is the segment's base offset,
 * `seq` the entry's offset in the volume, `pos` the entry's byte position in
 * the segment file; `len` and `crc` describe the chunk's data (live_bytes
 * and max_end count whole entries, header included).
 *
 * Why this shape: a put of a one-chunk object writes one objects row and
 * touches one segments row, two B-tree pages in the WAL; a small GET is one
 * primary-key lookup. There is deliberately no index by location: GC scans
 * the victim segment's file and asks, per entry, whether the row for
 * (oid, index) still points there; reconciliation at open compares
 * max_end with the segment size and only scans the tables when a segment
 * lost its tail (which needs a power loss without sync_commit).
 *
 * Connections come from a pool (dnmeta_conn_get/put); each is used by one
 * thread at a time and keeps its prepared statements. Readers never wait
 * for writers (WAL). Write transactions are serialised by a mutex taken in
 * dnmeta_begin, so SQLite never answers BUSY inside the process and no
 * thread sleeps in a busy handler. */
#ifndef SILT_DNMETA_H
#define SILT_DNMETA_H

#include "core/platform.h"
#include "datanode/dnchunk.h"

struct dnmeta;
struct dnconn;

struct dnloc {
	uint32_t stream;
	int64_t seg;
	int64_t seq;
	uint64_t pos;
	uint32_t len;
	uint32_t crc;
};

struct dnmeta_chunk {
	struct dn_oid oid;
	uint32_t index;
	struct dnloc loc;
};

struct dnmeta_obj {
	uint64_t size;
	uint32_t chunk_bytes;
	uint32_t nchunks;
	int64_t ctime_ms;
};

struct dnmeta_seg {
	uint32_t stream;
	int64_t seg;
	uint64_t live_bytes;
	uint64_t live_chunks;
	uint64_t max_end;
};

/* sync_full: every commit fsyncs the WAL (synchronous=FULL); otherwise
 * commits reach the OS (survive a process kill) and the WAL is fsynced at
 * checkpoints (synchronous=NORMAL). */
int dnmeta_open(const char *path, bool sync_full, struct dnmeta **out);
void dnmeta_close(struct dnmeta *m);

struct dnconn *dnmeta_conn_get(struct dnmeta *m);
void dnmeta_conn_put(struct dnconn *c);

/* A write transaction: dnmeta_begin takes the process-wide write mutex;
 * dnmeta_commit or dnmeta_rollback releases it. `durable` makes this
 * commit fsync the WAL whatever the sync mode (GC uses it before it
 * deletes a segment whose chunks moved). */
int dnmeta_begin(struct dnconn *c, bool durable);
int dnmeta_commit(struct dnconn *c);
void dnmeta_rollback(struct dnconn *c);

/* Inside a write transaction, one unit of several that commit together
 * (group commit): dnmeta_savepoint opens it; dnmeta_release(c, rc) keeps
 * its changes when rc == 0, else undoes them (and only them), and returns
 * rc or the release's own error. Savepoints do not nest here. Should
 * SQLite have rolled the whole transaction back after an error (disk full,
 * I/O error), dnmeta_in_txn turns false and every unit of it is lost:
 * dnmeta_savepoint then fails and the caller must fail the whole group. */
int dnmeta_savepoint(struct dnconn *c);
int dnmeta_release(struct dnconn *c, int rc);
bool dnmeta_in_txn(struct dnconn *c);

/* Copies the WAL into the database file (PASSIVE: never waits for
 * readers or writers). The automatic checkpoint only runs as a backstop
 * when the WAL reaches 64 MiB, so a long-running process calls this from a
 * background thread every few hundred milliseconds. *wal_frames (may be
 * NULL) gets the WAL's length in frames -- it starts over only when a
 * writer finds it entirely checkpointed -- and *done_frames how many of
 * them are now in the database file. Any thread. */
int dnmeta_checkpoint(struct dnmeta *m, int *wal_frames, int *done_frames);

/* In a write transaction. loc0 is chunk 0 (NULL for a 0-byte object).
 * -SILT_EEXIST if the id is taken. The caller accounts the chunks it
 * inserts with dnmeta_seg_add before it commits. */
int dnmeta_obj_insert(struct dnconn *c, const struct dn_oid *oid, const struct dnmeta_obj *o,
		      const struct dnloc *loc0);
/* Chunks 1.. (chunk 0 goes with the object). */
int dnmeta_chunk_insert(struct dnconn *c, const struct dn_oid *oid, uint32_t index,
			const struct dnloc *loc);
/* Deletes the object and its chunks; -SILT_ENOENT if it did not exist. */
int dnmeta_obj_delete(struct dnconn *c, const struct dn_oid *oid);
/* Moves a chunk if it is still at `from`; *moved says whether it was. */
int dnmeta_chunk_move(struct dnconn *c, const struct dn_oid *oid, uint32_t index,
		      const struct dnloc *from, const struct dnloc *to, bool *moved);
/* Adds inserted chunks to a segment's accounting: bytes (whole entries,
 * header included), chunks, and the highest entry end among them. */
int dnmeta_seg_add(struct dnconn *c, uint32_t stream, int64_t seg, uint64_t bytes, uint64_t chunks,
		   uint64_t max_end);
/* Forgets the accounting row of a segment that holds no live chunk. */
int dnmeta_seg_forget(struct dnconn *c, uint32_t stream, int64_t seg);

/* Reads (inside or outside a transaction). -SILT_ENOENT if no object.
 * loc0 (may be NULL) gets chunk 0's location when the object has one. */
int dnmeta_obj_get(struct dnconn *c, const struct dn_oid *oid, struct dnmeta_obj *o,
		   struct dnloc *loc0);
/* Where chunk `index` of oid is now; -SILT_ENOENT if nowhere. */
int dnmeta_chunk_loc(struct dnconn *c, const struct dn_oid *oid, uint32_t index,
		     struct dnloc *loc);
/* Chunks first..last (inclusive, first >= 1) in index order, at most max. */
int dnmeta_chunks_get(struct dnconn *c, const struct dn_oid *oid, uint32_t first, uint32_t last,
		      struct dnmeta_chunk *out, size_t max, size_t *n);
/* Slow path for reconciliation (scans both tables): up to max chunks
 * recorded in one segment whose entry ends after min_end (0: all). */
int dnmeta_seg_scan(struct dnconn *c, uint32_t stream, int64_t seg, uint64_t min_end,
		    struct dnmeta_chunk *out, size_t max, size_t *n);
/* In a write transaction: sets a segment's max_end (after reconciliation
 * proved nothing ends beyond it). */
int dnmeta_seg_set_max_end(struct dnconn *c, uint32_t stream, int64_t seg, uint64_t max_end);
/* Accounting of one segment (zeros if no row). */
int dnmeta_seg_get(struct dnconn *c, uint32_t stream, int64_t seg, struct dnmeta_seg *out);
/* Every accounting row; *out is heap (free it). */
int dnmeta_seg_list(struct dnconn *c, struct dnmeta_seg **out, size_t *n);

#endif
