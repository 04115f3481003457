/* seglog.h - a segmented, append-only log on disk.
 *
 * Shared by the Kafka partitions (entries are record batches, stored exactly
 * as on the wire so Fetch can sendfile them) and, later, the object store's
 * volume files. The log does not know the entry format: a `seglog_format`
 * callback tells it, for bytes at the head of a buffer, how long the entry is,
 * which logical offsets it covers and its max timestamp, and whether its
 * checksum holds. Offsets are assigned by the caller (who asks
 * seglog_end_offset) and written into the entry bytes before append.
 *
 * On disk, a directory per log holds segments named by their base offset as
 * 20-digit decimal: 00000000000000000000.log (entries), .index (sparse
 * offset->position, 8-byte entries: u32 relative offset, u32 position,
 * big-endian) and .timeindex (12-byte entries: i64 timestamp, u32 relative
 * offset). Segments roll by size and age; non-active segments are read-only.
 * A `.clean` file written by seglog_close marks a clean shutdown: opening a
 * clean log reads no entry data (fast restart); opening an unclean one scans
 * the active segment with the format callback, truncates a torn or corrupt
 * tail at the last valid entry, rebuilds its indexes and logs what it did.
 *
 * Threads: every function is safe to call from any thread; an internal mutex
 * guards the segment list and end offset. Appends are expected from one
 * writer at a time (the partition's), reads from many. Reads hand out a
 * counted reference to a segment so that retention may delete a segment
 * while a fetch still sends from it (the file is unlinked at once and closed
 * when the last reference goes).
 *
 * Errors: 0 or negative (-errno, -SILT_E*), see silt_strerror(). */
#ifndef SILT_SEGLOG_H
#define SILT_SEGLOG_H

#include "core/platform.h"

#include <sys/uio.h>

/* What a format callback reports about the entry at the head of a buffer. */
struct seglog_entry {
	uint64_t size;        /* whole entry, bytes */
	int64_t first_offset; /* logical offsets covered, inclusive */
	int64_t last_offset;
	int64_t max_timestamp; /* ms, or -1 */
};

struct seglog_format {
	/* Bytes needed to call scan_header (Kafka: 61). */
	size_t header_size;
	/* From header_size bytes at p: fills e (size, offsets, timestamp)
	 * without checking the body. 0 or -SILT_ECORRUPT. */
	int (*scan_header)(const uint8_t *p, size_t len, struct seglog_entry *e);
	/* Given the whole entry (len == e->size), verifies its checksum and
	 * structure. 0 or -SILT_ECORRUPT. */
	int (*verify)(const uint8_t *p, size_t len);
};

struct seglog_opts {
	uint64_t segment_bytes;        /* roll when the active segment would exceed this (Kafka log.segment.bytes, 1 GiB) */
	int64_t segment_ms;            /* roll when the active segment is older (log.roll.ms, 7 days) */
	uint32_t index_interval_bytes; /* bytes between index entries (4096) */
	int64_t flush_messages;        /* fsync after this many offsets appended, 0 = never (page cache decides) */
	int64_t flush_ms;              /* fsync when the oldest unflushed append is older, 0 = never */
	/* Start writeback (sync_file_range, no wait) of the active segment
	 * every this many appended bytes, 0 = never. Keeps dirty pages from
	 * piling up until the roll's fsync, which the appending thread then
	 * waits out whole (~1 s for a 1 GiB segment). */
	uint64_t writeback_bytes;
};

void seglog_opts_default(struct seglog_opts *o);

struct seglog;
struct seglog_seg; /* a segment, reference counted */

/* Opens (creating if needed) the log in dir. *out owned by the caller. */
int seglog_open(const char *dir, const struct seglog_opts *opts, const struct seglog_format *fmt,
		struct seglog **out);
/* Flushes, writes the clean-shutdown marker, frees. */
void seglog_close(struct seglog *log);
/* Closes and removes the directory and every file in it. */
int seglog_destroy(struct seglog *log);
void seglog_set_opts(struct seglog *log, const struct seglog_opts *opts);

int64_t seglog_start_offset(struct seglog *log); /* first offset kept */
int64_t seglog_end_offset(struct seglog *log);   /* next offset to assign */
uint64_t seglog_size_bytes(struct seglog *log);  /* all segments */
int64_t seglog_flushed_offset(struct seglog *log); /* every offset below is fsynced */

/* Appends one or more whole entries (their bytes in iov) covering offsets
 * [seglog_end_offset(), last_offset]; max_timestamp is the entries' max.
 * Rolls first if the active segment is full or old. The bytes are not
 * re-verified. On return the entries are readable; durability follows
 * flush_messages/flush_ms, or call seglog_flush. */
int seglog_append(struct seglog *log, const struct iovec *iov, int iovcnt, int64_t last_offset,
		  int64_t max_timestamp);

/* fsyncs the active segment; returns 0 and sets *flushed_offset (may be
 * NULL) to the new seglog_flushed_offset. The active segment's indexes are
 * not synced: recovery rebuilds them from the (synced) data. */
int seglog_flush(struct seglog *log, int64_t *flushed_offset);
/* Runs the flush_messages / flush_ms policy; call periodically. */
int seglog_maybe_flush(struct seglog *log, int64_t now_ms);

/* A read: a byte range of one segment's file. */
struct seglog_read {
	struct seglog_seg *seg; /* reference held; release with seglog_seg_unref */
	int fd;                 /* the segment's file, valid while seg is held */
	uint64_t pos;           /* file position of the entry containing the offset */
	uint64_t len;           /* bytes from pos, whole entries up to max_bytes
	                         * except that the first entry is always whole */
	int64_t first_offset;   /* of the first entry in the range */
};

/* Finds the entry containing `offset` and returns the range starting there,
 * at most max_bytes long (but always the whole first entry) and never past
 * the segment's end, only whole entries. If offset == end offset, returns 0
 * with len 0 and seg NULL. Offsets below start or above end give
 * -SILT_ERANGE. */
int seglog_read(struct seglog *log, int64_t offset, uint64_t max_bytes, struct seglog_read *out);
void seglog_seg_unref(struct seglog_seg *seg);
/* A read-only shared mapping of the segment's file from position 0, made
 * on the first call (span bytes, rounded up to pages; pages past the file's
 * end are mapped but must never be touched) and shared by every holder of a
 * reference until the last one goes. *len is the mapped length. NULL when
 * the mapping cannot be made (the caller reads another way). Only bytes
 * below the size the caller saw published (seglog_read.len) may be read:
 * a segment never shrinks below that while a reference is held. */
const uint8_t *seglog_seg_map(struct seglog_seg *seg, uint64_t span, uint64_t *len);
/* Drops the page-table entries of every open segment's mapping
 * (MADV_DONTNEED): the pages stay in the page cache and the mappings stay
 * valid, a later read faults them back in. Keeps the process's resident
 * size from growing with every byte ever read through a mapping. Safe
 * while other threads read the mappings. */
void seglog_trim_maps(struct seglog *log);

/* First offset of the first entry whose max_timestamp >= ts, or the end
 * offset if none; negative (-errno, -SILT_ECORRUPT) if the segment could
 * not be read. */
int64_t seglog_offset_for_time(struct seglog *log, int64_t ts);

/* Deletes whole non-active segments: oldest first while the log is over
 * retention_bytes (-1 = unlimited), and any segment whose newest timestamp is
 * older than now_ms - retention_ms (-1 = unlimited). Returns the number of
 * segments deleted (>= 0) or an error. The start offset moves forward. */
int seglog_retain(struct seglog *log, int64_t retention_ms, int64_t retention_bytes, int64_t now_ms);

/* Removes every entry with offsets >= offset (for followers, later).
 * Offset must be an entry boundary. */
int seglog_truncate(struct seglog *log, int64_t offset);

/* Counters about the log, for tests and metrics. The open_* fields describe
 * what the last seglog_open did: a clean open reads no entry bytes
 * (open_scanned_bytes == 0) and only the headers after the last index entry
 * of the active segment (open_headers_read). */
struct seglog_stats {
	uint32_t segments;
	bool open_was_clean;             /* marker present and indexes trusted */
	uint64_t open_scanned_bytes;     /* entry bytes read by recovery */
	uint64_t open_headers_read;      /* entry headers read by a clean open */
	uint64_t open_recovered_entries; /* entries kept by recovery */
	uint64_t open_truncated_bytes;   /* torn/corrupt tail cut by recovery */
};

void seglog_get_stats(struct seglog *log, struct seglog_stats *st);

/* ---- segment-level access (the object store's data node) -------------- *
 * The data node stores chunks of objects as entries and keeps their
 * locations (segment base, position) in its own table, so it reads a known
 * segment at a known position and garbage-collects segments one at a time,
 * not only from the oldest end. */

struct seglog_seg_info {
	int64_t base;  /* first offset of the segment (its name) */
	uint64_t size; /* bytes of whole entries */
	bool active;   /* the last segment, still appended to */
};

/* Copies the description of up to max segments, oldest first, into out;
 * returns how many segments the log has (may be more than max). */
size_t seglog_segments(struct seglog *log, struct seglog_seg_info *out, size_t max);
/* Describes the segment holding `offset` (start <= offset < end):
 * 0, or -SILT_ERANGE. */
int seglog_segment_of(struct seglog *log, int64_t offset, struct seglog_seg_info *out);
/* A reference to the segment named `base`: out->seg (release with
 * seglog_seg_unref), out->fd, out->pos = 0, out->len = its size now,
 * out->first_offset = base. -SILT_ENOENT if there is no such segment. */
int seglog_seg_get(struct seglog *log, int64_t base, struct seglog_read *out);
/* Deletes one non-active segment (any, not only the oldest); readers that
 * hold a reference keep reading the unlinked file. The offsets it held
 * become a gap. 0, -SILT_ENOENT (no such segment) or -SILT_EINVAL (it is the
 * active one). */
int seglog_delete_segment(struct seglog *log, int64_t base);

#endif
