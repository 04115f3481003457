/* api_fetch.c - Fetch v0-11 (long polling) and ListOffsets v0-5.
 *
 * Fetch answers with file ranges of the partitions' segments, spliced into
 * the response and sent with sendfile (kreq_add_file), so record bytes are
 * never copied through user space. When there is less than min_bytes to
 * send, the request waits (KH_PENDING) until a produce kicks the loop or
 * max_wait_ms passes. */
#include "core/platform.h"
#include "core/log.h"
#include "core/util.h"
#include "kafka/broker.h"
#include "kafka/errors.h"
#include "kafka/handlers.h"
#include "kafka/records.h"
#include "kafka/server.h"

#include <unistd.h>

#define MAX_FETCH_TOPICS 10000
#define MAX_FETCH_PARTITIONS 100000

struct fetch_part {
	int32_t partition;
	int64_t offset;
	int32_t max_bytes;
};

struct fetch_topic {
	struct slice name;
	struct ktopic *t; /* reference, or NULL if unknown */
	int first, n;     /* range in fetch_state.parts */
};

struct fetch_state {
	int16_t ver;
	int32_t min_bytes;
	int32_t max_bytes;
	int ntopics;
	struct fetch_topic *topics;
	int nparts;
	struct fetch_part *parts;
	struct seglog_read *reads; /* scratch, one per part */
};

static void fetch_state_free(struct fetch_state *st)
{
	if (!st)
		return;
	for (int i = 0; i < st->ntopics; i++)
		ktopic_unref(st->topics[i].t);
	free(st->topics);
	free(st->parts);
	free(st->reads);
	free(st);
}

/* Error for a partition fetch, and whether it has data to send. */
static int16_t part_status(struct fetch_topic *ft, struct fetch_part *fp, struct kpartition **pp,
			   bool *has_data)
{
	*has_data = false;
	*pp = NULL;
	if (!ft->t)
		return KERR_UNKNOWN_TOPIC_OR_PARTITION;
	struct kpartition *p = ktopic_partition(ft->t, fp->partition);
	if (!p)
		return KERR_UNKNOWN_TOPIC_OR_PARTITION;
	*pp = p;
	int64_t hw = __atomic_load_n(&p->high_watermark, __ATOMIC_ACQUIRE);
	if (fp->offset < seglog_start_offset(p->log) || fp->offset > hw)
		return KERR_OFFSET_OUT_OF_RANGE;
	*has_data = fp->offset < hw;
	return KERR_NONE;
}

/* Builds the response if there is enough to send (or force). Returns KH_DONE
 * or KH_PENDING (nothing written, no references kept). */
static int fetch_try(struct kreq *req, struct fetch_state *st, bool force)
{
	bool any = false;
	for (int i = 0; i < st->ntopics && !any; i++) {
		struct fetch_topic *ft = &st->topics[i];
		for (int j = ft->first; j < ft->first + ft->n; j++) {
			struct kpartition *p;
			bool has;
			if (part_status(ft, &st->parts[j], &p, &has) != KERR_NONE || has) {
				any = true;
				break;
			}
		}
	}
	if (!any && !force)
		return KH_PENDING;

	/* Read pass: take segment ranges within the byte budgets. */
	int64_t budget = st->max_bytes;
	int64_t total = 0;
	bool errors = false;
	int16_t *errs = xmalloc(sizeof(*errs) * (size_t)(st->nparts ? st->nparts : 1));
	for (int i = 0; i < st->ntopics; i++) {
		struct fetch_topic *ft = &st->topics[i];
		for (int j = ft->first; j < ft->first + ft->n; j++) {
			struct fetch_part *fp = &st->parts[j];
			struct seglog_read *rd = &st->reads[j];
			struct kpartition *p;
			bool has;
			memset(rd, 0, sizeof(*rd));
			errs[j] = part_status(ft, fp, &p, &has);
			if (errs[j] != KERR_NONE) {
				errors = true;
				continue;
			}
			if (!has || fp->max_bytes <= 0 || (budget <= 0 && total > 0))
				continue;
			uint64_t want = (uint64_t)SILT_MIN((int64_t)fp->max_bytes, SILT_MAX(budget, 1));
			int rc = seglog_read(p->log, fp->offset, want, rd);
			if (rc == -SILT_ERANGE) {
				errs[j] = KERR_OFFSET_OUT_OF_RANGE;
				errors = true;
				continue;
			}
			if (rc != 0) {
				log_error("kafka", "fetch %s-%d at %" PRId64 ": %s", ft->t->name, fp->partition,
					  fp->offset, silt_strerror(rc));
				errs[j] = KERR_UNKNOWN_SERVER_ERROR;
				errors = true;
				continue;
			}
			budget -= (int64_t)rd->len;
			total += (int64_t)rd->len;
		}
	}
	if (!force && !errors && total < st->min_bytes) {
		for (int j = 0; j < st->nparts; j++)
			if (st->reads[j].seg)
				seglog_seg_unref(st->reads[j].seg);
		free(errs);
		return KH_PENDING;
	}

	struct wbuf *w = &req->out;
	int16_t ver = st->ver;
	if (ver >= 1)
		wbuf_i32(w, 0); /* throttle */
	if (ver >= 7) {
		wbuf_i16(w, KERR_NONE);
		wbuf_i32(w, 0); /* session_id: we keep no fetch sessions */
	}
	wbuf_i32(w, st->ntopics);
	for (int i = 0; i < st->ntopics; i++) {
		struct fetch_topic *ft = &st->topics[i];
		wbuf_strn(w, ft->name.p, ft->name.len > 0 ? ft->name.len : 0);
		wbuf_i32(w, ft->n);
		for (int j = ft->first; j < ft->first + ft->n; j++) {
			struct fetch_part *fp = &st->parts[j];
			struct kpartition *p = ft->t ? ktopic_partition(ft->t, fp->partition) : NULL;
			int64_t hw = p ? __atomic_load_n(&p->high_watermark, __ATOMIC_ACQUIRE) : -1;
			int64_t start = p ? seglog_start_offset(p->log) : -1;
			wbuf_i32(w, fp->partition);
			wbuf_i16(w, errs[j]);
			wbuf_i64(w, hw);
			if (ver >= 4)
				wbuf_i64(w, hw); /* last_stable_offset: no transactions */
			if (ver >= 5)
				wbuf_i64(w, start);
			if (ver >= 4)
				wbuf_i32(w, -1); /* aborted_transactions: null */
			if (ver >= 11)
				wbuf_i32(w, -1); /* preferred_read_replica */
			struct seglog_read *rd = &st->reads[j];
			wbuf_i32(w, (int32_t)rd->len);
			if (rd->seg && rd->len > 0)
				kreq_add_file(req, rd); /* the request now owns the ref */
			else if (rd->seg)
				seglog_seg_unref(rd->seg);
			rd->seg = NULL;
		}
	}
	free(errs);
	return KH_DONE;
}

static int fetch_poll(struct kreq *req, bool expired)
{
	struct fetch_state *st = req->pstate;
	int rc = fetch_try(req, st, expired);
	if (rc == KH_DONE) {
		fetch_state_free(st);
		req->pstate = NULL;
	}
	return rc;
}

static void fetch_cancel(struct kreq *req)
{
	fetch_state_free(req->pstate);
	req->pstate = NULL;
}

int kh_fetch(struct kreq *req, struct rd *r)
{
	int16_t ver = req->api_version;
	struct fetch_state *st = xcalloc(1, sizeof(*st));
	st->ver = ver;
	(void)rd_i32(r); /* replica_id */
	int32_t max_wait = rd_i32(r);
	st->min_bytes = rd_i32(r);
	st->max_bytes = ver >= 3 ? rd_i32(r) : INT32_MAX;
	if (ver >= 4)
		(void)rd_i8(r); /* isolation_level: no transactions, LSO == HW */
	if (ver >= 7) {
		(void)rd_i32(r); /* session_id */
		(void)rd_i32(r); /* session_epoch */
	}
	int32_t nt = rd_array(r, MAX_FETCH_TOPICS);
	if (r->err)
		goto malformed;
	st->topics = xcalloc((size_t)(nt ? nt : 1), sizeof(*st->topics));
	int capparts = 16;
	st->parts = xmalloc(sizeof(*st->parts) * (size_t)capparts);
	for (int32_t i = 0; i < nt; i++) {
		struct fetch_topic *ft = &st->topics[i];
		ft->name = rd_str(r);
		int32_t np = rd_array(r, MAX_FETCH_PARTITIONS);
		st->ntopics = i + 1;
		if (r->err)
			goto malformed;
		if (ft->name.len > 0)
			ft->t = kbroker_topic((const char *)ft->name.p, (size_t)ft->name.len);
		ft->first = st->nparts;
		ft->n = np;
		if (st->nparts + np > MAX_FETCH_PARTITIONS)
			goto malformed;
		if (st->nparts + np > capparts) {
			while (st->nparts + np > capparts)
				capparts *= 2;
			st->parts = xrealloc(st->parts, sizeof(*st->parts) * (size_t)capparts);
		}
		for (int32_t j = 0; j < np; j++) {
			struct fetch_part *fp = &st->parts[st->nparts++];
			fp->partition = rd_i32(r);
			if (ver >= 9)
				(void)rd_i32(r); /* current_leader_epoch */
			fp->offset = rd_i64(r);
			if (ver >= 5)
				(void)rd_i64(r); /* log_start_offset (followers) */
			fp->max_bytes = rd_i32(r);
		}
	}
	if (ver >= 7) {
		int32_t nf = rd_array(r, MAX_FETCH_TOPICS);
		for (int32_t i = 0; i < nf && !r->err; i++) {
			(void)rd_str(r);
			int32_t np = rd_array(r, MAX_FETCH_PARTITIONS);
			for (int32_t j = 0; j < np && !r->err; j++)
				(void)rd_i32(r);
		}
	}
	if (ver >= 11)
		(void)rd_str(r); /* rack_id */
	if (r->err)
		goto malformed;
	st->reads = xcalloc((size_t)(st->nparts ? st->nparts : 1), sizeof(*st->reads));

	int rc = fetch_try(req, st, max_wait <= 0);
	if (rc == KH_DONE) {
		fetch_state_free(st);
		return KH_DONE;
	}
	req->pstate = st;
	req->poll = fetch_poll;
	req->cancel = fetch_cancel;
	req->deadline_ms = mono_ms() + SILT_MIN(max_wait, 300000);
	return KH_PENDING;
malformed:
	fetch_state_free(st);
	return KH_CLOSE;
}

/* The first offset whose record timestamp is >= ts: the log's time index
 * finds the batch, then the batch's records are read for the exact one. */
static int64_t offset_for_time(struct kpartition *p, int64_t ts, struct wbuf *scratch)
{
	int64_t off = seglog_offset_for_time(p->log, ts);
	if (off < 0 || off >= __atomic_load_n(&p->high_watermark, __ATOMIC_ACQUIRE))
		return -1;
	struct seglog_read rd;
	if (seglog_read(p->log, off, 1, &rd) != 0 || !rd.seg)
		return off;
	int64_t exact = -1;
	size_t cap = SILT_MIN(rd.len, (uint64_t)(64u << 20));
	uint8_t *buf = xmalloc(cap ? cap : 1);
	struct kbatch b;
	if (pread(rd.fd, buf, cap, (off_t)rd.pos) == (ssize_t)cap && kbatch_parse_header(buf, cap, &b) == 0 &&
	    b.size <= cap && kbatch_offset_for_time(&b, ts, scratch, &exact) == 0 && exact >= 0)
		off = exact;
	free(buf);
	seglog_seg_unref(rd.seg);
	return off;
}

/* ListOffsets v0-5: timestamp -1 = latest (high watermark), -2 = earliest
 * (log start), else the first offset whose record has a timestamp >= it. */
int kh_list_offsets(struct kreq *req, struct rd *r)
{
	int16_t ver = req->api_version;
	(void)rd_i32(r); /* replica_id */
	if (ver >= 2)
		(void)rd_i8(r); /* isolation_level */
	int32_t nt = rd_array(r, MAX_FETCH_TOPICS);
	if (r->err)
		return KH_CLOSE;
	struct wbuf *w = &req->out;
	if (ver >= 2)
		wbuf_i32(w, 0);
	wbuf_i32(w, nt);
	for (int32_t i = 0; i < nt; i++) {
		struct slice name = rd_str(r);
		int32_t np = rd_array(r, MAX_FETCH_PARTITIONS);
		if (r->err)
			return KH_CLOSE;
		struct ktopic *t = name.len > 0 ? kbroker_topic((const char *)name.p, (size_t)name.len) : NULL;
		wbuf_strn(w, name.p, name.len > 0 ? name.len : 0);
		wbuf_i32(w, np);
		for (int32_t j = 0; j < np; j++) {
			int32_t pid = rd_i32(r);
			if (ver >= 4)
				(void)rd_i32(r); /* current_leader_epoch */
			int64_t ts = rd_i64(r);
			if (ver == 0)
				(void)rd_i32(r); /* max_num_offsets */
			if (r->err) {
				ktopic_unref(t);
				return KH_CLOSE;
			}
			struct kpartition *p = t ? ktopic_partition(t, pid) : NULL;
			int16_t err = p ? KERR_NONE : KERR_UNKNOWN_TOPIC_OR_PARTITION;
			int64_t off = -1, rts = -1;
			if (p) {
				int64_t hw = __atomic_load_n(&p->high_watermark, __ATOMIC_ACQUIRE);
				if (ts == -1) {
					off = hw;
				} else if (ts == -2) {
					off = seglog_start_offset(p->log);
				} else {
					off = offset_for_time(p, ts, kloop_scratch(req->kl));
					if (off >= 0)
						rts = ts;
				}
			}
			wbuf_i32(w, pid);
			wbuf_i16(w, err);
			if (ver == 0) {
				wbuf_i32(w, off >= 0 ? 1 : 0);
				if (off >= 0)
					wbuf_i64(w, off);
			} else {
				wbuf_i64(w, rts);
				wbuf_i64(w, off);
				if (ver >= 4)
					wbuf_i32(w, p ? p->leader_epoch : -1);
			}
		}
		ktopic_unref(t);
	}
	return KH_DONE;
}
