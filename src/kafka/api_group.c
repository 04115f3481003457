/* api_group.c - wire side of the group APIs: FindCoordinator, JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
 * DescribeGroups, DeleteGroups. All versions served are non-flexible.
 *
 * Each handler decodes its whole request through the checked reader, checks
 * r->err once (KH_CLOSE on malformed input), calls the coordinator
 * (kafka/group.h) and encodes the answer into req->out. JoinGroup and
 * SyncGroup may have to wait for other members: they keep the coordinator's
 * waiter in req->pstate and return KH_PENDING; their poll function runs on
 * the connection's loop after kafka_kick() and encodes the answer once the
 * coordinator has stored it in the waiter. */
#include "core/platform.h"

#include "core/util.h"
#include "kafka/broker.h"
#include "kafka/errors.h"
#include "kafka/group.h"
#include "kafka/handlers.h"

/* Request array caps: far above what clients send, low enough that a
 * hostile count cannot make us allocate much before the bytes run out. */
enum {
	MAX_PROTOCOLS = 256,
	MAX_ASSIGNMENTS = KGROUP_MAX_MEMBERS * 2,
	MAX_TOPICS = 10000,
	MAX_PARTITIONS = 100000,  /* per request, all topics together */
	MAX_GROUPS_REQ = 10000,
	MAX_LEAVING = KGROUP_MAX_MEMBERS * 2,
	/* Safety net past the coordinator's own timers for a pending
	 * JoinGroup/SyncGroup. */
	PENDING_SLACK_MS = 5000,
};

static int32_t default_topic_partitions(const char *name, size_t len)
{
	struct ktopic *t = kbroker_topic(name, len);
	if (!t)
		return -1;
	int32_t n = t->npartitions;
	ktopic_unref(t);
	return n;
}

static int32_t (*g_topic_partitions)(const char *, size_t) = default_topic_partitions;

void kgroup_set_topic_lookup(int32_t (*npartitions)(const char *name, size_t len))
{
	g_topic_partitions = npartitions ? npartitions : default_topic_partitions;
}

int32_t kgroup_topic_partitions(const char *name, size_t len)
{
	return g_topic_partitions(name, len);
}

/* An i32 array count where -1 means null (*isnull); otherwise as rd_array. */
static int32_t rd_array_nullable(struct rd *r, int32_t max, bool *isnull)
{
	*isnull = false;
	if (rd_left(r) >= 4 && rd_be32(r->p) == UINT32_MAX) {
		r->p += 4;
		*isnull = true;
		return 0;
	}
	return rd_array(r, max);
}

static const struct slice k_empty = { (const uint8_t *)"", 0 };

static struct slice nonnull(struct slice s)
{
	return s.len < 0 ? k_empty : s;
}

static void put_slice_str(struct wbuf *w, struct slice s)
{
	if (s.len < 0)
		wbuf_i16(w, -1);
	else
		wbuf_strn(w, s.p, s.len);
}

/* ---- FindCoordinator (10) v0-2 ---- */

int kh_find_coordinator(struct kreq *req, struct rd *r)
{
	int v = req->api_version;
	(void)rd_str(r); /* key: every group and transaction lives here */
	int8_t key_type = v >= 1 ? rd_i8(r) : 0;
	if (r->err)
		return KH_CLOSE;
	const struct kbroker_conf *c = kbroker_conf();
	int16_t err = KERR_NONE;
	if (key_type != 0 && key_type != 1)
		err = KERR_INVALID_REQUEST;
	else if (!c)
		err = KERR_COORDINATOR_NOT_AVAILABLE;
	struct wbuf *w = &req->out;
	if (v >= 1)
		wbuf_i32(w, 0);
	wbuf_i16(w, err);
	if (v >= 1)
		wbuf_str(w, err ? "coordinator not available" : NULL);
	if (err) {
		wbuf_i32(w, -1);
		wbuf_str(w, "");
		wbuf_i32(w, -1);
	} else {
		wbuf_i32(w, c->node_id);
		wbuf_str(w, c->kafka_host[0] ? c->kafka_host : "localhost");
		wbuf_i32(w, c->kafka_port);
	}
	return KH_DONE;
}

/* ---- JoinGroup (11) v0-5 ---- */

static void put_join(struct wbuf *w, int v, const struct kgroup_result *res)
{
	if (v >= 2)
		wbuf_i32(w, 0);
	wbuf_i16(w, res->error);
	wbuf_i32(w, res->generation_id);
	wbuf_str(w, res->protocol_name ? res->protocol_name : "");
	wbuf_str(w, res->leader ? res->leader : "");
	wbuf_str(w, res->member_id ? res->member_id : "");
	wbuf_i32(w, res->nmembers);
	for (int32_t i = 0; i < res->nmembers; i++) {
		const struct kgroup_member_info *m = &res->members[i];
		wbuf_str(w, m->member_id);
		if (v >= 5)
			wbuf_str(w, m->group_instance_id);
		wbuf_kbytes(w, m->metadata, m->metadata_len);
	}
}

static void put_sync(struct wbuf *w, int v, const struct kgroup_result *res)
{
	if (v >= 1)
		wbuf_i32(w, 0);
	wbuf_i16(w, res->error);
	wbuf_kbytes(w, res->assignment, res->assignment_len);
}

/* Shared poll for JoinGroup and SyncGroup: answer once the waiter is done,
 * or with REBALANCE_IN_PROGRESS (the client rejoins) past the deadline. */
static int waiter_poll(struct kreq *req, bool expired)
{
	struct kgroup_result res;
	if (!kgroup_waiter_take(req->pstate, &res)) {
		if (!expired)
			return KH_PENDING;
		kgroup_waiter_cancel(req->pstate);
		memset(&res, 0, sizeof(res));
		res.error = KERR_REBALANCE_IN_PROGRESS;
		res.generation_id = -1;
	}
	req->pstate = NULL;
	if (req->api_key == 11)
		put_join(&req->out, req->api_version, &res);
	else
		put_sync(&req->out, req->api_version, &res);
	kgroup_result_destroy(&res);
	return KH_DONE;
}

static void waiter_cancel(struct kreq *req)
{
	kgroup_waiter_cancel(req->pstate);
	req->pstate = NULL;
}

static int wait_or_answer(struct kreq *req, struct kgroup_waiter *w, int64_t timeout_ms)
{
	req->pstate = w;
	if (waiter_poll(req, false) == KH_DONE)
		return KH_DONE;
	req->poll = waiter_poll;
	req->cancel = waiter_cancel;
	req->deadline_ms = mono_ms() + timeout_ms + PENDING_SLACK_MS;
	return KH_PENDING;
}

int kh_join_group(struct kreq *req, struct rd *r)
{
	int v = req->api_version;
	struct kgroup_join_args a = { 0 };
	char host[72];
	snprintf(host, sizeof(host), "/%s", req->conn ? kconn_peer_host(req->conn) : "");
	a.client_host = host;
	a.group_id = rd_str(r);
	a.session_timeout_ms = rd_i32(r);
	a.rebalance_timeout_ms = v >= 1 ? rd_i32(r) : a.session_timeout_ms;
	a.member_id = rd_str(r);
	a.group_instance_id = v >= 5 ? rd_str(r) : (struct slice){ NULL, -1 };
	a.protocol_type = rd_str(r);
	int32_t n = rd_array(r, MAX_PROTOCOLS);
	struct kgroup_protocol *p = xcalloc(n ? (size_t)n : 1, sizeof(*p));
	for (int32_t i = 0; i < n && !r->err; i++) {
		p[i].name = nonnull(rd_str(r));
		p[i].metadata = nonnull(rd_kbytes(r));
	}
	if (r->err) {
		free(p);
		return KH_CLOSE;
	}
	a.member_id = nonnull(a.member_id);
	a.protocol_type = nonnull(a.protocol_type);
	a.client_id = nonnull(req->client_id);
	a.nprotocols = n;
	a.protocols = p;
	a.require_known_member_id = v >= 4;
	if (a.rebalance_timeout_ms < 0)
		a.rebalance_timeout_ms = 0;
	struct kgroup_waiter *w = kgroup_join(&a);
	free(p);
	return wait_or_answer(req, w, a.rebalance_timeout_ms);
}

/* ---- SyncGroup (14) v0-3 ---- */

int kh_sync_group(struct kreq *req, struct rd *r)
{
	int v = req->api_version;
	struct slice group = rd_str(r);
	int32_t generation = rd_i32(r);
	struct slice member = rd_str(r);
	if (v >= 3)
		(void)rd_str(r); /* group_instance_id */
	int32_t n = rd_array(r, MAX_ASSIGNMENTS);
	struct kgroup_assignment *as = xcalloc(n ? (size_t)n : 1, sizeof(*as));
	for (int32_t i = 0; i < n && !r->err; i++) {
		as[i].member_id = nonnull(rd_str(r));
		as[i].assignment = nonnull(rd_kbytes(r));
	}
	if (r->err) {
		free(as);
		return KH_CLOSE;
	}
	struct kgroup_waiter *w = kgroup_sync(nonnull(group), generation, nonnull(member), n, as);
	free(as);
	/* A follower waits for the leader, who has the rebalance timeout to
	 * compute the assignment; its session timeout bounds that in practice. */
	return wait_or_answer(req, w, 5 * 60 * 1000);
}

/* ---- Heartbeat (12) v0-3 ---- */

int kh_heartbeat(struct kreq *req, struct rd *r)
{
	int v = req->api_version;
	struct slice group = rd_str(r);
	int32_t generation = rd_i32(r);
	struct slice member = rd_str(r);
	if (v >= 3)
		(void)rd_str(r); /* group_instance_id */
	if (r->err)
		return KH_CLOSE;
	int16_t err = kgroup_heartbeat(nonnull(group), generation, nonnull(member));
	if (v >= 1)
		wbuf_i32(&req->out, 0);
	wbuf_i16(&req->out, err);
	return KH_DONE;
}

/* ---- LeaveGroup (13) v0-3 ---- */

struct leaving {
	struct slice member_id, instance_id;
	int16_t error;
};

int kh_leave_group(struct kreq *req, struct rd *r)
{
	int v = req->api_version;
	struct slice group = rd_str(r);
	if (v < 3) {
		struct slice member = rd_str(r);
		if (r->err)
			return KH_CLOSE;
		int16_t err = kgroup_leave(nonnull(group), nonnull(member), (struct slice){ NULL, -1 });
		if (v >= 1)
			wbuf_i32(&req->out, 0);
		wbuf_i16(&req->out, err);
		return KH_DONE;
	}
	int32_t n = rd_array(r, MAX_LEAVING);
	struct leaving *l = xcalloc(n ? (size_t)n : 1, sizeof(*l));
	for (int32_t i = 0; i < n && !r->err; i++) {
		l[i].member_id = rd_str(r);
		l[i].instance_id = rd_str(r);
	}
	if (r->err) {
		free(l);
		return KH_CLOSE;
	}
	for (int32_t i = 0; i < n; i++)
		l[i].error = kgroup_leave(nonnull(group), nonnull(l[i].member_id), l[i].instance_id);
	struct wbuf *w = &req->out;
	wbuf_i32(w, 0);
	wbuf_i16(w, KERR_NONE);
	wbuf_i32(w, n);
	for (int32_t i = 0; i < n; i++) {
		put_slice_str(w, nonnull(l[i].member_id));
		put_slice_str(w, l[i].instance_id);
		wbuf_i16(w, l[i].error);
	}
	free(l);
	return KH_DONE;
}

/* ---- OffsetCommit (8) v0-7 ---- */

struct topic_span {
	struct slice name;
	int32_t first, n;
};

int kh_offset_commit(struct kreq *req, struct rd *r)
{
	int v = req->api_version;
	struct slice group = rd_str(r);
	int32_t generation = -1;
	struct slice member = k_empty;
	if (v >= 1) {
		generation = rd_i32(r);
		member = rd_str(r);
	}
	if (v >= 7)
		(void)rd_str(r); /* group_instance_id */
	if (v >= 2 && v <= 4)
		(void)rd_i64(r); /* retention_time_ms: the broker's setting rules */
	int32_t nt = rd_array(r, MAX_TOPICS);
	struct topic_span *ts = xcalloc(nt ? (size_t)nt : 1, sizeof(*ts));
	struct koffsets_commit *c = NULL;
	int32_t nc = 0, capc = 0;
	for (int32_t t = 0; t < nt && !r->err; t++) {
		ts[t].name = rd_str(r);
		int32_t np = rd_array(r, MAX_PARTITIONS);
		if (np > MAX_PARTITIONS - nc)
			rd_fail(r);
		if (r->err)
			break;
		if (nc + np > capc) {
			capc = SILT_MAX(nc + np, capc * 2);
			c = xrealloc(c, (size_t)capc * sizeof(*c));
		}
		ts[t].first = nc;
		ts[t].n = np;
		for (int32_t i = 0; i < np && !r->err; i++, nc++) {
			struct koffsets_commit *e = &c[nc];
			memset(e, 0, sizeof(*e));
			e->topic = nonnull(ts[t].name);
			e->partition = rd_i32(r);
			e->offset = rd_i64(r);
			e->leader_epoch = v >= 6 ? rd_i32(r) : -1;
			if (v == 1)
				(void)rd_i64(r); /* commit_timestamp */
			e->metadata = nonnull(rd_str(r));
		}
	}
	if (r->err) {
		free(ts);
		free(c);
		return KH_CLOSE;
	}
	for (int32_t t = 0; t < nt; t++) {
		struct slice name = nonnull(ts[t].name);
		int32_t parts = name.len > 0 ? kgroup_topic_partitions((const char *)name.p, (size_t)name.len) : -1;
		for (int32_t i = ts[t].first; i < ts[t].first + ts[t].n; i++)
			if (c[i].partition < 0 || c[i].partition >= parts)
				c[i].error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
	}
	kgroup_commit_offsets(nonnull(group), generation, nonnull(member), c, nc);
	struct wbuf *w = &req->out;
	if (v >= 3)
		wbuf_i32(w, 0);
	wbuf_i32(w, nt);
	for (int32_t t = 0; t < nt; t++) {
		put_slice_str(w, nonnull(ts[t].name));
		wbuf_i32(w, ts[t].n);
		for (int32_t i = ts[t].first; i < ts[t].first + ts[t].n; i++) {
			wbuf_i32(w, c[i].partition);
			wbuf_i16(w, c[i].error);
		}
	}
	free(ts);
	free(c);
	return KH_DONE;
}

/* ---- OffsetFetch (9) v0-5 ---- */

static void put_fetch_partition(struct wbuf *w, int v, const struct koffsets_offset *o)
{
	wbuf_i32(w, o->partition);
	wbuf_i64(w, o->offset);
	if (v >= 5)
		wbuf_i32(w, o->leader_epoch);
	wbuf_strn(w, o->metadata, o->metadata_len);
	wbuf_i16(w, KERR_NONE);
}

int kh_offset_fetch(struct kreq *req, struct rd *r)
{
	int v = req->api_version;
	struct slice group = nonnull(rd_str(r));
	bool all = false;
	int32_t nt = rd_array_nullable(r, MAX_TOPICS, &all);
	if (all && v < 2)
		rd_fail(r); /* null topics arrived in v2 */
	struct topic_span *ts = xcalloc(nt ? (size_t)nt : 1, sizeof(*ts));
	struct koffsets_offset *o = NULL;
	int32_t no = 0, capo = 0;
	for (int32_t t = 0; t < nt && !r->err; t++) {
		ts[t].name = nonnull(rd_str(r));
		int32_t np = rd_array(r, MAX_PARTITIONS);
		if (np > MAX_PARTITIONS - no)
			rd_fail(r);
		if (r->err)
			break;
		if (no + np > capo) {
			capo = SILT_MAX(no + np, capo * 2);
			o = xrealloc(o, (size_t)capo * sizeof(*o));
		}
		ts[t].first = no;
		ts[t].n = np;
		for (int32_t i = 0; i < np; i++, no++) {
			memset(&o[no], 0, sizeof(o[no]));
			o[no].topic = ts[t].name;
			o[no].partition = rd_i32(r);
		}
	}
	if (r->err) {
		free(ts);
		free(o);
		return KH_CLOSE;
	}
	struct wbuf *w = &req->out;
	if (v >= 3)
		wbuf_i32(w, 0);
	if (all) {
		free(ts);
		int32_t n;
		o = kgroup_fetch_all_offsets(group, &n);
		size_t count_at = wbuf_i32(w, 0);
		int32_t ntopics = 0;
		for (int32_t i = 0; i < n;) {
			int32_t j = i;
			while (j < n && o[j].topic.len == o[i].topic.len &&
			       memcmp(o[j].topic.p, o[i].topic.p, (size_t)o[i].topic.len) == 0)
				j++;
			wbuf_strn(w, o[i].topic.p, o[i].topic.len);
			wbuf_i32(w, j - i);
			for (int32_t k = i; k < j; k++)
				put_fetch_partition(w, v, &o[k]);
			ntopics++;
			i = j;
		}
		wbuf_patch_i32(w, count_at, ntopics);
		koffsets_offsets_free(o, n, true);
	} else {
		kgroup_fetch_offsets(group, o, no);
		wbuf_i32(w, nt);
		for (int32_t t = 0; t < nt; t++) {
			put_slice_str(w, ts[t].name);
			wbuf_i32(w, ts[t].n);
			for (int32_t i = ts[t].first; i < ts[t].first + ts[t].n; i++)
				put_fetch_partition(w, v, &o[i]);
		}
		free(ts);
		koffsets_offsets_free(o, no, false);
	}
	if (v >= 2)
		wbuf_i16(w, KERR_NONE);
	return KH_DONE;
}

/* ---- ListGroups (16) v0-2 ---- */

int kh_list_groups(struct kreq *req, struct rd *r)
{
	(void)r; /* v0-2 requests have no body */
	int32_t n;
	struct kgroup_listing *l = kgroup_list(&n);
	struct wbuf *w = &req->out;
	if (req->api_version >= 1)
		wbuf_i32(w, 0);
	wbuf_i16(w, KERR_NONE);
	wbuf_i32(w, n);
	for (int32_t i = 0; i < n; i++) {
		wbuf_str(w, l[i].group_id);
		wbuf_str(w, l[i].protocol_type);
	}
	kgroup_list_free(l, n);
	return KH_DONE;
}

/* ---- DescribeGroups (15) v0-4 ---- */

/* Kafka's AclOperation codes a group can be asked about: READ(3),
 * DELETE(6), DESCRIBE(8). Without ACLs everything is allowed. */
#define GROUP_AUTHORIZED_OPS ((1 << 3) | (1 << 6) | (1 << 8))

int kh_describe_groups(struct kreq *req, struct rd *r)
{
	int v = req->api_version;
	int32_t n = rd_array(r, MAX_GROUPS_REQ);
	struct slice *ids = xcalloc(n ? (size_t)n : 1, sizeof(*ids));
	for (int32_t i = 0; i < n && !r->err; i++)
		ids[i] = nonnull(rd_str(r));
	bool want_ops = v >= 3 ? rd_i8(r) != 0 : false;
	if (r->err) {
		free(ids);
		return KH_CLOSE;
	}
	struct wbuf *w = &req->out;
	if (v >= 1)
		wbuf_i32(w, 0);
	wbuf_i32(w, n);
	for (int32_t i = 0; i < n; i++) {
		struct kgroup_desc d;
		kgroup_describe(ids[i], &d);
		wbuf_i16(w, d.error);
		wbuf_strn(w, ids[i].p, ids[i].len);
		wbuf_str(w, d.state);
		wbuf_str(w, d.protocol_type);
		wbuf_str(w, d.protocol_data);
		wbuf_i32(w, d.nmembers);
		for (int32_t k = 0; k < d.nmembers; k++) {
			const struct kgroup_member_desc *m = &d.members[k];
			wbuf_str(w, m->member_id);
			if (v >= 4)
				wbuf_str(w, m->group_instance_id);
			wbuf_str(w, m->client_id);
			wbuf_str(w, m->client_host);
			wbuf_kbytes(w, m->metadata, m->metadata_len);
			wbuf_kbytes(w, m->assignment, m->assignment_len);
		}
		if (v >= 3)
			wbuf_i32(w, want_ops ? GROUP_AUTHORIZED_OPS : INT32_MIN);
		kgroup_desc_destroy(&d);
	}
	free(ids);
	return KH_DONE;
}

/* ---- DeleteGroups (42) v0-1 ---- */

int kh_delete_groups(struct kreq *req, struct rd *r)
{
	int32_t n = rd_array(r, MAX_GROUPS_REQ);
	struct slice *ids = xcalloc(n ? (size_t)n : 1, sizeof(*ids));
	for (int32_t i = 0; i < n && !r->err; i++)
		ids[i] = nonnull(rd_str(r));
	if (r->err) {
		free(ids);
		return KH_CLOSE;
	}
	struct wbuf *w = &req->out;
	wbuf_i32(w, 0);
	wbuf_i32(w, n);
	for (int32_t i = 0; i < n; i++) {
		wbuf_strn(w, ids[i].p, ids[i].len);
		wbuf_i16(w, kgroup_delete(ids[i]));
	}
	free(ids);
	return KH_DONE;
}
