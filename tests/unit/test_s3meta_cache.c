/* test_s3meta_cache.c - the metadata service's read cache: the race rule
 * (a row read before a write's invalidation is never installed after it),
 * invalidation by every write path, the byte bound, and readers racing a
 * writer that must never see a version older than one already answered. */
#include "core/platform.h"
#include "core/util.h"
#include "s3meta/s3meta_int.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

#define OWNER "AKIAOWNER"

static struct s3meta *open_meta(int64_t cache_bytes)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/meta.db", test_tmpdir());
	struct s3meta_config cfg = { .path = path, .cache_bytes = cache_bytes };
	struct s3meta *m = NULL;
	return s3meta_open(&cfg, &m) == 0 ? m : NULL;
}

static int put_etag(struct s3meta *m, const char *bucket, const char *key, const char *etag)
{
	struct s3meta_put p = {
		.size = 3,
		.etag = etag,
		.owner = OWNER,
		.content_type = "text/plain",
		.locator = (const uint8_t *)"loc",
		.locator_len = 3,
	};
	char vid[S3META_VID_SIZE];
	struct s3meta_locs freed = { 0 };
	int rc = s3meta_object_put(m, bucket, key, &p, vid, &freed);
	s3meta_locs_destroy(&freed);
	return rc;
}

/* The etag of the latest version, or "" (and the error) if none. */
static int get_etag(struct s3meta *m, const char *bucket, const char *key, char *etag, size_t n)
{
	struct s3meta_obj o;
	int rc = s3meta_object_get(m, bucket, key, NULL, &o);
	snprintf(etag, n, "%s", rc == 0 && o.etag ? o.etag : "");
	s3meta_obj_destroy(&o);
	return rc;
}

static void copy_u64(void *arg, const void *val, size_t vlen)
{
	if (vlen == sizeof(uint64_t))
		memcpy(arg, val, vlen);
}

TEST(s3meta_cache_race_rule)
{
	struct rcache *c = rc_new(1 << 20);
	uint64_t gen, v = 1, got = 0;
	const char *k = "ok1", *other = "ok2";

	/* A miss hands out the shard's generation; an offer with it installs. */
	CHECK(!rc_get(c, k, 3, copy_u64, &got, &gen));
	CHECK(rc_put(c, k, 3, &v, sizeof(v), gen));
	CHECK(rc_get(c, k, 3, copy_u64, &got, &gen));
	CHECK_EQ_INT(got, 1);

	/* A reader misses, a write commits and invalidates, then the reader
	 * offers what it read before the write: refused. */
	rc_invalidate(c, k, 3);
	CHECK(!rc_get(c, k, 3, copy_u64, &got, &gen));
	rc_invalidate(c, k, 3);
	v = 2;
	CHECK(!rc_put(c, k, 3, &v, sizeof(v), gen));
	CHECK(!rc_get(c, k, 3, copy_u64, &got, &gen));
	/* A reader that started after the invalidation may install. */
	v = 3;
	CHECK(rc_put(c, k, 3, &v, sizeof(v), gen));
	CHECK(rc_get(c, k, 3, copy_u64, &got, &gen));
	CHECK_EQ_INT(got, 3);
	/* Invalidating a key drops it; other keys of other shards stay. */
	uint64_t g2;
	CHECK(!rc_get(c, other, 3, copy_u64, &got, &g2));
	CHECK(rc_put(c, other, 3, &v, sizeof(v), g2));
	rc_invalidate(c, k, 3);
	CHECK(!rc_get(c, k, 3, copy_u64, &got, &gen));
	CHECK_EQ_INT(rc_count(c), 1);
	rc_free(c);
}

TEST(s3meta_cache_bounded)
{
	/* 64 KiB over 64 shards: 1 KiB each, values up to 128 bytes. */
	struct rcache *c = rc_new(64 * 1024);
	uint8_t val[100] = { 0 };
	for (int i = 0; i < 20000; i++) {
		char k[32];
		int n = snprintf(k, sizeof(k), "key-%d", i);
		uint64_t gen;
		CHECK(!rc_get(c, k, (size_t)n, copy_u64, NULL, &gen));
		rc_put(c, k, (size_t)n, val, sizeof(val), gen);
	}
	size_t n = rc_count(c);
	CHECK(n > 0);
	CHECK(n < 64 * 1024 / 100);
	uint8_t big[200] = { 0 };
	uint64_t gen;
	rc_get(c, "big", 3, copy_u64, NULL, &gen);
	CHECK(!rc_put(c, "big", 3, big, sizeof(big), gen));
	rc_free(c);
}

/* Second chance: a key read between the inserts of a stream of cold keys
 * stays cached while they pass through (first-in-first-out would have
 * evicted it long ago), and a key no longer read leaves. */
TEST(s3meta_cache_keeps_hot_keys)
{
	struct rcache *c = rc_new(64 * 1024);
	uint64_t one = 1, got = 0, gen;
	CHECK(!rc_get(c, "hot", 3, copy_u64, &got, &gen));
	CHECK(rc_put(c, "hot", 3, &one, sizeof(one), gen));
	CHECK(!rc_get(c, "was-hot", 7, copy_u64, &got, &gen));
	CHECK(rc_put(c, "was-hot", 7, &one, sizeof(one), gen));
	uint8_t val[100] = { 0 };
	int hot_misses = 0;
	for (int i = 0; i < 20000; i++) {
		char k[32];
		int n = snprintf(k, sizeof(k), "cold-%d", i);
		CHECK(!rc_get(c, k, (size_t)n, copy_u64, NULL, &gen));
		rc_put(c, k, (size_t)n, val, sizeof(val), gen);
		got = 0;
		if (!rc_get(c, "hot", 3, copy_u64, &got, &gen) || got != 1)
			hot_misses++;
		if (i < 10)
			rc_get(c, "was-hot", 7, copy_u64, &got, &gen);
	}
	CHECK_EQ_INT(hot_misses, 0);
	CHECK(!rc_get(c, "was-hot", 7, copy_u64, &got, &gen));
	CHECK(rc_count(c) < 64 * 1024 / 100);
	rc_free(c);
}

/* Every write path invalidates what a GET/HEAD reads. */
TEST(s3meta_cache_invalidated_by_writes)
{
	struct s3meta *m = open_meta(0);
	REQUIRE(m != NULL);
	char e[64];
	struct s3meta_bucket b;
	REQUIRE(s3meta_bucket_create(m, "bkt", OWNER, 0) == 0);
	REQUIRE(s3meta_bucket_head(m, "bkt", &b) == 0);
	CHECK_EQ_INT(b.versioning, S3META_UNVERSIONED);
	REQUIRE(put_etag(m, "bkt", "k", "e1") == 0);
	CHECK_EQ_INT(get_etag(m, "bkt", "k", e, sizeof(e)), 0);
	CHECK(!strcmp(e, "e1"));
	CHECK_EQ_INT(get_etag(m, "bkt", "k", e, sizeof(e)), 0); /* from the cache */
	CHECK(!strcmp(e, "e1"));
	CHECK(rc_count(m->cache) >= 2);

	/* Overwrite. */
	REQUIRE(put_etag(m, "bkt", "k", "e2") == 0);
	CHECK_EQ_INT(get_etag(m, "bkt", "k", e, sizeof(e)), 0);
	CHECK(!strcmp(e, "e2"));

	/* Versioning: the bucket row changes, a delete adds a marker, deleting
	 * the marker by id brings the object back. */
	REQUIRE(s3meta_bucket_versioning_set(m, "bkt", S3META_VERSIONING_ENABLED) == 0);
	REQUIRE(s3meta_bucket_head(m, "bkt", &b) == 0);
	CHECK_EQ_INT(b.versioning, S3META_VERSIONING_ENABLED);
	REQUIRE(put_etag(m, "bkt", "k", "e3") == 0);
	CHECK_EQ_INT(get_etag(m, "bkt", "k", e, sizeof(e)), 0);
	CHECK(!strcmp(e, "e3"));
	struct s3meta_del d;
	struct s3meta_locs freed = { 0 };
	REQUIRE(s3meta_object_delete(m, "bkt", "k", NULL, OWNER, &d, &freed) == 0);
	CHECK(d.delete_marker);
	struct s3meta_obj o;
	CHECK_EQ_INT(s3meta_object_get(m, "bkt", "k", NULL, &o), -S3META_ENOSUCHKEY);
	CHECK(o.delete_marker);
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_object_get(m, "bkt", "k", NULL, &o), -S3META_ENOSUCHKEY);
	CHECK(o.delete_marker); /* the marker came from the cache this time */
	s3meta_obj_destroy(&o);
	char marker[S3META_VID_SIZE];
	snprintf(marker, sizeof(marker), "%s", d.version_id);
	REQUIRE(s3meta_object_delete(m, "bkt", "k", marker, OWNER, &d, &freed) == 0);
	CHECK_EQ_INT(get_etag(m, "bkt", "k", e, sizeof(e)), 0);
	CHECK(!strcmp(e, "e3"));

	/* Multipart complete replaces the latest version. */
	struct s3meta_put attrs = { .owner = OWNER };
	char uid[S3META_UPLOAD_ID_SIZE];
	REQUIRE(s3meta_mpu_create(m, "bkt", "k", &attrs, uid) == 0);
	struct s3meta_part_put pp = { .part_number = 1, .size = 10, .etag = "0123456789abcdef0123456789abcdef",
				       .locator = (const uint8_t *)"p1", .locator_len = 2 };
	REQUIRE(s3meta_mpu_put_part(m, "bkt", "k", uid, &pp, &freed) == 0);
	struct s3meta_part_ref ref = { 1, "0123456789abcdef0123456789abcdef" };
	struct s3meta_complete done;
	REQUIRE(s3meta_mpu_complete(m, "bkt", "k", uid, &ref, 1, 0, &done, &freed) == 0);
	CHECK_EQ_INT(get_etag(m, "bkt", "k", e, sizeof(e)), 0);
	CHECK(!strcmp(e, done.etag));

	/* Deleting every version, then the bucket; a new owner's bucket of
	 * the same name is not the old row. */
	struct s3meta_list l;
	struct s3meta_list_req req = { .max = 1000 };
	REQUIRE(s3meta_list_versions(m, "bkt", &req, &l) == 0);
	for (size_t i = 0; i < l.n; i++)
		CHECK_EQ_INT(s3meta_object_delete(m, "bkt", l.v[i].key, l.v[i].version_id, OWNER, &d, &freed), 0);
	s3meta_list_destroy(&l);
	CHECK_EQ_INT(get_etag(m, "bkt", "k", e, sizeof(e)), -S3META_ENOSUCHKEY);
	REQUIRE(s3meta_bucket_delete(m, "bkt") == 0);
	CHECK_EQ_INT(s3meta_bucket_head(m, "bkt", &b), -S3META_ENOSUCHBUCKET);
	CHECK_EQ_INT(get_etag(m, "bkt", "k", e, sizeof(e)), -S3META_ENOSUCHBUCKET);
	REQUIRE(s3meta_bucket_create(m, "bkt", "AKIAOTHER", 0) == 0);
	REQUIRE(s3meta_bucket_head(m, "bkt", &b) == 0);
	CHECK(!strcmp(b.owner, "AKIAOTHER"));
	CHECK_EQ_INT(b.versioning, S3META_UNVERSIONED);
	CHECK_EQ_INT(get_etag(m, "bkt", "k", e, sizeof(e)), -S3META_ENOSUCHKEY);
	s3meta_locs_destroy(&freed);
	s3meta_close(m);
}

/* A reader that misses, reads SQLite, and loses the race to a write must
 * not install the old row (driven step by step through the internals). */
TEST(s3meta_cache_stale_reader_refused)
{
	struct s3meta *m = open_meta(0);
	REQUIRE(m != NULL);
	REQUIRE(s3meta_bucket_create(m, "bkt", OWNER, 0) == 0);
	REQUIRE(put_etag(m, "bkt", "k", "old") == 0);
	struct bkt b;
	REQUIRE(bkt_get_cached(m, "bkt", &b, NULL) == 0);
	uint8_t key[1 + 8 + S3META_KEY_MAX];
	size_t klen = rc_object_key(key, b.id, "k", 1);
	uint64_t gen;
	struct s3meta_obj o;
	memset(&o, 0, sizeof(o));
	rc_invalidate(m->cache, key, klen); /* as if evicted */
	CHECK(!rc_get(m->cache, key, klen, copy_u64, NULL, &gen));
	/* ... the reader's SQLite read happens here and sees "old" ... */
	REQUIRE(put_etag(m, "bkt", "k", "new") == 0);
	uint64_t stale = 42;
	CHECK(!rc_put(m->cache, key, klen, &stale, sizeof(stale), gen));
	char e[64];
	CHECK_EQ_INT(get_etag(m, "bkt", "k", e, sizeof(e)), 0);
	CHECK(!strcmp(e, "new"));
	s3meta_close(m);
}

/* Readers racing a writer: after the writer's put of version N returned,
 * no read that starts later may see a version below N (which is what a
 * stale install would cause). */
struct race {
	struct s3meta *m;
	atomic_int done; /* highest version whose put returned */
	atomic_bool stop;
	atomic_int bad, reads;
};

static void *race_reader(void *arg)
{
	struct race *r = arg;
	while (!atomic_load(&r->stop)) {
		int floor = atomic_load(&r->done);
		char e[64];
		int rc = get_etag(r->m, "bkt", "k", e, sizeof(e));
		int v = rc == 0 ? atoi(e + 1) : -1;
		if (v < floor)
			atomic_fetch_add(&r->bad, 1);
		atomic_fetch_add(&r->reads, 1);
	}
	return NULL;
}

TEST(s3meta_cache_readers_race_writer)
{
	struct race r = { .m = open_meta(0) };
	REQUIRE(r.m != NULL);
	REQUIRE(s3meta_bucket_create(r.m, "bkt", OWNER, 0) == 0);
	REQUIRE(put_etag(r.m, "bkt", "k", "v0") == 0);
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, race_reader, &r);
	int64_t t0 = now_ms();
	for (int v = 1; v <= 400 && now_ms() - t0 < 20000; v++) {
		char e[16];
		snprintf(e, sizeof(e), "v%d", v);
		REQUIRE(put_etag(r.m, "bkt", "k", e) == 0);
		atomic_store(&r.done, v);
		/* Read-your-writes on the writer's own thread. */
		char got[64];
		CHECK_EQ_INT(get_etag(r.m, "bkt", "k", got, sizeof(got)), 0);
		CHECK(!strcmp(got, e));
	}
	atomic_store(&r.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	fprintf(stderr, "  %d reads raced %d writes\n", atomic_load(&r.reads), atomic_load(&r.done));
	CHECK_EQ_INT(atomic_load(&r.bad), 0);
	s3meta_close(r.m);
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_obj(const struct s3meta_obj *a, const struct s3meta_obj *b)
{
	return !strcmp(a->version_id, b->version_id) && a->is_latest == b->is_latest &&
	       a->delete_marker == b->delete_marker && a->size == b->size && a->mtime_ms == b->mtime_ms &&
	       a->parts_count == b->parts_count && same_str(a->etag, b->etag) && same_str(a->owner, b->owner) &&
	       same_str(a->content_type, b->content_type) && same_str(a->cache_control, b->cache_control) &&
	       same_str(a->content_disposition, b->content_disposition) &&
	       same_str(a->content_encoding, b->content_encoding) &&
	       same_str(a->content_language, b->content_language) && same_str(a->expires, b->expires) &&
	       same_str(a->cksum_algo, b->cksum_algo) && same_str(a->cksum_value, b->cksum_value) &&
	       a->user_meta_len == b->user_meta_len &&
	       (!a->user_meta_len || !memcmp(a->user_meta, b->user_meta, a->user_meta_len)) &&
	       a->locator_len == b->locator_len &&
	       (!a->locator_len || !memcmp(a->locator, b->locator, a->locator_len));
}

/* A write installs the row it committed; it must read exactly as the row
 * SQLite gives back, in every versioning state and for every attribute. */
TEST(s3meta_cache_write_installs_same_row)
{
	struct s3meta *m = open_meta(0);
	REQUIRE(m != NULL);
	REQUIRE(s3meta_bucket_create(m, "bkt", OWNER, 0) == 0);
	struct bkt b;
	static const uint8_t umeta[] = { 3, 'a', 'b', 'c', 2, 'x', 'y' };
	struct s3meta_put p = {
		.size = 1234,
		.etag = "0123456789abcdef0123456789abcdef",
		.owner = OWNER,
		.content_type = "image/png",
		.cache_control = "no-cache",
		.content_disposition = "",
		.expires = "Thu, 01 Dec 1994 16:00:00 GMT",
		.user_meta = umeta,
		.user_meta_len = sizeof(umeta),
		.cksum_algo = "CRC32",
		.cksum_value = "AAAAAA==",
		.locator = (const uint8_t *)"D-loc",
		.locator_len = 5,
	};
	for (int state = 0; state < 3; state++) {
		if (state == 1)
			REQUIRE(s3meta_bucket_versioning_set(m, "bkt", S3META_VERSIONING_ENABLED) == 0);
		if (state == 2)
			REQUIRE(s3meta_bucket_versioning_set(m, "bkt", S3META_VERSIONING_SUSPENDED) == 0);
		REQUIRE(bkt_get_cached(m, "bkt", &b, NULL) == 0);
		char vid[S3META_VID_SIZE];
		struct s3meta_locs freed = { 0 };
		REQUIRE(s3meta_object_put(m, "bkt", "key", &p, vid, &freed) == 0);
		uint8_t key[1 + 8 + S3META_KEY_MAX];
		size_t klen = rc_object_key(key, b.id, "key", 3);
		uint64_t gen;
		struct s3meta_obj cached, fresh;
		memset(&cached, 0, sizeof(cached));
		CHECK(rc_get(m->cache, key, klen, copy_u64, NULL, &gen)); /* installed by the put */
		CHECK_EQ_INT(s3meta_object_get(m, "bkt", "key", NULL, &cached), 0);
		rc_invalidate(m->cache, key, klen);
		CHECK_EQ_INT(s3meta_object_get(m, "bkt", "key", NULL, &fresh), 0);
		CHECK(same_obj(&cached, &fresh));
		s3meta_obj_destroy(&cached);
		s3meta_obj_destroy(&fresh);
		/* A delete marker too. */
		struct s3meta_del d;
		REQUIRE(s3meta_object_delete(m, "bkt", "key", NULL, OWNER, &d, &freed) == 0);
		CHECK_EQ_INT(s3meta_object_get(m, "bkt", "key", NULL, &cached), state ? -S3META_ENOSUCHKEY : -S3META_ENOSUCHKEY);
		rc_invalidate(m->cache, key, klen);
		CHECK_EQ_INT(s3meta_object_get(m, "bkt", "key", NULL, &fresh), -S3META_ENOSUCHKEY);
		CHECK(same_obj(&cached, &fresh));
		s3meta_obj_destroy(&cached);
		s3meta_obj_destroy(&fresh);
		s3meta_locs_destroy(&freed);
	}
	/* One transaction writing a key twice installs the last row only. */
	const char *keys[] = { "dup", "dup" };
	struct s3meta_put two[2] = { p, p };
	two[0].etag = "first";
	two[1].etag = "second";
	struct s3meta_locs freed = { 0 };
	REQUIRE(s3meta_object_put_many(m, "bkt", 2, keys, two, &freed) == 0);
	char e[64];
	CHECK_EQ_INT(get_etag(m, "bkt", "dup", e, sizeof(e)), 0);
	CHECK(!strcmp(e, "second"));
	/* A bulk import past the note limit installs nothing (and reads
	 * right all the same). */
	enum { BULK = 300 };
	static char names[BULK][24];
	const char *bk[BULK];
	struct s3meta_put bp[BULK];
	for (int i = 0; i < BULK; i++) {
		snprintf(names[i], sizeof(names[i]), "bulk-%d", i);
		bk[i] = names[i];
		bp[i] = p;
		bp[i].etag = names[i];
	}
	size_t before = rc_count(m->cache);
	REQUIRE(s3meta_object_put_many(m, "bkt", BULK, bk, bp, &freed) == 0);
	CHECK_EQ_INT(rc_count(m->cache), before);
	for (int i = 0; i < BULK; i += 37) {
		CHECK_EQ_INT(get_etag(m, "bkt", names[i], e, sizeof(e)), 0);
		CHECK(!strcmp(e, names[i]));
	}
	s3meta_locs_destroy(&freed);
	s3meta_close(m);
}
