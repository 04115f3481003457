/* api_produce.c - Produce v0-7.
 *
 * Per partition: validate the record set (records.c) outside any lock, then
 * under the partition mutex check idempotent-producer sequences, assign
 * offsets in place in the request frame (which the request owns) and append
 * the bytes to the log unchanged otherwise. acks=0 gets no response;
 * acks=1 and acks=-1 are answered once the append is done (single node: the
 * leader's log is "all"), or once it is fsynced when fsync_acks is set. */
#include "core/platform.h"
#include "core/log.h"
#include "core/util.h"
#include "kafka/broker.h"
#include "kafka/errors.h"
#include "kafka/handlers.h"
#include "kafka/pidstate.h"
#include "kafka/records.h"
#include "kafka/server.h"

#define MAX_PRODUCE_TOPICS 10000
#define MAX_PRODUCE_PARTITIONS 100000

struct produce_wait {
	int n, cap;
	struct {
		struct ktopic *t;
		struct kpartition *p;
		int64_t need; /* flushed offset that acknowledges this append */
	} *parts;
};

struct append_result {
	int16_t err;
	int64_t base_offset;
	int64_t log_append_time;
	int64_t log_start_offset;
};

/* Appends a validated record set to p. Holds p->mu. */
static void append_set(struct kpartition *p, uint8_t *set, size_t len, struct append_result *res)
{
	const struct tconf *d = &kbroker_conf()->topic_defaults;
	bool lat = tconf_get(&p->topic->conf, d, TC_TIMESTAMP_TYPE) == TC_TS_LOG_APPEND_TIME;
	int64_t now = lat ? now_ms() : -1;
	res->log_append_time = now;

	pthread_mutex_lock(&p->mu);
	int64_t next = seglog_end_offset(p->log);
	int64_t first = next;
	int64_t max_ts = -1;
	struct kbatch b;
	/* Idempotence is checked per batch before anything is written, so a
	 * rejected set leaves the log untouched. */
	for (size_t off = 0; off < len; off += b.size) {
		kbatch_parse_header(set + off, len - off, &b);
		if (b.producer_id < 0)
			continue;
		int64_t dup_base = -1;
		int rc = pidstate_check(p->pids, b.producer_id, b.producer_epoch, b.base_sequence,
					b.records_count, &dup_base);
		if (rc == KERR_NONE && dup_base >= 0) {
			if (off == 0 && b.size == len) {
				/* A retry of a batch we already have: answer with
				 * the original offsets, append nothing. */
				res->err = KERR_NONE;
				res->base_offset = dup_base;
				goto out;
			}
			rc = KERR_DUPLICATE_SEQUENCE_NUMBER;
		}
		if (rc != KERR_NONE) {
			res->err = (int16_t)rc;
			res->base_offset = -1;
			goto out;
		}
	}
	for (size_t off = 0; off < len; off += b.size) {
		kbatch_parse_header(set + off, len - off, &b);
		kbatch_assign(set + off, next, p->leader_epoch, now);
		next += (int64_t)b.last_offset_delta + 1;
		max_ts = SILT_MAX(max_ts, lat ? now : b.max_timestamp);
	}
	struct iovec iov = { set, len };
	int rc = seglog_append(p->log, &iov, 1, next - 1, max_ts);
	if (rc != 0) {
		log_error("kafka", "append to %s-%d failed: %s", p->topic->name, p->id, silt_strerror(rc));
		res->err = KERR_UNKNOWN_SERVER_ERROR;
		res->base_offset = -1;
		goto out;
	}
	/* Only batches that reached the log count for deduplication: a retry
	 * after a failed append must be appended, not answered as a
	 * duplicate. baseOffset is the assigned one now. */
	for (size_t off = 0; off < len; off += b.size) {
		kbatch_parse_header(set + off, len - off, &b);
		if (b.producer_id >= 0)
			pidstate_record(p->pids, b.producer_id, b.producer_epoch, b.base_sequence,
					b.records_count, b.base_offset);
	}
	__atomic_store_n(&p->high_watermark, next, __ATOMIC_RELEASE);
	res->err = KERR_NONE;
	res->base_offset = first;
out:
	res->log_start_offset = seglog_start_offset(p->log);
	pthread_mutex_unlock(&p->mu);
}

static void produce_wait_free(struct produce_wait *pw)
{
	if (!pw)
		return;
	for (int i = 0; i < pw->n; i++)
		ktopic_unref(pw->parts[i].t);
	free(pw->parts);
	free(pw);
}

static int produce_poll(struct kreq *req, bool expired)
{
	struct produce_wait *pw = req->pstate;
	for (int i = 0; i < pw->n; i++) {
		if (seglog_flushed_offset(pw->parts[i].p->log) >= pw->parts[i].need)
			continue;
		if (!expired)
			return KH_PENDING;
		/* The append happened but is not yet on disk after the client's
		 * timeout; it was already answered as written, so log it. */
		log_warn("kafka", "produce to %s-%d: fsync slower than the request timeout",
			 pw->parts[i].t->name, pw->parts[i].p->id);
		break;
	}
	produce_wait_free(pw);
	req->pstate = NULL;
	return KH_DONE;
}

static void produce_cancel(struct kreq *req)
{
	produce_wait_free(req->pstate);
	req->pstate = NULL;
}

static void produce_wait_add(struct produce_wait *pw, struct ktopic *t, struct kpartition *p, int64_t need)
{
	if (pw->n == pw->cap) {
		pw->cap = pw->cap ? pw->cap * 2 : 4;
		pw->parts = xrealloc(pw->parts, sizeof(*pw->parts) * (size_t)pw->cap);
	}
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
	pw->parts[pw->n].t = t;
	pw->parts[pw->n].p = p;
	pw->parts[pw->n].need = need;
	pw->n++;
}

/* Walks the request's framing without acting on it, so that a malformed
 * request is refused before any partition is appended to. */
static bool produce_framing_ok(struct rd r)
{
	int32_t nt = rd_array(&r, MAX_PRODUCE_TOPICS);
	for (int32_t i = 0; i < nt && !r.err; i++) {
		(void)rd_str(&r);
		int32_t np = rd_array(&r, MAX_PRODUCE_PARTITIONS);
		for (int32_t j = 0; j < np && !r.err; j++) {
			(void)rd_i32(&r);
			(void)rd_kbytes(&r);
		}
	}
	return !r.err;
}

int kh_produce(struct kreq *req, struct rd *r)
{
	int16_t ver = req->api_version;
	const struct kbroker_conf *conf = kbroker_conf();
	if (ver >= 3)
		(void)rd_str(r); /* transactional_id */
	int16_t acks = rd_i16(r);
	int32_t timeout_ms = rd_i32(r);
	if (r->err || !produce_framing_ok(*r))
		return KH_CLOSE;
	int32_t ntopics = rd_array(r, MAX_PRODUCE_TOPICS);
	bool acks_ok = acks == 0 || acks == 1 || acks == -1;
	struct produce_wait *pw = NULL;
	if (conf->fsync_acks && acks != 0)
		pw = xcalloc(1, sizeof(*pw));

	struct wbuf *w = &req->out;
	wbuf_i32(w, ntopics);
	for (int32_t i = 0; i < ntopics; i++) {
		struct slice name = rd_str(r);
		int32_t nparts = rd_array(r, MAX_PRODUCE_PARTITIONS);
		if (r->err)
			goto malformed;
		size_t nlen = name.len > 0 ? (size_t)name.len : 0;
		const char *nm = name.p ? (const char *)name.p : "";
		wbuf_strn(w, nm, (int32_t)nlen);
		wbuf_i32(w, nparts);
		struct ktopic *t = kbroker_topic(nm, nlen);
		int16_t topic_err = KERR_NONE;
		if (!t) {
			if (!kafka_topic_name_valid(nm, nlen))
				topic_err = KERR_INVALID_TOPIC_EXCEPTION;
			else if (conf->auto_create_topics) {
				int e = kbroker_create_topic(nm, nlen, 0, NULL, &t);
				if (e == KERR_TOPIC_ALREADY_EXISTS)
					t = kbroker_topic(nm, nlen);
				else if (e != KERR_NONE)
					topic_err = (int16_t)e;
			} else
				topic_err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			if (!t && topic_err == KERR_NONE)
				topic_err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		}
		for (int32_t j = 0; j < nparts; j++) {
			int32_t pid = rd_i32(r);
			struct slice recs = rd_kbytes(r);
			if (r->err) {
				ktopic_unref(t);
				goto malformed;
			}
			struct append_result res = { KERR_NONE, -1, -1, -1 };
			struct kpartition *p = t ? ktopic_partition(t, pid) : NULL;
			if (topic_err != KERR_NONE) {
				res.err = topic_err;
			} else if (!acks_ok) {
				res.err = KERR_INVALID_REQUIRED_ACKS;
			} else if (!p) {
				res.err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			} else if (recs.len <= 0) {
				res.err = KERR_CORRUPT_MESSAGE;
			} else if (ver < 3) {
				/* Produce v0-2 can only carry message format 0/1. */
				res.err = KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
			} else {
				struct kbatch_limits lim = {
					.max_batch_bytes = (uint32_t)tconf_get(&t->conf, &conf->topic_defaults,
									       TC_MAX_MESSAGE_BYTES),
					.max_uncompressed = 256u << 20,
				};
				int nb;
				int64_t nrec, maxts;
				int v = kbatch_validate_set(recs.p, (size_t)recs.len, &lim, kloop_scratch(req->kl),
							    &nb, &nrec, &maxts);
				if (v != KREC_OK) {
					res.err = (int16_t)v;
					log_info("kafka", "produce to %s-%d from '%.*s' rejected: error %d", t->name,
						 pid, req->client_id.len > 0 ? (int)SILT_MIN(req->client_id.len, 64) : 0,
						 req->client_id.len > 0 ? (const char *)req->client_id.p : "", v);
				} else {
					/* The frame is owned by the request and writable. */
					append_set(p, (uint8_t *)(uintptr_t)recs.p, (size_t)recs.len, &res);
					if (pw && res.err == KERR_NONE)
						produce_wait_add(pw, t, p, seglog_end_offset(p->log));
				}
			}
			wbuf_i32(w, pid);
			wbuf_i16(w, res.err);
			wbuf_i64(w, res.base_offset);
			if (ver >= 2)
				wbuf_i64(w, res.log_append_time);
			if (ver >= 5)
				wbuf_i64(w, res.log_start_offset);
		}
		ktopic_unref(t);
	}
	if (ver >= 1)
		wbuf_i32(w, 0); /* throttle */
	kafka_kick();
	if (acks == 0) {
		produce_wait_free(pw);
		return KH_NORESP;
	}
	if (pw && pw->n > 0) {
		for (int i = 0; i < pw->n; i++)
			kbroker_request_flush(pw->parts[i].p);
		req->pstate = pw;
		req->poll = produce_poll;
		req->cancel = produce_cancel;
		req->deadline_ms = mono_ms() + (timeout_ms > 0 ? timeout_ms : 30000);
		return KH_PENDING;
	}
	produce_wait_free(pw);
	return KH_DONE;
malformed:
	produce_wait_free(pw);
	return KH_CLOSE;
}
