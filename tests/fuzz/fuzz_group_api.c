/* fuzz_group_api.c - libFuzzer target for the group API handlers and the
 * coordinator state machine behind them.
 *
 * An input is a script of steps, each `u8 op, u8 version, u16 length, body`:
 * op % 11 picks one of the ten group handlers (body = request body) or, for
 * 10, advances a fake clock by body[0] * 100 ms and runs kgroup_tick. Up to
 * eight pending JoinGroup/SyncGroup requests are kept and polled after every
 * step; whatever is still pending at the end is cancelled (a closed
 * connection) or expired, as the low bit of the step's version says. Each
 * input starts from an empty coordinator without persistence.
 *
 * Member ids are random, which a fuzzer cannot guess, so ids handed out in
 * JoinGroup answers are remembered and any two-byte string "@N" in a later
 * body is replaced by the id learnt N-th (mod 8) before the handler sees it.
 * Seeds live in tests/fuzz/corpus/fuzz_group_api. */
#include "core/platform.h"

#include "core/log.h"
#include "core/rd.h"
#include "core/wbuf.h"
#include "kafka/group.h"
#include "kafka/handlers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int64_t g_now;

static int64_t fake_clock(void)
{
	return g_now;
}

static int32_t fake_topics(const char *name, size_t len)
{
	return len > 0 && name[0] == 't' ? 3 : -1;
}

static const struct {
	kafka_handler_fn fn;
	int16_t key, maxv;
} k_apis[10] = {
	{ kh_find_coordinator, 10, 2 }, { kh_join_group, 11, 5 },      { kh_sync_group, 14, 3 },
	{ kh_heartbeat, 12, 3 },        { kh_leave_group, 13, 3 },     { kh_offset_commit, 8, 7 },
	{ kh_offset_fetch, 9, 5 },      { kh_list_groups, 16, 2 },     { kh_describe_groups, 15, 4 },
	{ kh_delete_groups, 42, 1 },
};

enum { MAX_PENDING = 8, MAX_IDS = 8 };

static char *g_ids[MAX_IDS];
static int g_nids;

static void learn_id(const struct kreq *q)
{
	if (q->api_key != 11 || !q->out.p)
		return;
	struct rd r;
	rd_init(&r, q->out.p, q->out.len);
	if (q->api_version >= 2)
		(void)rd_i32(&r);
	(void)rd_i16(&r);
	(void)rd_i32(&r);
	(void)rd_str(&r);
	(void)rd_str(&r);
	struct slice id = rd_str(&r);
	if (r.err || id.len <= 0)
		return;
	int k = g_nids++ % MAX_IDS;
	free(g_ids[k]);
	g_ids[k] = xstrndup((const char *)id.p, (size_t)id.len);
}

/* Copies body into w with every "@N" string replaced by a learnt id. */
static void substitute(struct wbuf *w, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		if (i + 4 <= n && p[i] == 0 && p[i + 1] == 2 && p[i + 2] == '@' && g_ids[p[i + 3] % MAX_IDS]) {
			wbuf_str(w, g_ids[p[i + 3] % MAX_IDS]);
			i += 4;
		} else {
			wbuf_u8(w, p[i++]);
		}
	}
}

static void finish(struct kreq *q)
{
	learn_id(q);
	wbuf_destroy(&q->out);
	free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct kgroup_limits lim = {
		.min_session_timeout_ms = 1,
		.max_session_timeout_ms = 60000,
		.initial_rebalance_delay_ms = 100,
	};
	log_set_level(LOG_ERROR);
	kgroup_init(NULL);
	kgroup_set_clock(fake_clock);
	kgroup_set_limits(&lim);
	kgroup_set_topic_lookup(fake_topics);
	g_now = 1000;

	struct kreq *pending[MAX_PENDING] = { 0 };
	bool cancel_at_end = true;
	struct rd in;
	rd_init(&in, data, size);
	while (rd_left(&in) >= 4) {
		uint8_t op = rd_u8(&in) % 11;
		uint8_t ver = rd_u8(&in);
		uint16_t len = (uint16_t)rd_i16(&in);
		size_t blen = SILT_MIN((size_t)len, rd_left(&in));
		const uint8_t *body = rd_bytes(&in, blen);
		cancel_at_end = ver & 1;
		if (op == 10) {
			g_now += (blen ? body[0] : 1) * 100;
			kgroup_tick(g_now);
		} else {
			struct kreq *q = xcalloc(1, sizeof(*q));
			q->api_key = k_apis[op].key;
			q->api_version = (int16_t)(ver % (k_apis[op].maxv + 1));
			q->client_id = (struct slice){ (const uint8_t *)"fz", 2 };
			wbuf_init(&q->out, 0, 64u << 20);
			struct wbuf sub;
			wbuf_init(&sub, blen + 64, 0);
			substitute(&sub, body, blen);
			struct rd r;
			rd_init(&r, sub.p, sub.len);
			int rc = k_apis[op].fn(q, &r);
			/* A pending request's body stays alive with its frame in the
			 * server; the handlers copy what they keep, so this is safe. */
			wbuf_destroy(&sub);
			int slot = -1;
			for (int i = 0; i < MAX_PENDING && rc == KH_PENDING; i++)
				if (!pending[i])
					slot = i;
			if (rc == KH_PENDING && slot >= 0) {
				pending[slot] = q;
			} else {
				if (rc == KH_PENDING)
					q->cancel(q);
				finish(q);
			}
		}
		for (int i = 0; i < MAX_PENDING; i++)
			if (pending[i] && pending[i]->poll(pending[i], false) == KH_DONE) {
				finish(pending[i]);
				pending[i] = NULL;
			}
	}
	for (int i = 0; i < MAX_PENDING; i++) {
		if (!pending[i])
			continue;
		if (cancel_at_end)
			pending[i]->cancel(pending[i]);
		else
			(void)pending[i]->poll(pending[i], true);
		finish(pending[i]);
	}
	kgroup_shutdown();
	for (int i = 0; i < MAX_IDS; i++) {
		free(g_ids[i]);
		g_ids[i] = NULL;
	}
	g_nids = 0;
	return 0;
}
