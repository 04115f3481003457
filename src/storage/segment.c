/* segment.c - one segment's indexes and files (see segment.h). */
#include "core/platform.h"
#include "storage/segment.h"

#include "core/log.h"
#include "core/rd.h"
#include "core/wbuf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


ssize_t segment_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int segment_pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = pwrite(fd, (const uint8_t *)buf + done, n - done, (off_t)(off + done));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)w;
	}
	return 0;
}

void segment_path(const char *dir, int64_t base, const char *ext, char *out, size_t n)
{
	/* The directory length is checked at open, so this never truncates. */
	snprintf(out, n, "%s/%020" PRId64 "%s", dir, base, ext);
}

struct seglog_seg *segment_new(int fd, int64_t base)
{
	struct seglog_seg *s = xcalloc(1, sizeof(*s));
	atomic_init(&s->refs, 1);
	atomic_init(&s->map, NULL);
	s->fd = fd;
	s->base = base;
	s->max_ts = -1;
	s->last_off = base;
	return s;
}

void segment_ref(struct seglog_seg *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void seglog_seg_unref(struct seglog_seg *s)
{
	if (!s)
		return;
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	struct seg_map *m = atomic_load_explicit(&s->map, memory_order_acquire);
	if (m) {
		munmap((void *)m->p, m->len);
		free(m);
	}
	if (s->fd >= 0)
		close(s->fd);
	free(s->idx);
	free(s->tidx);
	free(s);
}

const uint8_t *seglog_seg_map(struct seglog_seg *s, uint64_t span, uint64_t *len)
{
	struct seg_map *m = atomic_load_explicit(&s->map, memory_order_acquire);
	if (!m) {
		uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
		if (s->fd < 0 || span == 0 || span > SIZE_MAX - pg)
			return NULL;
		size_t n = (size_t)((span + pg - 1) & ~(pg - 1));
		/* No MAP_POPULATE: pages fault in (with fault-around) as
		 * readers touch them, and stay mapped for the next reader. */
		void *p = mmap(NULL, n, PROT_READ, MAP_SHARED, s->fd, 0);
		if (p == MAP_FAILED)
			return NULL;
		struct seg_map *nm = xmalloc(sizeof(*nm));
		*nm = (struct seg_map){ p, n };
		struct seg_map *none = NULL;
		if (atomic_compare_exchange_strong_explicit(&s->map, &none, nm, memory_order_acq_rel,
							    memory_order_acquire)) {
			m = nm;
		} else {
			munmap(p, n); /* another reader mapped it first */
			free(nm);
			m = none;
		}
	}
	*len = m->len;
	return m->p;
}

static void idx_push(struct seglog_seg *s, uint32_t rel, uint32_t pos)
{
	if (s->nidx == s->capidx) {
		s->capidx = s->capidx ? s->capidx * 2 : 64;
		s->idx = xrealloc(s->idx, (size_t)s->capidx * sizeof(*s->idx));
	}
	s->idx[s->nidx++] = (struct seg_idx){ rel, pos };
}

static void tidx_push(struct seglog_seg *s, int64_t ts, uint32_t rel)
{
	if (s->ntidx == s->captidx) {
		s->captidx = s->captidx ? s->captidx * 2 : 64;
		s->tidx = xrealloc(s->tidx, (size_t)s->captidx * sizeof(*s->tidx));
	}
	s->tidx[s->ntidx++] = (struct seg_tidx){ ts, rel };
}

/* Largest i with idx[i].rel <= rel, or -1. */
int64_t segment_find_rel(const struct seglog_seg *s, uint64_t rel)
{
	int64_t lo = 0, hi = (int64_t)s->nidx - 1, ans = -1;
	while (lo <= hi) {
		int64_t mid = lo + (hi - lo) / 2;
		if (s->idx[mid].rel <= rel) {
			ans = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return ans;
}

/* Largest i with idx[i].pos <= pos, or -1. */
int64_t segment_find_pos(const struct seglog_seg *s, uint64_t pos)
{
	int64_t lo = 0, hi = (int64_t)s->nidx - 1, ans = -1;
	while (lo <= hi) {
		int64_t mid = lo + (hi - lo) / 2;
		if (s->idx[mid].pos <= pos) {
			ans = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return ans;
}

/* Largest i with tidx[i].ts < ts, or -1. */
int64_t segment_tidx_before(const struct seglog_seg *s, int64_t ts)
{
	int64_t lo = 0, hi = (int64_t)s->ntidx - 1, ans = -1;
	while (lo <= hi) {
		int64_t mid = lo + (hi - lo) / 2;
		if (s->tidx[mid].ts < ts) {
			ans = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return ans;
}

uint64_t segment_pos_for_offset(const struct seglog_seg *s, int64_t offset)
{
	if (offset <= s->base)
		return 0;
	int64_t i = segment_find_rel(s, (uint64_t)(offset - s->base));
	return i < 0 ? 0 : s->idx[i].pos;
}

/* Records an append (or a recovered entry) of len bytes at pos whose first
 * offset is `first`, adding index entries per the interval rule. Callers hold
 * mu or own a segment nobody else can see yet. */
void segment_note_append(struct seglog_seg *s, uint32_t interval, int64_t first, uint64_t pos,
			    uint64_t len, int64_t max_ts)
{
	bool add = s->nidx == 0 || s->bytes_since_idx >= interval;
	if (max_ts > s->max_ts)
		s->max_ts = max_ts;
	s->last_off = first;
	if (add) {
		idx_push(s, (uint32_t)(first - s->base), (uint32_t)pos);
		if (s->max_ts >= 0 && (s->ntidx == 0 || s->max_ts > s->tidx[s->ntidx - 1].ts))
			tidx_push(s, s->max_ts, (uint32_t)(first - s->base));
		s->bytes_since_idx = 0;
	}
	s->bytes_since_idx += len;
}

/* The closing time-index entry, so that an inactive segment's last time
 * entry is its max timestamp (Kafka does the same on roll). */
void segment_final_tidx(struct seglog_seg *s)
{
	if (s->max_ts >= 0 && (s->ntidx == 0 || s->max_ts > s->tidx[s->ntidx - 1].ts))
		tidx_push(s, s->max_ts, (uint32_t)(s->last_off - s->base));
}

/* ---- header scanning ---------------------------------------------------- */

/* Reads and checks the entry header at pos; the entry must end by limit.
 * Only header bytes are read, through the window. */
int segment_win_entry(const struct seglog_format *fmt, struct segment_win *w, uint64_t pos, uint64_t limit,
		     struct seglog_entry *e)
{
	size_t hs = fmt->header_size;
	if (pos > limit || limit - pos < hs)
		return -SILT_ECORRUPT;
	if (!(pos >= w->off && pos - w->off + hs <= w->len)) {
		size_t want = (size_t)SILT_MIN((uint64_t)SEGMENT_WIN_SIZE, limit - pos);
		ssize_t r = segment_pread_full(w->fd, w->buf, want, pos);
		if (r < 0)
			return (int)r;
		w->off = pos;
		w->len = (size_t)r;
		/* A short read means the file shrank under us (truncate). */
		if ((size_t)r < hs)
			return -SILT_ECORRUPT;
	}
	const uint8_t *p = w->buf + (pos - w->off);
	memset(e, 0, sizeof(*e));
	if (fmt->scan_header(p, hs, e) != 0)
		return -SILT_ECORRUPT;
	if (e->size < hs || e->size > limit - pos || e->first_offset < 0 ||
	    e->last_offset < e->first_offset)
		return -SILT_ECORRUPT;
	return 0;
}

void segment_win_init(struct segment_win *w, int fd)
{
	w->fd = fd;
	w->off = 0;
	w->len = 0;
}

/* ---- index files -------------------------------------------------------- */

/* Writes the index entries not yet on disk and cuts the files to the
 * in-memory length (truncate may have shortened them). The caller holds wmu
 * or mu, so the arrays cannot change meanwhile. */
int segment_persist_index(const char *dir, struct seglog_seg *s, bool sync)
{
	char path[PATH_MAX];
	uint8_t buf[4096];
	int rc = 0, fd = -1;

	segment_path(dir, s->base, ".index", path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	for (uint32_t i = SILT_MIN(s->idx_persisted, s->nidx); i < s->nidx;) {
		size_t n = 0;
		uint32_t first = i;
		for (; i < s->nidx && n + SEGMENT_IDX_ENTRY <= sizeof(buf); i++, n += SEGMENT_IDX_ENTRY) {
			wr_be32(buf + n, s->idx[i].rel);
			wr_be32(buf + n + 4, s->idx[i].pos);
		}
		if ((rc = segment_pwrite_full(fd, buf, n, (uint64_t)first * SEGMENT_IDX_ENTRY)) != 0)
			goto out;
	}
	if (ftruncate(fd, (off_t)s->nidx * SEGMENT_IDX_ENTRY) != 0 || (sync && fdatasync(fd) != 0)) {
		rc = -errno;
		goto out;
	}
	s->idx_persisted = s->nidx;
	close(fd);

	segment_path(dir, s->base, ".timeindex", path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	for (uint32_t i = SILT_MIN(s->tidx_persisted, s->ntidx); i < s->ntidx;) {
		size_t n = 0;
		uint32_t first = i;
		for (; i < s->ntidx && n + SEGMENT_TIDX_ENTRY <= sizeof(buf); i++, n += SEGMENT_TIDX_ENTRY) {
			wr_be64(buf + n, (uint64_t)s->tidx[i].ts);
			wr_be32(buf + n + 8, s->tidx[i].rel);
		}
		if ((rc = segment_pwrite_full(fd, buf, n, (uint64_t)first * SEGMENT_TIDX_ENTRY)) != 0)
			goto out;
	}
	if (ftruncate(fd, (off_t)s->ntidx * SEGMENT_TIDX_ENTRY) != 0 || (sync && fdatasync(fd) != 0)) {
		rc = -errno;
		goto out;
	}
	s->tidx_persisted = s->ntidx;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Reads a whole index file of entries of esize bytes, at most max entries.
 * A missing file reads as empty only if allow_missing. */
static int read_index_file(const char *path, size_t esize, uint64_t max, bool allow_missing,
			   uint8_t **out, uint32_t *n)
{
	int rc = 0;
	uint8_t *buf = NULL;
	*out = NULL;
	*n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT && allow_missing ? 0 : (errno == ENOENT ? -SILT_ECORRUPT : -errno);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	uint64_t sz = (uint64_t)st.st_size;
	/* Cap before allocating: no valid index has more entries than the
	 * segment has entries. */
	if (sz % esize != 0 || sz / esize > max || sz / esize > UINT32_MAX) {
		rc = -SILT_ECORRUPT;
		goto out;
	}
	buf = xmalloc((size_t)sz);
	ssize_t r = segment_pread_full(fd, buf, (size_t)sz, 0);
	if (r < 0 || (uint64_t)r != sz) {
		rc = r < 0 ? (int)r : -SILT_ECORRUPT;
		goto out;
	}
	*out = buf;
	*n = (uint32_t)(sz / esize);
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

/* Loads and validates both index files of s. rel_limit bounds relative
 * offsets (the next segment's base - base), or is -1. Leaves s untouched on
 * failure. */
int segment_load_index(const char *dir, size_t header_size, struct seglog_seg *s,
		       int64_t rel_limit, bool allow_missing)
{
	char path[PATH_MAX];
	uint8_t *ib = NULL, *tb = NULL;
	uint32_t ni = 0, nt = 0;
	struct seg_idx *idx = NULL;
	struct seg_tidx *tidx = NULL;
	uint64_t max = s->size / header_size + 1;
	int rc;

	segment_path(dir, s->base, ".index", path, sizeof(path));
	if ((rc = read_index_file(path, SEGMENT_IDX_ENTRY, max, allow_missing, &ib, &ni)) != 0)
		goto out;
	segment_path(dir, s->base, ".timeindex", path, sizeof(path));
	if ((rc = read_index_file(path, SEGMENT_TIDX_ENTRY, max, allow_missing, &tb, &nt)) != 0)
		goto out;
	rc = -SILT_ECORRUPT;
	idx = xmalloc((size_t)(ni ? ni : 1) * sizeof(*idx));
	for (uint32_t i = 0; i < ni; i++) {
		idx[i].rel = rd_be32(ib + (size_t)i * SEGMENT_IDX_ENTRY);
		idx[i].pos = rd_be32(ib + (size_t)i * SEGMENT_IDX_ENTRY + 4);
		if (idx[i].pos >= s->size || (rel_limit >= 0 && idx[i].rel >= rel_limit))
			goto out;
		if (i == 0 ? idx[i].pos != 0 || idx[i].rel != 0
			   : idx[i].rel <= idx[i - 1].rel || idx[i].pos <= idx[i - 1].pos)
			goto out;
	}
	if (ni == 0 && s->size > 0 && !allow_missing)
		goto out;
	tidx = xmalloc((size_t)(nt ? nt : 1) * sizeof(*tidx));
	for (uint32_t i = 0; i < nt; i++) {
		tidx[i].ts = (int64_t)rd_be64(tb + (size_t)i * SEGMENT_TIDX_ENTRY);
		tidx[i].rel = rd_be32(tb + (size_t)i * SEGMENT_TIDX_ENTRY + 8);
		if (tidx[i].ts < 0 || (rel_limit >= 0 && tidx[i].rel >= rel_limit))
			goto out;
		if (i > 0 && (tidx[i].rel <= tidx[i - 1].rel || tidx[i].ts <= tidx[i - 1].ts))
			goto out;
	}
	free(s->idx);
	free(s->tidx);
	s->idx = idx;
	s->nidx = s->capidx = s->idx_persisted = ni;
	s->tidx = tidx;
	s->ntidx = s->captidx = s->tidx_persisted = nt;
	idx = NULL;
	tidx = NULL;
	s->max_ts = nt ? s->tidx[nt - 1].ts : -1;
	s->last_off = ni ? s->base + s->idx[ni - 1].rel : s->base;
	s->bytes_since_idx = ni ? s->size - s->idx[ni - 1].pos : s->size;
	rc = 0;
out:
	free(ib);
	free(tb);
	free(idx);
	free(tidx);
	return rc;
}

void segment_reset_index(struct seglog_seg *s)
{
	s->nidx = s->ntidx = 0;
	s->idx_persisted = s->tidx_persisted = 0;
	s->max_ts = -1;
	s->last_off = s->base;
	s->bytes_since_idx = 0;
}

/* Rebuilds an inactive segment's indexes from entry headers (no checksum:
 * the data was fsynced on roll; only the index is suspect). Stops at the
 * first bad header; reads past it then fail as corrupt. */
int segment_rebuild_index(const char *dir, const struct seglog_format *fmt, uint32_t interval,
			  struct seglog_seg *s)
{
	struct segment_win w;
	struct seglog_entry e;
	uint64_t pos = 0;
	int64_t expect = s->base;
	int rc = 0;

	segment_win_init(&w, s->fd);
	segment_reset_index(s);
	while (pos < s->size) {
		if ((rc = segment_win_entry(fmt, &w, pos, s->size, &e)) != 0 || e.first_offset != expect ||
		    e.last_offset - s->base > SEGMENT_MAX_REL) {
			log_warn("storage", "%s: segment %020" PRId64 " has a bad entry header at %" PRIu64
				 "; entries from there on are unreadable",
				 dir, s->base, pos);
			rc = rc == -SILT_ECORRUPT || rc == 0 ? 0 : rc;
			break;
		}
		segment_note_append(s, interval, e.first_offset, pos, e.size,
				e.max_timestamp);
		pos += e.size;
		expect = e.last_offset + 1;
	}
	if (rc)
		return rc;
	segment_final_tidx(s);
	s->idx_loaded = true;
	log_warn("storage", "%s: rebuilt index of segment %020" PRId64 " (%u index entries)", dir,
		 s->base, s->nidx);
	return segment_persist_index(dir, s, true);
}

