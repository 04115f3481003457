/* offsets.c - committed offsets: the in-memory table and its journal.
 * Format, ownership and threads are described in offsets.h. */
#include "core/platform.h"
#include "kafka/offsets.h"

#include "core/log.h"
#include "core/util.h"
#include "core/wbuf.h"
#include "kafka/errors.h"
#include "kafka/kslice.h"
#include "storage/reclog.h"

#define SUB "offsets"

enum { REC_COMMIT = 1, REC_DEL_OFFSET = 2, REC_DEL_GROUP = 3, REC_DEL_TOPIC = 4 };
#define REC_MAX (128u * 1024u)

/* Compaction thresholds: at open, a file over 1 MiB that is more than
 * twice its live set; while running (where it costs a commit's latency),
 * over 64 MiB and four times. */
#define COMPACT_OPEN_BYTES (1u << 20)
#define COMPACT_RUN_BYTES (64u << 20)

struct onode {
	struct onode *next;
	char *topic;
	int32_t partition;
	int64_t offset;
	int32_t leader_epoch;
	int64_t commit_ts; /* wall clock, for retention */
	uint8_t *meta;
	int32_t meta_len;
};

struct ogroup {
	struct ogroup *next; /* hash chain */
	char *id;
	struct onode **buckets;
	uint32_t nbuckets, n;
};

struct koffsets {
	struct ogroup **buckets;
	uint32_t nbuckets, ngroups;
	uint32_t n;          /* offsets across groups */
	uint64_t live_bytes; /* bytes the live set takes compacted */
	struct reclog *log;  /* NULL: memory only */
};

/* ---- helpers ----------------------------------------------------------- */

static struct slice s_of(const char *c)
{
	return (struct slice){ (const uint8_t *)c, (int32_t)strlen(c) };
}

/* ---- groups -------------------------------------------------------------- */

static uint32_t group_hash(const void *id, size_t n)
{
	return ks_hash(id, n, 2166136261u);
}

static struct ogroup **group_slot(struct koffsets *s, struct slice id)
{
	if (!s->nbuckets)
		return NULL;
	struct ogroup **pp = &s->buckets[group_hash(id.p, ks_len(id)) % s->nbuckets];
	for (; *pp; pp = &(*pp)->next)
		if (ks_eq(id, (*pp)->id))
			return pp;
	return pp;
}

static struct ogroup *group_find(struct koffsets *s, struct slice id)
{
	struct ogroup **pp = group_slot(s, id);
	return pp ? *pp : NULL;
}

static void groups_grow(struct koffsets *s)
{
	uint32_t old = s->nbuckets;
	struct ogroup **ob = s->buckets;
	s->nbuckets = old ? old * 2 : 64;
	s->buckets = xcalloc(s->nbuckets, sizeof(*s->buckets));
	for (uint32_t i = 0; i < old; i++) {
		struct ogroup *g = ob[i];
		while (g) {
			struct ogroup *next = g->next;
			uint32_t b = group_hash(g->id, strlen(g->id)) % s->nbuckets;
			g->next = s->buckets[b];
			s->buckets[b] = g;
			g = next;
		}
	}
	free(ob);
}

static struct ogroup *group_get(struct koffsets *s, struct slice id)
{
	struct ogroup *g = group_find(s, id);
	if (g)
		return g;
	if (s->ngroups >= s->nbuckets)
		groups_grow(s);
	struct ogroup **pp = group_slot(s, id);
	g = xcalloc(1, sizeof(*g));
	g->id = ks_dup(id);
	*pp = g;
	s->ngroups++;
	return g;
}

/* Frees g once its last offset is gone. */
static void group_maybe_free(struct koffsets *s, struct ogroup *g)
{
	if (g->n > 0)
		return;
	struct ogroup **pp = group_slot(s, s_of(g->id));
	*pp = g->next;
	s->ngroups--;
	free(g->buckets);
	free(g->id);
	free(g);
}

/* ---- offsets of a group ---------------------------------------------------- */

static uint32_t off_hash(const char *topic, size_t tlen, int32_t partition)
{
	uint32_t h = ks_hash(topic, tlen, 2166136261u);
	return ks_hash(&partition, sizeof(partition), h);
}

static struct onode **off_slot(struct ogroup *g, struct slice topic, int32_t partition)
{
	if (!g->nbuckets)
		return NULL;
	uint32_t h = off_hash((const char *)topic.p, ks_len(topic), partition);
	struct onode **pp = &g->buckets[h % g->nbuckets];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->partition == partition && ks_eq(topic, (*pp)->topic))
			return pp;
	return pp;
}

static struct onode *off_find(struct ogroup *g, struct slice topic, int32_t partition)
{
	struct onode **pp = off_slot(g, topic, partition);
	return pp ? *pp : NULL;
}

/* Bytes the COMMIT record of o takes in a compacted log. */
static uint64_t off_rec_bytes(const struct ogroup *g, const struct onode *o)
{
	return 8 + 1 + 2 + strlen(g->id) + 2 + strlen(o->topic) + 4 + 8 + 4 + 8 + 2 + (uint64_t)o->meta_len;
}

static void off_unlink(struct koffsets *s, struct ogroup *g, struct onode **pp)
{
	struct onode *o = *pp;
	*pp = o->next;
	s->live_bytes -= off_rec_bytes(g, o);
	g->n--;
	s->n--;
	free(o->topic);
	free(o->meta);
	free(o);
}

static void off_grow(struct ogroup *g)
{
	uint32_t old = g->nbuckets;
	struct onode **ob = g->buckets;
	g->nbuckets = old ? old * 2 : 16;
	g->buckets = xcalloc(g->nbuckets, sizeof(*g->buckets));
	for (uint32_t i = 0; i < old; i++) {
		struct onode *o = ob[i];
		while (o) {
			struct onode *next = o->next;
			uint32_t h = off_hash(o->topic, strlen(o->topic), o->partition);
			o->next = g->buckets[h % g->nbuckets];
			g->buckets[h % g->nbuckets] = o;
			o = next;
		}
	}
	free(ob);
}

static void off_set(struct koffsets *s, struct ogroup *g, struct slice topic, int32_t partition,
		    int64_t offset, int32_t leader_epoch, struct slice meta, int64_t ts)
{
	struct onode *o = off_find(g, topic, partition);
	if (!o) {
		if (g->n >= g->nbuckets)
			off_grow(g);
		struct onode **pp = off_slot(g, topic, partition);
		o = xcalloc(1, sizeof(*o));
		o->topic = ks_dup(topic);
		o->partition = partition;
		*pp = o;
		g->n++;
		s->n++;
	} else {
		s->live_bytes -= off_rec_bytes(g, o);
		free(o->meta);
	}
	o->offset = offset;
	o->leader_epoch = leader_epoch;
	o->commit_ts = ts;
	o->meta_len = (int32_t)ks_len(meta);
	o->meta = ks_bdup(meta.p, o->meta_len);
	s->live_bytes += off_rec_bytes(g, o);
}

/* ---- records --------------------------------------------------------------- */

static void rec_str(struct wbuf *w, const void *p, size_t n)
{
	wbuf_strn(w, p, (int32_t)n);
}

static void rec_commit(struct wbuf *w, const char *group, struct slice topic, int32_t partition,
		       int64_t offset, int32_t epoch, int64_t ts, struct slice meta)
{
	size_t at = reclog_rec_begin(w);
	wbuf_u8(w, REC_COMMIT);
	rec_str(w, group, strlen(group));
	rec_str(w, topic.p, ks_len(topic));
	wbuf_i32(w, partition);
	wbuf_i64(w, offset);
	wbuf_i32(w, epoch);
	wbuf_i64(w, ts);
	rec_str(w, meta.p, ks_len(meta));
	reclog_rec_end(w, at);
}

static void rec_del_offset(struct wbuf *w, const char *group, const char *topic, int32_t partition)
{
	size_t at = reclog_rec_begin(w);
	wbuf_u8(w, REC_DEL_OFFSET);
	rec_str(w, group, strlen(group));
	rec_str(w, topic, strlen(topic));
	wbuf_i32(w, partition);
	reclog_rec_end(w, at);
}

static void rec_del_one(struct wbuf *w, uint8_t type, const char *name)
{
	size_t at = reclog_rec_begin(w);
	wbuf_u8(w, type);
	rec_str(w, name, strlen(name));
	reclog_rec_end(w, at);
}

static int append(struct koffsets *s, const struct wbuf *w)
{
	if (w->err)
		return -ENOMEM;
	return s->log ? reclog_append(s->log, w) : 0;
}

/* Removes g's offsets of `topic` (all topics if NULL) committed before
 * `before` (any time if INT64_MAX), with a DEL_OFFSET record each in w if
 * not NULL, and frees g if that emptied it. Returns how many. */
static uint32_t drop_where(struct koffsets *s, struct ogroup *g, const char *topic, int64_t before,
			   struct wbuf *w)
{
	uint32_t had = g->n;
	for (uint32_t i = 0; i < g->nbuckets; i++) {
		struct onode **pp = &g->buckets[i];
		while (*pp) {
			struct onode *o = *pp;
			if ((topic && strcmp(o->topic, topic) != 0) || o->commit_ts >= before) {
				pp = &o->next;
				continue;
			}
			if (w)
				rec_del_offset(w, g->id, o->topic, o->partition);
			off_unlink(s, g, pp);
		}
	}
	uint32_t dropped = had - g->n;
	group_maybe_free(s, g);
	return dropped;
}

/* Calls fn on every group; fn may free the group it is given. */
static void each_group(struct koffsets *s, void (*fn)(struct koffsets *, struct ogroup *, void *), void *arg)
{
	for (uint32_t b = 0; b < s->nbuckets; b++) {
		struct ogroup *g = s->buckets[b];
		while (g) {
			struct ogroup *next = g->next;
			fn(s, g, arg);
			g = next;
		}
	}
}

static void group_clear(struct koffsets *s, struct ogroup *g)
{
	drop_where(s, g, NULL, INT64_MAX, NULL);
}

/* ---- replay and compaction --------------------------------------------------- */

struct drop_topic_arg {
	const char *topic;
	uint32_t n;
};

static void drop_topic_one(struct koffsets *s, struct ogroup *g, void *arg)
{
	struct drop_topic_arg *a = arg;
	a->n += drop_where(s, g, a->topic, INT64_MAX, NULL);
}

/* Applies one record body; false if it does not parse. */
static bool replay_one(void *arg, const uint8_t *body, size_t len)
{
	struct koffsets *s = arg;
	struct rd r;
	rd_init(&r, body, len);
	uint8_t type = rd_u8(&r);
	struct slice group = { 0 }, topic = { 0 }, meta = { 0 };
	int32_t partition = 0, epoch = 0;
	int64_t offset = 0, ts = 0;
	switch (type) {
	case REC_COMMIT:
		group = rd_str(&r);
		topic = rd_str(&r);
		partition = rd_i32(&r);
		offset = rd_i64(&r);
		epoch = rd_i32(&r);
		ts = rd_i64(&r);
		meta = rd_str(&r);
		break;
	case REC_DEL_OFFSET:
		group = rd_str(&r);
		topic = rd_str(&r);
		partition = rd_i32(&r);
		break;
	case REC_DEL_GROUP:
		group = rd_str(&r);
		break;
	case REC_DEL_TOPIC:
		topic = rd_str(&r);
		break;
	default:
		return false;
	}
	if (r.err || rd_left(&r) != 0 || group.len < 0 || topic.len < 0 || meta.len < 0 ||
	    meta.len > KOFFSETS_MAX_METADATA || ks_has_nul(group) || ks_has_nul(topic))
		return false;
	struct ogroup *g;
	switch (type) {
	case REC_COMMIT:
		g = group_find(s, group);
		/* Past the bound, only offsets already held are updated. */
		if (s->n >= KOFFSETS_MAX && !(g && off_find(g, topic, partition)))
			return true;
		g = group_get(s, group);
		off_set(s, g, topic, partition, offset, epoch, meta, ts);
		break;
	case REC_DEL_OFFSET:
		g = group_find(s, group);
		if (g) {
			struct onode **pp = off_slot(g, topic, partition);
			if (pp && *pp) {
				off_unlink(s, g, pp);
				group_maybe_free(s, g);
			}
		}
		break;
	case REC_DEL_GROUP:
		g = group_find(s, group);
		if (g)
			group_clear(s, g);
		break;
	case REC_DEL_TOPIC: {
		char *t = ks_dup(topic);
		struct drop_topic_arg a = { t, 0 };
		each_group(s, drop_topic_one, &a);
		free(t);
		break;
	}
	}
	return true;
}

static void snapshot_group(struct koffsets *s, struct ogroup *g, void *arg)
{
	(void)s;
	struct wbuf *w = arg;
	for (uint32_t i = 0; i < g->nbuckets; i++)
		for (struct onode *o = g->buckets[i]; o; o = o->next)
			rec_commit(w, g->id, s_of(o->topic), o->partition, o->offset, o->leader_epoch,
				   o->commit_ts, (struct slice){ o->meta, o->meta_len });
}

/* Rewrites the log as the live set. */
static int compact(struct koffsets *s)
{
	if (!s->log)
		return 0;
	struct wbuf w;
	wbuf_init(&w, 1 << 16, 0);
	each_group(s, snapshot_group, &w);
	uint64_t before = reclog_size(s->log);
	int rc = reclog_rewrite(s->log, &w);
	if (rc)
		log_warn(SUB, "compacting %s: %s", reclog_path(s->log), silt_strerror(rc));
	else
		log_info(SUB, "compacted %s: %" PRIu64 " -> %zu bytes", reclog_path(s->log), before, w.len);
	wbuf_destroy(&w);
	return rc;
}

static void maybe_compact(struct koffsets *s)
{
	if (s->log && reclog_size(s->log) > COMPACT_RUN_BYTES && reclog_size(s->log) > 4 * s->live_bytes)
		(void)compact(s);
}

/* ---- the store --------------------------------------------------------------- */

int koffsets_open(const char *data_dir, struct koffsets **out)
{
	struct koffsets *s = xcalloc(1, sizeof(*s));
	int rc = 0;
	*out = NULL;
	if (data_dir) {
		char dir[PATH_MAX], path[PATH_MAX];
		if (snprintf(dir, sizeof(dir), "%s/groups", data_dir) >= (int)sizeof(dir) ||
		    snprintf(path, sizeof(path), "%s/offsets.log", dir) >= (int)sizeof(path)) {
			rc = -ENAMETOOLONG;
			goto out;
		}
		if ((rc = mkdir_p(dir, 0755)) != 0)
			goto out;
		struct reclog_stats st;
		if ((rc = reclog_open(path, REC_MAX, replay_one, s, &s->log, &st)) != 0)
			goto out;
		log_info(SUB, "loaded %" PRIu64 " offset records, %u offsets in %u groups", st.records, s->n,
			 s->ngroups);
		if (reclog_size(s->log) > COMPACT_OPEN_BYTES && reclog_size(s->log) > 2 * s->live_bytes)
			(void)compact(s);
	}
out:
	if (rc) {
		koffsets_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void koffsets_close(struct koffsets *s)
{
	if (!s)
		return;
	for (uint32_t b = 0; b < s->nbuckets; b++)
		while (s->buckets[b])
			group_clear(s, s->buckets[b]);
	free(s->buckets);
	reclog_close(s->log);
	free(s);
}

void koffsets_set_sync(struct koffsets *s, bool sync)
{
	if (s->log)
		reclog_set_sync(s->log, sync);
}

void koffsets_commit(struct koffsets *s, const char *group, struct koffsets_commit *c, int32_t n,
		     int64_t ts)
{
	struct ogroup *g = group_find(s, s_of(group));
	struct wbuf w;
	wbuf_init(&w, 256, 0);
	uint32_t adds = 0;
	for (int32_t i = 0; i < n; i++) {
		if (c[i].error)
			continue;
		if (c[i].metadata.len > KOFFSETS_MAX_METADATA) {
			c[i].error = KERR_OFFSET_METADATA_TOO_LARGE;
			continue;
		}
		/* Such a topic cannot exist; its record would end the log at
		 * the next replay. */
		if (ks_has_nul(c[i].topic)) {
			c[i].error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			continue;
		}
		if (!(g && off_find(g, c[i].topic, c[i].partition)) && s->n + ++adds > KOFFSETS_MAX) {
			log_warn(SUB, "offset limit (%d) reached, refusing a commit", KOFFSETS_MAX);
			c[i].error = KERR_UNKNOWN_SERVER_ERROR;
			continue;
		}
		rec_commit(&w, group, c[i].topic, c[i].partition, c[i].offset, c[i].leader_epoch, ts,
			   c[i].metadata);
	}
	if (append(s, &w) != 0) {
		for (int32_t i = 0; i < n; i++)
			if (!c[i].error)
				c[i].error = KERR_UNKNOWN_SERVER_ERROR;
	} else if (w.len > 0) {
		g = group_get(s, s_of(group));
		for (int32_t i = 0; i < n; i++)
			if (!c[i].error)
				off_set(s, g, c[i].topic, c[i].partition, c[i].offset, c[i].leader_epoch,
					c[i].metadata, ts);
		maybe_compact(s);
	}
	wbuf_destroy(&w);
}

void koffsets_fetch(struct koffsets *s, struct slice group, struct koffsets_offset *o, int32_t n)
{
	struct ogroup *g = group_find(s, group);
	for (int32_t i = 0; i < n; i++) {
		const struct onode *k = g ? off_find(g, o[i].topic, o[i].partition) : NULL;
		o[i].offset = k ? k->offset : -1;
		o[i].leader_epoch = k ? k->leader_epoch : -1;
		o[i].metadata = k ? ks_bdup(k->meta, k->meta_len) : NULL;
		o[i].metadata_len = k ? k->meta_len : 0;
	}
}

static int offset_cmp(const void *a, const void *b)
{
	const struct koffsets_offset *x = a, *y = b;
	int c = strcmp((const char *)x->topic.p, (const char *)y->topic.p);
	if (c)
		return c;
	return (x->partition > y->partition) - (x->partition < y->partition);
}

struct koffsets_offset *koffsets_fetch_all(struct koffsets *s, struct slice group, int32_t *n)
{
	struct ogroup *g = group_find(s, group);
	uint32_t cnt = g ? g->n : 0;
	struct koffsets_offset *o = xcalloc(cnt ? cnt : 1, sizeof(*o));
	uint32_t k = 0;
	for (uint32_t b = 0; g && b < g->nbuckets; b++)
		for (struct onode *x = g->buckets[b]; x; x = x->next, k++) {
			o[k].topic.p = (const uint8_t *)xstrdup(x->topic);
			o[k].topic.len = (int32_t)strlen(x->topic);
			o[k].partition = x->partition;
			o[k].offset = x->offset;
			o[k].leader_epoch = x->leader_epoch;
			o[k].metadata = ks_bdup(x->meta, x->meta_len);
			o[k].metadata_len = x->meta_len;
		}
	qsort(o, k, sizeof(*o), offset_cmp);
	*n = (int32_t)k;
	return o;
}

void koffsets_offsets_free(struct koffsets_offset *o, int32_t n, bool topics_owned)
{
	if (!o)
		return;
	for (int32_t i = 0; i < n; i++) {
		free(o[i].metadata);
		if (topics_owned)
			free((void *)(uintptr_t)o[i].topic.p);
	}
	free(o);
}

bool koffsets_has_group(struct koffsets *s, struct slice group)
{
	return group_find(s, group) != NULL;
}

void koffsets_for_each_group(struct koffsets *s, void (*fn)(void *arg, const char *group), void *arg)
{
	for (uint32_t b = 0; b < s->nbuckets; b++)
		for (struct ogroup *g = s->buckets[b]; g; g = g->next)
			fn(arg, g->id);
}

uint32_t koffsets_count(const struct koffsets *s)
{
	return s->n;
}

int koffsets_drop_group(struct koffsets *s, struct slice group)
{
	struct ogroup *g = group_find(s, group);
	if (!g)
		return 0;
	struct wbuf w;
	wbuf_init(&w, 64 + strlen(g->id), 0);
	rec_del_one(&w, REC_DEL_GROUP, g->id);
	int rc = append(s, &w);
	wbuf_destroy(&w);
	if (!rc)
		group_clear(s, g);
	return rc;
}

static void find_topic(struct koffsets *s, struct ogroup *g, void *arg)
{
	(void)s;
	struct drop_topic_arg *a = arg;
	for (uint32_t i = 0; i < g->nbuckets && !a->n; i++)
		for (struct onode *o = g->buckets[i]; o && !a->n; o = o->next)
			a->n = strcmp(o->topic, a->topic) == 0;
}

uint32_t koffsets_drop_topic(struct koffsets *s, const char *topic)
{
	struct drop_topic_arg a = { topic, 0 };
	each_group(s, find_topic, &a);
	if (!a.n)
		return 0;
	struct wbuf w;
	wbuf_init(&w, 64 + strlen(topic), 0);
	rec_del_one(&w, REC_DEL_TOPIC, topic);
	(void)append(s, &w);
	wbuf_destroy(&w);
	a.n = 0;
	each_group(s, drop_topic_one, &a);
	return a.n;
}

struct expire_arg {
	int64_t before;
	bool (*keep)(void *arg, const char *group);
	void *keep_arg;
	struct wbuf *w;
	uint32_t n;
};

static void expire_one(struct koffsets *s, struct ogroup *g, void *arg)
{
	struct expire_arg *a = arg;
	if (a->keep(a->keep_arg, g->id))
		return;
	a->n += drop_where(s, g, NULL, a->before, a->w);
}

uint32_t koffsets_expire(struct koffsets *s, int64_t before, bool (*keep)(void *arg, const char *group),
			 void *arg)
{
	struct wbuf w;
	wbuf_init(&w, 0, 0);
	struct expire_arg a = { before, keep, arg, &w, 0 };
	each_group(s, expire_one, &a);
	if (a.n) {
		/* Dropped in memory even if this fails: they come back at the
		 * next start and expire again. */
		(void)append(s, &w);
		maybe_compact(s);
	}
	wbuf_destroy(&w);
	return a.n;
}
