/* group.c - consumer group coordinator state machine.
 *
 * The state machine follows Kafka's GroupCoordinator for the classic
 * protocol. A JoinGroup moves a group to PreparingRebalance; the rebalance
 * completes when every known member has rejoined (and no member id handed
 * out with MEMBER_ID_REQUIRED is still outstanding) or when the rebalance
 * deadline passes, at which point members that did not rejoin are removed.
 * A group that was Empty waits group.initial.rebalance.delay.ms first (and
 * again, up to the rebalance timeout, while new members keep arriving) so
 * consumers that start together land in one generation. Completion bumps
 * the generation, picks the protocol with most first-choice votes, answers
 * every joiner (the leader with the member list) and waits in
 * CompletingRebalance for the leader's SyncGroup, whose assignments answer
 * every member's SyncGroup and make the group Stable.
 *
 * Everything lives under g_mu, including the committed offsets store
 * (kafka/offsets.c), which the coordinator owns and calls only under it: the
 * coordinator decides who may commit (membership and generation) and when
 * offsets expire (groups without members); the store keeps them and their
 * journal. A group exists here while it has members or offsets. Waiters
 * (pending Join/Sync answers) are owned by their requests; a member points
 * at its waiters and the coordinator fills them in and detaches them under
 * g_mu. See group.h. */
#include "core/platform.h"
#include "kafka/group.h"

#include "core/log.h"
#include "core/util.h"
#include "kafka/broker.h"
#include "kafka/errors.h"
#include "kafka/kslice.h"
#include "kafka/kreq.h"
#include "kafka/offsets.h"

#include <assert.h>
#include <pthread.h>
#include <sys/random.h>
#include <unistd.h>

#define SUB "group"

/* Not in errors.h (which lists what the other APIs need). */
enum { KERR_FENCED_INSTANCE_ID = 82 };

struct kproto {
	char *name;
	uint8_t *meta;
	int32_t meta_len;
};

struct kmember {
	char *id;
	char *instance_id; /* NULL unless the client set group.instance.id */
	char *client_id;
	char *client_host;
	int32_t session_timeout_ms;
	int32_t rebalance_timeout_ms;
	int32_t nprotos;
	struct kproto *protos;
	uint8_t *assignment;
	int32_t assignment_len;
	int64_t last_heard;
	bool joined; /* rejoined during the current rebalance */
	bool synced; /* sent SyncGroup in the current generation */
	struct kgroup_waiter *join_w, *sync_w;
};

/* A member id handed out with MEMBER_ID_REQUIRED, not yet used to join. */
struct kpending {
	char *id;
	int64_t expires;
};

struct kgroup {
	struct kgroup *next; /* hash chain */
	char *id;
	enum kgroup_state state;
	char *protocol_type; /* NULL until a member joins */
	char *protocol_name; /* of the current generation */
	int32_t generation;
	struct kmember *leader;
	struct kmember **members;
	int32_t nmembers, capmembers;
	struct kpending *pending;
	int32_t npending, cappending;
	int64_t join_deadline;
	bool initial_delay;   /* rebalance started from Empty: delayed join */
	int64_t initial_end;  /* the delayed join never waits past this */
	bool new_in_delay;    /* a member arrived during the current delay */
	int64_t sync_deadline; /* members not synced by then are removed; 0 = none */
};

enum kwaiter_kind { KW_JOIN, KW_SYNC };

struct kgroup_waiter {
	enum kwaiter_kind kind;
	struct kmember *m; /* while attached to a member */
	bool done;
	struct kgroup_result res;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static struct {
	struct kgroup **buckets;
	uint32_t nbuckets, ngroups;
	uint64_t member_bytes; /* protocol metadata and assignments held */
	struct kgroup_limits lim;
	int64_t (*clock)(void);
	bool kick;
	/* Committed offsets: opened by kgroup_init, or in memory on first use
	 * (store()). */
	struct koffsets *offsets;
	int64_t next_retention; /* wall ms of the next expiry pass */
} G;

static int64_t gnow(void)
{
	return G.clock ? G.clock() : mono_ms();
}

const char *kgroup_state_name(enum kgroup_state s)
{
	switch (s) {
	case KGS_EMPTY:
		return "Empty";
	case KGS_PREPARING_REBALANCE:
		return "PreparingRebalance";
	case KGS_COMPLETING_REBALANCE:
		return "CompletingRebalance";
	case KGS_STABLE:
		return "Stable";
	case KGS_DEAD:
		break;
	}
	return "Dead";
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static char *s_dup_nullable(struct slice s)
{
	return s.len < 0 ? NULL : ks_dup(s);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* "<client_id>-<uuid4>", as Kafka builds member ids. */
static char *new_member_id(struct slice client_id)
{
	uint8_t u[16];
	if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u)) {
		/* getrandom on Linux only fails this way before the pool is
		 * seeded; uniqueness is all we need, so fall back. */
		static uint64_t ctr;
		uint64_t a = (uint64_t)mono_us() ^ ((uint64_t)getpid() << 32), b = ++ctr;
		memcpy(u, &a, 8);
		memcpy(u + 8, &b, 8);
	}
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	size_t cn = SILT_MIN(ks_len(client_id), (size_t)255);
	char *id = xmalloc(cn + 1 + 36 + 1);
	if (cn)
		memcpy(id, client_id.p, cn);
	char *p = id + cn;
	*p++ = '-';
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u[i] >> 4];
		*p++ = hex[u[i] & 15];
	}
	*p = '\0';
	/* A NUL inside the client id would make the id unmatchable; cut it. */
	if (memchr(id, 0, cn))
		memmove(id, id + cn, strlen(id + cn) + 1);
	return id;
}

/* ------------------------------------------------------------------ */
/* Group table                                                         */

static struct kgroup *group_find(struct slice id)
{
	if (!G.nbuckets)
		return NULL;
	uint32_t h = ks_hash(id.p, ks_len(id), 2166136261u);
	for (struct kgroup *g = G.buckets[h % G.nbuckets]; g; g = g->next)
		if (ks_eq(id, g->id))
			return g;
	return NULL;
}

static void table_insert(struct kgroup *g)
{
	uint32_t h = ks_hash(g->id, strlen(g->id), 2166136261u);
	g->next = G.buckets[h % G.nbuckets];
	G.buckets[h % G.nbuckets] = g;
}

static void table_grow(void)
{
	uint32_t old = G.nbuckets;
	struct kgroup **ob = G.buckets;
	G.nbuckets = old ? old * 2 : 64;
	G.buckets = xcalloc(G.nbuckets, sizeof(*G.buckets));
	for (uint32_t i = 0; i < old; i++) {
		struct kgroup *g = ob[i];
		while (g) {
			struct kgroup *n = g->next;
			table_insert(g);
			g = n;
		}
	}
	free(ob);
}

/* NULL when KGROUP_MAX_GROUPS exist. */
static struct kgroup *group_create(struct slice id)
{
	if (G.ngroups >= KGROUP_MAX_GROUPS) {
		log_warn(SUB, "group limit (%d) reached, refusing group %.*s", KGROUP_MAX_GROUPS,
			 (int)SILT_MIN(ks_len(id), (size_t)200), id.len > 0 ? (const char *)id.p : "");
		return NULL;
	}
	if (G.ngroups >= G.nbuckets)
		table_grow();
	struct kgroup *g = xcalloc(1, sizeof(*g));
	g->id = ks_dup(id);
	g->state = KGS_EMPTY;
	table_insert(g);
	G.ngroups++;
	return g;
}

/* The offsets store, created in memory if kgroup_init has not opened one
 * (handlers driven without a server). Under g_mu. */
static struct koffsets *store(void)
{
	if (!G.offsets) {
		(void)koffsets_open(NULL, &G.offsets);
		koffsets_set_sync(G.offsets, G.lim.fsync);
	}
	return G.offsets;
}

/* ------------------------------------------------------------------ */
/* Waiters and results                                                 */

void kgroup_result_destroy(struct kgroup_result *res)
{
	free(res->protocol_name);
	free(res->leader);
	free(res->member_id);
	for (int32_t i = 0; i < res->nmembers; i++) {
		free(res->members[i].member_id);
		free(res->members[i].group_instance_id);
		free(res->members[i].metadata);
	}
	free(res->members);
	free(res->assignment);
	memset(res, 0, sizeof(*res));
}

static void waiter_detach(struct kgroup_waiter *w)
{
	if (!w->m)
		return;
	if (w->m->join_w == w)
		w->m->join_w = NULL;
	if (w->m->sync_w == w)
		w->m->sync_w = NULL;
	w->m = NULL;
}

/* Marks w answered (res already filled in) and wakes the loops. */
static void waiter_done(struct kgroup_waiter *w)
{
	waiter_detach(w);
	w->done = true;
	G.kick = true;
}

/* Answers w with an error; join fields get Kafka's "no generation" values. */
static void waiter_error(struct kgroup_waiter *w, int16_t err, const char *member_id)
{
	kgroup_result_destroy(&w->res);
	w->res.error = err;
	w->res.generation_id = -1;
	w->res.member_id = dup_or_null(member_id);
	waiter_done(w);
}

static void unlock_and_kick(void)
{
	bool kick = G.kick;
	G.kick = false;
	pthread_mutex_unlock(&g_mu);
	if (kick)
		kafka_kick();
}

bool kgroup_waiter_take(struct kgroup_waiter *w, struct kgroup_result *out)
{
	pthread_mutex_lock(&g_mu);
	bool done = w->done;
	if (done) {
		*out = w->res;
		free(w);
	}
	pthread_mutex_unlock(&g_mu);
	return done;
}

void kgroup_waiter_cancel(struct kgroup_waiter *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&g_mu);
	waiter_detach(w);
	kgroup_result_destroy(&w->res);
	free(w);
	pthread_mutex_unlock(&g_mu);
}

/* ------------------------------------------------------------------ */
/* Members                                                             */

static void member_free_protos(struct kmember *m)
{
	for (int32_t i = 0; i < m->nprotos; i++) {
		G.member_bytes -= strlen(m->protos[i].name) + (uint64_t)m->protos[i].meta_len;
		free(m->protos[i].name);
		free(m->protos[i].meta);
	}
	free(m->protos);
	m->protos = NULL;
	m->nprotos = 0;
}

static void member_set_protos(struct kmember *m, const struct kgroup_join_args *a)
{
	member_free_protos(m);
	m->protos = xcalloc((size_t)a->nprotocols, sizeof(*m->protos));
	m->nprotos = a->nprotocols;
	for (int32_t i = 0; i < a->nprotocols; i++) {
		m->protos[i].name = ks_dup(a->protocols[i].name);
		m->protos[i].meta_len = (int32_t)ks_len(a->protocols[i].metadata);
		m->protos[i].meta = ks_bdup(a->protocols[i].metadata.p, m->protos[i].meta_len);
		G.member_bytes += strlen(m->protos[i].name) + (uint64_t)m->protos[i].meta_len;
	}
}

/* Replaces m's assignment (NULL/0 clears it), keeping the byte count. */
static void member_set_assignment(struct kmember *m, const void *p, int32_t len)
{
	G.member_bytes -= (uint64_t)m->assignment_len;
	free(m->assignment);
	m->assignment_len = SILT_MAX(len, 0);
	m->assignment = ks_bdup(p, m->assignment_len);
	G.member_bytes += (uint64_t)m->assignment_len;
}

static bool member_same_protos(const struct kmember *m, const struct kgroup_join_args *a)
{
	if (m->nprotos != a->nprotocols)
		return false;
	for (int32_t i = 0; i < m->nprotos; i++) {
		const struct kgroup_protocol *p = &a->protocols[i];
		if (!ks_eq(p->name, m->protos[i].name) || (int32_t)ks_len(p->metadata) != m->protos[i].meta_len ||
		    (m->protos[i].meta_len && memcmp(p->metadata.p, m->protos[i].meta, (size_t)m->protos[i].meta_len)))
			return false;
	}
	return true;
}

static const struct kproto *member_proto(const struct kmember *m, const char *name)
{
	for (int32_t i = 0; i < m->nprotos; i++)
		if (name && strcmp(m->protos[i].name, name) == 0)
			return &m->protos[i];
	return NULL;
}

static void member_update(struct kmember *m, const struct kgroup_join_args *a, int64_t now)
{
	member_set_protos(m, a);
	m->session_timeout_ms = a->session_timeout_ms;
	m->rebalance_timeout_ms = a->rebalance_timeout_ms;
	free(m->client_id);
	m->client_id = ks_dup(a->client_id);
	m->last_heard = now;
}

static void member_free(struct kmember *m)
{
	if (m->join_w)
		waiter_error(m->join_w, KERR_UNKNOWN_MEMBER_ID, m->id);
	if (m->sync_w)
		waiter_error(m->sync_w, KERR_UNKNOWN_MEMBER_ID, NULL);
	member_free_protos(m);
	member_set_assignment(m, NULL, 0);
	free(m->id);
	free(m->instance_id);
	free(m->client_id);
	free(m->client_host);
	free(m);
}

static int32_t member_index(const struct kgroup *g, struct slice id)
{
	if (ks_len(id) == 0)
		return -1;
	for (int32_t i = 0; i < g->nmembers; i++)
		if (ks_eq(id, g->members[i]->id))
			return i;
	return -1;
}

static int32_t member_index_by_instance(const struct kgroup *g, struct slice inst)
{
	if (ks_len(inst) == 0)
		return -1;
	for (int32_t i = 0; i < g->nmembers; i++)
		if (g->members[i]->instance_id && ks_eq(inst, g->members[i]->instance_id))
			return i;
	return -1;
}

static int32_t pending_index(const struct kgroup *g, struct slice id)
{
	if (ks_len(id) == 0)
		return -1;
	for (int32_t i = 0; i < g->npending; i++)
		if (ks_eq(id, g->pending[i].id))
			return i;
	return -1;
}

static void pending_remove(struct kgroup *g, int32_t i)
{
	free(g->pending[i].id);
	g->pending[i] = g->pending[--g->npending];
}

/* Removes member i without any state transition; its waiters get err. */
static void member_remove_raw(struct kgroup *g, int32_t i)
{
	struct kmember *m = g->members[i];
	if (g->leader == m)
		g->leader = NULL;
	memmove(&g->members[i], &g->members[i + 1], (size_t)(g->nmembers - i - 1) * sizeof(*g->members));
	g->nmembers--;
	member_free(m);
	if (!g->leader && g->nmembers > 0)
		g->leader = g->members[0];
}

/* ------------------------------------------------------------------ */
/* The rebalance                                                        */

static int32_t max_rebalance_timeout(const struct kgroup *g)
{
	int32_t t = 0;
	for (int32_t i = 0; i < g->nmembers; i++)
		t = SILT_MAX(t, g->members[i]->rebalance_timeout_ms);
	return t;
}

static void prepare_rebalance(struct kgroup *g, int64_t now)
{
	if (g->state == KGS_COMPLETING_REBALANCE) {
		/* The assignment being synced is void: tell the members waiting
		 * for it to rejoin. */
		for (int32_t i = 0; i < g->nmembers; i++) {
			struct kmember *m = g->members[i];
			member_set_assignment(m, NULL, 0);
			if (m->sync_w)
				waiter_error(m->sync_w, KERR_REBALANCE_IN_PROGRESS, NULL);
		}
	}
	int32_t rt = max_rebalance_timeout(g);
	if (g->state == KGS_EMPTY) {
		int64_t delay = G.lim.initial_rebalance_delay_ms;
		g->initial_delay = true;
		g->initial_end = now + SILT_MAX(rt, (int64_t)delay);
		g->join_deadline = now + delay;
		g->new_in_delay = false;
	} else {
		g->initial_delay = false;
		g->join_deadline = now + rt;
	}
	for (int32_t i = 0; i < g->nmembers; i++)
		g->members[i]->joined = false;
	g->sync_deadline = 0;
	g->state = KGS_PREPARING_REBALANCE;
	log_debug(SUB, "group %s preparing rebalance (generation %d, %d members)", g->id,
		  g->generation, g->nmembers);
}

/* The protocol most members name first among those all members support;
 * ties go to the one the leader prefers. */
static const char *select_protocol(const struct kgroup *g)
{
	const struct kmember *l = g->leader;
	int32_t nc = 0;
	const char **cand = xcalloc(l->nprotos ? (size_t)l->nprotos : 1, sizeof(*cand));
	int32_t *votes = xcalloc(l->nprotos ? (size_t)l->nprotos : 1, sizeof(*votes));
	for (int32_t c = 0; c < l->nprotos; c++) {
		bool all = true;
		for (int32_t i = 0; i < g->nmembers && all; i++)
			all = member_proto(g->members[i], l->protos[c].name) != NULL;
		if (all)
			cand[nc++] = l->protos[c].name;
	}
	for (int32_t i = 0; i < g->nmembers; i++) {
		const struct kmember *m = g->members[i];
		int32_t vote = -1;
		for (int32_t k = 0; k < m->nprotos && vote < 0; k++)
			for (int32_t c = 0; c < nc && vote < 0; c++)
				if (strcmp(m->protos[k].name, cand[c]) == 0)
					vote = c;
		if (vote >= 0)
			votes[vote]++;
	}
	int32_t best = -1;
	for (int32_t c = 0; c < nc; c++)
		if (best < 0 || votes[c] > votes[best])
			best = c;
	const char *name = best >= 0 ? cand[best] : (l->nprotos ? l->protos[0].name : "");
	free(cand);
	free(votes);
	return name;
}

static void fill_join_result(const struct kgroup *g, const struct kmember *m, struct kgroup_result *res)
{
	kgroup_result_destroy(res);
	res->error = KERR_NONE;
	res->generation_id = g->generation;
	res->protocol_name = xstrdup(g->protocol_name ? g->protocol_name : "");
	res->leader = xstrdup(g->leader ? g->leader->id : "");
	res->member_id = xstrdup(m->id);
	if (m != g->leader)
		return;
	res->members = xcalloc((size_t)g->nmembers, sizeof(*res->members));
	res->nmembers = g->nmembers;
	for (int32_t i = 0; i < g->nmembers; i++) {
		const struct kmember *o = g->members[i];
		const struct kproto *p = member_proto(o, g->protocol_name);
		res->members[i].member_id = xstrdup(o->id);
		res->members[i].group_instance_id = dup_or_null(o->instance_id);
		if (p) {
			res->members[i].metadata = ks_bdup(p->meta, p->meta_len);
			res->members[i].metadata_len = p->meta_len;
		}
	}
}

static void complete_join(struct kgroup *g, int64_t now)
{
	for (int32_t i = g->nmembers - 1; i >= 0; i--) {
		if (!g->members[i]->joined) {
			log_info(SUB, "group %s: removing member %s, which did not rejoin", g->id,
				 g->members[i]->id);
			member_remove_raw(g, i);
		}
	}
	g->generation++;
	g->initial_delay = false;
	free(g->protocol_name);
	g->protocol_name = NULL;
	if (g->nmembers == 0) {
		g->state = KGS_EMPTY;
		log_info(SUB, "group %s is empty (generation %d)", g->id, g->generation);
		return;
	}
	if (!g->leader)
		g->leader = g->members[0];
	g->protocol_name = xstrdup(select_protocol(g));
	g->state = KGS_COMPLETING_REBALANCE;
	/* As Kafka (KAFKA-13124): a member that never syncs cannot hold the
	 * group in CompletingRebalance, nor sit in a Stable generation without
	 * an assignment, past the rebalance timeout. */
	g->sync_deadline = now + SILT_MAX(max_rebalance_timeout(g), 1);
	log_info(SUB, "group %s generation %d: %d members, protocol %s, leader %s", g->id,
		 g->generation, g->nmembers, g->protocol_name, g->leader->id);
	for (int32_t i = 0; i < g->nmembers; i++) {
		struct kmember *m = g->members[i];
		m->joined = false;
		m->synced = false;
		m->last_heard = now;
		if (m->join_w) {
			struct kgroup_waiter *w = m->join_w;
			fill_join_result(g, m, &w->res);
			waiter_done(w);
		}
	}
}

static void try_complete_join(struct kgroup *g, int64_t now)
{
	if (g->state != KGS_PREPARING_REBALANCE)
		return;
	if (g->initial_delay) {
		if (now < g->join_deadline)
			return;
		if (g->new_in_delay && now < g->initial_end) {
			g->new_in_delay = false;
			g->join_deadline = SILT_MIN(now + G.lim.initial_rebalance_delay_ms, g->initial_end);
			if (g->join_deadline > now)
				return;
		}
		complete_join(g, now);
		return;
	}
	bool all = g->npending == 0;
	for (int32_t i = 0; i < g->nmembers && all; i++)
		all = g->members[i]->joined;
	if (all || now >= g->join_deadline)
		complete_join(g, now);
}

/* Removes member i and moves the group on as Kafka does. */
static void member_remove(struct kgroup *g, int32_t i, int64_t now)
{
	member_remove_raw(g, i);
	switch (g->state) {
	case KGS_STABLE:
	case KGS_COMPLETING_REBALANCE:
		prepare_rebalance(g, now);
		try_complete_join(g, now);
		break;
	case KGS_PREPARING_REBALANCE:
		try_complete_join(g, now);
		break;
	default:
		break;
	}
}

static struct kmember *member_add(struct kgroup *g, char *id, const struct kgroup_join_args *a,
				  int64_t now)
{
	struct kmember *m = xcalloc(1, sizeof(*m));
	m->id = id;
	m->instance_id = s_dup_nullable(a->group_instance_id);
	m->client_host = xstrdup(a->client_host ? a->client_host : "");
	member_update(m, a, now);
	if (g->nmembers == g->capmembers) {
		g->capmembers = g->capmembers ? g->capmembers * 2 : 4;
		g->members = xrealloc(g->members, (size_t)g->capmembers * sizeof(*g->members));
	}
	if (g->nmembers == 0) {
		free(g->protocol_type);
		g->protocol_type = ks_dup(a->protocol_type);
	}
	g->members[g->nmembers++] = m;
	if (!g->leader)
		g->leader = m;
	if (g->state == KGS_PREPARING_REBALANCE && g->initial_delay)
		g->new_in_delay = true;
	return m;
}

static void attach_join(struct kmember *m, struct kgroup_waiter *w)
{
	if (m->join_w)
		waiter_error(m->join_w, KERR_REBALANCE_IN_PROGRESS, m->id);
	m->join_w = w;
	w->m = m;
	m->joined = true;
}

/* Does the member's protocol set fit the group (Kafka's supportsProtocols)? */
static bool group_supports(const struct kgroup *g, const struct kgroup_join_args *a)
{
	if (g->nmembers == 0)
		return ks_len(a->protocol_type) > 0 && a->nprotocols > 0;
	if (!g->protocol_type || !ks_eq(a->protocol_type, g->protocol_type))
		return false;
	for (int32_t k = 0; k < a->nprotocols; k++) {
		char *name = ks_dup(a->protocols[k].name);
		bool all = true;
		for (int32_t i = 0; i < g->nmembers && all; i++)
			all = member_proto(g->members[i], name) != NULL;
		free(name);
		if (all)
			return true;
	}
	return false;
}

/* A new or pending member enters: rebalance (or join the one under way). */
static void join_new_member(struct kgroup *g, char *id, const struct kgroup_join_args *a,
			    struct kgroup_waiter *w, int64_t now)
{
	struct kmember *m = member_add(g, id, a, now);
	if (g->state != KGS_PREPARING_REBALANCE)
		prepare_rebalance(g, now);
	attach_join(m, w);
	try_complete_join(g, now);
}

static int16_t join_locked(const struct kgroup_join_args *a, struct kgroup_waiter *w, int64_t now)
{
	if (ks_len(a->group_id) == 0 || ks_has_nul(a->group_id))
		return KERR_INVALID_GROUP_ID;
	if (a->session_timeout_ms < G.lim.min_session_timeout_ms ||
	    a->session_timeout_ms > G.lim.max_session_timeout_ms)
		return KERR_INVALID_SESSION_TIMEOUT;
	int64_t bytes = 0;
	for (int32_t i = 0; i < a->nprotocols; i++)
		bytes += (int64_t)ks_len(a->protocols[i].metadata) + (int64_t)ks_len(a->protocols[i].name);
	if (bytes > KGROUP_MAX_MEMBER_BYTES)
		return KERR_INVALID_REQUEST;
	if (G.member_bytes + (uint64_t)bytes > KGROUP_MAX_TOTAL_BYTES) {
		log_warn(SUB, "member state over %llu bytes, refusing a join",
			 (unsigned long long)KGROUP_MAX_TOTAL_BYTES);
		return KERR_COORDINATOR_NOT_AVAILABLE;
	}

	struct kgroup *g = group_find(a->group_id);
	if (!g) {
		if (ks_len(a->member_id) > 0)
			return KERR_UNKNOWN_MEMBER_ID;
		g = group_create(a->group_id);
		if (!g)
			return KERR_COORDINATOR_NOT_AVAILABLE;
	}
	if (!group_supports(g, a))
		return KERR_INCONSISTENT_GROUP_PROTOCOL;

	int32_t mi = -1;
	if (ks_len(a->member_id) == 0 && ks_len(a->group_instance_id) > 0) {
		/* KIP-345 static membership: a known instance takes its old
		 * place under a new id (fencing the old id's requests); a new
		 * one joins without the MEMBER_ID_REQUIRED round trip. */
		mi = member_index_by_instance(g, a->group_instance_id);
		if (mi < 0) {
			if (g->nmembers + g->npending >= KGROUP_MAX_MEMBERS)
				return KERR_GROUP_MAX_SIZE_REACHED;
			join_new_member(g, new_member_id(a->client_id), a, w, now);
			return KERR_NONE;
		}
		struct kmember *old = g->members[mi];
		if (old->join_w)
			waiter_error(old->join_w, KERR_FENCED_INSTANCE_ID, old->id);
		if (old->sync_w)
			waiter_error(old->sync_w, KERR_FENCED_INSTANCE_ID, NULL);
		char *id = new_member_id(a->client_id);
		log_info(SUB, "group %s: static member %s rejoins as %s", g->id, old->id, id);
		free(old->id);
		old->id = id;
	} else if (ks_len(a->member_id) == 0) {
		if (g->nmembers + g->npending >= KGROUP_MAX_MEMBERS)
			return KERR_GROUP_MAX_SIZE_REACHED;
		char *id = new_member_id(a->client_id);
		if (a->require_known_member_id) {
			if (g->npending == g->cappending) {
				g->cappending = g->cappending ? g->cappending * 2 : 4;
				g->pending = xrealloc(g->pending, (size_t)g->cappending * sizeof(*g->pending));
			}
			g->pending[g->npending].id = id;
			g->pending[g->npending].expires = now + a->session_timeout_ms;
			g->npending++;
			w->res.member_id = xstrdup(id);
			return KERR_MEMBER_ID_REQUIRED;
		}
		join_new_member(g, id, a, w, now);
		return KERR_NONE;
	} else {
		mi = member_index(g, a->member_id);
		if (mi < 0) {
			int32_t pi = pending_index(g, a->member_id);
			if (pi < 0)
				return KERR_UNKNOWN_MEMBER_ID;
			char *id = g->pending[pi].id;
			g->pending[pi].id = NULL;
			pending_remove(g, pi);
			join_new_member(g, id, a, w, now);
			return KERR_NONE;
		}
	}
	struct kmember *m = g->members[mi];
	switch (g->state) {
	case KGS_PREPARING_REBALANCE:
		member_update(m, a, now);
		attach_join(m, w);
		try_complete_join(g, now);
		return KERR_NONE;
	case KGS_COMPLETING_REBALANCE:
		if (member_same_protos(m, a)) {
			/* The member lost our answer; give it again. */
			m->last_heard = now;
			fill_join_result(g, m, &w->res);
			w->done = true;
			return KERR_NONE;
		}
		break;
	case KGS_STABLE:
		if (m != g->leader && member_same_protos(m, a)) {
			m->last_heard = now;
			fill_join_result(g, m, &w->res);
			w->done = true;
			return KERR_NONE;
		}
		break;
	default:
		return KERR_UNKNOWN_MEMBER_ID;
	}
	member_update(m, a, now);
	prepare_rebalance(g, now);
	attach_join(m, w);
	try_complete_join(g, now);
	return KERR_NONE;
}

struct kgroup_waiter *kgroup_join(const struct kgroup_join_args *a)
{
	struct kgroup_waiter *w = xcalloc(1, sizeof(*w));
	w->kind = KW_JOIN;
	pthread_mutex_lock(&g_mu);
	int16_t err = join_locked(a, w, gnow());
	if (err) {
		char *id = w->res.member_id;
		w->res.member_id = NULL;
		waiter_detach(w);
		kgroup_result_destroy(&w->res);
		w->res.error = err;
		w->res.generation_id = -1;
		w->res.member_id = id ? id : ks_dup(a->member_id);
		w->done = true;
	}
	unlock_and_kick();
	return w;
}

static int16_t sync_locked(struct slice group_id, int32_t generation, struct slice member_id,
			   int32_t nassign, const struct kgroup_assignment *assign,
			   struct kgroup_waiter *w, int64_t now)
{
	struct kgroup *g = group_find(group_id);
	if (!g)
		return KERR_UNKNOWN_MEMBER_ID;
	int32_t mi = member_index(g, member_id);
	if (mi < 0)
		return KERR_UNKNOWN_MEMBER_ID;
	if (generation != g->generation)
		return KERR_ILLEGAL_GENERATION;
	struct kmember *m = g->members[mi];
	switch (g->state) {
	case KGS_PREPARING_REBALANCE:
		return KERR_REBALANCE_IN_PROGRESS;
	case KGS_STABLE:
		m->last_heard = now;
		m->synced = true;
		w->res.assignment = ks_bdup(m->assignment, m->assignment_len);
		w->res.assignment_len = m->assignment_len;
		w->done = true;
		return KERR_NONE;
	case KGS_COMPLETING_REBALANCE:
		break;
	default:
		return KERR_UNKNOWN_MEMBER_ID;
	}
	if (m == g->leader) {
		uint64_t total = 0;
		for (int32_t i = 0; i < nassign; i++) {
			if (assign[i].assignment.len > KGROUP_MAX_MEMBER_BYTES)
				return KERR_INVALID_REQUEST;
			total += ks_len(assign[i].assignment);
		}
		if (G.member_bytes + total > KGROUP_MAX_TOTAL_BYTES) {
			log_warn(SUB, "group %s: member state over %llu bytes, refusing a sync", g->id,
				 (unsigned long long)KGROUP_MAX_TOTAL_BYTES);
			return KERR_COORDINATOR_NOT_AVAILABLE;
		}
	}
	m->last_heard = now;
	m->synced = true;
	if (m->sync_w)
		waiter_error(m->sync_w, KERR_REBALANCE_IN_PROGRESS, NULL);
	m->sync_w = w;
	w->m = m;
	if (m != g->leader)
		return KERR_NONE;
	for (int32_t i = 0; i < g->nmembers; i++)
		member_set_assignment(g->members[i], NULL, 0);
	for (int32_t i = 0; i < nassign; i++) {
		int32_t oi = member_index(g, assign[i].member_id);
		if (oi >= 0)
			member_set_assignment(g->members[oi], assign[i].assignment.p,
					      (int32_t)ks_len(assign[i].assignment));
	}
	g->state = KGS_STABLE;
	log_info(SUB, "group %s generation %d is stable", g->id, g->generation);
	for (int32_t i = 0; i < g->nmembers; i++) {
		struct kmember *o = g->members[i];
		if (!o->sync_w)
			continue;
		struct kgroup_waiter *ow = o->sync_w;
		kgroup_result_destroy(&ow->res);
		ow->res.assignment = ks_bdup(o->assignment, o->assignment_len);
		ow->res.assignment_len = o->assignment_len;
		waiter_done(ow);
	}
	return KERR_NONE;
}

struct kgroup_waiter *kgroup_sync(struct slice group_id, int32_t generation_id,
				  struct slice member_id, int32_t nassign,
				  const struct kgroup_assignment *assign)
{
	struct kgroup_waiter *w = xcalloc(1, sizeof(*w));
	w->kind = KW_SYNC;
	pthread_mutex_lock(&g_mu);
	int16_t err = sync_locked(group_id, generation_id, member_id, nassign, assign, w, gnow());
	if (err) {
		waiter_detach(w);
		kgroup_result_destroy(&w->res);
		w->res.error = err;
		w->res.generation_id = -1;
		w->done = true;
	}
	unlock_and_kick();
	return w;
}

int16_t kgroup_heartbeat(struct slice group_id, int32_t generation_id, struct slice member_id)
{
	int16_t err = KERR_NONE;
	pthread_mutex_lock(&g_mu);
	struct kgroup *g = group_find(group_id);
	int32_t mi = g ? member_index(g, member_id) : -1;
	if (mi < 0 || g->state == KGS_EMPTY || g->state == KGS_DEAD) {
		err = KERR_UNKNOWN_MEMBER_ID;
	} else if (generation_id != g->generation) {
		err = KERR_ILLEGAL_GENERATION;
	} else {
		g->members[mi]->last_heard = gnow();
		if (g->state == KGS_PREPARING_REBALANCE)
			err = KERR_REBALANCE_IN_PROGRESS;
	}
	unlock_and_kick();
	return err;
}

int16_t kgroup_leave(struct slice group_id, struct slice member_id, struct slice group_instance_id)
{
	int16_t err = KERR_NONE;
	pthread_mutex_lock(&g_mu);
	struct kgroup *g = group_find(group_id);
	if (!g) {
		err = KERR_UNKNOWN_MEMBER_ID;
		goto out;
	}
	int32_t mi = ks_len(member_id) ? member_index(g, member_id)
				     : member_index_by_instance(g, group_instance_id);
	if (mi >= 0) {
		log_info(SUB, "group %s: member %s leaves", g->id, g->members[mi]->id);
		member_remove(g, mi, gnow());
		goto out;
	}
	int32_t pi = pending_index(g, member_id);
	if (pi >= 0) {
		pending_remove(g, pi);
		try_complete_join(g, gnow());
		goto out;
	}
	err = KERR_UNKNOWN_MEMBER_ID;
out:
	unlock_and_kick();
	return err;
}

static void group_remove(struct kgroup *g)
{
	uint32_t h = ks_hash(g->id, strlen(g->id), 2166136261u);
	struct kgroup **pp = &G.buckets[h % G.nbuckets];
	while (*pp != g)
		pp = &(*pp)->next;
	*pp = g->next;
	G.ngroups--;
}

static void group_free(struct kgroup *g)
{
	while (g->nmembers > 0)
		member_remove_raw(g, g->nmembers - 1);
	while (g->npending > 0)
		pending_remove(g, g->npending - 1);
	free(g->members);
	free(g->pending);
	free(g->id);
	free(g->protocol_type);
	free(g->protocol_name);
	free(g);
}

int16_t kgroup_delete(struct slice group_id)
{
	int16_t err = KERR_NONE;
	pthread_mutex_lock(&g_mu);
	struct kgroup *g = group_find(group_id);
	if (!g) {
		err = KERR_GROUP_ID_NOT_FOUND;
		goto out;
	}
	if (g->nmembers > 0 || g->npending > 0) {
		err = KERR_NON_EMPTY_GROUP;
		goto out;
	}
	if (koffsets_drop_group(store(), group_id) != 0) {
		err = KERR_UNKNOWN_SERVER_ERROR;
		goto out;
	}
	log_info(SUB, "deleting group %s", g->id);
	group_remove(g);
	group_free(g);
out:
	unlock_and_kick();
	return err;
}

/* ------------------------------------------------------------------ */
/* Offsets API                                                          */

void kgroup_commit_offsets(struct slice group_id, int32_t generation_id, struct slice member_id,
			   struct koffsets_commit *c, int32_t n)
{
	int16_t err = KERR_NONE;
	pthread_mutex_lock(&g_mu);
	int64_t now = gnow();
	struct kgroup *g = ks_has_nul(group_id) ? NULL : group_find(group_id);
	if (ks_has_nul(group_id)) {
		err = KERR_INVALID_GROUP_ID;
	} else if (!g) {
		if (generation_id < 0) {
			g = group_create(group_id);
			if (!g)
				err = KERR_COORDINATOR_NOT_AVAILABLE;
		} else {
			err = KERR_ILLEGAL_GENERATION;
		}
	} else if (generation_id < 0 && g->state == KGS_EMPTY) {
		/* A "simple" consumer: no group membership to check. */
	} else if (g->state == KGS_COMPLETING_REBALANCE) {
		err = KERR_REBALANCE_IN_PROGRESS;
	} else {
		int32_t mi = member_index(g, member_id);
		if (mi < 0)
			err = KERR_UNKNOWN_MEMBER_ID;
		else if (generation_id != g->generation)
			err = KERR_ILLEGAL_GENERATION;
		else
			g->members[mi]->last_heard = now;
	}
	if (err) {
		for (int32_t i = 0; i < n; i++)
			if (!c[i].error)
				c[i].error = err;
		goto out;
	}

	koffsets_commit(store(), g->id, c, n, now_ms());
out:
	unlock_and_kick();
}

void kgroup_fetch_offsets(struct slice group_id, struct koffsets_offset *o, int32_t n)
{
	pthread_mutex_lock(&g_mu);
	koffsets_fetch(store(), group_id, o, n);
	pthread_mutex_unlock(&g_mu);
}

struct koffsets_offset *kgroup_fetch_all_offsets(struct slice group_id, int32_t *n)
{
	pthread_mutex_lock(&g_mu);
	struct koffsets_offset *o = koffsets_fetch_all(store(), group_id, n);
	pthread_mutex_unlock(&g_mu);
	return o;
}

void kgroup_topic_deleted(const char *topic)
{
	pthread_mutex_lock(&g_mu);
	if (koffsets_drop_topic(store(), topic) > 0)
		log_info(SUB, "dropped committed offsets of deleted topic %s", topic);
	unlock_and_kick();
}

/* ------------------------------------------------------------------ */
/* Listing                                                              */

struct kgroup_listing *kgroup_list(int32_t *n)
{
	pthread_mutex_lock(&g_mu);
	struct kgroup_listing *l = xcalloc(G.ngroups ? G.ngroups : 1, sizeof(*l));
	int32_t k = 0;
	for (uint32_t b = 0; b < G.nbuckets; b++)
		for (struct kgroup *g = G.buckets[b]; g; g = g->next, k++) {
			l[k].group_id = xstrdup(g->id);
			l[k].protocol_type = xstrdup(g->protocol_type ? g->protocol_type : "");
		}
	pthread_mutex_unlock(&g_mu);
	*n = k;
	return l;
}

void kgroup_list_free(struct kgroup_listing *l, int32_t n)
{
	for (int32_t i = 0; i < n; i++) {
		free(l[i].group_id);
		free(l[i].protocol_type);
	}
	free(l);
}

void kgroup_describe(struct slice group_id, struct kgroup_desc *d)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_lock(&g_mu);
	struct kgroup *g = group_find(group_id);
	if (!g) {
		d->state = kgroup_state_name(KGS_DEAD);
		d->protocol_type = xstrdup("");
		d->protocol_data = xstrdup("");
		goto out;
	}
	d->state = kgroup_state_name(g->state);
	d->protocol_type = xstrdup(g->protocol_type ? g->protocol_type : "");
	bool stable = g->state == KGS_STABLE;
	d->protocol_data = xstrdup(stable && g->protocol_name ? g->protocol_name : "");
	d->nmembers = g->nmembers;
	d->members = xcalloc(g->nmembers ? (size_t)g->nmembers : 1, sizeof(*d->members));
	for (int32_t i = 0; i < g->nmembers; i++) {
		const struct kmember *m = g->members[i];
		struct kgroup_member_desc *md = &d->members[i];
		md->member_id = xstrdup(m->id);
		md->group_instance_id = dup_or_null(m->instance_id);
		md->client_id = xstrdup(m->client_id ? m->client_id : "");
		md->client_host = xstrdup(m->client_host ? m->client_host : "");
		if (!stable)
			continue;
		const struct kproto *p = member_proto(m, g->protocol_name);
		if (p) {
			md->metadata = ks_bdup(p->meta, p->meta_len);
			md->metadata_len = p->meta_len;
		}
		md->assignment = ks_bdup(m->assignment, m->assignment_len);
		md->assignment_len = m->assignment_len;
	}
out:
	pthread_mutex_unlock(&g_mu);
}

void kgroup_desc_destroy(struct kgroup_desc *d)
{
	for (int32_t i = 0; i < d->nmembers; i++) {
		struct kgroup_member_desc *md = &d->members[i];
		free(md->member_id);
		free(md->group_instance_id);
		free(md->client_id);
		free(md->client_host);
		free(md->metadata);
		free(md->assignment);
	}
	free(d->members);
	free(d->protocol_type);
	free(d->protocol_data);
	memset(d, 0, sizeof(*d));
}

/* ------------------------------------------------------------------ */
/* Lifecycle and timers                                                 */

static void limits_from_conf(void)
{
	const struct kbroker_conf *c = kbroker_conf();
	struct kgroup_limits l = {
		.min_session_timeout_ms = 6000,
		.max_session_timeout_ms = 1800000,
		.initial_rebalance_delay_ms = 0,
		.offsets_retention_ms = 7LL * 24 * 3600 * 1000,
		.fsync = false,
	};
	if (c) {
		if (c->group_min_session_timeout_ms > 0)
			l.min_session_timeout_ms = c->group_min_session_timeout_ms;
		if (c->group_max_session_timeout_ms > 0)
			l.max_session_timeout_ms = c->group_max_session_timeout_ms;
		if (c->group_initial_rebalance_delay_ms >= 0)
			l.initial_rebalance_delay_ms = c->group_initial_rebalance_delay_ms;
		l.offsets_retention_ms = c->offsets_retention_ms;
		l.fsync = c->fsync_acks;
	}
	G.lim = l;
}

void kgroup_set_limits(const struct kgroup_limits *lim)
{
	pthread_mutex_lock(&g_mu);
	if (lim)
		G.lim = *lim;
	else
		limits_from_conf();
	if (G.offsets)
		koffsets_set_sync(G.offsets, G.lim.fsync);
	pthread_mutex_unlock(&g_mu);
}

void kgroup_set_clock(int64_t (*now)(void))
{
	pthread_mutex_lock(&g_mu);
	G.clock = now;
	pthread_mutex_unlock(&g_mu);
}

static void mirror_group(void *arg, const char *id)
{
	(void)arg;
	struct slice sid = { (const uint8_t *)id, (int32_t)strlen(id) };
	if (!group_find(sid))
		(void)group_create(sid);
}

int kgroup_init(const char *data_dir)
{
	pthread_mutex_lock(&g_mu);
	limits_from_conf();
	G.next_retention = 0;
	koffsets_close(G.offsets);
	G.offsets = NULL;
	int rc = koffsets_open(data_dir, &G.offsets);
	if (rc) {
		log_error(SUB, "loading committed offsets from %s: %s", data_dir, silt_strerror(rc));
	} else {
		koffsets_set_sync(G.offsets, G.lim.fsync);
		/* A group exists while it has offsets: those of before the
		 * restart come back Empty, as in Kafka. */
		koffsets_for_each_group(G.offsets, mirror_group, NULL);
	}
	pthread_mutex_unlock(&g_mu);
	return rc;
}

void kgroup_shutdown(void)
{
	pthread_mutex_lock(&g_mu);
	for (uint32_t b = 0; b < G.nbuckets; b++) {
		struct kgroup *g = G.buckets[b];
		while (g) {
			struct kgroup *n = g->next;
			for (int32_t i = 0; i < g->nmembers; i++) {
				struct kmember *m = g->members[i];
				if (m->join_w)
					waiter_error(m->join_w, KERR_COORDINATOR_NOT_AVAILABLE, m->id);
				if (m->sync_w)
					waiter_error(m->sync_w, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
			}
			group_free(g);
			g = n;
		}
	}
	free(G.buckets);
	G.buckets = NULL;
	assert(G.member_bytes == 0);
	G.nbuckets = G.ngroups = 0;
	G.member_bytes = 0;
	koffsets_close(G.offsets);
	G.offsets = NULL;
	unlock_and_kick();
}

/* Offsets expire only in groups without members (Kafka: Empty groups). */
static bool group_active(void *arg, const char *id)
{
	(void)arg;
	const struct kgroup *g = group_find((struct slice){ (const uint8_t *)id, (int32_t)strlen(id) });
	return g && (g->state != KGS_EMPTY || g->npending > 0);
}

static void expire_offsets(void)
{
	int64_t now = now_ms();
	if (G.lim.offsets_retention_ms <= 0 || now < G.next_retention)
		return;
	G.next_retention = now + 60000;
	uint32_t dropped = koffsets_expire(store(), now - G.lim.offsets_retention_ms, group_active, NULL);
	if (dropped)
		log_info(SUB, "expired %u committed offsets past retention", dropped);
}

void kgroup_tick(int64_t now_ms_unused)
{
	(void)now_ms_unused;
	pthread_mutex_lock(&g_mu);
	int64_t now = gnow();
	for (uint32_t b = 0; b < G.nbuckets; b++) {
		struct kgroup *g = G.buckets[b];
		while (g) {
			struct kgroup *next = g->next;
			for (int32_t i = g->npending - 1; i >= 0; i--)
				if (now >= g->pending[i].expires)
					pending_remove(g, i);
			for (int32_t i = g->nmembers - 1; i >= 0; i--) {
				if (i >= g->nmembers)
					continue;
				struct kmember *m = g->members[i];
				if (m->join_w || m->sync_w || now - m->last_heard < m->session_timeout_ms)
					continue;
				log_info(SUB, "group %s: member %s session timed out", g->id, m->id);
				member_remove(g, i, now);
			}
			try_complete_join(g, now);
			if (g->sync_deadline && now >= g->sync_deadline) {
				g->sync_deadline = 0;
				for (int32_t i = g->nmembers - 1; i >= 0; i--) {
					if (i >= g->nmembers || g->members[i]->synced)
						continue;
					log_info(SUB, "group %s: removing member %s, which did not sync",
						 g->id, g->members[i]->id);
					member_remove(g, i, now);
				}
			}
			if (g->state == KGS_EMPTY && g->nmembers == 0 && g->npending == 0 &&
			    !koffsets_has_group(store(), (struct slice){ (const uint8_t *)g->id,
									  (int32_t)strlen(g->id) })) {
				group_remove(g);
				group_free(g);
			}
			g = next;
		}
	}
	expire_offsets();
	unlock_and_kick();
}
