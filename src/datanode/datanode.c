/* datanode.c - the data node: open and reconcile, puts, gets, deletes,
 * space accounting (GC is in dngc.c). Contract in datanode.h. */
#include "core/platform.h"
#include "datanode/datanode.h"

#include "core/crc.h"
#include "core/log.h"
#include "core/util.h"
#include "datanode/dnint.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#define SUB DN_SUB
/* Chunk rows fetched per SQLite query by a GET. */
#define GET_BATCH 64
/* A location that GC moved under a reader is looked up again this often. */
#define GET_RETRIES 4
/* Verified reads of chunks this big map the entry instead of copying it
 * out: the CRC runs over the page cache and callers send from there. */
#define GET_MAP_MIN (64 * 1024)
/* Reconciliation handles lost chunks in batches of this many rows. */
#define RECONCILE_BATCH 256
/* Last chunks of a group commit appended per write. */
#define TAIL_BATCH 128
/* Segments a group commit accounts per pass. */
#define ACCOUNT_SEGS 16

void datanode_opts_default(struct datanode_opts *o)
{
	o->segment_bytes = 1ull << 30;
	o->chunk_bytes = 1u << 20;
	o->max_object_bytes = 5ull << 30;
	o->sync_commit = false;
	o->map_resident_max = 64ull << 20;
}

/* ---- the read mappings' resident size -------------------------------------- */

/* Bytes a thread reads through mappings between two of its looks at the
 * resident size. A look reads /proc/self/statm (a few microseconds);
 * between looks the resident size grows by at most this times the number
 * of reading threads times the kernel's fault-around (16 pages per fault
 * for scattered small reads). */
#define MAP_CHECK_BYTES (4u << 20)

/* File-backed resident bytes of this process (statm's "shared"), or 0. */
static uint64_t file_resident_bytes(void)
{
	char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	unsigned long long size, resident, shared;
	if (sscanf(buf, "%llu %llu %llu", &size, &resident, &shared) != 3)
		return 0;
	return (uint64_t)shared * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Counted per thread: a shared counter would move its cache line between
 * the loops on every GET. Each reading thread looks every MAP_CHECK_BYTES. */
static void map_account(struct datanode *dn, size_t n)
{
	static _Thread_local uint64_t mapped;
	uint64_t prev = mapped;
	mapped += n;
	if (prev / MAP_CHECK_BYTES == mapped / MAP_CHECK_BYTES)
		return;
	if (file_resident_bytes() <= dn->opts.map_resident_max)
		return;
	for (unsigned i = 0; i < DN_NSTREAM_IDS; i++)
		if (dn->streams[i])
			seglog_trim_maps(dn->streams[i]->log);
	atomic_fetch_add_explicit(&dn->map_trims, 1, memory_order_relaxed);
}

/* ---- object ids ----------------------------------------------------------- */

void datanode_oid_fmt(const struct dn_oid *oid, char out[33])
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		out[2 * i] = hex[oid->b[i] >> 4];
		out[2 * i + 1] = hex[oid->b[i] & 15];
	}
	out[32] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int datanode_oid_parse(const char *hex, struct dn_oid *oid)
{
	if (strlen(hex) != 32)
		return -SILT_EINVAL;
	for (int i = 0; i < 16; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -SILT_EINVAL;
		oid->b[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* A fresh id: 64 random bits drawn at open and a counter. Unique within a
 * run by the counter, across runs and nodes by the random half. */
static void oid_new(struct datanode *dn, struct dn_oid *oid)
{
	uint64_t lo = atomic_fetch_add_explicit(&dn->oid_lo, 1, memory_order_relaxed);
	for (int i = 0; i < 8; i++) {
		oid->b[i] = (uint8_t)(dn->oid_hi >> (56 - 8 * i));
		oid->b[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
	}
}

/* ---- streams ----------------------------------------------------------------- */

static void stream_dir(const struct datanode *dn, uint32_t id, char *out, size_t n)
{
	if (id == DN_GC_STREAM)
		snprintf(out, n, "%s/vol-gc", dn->dir);
	else
		snprintf(out, n, "%s/vol-%03u", dn->dir, id);
}

static int stream_open(struct datanode *dn, uint32_t id)
{
	char path[PATH_MAX];
	struct seglog_opts so;
	struct dn_stream *st;
	int rc;

	if (dn->streams[id])
		return 0;
	seglog_opts_default(&so);
	so.segment_bytes = dn->opts.segment_bytes;
	so.segment_ms = 0; /* volumes roll by size only */
	/* Nobody seeks a volume by offset (locations are in SQLite), so
	 * the sparse index only has to keep clean opens short. */
	so.index_interval_bytes = 1u << 20;
	/* A volume takes hundreds of MB/s; without early writeback a whole
	 * segment is dirty when it rolls, and the loop thread whose append
	 * rolls it waits in fdatasync for all of it. */
	so.writeback_bytes = 8u << 20;
	stream_dir(dn, id, path, sizeof(path));
	st = xcalloc(1, sizeof(*st));
	st->id = id;
	pthread_mutex_init(&st->mu, NULL);
	if ((rc = seglog_open(path, &so, &dnchunk_seglog_format, &st->log)) != 0) {
		log_error(SUB, "%s: cannot open volume: %s", path, silt_strerror(rc));
		pthread_mutex_destroy(&st->mu);
		free(st);
		return rc;
	}
	dn->streams[id] = st;
	return 0;
}

static void stream_close(struct dn_stream *st)
{
	if (!st)
		return;
	seglog_close(st->log);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

int dn_append(struct dn_stream *st, const struct dn_oid *oid, uint32_t index, int64_t time_ms,
	      const void *data, uint32_t len, uint32_t crc, struct dn_inflight *fl,
	      struct dnloc *loc)
{
	uint8_t hdr[DNCHUNK_HDR];
	struct dnchunk_hdr h = { 0, *oid, index, len, time_ms, crc };
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)(uintptr_t)data, len } };
	struct seglog_seg_info si;
	int rc;

	pthread_mutex_lock(&st->mu);
	h.seq = seglog_end_offset(st->log);
	dnchunk_encode(hdr, &h);
	rc = seglog_append(st->log, iov, len ? 2 : 1, h.seq, time_ms);
	/* This mutex orders every append to the volume, so the entry is the
	 * last one of the segment holding its seq. */
	if (rc == 0)
		rc = seglog_segment_of(st->log, h.seq, &si);
	if (rc == 0) {
		*loc = (struct dnloc){ st->id, si.base, h.seq, si.size - DNCHUNK_HDR - len, len, crc };
		if (fl && fl->first_seq == INT64_MAX) {
			fl->first_seq = h.seq;
			fl->prev = NULL;
			fl->next = st->inflight;
			if (st->inflight)
				st->inflight->prev = fl;
			st->inflight = fl;
		}
	}
	pthread_mutex_unlock(&st->mu);
	return rc;
}

void dn_inflight_done(struct dn_stream *st, struct dn_inflight *fl)
{
	if (fl->first_seq == INT64_MAX)
		return;
	pthread_mutex_lock(&st->mu);
	if (fl->prev)
		fl->prev->next = fl->next;
	else
		st->inflight = fl->next;
	if (fl->next)
		fl->next->prev = fl->prev;
	pthread_mutex_unlock(&st->mu);
	fl->first_seq = INT64_MAX;
}

int64_t dn_min_inflight(struct dn_stream *st)
{
	int64_t m = INT64_MAX;
	pthread_mutex_lock(&st->mu);
	for (struct dn_inflight *f = st->inflight; f; f = f->next)
		m = SILT_MIN(m, f->first_seq);
	pthread_mutex_unlock(&st->mu);
	return m;
}

ssize_t dn_pread(int fd, void *buf, size_t n, uint64_t off)
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

const char *dn_check_entry(const uint8_t *p, const struct dn_oid *oid, uint32_t index,
			  const struct dnloc *loc, bool verify, struct dnchunk_hdr *h)
{
	if (dnchunk_parse(p, DNCHUNK_HDR, h) != 0)
		return "bad chunk header";
	if (h->seq != loc->seq || memcmp(h->oid.b, oid->b, 16) != 0 || h->index != index)
		return "entry belongs to another chunk";
	if (h->len != loc->len || h->crc != loc->crc)
		return "chunk header disagrees with its location record";
	if (verify && crc32c(0, p + DNCHUNK_HDR, h->len) != h->crc)
		return "data CRC-32C mismatch";
	return NULL;
}

void dn_log_bad(const struct dn_oid *oid, uint32_t index, const struct dnloc *loc, const char *why)
{
	char id[33];
	datanode_oid_fmt(oid, id);
	log_error(SUB, "object %s chunk %u: volume %u segment %" PRId64 " position %" PRIu64
		  ": %s; refusing to serve it", id, index, loc->stream, loc->seg, loc->pos, why);
}

int dn_check_chunk(int fd, uint64_t seg_size, const struct dn_oid *oid, uint32_t index,
		   const struct dnloc *loc, uint8_t *buf, bool verify, struct dnchunk_hdr *h)
{
	uint64_t entry = (uint64_t)DNCHUNK_HDR + loc->len;
	size_t need = verify ? (size_t)entry : DNCHUNK_HDR;
	const char *why = NULL;

	if (loc->pos > seg_size || seg_size - loc->pos < entry) {
		why = "entry extends past the end of the segment";
	} else {
		ssize_t r = dn_pread(fd, buf, need, loc->pos);
		if (r < 0) {
			dn_log_bad(oid, index, loc, silt_strerror((int)r));
			return (int)r;
		}
		why = (size_t)r < need ? "segment file shorter than expected"
				       : dn_check_entry(buf, oid, index, loc, verify, h);
	}
	if (!why)
		return 0;
	dn_log_bad(oid, index, loc, why);
	return -SILT_ECORRUPT;
}

/* ---- open, reconcile, close ------------------------------------------------ */

/* Removes objects whose chunk rows are in `rows` (duplicates are fine),
 * logging each with the reason. */
static int drop_objects(struct datanode *dn, struct dnconn *c, const struct dnmeta_chunk *rows,
			size_t n, const char *why, size_t *dropped)
{
	*dropped = 0;
	int rc = dnmeta_begin(c, false);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		const struct dnmeta_chunk *ch = &rows[i];
		rc = dnmeta_obj_delete(c, &ch->oid);
		if (rc == -SILT_ENOENT)
			continue;
		if (rc) {
			dnmeta_rollback(c);
			return rc;
		}
		(*dropped)++;
		char id[33];
		datanode_oid_fmt(&ch->oid, id);
		log_error(SUB, "%s: object %s lost: chunk %u at volume %u segment %" PRId64
			  " position %" PRIu64 " %s; removed",
			  dn->dir, id, ch->index, ch->loc.stream, ch->loc.seg, ch->loc.pos, why);
	}
	return dnmeta_commit(c);
}

/* Makes SQLite agree with the volumes after seglog recovery: a location in
 * a segment that does not exist, or past the end of one, can only follow a
 * lost commit's chunks (power loss without sync_commit, or files removed by
 * hand), since chunks are appended before their commit. The segments table
 * says cheaply whether that happened (max_end against the file size); only
 * then are the location tables scanned. */
static int reconcile(struct datanode *dn)
{
	struct dnconn *c = dnmeta_conn_get(dn->meta);
	struct dnmeta_chunk *rows = xmalloc(RECONCILE_BATCH * sizeof(*rows));
	struct dnmeta_seg *segs = NULL;
	size_t nsegs = 0, n;
	int rc;

	if ((rc = dnmeta_seg_list(c, &segs, &nsegs)) != 0)
		goto out;
	for (size_t i = 0; i < nsegs && rc == 0; i++) {
		struct dnmeta_seg *sg = &segs[i];
		struct dn_stream *st = sg->stream < DN_NSTREAM_IDS ? dn->streams[sg->stream] : NULL;
		struct seglog_read r;
		bool exists = st && seglog_seg_get(st->log, sg->seg, &r) == 0;
		uint64_t size = exists ? r.len : 0;
		if (exists)
			seglog_seg_unref(r.seg);
		if (exists && sg->max_end <= size)
			continue;
		if (!exists && sg->live_chunks == 0) {
			if ((rc = dnmeta_begin(c, false)) == 0) {
				rc = dnmeta_seg_forget(c, sg->stream, sg->seg);
				rc = rc ? (dnmeta_rollback(c), rc) : dnmeta_commit(c);
			}
			continue;
		}
		log_warn(SUB, "%s: volume %u segment %020" PRId64 " is %s; checking its objects",
			 dn->dir, sg->stream, sg->seg,
			 exists ? "shorter than its recorded chunks" : "missing");
		/* Dropped objects take their rows with them: query again
		 * until nothing is left beyond the end. */
		while ((rc = dnmeta_seg_scan(c, sg->stream, sg->seg, size, rows, RECONCILE_BATCH,
					     &n)) == 0 && n > 0) {
			size_t dropped;
			if ((rc = drop_objects(dn, c, rows, n,
					       exists ? "lies past the end of its segment"
						      : "is in a missing segment",
					       &dropped)) != 0)
				break;
			if (dropped == 0) {
				/* Chunk rows without an object row. */
				log_error(SUB, "%s: volume %u segment %" PRId64
					  " has location records of no object", dn->dir,
					  sg->stream, sg->seg);
				rc = -SILT_ECORRUPT;
				break;
			}
		}
		if (rc == 0 && (rc = dnmeta_begin(c, false)) == 0) {
			rc = exists ? dnmeta_seg_set_max_end(c, sg->stream, sg->seg, size)
				    : dnmeta_seg_forget(c, sg->stream, sg->seg);
			rc = rc ? (dnmeta_rollback(c), rc) : dnmeta_commit(c);
		}
	}
out:
	free(segs);
	free(rows);
	dnmeta_conn_put(c);
	return rc;
}

static bool parse_vol_name(const char *name, uint32_t *id)
{
	if (strncmp(name, "vol-", 4) != 0 || strlen(name) != 7)
		return false;
	uint32_t v = 0;
	for (int i = 4; i < 7; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(name[i] - '0');
	}
	if (v >= DATANODE_MAX_STREAMS)
		return false;
	*id = v;
	return true;
}

int datanode_open(const char *dir, unsigned nstreams, const struct datanode_opts *opts,
		  struct datanode **out)
{
	char path[PATH_MAX];
	struct datanode *dn;
	int rc;

	*out = NULL;
	if (nstreams == 0 || nstreams > DATANODE_MAX_STREAMS || !opts || opts->chunk_bytes == 0 ||
	    opts->chunk_bytes > DNCHUNK_MAX_DATA ||
	    opts->segment_bytes < (uint64_t)opts->chunk_bytes + DNCHUNK_HDR)
		return -SILT_EINVAL;
	if (strlen(dir) + 64 >= PATH_MAX)
		return -ENAMETOOLONG;
	if ((rc = mkdir_p(dir, 0755)) != 0)
		return rc;

	dn = xcalloc(1, sizeof(*dn));
	dn->dir = xstrdup(dir);
	dn->opts = *opts;
	dn->nstreams = nstreams;
	pthread_mutex_init(&dn->gc_mu, NULL);
	pthread_mutex_init(&dn->commit_mu, NULL);
	if (getrandom(&dn->oid_hi, sizeof(dn->oid_hi), 0) != (ssize_t)sizeof(dn->oid_hi)) {
		rc = -errno;
		goto fail;
	}
	atomic_init(&dn->oid_lo, 0);

	snprintf(path, sizeof(path), "%s/meta.db", dir);
	if ((rc = dnmeta_open(path, opts->sync_commit, &dn->meta)) != 0)
		goto fail;

	DIR *d = opendir(dir);
	if (!d) {
		rc = -errno;
		goto fail;
	}
	struct dirent *de;
	uint32_t id;
	while ((de = readdir(d)) != NULL) {
		if (parse_vol_name(de->d_name, &id) && (rc = stream_open(dn, id)) != 0)
			break;
	}
	closedir(d);
	if (rc)
		goto fail;
	for (uint32_t i = 0; i < nstreams; i++)
		if ((rc = stream_open(dn, i)) != 0)
			goto fail;
	if ((rc = stream_open(dn, DN_GC_STREAM)) != 0)
		goto fail;
	if ((rc = reconcile(dn)) != 0) {
		log_error(SUB, "%s: reconciling locations with volumes failed: %s", dir,
			  silt_strerror(rc));
		goto fail;
	}
	*out = dn;
	return 0;
fail:
	datanode_close(dn);
	return rc;
}

void datanode_close(struct datanode *dn)
{
	if (!dn)
		return;
	for (size_t i = 0; i < DN_NSTREAM_IDS; i++)
		stream_close(dn->streams[i]);
	if (dn->commit_conn)
		dnmeta_conn_put(dn->commit_conn);
	dnmeta_close(dn->meta);
	pthread_mutex_destroy(&dn->commit_mu);
	pthread_mutex_destroy(&dn->gc_mu);
	free(dn->dir);
	free(dn);
}

/* ---- puts ---------------------------------------------------------------- */

static void info_fill(struct datanode_obj_info *info, const struct dnmeta_obj *o, const struct dnloc *loc0)
{
	*info = (struct datanode_obj_info){ o->size, o->chunk_bytes, o->nchunks, o->ctime_ms, false, { 0 } };
	if (loc0 && o->nchunks > 0) {
		info->has_hint = true;
		info->hint = (struct datanode_hint){ o->size, o->chunk_bytes, loc0->stream, loc0->seg,
						     loc0->seq, loc0->pos, loc0->crc };
	}
}

struct datanode_put {
	struct datanode *dn;
	struct dn_stream *st;
	struct dn_oid oid;
	uint32_t chunk_bytes;
	uint8_t *buf; /* at most chunk_bytes, grown on demand */
	size_t cap, fill;
	uint64_t size;
	uint32_t nchunks;
	struct dnloc *locs; /* one per appended chunk, index order */
	size_t caplocs;
	int64_t time_ms;
	int err;
	bool sealed;
	uint32_t tail_crc; /* of the buffered last chunk, once sealed */
	struct dn_inflight fl;
};

int datanode_put_begin(struct datanode *dn, unsigned stream, const struct dn_oid *oid,
		       struct datanode_put **out)
{
	*out = NULL;
	if (stream >= dn->nstreams)
		return -SILT_EINVAL;
	struct datanode_put *w = xcalloc(1, sizeof(*w));
	w->dn = dn;
	w->st = dn->streams[stream];
	if (oid)
		w->oid = *oid;
	else
		oid_new(dn, &w->oid);
	w->chunk_bytes = dn->opts.chunk_bytes;
	w->time_ms = now_ms();
	w->fl.first_seq = INT64_MAX;
	*out = w;
	return 0;
}

static int put_chunk(struct datanode_put *w, const uint8_t *p, uint32_t n)
{
	struct dnloc loc;
	if (w->nchunks == UINT32_MAX)
		return w->err = -SILT_ETOOBIG;
	uint32_t crc = crc32c(0, p, n);
	int rc = dn_append(w->st, &w->oid, w->nchunks, w->time_ms, p, n, crc, &w->fl, &loc);
	if (rc) {
		char id[33];
		datanode_oid_fmt(&w->oid, id);
		log_error(SUB, "object %s: appending chunk %u to volume %u failed: %s", id, w->nchunks,
			  w->st->id, silt_strerror(rc));
		return w->err = rc;
	}
	if (w->nchunks == w->caplocs) {
		w->caplocs = w->caplocs ? w->caplocs * 2 : 4;
		w->locs = xrealloc(w->locs, w->caplocs * sizeof(*w->locs));
	}
	w->locs[w->nchunks++] = loc;
	return 0;
}

int datanode_put_write(struct datanode_put *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t cb = w->chunk_bytes;
	int rc;

	if (w->err)
		return w->err;
	if (w->sealed)
		return w->err = -SILT_EINVAL;
	if (len > w->dn->opts.max_object_bytes - w->size)
		return w->err = -SILT_ETOOBIG;
	w->size += len;
	while (len > 0) {
		if (w->fill == 0 && len >= cb) {
			/* A whole chunk in the caller's buffer: no copy. */
			if ((rc = put_chunk(w, p, (uint32_t)cb)) != 0)
				return rc;
			p += cb;
			len -= cb;
			continue;
		}
		size_t n = SILT_MIN(cb - w->fill, len);
		if (w->fill + n > w->cap) {
			size_t cap = SILT_MAX(w->cap * 2, SILT_MAX(w->fill + n, (size_t)4096));
			w->cap = SILT_MIN(cap, cb);
			w->buf = xrealloc(w->buf, w->cap);
		}
		memcpy(w->buf + w->fill, p, n);
		w->fill += n;
		p += n;
		len -= n;
		if (w->fill == cb) {
			if ((rc = put_chunk(w, w->buf, (uint32_t)cb)) != 0)
				return rc;
			w->fill = 0;
		}
	}
	return 0;
}

size_t datanode_put_buffer_bytes(const struct datanode_put *w)
{
	return w->cap;
}

static void put_free(struct datanode_put *w)
{
	dn_inflight_done(w->st, &w->fl);
	free(w->buf);
	free(w->locs);
	free(w);
}

int datanode_put_seal(struct datanode_put *w)
{
	if (w->err == 0 && !w->sealed && w->fill > 0)
		w->tail_crc = crc32c(0, w->buf, w->fill);
	w->sealed = true;
	return w->err;
}

/* Appends the buffered last chunks of n sealed puts of one stream with one
 * write: consecutive entries (seqs end..end+n-1) in the active segment.
 * A failure fails every put of the call. */
static int append_tails(struct dn_stream *st, struct datanode_put *const *w, size_t n)
{
	struct iovec iov[2 * TAIL_BATCH];
	uint8_t hdr[TAIL_BATCH][DNCHUNK_HDR];
	struct seglog_seg_info si;
	int iovcnt = 0, rc = 0;
	int64_t max_time = 0;

	pthread_mutex_lock(&st->mu);
	int64_t seq0 = seglog_end_offset(st->log);
	for (size_t i = 0; i < n; i++) {
		struct dnchunk_hdr h = { seq0 + (int64_t)i, w[i]->oid, w[i]->nchunks, (uint32_t)w[i]->fill,
					 w[i]->time_ms, w[i]->tail_crc };
		dnchunk_encode(hdr[i], &h);
		iov[iovcnt++] = (struct iovec){ hdr[i], DNCHUNK_HDR };
		iov[iovcnt++] = (struct iovec){ w[i]->buf, w[i]->fill };
		max_time = SILT_MAX(max_time, w[i]->time_ms);
	}
	rc = seglog_append(st->log, iov, iovcnt, seq0 + (int64_t)n - 1, max_time);
	/* This mutex orders every append to the volume, so the entries are the
	 * last ones of the segment holding their seqs. */
	if (rc == 0)
		rc = seglog_segment_of(st->log, seq0, &si);
	if (rc == 0) {
		uint64_t end = si.size;
		for (size_t i = n; i-- > 0;) {
			struct datanode_put *p = w[i];
			uint32_t len = (uint32_t)p->fill;
			end -= DNCHUNK_HDR + len;
			struct dnloc loc = { st->id, si.base, seq0 + (int64_t)i, end, len, p->tail_crc };
			if (p->fl.first_seq == INT64_MAX) {
				p->fl.first_seq = loc.seq;
				p->fl.prev = NULL;
				p->fl.next = st->inflight;
				if (st->inflight)
					st->inflight->prev = &p->fl;
				st->inflight = &p->fl;
			}
			if (p->nchunks == p->caplocs) {
				p->caplocs = p->caplocs ? p->caplocs * 2 : 4;
				p->locs = xrealloc(p->locs, p->caplocs * sizeof(*p->locs));
			}
			p->locs[p->nchunks++] = loc;
			p->fill = 0;
		}
	}
	pthread_mutex_unlock(&st->mu);
	if (rc)
		log_error(SUB, "appending %zu chunks to volume %u failed: %s", n, st->id, silt_strerror(rc));
	return rc;
}

/* Appends every sealed put's buffered last chunk, one write per stream and
 * at most TAIL_BATCH chunks or about a quarter segment per write. */
static void append_all_tails(struct datanode *dn, struct datanode_put *const *w, size_t n,
			     struct datanode_put_result *res)
{
	struct datanode_put *batch[TAIL_BATCH];
	size_t idx[TAIL_BATCH];
	bool *done = xcalloc(n ? n : 1, sizeof(*done));
	uint64_t cap = SILT_MAX(dn->opts.segment_bytes / 4, (uint64_t)dn->opts.chunk_bytes + DNCHUNK_HDR);
	for (size_t i = 0; i < n; i++) {
		if (done[i] || res[i].rc || w[i]->fill == 0)
			continue;
		struct dn_stream *st = w[i]->st;
		size_t k = 0;
		uint64_t bytes = 0;
		for (size_t j = i; j < n && k < TAIL_BATCH; j++) {
			if (done[j] || res[j].rc || w[j]->fill == 0 || w[j]->st != st)
				continue;
			uint64_t b = DNCHUNK_HDR + w[j]->fill;
			if (k > 0 && bytes + b > cap)
				break;
			if (w[j]->nchunks == UINT32_MAX) {
				res[j].rc = -SILT_ETOOBIG;
				continue;
			}
			bytes += b;
			batch[k] = w[j];
			idx[k++] = j;
			done[j] = true;
		}
		if (k == 0)
			continue;
		/* Puts of this stream left out (over the cap) get their own
		 * write when the loop reaches them. */
		int rc = append_tails(st, batch, k);
		for (size_t m = 0; m < k && rc; m++)
			res[idx[m]].rc = w[idx[m]]->err = rc;
	}
	free(done);
}

/* Records one sealed put in the open transaction, in its own savepoint
 * when it takes several statements (one statement is undone by SQLite
 * itself when it fails, its triggers' changes included). */
static int put_record(struct dnconn *c, struct datanode_put *w, int64_t ctime_ms)
{
	struct dnmeta_obj o = { w->size, w->chunk_bytes, w->nchunks, ctime_ms };
	const struct dnloc *loc0 = w->nchunks ? &w->locs[0] : NULL;
	if (w->nchunks <= 1)
		return dnmeta_obj_insert(c, &w->oid, &o, loc0);
	int rc = dnmeta_savepoint(c);
	if (rc)
		return rc;
	rc = dnmeta_obj_insert(c, &w->oid, &o, loc0);
	for (uint32_t i = 1; rc == 0 && i < w->nchunks; i++)
		rc = dnmeta_chunk_insert(c, &w->oid, i, &w->locs[i]);
	return dnmeta_release(c, rc);
}

/* The segments' accounting for the chunks of the recorded puts (res[i].rc
 * == 0), one row update per segment. */
static int account(struct dnconn *c, struct datanode_put *const *w, size_t n,
		   const struct datanode_put_result *res)
{
	struct dnmeta_seg acc[ACCOUNT_SEGS];
	size_t nacc = 0;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (res[i].rc)
			continue;
		for (uint32_t k = 0; k < w[i]->nchunks && rc == 0; k++) {
			const struct dnloc *l = &w[i]->locs[k];
			uint64_t bytes = (uint64_t)DNCHUNK_HDR + l->len;
			size_t a = 0;
			while (a < nacc && (acc[a].stream != l->stream || acc[a].seg != l->seg))
				a++;
			if (a == nacc) {
				if (nacc == ACCOUNT_SEGS) {
					/* Full: write what we have, start again. */
					for (size_t b = 0; b < nacc && rc == 0; b++)
						rc = dnmeta_seg_add(c, acc[b].stream, acc[b].seg, acc[b].live_bytes,
								    acc[b].live_chunks, acc[b].max_end);
					nacc = a = 0;
				}
				acc[nacc++] = (struct dnmeta_seg){ l->stream, l->seg, 0, 0, 0 };
			}
			acc[a].live_bytes += bytes;
			acc[a].live_chunks++;
			acc[a].max_end = SILT_MAX(acc[a].max_end, l->pos + bytes);
		}
	}
	for (size_t b = 0; b < nacc && rc == 0; b++)
		rc = dnmeta_seg_add(c, acc[b].stream, acc[b].seg, acc[b].live_bytes, acc[b].live_chunks,
				    acc[b].max_end);
	return rc;
}

void datanode_put_commit_many(struct datanode *dn, struct datanode_put *const *w, size_t n,
			      struct datanode_put_result *res)
{
	struct dnconn *c = NULL;
	int64_t ctime = now_ms();
	int rc = 0;
	size_t live = 0;

	for (size_t i = 0; i < n; i++)
		res[i] = (struct datanode_put_result){ .rc = datanode_put_seal(w[i]), .oid = w[i]->oid };
	/* The last chunks, still in the puts' buffers: one write per volume
	 * for the whole group. */
	append_all_tails(dn, w, n, res);
	for (size_t i = 0; i < n; i++)
		live += res[i].rc == 0;
	if (live == 0)
		goto out;
	/* With sync_commit the chunks reach the disk before the rows that
	 * point at them: one fdatasync per volume for the whole group. */
	if (dn->opts.sync_commit) {
		for (size_t i = 0; i < n; i++) {
			if (res[i].rc || w[i]->nchunks == 0)
				continue;
			bool seen = false;
			for (size_t j = 0; j < i && !seen; j++)
				seen = res[j].rc == 0 && w[j]->nchunks > 0 && w[j]->st == w[i]->st;
			if (!seen && (rc = seglog_flush(w[i]->st->log, NULL)) != 0)
				goto fail_all;
		}
	}
	pthread_mutex_lock(&dn->commit_mu);
	if (!dn->commit_conn)
		dn->commit_conn = dnmeta_conn_get(dn->meta);
	c = dn->commit_conn;
	if ((rc = dnmeta_begin(c, false)) != 0)
		goto fail_all;
	for (size_t i = 0; i < n; i++) {
		if (res[i].rc)
			continue;
		res[i].rc = put_record(c, w[i], ctime);
		if (!dnmeta_in_txn(c)) {
			/* SQLite dropped the whole transaction: nothing of the
			 * group is recorded. */
			rc = res[i].rc ? res[i].rc : -EIO;
			dnmeta_rollback(c);
			goto fail_all;
		}
	}
	if ((rc = account(c, w, n, res)) != 0) {
		dnmeta_rollback(c);
		goto fail_all;
	}
	if ((rc = dnmeta_commit(c)) != 0)
		goto fail_all;
	for (size_t i = 0; i < n; i++) {
		if (res[i].rc == 0) {
			struct dnmeta_obj o = { w[i]->size, w[i]->chunk_bytes, w[i]->nchunks, ctime };
			info_fill(&res[i].info, &o, w[i]->nchunks ? &w[i]->locs[0] : NULL);
		}
	}
	goto out;
fail_all:
	for (size_t i = 0; i < n; i++)
		if (res[i].rc == 0)
			res[i].rc = rc;
out:
	if (c)
		pthread_mutex_unlock(&dn->commit_mu);
	/* Only now may GC collect the segments these chunks sit in: the rows
	 * that keep them live are committed (or the chunks are garbage). */
	for (size_t i = 0; i < n; i++)
		put_free(w[i]);
}

int datanode_put_commit(struct datanode_put *w, struct dn_oid *oid, struct datanode_obj_info *info)
{
	struct datanode_put_result res;
	datanode_put_commit_many(w->dn, &w, 1, &res);
	if (res.rc == 0) {
		if (oid)
			*oid = res.oid;
		if (info)
			*info = res.info;
	}
	return res.rc;
}

void datanode_put_abort(struct datanode_put *w)
{
	if (w)
		put_free(w);
}

/* ---- gets ------------------------------------------------------------------ */

struct datanode_get {
	struct datanode *dn;
	struct dn_oid oid;
	bool verify;
	struct datanode_obj_info info;
	uint64_t cur, end; /* object byte range still to hand out */
	struct dnloc loc0; /* chunk 0 comes with the object row (or the hint) */
	bool hinted;       /* loc0 and info come from a caller's hint, unchecked */
	struct dnmeta_chunk *rows; /* chunks 1.., fetched as needed (GET_BATCH) */
	size_t nrows, rowi;
	uint8_t *buf;
	size_t cap;
	void *map; /* the current big chunk's read-only mapping, if any */
	size_t map_len;
	const uint8_t *ent; /* the current entry: in buf or in map */
};

static int stat_loc0(struct datanode *dn, const struct dn_oid *oid, struct datanode_obj_info *info,
		     struct dnloc *loc0)
{
	struct dnmeta_obj o;
	struct dnloc l0;
	struct dnconn *c = dnmeta_conn_get(dn->meta);
	int rc = dnmeta_obj_get(c, oid, &o, &l0);
	dnmeta_conn_put(c);
	if (rc == 0 && info)
		info_fill(info, &o, &l0);
	if (rc == 0 && loc0)
		*loc0 = l0;
	return rc;
}

int datanode_stat(struct datanode *dn, const struct dn_oid *oid, struct datanode_obj_info *info)
{
	return stat_loc0(dn, oid, info, NULL);
}

/* The object's shape must be self-consistent before any arithmetic on
 * chunk indexes relies on it. */
static bool shape_ok(const struct dn_oid *oid, const struct datanode_obj_info *oi)
{
	uint64_t want = oi->size == 0 ? 0 : (oi->size - 1) / oi->chunk_bytes + 1;
	if (oi->chunk_bytes > 0 && want == oi->nchunks)
		return true;
	char id[33];
	datanode_oid_fmt(oid, id);
	log_error(SUB, "object %s: record says %u chunks of %u bytes for %" PRIu64 " bytes", id,
		  oi->nchunks, oi->chunk_bytes, oi->size);
	return false;
}

static int get_open(struct datanode *dn, const struct dn_oid *oid, const struct datanode_obj_info *oi,
		    const struct dnloc *loc0, bool hinted, uint64_t off, uint64_t len, unsigned flags,
		    struct datanode_get **out, struct datanode_obj_info *info)
{
	if (off > oi->size)
		return -SILT_ERANGE;
	if (!shape_ok(oid, oi))
		return -SILT_ECORRUPT;
	struct datanode_get *g = xcalloc(1, sizeof(*g));
	g->dn = dn;
	g->oid = *oid;
	g->verify = !(flags & DATANODE_GET_NOVERIFY);
	g->info = *oi;
	g->loc0 = *loc0;
	g->hinted = hinted;
	g->cur = off;
	g->end = len > oi->size - off ? oi->size : off + len;
	if (info)
		*info = *oi;
	*out = g;
	return 0;
}

int datanode_get_open(struct datanode *dn, const struct dn_oid *oid, uint64_t off, uint64_t len,
		      unsigned flags, struct datanode_get **out, struct datanode_obj_info *info)
{
	struct datanode_obj_info oi;
	struct dnloc loc0 = { 0 };
	*out = NULL;
	int rc = stat_loc0(dn, oid, &oi, &loc0);
	if (rc)
		return rc;
	return get_open(dn, oid, &oi, &loc0, false, off, len, flags, out, info);
}

int datanode_get_open_hint(struct datanode *dn, const struct dn_oid *oid, const struct datanode_hint *hint,
			   uint64_t off, uint64_t len, unsigned flags, struct datanode_get **out,
			   struct datanode_obj_info *info)
{
	*out = NULL;
	if (hint->size == 0 || hint->chunk_bytes == 0 || hint->chunk_bytes > DNCHUNK_MAX_DATA ||
	    hint->seg < 0 || hint->seq < 0 || (hint->size - 1) / hint->chunk_bytes >= UINT32_MAX)
		return -SILT_ECORRUPT;
	struct datanode_obj_info oi = { hint->size, hint->chunk_bytes,
					(uint32_t)((hint->size - 1) / hint->chunk_bytes + 1), 0, true, *hint };
	struct dnloc loc0 = { hint->stream, hint->seg, hint->seq, hint->pos,
			      (uint32_t)SILT_MIN(hint->size, (uint64_t)hint->chunk_bytes), hint->crc };
	return get_open(dn, oid, &oi, &loc0, true, off, len, flags, out, info);
}

static void log_oid(const struct dn_oid *oid, uint32_t index, const char *what)
{
	char id[33];
	datanode_oid_fmt(oid, id);
	log_error(SUB, "object %s chunk %u: %s", id, index, what);
}

/* Fetches the rows of chunks first.. (first >= 1) of the range. */
static int get_fetch_rows(struct datanode_get *g, uint32_t first)
{
	uint32_t last = (uint32_t)((g->end - 1) / g->info.chunk_bytes);
	if (!g->rows)
		g->rows = xmalloc(GET_BATCH * sizeof(*g->rows));
	struct dnconn *c = dnmeta_conn_get(g->dn->meta);
	int rc = dnmeta_chunks_get(c, &g->oid, first, last, g->rows, GET_BATCH, &g->nrows);
	if (rc == 0 && (g->nrows == 0 || g->rows[0].index != first)) {
		/* Either the object went away under us or a row is missing. */
		struct dnmeta_obj o;
		rc = dnmeta_obj_get(c, &g->oid, &o, NULL);
		if (rc == 0) {
			log_oid(&g->oid, first, "location record missing");
			rc = -SILT_ECORRUPT;
		}
	}
	dnmeta_conn_put(c);
	g->rowi = 0;
	if (rc)
		g->nrows = 0;
	return rc;
}

/* Looks chunk ci up again after its segment vanished (GC moved it). */
static int get_relocate(struct datanode_get *g, uint32_t ci, struct dnloc *loc)
{
	struct dnconn *c = dnmeta_conn_get(g->dn->meta);
	int rc = dnmeta_chunk_loc(c, &g->oid, ci, loc);
	if (rc == -SILT_ENOENT) {
		struct dnmeta_obj o;
		if (dnmeta_obj_get(c, &g->oid, &o, NULL) == 0) {
			log_oid(&g->oid, ci, "location record missing");
			rc = -SILT_ECORRUPT;
		}
	}
	dnmeta_conn_put(c);
	return rc;
}

static void get_unmap(struct datanode_get *g)
{
	if (g->map) {
		munmap(g->map, g->map_len);
		g->map = NULL;
	}
}

/* Makes `need` bytes of the entry at loc readable at g->ent: for a
 * verified chunk a place in the segment's shared mapping (made once per
 * segment, kept while any reference is held: no mmap, munmap, TLB
 * shootdown or page-table fill per chunk), else for a big one a mapping of
 * just this entry, else a pread into g->buf. 1 done, 0 the segment (of readable size
 * r->len) is too short, or -errno. Reading a mapping only below r->len is
 * safe: a segment never shrinks below what it published while it is open
 * (GC unlinks it whole, and the mapping keeps the file alive). */
static int get_load(struct datanode_get *g, const struct seglog_read *r, const struct dnloc *loc, size_t need)
{
	get_unmap(g);
	int fd = r->fd;
	uint64_t seg_size = r->len;
	uint64_t entry = (uint64_t)DNCHUNK_HDR + loc->len;
	if (loc->pos > seg_size || seg_size - loc->pos < entry)
		return 0;
	if (g->verify) {
		/* Map the most the segment can grow to, so an active
		 * segment's mapping serves its later chunks too. Small
		 * chunks read from it as well: no pread, no copy. */
		uint64_t span = SILT_MAX(g->dn->opts.segment_bytes + DNCHUNK_MAX_DATA + DNCHUNK_HDR, seg_size);
		uint64_t mlen;
		const uint8_t *m = seglog_seg_map(r->seg, span, &mlen);
		if (m && loc->pos + need <= mlen) {
			g->ent = m + loc->pos;
			map_account(g->dn, need);
			return 1;
		}
	}
	if (g->verify && loc->len >= GET_MAP_MIN) {
		uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
		uint64_t base = loc->pos & ~(pg - 1);
		size_t len = (size_t)(loc->pos - base) + need;
		void *pm = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, (off_t)base);
		if (pm != MAP_FAILED) {
			g->map = pm;
			g->map_len = len;
			g->ent = (const uint8_t *)pm + (loc->pos - base);
			return 1;
		}
		/* Out of mappings or address space: copy instead. */
	}
	if (need > g->cap) {
		g->buf = xrealloc(g->buf, need);
		g->cap = need;
	}
	ssize_t n = dn_pread(fd, g->buf, need, loc->pos);
	if (n < 0)
		return (int)n;
	g->ent = g->buf;
	return (size_t)n < need ? 0 : 1;
}

/* Reads chunk 0 where the hint says, quietly: 1 if the entry there is
 * chunk 0 of this object (and with verify its data passed the CRC; r holds
 * the segment reference), 0 if the hint is stale (segment gone, entry
 * elsewhere, another chunk there), or an error (-SILT_ECORRUPT when the
 * header matches but the data does not: that is damage, not staleness). */
static int get_try_hint(struct datanode_get *g, size_t need, struct seglog_read *r, struct dnchunk_hdr *h)
{
	const struct dnloc *loc = &g->loc0;
	struct dn_stream *st = loc->stream < DN_NSTREAM_IDS ? g->dn->streams[loc->stream] : NULL;
	if (!st)
		return 0;
	int rc = seglog_seg_get(st->log, loc->seg, r);
	if (rc)
		return rc == -SILT_ENOENT ? 0 : rc;
	rc = get_load(g, r, loc, need);
	if (rc < 0) {
		seglog_seg_unref(r->seg);
		dn_log_bad(&g->oid, 0, loc, silt_strerror(rc));
		return rc;
	}
	if (rc == 0 || dn_check_entry(g->ent, &g->oid, 0, loc, false, h) != NULL)
		goto stale;
	if (g->verify && crc32c(0, g->ent + DNCHUNK_HDR, h->len) != h->crc) {
		seglog_seg_unref(r->seg);
		dn_log_bad(&g->oid, 0, loc, "data CRC-32C mismatch");
		return -SILT_ECORRUPT;
	}
	return 1;
stale:
	seglog_seg_unref(r->seg);
	r->seg = NULL;
	return 0;
}

/* The hint was stale: from now on the read follows the object's record. */
static int get_unhint(struct datanode_get *g)
{
	struct datanode_obj_info oi;
	struct dnloc loc0 = { 0 };
	int rc = stat_loc0(g->dn, &g->oid, &oi, &loc0);
	if (rc)
		return rc;
	if (oi.size != g->info.size || oi.chunk_bytes != g->info.chunk_bytes) {
		log_oid(&g->oid, 0, "the caller's hint disagrees with the object record");
		return -SILT_ECORRUPT;
	}
	g->info.ctime_ms = oi.ctime_ms;
	g->loc0 = loc0;
	g->hinted = false;
	return 0;
}

int datanode_get_next(struct datanode_get *g, struct datanode_piece *p)
{
	uint32_t cb = g->info.chunk_bytes;
	struct dnchunk_hdr h;
	struct dnloc *loc;
	int rc;

	memset(p, 0, sizeof(*p));
	p->fd = -1;
	if (g->cur >= g->end)
		return 0;
	uint32_t ci = (uint32_t)(g->cur / cb);
	if (ci == 0) {
		loc = &g->loc0;
	} else {
		if (g->rowi >= g->nrows || g->rows[g->rowi].index != ci) {
			if ((rc = get_fetch_rows(g, ci)) != 0)
				return rc;
		}
		loc = &g->rows[g->rowi].loc;
	}
	uint64_t cstart = (uint64_t)ci * cb;
	uint64_t clen = SILT_MIN((uint64_t)cb, g->info.size - cstart);
	if (loc->len != clen) {
		log_oid(&g->oid, ci, "recorded length disagrees with the object size");
		return -SILT_ECORRUPT;
	}
	size_t need = g->verify ? DNCHUNK_HDR + (size_t)clen : DNCHUNK_HDR;

	struct seglog_read r = { 0 };
	if (ci == 0 && g->hinted) {
		rc = get_try_hint(g, need, &r, &h);
		if (rc < 0)
			return rc;
		if (rc == 1)
			goto checked;
		if ((rc = get_unhint(g)) != 0)
			return rc;
	}
	for (int attempt = 0;; attempt++) {
		struct dn_stream *st = loc->stream < DN_NSTREAM_IDS ? g->dn->streams[loc->stream]
								   : NULL;
		rc = st ? seglog_seg_get(st->log, loc->seg, &r) : -SILT_ENOENT;
		if (rc == 0)
			break;
		if (rc != -SILT_ENOENT)
			return rc;
		/* GC moved the chunk and dropped the segment after we read
		 * the location: the new location is committed, look again. */
		if (attempt == GET_RETRIES) {
			log_oid(&g->oid, ci, "recorded in a segment that does not exist");
			return -SILT_ECORRUPT;
		}
		if ((rc = get_relocate(g, ci, loc)) != 0)
			return rc;
	}
	rc = get_load(g, &r, loc, need);
	const char *why = rc < 0 ? silt_strerror(rc)
		: rc == 0 ? "entry extends past the end of the segment"
			  : dn_check_entry(g->ent, &g->oid, ci, loc, g->verify, &h);
	if (why) {
		dn_log_bad(&g->oid, ci, loc, why);
		seglog_seg_unref(r.seg);
		return rc < 0 ? rc : -SILT_ECORRUPT;
	}
checked:;
	uint64_t in = g->cur - cstart;
	uint64_t n = SILT_MIN(g->end, cstart + clen) - g->cur;
	p->seg = r.seg;
	p->fd = r.fd;
	p->pos = loc->pos + DNCHUNK_HDR + in;
	p->len = n;
	p->data = g->verify ? g->ent + DNCHUNK_HDR + in : NULL;
	g->cur += n;
	if (ci > 0)
		g->rowi++;
	return 1;
}

void datanode_get_close(struct datanode_get *g)
{
	if (!g)
		return;
	get_unmap(g);
	free(g->rows);
	free(g->buf);
	free(g);
}

void datanode_piece_release(struct datanode_piece *p)
{
	seglog_seg_unref(p->seg);
	p->seg = NULL;
	p->fd = -1;
}

int datanode_read(struct datanode *dn, const struct dn_oid *oid, uint64_t off, void *buf,
		  size_t len, size_t *got)
{
	struct datanode_get *g;
	struct datanode_piece p;
	size_t done = 0;
	int rc = datanode_get_open(dn, oid, off, len, 0, &g, NULL);
	if (rc)
		return rc;
	while ((rc = datanode_get_next(g, &p)) == 1) {
		memcpy((uint8_t *)buf + done, p.data, p.len);
		done += p.len;
		datanode_piece_release(&p);
	}
	datanode_get_close(g);
	if (got)
		*got = done;
	return rc;
}

/* ---- delete, space ------------------------------------------------------------ */

int datanode_delete(struct datanode *dn, const struct dn_oid *oid)
{
	int rc;
	int ret = datanode_delete_many(dn, oid, 1, &rc);
	return ret ? ret : rc;
}

int datanode_delete_many(struct datanode *dn, const struct dn_oid *oids, size_t n, int *rcs)
{
	struct dnconn *c = dnmeta_conn_get(dn->meta);
	int rc = dnmeta_begin(c, false);
	if (rc == 0) {
		for (size_t i = 0; i < n && rc == 0; i++) {
			if ((rc = dnmeta_savepoint(c)) != 0)
				break;
			rcs[i] = dnmeta_release(c, dnmeta_obj_delete(c, &oids[i]));
			if (!dnmeta_in_txn(c))
				rc = rcs[i] ? rcs[i] : -EIO;
		}
		if (rc == 0)
			rc = dnmeta_commit(c);
		else
			dnmeta_rollback(c);
	}
	dnmeta_conn_put(c);
	if (rc)
		for (size_t i = 0; i < n; i++)
			rcs[i] = rc;
	return rc;
}

int datanode_checkpoint(struct datanode *dn, int *wal_frames, int *done_frames)
{
	return dnmeta_checkpoint(dn->meta, wal_frames, done_frames);
}

uint64_t datanode_map_trims(struct datanode *dn)
{
	return atomic_load_explicit(&dn->map_trims, memory_order_relaxed);
}

int datanode_space(struct datanode *dn, uint64_t *used, uint64_t *reclaimable)
{
	struct dnconn *c = dnmeta_conn_get(dn->meta);
	struct seglog_seg_info *si = NULL;
	uint64_t u = 0, r = 0;
	int rc = 0;

	for (size_t id = 0; id < DN_NSTREAM_IDS && rc == 0; id++) {
		struct dn_stream *st = dn->streams[id];
		if (!st)
			continue;
		size_t n = seglog_segments(st->log, NULL, 0);
		si = xrealloc(si, (n ? n : 1) * sizeof(*si));
		n = SILT_MIN(n, seglog_segments(st->log, si, n));
		for (size_t i = 0; i < n && rc == 0; i++) {
			u += si[i].size;
			if (si[i].active)
				continue;
			struct dnmeta_seg s;
			if ((rc = dnmeta_seg_get(c, st->id, si[i].base, &s)) == 0)
				r += si[i].size - SILT_MIN(s.live_bytes, si[i].size);
		}
	}
	free(si);
	dnmeta_conn_put(c);
	if (rc == 0) {
		if (used)
			*used = u;
		if (reclaimable)
			*reclaimable = r;
	}
	return rc;
}
