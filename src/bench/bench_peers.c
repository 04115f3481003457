/* bench_peers.c - the comparison systems for `silt bench`: NATS JetStream
 * through libnats and Redis Streams through hiredis, driven with the same
 * workload shape as the Kafka target (N messages of SIZE bytes on one
 * stream; produce, consume from the start, or fixed-rate latency).
 *
 * Threads: NATS acknowledgement callbacks run on a libnats thread and touch
 * only the atomic counters of struct nb_state; the latency samples have a
 * single writer (that thread) and are read after the publisher has waited
 * for all acknowledgements. Redis runs entirely on the caller's thread. */
#include "core/platform.h"
#include "bench/bench.h"

#include <hiredis/hiredis.h>
#include <nats/nats.h>
#include <poll.h>
#include <stdatomic.h>
#include <time.h>

#define PEER_SETUP_TIMEOUT_MS 10000
#define PEER_DRAIN_GRACE_NS (10 * 1000000000LL)

/* ------------------------------------------------------------------ */
/* NATS JetStream */

struct nb_state {
	atomic_int_fast64_t acked;
	atomic_int_fast64_t failed;
	atomic_int_fast64_t bytes;
	atomic_int_fast64_t last_ack_ns;
	atomic_int first_err; /* natsStatus of the first failure, 0 if none */
	bool latency;
	int64_t *lat;
	int64_t cap;
	atomic_int_fast64_t nlat;
};

/* JetStream stream names may not contain '.', '*', '>' or spaces; the
 * subject keeps the topic as given. */
static void nb_stream_name(const char *topic, char *out, size_t outlen)
{
	size_t i = 0;
	for (; topic[i] && i + 1 < outlen; i++) {
		char ch = topic[i];
		out[i] = (ch == '.' || ch == '*' || ch == '>' || ch == ' ') ? '_' : ch;
	}
	out[i] = '\0';
}

static void nb_ack_cb(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	(void)js;
	struct nb_state *st = closure;
	int64_t now = bench_now_ns();
	if (pa && !pae) {
		int len = natsMsg_GetDataLength(msg);
		if (st->latency) {
			int64_t i = atomic_load_explicit(&st->nlat, memory_order_relaxed);
			if (i < st->cap) {
				st->lat[i] = now - bench_stamp_get(natsMsg_GetData(msg), (size_t)SILT_MAX(len, 0));
				atomic_store_explicit(&st->nlat, i + 1, memory_order_release);
			}
		}
		atomic_fetch_add_explicit(&st->bytes, len, memory_order_relaxed);
		atomic_fetch_add_explicit(&st->acked, 1, memory_order_release);
	} else {
		int expect = 0;
		int err = pae ? (int)pae->Err : (int)NATS_ERR;
		atomic_compare_exchange_strong(&st->first_err, &expect, err ? err : (int)NATS_ERR);
		atomic_fetch_add_explicit(&st->failed, 1, memory_order_release);
	}
	atomic_store_explicit(&st->last_ack_ns, now, memory_order_relaxed);
	natsMsg_Destroy(msg);
}

static void nb_fail(const char *what, natsStatus s, jsErrCode jerr)
{
	fprintf(stderr, "silt bench: nats %s: %s (jetstream error %d)%s%s\n", what, natsStatus_GetText(s), (int)jerr,
		nats_GetLastError(NULL) ? ": " : "", nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "");
}

/* Recreates the stream empty with file storage, so every produce run
 * starts from the same state and a later consume run reads exactly it. */
static int nb_reset_stream(jsCtx *js, const char *stream, const char *subject)
{
	jsErrCode jerr = 0;
	natsStatus s = js_DeleteStream(js, stream, NULL, &jerr);
	if (s != NATS_OK && s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
		nb_fail("delete stream", s, jerr);
		return -1;
	}
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	const char *subjects[1] = { subject };
	sc.Name = stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Replicas = 1;
	jsStreamInfo *si = NULL;
	s = js_AddStream(&si, js, &sc, NULL, &jerr);
	if (s != NATS_OK) {
		nb_fail("add stream", s, jerr);
		return -1;
	}
	jsStreamInfo_Destroy(si);
	printf("  stream %s: subject %s, file storage, 1 replica (recreated empty)\n", stream, subject);
	return 0;
}

static int nb_publish(const struct bench_opts *o, jsCtx *js, struct nb_state *st, struct bench_result *r)
{
	uint8_t *payload = bench_payload_new((size_t)o->size);
	int64_t start = bench_now_ns();
	int64_t deadline = start + o->duration_s * 1000000000LL;
	bool lat = o->mode == BENCH_LATENCY;
	double interval = lat ? 1e9 / (double)o->rate : 0;
	int64_t sent = 0, refused = 0;
	natsStatus last = NATS_OK;
	for (int64_t i = 0; i < o->messages; i++) {
		if (lat) {
			int64_t sched = start + (int64_t)((double)i * interval);
			if (sched >= deadline)
				break;
			bench_sleep_until(sched);
			bench_stamp_put(payload, sched);
		} else if ((i & 1023) == 0 && bench_now_ns() >= deadline) {
			break;
		}
		/* js_PublishAsync copies the payload and stalls for StallWait
		 * when the window is full, returning NATS_TIMEOUT; retry until
		 * the cap. */
		natsStatus s = NATS_OK;
		for (int tries = 0; tries < 1000000; tries++) {
			s = js_PublishAsync(js, o->topic, payload, (int)o->size, NULL);
			if (s != NATS_TIMEOUT || bench_now_ns() >= deadline)
				break;
		}
		if (s == NATS_OK) {
			sent++;
		} else {
			refused++;
			last = s;
			if (s != NATS_TIMEOUT)
				nb_fail("publish", s, 0);
			break;
		}
	}
	int64_t send_end = bench_now_ns();
	/* Bounded wait for the outstanding acknowledgements. */
	int64_t wait_until = lat ? send_end + PEER_DRAIN_GRACE_NS : deadline;
	int64_t left_ms = (wait_until - bench_now_ns()) / 1000000;
	natsStatus s = NATS_TIMEOUT;
	if (left_ms > 0) {
		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MaxWait = left_ms;
		s = js_PublishAsyncComplete(js, &po);
	}
	int64_t end = bench_now_ns();
	int64_t acked = atomic_load_explicit(&st->acked, memory_order_acquire);
	int64_t failed = atomic_load_explicit(&st->failed, memory_order_acquire);
	if (s != NATS_OK)
		fprintf(stderr, "silt bench: nats: %" PRId64 " publishes still unacknowledged at the cap (%s)\n",
			sent - acked - failed, natsStatus_GetText(s));
	if (failed)
		fprintf(stderr, "silt bench: nats: %" PRId64 " publish failures, first: %s\n", failed,
			natsStatus_GetText((natsStatus)atomic_load(&st->first_err)));
	if (refused && last == NATS_TIMEOUT)
		fprintf(stderr, "silt bench: nats: publish window stayed full until the cap\n");
	r->msgs = acked;
	r->bytes = atomic_load_explicit(&st->bytes, memory_order_relaxed);
	r->failures = failed + refused;
	int64_t last_ack = atomic_load_explicit(&st->last_ack_ns, memory_order_relaxed);
	r->elapsed_ns = lat ? send_end - start : (last_ack > start ? SILT_MIN(last_ack, end) : end) - start;
	r->incomplete = acked < (lat ? sent : o->messages) || refused > 0;
	if (lat) {
		r->lat = st->lat;
		r->nlat = atomic_load_explicit(&st->nlat, memory_order_acquire);
		r->target_rate = (double)o->rate;
	}
	free(payload);
	return r->incomplete || r->failures ? BENCH_EXIT_FAIL : BENCH_EXIT_OK;
}

static int nb_consume(const struct bench_opts *o, jsCtx *js, const char *stream, struct bench_result *r)
{
	natsSubscription *sub = NULL;
	jsErrCode jerr = 0;
	int rc = BENCH_EXIT_FAIL;
	jsStreamInfo *si = NULL;
	natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
	if (s != NATS_OK) {
		nb_fail("stream info (produce first)", s, jerr);
		return BENCH_EXIT_FAIL;
	}
	printf("  stream %s holds %" PRIu64 " messages\n", stream, si->State.Msgs);
	/* Ask only for what is there, so the last fetch never waits out its
	 * timeout for messages that will not come. */
	int64_t want = o->messages;
	if (si->State.Msgs < (uint64_t)want) {
		fprintf(stderr, "silt bench: nats: stream holds %" PRIu64 " of the %" PRId64 " messages asked for\n",
			si->State.Msgs, want);
		want = (int64_t)si->State.Msgs;
	}
	jsStreamInfo_Destroy(si);

	/* An ephemeral pull consumer without acks: the cheapest way JetStream
	 * offers to read a stream from the start. */
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Config.AckPolicy = js_AckNone;
	so.Config.DeliverPolicy = js_DeliverAll;
	so.Config.MaxRequestBatch = o->window;
	s = js_PullSubscribe(&sub, js, o->topic, NULL, NULL, &so, &jerr);
	if (s != NATS_OK) {
		nb_fail("pull subscribe", s, jerr);
		return BENCH_EXIT_FAIL;
	}
	printf("  ephemeral pull consumer, AckNone, fetch batch %" PRId64 "\n", o->window);
	fflush(stdout);
	int64_t start = bench_now_ns();
	int64_t deadline = start + o->duration_s * 1000000000LL;
	int64_t got = 0, bytes = 0, errors = 0;
	bool end_of_stream = false;
	for (int64_t iter = 0; iter < BENCH_MAX_MESSAGES && got < want && !end_of_stream; iter++) {
		int64_t left_ms = (deadline - bench_now_ns()) / 1000000;
		if (left_ms <= 0)
			break;
		natsMsgList list = { 0 };
		int batch = (int)SILT_MIN(o->window, want - got);
		s = natsSubscription_Fetch(&list, sub, batch, SILT_MIN(left_ms, 2000), &jerr);
		if (s == NATS_TIMEOUT) {
			end_of_stream = true;
		} else if (s != NATS_OK) {
			nb_fail("fetch", s, jerr);
			errors++;
			natsMsgList_Destroy(&list);
			break;
		}
		for (int k = 0; k < list.Count; k++) {
			got++;
			bytes += natsMsg_GetDataLength(list.Msgs[k]);
		}
		natsMsgList_Destroy(&list);
	}
	int64_t end = bench_now_ns();
	if (end_of_stream && got < o->messages)
		fprintf(stderr, "silt bench: nats: end of stream after %" PRId64 " of %" PRId64 " messages\n", got,
			o->messages);
	r->msgs = got;
	r->bytes = bytes;
	r->failures = errors;
	r->elapsed_ns = end - start;
	r->incomplete = got < o->messages;
	rc = r->incomplete || errors ? BENCH_EXIT_FAIL : BENCH_EXIT_OK;
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	return rc;
}

int bench_nats_run(const struct bench_opts *o)
{
	struct nb_state *st = xcalloc(1, sizeof(*st));
	struct bench_result r = { 0 };
	natsOptions *nopts = NULL;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	int rc = BENCH_EXIT_FAIL;
	char stream[128];
	natsStatus s;

	nb_stream_name(o->topic, stream, sizeof(stream));
	if (o->mode == BENCH_LATENCY) {
		st->latency = true;
		st->cap = bench_lat_cap(o);
		st->lat = xmalloc((size_t)st->cap * sizeof(int64_t));
	}
	if ((s = natsOptions_Create(&nopts)) != NATS_OK || (s = natsOptions_SetURL(nopts, o->url)) != NATS_OK ||
	    (s = natsOptions_SetTimeout(nopts, PEER_SETUP_TIMEOUT_MS)) != NATS_OK ||
	    (s = natsOptions_SetAllowReconnect(nopts, false)) != NATS_OK) {
		nb_fail("options", s, 0);
		goto out;
	}
	/* Latency mode writes each publish at once instead of leaving it to
	 * the library's flusher thread, as the Kafka target does with
	 * linger.ms=0. */
	if (o->mode == BENCH_LATENCY && (s = natsOptions_SetSendAsap(nopts, true)) != NATS_OK) {
		nb_fail("options", s, 0);
		goto out;
	}
	if ((s = natsConnection_Connect(&nc, nopts)) != NATS_OK) {
		nb_fail("connect", s, 0);
		goto out;
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = PEER_SETUP_TIMEOUT_MS;
	jo.PublishAsync.MaxPending = o->window;
	jo.PublishAsync.AckHandler = nb_ack_cb;
	jo.PublishAsync.AckHandlerClosure = st;
	jo.PublishAsync.StallWait = 100;
	if ((s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK) {
		nb_fail("jetstream context", s, 0);
		goto out;
	}
	printf("libnats %s settings:\n  url=%s\n  subject=%s\n  publish_async_max_pending=%" PRId64
	       "\n  send_asap=%s\n",
	       nats_GetVersion(), o->url, o->topic, o->window, o->mode == BENCH_LATENCY ? "true" : "false");
	if (o->mode == BENCH_CONSUME) {
		rc = nb_consume(o, js, stream, &r);
	} else {
		if (nb_reset_stream(js, stream, o->topic))
			goto out;
		printf("nats %s: %" PRId64 " x %" PRId64 " B, cap %" PRId64 " s\n", bench_mode_name(o->mode),
		       o->messages, o->size, o->duration_s);
		fflush(stdout);
		rc = nb_publish(o, js, st, &r);
	}
	bench_report(o, &r);
out:
	if (js)
		jsCtx_Destroy(js);
	if (nc)
		natsConnection_Destroy(nc);
	if (nopts)
		natsOptions_Destroy(nopts);
	free(st->lat);
	free(st);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Redis Streams */

static void rb_fail(const char *what, redisContext *c, redisReply *rep)
{
	fprintf(stderr, "silt bench: redis %s: %s\n", what,
		c && c->err ? c->errstr : rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
}

/* The XADD is formatted once: every message of a run has the same bytes
 * except, in latency mode, the timestamp at the start of the value, which
 * is patched in place at the known offset (value, then the final CRLF). */
static char *rb_format_xadd(const struct bench_opts *o, const uint8_t *payload, int *len)
{
	char *cmd = NULL;
	*len = redisFormatCommand(&cmd, "XADD %s * d %b", o->topic, payload, (size_t)o->size);
	return *len > 0 ? cmd : NULL;
}

/* Produce as a sliding pipeline: keep `window` XADDs in flight. hiredis
 * writes its output buffer only when a reply is needed and the input
 * buffer is empty, so the commands queued while replies were being
 * consumed go out together in one write. */
static int rb_produce(const struct bench_opts *o, redisContext *c, struct bench_result *r)
{
	uint8_t *payload = bench_payload_new((size_t)o->size);
	int cmdlen = 0;
	char *cmd = rb_format_xadd(o, payload, &cmdlen);
	int64_t start = bench_now_ns();
	int64_t deadline = start + o->duration_s * 1000000000LL;
	int64_t sent = 0, done = 0, acked = 0, failed = 0;
	bool broken = false;
	if (!cmd) {
		broken = true;
		goto done;
	}
	while (done < o->messages && !broken) {
		while (sent - done < o->window && sent < o->messages) {
			if (redisAppendFormattedCommand(c, cmd, (size_t)cmdlen) != REDIS_OK) {
				broken = true;
				break;
			}
			sent++;
		}
		if (sent == done)
			break;
		redisReply *rep = NULL;
		if (redisGetReply(c, (void **)&rep) != REDIS_OK || !rep) {
			rb_fail("XADD", c, NULL);
			broken = true;
			break;
		}
		done++;
		if (rep->type == REDIS_REPLY_STRING) {
			acked++;
		} else {
			if (!failed)
				rb_fail("XADD", NULL, rep);
			failed++;
		}
		freeReplyObject(rep);
		/* Stop sending at the cap, but read what is in flight. */
		if ((done & 1023) == 0 && bench_now_ns() >= deadline && sent < o->messages) {
			fprintf(stderr, "silt bench: redis: duration cap after %" PRId64 " messages\n", sent);
			r->incomplete = true;
			/* No new commands: pretend the target is what was sent. */
			for (int64_t k = done; k < sent && !broken; k++) {
				if (redisGetReply(c, (void **)&rep) != REDIS_OK || !rep) {
					broken = true;
					break;
				}
				if (rep->type == REDIS_REPLY_STRING)
					acked++;
				else
					failed++;
				freeReplyObject(rep);
			}
			done = sent;
			break;
		}
	}
done:;
	int64_t end = bench_now_ns();
	r->msgs = acked;
	r->bytes = acked * o->size;
	r->failures = failed + (broken ? sent - done : 0);
	r->elapsed_ns = end - start;
	r->incomplete = r->incomplete || broken || acked < o->messages;
	if (cmd)
		redisFreeCommand(cmd);
	free(payload);
	return r->incomplete || r->failures ? BENCH_EXIT_FAIL : BENCH_EXIT_OK;
}

/* Drains every complete reply already read; returns -1 if the connection
 * broke. Replies come back in order, so each one answers the oldest
 * outstanding send time in the ring. */
static int rb_take_replies(redisContext *c, const int64_t *ring, int64_t ringcap, int64_t *done, int64_t sent,
			   struct bench_result *r, int64_t cap)
{
	int64_t now = bench_now_ns();
	for (int64_t k = 0; *done < sent && k < ringcap; k++) {
		redisReply *rep = NULL;
		if (redisReaderGetReply(c->reader, (void **)&rep) != REDIS_OK)
			return -1;
		if (!rep)
			break;
		int64_t sched = ring[*done % ringcap];
		(*done)++;
		if (rep->type == REDIS_REPLY_STRING) {
			r->msgs++;
			if (r->nlat < cap)
				r->lat[r->nlat++] = now - sched;
		} else {
			if (!r->failures)
				rb_fail("XADD", NULL, rep);
			r->failures++;
		}
		freeReplyObject(rep);
	}
	return 0;
}

/* Waits up to `until_ns` for replies, reading them as they arrive. */
static int rb_wait(redisContext *c, int64_t until_ns, const int64_t *ring, int64_t ringcap, int64_t *done,
		   int64_t sent, struct bench_result *r, int64_t cap)
{
	for (int iter = 0; iter < 1000000; iter++) {
		int64_t left = until_ns - bench_now_ns();
		if (left <= 0)
			return 0;
		if (*done >= sent) {
			bench_sleep_until(until_ns);
			return 0;
		}
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		struct timespec ts = { .tv_sec = left / 1000000000, .tv_nsec = left % 1000000000 };
		int n = ppoll(&pfd, 1, &ts, NULL);
		if (n < 0 && errno != EINTR)
			return -1;
		if (n > 0) {
			if (redisBufferRead(c) != REDIS_OK)
				return -1;
			if (rb_take_replies(c, ring, ringcap, done, sent, r, cap))
				return -1;
		}
	}
	return 0;
}

/* Fixed-rate XADDs, each written immediately; replies are read in between
 * with ppoll so an acknowledgement is timestamped when it arrives. At most
 * `window` commands are outstanding; beyond that the sender waits, and the
 * wait shows up as latency because times are taken from the schedule. */
static int rb_latency(const struct bench_opts *o, redisContext *c, struct bench_result *r)
{
	uint8_t *payload = bench_payload_new((size_t)o->size);
	int cmdlen = 0;
	char *cmd = rb_format_xadd(o, payload, &cmdlen);
	int64_t ringcap = o->window;
	int64_t *ring = xmalloc((size_t)ringcap * sizeof(int64_t));
	int64_t cap = bench_lat_cap(o);
	r->lat = xmalloc((size_t)cap * sizeof(int64_t));
	r->target_rate = (double)o->rate;
	int64_t start = bench_now_ns();
	int64_t stop_at = start + o->duration_s * 1000000000LL;
	double interval = 1e9 / (double)o->rate;
	int64_t sent = 0, done = 0;
	bool broken = !cmd;
	size_t stamp_off = (size_t)cmdlen - 2 - (size_t)o->size;
	for (int64_t i = 0; i < o->messages && !broken; i++) {
		int64_t sched = start + (int64_t)((double)i * interval);
		if (sched >= stop_at)
			break;
		if (rb_wait(c, sched, ring, ringcap, &done, sent, r, cap)) {
			broken = true;
			break;
		}
		for (int k = 0; k < 100000 && sent - done >= ringcap; k++) {
			if (rb_wait(c, bench_now_ns() + 1000000, ring, ringcap, &done, sent, r, cap)) {
				broken = true;
				break;
			}
		}
		if (broken || sent - done >= ringcap)
			break;
		bench_stamp_put((uint8_t *)cmd + stamp_off, sched);
		ring[sent % ringcap] = sched;
		int wdone = 0;
		if (redisAppendFormattedCommand(c, cmd, (size_t)cmdlen) != REDIS_OK) {
			broken = true;
			break;
		}
		sent++;
		for (int k = 0; k < 1000 && !wdone; k++) {
			if (redisBufferWrite(c, &wdone) != REDIS_OK) {
				broken = true;
				break;
			}
		}
	}
	int64_t send_end = bench_now_ns();
	int64_t drain_until = send_end + PEER_DRAIN_GRACE_NS;
	for (int k = 0; k < 100000 && !broken && done < sent && bench_now_ns() < drain_until; k++) {
		if (rb_wait(c, SILT_MIN(drain_until, bench_now_ns() + 10000000), ring, ringcap, &done, sent, r, cap))
			broken = true;
	}
	if (broken)
		rb_fail("latency", c, NULL);
	r->bytes = r->msgs * o->size;
	r->failures += sent - done;
	r->elapsed_ns = send_end - start;
	r->incomplete = broken || done < sent || r->failures;
	free(ring);
	if (cmd)
		redisFreeCommand(cmd);
	free(payload);
	return r->incomplete ? BENCH_EXIT_FAIL : BENCH_EXIT_OK;
}

/* Reads the stream from the start with XREAD COUNT window, each call
 * continuing after the last ID seen. */
static int rb_consume(const struct bench_opts *o, redisContext *c, struct bench_result *r)
{
	char last[64] = "0-0";
	char count[32];
	snprintf(count, sizeof(count), "%" PRId64, o->window);
	int64_t start = bench_now_ns();
	int64_t deadline = start + o->duration_s * 1000000000LL;
	int64_t got = 0, bytes = 0;
	bool end = false, broken = false;
	for (int64_t iter = 0; iter < BENCH_MAX_MESSAGES && got < o->messages && !end && !broken; iter++) {
		if (bench_now_ns() >= deadline)
			break;
		redisReply *rep = redisCommand(c, "XREAD COUNT %s STREAMS %s %s", count, o->topic, last);
		if (!rep) {
			rb_fail("XREAD", c, NULL);
			broken = true;
			break;
		}
		if (rep->type == REDIS_REPLY_NIL) {
			end = true;
		} else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1 ||
			   rep->element[0]->type != REDIS_REPLY_ARRAY || rep->element[0]->elements != 2 ||
			   rep->element[0]->element[1]->type != REDIS_REPLY_ARRAY) {
			rb_fail("XREAD", NULL, rep);
			broken = true;
		} else {
			redisReply *entries = rep->element[0]->element[1];
			if (entries->elements == 0)
				end = true;
			for (size_t k = 0; k < entries->elements && got < o->messages; k++) {
				redisReply *e = entries->element[k];
				if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
				    e->element[0]->type != REDIS_REPLY_STRING ||
				    e->element[1]->type != REDIS_REPLY_ARRAY) {
					rb_fail("XREAD entry", NULL, e);
					broken = true;
					break;
				}
				redisReply *fv = e->element[1];
				for (size_t f = 1; f < fv->elements; f += 2)
					bytes += (int64_t)fv->element[f]->len;
				got++;
				snprintf(last, sizeof(last), "%s", e->element[0]->str);
			}
		}
		freeReplyObject(rep);
	}
	int64_t stop = bench_now_ns();
	if (end && got < o->messages)
		fprintf(stderr, "silt bench: redis: end of stream after %" PRId64 " of %" PRId64 " messages\n", got,
			o->messages);
	r->msgs = got;
	r->bytes = bytes;
	r->failures = broken ? 1 : 0;
	r->elapsed_ns = stop - start;
	r->incomplete = got < o->messages;
	return r->incomplete || broken ? BENCH_EXIT_FAIL : BENCH_EXIT_OK;
}

int bench_redis_run(const struct bench_opts *o)
{
	struct bench_result r = { 0 };
	int rc = BENCH_EXIT_FAIL;
	struct timeval ctv = { PEER_SETUP_TIMEOUT_MS / 1000, 0 };
	redisContext *c = redisConnectWithTimeout(o->host, (int)o->port, ctv);
	if (!c || c->err) {
		rb_fail("connect", c, NULL);
		goto out;
	}
	/* Blocking reads give up after this, so a stalled server cannot
	 * outlive the cap by more than one read. */
	struct timeval rtv = { SILT_MIN(o->duration_s, 30), 0 };
	redisSetTimeout(c, rtv);
	redisReply *rep = redisCommand(c, "CONFIG GET appendfsync");
	const char *fsync = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 ? rep->element[1]->str : "?";
	printf("hiredis settings:\n  host=%s port=%" PRId64 " key=%s pipeline/batch=%" PRId64
	       "\n  server appendfsync=%s\n",
	       o->host, o->port, o->topic, o->window, fsync);
	if (rep)
		freeReplyObject(rep);
	if (o->mode == BENCH_CONSUME) {
		rep = redisCommand(c, "XLEN %s", o->topic);
		if (rep && rep->type == REDIS_REPLY_INTEGER)
			printf("  stream %s holds %lld entries\n", o->topic, rep->integer);
		if (rep)
			freeReplyObject(rep);
		fflush(stdout);
		rc = rb_consume(o, c, &r);
	} else {
		rep = redisCommand(c, "DEL %s", o->topic);
		if (!rep || rep->type == REDIS_REPLY_ERROR) {
			rb_fail("DEL", c, rep);
			if (rep)
				freeReplyObject(rep);
			goto out;
		}
		freeReplyObject(rep);
		printf("redis %s: stream %s (recreated empty), %" PRId64 " x %" PRId64 " B, cap %" PRId64 " s\n",
		       bench_mode_name(o->mode), o->topic, o->messages, o->size, o->duration_s);
		fflush(stdout);
		rc = o->mode == BENCH_LATENCY ? rb_latency(o, c, &r) : rb_produce(o, c, &r);
	}
	bench_report(o, &r);
out:
	free(r.lat);
	if (c)
		redisFree(c);
	return rc;
}
