#include "core/platform.h"
#include "core/crc.h"
#include "core/lathist.h"
#include "core/loop.h"
#include "core/rd.h"
#include "core/util.h"
#include "core/wbuf.h"
#include "test.h"

#include <time.h>

TEST(crc32c_known_vector)
{
	/* RFC 3720 / Kafka: CRC-32C("123456789") = 0xE3069283. */
	CHECK_EQ_INT(crc32c(0, "123456789", 9), 0xE3069283u);
	/* Incremental computation equals one-shot. */
	CHECK_EQ_INT(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
	CHECK_EQ_INT(crc32_std(0, "123456789", 9), 0xCBF43926u);
}

TEST(varint_roundtrip)
{
	int64_t vals[] = { 0, 1, -1, 63, -64, 64, 300, -300, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN };
	struct wbuf w;
	wbuf_init(&w, 0, 0);
	for (size_t i = 0; i < SILT_ARRAY_LEN(vals); i++)
		wbuf_varint(&w, vals[i]);
	struct rd r;
	rd_init(&r, w.p, w.len);
	for (size_t i = 0; i < SILT_ARRAY_LEN(vals); i++)
		CHECK_EQ_INT(rd_varlong(&r), vals[i]);
	CHECK(!r.err);
	CHECK_EQ_INT(rd_left(&r), 0);
	wbuf_destroy(&w);
}

TEST(reader_fails_softly_past_end)
{
	uint8_t b[3] = { 0, 5, 'a' };
	struct rd r;
	rd_init(&r, b, sizeof(b));
	struct slice s = rd_str(&r); /* claims 5 bytes, has 1 */
	CHECK(r.err);
	CHECK(s.p == NULL);
	CHECK_EQ_INT(rd_i32(&r), 0);
	CHECK(r.err);
	/* An over-long varint is an error, not an infinite read. */
	uint8_t v[11];
	memset(v, 0xff, sizeof(v));
	rd_init(&r, v, sizeof(v));
	(void)rd_uvarint(&r);
	CHECK(r.err);
	/* Array counts over the cap or over the remaining bytes are rejected. */
	uint8_t a[8] = { 0, 0, 0x10, 0, 1, 2, 3, 4 };
	rd_init(&r, a, sizeof(a));
	CHECK_EQ_INT(rd_array(&r, 1000000), 0);
	CHECK(r.err);
}

TEST(wbuf_max_is_hard)
{
	struct wbuf w;
	wbuf_init(&w, 4, 10);
	wbuf_i64(&w, 1);
	CHECK(!w.err);
	wbuf_i32(&w, 2);
	CHECK(w.err);
	CHECK_EQ_INT(w.len, 8);
	size_t at;
	wbuf_reset(&w);
	at = wbuf_i32(&w, 0);
	wbuf_i16(&w, 7);
	wbuf_patch_i32(&w, at, 0x01020304);
	CHECK_EQ_INT(w.p[0], 1);
	CHECK_EQ_INT(w.p[3], 4);
	wbuf_destroy(&w);
}

TEST(lathist_quantiles)
{
	struct lathist h;
	lathist_reset(&h);
	CHECK_EQ_INT(lathist_quantile(&h, 0.5), 0);
	/* 1..1000 us: the q-quantile sample is q*1000 us, reported as the
	 * upper edge of its 10 us bucket [10k, 10k+10). */
	for (int us = 1; us <= 1000; us++)
		lathist_add(&h, us);
	CHECK_EQ_INT(h.count, 1000);
	CHECK_EQ_INT(lathist_quantile(&h, 0.5), 510);
	CHECK_EQ_INT(lathist_quantile(&h, 0.99), 1000);
	CHECK_EQ_INT(lathist_quantile(&h, 0.999), 1000);
	CHECK_EQ_INT(lathist_quantile(&h, 1.0), 1000);
	CHECK_EQ_INT(h.over_1ms, 0);
	/* The overflow bucket answers with the max; negative counts as 0. */
	lathist_add(&h, 5 * LATHIST_MAX_US);
	lathist_add(&h, -7);
	CHECK_EQ_INT(h.max_us, 5 * LATHIST_MAX_US);
	CHECK_EQ_INT(lathist_quantile(&h, 1.0), 5 * LATHIST_MAX_US);
	CHECK_EQ_INT(lathist_quantile(&h, 0.9999), 5 * LATHIST_MAX_US);
	CHECK_EQ_INT(lathist_quantile(&h, 0.0001), 10);
	CHECK_EQ_INT(h.over_1ms, 1);
	CHECK_EQ_INT(h.over_2ms, 1);
	/* A quantile never exceeds the largest sample. */
	lathist_reset(&h);
	lathist_add(&h, 3);
	CHECK_EQ_INT(lathist_quantile(&h, 0.5), 3);
	lathist_add(&h, 1500);
	lathist_add(&h, 2500);
	CHECK_EQ_INT(h.over_1ms, 2);
	CHECK_EQ_INT(h.over_2ms, 1);
	CHECK_EQ_INT(lathist_quantile(&h, 0.5), 1510);
}

/* The arithmetic date formatter agrees with gmtime + strftime. */
TEST(core_http_date_matches_strftime)
{
	static const int64_t fixed[] = { 0, 86399, 86400, 951782400 /* 2000-02-29 */, 951868800,
					 4107542400 /* 2100-03-01 */, 253402300799 /* 9999-12-31 */ };
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 20000; i++) {
		int64_t sec;
		if (i < (int)SILT_ARRAY_LEN(fixed)) {
			sec = fixed[i];
		} else {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			sec = (int64_t)(x % 253402300800ull);
		}
		char want[64], got[30];
		time_t t = (time_t)sec;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		CHECK_EQ_INT(fmt_http_date(sec, got), 29);
		if (strcmp(want, got) != 0) {
			fprintf(stderr, "  %" PRId64 ": want %s got %s\n", sec, want, got);
			CHECK(false);
			break;
		}
	}
}

/* epoch_from_civil inverts civil_from_epoch and agrees with timegm,
 * including its arithmetic carry of day 31 of a 30-day month. */
TEST(core_epoch_from_civil_matches_timegm)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int64_t sec = (int64_t)(x % 253402300800ull);
		struct civil_time c;
		civil_from_epoch(sec, &c);
		if (epoch_from_civil(c.year, c.month, c.day, c.hour, c.min, c.sec) != sec) {
			fprintf(stderr, "  %" PRId64 " does not round-trip\n", sec);
			CHECK(false);
			break;
		}
		struct tm tm = { .tm_year = 1970 + (int)(x % 8000) - 1900, .tm_mon = (int)((x >> 20) % 12),
				 .tm_mday = 1 + (int)((x >> 28) % 31), .tm_hour = (int)((x >> 36) % 24),
				 .tm_min = (int)((x >> 42) % 60), .tm_sec = (int)((x >> 50) % 61) };
		int64_t want = (int64_t)timegm(&(struct tm){ .tm_year = tm.tm_year, .tm_mon = tm.tm_mon,
							     .tm_mday = tm.tm_mday, .tm_hour = tm.tm_hour,
							     .tm_min = tm.tm_min, .tm_sec = tm.tm_sec });
		int64_t got = epoch_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
					       tm.tm_min, tm.tm_sec);
		if (got != want) {
			fprintf(stderr, "  %d-%d-%d %d:%d:%d: want %" PRId64 " got %" PRId64 "\n",
				tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
				want, got);
			CHECK(false);
			break;
		}
	}
}

/* Idle hooks run once per iteration, after the iteration's timers and
 * posted closures, and may delete themselves. */
struct hook_t {
	struct loop *l;
	struct loop_timer t;
	struct loop_hook h, other;
	int timer_runs, hook_runs, other_runs;
	bool work_pending, saw_work;
};

static void hook_timer_cb(struct loop_timer *t)
{
	struct hook_t *x = t->data;
	x->timer_runs++;
	x->work_pending = true;
	loop_timer_start(x->l, &x->t, 1);
}

static void hook_fn(struct loop_hook *h)
{
	struct hook_t *x = h->data;
	x->hook_runs++;
	if (x->work_pending)
		x->saw_work = true;
	x->work_pending = false;
	if (x->hook_runs == 5) {
		loop_hook_del(x->l, h);
		loop_stop(x->l);
	}
}

static void other_fn(struct loop_hook *h)
{
	struct hook_t *x = h->data;
	x->other_runs++;
}

TEST(loop_idle_hooks)
{
	struct hook_t x;
	memset(&x, 0, sizeof(x));
	x.l = loop_new();
	loop_timer_init(&x.t, hook_timer_cb, &x);
	x.h = (struct loop_hook){ .fn = hook_fn, .data = &x };
	x.other = (struct loop_hook){ .fn = other_fn, .data = &x };
	loop_hook_add(x.l, &x.h);
	loop_hook_add(x.l, &x.h); /* no-op */
	loop_hook_add(x.l, &x.other);
	loop_hook_del(x.l, &x.other);
	loop_hook_del(x.l, &x.other); /* no-op */
	loop_timer_start(x.l, &x.t, 0);
	loop_run(x.l);
	CHECK_EQ_INT(x.hook_runs, 5);
	CHECK_EQ_INT(x.other_runs, 0);
	CHECK(x.saw_work);
	CHECK(!x.h.added);
	loop_timer_stop(x.l, &x.t);
	loop_free(x.l);
}
