/* route.h - the data routing service: where an object's bytes live.
 *
 * The API service hands object bytes to the router and gets back an opaque
 * locator to store in the metadata service; to read, it gives the locator
 * back. In single-node mode there is one data node in this process and the
 * placement is trivial (the writer's stream = its loop thread); a cluster
 * adds a placement map and remote data nodes behind the same calls.
 *
 * Locators: 'D', u8 version, u16 node id (big-endian), 16-byte object id;
 * version 2 then carries the data node's read hint (struct datanode_hint)
 * as uvarints size, chunk_bytes, stream, seg, seq, pos and a big-endian u32
 * CRC, so a GET of a small object needs no location lookup; version 1 (no
 * hint: 0-byte objects, and every locator written before version 2) is
 * still read. A completed multipart upload's locator ('M', built by the
 * metadata service) lists its parts' locators; reads and frees walk it.
 *
 * A hinted read trusts the hint only as far as the chunk header there
 * agrees with it (else it follows the data node's records), so a GET whose
 * object was freed meanwhile may still be served its old, verified bytes
 * rather than failing: the GET read the metadata before the free.
 *
 * Threads: puts belong to one thread; gets and frees from any thread. */
#ifndef SILT_S3_ROUTE_H
#define SILT_S3_ROUTE_H

#include "core/platform.h"

#define S3ROUTE_LOC_MAX 80 /* version 2: 20 + at most 54 of hint */

struct s3route;
struct s3route_put;
struct s3route_get;

int s3route_open(const char *data_dir, unsigned nstreams, struct s3route **out);
void s3route_close(struct s3route *rt);

int s3route_put_begin(struct s3route *rt, unsigned stream, struct s3route_put **out);
/* The data node's chunk size: writes of exactly this many bytes (when
 * nothing is buffered) are appended without a copy. */
uint32_t s3route_chunk_bytes(const struct s3route *rt);
int s3route_put_write(struct s3route_put *p, const void *data, size_t len);
/* Commits; loc receives the locator (S3ROUTE_LOC_MAX bytes), *loclen its
 * length. Frees p in every case. */
int s3route_put_commit(struct s3route_put *p, uint8_t *loc, size_t *loclen);
void s3route_put_abort(struct s3route_put *p);
/* Writes what the put still buffers to its volume; then the put only
 * waits for its commit (or abort). The put's error, if any. Owner thread. */
int s3route_put_seal(struct s3route_put *p);

/* Group commit of many puts (from any threads; the caller owns them all
 * now): one data-node transaction for the group, each put succeeding or
 * failing on its own (rc, and loc/loclen when 0). Frees every put. */
struct s3route_commit {
	struct s3route_put *put;
	int rc;
	uint8_t loc[S3ROUTE_LOC_MAX];
	size_t loclen;
};
void s3route_put_commit_many(struct s3route *rt, struct s3route_commit *v, size_t n);

/* Opens a read of [off, off+len) of the object at loc (single or
 * multipart). Bytes come out verified against their stored checksums.
 * loc is copied (the read walks a multipart locator lazily), so the caller
 * may release it right after this call. */
int s3route_get_open(struct s3route *rt, const uint8_t *loc, size_t loclen, uint64_t off, uint64_t len,
		     struct s3route_get **out);
/* Next run of verified bytes: 1 with *p and *n set (valid until the next call
 * or close), 0 at the end, or an error (-SILT_ECORRUPT: a checksum failed;
 * logged). */
int s3route_get_next(struct s3route_get *g, const uint8_t **p, size_t *n);
void s3route_get_close(struct s3route_get *g);

/* Frees the object's bytes (every part of a multipart locator). */
int s3route_free(struct s3route *rt, const uint8_t *loc, size_t loclen);
/* The same for n locators (as the metadata service lists them), in one
 * data-node transaction per 256 objects. Returns 0 or the last error
 * (-SILT_ENOENT is not one). */
struct s3meta_blob;
int s3route_free_many(struct s3route *rt, const struct s3meta_blob *locs, size_t n);
/* Checkpoints the data node's SQLite WAL (background thread); see
 * datanode_checkpoint. */
int s3route_checkpoint(struct s3route *rt, int *wal_frames, int *done_frames);

/* Space used and reclaimable, and one GC pass (housekeeping thread). */
int s3route_space(struct s3route *rt, uint64_t *used, uint64_t *reclaimable);
int s3route_gc(struct s3route *rt, double threshold, uint64_t max_bytes);

#endif
