/* test_group.c - the group coordinator driven through its wire handlers. */
#include "core/platform.h"

#include "core/log.h"
#include "core/rd.h"
#include "core/util.h"
#include "core/wbuf.h"
#include "kafka/broker.h"
#include "kafka/errors.h"
#include "kafka/group.h"
#include "kafka/handlers.h"
#include "test.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Stand-ins for the server framework, replaced by the real definitions when
 * those are linked in (the tests never depend on them: clock, limits and
 * topic lookup go through kgroup's test seams). */
__attribute__((weak)) void kafka_kick(void)
{
}

__attribute__((weak)) const struct kbroker_conf *kbroker_conf(void)
{
	return NULL;
}

__attribute__((weak)) struct ktopic *kbroker_topic(const char *name, size_t len)
{
	(void)name;
	(void)len;
	return NULL;
}

__attribute__((weak)) void ktopic_unref(struct ktopic *t)
{
	(void)t;
}

__attribute__((weak)) void kreq_add_file(struct kreq *req, const struct seglog_read *rd)
{
	(void)req;
	(void)rd;
}

static int64_t g_now = 1000000;

static int64_t fake_clock(void)
{
	return g_now;
}

static int32_t fake_topics(const char *name, size_t len)
{
	if (len == 6 && memcmp(name, "orders", 6) == 0)
		return 4;
	if (len == 5 && memcmp(name, "audit", 5) == 0)
		return 1;
	return -1;
}

static const struct kgroup_limits k_lim = {
	.min_session_timeout_ms = 6000,
	.max_session_timeout_ms = 300000,
	.initial_rebalance_delay_ms = 100,
	.offsets_retention_ms = 0,
};

static enum log_level g_saved_level;

static void setup(const char *dir)
{
	g_saved_level = log_get_level();
	log_set_level(LOG_WARN);
	kgroup_shutdown();
	CHECK_EQ_INT(kgroup_init(dir), 0);
	kgroup_set_clock(fake_clock);
	kgroup_set_limits(&k_lim);
	kgroup_set_topic_lookup(fake_topics);
}

static void teardown(void)
{
	kgroup_shutdown();
	kgroup_set_clock(NULL);
	kgroup_set_topic_lookup(NULL);
	log_set_level(g_saved_level);
}

static void tick(int64_t advance)
{
	g_now += advance;
	kgroup_tick(g_now);
}

/* ---- request plumbing ---- */

typedef int (*handler_fn)(struct kreq *, struct rd *);

struct call {
	struct kreq req;
	int rc;
	struct rd resp; /* over req.out once done */
};

static void call_start(struct call *c, handler_fn h, int16_t key, int16_t ver, const struct wbuf *body)
{
	memset(c, 0, sizeof(*c));
	c->req.api_key = key;
	c->req.api_version = ver;
	c->req.client_id = (struct slice){ (const uint8_t *)"cli", 3 };
	wbuf_init(&c->req.out, 0, 0);
	struct rd r;
	rd_init(&r, body->p, body->len);
	c->rc = h(&c->req, &r);
	if (c->rc == KH_DONE)
		rd_init(&c->resp, c->req.out.p, c->req.out.len);
}

static int call_poll(struct call *c, bool expired)
{
	c->rc = c->req.poll(&c->req, expired);
	if (c->rc == KH_DONE)
		rd_init(&c->resp, c->req.out.p, c->req.out.len);
	return c->rc;
}

static void call_end(struct call *c)
{
	if (c->rc == KH_PENDING && c->req.cancel)
		c->req.cancel(&c->req);
	wbuf_destroy(&c->req.out);
}

static void w_str(struct wbuf *w, const char *s)
{
	wbuf_str(w, s);
}

static const char *g_instance; /* group_instance_id for JoinGroup v5 */

/* JoinGroup with one protocol "range" (metadata meta) or two when proto2. */
static void join_body(struct wbuf *w, int v, const char *group, const char *member, const char *meta,
		      const char *proto2)
{
	wbuf_init(w, 0, 0);
	w_str(w, group);
	wbuf_i32(w, 10000);
	if (v >= 1)
		wbuf_i32(w, 20000);
	w_str(w, member);
	if (v >= 5)
		w_str(w, g_instance);
	w_str(w, "consumer");
	wbuf_i32(w, proto2 ? 2 : 1);
	w_str(w, "range");
	wbuf_kbytes(w, meta, (int32_t)strlen(meta));
	if (proto2) {
		w_str(w, proto2);
		wbuf_kbytes(w, meta, (int32_t)strlen(meta));
	}
}

struct jresp {
	int16_t err;
	int32_t gen;
	char proto[32], leader[128], member[128];
	int32_t n;
	char mids[4][128];
	char metas[4][64];
};

static void cpy(char *dst, size_t cap, struct slice s)
{
	size_t n = s.len > 0 ? SILT_MIN((size_t)s.len, cap - 1) : 0;
	if (n)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
}

static bool parse_join(struct call *c, int v, struct jresp *j)
{
	memset(j, 0, sizeof(*j));
	struct rd *r = &c->resp;
	if (v >= 2)
		(void)rd_i32(r);
	j->err = rd_i16(r);
	j->gen = rd_i32(r);
	cpy(j->proto, sizeof(j->proto), rd_str(r));
	cpy(j->leader, sizeof(j->leader), rd_str(r));
	cpy(j->member, sizeof(j->member), rd_str(r));
	j->n = rd_array(r, 100);
	for (int32_t i = 0; i < j->n; i++) {
		struct slice id = rd_str(r);
		if (v >= 5)
			(void)rd_str(r);
		struct slice meta = rd_kbytes(r);
		if (i < 4) {
			cpy(j->mids[i], sizeof(j->mids[i]), id);
			cpy(j->metas[i], sizeof(j->metas[i]), meta);
		}
	}
	return !r->err && rd_left(r) == 0;
}

/* JoinGroup v5 twice (MEMBER_ID_REQUIRED, then with the id); returns the
 * pending second call, its member id in id. */
static void join_v5(struct call *c, const char *group, const char *meta, char *id, size_t idcap)
{
	struct wbuf b;
	struct jresp j;
	join_body(&b, 5, group, "", meta, NULL);
	call_start(c, kh_join_group, 11, 5, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(c->rc, KH_DONE);
	CHECK(parse_join(c, 5, &j));
	CHECK_EQ_INT(j.err, KERR_MEMBER_ID_REQUIRED);
	CHECK(strncmp(j.member, "cli-", 4) == 0 && strlen(j.member) == 4 + 36);
	snprintf(id, idcap, "%s", j.member);
	call_end(c);
	join_body(&b, 5, group, id, meta, NULL);
	call_start(c, kh_join_group, 11, 5, &b);
	wbuf_destroy(&b);
}

static void sync_body(struct wbuf *w, int v, const char *group, int32_t gen, const char *member,
		      int n, const char *const *ids, const char *const *assign)
{
	wbuf_init(w, 0, 0);
	w_str(w, group);
	wbuf_i32(w, gen);
	w_str(w, member);
	if (v >= 3)
		w_str(w, NULL);
	wbuf_i32(w, n);
	for (int i = 0; i < n; i++) {
		w_str(w, ids[i]);
		wbuf_kbytes(w, assign[i], (int32_t)strlen(assign[i]));
	}
}

static int16_t parse_sync(struct call *c, int v, char *assign, size_t cap)
{
	struct rd *r = &c->resp;
	if (v >= 1)
		(void)rd_i32(r);
	int16_t err = rd_i16(r);
	cpy(assign, cap, rd_kbytes(r));
	CHECK(!r->err && rd_left(r) == 0);
	return err;
}

static int16_t heartbeat(int v, const char *group, int32_t gen, const char *member)
{
	struct wbuf b;
	wbuf_init(&b, 0, 0);
	w_str(&b, group);
	wbuf_i32(&b, gen);
	w_str(&b, member);
	if (v >= 3)
		w_str(&b, NULL);
	struct call c;
	call_start(&c, kh_heartbeat, 12, (int16_t)v, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(c.rc, KH_DONE);
	if (v >= 1)
		CHECK_EQ_INT(rd_i32(&c.resp), 0);
	int16_t err = rd_i16(&c.resp);
	CHECK(!c.resp.err && rd_left(&c.resp) == 0);
	call_end(&c);
	return err;
}

/* ---- tests ---- */

TEST(group_join_member_id_required_then_delayed_join)
{
	setup(NULL);
	struct call c;
	struct jresp j;
	char id[128];
	join_v5(&c, "g1", "M1", id, sizeof(id));
	/* The group was empty: the join waits out the initial delay. */
	CHECK_EQ_INT(c.rc, KH_PENDING);
	CHECK(c.req.poll && c.req.cancel && c.req.deadline_ms > 0);
	CHECK_EQ_INT(call_poll(&c, false), KH_PENDING);
	tick(50);
	CHECK_EQ_INT(call_poll(&c, false), KH_PENDING);
	tick(60);
	REQUIRE(call_poll(&c, false) == KH_DONE);
	CHECK(parse_join(&c, 5, &j));
	CHECK_EQ_INT(j.err, 0);
	CHECK_EQ_INT(j.gen, 1);
	CHECK(strcmp(j.proto, "range") == 0);
	CHECK(strcmp(j.leader, id) == 0);
	CHECK(strcmp(j.member, id) == 0);
	CHECK_EQ_INT(j.n, 1);
	CHECK(strcmp(j.mids[0], id) == 0);
	CHECK(strcmp(j.metas[0], "M1") == 0);
	call_end(&c);

	/* Unknown member ids and bad session timeouts are refused. */
	struct wbuf b;
	join_body(&b, 5, "g1", "nobody", "M", NULL);
	call_start(&c, kh_join_group, 11, 5, &b);
	wbuf_destroy(&b);
	CHECK(parse_join(&c, 5, &j));
	CHECK_EQ_INT(j.err, KERR_UNKNOWN_MEMBER_ID);
	call_end(&c);
	wbuf_init(&b, 0, 0);
	w_str(&b, "g1");
	wbuf_i32(&b, 10);
	w_str(&b, "");
	w_str(&b, "consumer");
	wbuf_i32(&b, 1);
	w_str(&b, "range");
	wbuf_kbytes(&b, "", 0);
	call_start(&c, kh_join_group, 11, 0, &b);
	wbuf_destroy(&b);
	CHECK(parse_join(&c, 0, &j));
	CHECK_EQ_INT(j.err, KERR_INVALID_SESSION_TIMEOUT);
	call_end(&c);
	/* Another protocol type does not fit the group. */
	wbuf_init(&b, 0, 0);
	w_str(&b, "g1");
	wbuf_i32(&b, 10000);
	wbuf_i32(&b, 10000);
	w_str(&b, "");
	w_str(&b, "connect");
	wbuf_i32(&b, 1);
	w_str(&b, "range");
	wbuf_kbytes(&b, "", 0);
	call_start(&c, kh_join_group, 11, 3, &b);
	wbuf_destroy(&b);
	CHECK(parse_join(&c, 3, &j));
	CHECK_EQ_INT(j.err, KERR_INCONSISTENT_GROUP_PROTOCOL);
	call_end(&c);
	/* Empty group id. */
	join_body(&b, 4, "", "", "M", NULL);
	call_start(&c, kh_join_group, 11, 4, &b);
	wbuf_destroy(&b);
	CHECK(parse_join(&c, 4, &j));
	CHECK_EQ_INT(j.err, KERR_INVALID_GROUP_ID);
	call_end(&c);
	teardown();
}

/* Two members join one generation, the leader's assignment reaches both. */
TEST(group_two_members_sync_and_rebalance)
{
	setup(NULL);
	struct call ca, cb, cc;
	struct jresp ja, jb;
	char a[128], bid[128], cid[128], asg[64];
	join_v5(&ca, "g2", "MA", a, sizeof(a));
	join_v5(&cb, "g2", "MB", bid, sizeof(bid));
	CHECK_EQ_INT(ca.rc, KH_PENDING);
	CHECK_EQ_INT(cb.rc, KH_PENDING);
	/* A second member during the delay extends it once. */
	tick(110);
	CHECK_EQ_INT(call_poll(&ca, false), KH_PENDING);
	tick(110);
	REQUIRE(call_poll(&ca, false) == KH_DONE);
	REQUIRE(call_poll(&cb, false) == KH_DONE);
	CHECK(parse_join(&ca, 5, &ja));
	CHECK(parse_join(&cb, 5, &jb));
	CHECK_EQ_INT(ja.err, 0);
	CHECK_EQ_INT(jb.err, 0);
	CHECK_EQ_INT(ja.gen, 1);
	CHECK_EQ_INT(jb.gen, 1);
	CHECK(strcmp(ja.leader, a) == 0 && strcmp(jb.leader, a) == 0);
	CHECK_EQ_INT(ja.n, 2);
	CHECK_EQ_INT(jb.n, 0); /* only the leader sees the members */
	CHECK(strcmp(ja.mids[1], bid) == 0 && strcmp(ja.metas[1], "MB") == 0);
	call_end(&ca);
	call_end(&cb);
	CHECK_EQ_INT(heartbeat(3, "g2", 1, bid), 0);

	/* Follower syncs first and waits; the leader's sync answers both. */
	struct wbuf b;
	sync_body(&b, 3, "g2", 1, bid, 0, NULL, NULL);
	call_start(&cb, kh_sync_group, 14, 3, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(cb.rc, KH_PENDING);
	sync_body(&b, 2, "g2", 0, a, 0, NULL, NULL);
	call_start(&cc, kh_sync_group, 14, 2, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(parse_sync(&cc, 2, asg, sizeof(asg)), KERR_ILLEGAL_GENERATION);
	call_end(&cc);
	sync_body(&b, 0, "g2", 1, "ghost", 0, NULL, NULL);
	call_start(&cc, kh_sync_group, 14, 0, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(parse_sync(&cc, 0, asg, sizeof(asg)), KERR_UNKNOWN_MEMBER_ID);
	call_end(&cc);
	const char *ids[2] = { a, bid }, *as[2] = { "for-a", "for-b" };
	sync_body(&b, 3, "g2", 1, a, 2, ids, as);
	call_start(&ca, kh_sync_group, 14, 3, &b);
	wbuf_destroy(&b);
	REQUIRE(ca.rc == KH_DONE);
	CHECK_EQ_INT(parse_sync(&ca, 3, asg, sizeof(asg)), 0);
	CHECK(strcmp(asg, "for-a") == 0);
	call_end(&ca);
	REQUIRE(call_poll(&cb, false) == KH_DONE);
	CHECK_EQ_INT(parse_sync(&cb, 3, asg, sizeof(asg)), 0);
	CHECK(strcmp(asg, "for-b") == 0);
	call_end(&cb);
	CHECK_EQ_INT(heartbeat(0, "g2", 1, a), 0);
	CHECK_EQ_INT(heartbeat(1, "g2", 2, a), KERR_ILLEGAL_GENERATION);
	CHECK_EQ_INT(heartbeat(2, "g2", 1, "ghost"), KERR_UNKNOWN_MEMBER_ID);
	CHECK_EQ_INT(heartbeat(2, "nogroup", 1, a), KERR_UNKNOWN_MEMBER_ID);

	/* A follower rejoining unchanged gets the current generation at once. */
	join_body(&b, 5, "g2", bid, "MB", NULL);
	call_start(&cb, kh_join_group, 11, 5, &b);
	wbuf_destroy(&b);
	REQUIRE(cb.rc == KH_DONE);
	CHECK(parse_join(&cb, 5, &jb));
	CHECK_EQ_INT(jb.err, 0);
	CHECK_EQ_INT(jb.gen, 1);
	call_end(&cb);

	/* A third member (v3: no MEMBER_ID_REQUIRED) starts a rebalance. */
	join_body(&b, 3, "g2", "", "MC", NULL);
	call_start(&cc, kh_join_group, 11, 3, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(cc.rc, KH_PENDING);
	CHECK_EQ_INT(heartbeat(1, "g2", 1, a), KERR_REBALANCE_IN_PROGRESS);
	sync_body(&b, 1, "g2", 1, a, 0, NULL, NULL);
	call_start(&ca, kh_sync_group, 14, 1, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(parse_sync(&ca, 1, asg, sizeof(asg)), KERR_REBALANCE_IN_PROGRESS);
	call_end(&ca);
	/* A rejoins; B never does and is dropped at the rebalance timeout. */
	join_body(&b, 5, "g2", a, "MA", NULL);
	call_start(&ca, kh_join_group, 11, 5, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(ca.rc, KH_PENDING);
	tick(1000);
	CHECK_EQ_INT(heartbeat(1, "g2", 1, bid), KERR_REBALANCE_IN_PROGRESS);
	CHECK_EQ_INT(call_poll(&ca, false), KH_PENDING);
	tick(20000);
	REQUIRE(call_poll(&ca, false) == KH_DONE);
	REQUIRE(call_poll(&cc, false) == KH_DONE);
	CHECK(parse_join(&ca, 5, &ja));
	CHECK(parse_join(&cc, 3, &jb));
	CHECK_EQ_INT(ja.gen, 2);
	CHECK_EQ_INT(ja.n, 2);
	CHECK(strcmp(ja.leader, a) == 0);
	snprintf(cid, sizeof(cid), "%s", jb.member);
	CHECK(strcmp(ja.mids[1], cid) == 0);
	call_end(&ca);
	call_end(&cc);
	CHECK_EQ_INT(heartbeat(1, "g2", 2, bid), KERR_UNKNOWN_MEMBER_ID);

	/* Both rejoin quickly: the rebalance completes without waiting. */
	CHECK_EQ_INT(heartbeat(1, "g2", 2, cid), 0);
	join_body(&b, 5, "g2", a, "MA2", NULL); /* leader with new metadata */
	call_start(&ca, kh_join_group, 11, 5, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(ca.rc, KH_PENDING);
	join_body(&b, 5, "g2", cid, "MC", NULL);
	call_start(&cc, kh_join_group, 11, 5, &b);
	wbuf_destroy(&b);
	REQUIRE(cc.rc == KH_DONE);
	REQUIRE(call_poll(&ca, false) == KH_DONE);
	CHECK(parse_join(&ca, 5, &ja));
	CHECK_EQ_INT(ja.gen, 3);
	CHECK(strcmp(ja.metas[0], "MA2") == 0);
	call_end(&ca);
	call_end(&cc);
	teardown();
}

TEST(group_session_expiry_and_leave)
{
	setup(NULL);
	struct call ca, cb;
	struct jresp j;
	char a[128], bid[128], asg[32];
	join_v5(&ca, "g3", "MA", a, sizeof(a));
	join_v5(&cb, "g3", "MB", bid, sizeof(bid));
	tick(500);
	tick(500); /* B arrived during the delay: it was extended once */
	REQUIRE(call_poll(&ca, false) == KH_DONE);
	REQUIRE(call_poll(&cb, false) == KH_DONE);
	CHECK(parse_join(&ca, 5, &j));
	call_end(&ca);
	call_end(&cb);
	struct wbuf b;
	sync_body(&b, 3, "g3", j.gen, a, 0, NULL, NULL);
	call_start(&ca, kh_sync_group, 14, 3, &b);
	wbuf_destroy(&b);
	REQUIRE(ca.rc == KH_DONE);
	CHECK_EQ_INT(parse_sync(&ca, 3, asg, sizeof(asg)), 0);
	call_end(&ca);
	/* A keeps heartbeating, B goes silent past its 10 s session. */
	for (int i = 0; i < 4; i++) {
		tick(3000);
		CHECK_EQ_INT(heartbeat(3, "g3", j.gen, a), i < 3 ? 0 : KERR_REBALANCE_IN_PROGRESS);
	}
	CHECK_EQ_INT(heartbeat(3, "g3", j.gen, bid), KERR_UNKNOWN_MEMBER_ID);
	/* A rejoins alone: completes at once (no initial delay, group not empty). */
	join_body(&b, 5, "g3", a, "MA", NULL);
	call_start(&ca, kh_join_group, 11, 5, &b);
	wbuf_destroy(&b);
	REQUIRE(ca.rc == KH_DONE);
	CHECK(parse_join(&ca, 5, &j));
	CHECK_EQ_INT(j.gen, 2);
	CHECK_EQ_INT(j.n, 1);
	call_end(&ca);

	/* LeaveGroup v0 then the group is empty; v3 reports per member. */
	wbuf_init(&b, 0, 0);
	w_str(&b, "g3");
	w_str(&b, a);
	call_start(&ca, kh_leave_group, 13, 0, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(rd_i16(&ca.resp), 0);
	CHECK_EQ_INT(rd_left(&ca.resp), 0);
	call_end(&ca);
	CHECK_EQ_INT(heartbeat(3, "g3", 2, a), KERR_UNKNOWN_MEMBER_ID);
	wbuf_init(&b, 0, 0);
	w_str(&b, "g3");
	wbuf_i32(&b, 1);
	w_str(&b, a);
	w_str(&b, NULL);
	call_start(&ca, kh_leave_group, 13, 3, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(rd_i32(&ca.resp), 0);
	CHECK_EQ_INT(rd_i16(&ca.resp), 0);
	CHECK_EQ_INT(rd_i32(&ca.resp), 1);
	struct slice s = rd_str(&ca.resp);
	CHECK(s.len == (int32_t)strlen(a));
	CHECK_EQ_INT(rd_str(&ca.resp).len, -1);
	CHECK_EQ_INT(rd_i16(&ca.resp), KERR_UNKNOWN_MEMBER_ID);
	CHECK(!ca.resp.err && rd_left(&ca.resp) == 0);
	call_end(&ca);

	/* An empty group with no offsets is forgotten. */
	tick(100);
	struct kgroup_desc d;
	kgroup_describe((struct slice){ (const uint8_t *)"g3", 2 }, &d);
	CHECK(strcmp(d.state, "Dead") == 0);
	kgroup_desc_destroy(&d);
	teardown();
}

/* A member that heartbeats but never syncs is removed at the rebalance
 * timeout, so it cannot hold the group in CompletingRebalance. */
TEST(group_member_that_never_syncs)
{
	setup(NULL);
	struct call ca, cb;
	char a[128], bid[128], asg[16];
	join_v5(&ca, "g5", "MA", a, sizeof(a));
	join_v5(&cb, "g5", "MB", bid, sizeof(bid));
	tick(200);
	tick(200);
	REQUIRE(call_poll(&ca, false) == KH_DONE);
	REQUIRE(call_poll(&cb, false) == KH_DONE);
	call_end(&ca);
	call_end(&cb);
	struct wbuf b;
	sync_body(&b, 3, "g5", 1, a, 0, NULL, NULL);
	call_start(&ca, kh_sync_group, 14, 3, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(parse_sync(&ca, 3, asg, sizeof(asg)), 0);
	call_end(&ca);
	for (int i = 0; i < 6; i++) {
		tick(3000);
		CHECK_EQ_INT(heartbeat(3, "g5", 1, a), 0);
		CHECK_EQ_INT(heartbeat(3, "g5", 1, bid), 0);
	}
	tick(3000); /* past the 20 s rebalance timeout */
	CHECK_EQ_INT(heartbeat(3, "g5", 1, bid), KERR_UNKNOWN_MEMBER_ID);
	CHECK_EQ_INT(heartbeat(3, "g5", 1, a), KERR_REBALANCE_IN_PROGRESS);
	teardown();
}

/* KIP-345: a restarted static member takes its old place without a
 * rebalance; its old member id is gone. */
TEST(group_static_member_rejoin)
{
	setup(NULL);
	struct call ca, cb;
	struct jresp ja, jb;
	struct wbuf b;
	char asg[16];
	g_instance = "inst-a";
	join_body(&b, 5, "g6", "", "MA", NULL);
	call_start(&ca, kh_join_group, 11, 5, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(ca.rc, KH_PENDING); /* no MEMBER_ID_REQUIRED round trip */
	g_instance = "inst-b";
	join_body(&b, 5, "g6", "", "MB", NULL);
	call_start(&cb, kh_join_group, 11, 5, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(cb.rc, KH_PENDING);
	tick(200);
	tick(200);
	REQUIRE(call_poll(&ca, false) == KH_DONE);
	REQUIRE(call_poll(&cb, false) == KH_DONE);
	CHECK(parse_join(&ca, 5, &ja));
	CHECK(parse_join(&cb, 5, &jb));
	call_end(&ca);
	call_end(&cb);
	const char *ids[2] = { ja.member, jb.member }, *as[2] = { "A", "B" };
	sync_body(&b, 3, "g6", 1, ja.member, 2, ids, as);
	call_start(&ca, kh_sync_group, 14, 3, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(parse_sync(&ca, 3, asg, sizeof(asg)), 0);
	call_end(&ca);
	/* inst-b restarts: a fresh id in the same generation, at once. */
	join_body(&b, 5, "g6", "", "MB", NULL);
	call_start(&cb, kh_join_group, 11, 5, &b);
	wbuf_destroy(&b);
	REQUIRE(cb.rc == KH_DONE);
	struct jresp jb2;
	CHECK(parse_join(&cb, 5, &jb2));
	call_end(&cb);
	CHECK_EQ_INT(jb2.err, 0);
	CHECK_EQ_INT(jb2.gen, 1);
	CHECK(strcmp(jb2.member, jb.member) != 0);
	CHECK_EQ_INT(heartbeat(3, "g6", 1, jb.member), KERR_UNKNOWN_MEMBER_ID);
	CHECK_EQ_INT(heartbeat(3, "g6", 1, jb2.member), 0);
	sync_body(&b, 3, "g6", 1, jb2.member, 0, NULL, NULL);
	call_start(&cb, kh_sync_group, 14, 3, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(parse_sync(&cb, 3, asg, sizeof(asg)), 0);
	CHECK(strcmp(asg, "B") == 0);
	call_end(&cb);
	CHECK_EQ_INT(heartbeat(3, "g6", 1, ja.member), 0);
	g_instance = NULL;
	teardown();
}

/* The protocol with most first-choice votes among those all support wins. */
TEST(group_protocol_vote)
{
	setup(NULL);
	struct call c[3];
	struct wbuf b;
	struct jresp j;
	join_body(&b, 3, "g7", "", "M", "roundrobin"); /* range, roundrobin */
	call_start(&c[0], kh_join_group, 11, 3, &b);
	wbuf_destroy(&b);
	for (int i = 1; i < 3; i++) {
		wbuf_init(&b, 0, 0);
		w_str(&b, "g7");
		wbuf_i32(&b, 10000);
		wbuf_i32(&b, 10000);
		w_str(&b, "");
		w_str(&b, "consumer");
		wbuf_i32(&b, i == 1 ? 2 : 3);
		w_str(&b, "roundrobin");
		wbuf_kbytes(&b, "", 0);
		if (i == 2) {
			w_str(&b, "sticky"); /* not supported by all: no candidate */
			wbuf_kbytes(&b, "", 0);
		}
		w_str(&b, "range");
		wbuf_kbytes(&b, "", 0);
		call_start(&c[i], kh_join_group, 11, 3, &b);
		wbuf_destroy(&b);
	}
	tick(200);
	tick(200);
	for (int i = 0; i < 3; i++) {
		REQUIRE(call_poll(&c[i], false) == KH_DONE);
		CHECK(parse_join(&c[i], 3, &j));
		CHECK_EQ_INT(j.err, 0);
		CHECK(strcmp(j.proto, "roundrobin") == 0);
		CHECK_EQ_INT(j.n, i == 0 ? 3 : 0);
		call_end(&c[i]);
	}
	/* A member sharing no protocol with the group is refused. */
	wbuf_init(&b, 0, 0);
	w_str(&b, "g7");
	wbuf_i32(&b, 10000);
	wbuf_i32(&b, 10000);
	w_str(&b, "");
	w_str(&b, "consumer");
	wbuf_i32(&b, 1);
	w_str(&b, "sticky");
	wbuf_kbytes(&b, "", 0);
	call_start(&c[0], kh_join_group, 11, 3, &b);
	wbuf_destroy(&b);
	CHECK(parse_join(&c[0], 3, &j));
	CHECK_EQ_INT(j.err, KERR_INCONSISTENT_GROUP_PROTOCOL);
	call_end(&c[0]);
	teardown();
}

/* A cancelled (connection closed) join leaves the member to its session. */
TEST(group_cancelled_join)
{
	setup(NULL);
	struct call c;
	char a[128];
	join_v5(&c, "g4", "MA", a, sizeof(a));
	CHECK_EQ_INT(c.rc, KH_PENDING);
	call_end(&c); /* cancels */
	tick(200);
	CHECK_EQ_INT(heartbeat(3, "g4", 1, a), 0);
	tick(10001);
	CHECK_EQ_INT(heartbeat(3, "g4", 1, a), KERR_UNKNOWN_MEMBER_ID);
	/* A pending request past its deadline answers REBALANCE_IN_PROGRESS. */
	join_v5(&c, "g4", "MA", a, sizeof(a));
	REQUIRE(c.rc == KH_PENDING);
	REQUIRE(call_poll(&c, true) == KH_DONE);
	struct jresp j;
	CHECK(parse_join(&c, 5, &j));
	CHECK_EQ_INT(j.err, KERR_REBALANCE_IN_PROGRESS);
	call_end(&c);
	teardown();
}

static void commit_body(struct wbuf *w, int v, const char *group, int32_t gen, const char *member,
			const char *topic, int32_t part, int64_t off, const char *meta)
{
	wbuf_init(w, 0, 0);
	w_str(w, group);
	if (v >= 1) {
		wbuf_i32(w, gen);
		w_str(w, member);
	}
	if (v >= 7)
		w_str(w, NULL);
	if (v >= 2 && v <= 4)
		wbuf_i64(w, -1);
	wbuf_i32(w, 1);
	w_str(w, topic);
	wbuf_i32(w, 1);
	wbuf_i32(w, part);
	wbuf_i64(w, off);
	if (v >= 6)
		wbuf_i32(w, 7);
	if (v == 1)
		wbuf_i64(w, -1);
	w_str(w, meta);
}

static int16_t commit1(int v, const char *group, int32_t gen, const char *member, const char *topic,
		       int32_t part, int64_t off, const char *meta)
{
	struct wbuf b;
	struct call c;
	commit_body(&b, v, group, gen, member, topic, part, off, meta);
	call_start(&c, kh_offset_commit, 8, (int16_t)v, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(c.rc, KH_DONE);
	struct rd *r = &c.resp;
	if (v >= 3)
		CHECK_EQ_INT(rd_i32(r), 0);
	CHECK_EQ_INT(rd_i32(r), 1);
	(void)rd_str(r);
	CHECK_EQ_INT(rd_i32(r), 1);
	CHECK_EQ_INT(rd_i32(r), part);
	int16_t err = rd_i16(r);
	CHECK(!r->err && rd_left(r) == 0);
	call_end(&c);
	return err;
}

/* OffsetFetch of one partition; returns the offset, meta/epoch out. */
static int64_t fetch1(int v, const char *group, const char *topic, int32_t part, char *meta,
		      size_t cap, int32_t *epoch)
{
	struct wbuf b;
	struct call c;
	wbuf_init(&b, 0, 0);
	w_str(&b, group);
	wbuf_i32(&b, 1);
	w_str(&b, topic);
	wbuf_i32(&b, 1);
	wbuf_i32(&b, part);
	call_start(&c, kh_offset_fetch, 9, (int16_t)v, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(c.rc, KH_DONE);
	struct rd *r = &c.resp;
	if (v >= 3)
		CHECK_EQ_INT(rd_i32(r), 0);
	CHECK_EQ_INT(rd_i32(r), 1);
	(void)rd_str(r);
	CHECK_EQ_INT(rd_i32(r), 1);
	CHECK_EQ_INT(rd_i32(r), part);
	int64_t off = rd_i64(r);
	*epoch = v >= 5 ? rd_i32(r) : -1;
	struct slice m = rd_str(r);
	CHECK(m.len >= 0);
	cpy(meta, cap, m);
	CHECK_EQ_INT(rd_i16(r), 0);
	if (v >= 2)
		CHECK_EQ_INT(rd_i16(r), 0);
	CHECK(!r->err && rd_left(r) == 0);
	call_end(&c);
	return off;
}

TEST(group_offsets_commit_fetch)
{
	setup(NULL);
	char meta[64];
	int32_t ep;
	CHECK_EQ_INT(fetch1(5, "sc", "orders", 0, meta, sizeof(meta), &ep), -1);
	CHECK(meta[0] == '\0');
	CHECK_EQ_INT(ep, -1);
	/* Simple consumers (generation -1, no member) always commit. */
	CHECK_EQ_INT(commit1(7, "sc", -1, "", "orders", 0, 42, "m0"), 0);
	CHECK_EQ_INT(commit1(0, "sc", -1, "", "orders", 1, 43, NULL), 0);
	CHECK_EQ_INT(commit1(2, "sc", -1, "", "orders", 4, 1, ""), KERR_UNKNOWN_TOPIC_OR_PARTITION);
	CHECK_EQ_INT(commit1(2, "sc", -1, "", "nope", 0, 1, ""), KERR_UNKNOWN_TOPIC_OR_PARTITION);
	char big[KOFFSETS_MAX_METADATA + 2];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ_INT(commit1(3, "sc", -1, "", "orders", 2, 1, big), KERR_OFFSET_METADATA_TOO_LARGE);
	CHECK_EQ_INT(commit1(2, "other", 5, "m", "orders", 0, 1, ""), KERR_ILLEGAL_GENERATION);
	CHECK_EQ_INT(fetch1(5, "sc", "orders", 0, meta, sizeof(meta), &ep), 42);
	CHECK(strcmp(meta, "m0") == 0);
	CHECK_EQ_INT(ep, 7);
	CHECK_EQ_INT(fetch1(1, "sc", "orders", 1, meta, sizeof(meta), &ep), 43);
	CHECK(meta[0] == '\0');
	CHECK_EQ_INT(fetch1(3, "sc", "orders", 2, meta, sizeof(meta), &ep), -1);
	CHECK_EQ_INT(commit1(6, "sc", -1, "", "audit", 0, 9, "a"), 0);

	/* Null topics (v2+) fetch everything, grouped by topic. */
	struct wbuf b;
	struct call c;
	wbuf_init(&b, 0, 0);
	w_str(&b, "sc");
	wbuf_i32(&b, -1);
	call_start(&c, kh_offset_fetch, 9, 4, &b);
	wbuf_destroy(&b);
	struct rd *r = &c.resp;
	CHECK_EQ_INT(rd_i32(r), 0);
	CHECK_EQ_INT(rd_i32(r), 2);
	CHECK(slice_eq(rd_str(r), "audit"));
	CHECK_EQ_INT(rd_i32(r), 1);
	CHECK_EQ_INT(rd_i32(r), 0);
	CHECK_EQ_INT(rd_i64(r), 9);
	CHECK(slice_eq(rd_str(r), "a"));
	CHECK_EQ_INT(rd_i16(r), 0);
	CHECK(slice_eq(rd_str(r), "orders"));
	CHECK_EQ_INT(rd_i32(r), 2);
	CHECK_EQ_INT(rd_i32(r), 0);
	CHECK_EQ_INT(rd_i64(r), 42);
	(void)rd_str(r);
	(void)rd_i16(r);
	CHECK_EQ_INT(rd_i32(r), 1);
	CHECK_EQ_INT(rd_i64(r), 43);
	(void)rd_str(r);
	(void)rd_i16(r);
	CHECK_EQ_INT(rd_i16(r), 0);
	CHECK(!r->err && rd_left(r) == 0);
	call_end(&c);

	/* Members of a live group must commit in the current generation. */
	struct call cj;
	char a[128], asg[16];
	join_v5(&cj, "live", "MA", a, sizeof(a));
	tick(200);
	REQUIRE(call_poll(&cj, false) == KH_DONE);
	call_end(&cj);
	CHECK_EQ_INT(commit1(2, "live", 1, a, "orders", 0, 5, ""), KERR_REBALANCE_IN_PROGRESS);
	sync_body(&b, 0, "live", 1, a, 0, NULL, NULL);
	call_start(&cj, kh_sync_group, 14, 0, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(parse_sync(&cj, 0, asg, sizeof(asg)), 0);
	call_end(&cj);
	CHECK_EQ_INT(commit1(2, "live", 1, a, "orders", 0, 5, ""), 0);
	CHECK_EQ_INT(commit1(2, "live", 2, a, "orders", 0, 6, ""), KERR_ILLEGAL_GENERATION);
	CHECK_EQ_INT(commit1(2, "live", 1, "x", "orders", 0, 6, ""), KERR_UNKNOWN_MEMBER_ID);
	CHECK_EQ_INT(commit1(2, "live", -1, "", "orders", 0, 6, ""), KERR_UNKNOWN_MEMBER_ID);
	CHECK_EQ_INT(fetch1(2, "live", "orders", 0, meta, sizeof(meta), &ep), 5);

	/* DeleteGroups refuses groups with members, deletes empty ones. */
	wbuf_init(&b, 0, 0);
	wbuf_i32(&b, 3);
	w_str(&b, "live");
	w_str(&b, "sc");
	w_str(&b, "missing");
	call_start(&c, kh_delete_groups, 42, 1, &b);
	wbuf_destroy(&b);
	r = &c.resp;
	CHECK_EQ_INT(rd_i32(r), 0);
	CHECK_EQ_INT(rd_i32(r), 3);
	CHECK(slice_eq(rd_str(r), "live"));
	CHECK_EQ_INT(rd_i16(r), KERR_NON_EMPTY_GROUP);
	CHECK(slice_eq(rd_str(r), "sc"));
	CHECK_EQ_INT(rd_i16(r), 0);
	CHECK(slice_eq(rd_str(r), "missing"));
	CHECK_EQ_INT(rd_i16(r), KERR_GROUP_ID_NOT_FOUND);
	CHECK(!r->err && rd_left(r) == 0);
	call_end(&c);
	CHECK_EQ_INT(fetch1(5, "sc", "orders", 0, meta, sizeof(meta), &ep), -1);

	/* A deleted topic's offsets go. */
	kgroup_topic_deleted("orders");
	CHECK_EQ_INT(fetch1(5, "live", "orders", 0, meta, sizeof(meta), &ep), -1);
	teardown();
}

TEST(group_list_describe_find)
{
	setup(NULL);
	struct call c;
	char a[128], asg[16];
	join_v5(&c, "dg", "MA", a, sizeof(a));
	tick(200);
	REQUIRE(call_poll(&c, false) == KH_DONE);
	call_end(&c);
	struct wbuf b;
	const char *ids[1] = { a }, *as[1] = { "ASG" };
	sync_body(&b, 1, "dg", 1, a, 1, ids, as);
	call_start(&c, kh_sync_group, 14, 1, &b);
	wbuf_destroy(&b);
	CHECK_EQ_INT(parse_sync(&c, 1, asg, sizeof(asg)), 0);
	call_end(&c);
	CHECK_EQ_INT(commit1(2, "simple", -1, "", "audit", 0, 1, ""), 0);

	wbuf_init(&b, 0, 0);
	call_start(&c, kh_list_groups, 16, 1, &b);
	struct rd *r = &c.resp;
	CHECK_EQ_INT(rd_i32(r), 0);
	CHECK_EQ_INT(rd_i16(r), 0);
	int32_t n = rd_i32(r);
	CHECK_EQ_INT(n, 2);
	int seen = 0;
	for (int32_t i = 0; i < n; i++) {
		struct slice g = rd_str(r), pt = rd_str(r);
		if (slice_eq(g, "dg") && slice_eq(pt, "consumer"))
			seen |= 1;
		if (slice_eq(g, "simple") && slice_eq(pt, ""))
			seen |= 2;
	}
	CHECK_EQ_INT(seen, 3);
	CHECK(!r->err && rd_left(r) == 0);
	call_end(&c);

	wbuf_reset(&b);
	wbuf_i32(&b, 2);
	w_str(&b, "dg");
	w_str(&b, "nope");
	wbuf_i8(&b, 1);
	call_start(&c, kh_describe_groups, 15, 4, &b);
	wbuf_destroy(&b);
	r = &c.resp;
	CHECK_EQ_INT(rd_i32(r), 0);
	CHECK_EQ_INT(rd_i32(r), 2);
	CHECK_EQ_INT(rd_i16(r), 0);
	CHECK(slice_eq(rd_str(r), "dg"));
	CHECK(slice_eq(rd_str(r), "Stable"));
	CHECK(slice_eq(rd_str(r), "consumer"));
	CHECK(slice_eq(rd_str(r), "range"));
	CHECK_EQ_INT(rd_i32(r), 1);
	CHECK(slice_eq(rd_str(r), a));
	CHECK_EQ_INT(rd_str(r).len, -1);
	CHECK(slice_eq(rd_str(r), "cli"));
	(void)rd_str(r);
	struct slice md = rd_kbytes(r), am = rd_kbytes(r);
	CHECK(md.len == 2 && memcmp(md.p, "MA", 2) == 0);
	CHECK(am.len == 3 && memcmp(am.p, "ASG", 3) == 0);
	CHECK(rd_i32(r) != INT32_MIN);
	CHECK_EQ_INT(rd_i16(r), 0);
	CHECK(slice_eq(rd_str(r), "nope"));
	CHECK(slice_eq(rd_str(r), "Dead"));
	(void)rd_str(r);
	(void)rd_str(r);
	CHECK_EQ_INT(rd_i32(r), 0);
	(void)rd_i32(r);
	CHECK(!r->err && rd_left(r) == 0);
	call_end(&c);

	/* FindCoordinator v0 and v2 answer this broker (when the broker conf
	 * is there; with the test stub it is not). */
	for (int v = 0; v <= 2; v += 2) {
		wbuf_init(&b, 0, 0);
		w_str(&b, "dg");
		if (v >= 1)
			wbuf_i8(&b, 0);
		call_start(&c, kh_find_coordinator, 10, (int16_t)v, &b);
		wbuf_destroy(&b);
		r = &c.resp;
		if (v >= 1)
			CHECK_EQ_INT(rd_i32(r), 0);
		int16_t err = rd_i16(r);
		if (v >= 1)
			(void)rd_str(r);
		int32_t node = rd_i32(r);
		struct slice host = rd_str(r);
		int32_t port = rd_i32(r);
		CHECK(!r->err && rd_left(r) == 0);
		const struct kbroker_conf *conf = kbroker_conf();
		if (conf) {
			CHECK_EQ_INT(err, 0);
			CHECK_EQ_INT(node, conf->node_id);
			CHECK(host.len > 0);
			CHECK_EQ_INT(port, conf->kafka_port);
		} else {
			CHECK_EQ_INT(err, KERR_COORDINATOR_NOT_AVAILABLE);
		}
		call_end(&c);
	}
	teardown();
}

static int log_size(const char *dir)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/groups/offsets.log", dir);
	struct stat st;
	return stat(p, &st) == 0 ? (int)st.st_size : -1;
}

static void append_raw(const char *dir, const void *bytes, size_t n)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/groups/offsets.log", dir);
	int fd = open(p, O_WRONLY | O_APPEND);
	REQUIRE(fd >= 0);
	CHECK_EQ_INT(write(fd, bytes, n), (ssize_t)n);
	close(fd);
}

TEST(group_offsets_survive_restart_and_torn_tail)
{
	const char *dir = test_tmpdir();
	char meta[64];
	int32_t ep;
	setup(dir);
	CHECK_EQ_INT(commit1(6, "pg", -1, "", "orders", 0, 100, "hello"), 0);
	CHECK_EQ_INT(commit1(6, "pg", -1, "", "orders", 0, 101, "hello2"), 0);
	CHECK_EQ_INT(commit1(6, "pg", -1, "", "orders", 3, 7, ""), 0);
	CHECK_EQ_INT(commit1(6, "gone", -1, "", "audit", 0, 7, ""), 0);
	struct wbuf b;
	struct call c;
	wbuf_init(&b, 0, 0);
	wbuf_i32(&b, 1);
	w_str(&b, "gone");
	call_start(&c, kh_delete_groups, 42, 0, &b);
	wbuf_destroy(&b);
	call_end(&c);
	int size = log_size(dir);
	CHECK(size > 0);
	teardown();

	setup(dir);
	CHECK_EQ_INT(fetch1(5, "pg", "orders", 0, meta, sizeof(meta), &ep), 101);
	CHECK(strcmp(meta, "hello2") == 0);
	CHECK_EQ_INT(ep, 7);
	CHECK_EQ_INT(fetch1(5, "pg", "orders", 3, meta, sizeof(meta), &ep), 7);
	CHECK_EQ_INT(fetch1(5, "gone", "audit", 0, meta, sizeof(meta), &ep), -1);
	teardown();

	/* A torn record (a prefix of a real one) and then garbage. */
	append_raw(dir, "\x00\x00\x00\x40\x12\x34", 6);
	CHECK_EQ_INT(log_size(dir), size + 6);
	setup(dir);
	CHECK_EQ_INT(log_size(dir), size);
	CHECK_EQ_INT(fetch1(5, "pg", "orders", 0, meta, sizeof(meta), &ep), 101);
	CHECK_EQ_INT(commit1(6, "pg", -1, "", "orders", 1, 55, "after"), 0);
	teardown();
	/* A whole record with a bad CRC is cut as well. */
	uint8_t rec[16] = { 0, 0, 0, 8, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8 };
	append_raw(dir, rec, sizeof(rec));
	setup(dir);
	CHECK_EQ_INT(fetch1(5, "pg", "orders", 1, meta, sizeof(meta), &ep), 55);
	CHECK(strcmp(meta, "after") == 0);
	CHECK_EQ_INT(fetch1(5, "pg", "orders", 0, meta, sizeof(meta), &ep), 101);
	/* A deleted topic stays deleted after a restart. */
	kgroup_topic_deleted("orders");
	teardown();
	setup(dir);
	CHECK_EQ_INT(fetch1(5, "pg", "orders", 1, meta, sizeof(meta), &ep), -1);
	teardown();
}

TEST(group_offsets_log_compacts)
{
	const char *dir = test_tmpdir();
	char meta[64];
	int32_t ep;
	setup(dir);
	/* ~2 MiB of overwrites of one offset: compacted on the next load. */
	char m[1000];
	memset(m, 'q', sizeof(m) - 1);
	m[sizeof(m) - 1] = '\0';
	for (int i = 0; i < 2200; i++)
		CHECK_EQ_INT(commit1(2, "cg", -1, "", "audit", 0, i, m), 0);
	CHECK(log_size(dir) > (1 << 20));
	teardown();
	setup(dir);
	CHECK(log_size(dir) < 2000);
	CHECK_EQ_INT(fetch1(2, "cg", "audit", 0, meta, sizeof(meta), &ep), 2199);
	CHECK_EQ_INT(commit1(2, "cg", -1, "", "audit", 0, 5000, ""), 0);
	teardown();
	setup(dir);
	CHECK_EQ_INT(fetch1(2, "cg", "audit", 0, meta, sizeof(meta), &ep), 5000);
	teardown();
}

/* Every proper prefix of a valid request must be rejected as malformed. */
static void check_truncations(handler_fn h, int16_t key, int16_t ver, const struct wbuf *body)
{
	for (size_t n = 0; n < body->len; n++) {
		struct wbuf t;
		wbuf_init(&t, 0, 0);
		wbuf_put(&t, body->p, n);
		struct call c;
		call_start(&c, h, key, ver, &t);
		if (c.rc != KH_CLOSE) {
			char msg[96];
			snprintf(msg, sizeof(msg), "api %d v%d prefix %zu of %zu closes", key, ver, n,
				 body->len);
			test_fail(__FILE__, __LINE__, msg);
		}
		call_end(&c);
		wbuf_destroy(&t);
	}
}

TEST(group_truncated_requests_close)
{
	setup(NULL);
	struct wbuf b;
	for (int v = 0; v <= 5; v++) {
		join_body(&b, v, "tg", "m", "META", "roundrobin");
		check_truncations(kh_join_group, 11, (int16_t)v, &b);
		wbuf_destroy(&b);
	}
	const char *ids[2] = { "m1", "m2" }, *as[2] = { "x", "yy" };
	for (int v = 0; v <= 3; v++) {
		sync_body(&b, v, "tg", 1, "m1", 2, ids, as);
		check_truncations(kh_sync_group, 14, (int16_t)v, &b);
		wbuf_destroy(&b);
		wbuf_init(&b, 0, 0);
		w_str(&b, "tg");
		wbuf_i32(&b, 1);
		w_str(&b, "m1");
		if (v >= 3)
			w_str(&b, "inst");
		check_truncations(kh_heartbeat, 12, (int16_t)v, &b);
		wbuf_destroy(&b);
		wbuf_init(&b, 0, 0);
		w_str(&b, "tg");
		if (v >= 3) {
			wbuf_i32(&b, 2);
			w_str(&b, "m1");
			w_str(&b, NULL);
			w_str(&b, "m2");
			w_str(&b, "i2");
		} else {
			w_str(&b, "m1");
		}
		check_truncations(kh_leave_group, 13, (int16_t)v, &b);
		wbuf_destroy(&b);
	}
	for (int v = 0; v <= 7; v++) {
		commit_body(&b, v, "tg", -1, "", "orders", 1, 9, "md");
		check_truncations(kh_offset_commit, 8, (int16_t)v, &b);
		wbuf_destroy(&b);
	}
	for (int v = 0; v <= 5; v++) {
		wbuf_init(&b, 0, 0);
		w_str(&b, "tg");
		wbuf_i32(&b, 2);
		w_str(&b, "orders");
		wbuf_i32(&b, 2);
		wbuf_i32(&b, 0);
		wbuf_i32(&b, 1);
		w_str(&b, "audit");
		wbuf_i32(&b, 0);
		check_truncations(kh_offset_fetch, 9, (int16_t)v, &b);
		wbuf_destroy(&b);
	}
	for (int v = 0; v <= 2; v++) {
		wbuf_init(&b, 0, 0);
		w_str(&b, "tg");
		if (v >= 1)
			wbuf_i8(&b, 0);
		check_truncations(kh_find_coordinator, 10, (int16_t)v, &b);
		wbuf_destroy(&b);
	}
	for (int v = 0; v <= 4; v++) {
		wbuf_init(&b, 0, 0);
		wbuf_i32(&b, 2);
		w_str(&b, "tg");
		w_str(&b, "other");
		if (v >= 3)
			wbuf_i8(&b, 1);
		check_truncations(kh_describe_groups, 15, (int16_t)v, &b);
		wbuf_destroy(&b);
	}
	for (int v = 0; v <= 1; v++) {
		wbuf_init(&b, 0, 0);
		wbuf_i32(&b, 2);
		w_str(&b, "tg");
		w_str(&b, "other");
		check_truncations(kh_delete_groups, 42, (int16_t)v, &b);
		wbuf_destroy(&b);
	}
	/* Absurd counts are refused before anything is allocated. */
	wbuf_init(&b, 0, 0);
	w_str(&b, "tg");
	wbuf_i32(&b, INT32_MAX);
	struct call c;
	call_start(&c, kh_offset_fetch, 9, 3, &b);
	CHECK_EQ_INT(c.rc, KH_CLOSE);
	call_end(&c);
	wbuf_destroy(&b);
	teardown();
}
