#include "core/platform.h"
#include "s3/route.h"
#include "core/log.h"
#include "core/rd.h"
#include "datanode/datanode.h"
#include "s3meta/s3meta.h"

#include <limits.h>
#include <pthread.h>

/* Objects being read. S3 lets a GET that started finish even if the key is
 * overwritten or deleted meanwhile, so freeing an object's data waits until
 * its last reader closes: s3route_free marks it, the last close frees it.
 * Open-addressing tables keyed by object id, split in shards by id so that
 * loop threads reading different objects take different mutexes (each
 * held only for the lookup). */
struct reading {
	struct dn_oid oid;
	int readers; /* 0 = empty slot */
	bool free_pending;
};

#define READ_SHARDS 16

struct rshard {
	pthread_mutex_t mu;
	struct reading *tab;
	size_t cap, used;
	char pad[64]; /* keeps two shards' mutexes off one cache line */
};

struct s3route {
	struct datanode *dn;
	uint32_t chunk_bytes;
	uint16_t node_id;
	struct rshard shard[READ_SHARDS];
};

struct s3route_put {
	struct s3route *rt;
	struct datanode_put *w;
};

struct s3route_get {
	struct s3route *rt;
	/* Object ids this read holds (every part of a multipart locator). */
	struct dn_oid *held;
	size_t nheld;
	/* Parts still to read: for a multipart locator, the iterator; the
	 * requested range in object coordinates. */
	struct s3meta_mploc_iter it;
	uint8_t *loc;        /* our copy of the locator: the iterator walks it lazily */
	bool multipart;
	const uint8_t *single;
	size_t single_len;
	uint64_t off, left;  /* still wanted */
	uint64_t part_base;  /* object offset of the current part */
	struct datanode_get *cur;
	struct datanode_piece piece;
	bool have_piece;
	/* A single-object read keeps its locator and id here (no allocation). */
	struct dn_oid held1;
	uint8_t loc1[S3ROUTE_LOC_MAX];
};

static size_t oid_hash(const struct dn_oid *o)
{
	/* Ids are a per-run random half and a counter: mix every bit, so
	 * both the low bits (slot) and the high bits (shard) vary. */
	uint64_t a, b;
	memcpy(&a, o->b, sizeof(a));
	memcpy(&b, o->b + 8, sizeof(b));
	uint64_t h = a ^ (b * 0x9E3779B97F4A7C15ull);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (size_t)h;
}

static struct rshard *shard_of(struct s3route *rt, const struct dn_oid *oid)
{
	return &rt->shard[(oid_hash(oid) >> 58) % READ_SHARDS];
}

/* The slot of oid, or the empty slot where it would go. Holds sh->mu. */
static struct reading *slot_of(struct rshard *sh, const struct dn_oid *oid)
{
	size_t i = oid_hash(oid) & (sh->cap - 1);
	while (sh->tab[i].readers > 0 && memcmp(&sh->tab[i].oid, oid, sizeof(*oid)) != 0)
		i = (i + 1) & (sh->cap - 1);
	return &sh->tab[i];
}

static void table_grow(struct rshard *sh)
{
	struct reading *old = sh->tab;
	size_t oldcap = sh->cap;
	sh->cap = oldcap ? oldcap * 2 : 64;
	sh->tab = xcalloc(sh->cap, sizeof(*sh->tab));
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].readers > 0)
			*slot_of(sh, &old[i].oid) = old[i];
	free(old);
}

static void hold(struct s3route *rt, const struct dn_oid *oid)
{
	struct rshard *sh = shard_of(rt, oid);
	pthread_mutex_lock(&sh->mu);
	if ((sh->used + 1) * 2 > sh->cap)
		table_grow(sh);
	struct reading *s = slot_of(sh, oid);
	if (s->readers == 0) {
		s->oid = *oid;
		s->free_pending = false;
		sh->used++;
	}
	s->readers++;
	pthread_mutex_unlock(&sh->mu);
}

/* Backward-shift deletion keeps the probe chains intact. Holds sh->mu. */
static void slot_remove(struct rshard *sh, struct reading *s)
{
	size_t i = (size_t)(s - sh->tab);
	s->readers = 0;
	sh->used--;
	for (size_t j = (i + 1) & (sh->cap - 1); sh->tab[j].readers > 0; j = (j + 1) & (sh->cap - 1)) {
		struct reading moved = sh->tab[j];
		sh->tab[j].readers = 0;
		*slot_of(sh, &moved.oid) = moved;
	}
}

static void release(struct s3route *rt, const struct dn_oid *oid)
{
	bool do_free = false;
	struct rshard *sh = shard_of(rt, oid);
	pthread_mutex_lock(&sh->mu);
	struct reading *s = slot_of(sh, oid);
	if (s->readers > 0 && --s->readers == 0) {
		do_free = s->free_pending;
		slot_remove(sh, s);
	}
	pthread_mutex_unlock(&sh->mu);
	if (do_free)
		datanode_delete(rt->dn, oid);
}

int s3route_open(const char *data_dir, unsigned nstreams, struct s3route **out)
{
	char dir[PATH_MAX];
	struct datanode_opts o;
	snprintf(dir, sizeof(dir), "%s/datanode", data_dir);
	datanode_opts_default(&o);
	struct s3route *rt = xcalloc(1, sizeof(*rt));
	for (size_t i = 0; i < READ_SHARDS; i++) {
		pthread_mutex_init(&rt->shard[i].mu, NULL);
		table_grow(&rt->shard[i]);
	}
	rt->chunk_bytes = o.chunk_bytes;
	int rc = datanode_open(dir, nstreams, &o, &rt->dn);
	if (rc != 0) {
		s3route_close(rt);
		return rc;
	}
	*out = rt;
	return 0;
}

void s3route_close(struct s3route *rt)
{
	if (!rt)
		return;
	datanode_close(rt->dn);
	for (size_t i = 0; i < READ_SHARDS; i++) {
		pthread_mutex_destroy(&rt->shard[i].mu);
		free(rt->shard[i].tab);
	}
	free(rt);
}

int s3route_put_begin(struct s3route *rt, unsigned stream, struct s3route_put **out)
{
	struct s3route_put *p = xcalloc(1, sizeof(*p));
	p->rt = rt;
	int rc = datanode_put_begin(rt->dn, stream, NULL, &p->w);
	if (rc != 0) {
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

uint32_t s3route_chunk_bytes(const struct s3route *rt)
{
	return rt->chunk_bytes;
}

int s3route_put_write(struct s3route_put *p, const void *data, size_t len)
{
	return datanode_put_write(p->w, data, len);
}

static size_t put_uvarint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Writes a locator (see route.h): version 2 with the data node's hint when
 * there is one, else version 1. Returns its length. */
static size_t loc_encode(uint16_t node_id, const struct dn_oid *oid, const struct datanode_hint *h, uint8_t *loc)
{
	loc[0] = 'D';
	loc[1] = h ? 2 : 1;
	loc[2] = (uint8_t)(node_id >> 8);
	loc[3] = (uint8_t)node_id;
	memcpy(loc + 4, oid, sizeof(*oid));
	size_t n = 4 + sizeof(*oid);
	if (!h)
		return n;
	n += put_uvarint(loc + n, h->size);
	n += put_uvarint(loc + n, h->chunk_bytes);
	n += put_uvarint(loc + n, h->stream);
	n += put_uvarint(loc + n, (uint64_t)h->seg);
	n += put_uvarint(loc + n, (uint64_t)h->seq);
	n += put_uvarint(loc + n, h->pos);
	for (int i = 0; i < 4; i++)
		loc[n++] = (uint8_t)(h->crc >> (24 - 8 * i));
	return n;
}

int s3route_put_commit(struct s3route_put *p, uint8_t *loc, size_t *loclen)
{
	struct s3route_commit c = { .put = p };
	s3route_put_commit_many(p->rt, &c, 1);
	if (c.rc == 0) {
		memcpy(loc, c.loc, c.loclen);
		*loclen = c.loclen;
	}
	return c.rc;
}

int s3route_put_seal(struct s3route_put *p)
{
	return datanode_put_seal(p->w);
}

/* Puts per data-node call; larger groups are split (bounded stack use). */
#define COMMIT_CHUNK 64

void s3route_put_commit_many(struct s3route *rt, struct s3route_commit *v, size_t n)
{
	struct datanode_put *w[COMMIT_CHUNK];
	struct datanode_put_result res[COMMIT_CHUNK];
	for (size_t base = 0; base < n; base += COMMIT_CHUNK) {
		size_t k = SILT_MIN(n - base, (size_t)COMMIT_CHUNK);
		for (size_t i = 0; i < k; i++)
			w[i] = v[base + i].put->w;
		datanode_put_commit_many(rt->dn, w, k, res);
		for (size_t i = 0; i < k; i++) {
			struct s3route_commit *c = &v[base + i];
			c->rc = res[i].rc;
			c->loclen = c->rc == 0 ? loc_encode(rt->node_id, &res[i].oid,
							   res[i].info.has_hint ? &res[i].info.hint : NULL, c->loc)
						 : 0;
			free(c->put);
			c->put = NULL;
		}
	}
}

void s3route_put_abort(struct s3route_put *p)
{
	if (!p)
		return;
	datanode_put_abort(p->w);
	free(p);
}

/* Parses a single-object locator (version 1, or 2 with a hint); false if it
 * is not one. *has_hint (may be NULL with hint) says whether hint was set. */
static bool parse_single_hint(const uint8_t *loc, size_t len, struct dn_oid *oid, struct datanode_hint *hint,
			      bool *has_hint)
{
	struct rd r;
	rd_init(&r, loc, len);
	uint8_t kind = rd_u8(&r), ver = rd_u8(&r);
	rd_skip(&r, 2); /* node id: one node so far */
	const uint8_t *o = rd_bytes(&r, sizeof(*oid));
	if (r.err || kind != 'D' || (ver != 1 && ver != 2))
		return false;
	memcpy(oid, o, sizeof(*oid));
	if (has_hint)
		*has_hint = false;
	if (ver == 1)
		return rd_left(&r) == 0;
	struct datanode_hint h;
	h.size = rd_uvarint64(&r, 10);
	h.chunk_bytes = rd_uvarint(&r);
	h.stream = rd_uvarint(&r);
	uint64_t seg = rd_uvarint64(&r, 10), seq = rd_uvarint64(&r, 10);
	h.pos = rd_uvarint64(&r, 10);
	h.crc = rd_u32(&r);
	if (r.err || rd_left(&r) != 0 || seg > INT64_MAX || seq > INT64_MAX)
		return false;
	h.seg = (int64_t)seg;
	h.seq = (int64_t)seq;
	if (hint) {
		*hint = h;
		*has_hint = true;
	}
	return true;
}

static bool parse_single(const uint8_t *loc, size_t len, struct dn_oid *oid)
{
	return parse_single_hint(loc, len, oid, NULL, NULL);
}

/* Opens a data node read of one object, through its hint when it has one. */
static int dn_open(struct s3route *rt, const uint8_t *loc, size_t len, uint64_t off, uint64_t n,
		   struct datanode_get **out)
{
	struct dn_oid oid;
	struct datanode_hint h;
	bool has_hint;
	if (!parse_single_hint(loc, len, &oid, &h, &has_hint))
		return -SILT_ECORRUPT;
	if (has_hint)
		return datanode_get_open_hint(rt->dn, &oid, &h, off, n, 0, out, NULL);
	return datanode_get_open(rt->dn, &oid, off, n, 0, out, NULL);
}

int s3route_get_open(struct s3route *rt, const uint8_t *loc, size_t loclen, uint64_t off, uint64_t len,
		     struct s3route_get **out)
{
	struct s3route_get *g = xcalloc(1, sizeof(*g));
	g->rt = rt;
	g->off = off;
	g->left = len;
	uint64_t nparts;
	struct dn_oid oid;
	if (loclen > 0 && loc[0] == 'M') {
		g->loc = xmalloc(loclen);
		memcpy(g->loc, loc, loclen);
		if (!s3meta_mploc_init(&g->it, g->loc, loclen, &nparts) || nparts > 100000) {
			free(g->loc);
			free(g);
			return -SILT_ECORRUPT;
		}
		g->multipart = true;
		/* Hold every part now, so an overwrite cannot free a part this
		 * read has yet to reach. */
		struct s3meta_mploc_iter it = g->it;
		int64_t size;
		const uint8_t *ploc;
		size_t plen;
		g->held = xcalloc((size_t)(nparts ? nparts : 1), sizeof(*g->held));
		while (g->nheld < nparts && s3meta_mploc_next(&it, &size, &ploc, &plen))
			if (parse_single(ploc, plen, &g->held[g->nheld]))
				hold(rt, &g->held[g->nheld++]);
	} else if (loclen <= sizeof(g->loc1) && parse_single(loc, loclen, &oid)) {
		memcpy(g->loc1, loc, loclen);
		g->single = g->loc1;
		g->single_len = loclen;
		g->held1 = oid;
		g->held = &g->held1;
		g->nheld = 1;
		hold(rt, &oid);
	} else {
		free(g);
		return -SILT_ECORRUPT;
	}
	*out = g;
	return 0;
}

/* Opens the next part that overlaps the wanted range. 1 opened, 0 none. */
static int open_next_part(struct s3route_get *g)
{
	if (!g->multipart) {
		if (!g->single)
			return 0;
		const uint8_t *loc = g->single;
		g->single = NULL;
		int rc = dn_open(g->rt, loc, g->single_len, g->off, g->left, &g->cur);
		return rc == 0 ? 1 : rc;
	}
	for (;;) {
		int64_t size;
		const uint8_t *ploc;
		size_t plen;
		if (!s3meta_mploc_next(&g->it, &size, &ploc, &plen))
			return g->it.err ? -SILT_ECORRUPT : 0;
		uint64_t base = g->part_base;
		g->part_base += (uint64_t)size;
		if (g->off >= g->part_base)
			continue;
		uint64_t in_off = g->off - base;
		uint64_t in_len = SILT_MIN(g->left, (uint64_t)size - in_off);
		int rc = dn_open(g->rt, ploc, plen, in_off, in_len, &g->cur);
		return rc == 0 ? 1 : rc;
	}
}

int s3route_get_next(struct s3route_get *g, const uint8_t **p, size_t *n)
{
	if (g->have_piece) {
		datanode_piece_release(&g->piece);
		g->have_piece = false;
	}
	while (g->left > 0) {
		if (!g->cur) {
			int rc = open_next_part(g);
			if (rc <= 0)
				return rc == 0 ? -SILT_ECORRUPT : rc; /* the range outlives the parts */
		}
		int rc = datanode_get_next(g->cur, &g->piece);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			datanode_get_close(g->cur);
			g->cur = NULL;
			continue;
		}
		g->have_piece = true;
		*p = g->piece.data;
		*n = (size_t)SILT_MIN(g->piece.len, g->left);
		g->off += *n;
		g->left -= *n;
		return 1;
	}
	return 0;
}

void s3route_get_close(struct s3route_get *g)
{
	if (!g)
		return;
	if (g->have_piece)
		datanode_piece_release(&g->piece);
	if (g->cur)
		datanode_get_close(g->cur);
	for (size_t i = 0; i < g->nheld; i++)
		release(g->rt, &g->held[i]);
	if (g->held != &g->held1)
		free(g->held);
	free(g->loc);
	free(g);
}

/* Collects the object ids of a locator (every part of a multipart one)
 * that no reader holds; the held ones are marked for their last reader. */
static int collect_frees(struct s3route *rt, const uint8_t *loc, size_t loclen, struct dn_oid **v, size_t *n,
			 size_t *cap)
{
	struct dn_oid oid;
	if (loclen > 0 && loc[0] == 'M') {
		struct s3meta_mploc_iter it;
		uint64_t nparts;
		int rc = 0;
		if (!s3meta_mploc_init(&it, loc, loclen, &nparts))
			return -SILT_ECORRUPT;
		int64_t size;
		const uint8_t *ploc;
		size_t plen;
		while (s3meta_mploc_next(&it, &size, &ploc, &plen)) {
			int r = collect_frees(rt, ploc, plen, v, n, cap);
			if (r)
				rc = r;
		}
		return it.err ? -SILT_ECORRUPT : rc;
	}
	if (!parse_single(loc, loclen, &oid))
		return -SILT_ECORRUPT;
	struct rshard *sh = shard_of(rt, &oid);
	pthread_mutex_lock(&sh->mu);
	struct reading *s = slot_of(sh, &oid);
	bool held = s->readers > 0;
	if (held)
		s->free_pending = true;
	pthread_mutex_unlock(&sh->mu);
	if (held)
		return 0;
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = oid;
	return 0;
}

int s3route_free(struct s3route *rt, const uint8_t *loc, size_t loclen)
{
	/* free_many only reads the blob. */
	struct s3meta_blob b = { (uint8_t *)(uintptr_t)loc, loclen };
	return s3route_free_many(rt, &b, 1);
}

/* Objects deleted per data-node transaction. */
#define FREE_CHUNK 256

int s3route_free_many(struct s3route *rt, const struct s3meta_blob *locs, size_t n)
{
	struct dn_oid *v = NULL;
	size_t nv = 0, cap = 0;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		int r = collect_frees(rt, locs[i].p, locs[i].len, &v, &nv, &cap);
		if (r)
			rc = r;
	}
	int *rcs = xmalloc(SILT_MIN(nv, (size_t)FREE_CHUNK) * sizeof(*rcs) + 1);
	for (size_t base = 0; base < nv; base += FREE_CHUNK) {
		size_t k = SILT_MIN(nv - base, (size_t)FREE_CHUNK);
		int r = datanode_delete_many(rt->dn, v + base, k, rcs);
		if (r)
			rc = r;
		for (size_t i = 0; i < k && !r; i++)
			if (rcs[i] != 0 && rcs[i] != -SILT_ENOENT)
				rc = rcs[i];
	}
	free(rcs);
	free(v);
	return rc;
}

int s3route_checkpoint(struct s3route *rt, int *wal_frames, int *done_frames)
{
	return datanode_checkpoint(rt->dn, wal_frames, done_frames);
}

int s3route_space(struct s3route *rt, uint64_t *used, uint64_t *reclaimable)
{
	return datanode_space(rt->dn, used, reclaimable);
}

int s3route_gc(struct s3route *rt, double threshold, uint64_t max_bytes)
{
	struct datanode_gc_stats st;
	int rc = datanode_gc_run(rt->dn, threshold, max_bytes, &st);
	if (rc == 0 && st.segments_freed > 0)
		log_info("s3", "gc: freed %u volume segments (%" PRIu64 " bytes), copied %" PRIu64
			 " live bytes", st.segments_freed, st.bytes_freed, st.bytes_copied);
	return rc;
}
