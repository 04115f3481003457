/* Kafka request handlers driven directly (no sockets): valid requests of
 * every API and version family give well-formed answers, and every
 * truncation of every valid request is refused (KH_CLOSE) without side
 * effects or crashes. */
#include "core/platform.h"
#include "core/crc.h"
#include "core/rd.h"
#include "core/util.h"
#include "core/wbuf.h"
#include "kafka/broker.h"
#include "kafka/dispatch.h"
#include "kafka/errors.h"
#include "kafka/kreq.h"
#include "kafka/records.h"
#include "test.h"

#include <unistd.h>

#include "../../src/cli/config.h"

static bool g_open;

static void broker_up(void)
{
	if (g_open)
		kbroker_close();
	struct silt_conf sc;
	struct kbroker_conf c;
	config_defaults(&sc);
	c = sc.k;
	snprintf(c.data_dir, sizeof(c.data_dir), "%s", test_tmpdir());
	c.auto_create_topics = true;
	REQUIRE(kbroker_open(&c) == 0);
	g_open = true;
}

static void broker_down(void)
{
	if (g_open)
		kbroker_close();
	g_open = false;
}

/* Request frame under construction: header then body. */
static void req_begin(struct wbuf *w, int16_t key, int16_t ver)
{
	wbuf_init(w, 256, 0);
	wbuf_i16(w, key);
	wbuf_i16(w, ver);
	wbuf_i32(w, 42);
	wbuf_str(w, "unit-test");
	if (key == 18 && ver >= 3)
		wbuf_uvarint(w, 0);
}

/* Runs a frame through header parsing and dispatch. The frame is copied so
 * handlers may patch it, as they do with real requests. */
static int run(const uint8_t *p, size_t n, struct wbuf *resp)
{
	struct kreq req;
	memset(&req, 0, sizeof(req));
	req.frame = xmalloc(n ? n : 1);
	memcpy(req.frame, p, n);
	req.frame_len = n;
	wbuf_init(&req.out, 0, 64u << 20);
	int rc = kafka_parse_header(&req);
	if (rc == 0) {
		rc = kafka_dispatch(&req);
		if (rc == KH_PENDING) {
			rc = req.poll(&req, true);
		}
	} else {
		rc = KH_CLOSE;
	}
	if (resp) {
		wbuf_reset(resp);
		/* Rebuild body = memory parts interleaved with file parts. */
		size_t mem_at = 0;
		for (int i = 0; i < req.nfiles; i++) {
			wbuf_put(resp, req.out.p + mem_at, req.files[i].at - mem_at);
			mem_at = req.files[i].at;
			uint8_t *tmp = xmalloc(req.files[i].rd.len);
			ssize_t got = pread(req.files[i].rd.fd, tmp, req.files[i].rd.len, (off_t)req.files[i].rd.pos);
			CHECK_EQ_INT(got, (ssize_t)req.files[i].rd.len);
			wbuf_put(resp, tmp, req.files[i].rd.len);
			free(tmp);
		}
		wbuf_put(resp, req.out.p + mem_at, req.out.len - mem_at);
	}
	for (int i = 0; i < req.nfiles; i++)
		seglog_seg_unref(req.files[i].rd.seg);
	free(req.files);
	wbuf_destroy(&req.out);
	free(req.frame);
	return rc;
}

/* An uncompressed RecordBatch v2 with n records "v<i>" keyed "k<i>". */
static void make_batch(struct wbuf *w, int n, int64_t pid, int32_t seq)
{
	size_t start = w->len;
	wbuf_i64(w, 0);
	size_t len_at = wbuf_i32(w, 0);
	wbuf_i32(w, -1);
	wbuf_i8(w, 2);
	size_t crc_at = wbuf_i32(w, 0);
	wbuf_i16(w, 0);
	wbuf_i32(w, n - 1);
	wbuf_i64(w, 1700000000000);
	wbuf_i64(w, 1700000000000 + n - 1);
	wbuf_i64(w, pid);
	wbuf_i16(w, pid >= 0 ? 0 : -1);
	wbuf_i32(w, pid >= 0 ? seq : -1);
	wbuf_i32(w, n);
	for (int i = 0; i < n; i++) {
		char k[16], v[16];
		int kl = snprintf(k, sizeof(k), "k%d", i), vl = snprintf(v, sizeof(v), "v%d", i);
		struct wbuf rec;
		wbuf_init(&rec, 64, 0);
		wbuf_i8(&rec, 0);
		wbuf_varint(&rec, i);
		wbuf_varint(&rec, i);
		wbuf_varint(&rec, kl);
		wbuf_put(&rec, k, (size_t)kl);
		wbuf_varint(&rec, vl);
		wbuf_put(&rec, v, (size_t)vl);
		wbuf_varint(&rec, 0);
		wbuf_varint(w, (int64_t)rec.len);
		wbuf_put(w, rec.p, rec.len);
		wbuf_destroy(&rec);
	}
	wbuf_patch_i32(w, len_at, (int32_t)(w->len - start - 12));
	uint32_t crc = crc32c(0, w->p + start + 21, w->len - start - 21);
	wbuf_patch_i32(w, crc_at, (int32_t)crc);
}

static void produce_req(struct wbuf *w, int16_t ver, const char *topic, int32_t part, int n, int64_t pid,
			int32_t seq)
{
	req_begin(w, 0, ver);
	if (ver >= 3)
		wbuf_str(w, NULL);
	wbuf_i16(w, 1);
	wbuf_i32(w, 5000);
	wbuf_i32(w, 1);
	wbuf_str(w, topic);
	wbuf_i32(w, 1);
	wbuf_i32(w, part);
	struct wbuf b;
	wbuf_init(&b, 256, 0);
	make_batch(&b, n, pid, seq);
	wbuf_kbytes(w, b.p, (int32_t)b.len);
	wbuf_destroy(&b);
}

static void fetch_req(struct wbuf *w, int16_t ver, const char *topic, int32_t part, int64_t off)
{
	req_begin(w, 1, ver);
	wbuf_i32(w, -1);
	wbuf_i32(w, 0); /* max_wait: answer now */
	wbuf_i32(w, 1);
	if (ver >= 3)
		wbuf_i32(w, 1 << 20);
	if (ver >= 4)
		wbuf_i8(w, 1);
	if (ver >= 7) {
		wbuf_i32(w, 0);
		wbuf_i32(w, -1);
	}
	wbuf_i32(w, 1);
	wbuf_str(w, topic);
	wbuf_i32(w, 1);
	wbuf_i32(w, part);
	if (ver >= 9)
		wbuf_i32(w, -1);
	wbuf_i64(w, off);
	if (ver >= 5)
		wbuf_i64(w, -1);
	wbuf_i32(w, 1 << 20);
	if (ver >= 7)
		wbuf_i32(w, 0);
	if (ver >= 11)
		wbuf_str(w, "");
}

/* Produce response v7 for one topic/partition: error and base offset. */
static void parse_produce_resp(const struct wbuf *resp, int16_t *err, int64_t *base)
{
	struct rd r;
	rd_init(&r, resp->p, resp->len);
	CHECK_EQ_INT(rd_i32(&r), 1);
	(void)rd_str(&r);
	CHECK_EQ_INT(rd_i32(&r), 1);
	(void)rd_i32(&r);
	*err = rd_i16(&r);
	*base = rd_i64(&r);
	CHECK(!r.err);
}

TEST(kafka_api_versions_lists_every_api_from_zero)
{
	struct wbuf w, resp;
	wbuf_init(&resp, 0, 0);
	for (int16_t v = 0; v <= 3; v++) {
		req_begin(&w, 18, v);
		if (v >= 3) {
			wbuf_uvarint(&w, 5);
			wbuf_put(&w, "test", 4);
			wbuf_uvarint(&w, 2);
			wbuf_put(&w, "1", 1);
			wbuf_uvarint(&w, 0);
		}
		CHECK_EQ_INT(run(w.p, w.len, &resp), KH_DONE);
		struct rd r;
		rd_init(&r, resp.p, resp.len);
		CHECK_EQ_INT(rd_i16(&r), 0);
		int32_t n = v >= 3 ? (int32_t)rd_uvarint(&r) - 1 : rd_i32(&r);
		bool saw_produce = false, saw_fetch = false;
		for (int32_t i = 0; i < n; i++) {
			int16_t key = rd_i16(&r), min = rd_i16(&r), max = rd_i16(&r);
			if (v >= 3)
				rd_tags(&r);
			CHECK_EQ_INT(min, 0);
			if (key == 0)
				saw_produce = max >= 7;
			if (key == 1)
				saw_fetch = max >= 11;
		}
		CHECK(saw_produce && saw_fetch);
		CHECK(!r.err);
		wbuf_destroy(&w);
	}
	/* An unknown ApiVersions version gets a v0-format error 35. */
	req_begin(&w, 18, 99);
	CHECK_EQ_INT(run(w.p, w.len, &resp), KH_DONE);
	struct rd r;
	rd_init(&r, resp.p, resp.len);
	CHECK_EQ_INT(rd_i16(&r), KERR_UNSUPPORTED_VERSION);
	CHECK_EQ_INT(rd_i32(&r), 1);
	CHECK_EQ_INT(rd_i16(&r), 18);
	wbuf_destroy(&w);
	/* Unknown API keys close the connection. */
	req_begin(&w, 999, 0);
	CHECK_EQ_INT(run(w.p, w.len, NULL), KH_CLOSE);
	wbuf_destroy(&w);
	wbuf_destroy(&resp);
}

TEST(kafka_produce_fetch_roundtrip)
{
	broker_up();
	struct wbuf w, resp;
	wbuf_init(&resp, 0, 0);
	int16_t err;
	int64_t base;
	produce_req(&w, 7, "rt", 0, 3, -1, -1);
	CHECK_EQ_INT(run(w.p, w.len, &resp), KH_DONE);
	parse_produce_resp(&resp, &err, &base);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(base, 0);
	wbuf_destroy(&w);
	produce_req(&w, 3, "rt", 0, 5, -1, -1);
	CHECK_EQ_INT(run(w.p, w.len, &resp), KH_DONE);
	parse_produce_resp(&resp, &err, &base);
	CHECK_EQ_INT(base, 3);
	wbuf_destroy(&w);

	/* Fetch v4 and v11 from offset 4 return the second batch, which holds
	 * offsets 3..7, with its base offset rewritten by the broker. */
	for (int16_t v = 4; v <= 11; v += 7) {
		fetch_req(&w, v, "rt", 0, 4);
		CHECK_EQ_INT(run(w.p, w.len, &resp), KH_DONE);
		struct rd r;
		rd_init(&r, resp.p, resp.len);
		(void)rd_i32(&r);
		if (v >= 7) {
			CHECK_EQ_INT(rd_i16(&r), 0);
			(void)rd_i32(&r);
		}
		CHECK_EQ_INT(rd_i32(&r), 1);
		struct slice t = rd_str(&r);
		CHECK(slice_eq(t, "rt"));
		CHECK_EQ_INT(rd_i32(&r), 1);
		CHECK_EQ_INT(rd_i32(&r), 0);
		CHECK_EQ_INT(rd_i16(&r), 0);
		CHECK_EQ_INT(rd_i64(&r), 8); /* high watermark */
		CHECK_EQ_INT(rd_i64(&r), 8); /* LSO */
		if (v >= 5)
			CHECK_EQ_INT(rd_i64(&r), 0); /* log start */
		CHECK_EQ_INT(rd_i32(&r), -1);
		if (v >= 11)
			CHECK_EQ_INT(rd_i32(&r), -1);
		struct slice recs = rd_kbytes(&r);
		REQUIRE(!r.err && recs.len > 61);
		struct kbatch b;
		REQUIRE(kbatch_parse_header(recs.p, (size_t)recs.len, &b) == 0);
		CHECK_EQ_INT(b.base_offset, 3);
		CHECK_EQ_INT(b.records_count, 5);
		CHECK_EQ_INT(kbatch_compute_crc(recs.p, b.size), b.crc);
		wbuf_destroy(&w);
	}
	/* Out of range below start and above the end. */
	fetch_req(&w, 11, "rt", 0, 9);
	CHECK_EQ_INT(run(w.p, w.len, &resp), KH_DONE);
	CHECK(resp.len > 30);
	struct rd r;
	rd_init(&r, resp.p, resp.len);
	rd_skip(&r, 4 + 2 + 4 + 4);
	(void)rd_str(&r);
	rd_skip(&r, 4 + 4);
	CHECK_EQ_INT(rd_i16(&r), KERR_OFFSET_OUT_OF_RANGE);
	wbuf_destroy(&w);
	/* Unknown partition. */
	produce_req(&w, 7, "rt", 5, 1, -1, -1);
	CHECK_EQ_INT(run(w.p, w.len, &resp), KH_DONE);
	parse_produce_resp(&resp, &err, &base);
	CHECK_EQ_INT(err, KERR_UNKNOWN_TOPIC_OR_PARTITION);
	wbuf_destroy(&w);
	/* Invalid topic name. */
	produce_req(&w, 7, "bad/name", 0, 1, -1, -1);
	CHECK_EQ_INT(run(w.p, w.len, &resp), KH_DONE);
	parse_produce_resp(&resp, &err, &base);
	CHECK_EQ_INT(err, KERR_INVALID_TOPIC_EXCEPTION);
	wbuf_destroy(&w);
	/* A flipped byte in the batch: CORRUPT_MESSAGE, nothing appended. */
	produce_req(&w, 7, "rt", 0, 2, -1, -1);
	w.p[w.len - 3] ^= 0x40;
	CHECK_EQ_INT(run(w.p, w.len, &resp), KH_DONE);
	parse_produce_resp(&resp, &err, &base);
	CHECK_EQ_INT(err, KERR_CORRUPT_MESSAGE);
	wbuf_destroy(&w);
	struct ktopic *t = kbroker_topic("rt", 2);
	REQUIRE(t);
	CHECK_EQ_INT(seglog_end_offset(ktopic_partition(t, 0)->log), 8);
	ktopic_unref(t);
	wbuf_destroy(&resp);
	broker_down();
}

TEST(kafka_idempotent_retry_gets_original_offset)
{
	broker_up();
	struct wbuf w, resp;
	wbuf_init(&resp, 0, 0);
	int16_t err;
	int64_t base;
	produce_req(&w, 7, "idem", 0, 2, 77, 0);
	CHECK_EQ_INT(run(w.p, w.len, &resp), KH_DONE);
	parse_produce_resp(&resp, &err, &base);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(base, 0);
	/* The same batch again (a retry) is answered with offset 0. */
	CHECK_EQ_INT(run(w.p, w.len, &resp), KH_DONE);
	parse_produce_resp(&resp, &err, &base);
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(base, 0);
	wbuf_destroy(&w);
	/* A gap in the sequence is refused. */
	produce_req(&w, 7, "idem", 0, 2, 77, 5);
	CHECK_EQ_INT(run(w.p, w.len, &resp), KH_DONE);
	parse_produce_resp(&resp, &err, &base);
	CHECK_EQ_INT(err, KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	wbuf_destroy(&w);
	struct ktopic *t = kbroker_topic("idem", 4);
	REQUIRE(t);
	CHECK_EQ_INT(seglog_end_offset(ktopic_partition(t, 0)->log), 2);
	ktopic_unref(t);
	wbuf_destroy(&resp);
	broker_down();
}

/* Valid requests of the admin and metadata APIs, used for the truncation
 * sweep below and checked for a clean answer here. */
static int build_samples(struct wbuf *out, int max)
{
	int n = 0;
	struct wbuf *w;
#define NEXT(key, ver) (w = &out[n++], req_begin(w, key, ver))
	NEXT(3, 0); /* Metadata v0, one topic */
	wbuf_i32(w, 1);
	wbuf_str(w, "meta");
	NEXT(3, 8);
	wbuf_i32(w, -1);
	wbuf_i8(w, 1);
	wbuf_i8(w, 0);
	wbuf_i8(w, 0);
	NEXT(19, 4); /* CreateTopics v4 */
	wbuf_i32(w, 1);
	wbuf_str(w, "created");
	wbuf_i32(w, 3);
	wbuf_i16(w, 1);
	wbuf_i32(w, 0);
	wbuf_i32(w, 1);
	wbuf_str(w, "retention.ms");
	wbuf_str(w, "60000");
	wbuf_i32(w, 1000);
	wbuf_i8(w, 0);
	NEXT(37, 1); /* CreatePartitions v1 */
	wbuf_i32(w, 1);
	wbuf_str(w, "created");
	wbuf_i32(w, 4);
	wbuf_i32(w, -1);
	wbuf_i32(w, 1000);
	wbuf_i8(w, 0);
	NEXT(32, 3); /* DescribeConfigs v3 */
	wbuf_i32(w, 1);
	wbuf_i8(w, 2);
	wbuf_str(w, "created");
	wbuf_i32(w, -1);
	wbuf_i8(w, 1);
	wbuf_i8(w, 0);
	NEXT(44, 0); /* IncrementalAlterConfigs v0 */
	wbuf_i32(w, 1);
	wbuf_i8(w, 2);
	wbuf_str(w, "created");
	wbuf_i32(w, 1);
	wbuf_str(w, "retention.bytes");
	wbuf_i8(w, 0);
	wbuf_str(w, "1048576");
	wbuf_i8(w, 0);
	NEXT(33, 1); /* AlterConfigs v1 */
	wbuf_i32(w, 1);
	wbuf_i8(w, 2);
	wbuf_str(w, "created");
	wbuf_i32(w, 1);
	wbuf_str(w, "segment.bytes");
	wbuf_str(w, "1048576");
	wbuf_i8(w, 0);
	NEXT(2, 5); /* ListOffsets v5 */
	wbuf_i32(w, -1);
	wbuf_i8(w, 0);
	wbuf_i32(w, 1);
	wbuf_str(w, "created");
	wbuf_i32(w, 1);
	wbuf_i32(w, 0);
	wbuf_i32(w, -1);
	wbuf_i64(w, -2);
	NEXT(2, 0); /* ListOffsets v0 */
	wbuf_i32(w, -1);
	wbuf_i32(w, 1);
	wbuf_str(w, "created");
	wbuf_i32(w, 1);
	wbuf_i32(w, 0);
	wbuf_i64(w, -1);
	wbuf_i32(w, 1);
	NEXT(22, 1); /* InitProducerId v1 */
	wbuf_str(w, NULL);
	wbuf_i32(w, 60000);
	NEXT(20, 3); /* DeleteTopics v3 */
	wbuf_i32(w, 1);
	wbuf_str(w, "created");
	wbuf_i32(w, 1000);
	w = &out[n++];
	produce_req(w, 7, "swept", 0, 3, -1, -1);
	w = &out[n++];
	fetch_req(w, 11, "swept", 0, 0);
#undef NEXT
	CHECK(n <= max);
	return n;
}

TEST(kafka_every_truncation_is_refused)
{
	broker_up();
	struct wbuf samples[32], resp;
	wbuf_init(&resp, 0, 0);
	int n = build_samples(samples, 32);
	/* SILT_WRITE_FUZZ_SEEDS=dir also saves the samples as the seed corpus
	 * of tests/fuzz/fuzz_kafka_request.c. */
	const char *seeds = getenv("SILT_WRITE_FUZZ_SEEDS");
	for (int i = 0; seeds && i < n; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/request-%02d", seeds, i);
		CHECK_EQ_INT(write_file_atomic(path, samples[i].p, samples[i].len), 0);
	}
	for (int i = 0; i < n; i++) {
		for (size_t len = 0; len < samples[i].len; len++) {
			int rc = run(samples[i].p, len, NULL);
			if (rc != KH_CLOSE) {
				char m[96];
				snprintf(m, sizeof(m), "sample %d cut at %zu of %zu: rc %d", i, len, samples[i].len, rc);
				test_fail(__FILE__, __LINE__, m);
				break;
			}
		}
	}
	/* Nothing was created or appended by any refused request. */
	struct ktopic *t = kbroker_topic("swept", 5);
	CHECK(t == NULL);
	ktopic_unref(t);
	t = kbroker_topic("created", 7);
	CHECK(t == NULL);
	ktopic_unref(t);
	/* The whole requests then succeed in order. */
	for (int i = 0; i < n; i++) {
		int rc = run(samples[i].p, samples[i].len, &resp);
		CHECK_EQ_INT(rc, KH_DONE);
		if (samples[i].p[1] == 19) {
			/* CreateTopics v4: one topic, no error. */
			struct rd r;
			rd_init(&r, resp.p, resp.len);
			(void)rd_i32(&r);
			CHECK_EQ_INT(rd_i32(&r), 1);
			(void)rd_str(&r);
			CHECK_EQ_INT(rd_i16(&r), 0);
		}
		wbuf_destroy(&samples[i]);
	}
	t = kbroker_topic("swept", 5);
	REQUIRE(t);
	CHECK_EQ_INT(seglog_end_offset(ktopic_partition(t, 0)->log), 3);
	ktopic_unref(t);
	/* DeleteTopics removed it again. */
	t = kbroker_topic("created", 7);
	CHECK(t == NULL);
	ktopic_unref(t);
	wbuf_destroy(&resp);
	broker_down();
}

TEST(kafka_topic_config_persists)
{
	broker_up();
	struct tconf o;
	tconf_defaults(&o);
	CHECK_EQ_INT(tconf_set(&o, TC_RETENTION_MS, "1234", 4), 0);
	CHECK_EQ_INT(kbroker_create_topic("persist", 7, 2, &o, NULL), KERR_NONE);
	CHECK_EQ_INT(kbroker_create_topic("persist", 7, 2, &o, NULL), KERR_TOPIC_ALREADY_EXISTS);
	CHECK_EQ_INT(kbroker_create_topic("bad name", 8, 2, &o, NULL), KERR_INVALID_TOPIC_EXCEPTION);
	/* Reopen the same directory. */
	struct kbroker_conf c = *kbroker_conf();
	kbroker_close();
	REQUIRE(kbroker_open(&c) == 0);
	struct ktopic *t = kbroker_topic("persist", 7);
	REQUIRE(t);
	CHECK_EQ_INT(ktopic_npartitions(t), 2);
	CHECK_EQ_INT(tconf_get(&t->conf, &c.topic_defaults, TC_RETENTION_MS), 1234);
	CHECK_EQ_INT(tconf_get(&t->conf, &c.topic_defaults, TC_SEGMENT_BYTES), 1 << 30);
	ktopic_unref(t);
	broker_down();
}
