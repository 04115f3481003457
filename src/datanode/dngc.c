/* dngc.c - garbage collection of sealed volume segments.
 *
 * A segment's live bytes are in SQLite (segments table, kept by triggers in
 * the same transactions that add, delete and move locations), its size in
 * the seglog, so picking victims costs one row lookup per sealed segment.
 *
 * For each victim, emptiest first, GC reads the segment file front to back
 * (1 MiB at a time) and asks, for each entry, whether the location row of
 * (object id, chunk index) still points at exactly this place; if so the
 * entry is checked (header against the row, data against its CRC) and
 * appended to the GC volume. Every GC_BATCH copies, the GC volume is
 * fdatasynced and the rows that still point at the old place are moved in
 * one transaction (a row deleted meanwhile stays deleted, and its copy is
 * garbage). When no live row is left, a durable commit (the WAL is fsynced,
 * with it every move) forgets the segment's accounting row, and only then
 * the segment file is deleted: a crash at any point leaves every object
 * readable at its old or its new place. A chunk that fails its check stays
 * where it is (reads of it keep failing), and so does its segment.
 *
 * Dead entries cannot come back to life: rows only ever point into a sealed
 * segment because a commit put them there (see below) and moves always go
 * to the GC volume's active segment.
 *
 * Concurrency: puts append only to active segments, but a put may still be
 * uncommitted when the segment holding its first chunks rolls; each stream
 * knows the first seq of every put in flight, and a segment is only a
 * victim if it ends at or before the smallest of them. Readers that fetched
 * an old location before a move find the segment either still there (and
 * read it, or keep their reference across the delete) or gone (and look
 * the location up again, see datanode_get_next). */
#include "core/platform.h"
#include "datanode/datanode.h"

#include "core/log.h"
#include "datanode/dnint.h"

#define GC_BATCH 64

struct victim {
	struct dn_stream *st;
	int64_t base;
	uint64_t size;
	uint64_t live;
	double ratio;
};

static int cmp_victim(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;
	return x->ratio < y->ratio ? -1 : x->ratio > y->ratio;
}

/* Sealed segments under the threshold that no in-flight put can touch. */
static int pick_victims(struct datanode *dn, struct dnconn *c, double threshold,
			struct victim **out, size_t *nout)
{
	struct seglog_seg_info *si = NULL;
	struct victim *v = NULL;
	size_t nv = 0, capv = 0;
	int rc = 0;

	for (size_t id = 0; id < DN_NSTREAM_IDS && rc == 0; id++) {
		struct dn_stream *st = dn->streams[id];
		if (!st)
			continue;
		size_t n = seglog_segments(st->log, NULL, 0);
		si = xrealloc(si, (n ? n : 1) * sizeof(*si));
		n = SILT_MIN(n, seglog_segments(st->log, si, n));
		int64_t pinned = dn_min_inflight(st);
		for (size_t i = 0; i + 1 < n && rc == 0; i++) {
			/* The next segment's base is where this one ends. */
			if (si[i].active || si[i + 1].base > pinned)
				break;
			struct dnmeta_seg s;
			if ((rc = dnmeta_seg_get(c, st->id, si[i].base, &s)) != 0)
				break;
			double ratio = si[i].size ? (double)s.live_bytes / (double)si[i].size : 0.0;
			if (ratio >= threshold)
				continue;
			if (nv == capv) {
				capv = capv ? capv * 2 : 16;
				v = xrealloc(v, capv * sizeof(*v));
			}
			v[nv++] = (struct victim){ st, si[i].base, si[i].size, s.live_bytes, ratio };
		}
	}
	free(si);
	if (rc) {
		free(v);
		return rc;
	}
	if (nv)
		qsort(v, nv, sizeof(*v), cmp_victim);
	*out = v;
	*nout = nv;
	return 0;
}

struct move {
	struct dn_oid oid;
	uint32_t index;
	struct dnloc from, to;
};

/* One victim's pass: a read window over the file and the pending moves. */
struct gcpass {
	struct datanode *dn;
	struct dnconn *c;
	const struct victim *v;
	struct seglog_read seg;
	struct dn_inflight fl;
	uint8_t *win;
	size_t wcap;
	uint64_t woff, wlen;
	uint8_t *big; /* an entry larger than the window */
	size_t bigcap;
	struct move mv[GC_BATCH];
	size_t nmv;
	struct datanode_gc_stats *gs;
};

#define GC_WINDOW (1u << 20)

/* Bytes [pos, pos+n) of the segment, through the window; NULL with *rc set
 * on a read error, NULL with *rc == 0 if the file is short. */
static const uint8_t *gc_bytes(struct gcpass *p, uint64_t pos, size_t n, int *rc)
{
	*rc = 0;
	if (pos >= p->woff && pos + n <= p->woff + p->wlen)
		return p->win + (pos - p->woff);
	uint8_t *dst = p->win;
	size_t want = (size_t)SILT_MIN((uint64_t)p->wcap, p->seg.len - pos);
	if (n > p->wcap) {
		if (n > p->bigcap) {
			p->big = xrealloc(p->big, n);
			p->bigcap = n;
		}
		dst = p->big;
		want = n;
	}
	ssize_t r = dn_pread(p->seg.fd, dst, want, pos);
	if (r < 0) {
		*rc = (int)r;
		return NULL;
	}
	if (dst == p->win) {
		p->woff = pos;
		p->wlen = (uint64_t)r;
	}
	return (size_t)r >= n ? dst : NULL;
}

/* Makes the copies durable, then points the rows at them. */
static int gc_flush_moves(struct gcpass *p)
{
	struct dn_stream *gc = p->dn->streams[DN_GC_STREAM];
	int rc;
	if (p->nmv == 0)
		return 0;
	if ((rc = seglog_flush(gc->log, NULL)) != 0)
		return rc;
	if ((rc = dnmeta_begin(p->c, false)) != 0)
		return rc;
	for (size_t i = 0; i < p->nmv; i++) {
		struct move *m = &p->mv[i];
		bool moved;
		if ((rc = dnmeta_chunk_move(p->c, &m->oid, m->index, &m->from, &m->to, &moved)) != 0) {
			dnmeta_rollback(p->c);
			return rc;
		}
		if (moved) {
			p->gs->chunks_copied++;
			p->gs->bytes_copied += DNCHUNK_HDR + m->to.len;
		}
	}
	p->nmv = 0;
	return dnmeta_commit(p->c);
}

/* Walks the segment, copying live entries. Stops early (returning 0) at an
 * entry header it cannot parse: what follows stays, and so does the
 * segment if anything there is live. */
static int gc_scan(struct gcpass *p)
{
	struct dn_stream *gc = p->dn->streams[DN_GC_STREAM];
	const struct victim *v = p->v;
	uint64_t pos = 0, size = p->seg.len;
	struct dnchunk_hdr h;
	int rc = 0;

	while (pos < size) {
		const uint8_t *e = size - pos >= DNCHUNK_HDR ? gc_bytes(p, pos, DNCHUNK_HDR, &rc) : NULL;
		if (rc)
			return rc;
		if (!e || dnchunk_parse(e, DNCHUNK_HDR, &h) != 0 ||
		    h.len > size - pos - DNCHUNK_HDR) {
			log_warn(DN_SUB, "%s: volume %u segment %" PRId64 ": unreadable entry at %" PRIu64
				 "; GC stops scanning it there", p->dn->dir, v->st->id, v->base, pos);
			return 0;
		}
		uint64_t esize = DNCHUNK_HDR + (uint64_t)h.len;
		struct dnloc cur;
		rc = dnmeta_chunk_loc(p->c, &h.oid, h.index, &cur);
		if (rc == -SILT_ENOENT) {
			rc = 0;
		} else if (rc) {
			return rc;
		} else if (cur.stream == v->st->id && cur.seg == v->base && cur.pos == pos) {
			struct dnchunk_hdr h2;
			const char *why;
			if (!(e = gc_bytes(p, pos, (size_t)esize, &rc)))
				return rc ? rc : -SILT_ECORRUPT;
			if ((why = dn_check_entry(e, &h.oid, h.index, &cur, true, &h2)) != NULL) {
				dn_log_bad(&h.oid, h.index, &cur, why);
				p->gs->chunks_corrupt++;
			} else {
				struct move *m = &p->mv[p->nmv];
				*m = (struct move){ h.oid, h.index, cur, { 0 } };
				rc = dn_append(gc, &h.oid, h.index, h.time_ms, e + DNCHUNK_HDR, h.len,
					       h.crc, &p->fl, &m->to);
				if (rc)
					return rc;
				if (++p->nmv == GC_BATCH && (rc = gc_flush_moves(p)) != 0)
					return rc;
			}
		}
		pos += esize;
	}
	return gc_flush_moves(p);
}

static int gc_segment(struct datanode *dn, struct dnconn *c, const struct victim *v,
		      struct datanode_gc_stats *gs)
{
	struct gcpass *p = xcalloc(1, sizeof(*p));
	uint32_t corrupt_before = gs->chunks_corrupt;
	int rc;

	*p = (struct gcpass){ .dn = dn, .c = c, .v = v, .gs = gs };
	p->fl.first_seq = INT64_MAX;
	if ((rc = seglog_seg_get(v->st->log, v->base, &p->seg)) != 0) {
		free(p);
		return rc == -SILT_ENOENT ? 0 : rc;
	}
	/* A segment with nothing live needs no scan: nothing can become live
	 * in a sealed segment that no in-flight put touches. */
	if (v->live > 0) {
		p->wcap = GC_WINDOW;
		p->win = xmalloc(p->wcap);
		rc = gc_scan(p);
	}

	struct dnmeta_seg s;
	if (rc == 0)
		rc = dnmeta_seg_get(c, v->st->id, v->base, &s);
	if (rc == 0 && s.live_chunks > 0) {
		log_warn(DN_SUB, "%s: volume %u segment %" PRId64 " kept: %" PRIu64
			 " live chunks left (%u failed their check)",
			 dn->dir, v->st->id, v->base, s.live_chunks,
			 gs->chunks_corrupt - corrupt_before);
	} else if (rc == 0) {
		if ((rc = dnmeta_begin(c, true)) == 0) {
			rc = dnmeta_seg_forget(c, v->st->id, v->base);
			rc = rc ? (dnmeta_rollback(c), rc) : dnmeta_commit(c);
		}
		if (rc == 0 && (rc = seglog_delete_segment(v->st->log, v->base)) == 0) {
			gs->segments_freed++;
			gs->bytes_freed += v->size;
			log_info(DN_SUB, "%s: GC freed volume %u segment %" PRId64 " (%" PRIu64
				 " bytes, %" PRIu64 " live bytes copied)",
				 dn->dir, v->st->id, v->base, v->size, v->live);
		}
	}
	seglog_seg_unref(p->seg.seg);
	dn_inflight_done(dn->streams[DN_GC_STREAM], &p->fl);
	free(p->win);
	free(p->big);
	free(p);
	return rc;
}

int datanode_gc_run(struct datanode *dn, double threshold, uint64_t max_bytes,
		    struct datanode_gc_stats *st)
{
	struct datanode_gc_stats gs = { 0 };
	struct victim *v = NULL;
	size_t nv = 0;
	int rc;

	pthread_mutex_lock(&dn->gc_mu);
	struct dnconn *c = dnmeta_conn_get(dn->meta);
	rc = pick_victims(dn, c, threshold, &v, &nv);
	for (size_t i = 0; i < nv && rc == 0; i++) {
		if (v[i].live > 0 && gs.bytes_copied >= max_bytes)
			break;
		rc = gc_segment(dn, c, &v[i], &gs);
		if (rc)
			log_error(DN_SUB, "%s: GC of volume %u segment %" PRId64 " failed: %s", dn->dir,
				  v[i].st->id, v[i].base, silt_strerror(rc));
	}
	dnmeta_conn_put(c);
	pthread_mutex_unlock(&dn->gc_mu);
	free(v);
	if (st)
		*st = gs;
	return rc;
}
