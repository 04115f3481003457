/* datanode.h - the object store's data node: object bytes in volume files.
 *
 * The data node knows opaque 128-bit object ids and byte streams, nothing of
 * S3 (buckets, keys, versions, ETags are the metadata and API services'
 * business). An object is written once, read by byte ranges, deleted whole.
 *
 * Layout, in the directory given to datanode_open (normally
 * `<data-dir>/datanode/`):
 *
 *   meta.db (+ -wal, -shm)   SQLite: chunk locations, per-segment live bytes
 *                            (schema in dnmeta.h)
 *   vol-000/ ... vol-NNN/    one seglog per writer stream (volume files:
 *                            the active segment is written, rolled segments
 *                            are sealed read-only)
 *   vol-gc/                  the seglog GC copies live chunks into
 *
 * Object data is cut into chunks of `chunk_bytes` (the last one shorter);
 * each chunk is one seglog entry, a 56-byte header (magic, object id, chunk
 * index, length, CRC-32C of the data, header CRC; see dnchunk.h) then the
 * bytes. A 0-byte object has no chunk. The entry's seglog offset is the
 * volume's chunk sequence number.
 *
 * Hashes: the data node computes no MD5/SHA; the API service hashes the
 * byte stream as it passes through. The data node keeps a CRC-32C per chunk
 * for its own integrity checks.
 *
 * Memory: a put buffers at most one chunk of data (large writes are not
 * copied at all) plus 40 bytes of location per chunk until commit (5 GiB in
 * 1 MiB chunks: 200 KiB); a GET holds one chunk; GC holds a 1 MiB window.
 *
 * Write order and durability: a put appends its chunks to its stream's
 * volume as they fill (memory stays at one chunk); commit appends the last
 * one and inserts the object and all its chunk locations in ONE SQLite
 * transaction after it. Commits are grouped (datanode_put_commit_many): the
 * last chunks of a group go to each volume with one write, and the whole
 * group's rows with one transaction. A crash before commit leaves no object, only
 * unreferenced chunks (garbage, reclaimed by GC). When commit returns, the
 * chunks are in the page cache and the transaction is in the WAL (written,
 * synchronous=NORMAL): the object survives kill -9 of the process. Against
 * power loss, set `sync_commit` (commit fdatasyncs the volume, then commits
 * with synchronous=FULL); without it a power cut may lose recent objects,
 * and the open-time reconciliation removes (and logs) any object whose
 * chunks did not survive, while a chunk whose bytes went bad fails its CRC
 * on every read: never wrong bytes.
 *
 * Reads look the chunk rows up (or, for chunk 0, take the caller's hint:
 * datanode_get_open_hint), take a counted reference to the segment, read
 * the whole chunk (pread; chunks of 64 KiB and more are mapped read-only
 * instead, so the check runs over the page cache and piece.data points
 * into the mapping) and check its header against the row and its data
 * against the CRC before handing out any byte; a mismatch is logged and the
 * read fails with -SILT_ECORRUPT (other objects are unaffected). A piece
 * (segment ref, fd, position, length) can then be sent with sendfile, or the
 * verified bytes sent or copied from piece.data.
 *
 * GC compacts sealed segments whose live ratio is under a threshold: it
 * scans the segment file, copies each entry whose location row still points
 * there (CRC checked) to the GC volume, switches the locations in SQLite in
 * batches (only rows still pointing at the old place move, so a concurrent
 * delete wins), fsyncs the GC volume before each switch and the WAL at the
 * end, then deletes the segment (details in dngc.c). Readers holding a reference to
 * the old segment keep reading its unlinked file; readers that looked a
 * location up before the switch find the segment gone and look it up again.
 * Segments holding chunks of puts still in flight are never collected (each
 * stream tracks the first sequence number of every uncommitted put).
 *
 * Threads:
 *   - datanode_open/close: one thread, nothing else in flight.
 *   - puts: a put handle belongs to one thread at a time. The caller picks
 *     the stream, normally its own loop index, so writers on different cores
 *     append to different files; several puts may be in flight on one
 *     stream (their chunks interleave), and puts on one stream from several
 *     threads are correct but serialise on the stream's append mutex.
 *   - get/read/stat/delete/space: any thread.
 *   - gc_run: any thread (meant for a background thread); runs serialise.
 * Every call may block on file I/O (pread, pwritev, SQLite; fsync only with
 * sync_commit, on segment roll and in GC).
 *
 * Errors: 0 or negative (-errno, -SILT_E*), see silt_strerror(). */
#ifndef SILT_DATANODE_H
#define SILT_DATANODE_H

#include "core/platform.h"
#include "datanode/dnchunk.h"
#include "storage/seglog.h"

#define DATANODE_MAX_STREAMS 256 /* writer streams, ids 0..255 */

struct datanode_opts {
	uint64_t segment_bytes;    /* volume segment size; sealed when full (1 GiB) */
	uint32_t chunk_bytes;      /* data bytes per chunk (1 MiB, at most DNCHUNK_MAX_DATA) */
	uint64_t max_object_bytes; /* puts beyond this fail with -SILT_ETOOBIG (5 GiB) */
	bool sync_commit;          /* commit survives power loss (see above); false */
	/* Reads go through shared mappings of the volume segments; once the
	 * process holds more than this of file-backed pages resident, every
	 * mapping's page-table entries are dropped (seglog_trim_maps), so a
	 * 5 GiB GET does not show as 5 GiB of RSS (64 MiB). */
	uint64_t map_resident_max;
};

void datanode_opts_default(struct datanode_opts *o);

struct datanode;
struct datanode_put;
struct datanode_get;

/* Opens (creating) the data node in dir with nstreams writer streams
 * (1..DATANODE_MAX_STREAMS). Volumes of streams beyond nstreams left by an
 * earlier run stay readable. Recovers torn volume tails (seglog) and
 * reconciles SQLite with the volumes: an object with a chunk beyond a
 * volume's end or in a missing segment is logged and removed. */
int datanode_open(const char *dir, unsigned nstreams, const struct datanode_opts *opts,
		  struct datanode **out);
/* No put, get or GC may be in flight. */
void datanode_close(struct datanode *dn);

/* Lower-case hex, 32 characters and a NUL. */
void datanode_oid_fmt(const struct dn_oid *oid, char out[33]);
int datanode_oid_parse(const char *hex, struct dn_oid *oid);

/* Where chunk 0 of an object was written, with the object's shape: enough
 * to read an object without asking SQLite. A caller may keep it next to the
 * object id (the router stores it in the locator) and hand it back to
 * datanode_get_open_hint. A hint is only ever a hint: GC may have moved the
 * chunk since, and then the read looks the location up in SQLite. */
struct datanode_hint {
	uint64_t size;
	uint32_t chunk_bytes;
	uint32_t stream;
	int64_t seg;
	int64_t seq;
	uint64_t pos;
	uint32_t crc; /* CRC-32C of chunk 0's data */
};

struct datanode_obj_info {
	uint64_t size;
	uint32_t chunk_bytes; /* chunk size the object was written with */
	uint32_t nchunks;
	int64_t ctime_ms; /* commit time */
	bool has_hint;    /* hint is set (every object with at least one chunk) */
	struct datanode_hint hint;
};

/* ---- writes ---- */

/* Starts a put on writer stream `stream`. oid NULL: the data node makes a
 * fresh unique id (returned by commit); otherwise the caller's id is used
 * and commit fails with -SILT_EEXIST if it is taken. */
int datanode_put_begin(struct datanode *dn, unsigned stream, const struct dn_oid *oid,
		       struct datanode_put **out);
/* Adds bytes. Buffers at most one chunk; full chunks are appended to the
 * volume (large writes go straight from the caller's buffer). After an
 * error the put can only be aborted. */
int datanode_put_write(struct datanode_put *w, const void *data, size_t len);
/* Appends the last chunk and records the object; frees w in every case.
 * oid and info may be NULL. (datanode_put_commit_many of one put.) */
int datanode_put_commit(struct datanode_put *w, struct dn_oid *oid, struct datanode_obj_info *info);

/* Ends the put's data: the last chunk (still in the put's buffer) gets its
 * CRC, and the put now only waits for datanode_put_commit_many or
 * datanode_put_abort; further writes fail. Returns the put's error, if any
 * (the commit then reports it again). No I/O: the commit appends the last
 * chunks of a whole group with one write per volume. */
int datanode_put_seal(struct datanode_put *w);

struct datanode_put_result {
	int rc; /* 0: recorded */
	struct dn_oid oid;
	struct datanode_obj_info info;
};

/* Group commit: seals every put (if not yet), appends the last chunks
 * (one write per volume), and records all the puts in ONE SQLite
 * transaction, each in its own savepoint, so an insert that fails (an id
 * already taken) fails only its own put. An error of the transaction
 * itself (commit, I/O, disk full) or of a volume write fails every put it
 * concerns. With sync_commit every volume written to is fdatasynced once
 * for the group. res[i] is put i's result. Frees every w[i]. The puts may
 * come from any streams and threads; the caller must own them all now. */
void datanode_put_commit_many(struct datanode *dn, struct datanode_put *const *w, size_t n,
			      struct datanode_put_result *res);
/* Drops the put; chunks already appended become garbage. Frees w. */
void datanode_put_abort(struct datanode_put *w);
/* Bytes of data buffer the put holds now (tests: never above chunk_bytes). */
size_t datanode_put_buffer_bytes(const struct datanode_put *w);

/* ---- reads ---- */

int datanode_stat(struct datanode *dn, const struct dn_oid *oid, struct datanode_obj_info *info);

/* A piece of a GET: `len` object bytes at `pos` in the segment file `fd`.
 * The caller owns the reference `seg` (release with seglog_seg_unref or
 * datanode_piece_release) and may sendfile from fd while holding it, even
 * if GC deletes the segment meanwhile. `data` is the same bytes, verified,
 * valid until the next datanode_get_next or datanode_get_close (NULL with
 * DATANODE_GET_NOVERIFY). */
struct datanode_piece {
	struct seglog_seg *seg;
	int fd;
	uint64_t pos;
	uint64_t len;
	const uint8_t *data;
};

enum {
	/* Check only each chunk's header (a 56-byte pread), not its data: for
	 * callers that verify end to end themselves. Never the default. */
	DATANODE_GET_NOVERIFY = 1,
};

/* Starts a read of [off, off+len) of the object; len UINT64_MAX means to
 * the end. -SILT_ENOENT (no object), -SILT_ERANGE (off > size; off ==
 * size gives an empty read). info (may be NULL) gets the object's size;
 * the range is clamped to it. */
int datanode_get_open(struct datanode *dn, const struct dn_oid *oid, uint64_t off, uint64_t len,
		      unsigned flags, struct datanode_get **out, struct datanode_obj_info *info);
/* The same, trusting `hint` (from datanode_obj_info at commit) for the
 * object's shape and chunk 0's place, so a read of a one-chunk object
 * touches no SQLite. Chunk 0's entry is still checked against the hint
 * (object id, index, sequence number, length and CRC in its header, then
 * the data CRC) before any byte is handed out; if the header does not match
 * or the segment is gone (GC moved the chunk), the read falls back to the
 * recorded location, and fails with -SILT_ENOENT if there is none. A data
 * CRC mismatch under a matching header is corruption (-SILT_ECORRUPT).
 * Because the hinted read does not look the object up, a read of an object
 * that was deleted may still return its (verified) bytes until GC reclaims
 * them: callers that must not see deleted objects do not pass a hint.
 * info (may be NULL) gets the hint's shape (ctime_ms 0). A malformed hint
 * (inconsistent shape) is -SILT_ECORRUPT. */
int datanode_get_open_hint(struct datanode *dn, const struct dn_oid *oid, const struct datanode_hint *hint,
			   uint64_t off, uint64_t len, unsigned flags, struct datanode_get **out,
			   struct datanode_obj_info *info);
/* Next piece, in order: 1 (piece filled), 0 (done) or an error (the
 * range cannot be completed; -SILT_ECORRUPT after a failed check,
 * -SILT_ENOENT if the object was deleted meanwhile). Each piece lies in
 * one chunk; its chunk was checked before the call returns. */
int datanode_get_next(struct datanode_get *g, struct datanode_piece *p);
void datanode_get_close(struct datanode_get *g);
void datanode_piece_release(struct datanode_piece *p);

/* Copies [off, off+len) into buf after verifying; *got (may be NULL) is
 * the bytes copied (short at the object's end). */
int datanode_read(struct datanode *dn, const struct dn_oid *oid, uint64_t off, void *buf,
		  size_t len, size_t *got);

/* Removes the object's locations (its bytes become garbage). -SILT_ENOENT
 * if there is no such object. */
int datanode_delete(struct datanode *dn, const struct dn_oid *oid);
/* The same for n objects in one SQLite transaction: rcs[i] per object
 * (0 or -SILT_ENOENT); a failure of the transaction itself is returned and
 * copied to every rcs[i] (then nothing was deleted). */
int datanode_delete_many(struct datanode *dn, const struct dn_oid *oids, size_t n, int *rcs);

/* Copies the SQLite WAL into the database (PASSIVE). SQLite's automatic
 * checkpoint, which would run inside a commit and stall it for its
 * fsyncs, is only a backstop at 64 MiB of WAL: a server calls this from a
 * background thread every few hundred milliseconds. The WAL's length and
 * how much of it is checkpointed, in frames, as dnmeta_checkpoint. */
int datanode_checkpoint(struct datanode *dn, int *wal_frames, int *done_frames);

/* ---- space and GC ---- */

/* used: bytes of all volume files; reclaimable: bytes of dead entries in
 * sealed segments (what a GC with threshold 1.0 would free). */
int datanode_space(struct datanode *dn, uint64_t *used, uint64_t *reclaimable);
/* How many times the read mappings were trimmed (opts.map_resident_max). */
uint64_t datanode_map_trims(struct datanode *dn);

struct datanode_gc_stats {
	uint32_t segments_freed;
	uint64_t bytes_freed;   /* size of the deleted segments */
	uint64_t bytes_copied;  /* live entry bytes rewritten */
	uint64_t chunks_copied;
	uint32_t chunks_corrupt; /* left in place (reads of them fail) */
};

/* Compacts sealed segments whose live bytes / size < threshold (0..1),
 * emptiest first, until about max_bytes live bytes were copied (a segment
 * once started is finished). st may be NULL. Returns 0 or an error. */
int datanode_gc_run(struct datanode *dn, double threshold, uint64_t max_bytes,
		    struct datanode_gc_stats *st);

#endif
