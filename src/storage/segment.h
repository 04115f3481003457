/* segment.h - one segment of a seglog: its file, its in-memory sparse
 * offset and time indexes, their on-disk form, and header scans.
 *
 * Internal to storage/: only seglog.c uses it. The segment struct is shared
 * by reference (seglog_seg_unref in seglog.h); every other function here is
 * called by seglog.c under the locking rules described in seglog.c: index
 * arrays change only with the log's writer lock and its mutex held, and are
 * read under either.
 *
 * On disk (big-endian): .index holds 8-byte entries {u32 relative offset,
 * u32 position}; .timeindex 12-byte entries {i64 timestamp, u32 relative
 * offset}. A time entry (T, o) means every entry up to the end of the append
 * whose first offset is base+o has max_timestamp <= T. */
#ifndef SILT_STORAGE_SEGMENT_H
#define SILT_STORAGE_SEGMENT_H

#include "core/platform.h"
#include "storage/seglog.h"

#include <stdatomic.h>

#define SEGMENT_IDX_ENTRY 8
#define SEGMENT_TIDX_ENTRY 12
/* Header scans read this much at a time: one pread usually covers the
 * header we need plus the next few, so a Fetch costs one or two preads. */
#define SEGMENT_WIN_SIZE 4096
/* Positions and relative offsets are u32 on disk. */
#define SEGMENT_MAX_REL ((int64_t)UINT32_MAX - 1)

struct seg_idx {
	uint32_t rel;
	uint32_t pos;
};

struct seg_tidx {
	int64_t ts;
	uint32_t rel;
};

struct seg_map {
	const uint8_t *p;
	size_t len;
};

struct seglog_seg {
	atomic_int refs;
	int fd;
	_Atomic(struct seg_map *) map; /* seglog_seg_map's, unmapped with the last reference */
	int64_t base;
	uint64_t size; /* bytes of whole entries; readers never look past it */
	bool idx_loaded;
	struct seg_idx *idx;
	uint32_t nidx, capidx, idx_persisted;
	struct seg_tidx *tidx;
	uint32_t ntidx, captidx, tidx_persisted;
	int64_t max_ts;   /* largest entry timestamp, -1 none (valid once loaded) */
	int64_t last_off; /* first offset of the last append (or entry) */
	uint64_t bytes_since_idx;
	int64_t created_ms;  /* wall clock of the first append (mtime on reopen) */
	int64_t modified_ms; /* wall clock of the last append (mtime on reopen) */
};

/* A window over one segment file for header scans, on the caller's stack
 * (no allocation per read). */
struct segment_win {
	int fd;
	uint64_t off;
	size_t len;
	uint8_t buf[SEGMENT_WIN_SIZE];
};

/* pread/pwrite that retry on EINTR and short transfers. pread returns the
 * bytes read (short only at end of file) or -errno. */
ssize_t segment_pread_full(int fd, void *buf, size_t n, uint64_t off);
int segment_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
/* dir/<20-digit base><ext> */
void segment_path(const char *dir, int64_t base, const char *ext, char *out, size_t n);

/* A segment over fd with one reference (the log's). */
struct seglog_seg *segment_new(int fd, int64_t base);
void segment_ref(struct seglog_seg *s);

/* Lookups in the in-memory indexes: largest entry with rel <= rel / pos <=
 * pos / ts < ts, or -1; the file position to scan from for offset. */
int64_t segment_find_rel(const struct seglog_seg *s, uint64_t rel);
int64_t segment_find_pos(const struct seglog_seg *s, uint64_t pos);
int64_t segment_tidx_before(const struct seglog_seg *s, int64_t ts);
uint64_t segment_pos_for_offset(const struct seglog_seg *s, int64_t offset);

/* Records an append (or a recovered entry) of len bytes at pos whose first
 * offset is `first`, adding index entries per the interval rule. */
void segment_note_append(struct seglog_seg *s, uint32_t interval, int64_t first, uint64_t pos,
			 uint64_t len, int64_t max_ts);
/* Adds the closing time entry (on roll and close) if the max grew. */
void segment_final_tidx(struct seglog_seg *s);
void segment_reset_index(struct seglog_seg *s);

void segment_win_init(struct segment_win *w, int fd);
/* Reads and checks the entry header at pos through the window; the entry
 * must end by limit. 0, -SILT_ECORRUPT or -errno. */
int segment_win_entry(const struct seglog_format *fmt, struct segment_win *w, uint64_t pos,
		      uint64_t limit, struct seglog_entry *e);

/* Writes index entries not yet on disk and cuts the files to the in-memory
 * length; fdatasyncs them if sync. */
int segment_persist_index(const char *dir, struct seglog_seg *s, bool sync);
/* Loads and validates both index files (rel_limit: the next segment's base
 * minus base, or -1). Leaves s untouched and returns -SILT_ECORRUPT if they
 * are missing (unless allow_missing), short or inconsistent. */
int segment_load_index(const char *dir, size_t header_size, struct seglog_seg *s,
		       int64_t rel_limit, bool allow_missing);
/* Rebuilds an inactive segment's indexes from entry headers and writes them. */
int segment_rebuild_index(const char *dir, const struct seglog_format *fmt, uint32_t interval,
			  struct seglog_seg *s);

#endif
