/* dngc.c - garbage collection of sealed volume segments.
 *
 * A segment's live bytes are in SQLite (segments table, kept by triggers in
 * the same transactions that add, delete and move chunk rows), its size in
 * the seglog, so picking victims costs one row lookup per sealed segment.
 *
 * For each victim, emptiest first: read its live chunk rows in position
 * order, a batch at a time; pread each chunk and check it (header against
 * the row, data against the CRC); append the good ones to the GC volume;
 * fdatasync the GC volume; then, in one transaction per batch, move each
 * row that still points at the old place (a row deleted meanwhile stays
 * deleted, and its new copy is garbage). When no live row is left, a
 * durable commit (the WAL is fsynced, with it every move) forgets the
 * segment's accounting row, and only then the segment file is deleted: a
 * crash at any point leaves every object readable at its old or its new
 * place. A chunk that fails its check stays where it is (reads of it fail
 * as they did), and its segment is kept.
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

#define SUB DN_SUB
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
	struct dnmeta_chunk from;
	struct dnloc to;
};

/* Copies one batch of live chunks; *after advances past the batch. */
static int gc_batch(struct datanode *dn, struct dnconn *c, const struct victim *v,
		    const struct seglog_read *seg, struct dn_inflight *fl, int64_t *after,
		    uint8_t **buf, size_t *cap, struct datanode_gc_stats *gs, bool *more)
{
	struct dn_stream *gc = dn->streams[DN_GC_STREAM];
	struct dnmeta_chunk rows[GC_BATCH];
	struct move mv[GC_BATCH];
	struct dnchunk_hdr h;
	size_t n, nm = 0;
	int rc;

	if ((rc = dnmeta_seg_chunks(c, v->st->id, v->base, *after, rows, GC_BATCH, &n)) != 0)
		return rc;
	*more = n == GC_BATCH;
	for (size_t i = 0; i < n; i++) {
		struct dnmeta_chunk *ch = &rows[i];
		size_t need = DNCHUNK_HDR + (size_t)ch->loc.len;
		if (need > *cap) {
			*buf = xrealloc(*buf, need);
			*cap = need;
		}
		*after = (int64_t)ch->loc.pos;
		rc = dn_check_chunk(seg->fd, seg->len, &ch->oid, ch->index, &ch->loc, *buf, true, &h);
		if (rc == -SILT_ECORRUPT) {
			gs->chunks_corrupt++;
			continue;
		}
		if (rc)
			return rc;
		mv[nm].from = *ch;
		rc = dn_append(gc, &ch->oid, ch->index, h.time_ms, *buf + DNCHUNK_HDR, ch->loc.len,
			       ch->loc.crc, fl, &mv[nm].to);
		if (rc)
			return rc;
		nm++;
	}
	if (nm == 0)
		return 0;
	/* The copies reach the disk before any location points at them. */
	if ((rc = seglog_flush(gc->log, NULL)) != 0)
		return rc;
	if ((rc = dnmeta_begin(c, false)) != 0)
		return rc;
	for (size_t i = 0; i < nm; i++) {
		bool moved;
		if ((rc = dnmeta_chunk_move(c, &mv[i].from.oid, mv[i].from.index, &mv[i].from.loc,
					    &mv[i].to, &moved)) != 0) {
			dnmeta_rollback(c);
			return rc;
		}
		if (moved) {
			gs->chunks_copied++;
			gs->bytes_copied += DNCHUNK_HDR + mv[i].to.len;
		}
	}
	return dnmeta_commit(c);
}

static int gc_segment(struct datanode *dn, struct dnconn *c, const struct victim *v,
		      struct datanode_gc_stats *gs)
{
	struct dn_inflight fl = { INT64_MAX, NULL, NULL };
	struct seglog_read seg;
	uint8_t *buf = NULL;
	size_t cap = 0;
	int64_t after = -1;
	uint32_t corrupt_before = gs->chunks_corrupt;
	bool more = true;
	int rc;

	if ((rc = seglog_seg_get(v->st->log, v->base, &seg)) != 0)
		return rc == -SILT_ENOENT ? 0 : rc;
	while (more && rc == 0)
		rc = gc_batch(dn, c, v, &seg, &fl, &after, &buf, &cap, gs, &more);
	free(buf);

	struct dnmeta_seg s;
	if (rc == 0)
		rc = dnmeta_seg_get(c, v->st->id, v->base, &s);
	if (rc == 0 && s.live_chunks > 0) {
		log_warn(SUB, "%s: volume %u segment %" PRId64 " kept: %" PRIu64
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
			log_info(SUB, "%s: GC freed volume %u segment %" PRId64 " (%" PRIu64
				 " bytes, %" PRIu64 " live bytes copied)",
				 dn->dir, v->st->id, v->base, v->size, v->live);
		}
	}
	seglog_seg_unref(seg.seg);
	dn_inflight_done(dn->streams[DN_GC_STREAM], &fl);
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
			log_error(SUB, "%s: GC of volume %u segment %" PRId64 " failed: %s", dn->dir,
				  v[i].st->id, v[i].base, silt_strerror(rc));
	}
	dnmeta_conn_put(c);
	pthread_mutex_unlock(&dn->gc_mu);
	free(v);
	if (st)
		*st = gs;
	return rc;
}
