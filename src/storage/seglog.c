/* seglog.c - segmented append-only log (see seglog.h for the contract).
 *
 * Layout in memory: an array of segments (storage/segment.h) ordered by
 * base offset; the last one is active. Each segment keeps its sparse offset index and time index
 * as host-order arrays. The active segment's arrays are always loaded and
 * grow on append; they reach disk only on roll, close and truncate, because
 * a crash makes recovery rebuild them from the data anyway (only the active
 * segment can need recovery: a roll fsyncs the old segment and its indexes
 * before the new segment file exists). Older segments load their index
 * files lazily, on the first read, time lookup or retention check that
 * touches them, validating every entry; a bad index is rebuilt by scanning
 * entry headers.
 *
 * Index entries are placed at append granularity: an append starts with a
 * whole entry whose first offset is the end offset, so (end - base, pos) is
 * always a valid entry start, and the log never needs to split the iovec
 * into entries. Recovery rebuilds them at entry granularity; both are valid
 * sparse indexes.
 *
 * A time index entry (T, o) means: every entry up to the end of the append
 * whose first offset is o has max_timestamp <= T. (Kafka stores the offset
 * of the max-timestamp record instead; ours says exactly what T covers, which
 * truncation needs.) Entries are added at offset-index points when T grows,
 * plus a final one on roll and close (o = the last append) so that the last
 * time entry of an inactive segment is its max timestamp.
 *
 * Locking: `mu` guards the segment array, each segment's size and index
 * arrays, end/flushed offsets and stats, and is held only for in-memory work
 * (plus the one-time lazy index load of an old segment). `wmu` serialises
 * the writers (append, roll, retention, truncate, close) so they can do
 * their file I/O (pwritev, fsync, unlink, ftruncate) without holding `mu`:
 * readers never wait for a disk flush. Lock order: wmu, then mu. Readers
 * take a segment reference under mu and pread outside it; a segment's fd is
 * closed when the last reference goes. seglog_flush takes neither lock
 * while it syncs, so group-commit flushes do not stall appends or reads.
 * A roll fsyncs the old segment holding wmu (not mu): the writer waits for
 * one fsync per segment, readers do not. */
#include "core/platform.h"
#include "storage/seglog.h"
#include "storage/segment.h"

#include "core/log.h"
#include "core/rd.h"
#include "core/util.h"
#include "core/wbuf.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUB "storage"
#define MAX_HEADER_SIZE 1024
/* Recovery reads the active segment in chunks of this size. */
#define RECOVER_CHUNK (1u << 20)

struct seglog {
	pthread_mutex_t mu;
	pthread_mutex_t wmu;
	char *dir;
	struct seglog_format fmt;
	struct seglog_opts opts;
	struct seglog_seg **segs;
	size_t nsegs, capsegs;
	int64_t end;
	int64_t flushed;
	int64_t unflushed_since_ms; /* 0 when everything is flushed */
	uint64_t total_bytes;
	uint64_t epoch; /* bumped by truncate so a racing flush cannot overstate */
	struct seglog_stats stats;
	/* writeback_bytes: the active segment (by base) and how far its
	 * writeback was started. Writers only (wmu). */
	int64_t wb_base;
	uint64_t wb_pos;
};

void seglog_trim_maps(struct seglog *log)
{
	pthread_mutex_lock(&log->mu);
	for (size_t i = 0; i < log->nsegs; i++) {
		struct seg_map *m = atomic_load_explicit(&log->segs[i]->map, memory_order_acquire);
		if (m)
			(void)madvise((void *)m->p, m->len, MADV_DONTNEED);
	}
	pthread_mutex_unlock(&log->mu);
}

void seglog_opts_default(struct seglog_opts *o)
{
	o->segment_bytes = 1ull << 30;
	o->segment_ms = 7ll * 24 * 3600 * 1000;
	o->index_interval_bytes = 4096;
	o->flush_messages = 0;
	o->flush_ms = 0;
	o->writeback_bytes = 0;
}

static int64_t file_mtime_ms(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return now_ms();
	return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* Makes sure s's indexes are in memory. Called with mu held: the load is a
 * one-time cost per inactive segment (a few MiB for a 1 GiB segment). */
static int seg_ensure_index(struct seglog *log, size_t i)
{
	struct seglog_seg *s = log->segs[i];
	if (s->idx_loaded)
		return 0;
	int64_t rel_limit = i + 1 < log->nsegs ? log->segs[i + 1]->base - s->base : -1;
	int rc = segment_load_index(log->dir, log->fmt.header_size, s, rel_limit, s->size == 0);
	if (rc == 0) {
		s->idx_loaded = true;
		return 0;
	}
	if (rc != -SILT_ECORRUPT)
		return rc;
	log_warn(SUB, "%s: index of segment %020" PRId64 " is missing or corrupt, rebuilding",
		 log->dir, s->base);
	return segment_rebuild_index(log->dir, &log->fmt, log->opts.index_interval_bytes, s);
}

/* ---- opening and recovery ---------------------------------------------- */

static int open_seg_file(struct seglog *log, int64_t base, bool create, struct seglog_seg **out)
{
	char path[PATH_MAX];
	segment_path(log->dir, base, ".log", path, sizeof(path));
	int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0), 0644);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	struct seglog_seg *s = segment_new(fd, base);
	s->size = (uint64_t)st.st_size;
	s->created_ms = s->modified_ms =
		(int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
	*out = s;
	return 0;
}

/* A forward reader over a file for recovery: keeps [pos, pos+n) in memory,
 * reading ahead in RECOVER_CHUNK pieces. n is capped by the caller at the
 * bytes left in the file, so allocation follows real data. */
struct fwd {
	int fd;
	uint64_t fsize;
	uint8_t *buf;
	size_t cap;
	uint64_t off, len;
	uint64_t *counter;
};

/* Returns a pointer to n bytes at pos, NULL with *rc = 0 if the file ended
 * early, or NULL with *rc = -errno. */
static const uint8_t *fwd_get(struct fwd *f, uint64_t pos, uint64_t n, int *rc)
{
	*rc = 0;
	if (pos >= f->off && pos + n <= f->off + f->len)
		return f->buf + (pos - f->off);
	if (n > f->cap) {
		f->cap = (size_t)n;
		f->buf = xrealloc(f->buf, f->cap);
	}
	size_t want = (size_t)SILT_MIN((uint64_t)f->cap, f->fsize - pos);
	ssize_t r = segment_pread_full(f->fd, f->buf, want, pos);
	if (r < 0) {
		*rc = (int)r;
		return NULL;
	}
	f->off = pos;
	f->len = (uint64_t)r;
	*f->counter += (uint64_t)r;
	return n <= f->len ? f->buf : NULL;
}

/* Scans the last segment from its start, verifying every entry, cuts the
 * file at the first torn or corrupt one and rebuilds its indexes. */
static int recover_active(struct seglog *log, struct seglog_seg *s)
{
	size_t hs = log->fmt.header_size;
	struct fwd f = { s->fd, s->size, xmalloc(RECOVER_CHUNK), RECOVER_CHUNK, 0, 0,
			 &log->stats.open_scanned_bytes };
	uint64_t pos = 0, fsize = s->size, nentries = 0;
	int64_t expect = s->base;
	const char *why = NULL;
	const uint8_t *p;
	struct seglog_entry e;
	int rc = 0;

	segment_reset_index(s);
	while (pos < fsize) {
		if (fsize - pos < hs) {
			why = "partial entry header";
			break;
		}
		if (!(p = fwd_get(&f, pos, hs, &rc))) {
			if (rc)
				goto out;
			why = "file shorter than its size";
			break;
		}
		memset(&e, 0, sizeof(e));
		if (log->fmt.scan_header(p, hs, &e) != 0 || e.size < hs) {
			why = "bad entry header";
			break;
		}
		if (e.size > fsize - pos) {
			why = "torn entry";
			break;
		}
		if (e.first_offset != expect || e.last_offset < e.first_offset ||
		    e.last_offset - s->base > SEGMENT_MAX_REL || e.size > UINT32_MAX) {
			why = "entry offsets out of sequence";
			break;
		}
		if (!(p = fwd_get(&f, pos, e.size, &rc))) {
			if (rc)
				goto out;
			why = "file shorter than its size";
			break;
		}
		if (log->fmt.verify(p, (size_t)e.size) != 0) {
			why = "checksum or structure mismatch";
			break;
		}
		segment_note_append(s, log->opts.index_interval_bytes, e.first_offset, pos, e.size,
				e.max_timestamp);
		pos += e.size;
		expect = e.last_offset + 1;
		nentries++;
	}
	if (pos < fsize) {
		if (ftruncate(s->fd, (off_t)pos) != 0) {
			rc = -errno;
			goto out;
		}
		log->stats.open_truncated_bytes = fsize - pos;
	}
	s->size = pos;
	if (fdatasync(s->fd) != 0) {
		rc = -errno;
		goto out;
	}
	s->idx_loaded = true;
	if ((rc = segment_persist_index(log->dir, s, true)) != 0)
		goto out;
	log->stats.open_recovered_entries = nentries;
	log->end = expect;
	if (why)
		log_warn(SUB, "%s: recovered segment %020" PRId64 ": %" PRIu64 " entries kept, %" PRIu64
			 " bytes truncated at position %" PRIu64 " (%s)",
			 log->dir, s->base, nentries, fsize - pos, pos, why);
	else
		log_warn(SUB, "%s: recovered segment %020" PRId64 " after unclean shutdown: %" PRIu64
			 " entries, %" PRIu64 " bytes, nothing truncated",
			 log->dir, s->base, nentries, pos);
out:
	free(f.buf);
	return rc;
}

/* After a clean shutdown: trusts the index files and reads only the entry
 * headers after the last index entry to find the end offset. Returns
 * -SILT_ECORRUPT if anything disagrees, and the caller recovers instead. */
static int open_active_clean(struct seglog *log, struct seglog_seg *s)
{
	int rc = segment_load_index(log->dir, log->fmt.header_size, s, -1, s->size == 0);
	if (rc)
		return rc;
	struct segment_win w;
	struct seglog_entry e;
	segment_win_init(&w, s->fd);
	uint64_t pos = s->nidx ? s->idx[s->nidx - 1].pos : 0;
	int64_t expect = s->nidx ? s->base + s->idx[s->nidx - 1].rel : s->base;
	while (pos < s->size) {
		if ((rc = segment_win_entry(&log->fmt, &w, pos, s->size, &e)) != 0)
			return rc;
		log->stats.open_headers_read++;
		if (e.first_offset != expect || e.last_offset - s->base > SEGMENT_MAX_REL)
			return -SILT_ECORRUPT;
		if (e.max_timestamp > s->max_ts)
			s->max_ts = e.max_timestamp;
		s->last_off = e.first_offset;
		pos += e.size;
		expect = e.last_offset + 1;
	}
	s->idx_loaded = true;
	log->end = expect;
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Parses "<20 digits><ext>" into a base offset. */
static bool parse_seg_name(const char *name, const char *ext, int64_t *base)
{
	size_t el = strlen(ext);
	if (strlen(name) != 20 + el || strcmp(name + 20, ext) != 0)
		return false;
	uint64_t v = 0;
	for (int i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(name[i] - '0');
		if (v > INT64_MAX)
			return false;
	}
	*base = (int64_t)v;
	return true;
}

/* Lists segment bases (sorted) and removes leftovers: index files without
 * a .log (a deletion interrupted by a crash) and temp files. */
static int list_segments(struct seglog *log, int64_t **out, size_t *n)
{
	DIR *d = opendir(log->dir);
	if (!d)
		return -errno;
	int64_t *bases = NULL, *orph = NULL;
	size_t nb = 0, capb = 0, no = 0, capo = 0;
	struct dirent *de;
	int64_t b;
	while ((de = readdir(d)) != NULL) {
		if (parse_seg_name(de->d_name, ".log", &b)) {
			if (nb == capb) {
				capb = capb ? capb * 2 : 16;
				bases = xrealloc(bases, capb * sizeof(*bases));
			}
			bases[nb++] = b;
		} else if (parse_seg_name(de->d_name, ".index", &b) ||
			   parse_seg_name(de->d_name, ".timeindex", &b)) {
			if (no == capo) {
				capo = capo ? capo * 2 : 16;
				orph = xrealloc(orph, capo * sizeof(*orph));
			}
			orph[no++] = b;
		} else if (strcmp(de->d_name, ".clean.tmp") == 0) {
			unlinkat(dirfd(d), de->d_name, 0);
		}
	}
	closedir(d);
	if (nb)
		qsort(bases, nb, sizeof(*bases), cmp_i64);
	for (size_t i = 0; i < no; i++) {
		if (nb && bsearch(&orph[i], bases, nb, sizeof(*bases), cmp_i64))
			continue;
		char path[PATH_MAX];
		segment_path(log->dir, orph[i], ".index", path, sizeof(path));
		unlink(path);
		segment_path(log->dir, orph[i], ".timeindex", path, sizeof(path));
		unlink(path);
	}
	free(orph);
	*out = bases;
	*n = nb;
	return 0;
}

static void segs_push(struct seglog *log, struct seglog_seg *s)
{
	if (log->nsegs == log->capsegs) {
		log->capsegs = log->capsegs ? log->capsegs * 2 : 16;
		log->segs = xrealloc(log->segs, log->capsegs * sizeof(*log->segs));
	}
	log->segs[log->nsegs++] = s;
}

static void clamp_opts(struct seglog_opts *o)
{
	/* Positions are u32 in the index: a segment never grows past 4 GiB
	 * except by a single entry larger than that (refused on append). */
	if (o->segment_bytes == 0 || o->segment_bytes > UINT32_MAX)
		o->segment_bytes = UINT32_MAX;
}

static void seglog_free(struct seglog *log)
{
	for (size_t i = 0; i < log->nsegs; i++)
		seglog_seg_unref(log->segs[i]);
	free(log->segs);
	free(log->dir);
	pthread_mutex_destroy(&log->mu);
	pthread_mutex_destroy(&log->wmu);
	free(log);
}

int seglog_open(const char *dir, const struct seglog_opts *opts, const struct seglog_format *fmt,
		struct seglog **out)
{
	int64_t *bases = NULL;
	size_t nb = 0;
	char path[PATH_MAX];
	int rc;

	*out = NULL;
	if (!fmt || !fmt->scan_header || !fmt->verify || fmt->header_size == 0 ||
	    fmt->header_size > MAX_HEADER_SIZE || !opts)
		return -SILT_EINVAL;
	/* Leaves room for "/<20 digits>.timeindex" in every path we build. */
	if (strlen(dir) + 40 >= PATH_MAX)
		return -ENAMETOOLONG;
	if ((rc = mkdir_p(dir, 0755)) != 0)
		return rc;

	struct seglog *log = xcalloc(1, sizeof(*log));
	pthread_mutex_init(&log->mu, NULL);
	pthread_mutex_init(&log->wmu, NULL);
	log->dir = xstrdup(dir);
	log->fmt = *fmt;
	log->opts = *opts;
	clamp_opts(&log->opts);

	if ((rc = list_segments(log, &bases, &nb)) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/.clean", dir);
	bool clean = access(path, F_OK) == 0;
	log->stats.open_was_clean = clean;

	if (nb == 0) {
		struct seglog_seg *s;
		if ((rc = open_seg_file(log, 0, true, &s)) != 0)
			goto out;
		s->idx_loaded = true;
		segs_push(log, s);
		if ((rc = fsync_dir(dir)) != 0)
			goto out;
	}
	for (size_t i = 0; i < nb; i++) {
		struct seglog_seg *s;
		if ((rc = open_seg_file(log, bases[i], false, &s)) != 0)
			goto out;
		segs_push(log, s);
		log->total_bytes += s->size;
	}

	struct seglog_seg *last = log->segs[log->nsegs - 1];
	log->end = last->base;
	if (nb > 0) {
		uint64_t before = last->size;
		rc = clean ? open_active_clean(log, last) : -SILT_ECORRUPT;
		if (clean && rc == -SILT_ECORRUPT)
			log_warn(SUB, "%s: clean marker present but the active segment's index or tail is "
				 "inconsistent; recovering it", dir);
		if (rc == -SILT_ECORRUPT) {
			log->stats.open_was_clean = false;
			rc = recover_active(log, last);
		}
		if (rc)
			goto out;
		log->total_bytes -= before - last->size;
	}
	log->flushed = log->end;
	log->stats.segments = (uint32_t)log->nsegs;

	/* A crash from here on must be detected: the marker goes first. */
	if (clean) {
		if (unlink(path) != 0 && errno != ENOENT) {
			rc = -errno;
			goto out;
		}
		if ((rc = fsync_dir(dir)) != 0)
			goto out;
	}
	*out = log;
	log = NULL;
out:
	free(bases);
	if (log)
		seglog_free(log);
	return rc;
}

/* ---- accessors ---------------------------------------------------------- */

int64_t seglog_start_offset(struct seglog *log)
{
	pthread_mutex_lock(&log->mu);
	int64_t v = log->segs[0]->base;
	pthread_mutex_unlock(&log->mu);
	return v;
}

int64_t seglog_end_offset(struct seglog *log)
{
	pthread_mutex_lock(&log->mu);
	int64_t v = log->end;
	pthread_mutex_unlock(&log->mu);
	return v;
}

uint64_t seglog_size_bytes(struct seglog *log)
{
	pthread_mutex_lock(&log->mu);
	uint64_t v = log->total_bytes;
	pthread_mutex_unlock(&log->mu);
	return v;
}

int64_t seglog_flushed_offset(struct seglog *log)
{
	pthread_mutex_lock(&log->mu);
	int64_t v = log->flushed;
	pthread_mutex_unlock(&log->mu);
	return v;
}

void seglog_get_stats(struct seglog *log, struct seglog_stats *st)
{
	pthread_mutex_lock(&log->mu);
	*st = log->stats;
	st->segments = (uint32_t)log->nsegs;
	pthread_mutex_unlock(&log->mu);
}

void seglog_set_opts(struct seglog *log, const struct seglog_opts *opts)
{
	pthread_mutex_lock(&log->mu);
	log->opts = *opts;
	clamp_opts(&log->opts);
	pthread_mutex_unlock(&log->mu);
}

/* ---- append, roll, flush ------------------------------------------------ */

/* Makes a new empty active segment at base. Called with wmu held (so the
 * array and the old segment's arrays only change under our hands). The old
 * segment is made durable, indexes included, before the new file exists, so
 * that after a crash only the last segment can need recovery. */
static int roll_locked(struct seglog *log, int64_t base)
{
	struct seglog_seg *old = log->segs[log->nsegs - 1];
	struct seglog_seg *s = NULL;
	int rc;

	pthread_mutex_lock(&log->mu);
	segment_final_tidx(old);
	pthread_mutex_unlock(&log->mu);
	if ((rc = segment_persist_index(log->dir, old, true)) != 0)
		return rc;
	if (fdatasync(old->fd) != 0)
		return -errno;
	if ((rc = open_seg_file(log, base, true, &s)) != 0)
		return rc;
	if ((rc = fsync_dir(log->dir)) != 0) {
		char path[PATH_MAX];
		segment_path(log->dir, base, ".log", path, sizeof(path));
		unlink(path);
		seglog_seg_unref(s);
		return rc;
	}
	s->idx_loaded = true;
	s->created_ms = s->modified_ms = now_ms();
	pthread_mutex_lock(&log->mu);
	segs_push(log, s);
	/* Everything below base was fsynced just now. */
	if (log->flushed < base)
		log->flushed = base;
	if (log->flushed >= log->end)
		log->unflushed_since_ms = 0;
	pthread_mutex_unlock(&log->mu);
	log_debug(SUB, "%s: rolled segment %020" PRId64 " (%" PRIu64 " bytes), new segment %020" PRId64,
		  log->dir, old->base, old->size, base);
	return 0;
}

/* Writes all of iov at pos: one pwritev, and a slow path for the (rare)
 * short write. */
static int write_iov_at(int fd, const struct iovec *iov, int iovcnt, uint64_t pos, uint64_t len)
{
	ssize_t w;
	do {
		w = pwritev(fd, iov, iovcnt, (off_t)pos);
	} while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	if ((uint64_t)w == len)
		return 0;
	uint64_t skip = (uint64_t)w, at = pos + (uint64_t)w;
	for (int i = 0; i < iovcnt; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		int rc = segment_pwrite_full(fd, (const uint8_t *)iov[i].iov_base + skip, iov[i].iov_len - skip,
				     at);
		if (rc)
			return rc;
		at += iov[i].iov_len - skip;
		skip = 0;
	}
	return 0;
}

int seglog_append(struct seglog *log, const struct iovec *iov, int iovcnt, int64_t last_offset,
		  int64_t max_timestamp)
{
	uint64_t len = 0;
	int rc = 0;
	bool flush = false;

	if (iovcnt <= 0 || iovcnt > IOV_MAX)
		return -SILT_EINVAL;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > UINT32_MAX)
			return -SILT_ETOOBIG;
		len += iov[i].iov_len;
	}
	if (len == 0)
		return -SILT_EINVAL;
	if (len > UINT32_MAX)
		return -SILT_ETOOBIG;

	pthread_mutex_lock(&log->wmu);
	pthread_mutex_lock(&log->mu);
	int64_t end = log->end;
	struct seglog_opts o = log->opts;
	struct seglog_seg *s = log->segs[log->nsegs - 1];
	pthread_mutex_unlock(&log->mu);

	if (last_offset < end) {
		rc = -SILT_EINVAL;
		goto out;
	}
	if (last_offset - end > SEGMENT_MAX_REL) {
		rc = -SILT_ETOOBIG;
		goto out;
	}
	int64_t now = now_ms();
	if (s->size > 0 &&
	    (s->size + len > o.segment_bytes || last_offset - s->base > SEGMENT_MAX_REL ||
	     (o.segment_ms > 0 && now - s->created_ms > o.segment_ms))) {
		if ((rc = roll_locked(log, end)) != 0)
			goto out;
		s = log->segs[log->nsegs - 1];
	}
	uint64_t pos = s->size;
	if ((rc = write_iov_at(s->fd, iov, iovcnt, pos, len)) != 0) {
		/* Nothing was published; cut whatever part reached the file so
		 * the next append and recovery see a clean tail. */
		if (ftruncate(s->fd, (off_t)pos) != 0)
			log_error(SUB, "%s: append failed (%s) and the tail could not be cut",
				  log->dir, silt_strerror(rc));
		goto out;
	}
	if (o.writeback_bytes > 0) {
		if (log->wb_base != s->base || log->wb_pos > pos) {
			log->wb_base = s->base;
			log->wb_pos = 0;
		}
		/* Only a hint: an error here changes nothing about what the
		 * next fsync must do. */
		if (pos + len - log->wb_pos >= o.writeback_bytes &&
		    sync_file_range(s->fd, (off_t)log->wb_pos, (off_t)(pos + len - log->wb_pos),
				    SYNC_FILE_RANGE_WRITE) == 0)
			log->wb_pos = pos + len;
	}
	pthread_mutex_lock(&log->mu);
	segment_note_append(s, o.index_interval_bytes, end, pos, len, max_timestamp);
	s->size = pos + len;
	if (pos == 0)
		s->created_ms = now;
	s->modified_ms = now;
	log->total_bytes += len;
	if (log->flushed >= log->end)
		log->unflushed_since_ms = now;
	log->end = last_offset + 1;
	flush = o.flush_messages > 0 && log->end - log->flushed >= o.flush_messages;
	pthread_mutex_unlock(&log->mu);
out:
	pthread_mutex_unlock(&log->wmu);
	if (rc == 0 && flush)
		rc = seglog_flush(log, NULL);
	return rc;
}

int seglog_flush(struct seglog *log, int64_t *flushed_offset)
{
	int rc = 0;
	pthread_mutex_lock(&log->mu);
	struct seglog_seg *s = log->segs[log->nsegs - 1];
	int64_t target = log->end;
	uint64_t epoch = log->epoch;
	bool need = log->flushed < target;
	segment_ref(s);
	pthread_mutex_unlock(&log->mu);

	/* The active segment's indexes are not synced: recovery rebuilds them
	 * from the data, which is what this makes durable. */
	if (need && fdatasync(s->fd) != 0)
		rc = -errno;
	seglog_seg_unref(s);

	pthread_mutex_lock(&log->mu);
	if (rc == 0 && need && epoch == log->epoch && target > log->flushed) {
		log->flushed = target;
		if (log->flushed >= log->end)
			log->unflushed_since_ms = 0;
	}
	if (flushed_offset)
		*flushed_offset = log->flushed;
	pthread_mutex_unlock(&log->mu);
	return rc;
}

int seglog_maybe_flush(struct seglog *log, int64_t now)
{
	pthread_mutex_lock(&log->mu);
	int64_t unflushed = log->end - log->flushed;
	bool need = unflushed > 0 &&
		    ((log->opts.flush_messages > 0 && unflushed >= log->opts.flush_messages) ||
		     (log->opts.flush_ms > 0 && log->unflushed_since_ms > 0 &&
		      now - log->unflushed_since_ms >= log->opts.flush_ms));
	pthread_mutex_unlock(&log->mu);
	return need ? seglog_flush(log, NULL) : 0;
}

/* ---- reads -------------------------------------------------------------- */

/* Largest i with segs[i]->base <= offset (offset >= segs[0]->base). */
static size_t find_seg(const struct seglog *log, int64_t offset)
{
	size_t lo = 0, hi = log->nsegs;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (log->segs[mid]->base <= offset)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Under mu: the segment holding offset (referenced), the index position to
 * scan from, the segment's readable size and whether it is the active one
 * (active may be NULL). */
static int locate(struct seglog *log, int64_t offset, struct seglog_seg **seg, uint64_t *pos,
		  uint64_t *size, bool *active)
{
	size_t i = find_seg(log, offset);
	int rc = seg_ensure_index(log, i);
	if (rc)
		return rc;
	struct seglog_seg *s = log->segs[i];
	*pos = segment_pos_for_offset(s, offset);
	*size = s->size;
	if (active)
		*active = i + 1 == log->nsegs;
	segment_ref(s);
	*seg = s;
	return 0;
}

int seglog_read(struct seglog *log, int64_t offset, uint64_t max_bytes, struct seglog_read *out)
{
	struct seglog_seg *s = NULL;
	struct seglog_entry e;
	struct segment_win w;
	uint64_t pos, size;
	int rc;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	pthread_mutex_lock(&log->mu);
	if (offset < log->segs[0]->base || offset > log->end) {
		pthread_mutex_unlock(&log->mu);
		return -SILT_ERANGE;
	}
	if (offset == log->end) {
		pthread_mutex_unlock(&log->mu);
		return 0;
	}
	rc = locate(log, offset, &s, &pos, &size, NULL);
	pthread_mutex_unlock(&log->mu);
	if (rc)
		return rc;

	segment_win_init(&w, s->fd);
	for (;;) {
		if (pos >= size) {
			/* The offset is not in this segment (a gap before the
			 * next one): serve the next segment's first entry. */
			int64_t next = -1;
			pthread_mutex_lock(&log->mu);
			for (size_t i = 0; i < log->nsegs; i++) {
				if (log->segs[i]->base > s->base) {
					next = log->segs[i]->base;
					break;
				}
			}
			seglog_seg_unref(s);
			s = NULL;
			rc = next < 0 ? -SILT_ECORRUPT : locate(log, next, &s, &pos, &size, NULL);
			pthread_mutex_unlock(&log->mu);
			if (rc)
				return rc;
			segment_win_init(&w, s->fd);
			continue;
		}
		if ((rc = segment_win_entry(&log->fmt, &w, pos, size, &e)) != 0)
			goto fail;
		if (e.last_offset >= offset)
			break;
		pos += e.size;
	}

	uint64_t limit = max_bytes > size - pos ? size : pos + max_bytes;
	uint64_t cur = pos + e.size;
	if (limit > cur && limit < size) {
		/* Jump to the last indexed entry start at or below the limit
		 * and walk the few headers after it. */
		pthread_mutex_lock(&log->mu);
		int64_t j = segment_find_pos(s, limit);
		uint64_t q = j >= 0 ? s->idx[j].pos : 0;
		pthread_mutex_unlock(&log->mu);
		if (q > cur)
			cur = q;
		while (cur < limit) {
			struct seglog_entry n;
			if ((rc = segment_win_entry(&log->fmt, &w, cur, size, &n)) != 0)
				goto fail;
			if (n.size > limit - cur)
				break;
			cur += n.size;
		}
	} else if (limit >= size) {
		cur = size;
	}
	out->seg = s;
	out->fd = s->fd;
	out->pos = pos;
	out->len = cur - pos;
	out->first_offset = e.first_offset;
	return 0;
fail:
	seglog_seg_unref(s);
	return rc;
}

int64_t seglog_offset_for_time(struct seglog *log, int64_t ts)
{
	struct seglog_seg *s = NULL;
	struct seglog_entry e;
	struct segment_win w;
	uint64_t pos = 0, size = 0;
	int64_t result;
	int rc = 0;

	pthread_mutex_lock(&log->mu);
	result = log->end;
	size_t i = 0;
	for (; i < log->nsegs; i++) {
		if ((rc = seg_ensure_index(log, i)) != 0)
			break;
		if (log->segs[i]->max_ts >= ts)
			break;
	}
	if (rc == 0 && i < log->nsegs) {
		s = log->segs[i];
		int64_t t = segment_tidx_before(s, ts);
		pos = t < 0 ? 0 : segment_pos_for_offset(s, s->base + s->tidx[t].rel);
		size = s->size;
		segment_ref(s);
	}
	pthread_mutex_unlock(&log->mu);
	if (rc)
		return rc;
	if (!s)
		return result;

	/* The segment's max timestamp is >= ts, so an entry here qualifies;
	 * the time index bounds the walk to about one index interval. */
	segment_win_init(&w, s->fd);
	result = -SILT_ECORRUPT;
	while (pos < size) {
		if ((rc = segment_win_entry(&log->fmt, &w, pos, size, &e)) != 0) {
			result = rc;
			break;
		}
		if (e.max_timestamp >= ts) {
			result = e.first_offset;
			break;
		}
		pos += e.size;
	}
	seglog_seg_unref(s);
	return result;
}

/* ---- retention, truncation, close --------------------------------------- */

static void unlink_seg_files(struct seglog *log, int64_t base)
{
	char path[PATH_MAX];
	/* The .log goes first: a crash in between leaves only index files,
	 * which open removes as orphans. */
	segment_path(log->dir, base, ".log", path, sizeof(path));
	if (unlink(path) != 0 && errno != ENOENT)
		log_warn(SUB, "%s: cannot remove %s: %s", log->dir, path, strerror(errno));
	segment_path(log->dir, base, ".index", path, sizeof(path));
	unlink(path);
	segment_path(log->dir, base, ".timeindex", path, sizeof(path));
	unlink(path);
}

/* The time retention judges a segment by: its newest entry timestamp, or
 * the file's modification time when no entry carried one (as Kafka). */
static int64_t seg_time(const struct seglog_seg *s, bool active)
{
	if (s->max_ts >= 0)
		return s->max_ts;
	return active ? s->modified_ms : file_mtime_ms(s->fd);
}

int seglog_retain(struct seglog *log, int64_t retention_ms, int64_t retention_bytes, int64_t now)
{
	struct seglog_seg **gone = NULL;
	size_t ndel = 0;
	int rc = 0;

	pthread_mutex_lock(&log->wmu);
	pthread_mutex_lock(&log->mu);
	size_t n = 0;
	if (retention_ms >= 0) {
		int64_t cutoff = now - retention_ms;
		for (; n < log->nsegs; n++) {
			if ((rc = seg_ensure_index(log, n)) != 0)
				break;
			struct seglog_seg *s = log->segs[n];
			bool active = n + 1 == log->nsegs;
			if (s->size == 0 || seg_time(s, active) >= cutoff)
				break;
		}
	}
	bool roll = rc == 0 && n == log->nsegs;
	int64_t end = log->end;
	pthread_mutex_unlock(&log->mu);
	if (rc)
		goto out;
	/* Everything, the active segment included, has expired: roll so the
	 * old active can go, keeping an (empty) active segment at the end. */
	if (roll && (rc = roll_locked(log, end)) != 0)
		goto out;

	pthread_mutex_lock(&log->mu);
	uint64_t total = log->total_bytes;
	for (size_t i = 0; i < n; i++)
		total -= log->segs[i]->size;
	if (retention_bytes >= 0) {
		while (n + 1 < log->nsegs && total > (uint64_t)retention_bytes) {
			total -= log->segs[n]->size;
			n++;
		}
	}
	if (n > 0) {
		gone = xmalloc(n * sizeof(*gone));
		memcpy(gone, log->segs, n * sizeof(*gone));
		memmove(log->segs, log->segs + n, (log->nsegs - n) * sizeof(*log->segs));
		log->nsegs -= n;
		log->total_bytes = total;
		ndel = n;
	}
	int64_t start = log->segs[0]->base;
	pthread_mutex_unlock(&log->mu);

	for (size_t i = 0; i < ndel; i++) {
		unlink_seg_files(log, gone[i]->base);
		log_info(SUB, "%s: deleted segment %020" PRId64 " (%" PRIu64
			 " bytes) by retention; log start offset now %" PRId64,
			 log->dir, gone[i]->base, gone[i]->size, start);
		seglog_seg_unref(gone[i]);
	}
	free(gone);
	rc = (int)ndel;
out:
	pthread_mutex_unlock(&log->wmu);
	return rc;
}

int seglog_truncate(struct seglog *log, int64_t offset)
{
	struct seglog_seg *s = NULL, **gone = NULL;
	struct seglog_entry e;
	struct segment_win w;
	uint64_t pos, size;
	size_t ndel = 0;
	bool active;
	int rc = 0;

	pthread_mutex_lock(&log->wmu);
	pthread_mutex_lock(&log->mu);
	if (offset < log->segs[0]->base || offset > log->end) {
		rc = -SILT_ERANGE;
	} else if (offset < log->end) {
		rc = locate(log, offset, &s, &pos, &size, &active);
	}
	pthread_mutex_unlock(&log->mu);
	if (rc || !s)
		goto out;

	/* The cut must fall on an entry boundary. */
	segment_win_init(&w, s->fd);
	while (pos < size) {
		if ((rc = segment_win_entry(&log->fmt, &w, pos, size, &e)) != 0)
			goto out;
		if (e.last_offset >= offset)
			break;
		pos += e.size;
	}
	if (pos < size ? e.first_offset != offset : offset != s->base) {
		rc = -SILT_EINVAL;
		goto out;
	}

	/* Index entries before the cut stay. A time entry stays if the append
	 * it covers through ends before the cut, which holds for those older
	 * than the last kept index point; the headers after the last kept time
	 * entry give the rest of the max timestamp and the last append. */
	pthread_mutex_lock(&log->mu);
	uint32_t rel = (uint32_t)(offset - s->base);
	int64_t k = offset == s->base ? -1 : segment_find_rel(s, rel - 1);
	int64_t kt = (int64_t)s->ntidx - 1;
	while (kt >= 0 && (k < 0 || s->tidx[kt].rel >= s->idx[k].rel))
		kt--;
	int64_t max_ts = kt >= 0 ? s->tidx[kt].ts : -1;
	int64_t last_off = s->base;
	uint64_t scan = kt >= 0 ? segment_pos_for_offset(s, s->base + s->tidx[kt].rel) : 0;
	pthread_mutex_unlock(&log->mu);
	for (uint64_t p = scan; p < pos;) {
		struct seglog_entry n;
		if ((rc = segment_win_entry(&log->fmt, &w, p, pos, &n)) != 0)
			goto out;
		if (n.max_timestamp > max_ts)
			max_ts = n.max_timestamp;
		last_off = n.first_offset;
		p += n.size;
	}

	if (ftruncate(s->fd, (off_t)pos) != 0) {
		rc = -errno;
		goto out;
	}
	pthread_mutex_lock(&log->mu);
	size_t i = find_seg(log, offset);
	ndel = log->nsegs - i - 1;
	if (ndel) {
		gone = xmalloc(ndel * sizeof(*gone));
		memcpy(gone, log->segs + i + 1, ndel * sizeof(*gone));
		for (size_t j = 0; j < ndel; j++)
			log->total_bytes -= gone[j]->size;
		log->nsegs = i + 1;
	}
	log->total_bytes -= s->size - pos;
	s->size = pos;
	s->nidx = (uint32_t)(k + 1);
	s->ntidx = (uint32_t)(kt + 1);
	s->idx_persisted = SILT_MIN(s->idx_persisted, s->nidx);
	s->tidx_persisted = SILT_MIN(s->tidx_persisted, s->ntidx);
	s->max_ts = max_ts;
	s->last_off = last_off;
	s->bytes_since_idx = s->nidx ? pos - s->idx[s->nidx - 1].pos : 0;
	if (!active)
		s->created_ms = s->modified_ms = now_ms();
	log->end = offset;
	if (log->flushed > offset)
		log->flushed = offset;
	log->epoch++;
	pthread_mutex_unlock(&log->mu);

	/* Newest first, so a crash part-way leaves a shorter valid log. */
	for (size_t j = ndel; j-- > 0;) {
		unlink_seg_files(log, gone[j]->base);
		seglog_seg_unref(gone[j]);
	}
	if (fdatasync(s->fd) != 0)
		rc = -errno;
	int r2 = segment_persist_index(log->dir, s, false);
	int r3 = fsync_dir(log->dir);
	rc = rc ? rc : r2 ? r2 : r3;
	log_info(SUB, "%s: truncated to offset %" PRId64 " (%zu later segments deleted)", log->dir,
		 offset, ndel);
out:
	free(gone);
	seglog_seg_unref(s);
	pthread_mutex_unlock(&log->wmu);
	return rc;
}

/* Makes the active segment and its indexes durable and writes the marker
 * that lets the next open skip recovery. */
static int close_clean(struct seglog *log)
{
	struct seglog_seg *s = log->segs[log->nsegs - 1];
	char path[PATH_MAX];
	int rc;

	pthread_mutex_lock(&log->mu);
	segment_final_tidx(s);
	pthread_mutex_unlock(&log->mu);
	if ((rc = segment_persist_index(log->dir, s, true)) != 0)
		return rc;
	if (fdatasync(s->fd) != 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/.clean", log->dir);
	if ((rc = write_file_atomic(path, "", 0)) != 0)
		return rc;
	return fsync_dir(log->dir);
}

void seglog_close(struct seglog *log)
{
	if (!log)
		return;
	pthread_mutex_lock(&log->wmu);
	int rc = close_clean(log);
	if (rc)
		log_error(SUB, "%s: close could not flush (%s); the next open will recover", log->dir,
			  silt_strerror(rc));
	pthread_mutex_unlock(&log->wmu);
	seglog_free(log);
}

int seglog_destroy(struct seglog *log)
{
	if (!log)
		return 0;
	int rc = 0;
	pthread_mutex_lock(&log->wmu);
	for (size_t i = 0; i < log->nsegs; i++)
		unlink_seg_files(log, log->segs[i]->base);
	DIR *d = opendir(log->dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) != 0 && rc == 0)
				rc = -errno;
		}
		closedir(d);
	}
	if (rmdir(log->dir) != 0 && rc == 0)
		rc = -errno;
	pthread_mutex_unlock(&log->wmu);
	seglog_free(log);
	return rc;
}

/* ---- segment-level access ----------------------------------------------- */

/* Index of the segment named base, or -1. Called with mu held. */
static ssize_t find_seg_exact(const struct seglog *log, int64_t base)
{
	if (log->nsegs == 0 || base < log->segs[0]->base)
		return -1;
	size_t i = find_seg(log, base);
	return log->segs[i]->base == base ? (ssize_t)i : -1;
}

size_t seglog_segments(struct seglog *log, struct seglog_seg_info *out, size_t max)
{
	pthread_mutex_lock(&log->mu);
	size_t n = log->nsegs;
	for (size_t i = 0; i < n && i < max; i++)
		out[i] = (struct seglog_seg_info){ log->segs[i]->base, log->segs[i]->size, i + 1 == n };
	pthread_mutex_unlock(&log->mu);
	return n;
}

int seglog_segment_of(struct seglog *log, int64_t offset, struct seglog_seg_info *out)
{
	int rc = -SILT_ERANGE;
	pthread_mutex_lock(&log->mu);
	if (offset >= log->segs[0]->base && offset < log->end) {
		size_t i = find_seg(log, offset);
		*out = (struct seglog_seg_info){ log->segs[i]->base, log->segs[i]->size,
						 i + 1 == log->nsegs };
		rc = 0;
	}
	pthread_mutex_unlock(&log->mu);
	return rc;
}

int seglog_seg_get(struct seglog *log, int64_t base, struct seglog_read *out)
{
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	pthread_mutex_lock(&log->mu);
	ssize_t i = find_seg_exact(log, base);
	if (i >= 0) {
		struct seglog_seg *s = log->segs[i];
		segment_ref(s);
		*out = (struct seglog_read){ s, s->fd, 0, s->size, s->base };
	}
	pthread_mutex_unlock(&log->mu);
	return i >= 0 ? 0 : -SILT_ENOENT;
}

int seglog_delete_segment(struct seglog *log, int64_t base)
{
	struct seglog_seg *s = NULL;
	int rc = 0;

	pthread_mutex_lock(&log->wmu);
	pthread_mutex_lock(&log->mu);
	ssize_t i = find_seg_exact(log, base);
	if (i < 0) {
		rc = -SILT_ENOENT;
	} else if ((size_t)i + 1 == log->nsegs) {
		rc = -SILT_EINVAL;
	} else {
		s = log->segs[i];
		memmove(log->segs + i, log->segs + i + 1,
			(log->nsegs - (size_t)i - 1) * sizeof(*log->segs));
		log->nsegs--;
		log->total_bytes -= s->size;
	}
	pthread_mutex_unlock(&log->mu);
	if (s) {
		unlink_seg_files(log, base);
		log_info(SUB, "%s: deleted segment %020" PRId64 " (%" PRIu64 " bytes)", log->dir, base,
			 s->size);
		seglog_seg_unref(s);
	}
	pthread_mutex_unlock(&log->wmu);
	return rc;
}
