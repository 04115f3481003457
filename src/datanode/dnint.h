/* dnint.h - data node internals shared by datanode.c and dngc.c. */
#ifndef SILT_DNINT_H
#define SILT_DNINT_H

#include "core/platform.h"
#include "datanode/datanode.h"
#include "datanode/dnmeta.h"

#include <pthread.h>
#include <stdatomic.h>

#define DN_SUB "datanode"
/* Stream ids: writers 0..DATANODE_MAX_STREAMS-1, then the GC volume. */
#define DN_GC_STREAM DATANODE_MAX_STREAMS
#define DN_NSTREAM_IDS (DATANODE_MAX_STREAMS + 1)

/* A put (or a GC pass) with chunks appended but not yet committed: GC must
 * not collect any segment that may hold them. */
struct dn_inflight {
	int64_t first_seq; /* INT64_MAX until the first append */
	struct dn_inflight *prev, *next;
};

struct dn_stream {
	uint32_t id;
	struct seglog *log;
	/* Serialises appends (the entry's seq is the volume's end offset,
	 * read just before the append) and guards the in-flight list. */
	pthread_mutex_t mu;
	struct dn_inflight *inflight;
};

struct datanode {
	char *dir;
	struct datanode_opts opts;
	unsigned nstreams;
	struct dn_stream *streams[DN_NSTREAM_IDS];
	struct dnmeta *meta;
	/* Group commits (datanode_put_commit_many) use one connection of
	 * their own, so that its page cache stays warm between groups. */
	pthread_mutex_t commit_mu;
	struct dnconn *commit_conn;
	pthread_mutex_t gc_mu;
	uint64_t oid_hi;
	atomic_uint_fast64_t oid_lo;
	/* How often the segment mappings were trimmed (map_account in
	 * datanode.c). */
	atomic_uint_fast64_t map_trims;
};

/* Appends one chunk entry to the stream and returns where it went. If fl
 * is not yet registered it is, with this entry's seq. */
int dn_append(struct dn_stream *st, const struct dn_oid *oid, uint32_t index, int64_t time_ms,
	      const void *data, uint32_t len, uint32_t crc, struct dn_inflight *fl,
	      struct dnloc *loc);
void dn_inflight_done(struct dn_stream *st, struct dn_inflight *fl);
int64_t dn_min_inflight(struct dn_stream *st);

ssize_t dn_pread(int fd, void *buf, size_t n, uint64_t off);
/* Checks an entry in memory (the header, and with verify the data too)
 * against the location record; NULL if it matches, else why not. */
const char *dn_check_entry(const uint8_t *p, const struct dn_oid *oid, uint32_t index,
			  const struct dnloc *loc, bool verify, struct dnchunk_hdr *h);
void dn_log_bad(const struct dn_oid *oid, uint32_t index, const struct dnloc *loc, const char *why);
/* Reads the entry at loc from a segment file of readable size seg_size into
 * buf (DNCHUNK_HDR + loc->len bytes, or just the header unless verify) and
 * checks it is chunk `index` of oid with loc's seq, length and CRC; with
 * verify also the data CRC. Logs and returns -SILT_ECORRUPT on mismatch. */
int dn_check_chunk(int fd, uint64_t seg_size, const struct dn_oid *oid, uint32_t index,
		   const struct dnloc *loc, uint8_t *buf, bool verify, struct dnchunk_hdr *h);

#endif
