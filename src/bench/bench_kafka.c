/* bench_kafka.c - `silt bench kafka`: produce, consume and latency workloads
 * on librdkafka against any Kafka-compatible broker.
 *
 * Everything targets partition 0 of one topic so that the numbers measure a
 * single log, the unit silt scales by. Delivery-report callbacks run on the
 * thread that calls rd_kafka_poll/flush: the main thread in produce mode,
 * a dedicated poller thread in latency mode (so that an acknowledgement is
 * timestamped when it arrives, not when the pacing loop next wakes up). */
#include "core/platform.h"
#include "bench/bench.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>

#define KB_SETUP_TIMEOUT_MS 10000 /* metadata warm-up and CreateTopics */
#define KB_DRAIN_GRACE_NS (10 * 1000000000LL)

struct kb_state {
	int64_t acked;
	int64_t failed;
	int64_t purged; /* dropped by us at the cap, not refused by the broker */
	int64_t bytes;
	int64_t last_dr_ns;
	rd_kafka_resp_err_t first_err;
	/* latency mode: samples, appended only by the delivery-report thread */
	int64_t *lat;
	int64_t nlat, cap;
	bool latency;
};

/* Delivery reports. In latency mode the message opaque carries the
 * scheduled send time (monotonic ns), so a sender that falls behind its
 * schedule shows up in the latency instead of hiding it. */
static void kb_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct kb_state *st = opaque;
	int64_t now = bench_now_ns();
	st->last_dr_ns = now;
	if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
		st->purged++;
		return;
	}
	if (m->err) {
		if (!st->failed)
			st->first_err = m->err;
		st->failed++;
		return;
	}
	st->acked++;
	st->bytes += (int64_t)m->len;
	if (st->latency && st->nlat < st->cap) {
		int64_t sched = (int64_t)(intptr_t)m->_private;
		st->lat[st->nlat++] = now - sched;
	}
}

static void kb_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	fprintf(stderr, "rdkafka %d %s: %s\n", level, fac, buf);
}

/* Sets and prints one property; librdkafka validates names and ranges. */
static int kb_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char errstr[256];
	if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "silt bench: kafka property %s=%s: %s\n", k, v, errstr);
		return -1;
	}
	printf("  %s=%s\n", k, v);
	return 0;
}

static int kb_seti(rd_kafka_conf_t *conf, const char *k, int64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return kb_set(conf, k, buf);
}

/* Builds the client configuration. Producer defaults favour throughput:
 * batches of up to 1 MB / 100k messages with a 5 ms linger, and a local
 * queue deep enough that the application never waits on it. The latency
 * mode sends each message on its own (linger 0, Nagle off). --set
 * overrides come last so they win. */
static rd_kafka_conf_t *kb_conf(const struct bench_opts *o, struct kb_state *st, bool producer)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	int bad = 0;
	printf("librdkafka %s settings:\n", rd_kafka_version_str());
	bad |= kb_set(conf, "bootstrap.servers", o->brokers);
	bad |= kb_set(conf, "client.id", "silt-bench");
	int64_t maxmsg = SILT_MAX(1000000, o->size + 4096);
	if (producer) {
		bool lat = o->mode == BENCH_LATENCY;
		bad |= kb_set(conf, "acks", o->acks);
		bad |= kb_set(conf, "enable.idempotence", "false");
		bad |= kb_set(conf, "compression.type", o->compression);
		bad |= kb_seti(conf, "linger.ms", o->linger_ms >= 0 ? o->linger_ms : lat ? 0 : 5);
		bad |= kb_seti(conf, "batch.num.messages", o->batch_num > 0 ? o->batch_num : 100000);
		bad |= kb_seti(conf, "batch.size", o->batch_size > 0 ? o->batch_size : SILT_MAX(1000000, maxmsg));
		bad |= kb_seti(conf, "message.max.bytes", SILT_MAX(maxmsg, o->batch_size));
		bad |= kb_seti(conf, "queue.buffering.max.messages", 2000000);
		bad |= kb_seti(conf, "queue.buffering.max.kbytes", 2097151);
		bad |= kb_seti(conf, "message.timeout.ms", SILT_MIN(o->duration_s * 1000 + 10000, INT32_MAX));
		if (lat)
			bad |= kb_set(conf, "socket.nagle.disable", "true");
		rd_kafka_conf_set_dr_msg_cb(conf, kb_dr_cb);
	} else {
		/* No group: the legacy per-partition consumer reads from an
		 * explicit offset and commits nothing. */
		bad |= kb_set(conf, "enable.auto.commit", "false");
		bad |= kb_set(conf, "enable.auto.offset.store", "false");
		bad |= kb_seti(conf, "fetch.max.bytes", 64 << 20);
		bad |= kb_seti(conf, "max.partition.fetch.bytes", SILT_MAX(16 << 20, maxmsg));
		bad |= kb_seti(conf, "receive.message.max.bytes", (64 << 20) + SILT_MAX(16 << 20, maxmsg) + 4096);
		bad |= kb_seti(conf, "fetch.wait.max.ms", 100);
		bad |= kb_seti(conf, "queued.min.messages", 1000000);
		bad |= kb_seti(conf, "queued.max.messages.kbytes", 1 << 20);
	}
	for (int i = 0; i < o->nset; i++)
		bad |= kb_set(conf, o->set_key[i], o->set_val[i]);
	rd_kafka_conf_set_log_cb(conf, kb_log_cb);
	rd_kafka_conf_set_opaque(conf, st);
	if (bad) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return conf;
}

/* Creates the topic with one partition. A broker without CreateTopics, or
 * one that refuses it, is not fatal: auto-creation on first produce may
 * still work, and the metadata wait afterwards decides. */
static void kb_create_topic(rd_kafka_t *rk, const char *topic)
{
	char errstr[256];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 1, 1, errstr, sizeof(errstr));
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_event_t *ev = NULL;
	if (!nt) {
		fprintf(stderr, "silt bench: topic %s: %s\n", topic, errstr);
		goto out;
	}
	rd_kafka_AdminOptions_set_request_timeout(ao, KB_SETUP_TIMEOUT_MS, errstr, sizeof(errstr));
	rd_kafka_AdminOptions_set_operation_timeout(ao, KB_SETUP_TIMEOUT_MS, errstr, sizeof(errstr));
	rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
	ev = rd_kafka_queue_poll(q, KB_SETUP_TIMEOUT_MS + 1000);
	if (!ev) {
		fprintf(stderr, "silt bench: CreateTopics %s: no answer, relying on auto-create\n", topic);
		goto out;
	}
	if (rd_kafka_event_error(ev)) {
		fprintf(stderr, "silt bench: CreateTopics %s: %s, relying on auto-create\n", topic,
			rd_kafka_event_error_string(ev));
		goto out;
	}
	const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
	size_t n = 0;
	const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
	for (size_t i = 0; i < n; i++) {
		rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
			printf("created topic %s with 1 partition\n", topic);
		else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
			printf("topic %s exists\n", topic);
		else
			fprintf(stderr, "silt bench: CreateTopics %s: %s\n", topic, rd_kafka_err2str(e));
	}
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(ao);
	rd_kafka_queue_destroy(q);
	if (nt)
		rd_kafka_NewTopic_destroy(nt);
}

/* Fails fast when no bootstrap broker answers, before the admin call and
 * the topic metadata wait would each spend their own timeout on it. */
static int kb_connect(rd_kafka_t *rk, const char *brokers)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, NULL, &md, KB_SETUP_TIMEOUT_MS);
	if (e) {
		fprintf(stderr, "silt bench: no answer from %s: %s\n", brokers, rd_kafka_err2str(e));
		return -1;
	}
	rd_kafka_metadata_destroy(md);
	return 0;
}

/* Connects and learns the partition leader before the clock starts, so the
 * figures do not include connection setup. Fails if no broker answers or
 * partition 0 does not exist (after giving auto-create a few tries). */
static int kb_warm_up(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const char *topic)
{
	int64_t deadline = bench_now_ns() + (int64_t)KB_SETUP_TIMEOUT_MS * 1000000;
	rd_kafka_resp_err_t last = RD_KAFKA_RESP_ERR_NO_ERROR;
	for (int attempt = 0; attempt < 50 && bench_now_ns() < deadline; attempt++) {
		const struct rd_kafka_metadata *md = NULL;
		int left_ms = (int)SILT_MAX(1, (deadline - bench_now_ns()) / 1000000);
		last = rd_kafka_metadata(rk, 0, rkt, &md, left_ms);
		if (last == RD_KAFKA_RESP_ERR_NO_ERROR) {
			bool ok = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
				  md->topics[0].partition_cnt >= 1;
			if (!ok && md->topic_cnt == 1)
				last = md->topics[0].err ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
			if (ok && md->topics[0].partition_cnt > 1)
				printf("topic %s has %d partitions; using partition 0 only\n", topic,
				       md->topics[0].partition_cnt);
			rd_kafka_metadata_destroy(md);
			if (ok)
				return 0;
		}
		bench_sleep_until(bench_now_ns() + 200 * 1000000LL);
	}
	fprintf(stderr, "silt bench: metadata for %s: %s\n", topic, rd_kafka_err2str(last));
	return -1;
}

static int kb_produce(const struct bench_opts *o, rd_kafka_t *rk, rd_kafka_topic_t *rkt, struct kb_state *st,
		      struct bench_result *r)
{
	uint8_t *payload = bench_payload_new((size_t)o->size);
	int64_t start = bench_now_ns();
	int64_t deadline = start + o->duration_s * 1000000000LL;
	int64_t sent = 0, refused = 0;
	bool stop = false;
	/* Messages point at one shared payload (no copy, no free): the buffer
	 * outlives the producer's queue because we flush or purge below. */
	for (int64_t i = 0; i < o->messages && !stop; i++) {
		/* Bounded by the deadline; the count is a backstop. */
		for (int tries = 0;; tries++) {
			if (rd_kafka_produce(rkt, 0, 0, payload, (size_t)o->size, NULL, 0, NULL) == 0) {
				sent++;
				break;
			}
			rd_kafka_resp_err_t e = rd_kafka_last_error();
			if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || bench_now_ns() >= deadline || tries >= 10000000) {
				if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
					fprintf(stderr, "silt bench: produce: %s\n", rd_kafka_err2str(e));
					refused++;
				}
				stop = true;
				break;
			}
			rd_kafka_poll(rk, tries < 10 ? 0 : 1);
		}
		if ((i & 1023) == 0) {
			rd_kafka_poll(rk, 0);
			if (bench_now_ns() >= deadline)
				stop = true;
		}
	}
	/* Wait for every delivery report, in slices so the cap holds. */
	for (int slice = 0; rd_kafka_outq_len(rk) > 0 && slice < 1000000; slice++) {
		int64_t left = (deadline - bench_now_ns()) / 1000000;
		if (left <= 0)
			break;
		rd_kafka_flush(rk, (int)SILT_MIN(left, 1000));
	}
	int64_t end = bench_now_ns();
	int pending = rd_kafka_outq_len(rk);
	if (pending > 0) {
		rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_flush(rk, 2000);
		fprintf(stderr, "silt bench: %d messages still unacknowledged at the cap (dropped)\n", pending);
	}
	r->msgs = st->acked;
	r->bytes = st->bytes;
	r->failures = st->failed + refused;
	if (sent < o->messages)
		fprintf(stderr, "silt bench: stopped after sending %" PRId64 " of %" PRId64 " messages\n", sent,
			o->messages);
	r->elapsed_ns = (st->acked && st->last_dr_ns > start ? SILT_MIN(st->last_dr_ns, end) : end) - start;
	r->incomplete = st->acked < o->messages;
	if (st->failed)
		fprintf(stderr, "silt bench: %" PRId64 " delivery failures, first: %s\n", st->failed,
			rd_kafka_err2str(st->first_err));
	free(payload);
	return r->incomplete || r->failures ? BENCH_EXIT_FAIL : BENCH_EXIT_OK;
}

struct kb_poller {
	rd_kafka_t *rk;
	atomic_bool stop;
};

static void *kb_poll_thread(void *arg)
{
	struct kb_poller *p = arg;
	/* Bounded by the stop flag, which the main thread always sets after
	 * its own bounded send and drain phases. */
	while (!atomic_load_explicit(&p->stop, memory_order_acquire))
		rd_kafka_poll(p->rk, 50);
	rd_kafka_poll(p->rk, 0);
	return NULL;
}

static int kb_latency(const struct bench_opts *o, rd_kafka_t *rk, rd_kafka_topic_t *rkt, struct kb_state *st,
		      struct bench_result *r)
{
	uint8_t *payload = bench_payload_new((size_t)o->size);
	st->cap = bench_lat_cap(o);
	st->lat = xmalloc((size_t)st->cap * sizeof(int64_t));
	st->latency = true;
	struct kb_poller p = { .rk = rk };
	atomic_init(&p.stop, false);
	pthread_t th;
	int prc = pthread_create(&th, NULL, kb_poll_thread, &p);
	if (prc) {
		fprintf(stderr, "silt bench: pthread_create: %s\n", strerror(prc));
		free(payload);
		return BENCH_EXIT_FAIL;
	}
	int64_t start = bench_now_ns();
	int64_t stop_at = start + o->duration_s * 1000000000LL;
	double interval = 1e9 / (double)o->rate;
	int64_t sent = 0, refused = 0;
	for (int64_t i = 0; i < o->messages; i++) {
		int64_t sched = start + (int64_t)((double)i * interval);
		if (sched >= stop_at)
			break;
		bench_sleep_until(sched);
		/* The payload is copied because every message carries its own
		 * scheduled time in its first bytes, which makes a message
		 * self-describing for any consumer reading the log later. */
		bench_stamp_put(payload, sched);
		if (rd_kafka_produce(rkt, 0, RD_KAFKA_MSG_F_COPY, payload, (size_t)o->size, NULL, 0,
				     (void *)(intptr_t)sched) == 0)
			sent++;
		else
			refused++;
	}
	int64_t send_end = bench_now_ns();
	int64_t drain_deadline = send_end + KB_DRAIN_GRACE_NS;
	for (int slice = 0; rd_kafka_outq_len(rk) > 0 && slice < 10000; slice++) {
		if (bench_now_ns() >= drain_deadline)
			break;
		bench_sleep_until(bench_now_ns() + 1000000);
	}
	int pending = rd_kafka_outq_len(rk);
	atomic_store_explicit(&p.stop, true, memory_order_release);
	pthread_join(th, NULL);
	if (pending > 0) {
		rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_flush(rk, 2000);
		fprintf(stderr, "silt bench: %d messages unacknowledged %lld s after the last send (dropped)\n",
			pending, KB_DRAIN_GRACE_NS / 1000000000LL);
	}
	r->msgs = st->acked;
	r->bytes = st->bytes;
	r->failures = st->failed + refused;
	r->elapsed_ns = send_end - start;
	r->incomplete = st->acked < sent || refused > 0;
	r->lat = st->lat;
	r->nlat = st->nlat;
	r->target_rate = (double)o->rate;
	if (st->failed)
		fprintf(stderr, "silt bench: %" PRId64 " delivery failures, first: %s\n", st->failed,
			rd_kafka_err2str(st->first_err));
	free(payload);
	return r->incomplete || r->failures ? BENCH_EXIT_FAIL : BENCH_EXIT_OK;
}

struct kb_consume_state {
	rd_kafka_t *rk;
	int64_t want, got, bytes, errors;
};

static void kb_consume_cb(rd_kafka_message_t *m, void *opaque)
{
	struct kb_consume_state *cs = opaque;
	if (m->err) {
		if (cs->errors++ == 0)
			fprintf(stderr, "silt bench: consume: %s\n", rd_kafka_message_errstr(m));
	} else if (cs->got < cs->want) {
		cs->got++;
		cs->bytes += (int64_t)m->len;
	}
	if (cs->got >= cs->want)
		rd_kafka_yield(cs->rk);
}

/* Reads the partition from its start. The watermarks are asked for first,
 * so a partition holding fewer than N messages ends the run at its end
 * (reported as incomplete) instead of waiting for the cap; end-of-partition
 * events are not used because they may fire between fetches. */
static int kb_consume(const struct bench_opts *o, rd_kafka_t *rk, rd_kafka_topic_t *rkt, struct bench_result *r)
{
	struct kb_consume_state cs = { .rk = rk, .want = o->messages };
	int64_t lo = 0, hi = 0;
	rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, o->topic, 0, &lo, &hi, KB_SETUP_TIMEOUT_MS);
	if (e) {
		fprintf(stderr, "silt bench: watermarks of %s/0: %s\n", o->topic, rd_kafka_err2str(e));
		return BENCH_EXIT_FAIL;
	}
	printf("  partition 0 offsets [%" PRId64 ", %" PRId64 ")\n", lo, hi);
	if (hi - lo < cs.want) {
		fprintf(stderr, "silt bench: partition holds %" PRId64 " of the %" PRId64 " messages asked for\n",
			hi - lo, cs.want);
		cs.want = hi - lo;
	}
	fflush(stdout);
	int64_t start = bench_now_ns();
	int64_t deadline = start + o->duration_s * 1000000000LL;
	if (rd_kafka_consume_start(rkt, 0, RD_KAFKA_OFFSET_BEGINNING) == -1) {
		fprintf(stderr, "silt bench: consume_start: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
		return BENCH_EXIT_FAIL;
	}
	/* rd_kafka_consume_callback waits at most 100 ms for the first message
	 * and then serves everything already fetched, so the loop below runs
	 * about once per fetch. */
	for (int64_t iter = 0; iter < BENCH_MAX_MESSAGES; iter++) {
		if (cs.got >= cs.want || bench_now_ns() >= deadline)
			break;
		rd_kafka_consume_callback(rkt, 0, 100, kb_consume_cb, &cs);
	}
	int64_t end = bench_now_ns();
	rd_kafka_consume_stop(rkt, 0);
	r->msgs = cs.got;
	r->bytes = cs.bytes;
	r->failures = cs.errors;
	r->elapsed_ns = end - start;
	r->incomplete = cs.got < o->messages;
	return r->incomplete || r->failures ? BENCH_EXIT_FAIL : BENCH_EXIT_OK;
}

int bench_kafka_run(const struct bench_opts *o)
{
	struct kb_state st = { 0 };
	struct bench_result r = { 0 };
	rd_kafka_t *rk = NULL;
	rd_kafka_topic_t *rkt = NULL;
	int rc = BENCH_EXIT_FAIL;
	char errstr[512];
	bool producer = o->mode != BENCH_CONSUME;

	rd_kafka_conf_t *conf = kb_conf(o, &st, producer);
	if (!conf) {
		rc = BENCH_EXIT_USAGE;
		goto out;
	}
	rk = rd_kafka_new(producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		fprintf(stderr, "silt bench: rd_kafka_new: %s\n", errstr);
		goto out;
	}
	if (kb_connect(rk, o->brokers))
		goto out;
	if (producer && !o->no_create)
		kb_create_topic(rk, o->topic);
	rkt = rd_kafka_topic_new(rk, o->topic, NULL);
	if (!rkt) {
		fprintf(stderr, "silt bench: topic %s: %s\n", o->topic, rd_kafka_err2str(rd_kafka_last_error()));
		goto out;
	}
	if (kb_warm_up(rk, rkt, o->topic))
		goto out;
	printf("kafka %s: topic %s partition 0, %" PRId64 " x %" PRId64 " B, cap %" PRId64 " s\n",
	       bench_mode_name(o->mode), o->topic, o->messages, o->size, o->duration_s);
	fflush(stdout);
	switch (o->mode) {
	case BENCH_PRODUCE:
		rc = kb_produce(o, rk, rkt, &st, &r);
		break;
	case BENCH_LATENCY:
		rc = kb_latency(o, rk, rkt, &st, &r);
		break;
	case BENCH_CONSUME:
		rc = kb_consume(o, rk, rkt, &r);
		break;
	}
	bench_report(o, &r);
out:
	if (rkt)
		rd_kafka_topic_destroy(rkt);
	if (rk)
		rd_kafka_destroy(rk);
	free(st.lat);
	return rc;
}
