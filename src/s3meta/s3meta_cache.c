/* s3meta_cache.c - the metadata service's read cache: bucket rows and the
 * latest version row of recently read keys, so that a GET or HEAD of a hot
 * object touches no SQLite.
 *
 * Keys and values are opaque bytes (s3meta.c and s3meta_obj.c choose them:
 * 'b' + bucket name, 'o' + bucket id + object key). The table is split in
 * shards by key hash, each with its own mutex, hash chains, eviction list
 * and byte budget, so the API service's loop threads rarely meet on a lock.
 *
 * Eviction is CLOCK (second chance), not LRU: a hit only sets the entry's
 * referenced bit, in the entry it already read. Moving the entry to the
 * front of a list would write two more entries (its neighbours), cold
 * cache lines on a cache of 100,000 objects, on every GET. Eviction takes
 * the oldest entry; a referenced one has its bit cleared and goes back to
 * the front, so a hot entry stays and a cold one leaves.
 *
 * The race rule. A reader that misses takes the shard's generation
 * (rc_get), reads SQLite, and offers the row back with that generation
 * (rc_put); the row is installed only if the shard's generation is still
 * the same. Every write invalidates the keys it changed after its
 * transaction committed (rc_invalidate: drop the entry, bump the shard's
 * generation). So a reader whose SQLite read might predate a commit -- it
 * took its generation before the commit's invalidation -- never installs
 * what it read; one that took it after the invalidation read after the
 * commit. Between a commit and its invalidation a reader may still be
 * served the previous row from the cache: that read is concurrent with the
 * write (whose caller has not been answered yet), so either answer is
 * allowed. Invalidating a whole shard for one key costs at most a few
 * extra misses.
 *
 * Threads: every function, any thread. */
#include "core/platform.h"
#include "s3meta/s3meta_int.h"

#define RC_SHARDS 64
#define RC_MIN_BUCKETS 64

struct rc_ent {
	struct rc_ent *hnext;       /* hash chain */
	struct rc_ent *prev, *next; /* eviction list, newest first */
	uint64_t hash;
	uint32_t klen, vlen;
	bool referenced; /* hit since it was last passed over for eviction */
	max_align_t data[]; /* key bytes, then (aligned) value bytes */
};

struct rc_shard {
	pthread_mutex_t mu;
	uint64_t gen;
	struct rc_ent **tab;
	size_t nbuckets, n;
	size_t bytes, max_bytes;
	struct rc_ent *head, *tail;
	/* Keep shards on their own cache lines: two threads taking two
	 * shards' mutexes should not share one. */
	char pad[64];
};

struct rcache {
	struct rc_shard shard[RC_SHARDS];
	size_t max_value;
};

static uint64_t rc_hash(const void *key, size_t klen)
{
	/* FNV-1a, then a final mix so shard and bucket bits are independent. */
	const uint8_t *p = key;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < klen; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static size_t key_space(uint32_t klen)
{
	return (klen + 15) & ~(size_t)15;
}

static const uint8_t *ent_key(const struct rc_ent *e)
{
	return (const uint8_t *)e->data;
}

static uint8_t *ent_val(struct rc_ent *e)
{
	return (uint8_t *)e->data + key_space(e->klen);
}

static size_t ent_size(const struct rc_ent *e)
{
	return sizeof(*e) + key_space(e->klen) + e->vlen;
}

static struct rc_shard *shard_of(struct rcache *c, uint64_t h)
{
	return &c->shard[h % RC_SHARDS];
}

struct rcache *rc_new(size_t max_bytes)
{
	struct rcache *c = xcalloc(1, sizeof(*c));
	size_t per = max_bytes / RC_SHARDS;
	/* A value may take at most an eighth of a shard, so one big row
	 * cannot flush a shard by itself; rows above that are not cached. */
	c->max_value = per / 8;
	for (size_t i = 0; i < RC_SHARDS; i++) {
		struct rc_shard *s = &c->shard[i];
		pthread_mutex_init(&s->mu, NULL);
		s->max_bytes = per;
	}
	return c;
}

void rc_free(struct rcache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < RC_SHARDS; i++) {
		struct rc_shard *s = &c->shard[i];
		for (struct rc_ent *e = s->head; e;) {
			struct rc_ent *n = e->next;
			free(e);
			e = n;
		}
		free(s->tab);
		pthread_mutex_destroy(&s->mu);
	}
	free(c);
}

/* The chain slot holding the entry for key, or the NULL at the chain's end. */
static struct rc_ent **find(struct rc_shard *s, uint64_t h, const void *key, size_t klen)
{
	if (!s->tab)
		return NULL;
	struct rc_ent **pp = &s->tab[(h / RC_SHARDS) & (s->nbuckets - 1)];
	while (*pp && !((*pp)->hash == h && (*pp)->klen == klen && memcmp(ent_key(*pp), key, klen) == 0))
		pp = &(*pp)->hnext;
	return pp;
}

static void lru_unlink(struct rc_shard *s, struct rc_ent *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		s->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
}

static void lru_push(struct rc_shard *s, struct rc_ent *e)
{
	e->prev = NULL;
	e->next = s->head;
	if (s->head)
		s->head->prev = e;
	else
		s->tail = e;
	s->head = e;
}

/* Unlinks and frees the entry at *pp. */
static void remove_at(struct rc_shard *s, struct rc_ent **pp)
{
	struct rc_ent *e = *pp;
	*pp = e->hnext;
	lru_unlink(s, e);
	s->n--;
	s->bytes -= ent_size(e);
	free(e);
}

/* Second chance: brings the shard back under its budget, never evicting
 * `keep` (the entry just installed). Each referenced entry passed over
 * loses its bit, so some other entry goes within one turn of the list. */
static void evict(struct rc_shard *s, struct rc_ent *keep)
{
	while (s->bytes > s->max_bytes && s->n > 1) {
		struct rc_ent *t = s->tail;
		if (t == keep || t->referenced) {
			t->referenced = false;
			lru_unlink(s, t);
			lru_push(s, t);
			continue;
		}
		remove_at(s, find(s, t->hash, ent_key(t), t->klen));
	}
}

static void grow(struct rc_shard *s)
{
	size_t nb = s->nbuckets ? s->nbuckets * 2 : RC_MIN_BUCKETS;
	struct rc_ent **tab = xcalloc(nb, sizeof(*tab));
	for (size_t i = 0; i < s->nbuckets; i++) {
		for (struct rc_ent *e = s->tab[i]; e;) {
			struct rc_ent *n = e->hnext;
			size_t b = (e->hash / RC_SHARDS) & (nb - 1);
			e->hnext = tab[b];
			tab[b] = e;
			e = n;
		}
	}
	free(s->tab);
	s->tab = tab;
	s->nbuckets = nb;
}

bool rc_get(struct rcache *c, const void *key, size_t klen, rc_copy_fn copy, void *arg, uint64_t *gen)
{
	if (!c) {
		*gen = 0;
		return false;
	}
	uint64_t h = rc_hash(key, klen);
	struct rc_shard *s = shard_of(c, h);
	pthread_mutex_lock(&s->mu);
	struct rc_ent **pp = find(s, h, key, klen);
	struct rc_ent *e = pp ? *pp : NULL;
	if (e) {
		if (!e->referenced)
			e->referenced = true;
		copy(arg, ent_val(e), e->vlen);
	}
	*gen = s->gen;
	pthread_mutex_unlock(&s->mu);
	return e != NULL;
}

bool rc_put(struct rcache *c, const void *key, size_t klen, const void *val, size_t vlen, uint64_t gen)
{
	if (!c || vlen > c->max_value || klen > UINT32_MAX)
		return false;
	uint64_t h = rc_hash(key, klen);
	struct rc_shard *s = shard_of(c, h);
	/* Built outside the lock; most offers are installed. */
	struct rc_ent *e = xmalloc(sizeof(*e) + key_space((uint32_t)klen) + vlen);
	e->hash = h;
	e->klen = (uint32_t)klen;
	e->vlen = (uint32_t)vlen;
	e->referenced = false;
	memcpy((uint8_t *)e->data, key, klen);
	memcpy(ent_val(e), val, vlen);
	bool installed = false;
	pthread_mutex_lock(&s->mu);
	if (s->gen == gen) {
		if ((s->n + 1) > s->nbuckets)
			grow(s);
		struct rc_ent **pp = find(s, h, key, klen);
		if (*pp)
			remove_at(s, pp); /* same generation: the same row, refreshed */
		e->hnext = s->tab[(h / RC_SHARDS) & (s->nbuckets - 1)];
		s->tab[(h / RC_SHARDS) & (s->nbuckets - 1)] = e;
		lru_push(s, e);
		s->n++;
		s->bytes += ent_size(e);
		evict(s, e);
		installed = true;
		e = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	free(e);
	return installed;
}

void rc_invalidate(struct rcache *c, const void *key, size_t klen)
{
	if (!c)
		return;
	uint64_t h = rc_hash(key, klen);
	struct rc_shard *s = shard_of(c, h);
	pthread_mutex_lock(&s->mu);
	s->gen++;
	struct rc_ent **pp = find(s, h, key, klen);
	if (pp && *pp)
		remove_at(s, pp);
	pthread_mutex_unlock(&s->mu);
}

size_t rc_count(struct rcache *c)
{
	size_t n = 0;
	for (size_t i = 0; c && i < RC_SHARDS; i++) {
		pthread_mutex_lock(&c->shard[i].mu);
		n += c->shard[i].n;
		pthread_mutex_unlock(&c->shard[i].mu);
	}
	return n;
}

/* ---- keys a write transaction changed --------------------------------------- *
 *
 * Entries: u32 key length, u32 row length (0: none), u8 live, key bytes,
 * row bytes. A row is what the transaction wrote as the key's new latest
 * version; it is installed after the commit only if no later statement of
 * the same transaction touched the key again (live), and only while the
 * transaction is short (RC_ROWS_MAX notes, about 64 puts: a batching
 * committer still installs, a bulk import just invalidates; the check for a
 * later change is a scan, quadratic in the notes). */

#define RC_ROWS_MAX 128
#define RC_ENT_HDR (2 * sizeof(uint32_t) + 1)

static void pending_append(struct rc_pending *p, const void *key, size_t klen, const void *row, size_t rlen)
{
	size_t need = p->len + RC_ENT_HDR + klen + rlen;
	if (need > p->cap) {
		p->cap = need > 2 * p->cap ? need : 2 * p->cap;
		p->buf = xrealloc(p->buf, p->cap);
	}
	uint8_t *e = p->buf + p->len;
	uint32_t k = (uint32_t)klen, r = (uint32_t)rlen;
	memcpy(e, &k, sizeof(k));
	memcpy(e + sizeof(k), &r, sizeof(r));
	e[2 * sizeof(uint32_t)] = 1;
	memcpy(e + RC_ENT_HDR, key, klen);
	if (rlen)
		memcpy(e + RC_ENT_HDR + klen, row, rlen);
	p->len = need;
	p->n++;
}

/* Walks the entries: *off starts at 0. */
static bool pending_next(const struct rc_pending *p, size_t *off, uint8_t **ent, const uint8_t **key,
			 uint32_t *klen, const uint8_t **row, uint32_t *rlen)
{
	if (*off + RC_ENT_HDR > p->len)
		return false;
	uint8_t *e = p->buf + *off;
	memcpy(klen, e, sizeof(*klen));
	memcpy(rlen, e + sizeof(*klen), sizeof(*rlen));
	*ent = e;
	*key = e + RC_ENT_HDR;
	*row = e + RC_ENT_HDR + *klen;
	*off += RC_ENT_HDR + *klen + *rlen;
	return true;
}

/* A later change of key makes any row noted for it earlier stale. */
static void pending_supersede(struct rc_pending *p, const void *key, size_t klen)
{
	size_t off = 0;
	uint8_t *e;
	const uint8_t *k, *r;
	uint32_t kl, rl;
	while (pending_next(p, &off, &e, &k, &kl, &r, &rl))
		if (rl && kl == klen && memcmp(k, key, klen) == 0)
			e[2 * sizeof(uint32_t)] = 0;
}

void rc_note(struct conn *c, const void *key, size_t klen)
{
	struct rc_pending *p = &c->inval;
	if (p->n >= RC_ROWS_MAX)
		p->no_rows = true; /* stops tracking: nothing will be installed */
	if (!p->no_rows)
		pending_supersede(p, key, klen);
	pending_append(p, key, klen, NULL, 0);
}

void rc_note_row(struct conn *c, const void *key, size_t klen, const void *row, size_t rlen)
{
	struct rc_pending *p = &c->inval;
	if (p->n >= RC_ROWS_MAX)
		p->no_rows = true;
	if (p->no_rows) {
		pending_append(p, key, klen, NULL, 0);
		return;
	}
	pending_supersede(p, key, klen);
	pending_append(p, key, klen, row, rlen);
}

void rc_note_object(struct conn *c, int64_t bucket_id, const char *key, size_t klen)
{
	uint8_t k[1 + 8 + S3META_KEY_MAX];
	size_t n = rc_object_key(k, bucket_id, key, klen);
	if (n)
		rc_note(c, k, n);
}

void rc_note_bucket(struct conn *c, const char *name)
{
	uint8_t k[1 + S3META_BUCKET_SIZE];
	size_t n = rc_bucket_key(k, name);
	if (n)
		rc_note(c, k, n);
}

/* Installs a committed row whatever the shard's generation: only a writer
 * holding the write lock, after its commit and invalidations, may. */
static void rc_install(struct rcache *c, const void *key, size_t klen, const void *val, size_t vlen)
{
	uint64_t h = rc_hash(key, klen);
	struct rc_shard *s = shard_of(c, h);
	pthread_mutex_lock(&s->mu);
	uint64_t gen = s->gen;
	pthread_mutex_unlock(&s->mu);
	rc_put(c, key, klen, val, vlen, gen);
}

void rc_flush(struct s3meta *m, struct conn *c, bool install)
{
	struct rc_pending *p = &c->inval;
	size_t off = 0;
	uint8_t *e;
	const uint8_t *k, *r;
	uint32_t kl, rl;
	while (pending_next(p, &off, &e, &k, &kl, &r, &rl))
		rc_invalidate(m->cache, k, kl);
	for (off = 0; install && !p->no_rows && m->cache && pending_next(p, &off, &e, &k, &kl, &r, &rl);)
		if (rl && e[2 * sizeof(uint32_t)])
			rc_install(m->cache, k, kl, r, rl);
	p->len = 0;
	p->n = 0;
	p->no_rows = false;
	/* A transaction that touched thousands of keys (put_many) should not
	 * pin its buffer on a pooled connection. */
	if (p->cap > 65536) {
		free(p->buf);
		p->buf = NULL;
		p->cap = 0;
	}
}

size_t rc_object_key(uint8_t *out, int64_t bucket_id, const char *key, size_t klen)
{
	if (klen > S3META_KEY_MAX)
		return 0;
	out[0] = 'o';
	memcpy(out + 1, &bucket_id, 8);
	memcpy(out + 9, key, klen);
	return 9 + klen;
}

size_t rc_bucket_key(uint8_t *out, const char *name)
{
	size_t n = strlen(name);
	if (n >= S3META_BUCKET_SIZE)
		return 0;
	out[0] = 'b';
	memcpy(out + 1, name, n);
	return 1 + n;
}
