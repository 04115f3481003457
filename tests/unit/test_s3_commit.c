/* The group committer (s3/commit.c) and the group-commit primitives under
 * it: datanode_put_commit_many and s3meta_batch_begin/_end. What matters:
 * jobs queued together are written in one group, each job succeeds or fails
 * on its own, data nobody references is freed, and nothing is accepted
 * once draining began. */
#include "core/platform.h"
#include "core/util.h"
#include "datanode/datanode.h"
#include "datanode/dnmeta.h"
#include "s3/commit.h"
#include "s3/route.h"
#include "s3meta/s3meta.h"
#include "test.h"

#include <sqlite3.h>

#include <pthread.h>
#include <unistd.h>

#define OWNER "committer-test"

struct env {
	char dir[PATH_MAX];
	struct s3meta *meta;
	struct s3route *rt;
	struct s3commit *c;
};

static bool env_open(struct env *e)
{
	char path[PATH_MAX + 16];
	snprintf(e->dir, sizeof(e->dir), "%s", test_tmpdir());
	snprintf(path, sizeof(path), "%s/meta.db", e->dir);
	struct s3meta_config cfg = { .path = path };
	if (s3meta_open(&cfg, &e->meta) != 0)
		return false;
	if (s3meta_bucket_create(e->meta, "bkt", OWNER, 0) != 0)
		return false;
	if (s3route_open(e->dir, 2, &e->rt) != 0)
		return false;
	return s3commit_new(e->meta, e->rt, &e->c) == 0;
}

static void env_close(struct env *e)
{
	s3commit_free(e->c);
	s3route_close(e->rt);
	s3meta_close(e->meta);
}

/* Completion on the committer thread (job->loop NULL): count and wake. */
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int done_count;

static void on_done(struct s3commit_job *j)
{
	(void)j;
	pthread_mutex_lock(&done_mu);
	done_count++;
	pthread_cond_broadcast(&done_cv);
	pthread_mutex_unlock(&done_mu);
}

static bool wait_done(int n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&done_mu);
	while (done_count < n && pthread_cond_timedwait(&done_cv, &done_mu, &ts) == 0)
		;
	bool ok = done_count >= n;
	pthread_mutex_unlock(&done_mu);
	return ok;
}

static int64_t cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A job writing `text` as bucket/key. */
static void put_job(struct env *e, struct s3commit_job *j, const char *bucket, const char *key,
		    const char *text)
{
	memset(j, 0, sizeof(*j));
	j->kind = S3COMMIT_PUT;
	j->bucket = bucket;
	j->key = key;
	j->done = on_done;
	struct s3route_put *p;
	if (s3route_put_begin(e->rt, 0, &p) != 0)
		return;
	if (s3route_put_write(p, text, strlen(text)) != 0 || s3route_put_seal(p) != 0) {
		s3route_put_abort(p);
		return;
	}
	j->data = p;
	j->put = (struct s3meta_put){ .size = (int64_t)strlen(text), .etag = "0123456789abcdef0123456789abcdef",
				      .owner = OWNER };
}

/* The object's content as stored, into buf (NUL-terminated); false if absent. */
static bool read_obj(struct env *e, const char *key, char *buf, size_t cap)
{
	struct s3meta_obj o;
	int rc = s3meta_object_get(e->meta, "bkt", key, NULL, &o);
	bool ok = false;
	if (rc == 0 && (size_t)o.size < cap) {
		struct s3route_get *g;
		size_t got = 0;
		if (o.size == 0) {
			ok = true;
		} else if (s3route_get_open(e->rt, o.locator, o.locator_len, 0, (uint64_t)o.size, &g) == 0) {
			const uint8_t *p;
			size_t n;
			while (s3route_get_next(g, &p, &n) == 1 && got + n < cap) {
				memcpy(buf + got, p, n);
				got += n;
			}
			s3route_get_close(g);
			ok = got == (size_t)o.size;
		}
		buf[got] = '\0';
	}
	s3meta_obj_destroy(&o);
	return ok;
}

/* Whether the data at a locator is still there. */
/* Whether the data node still records the object: read through the
 * version-1 form of the locator (no hint), since a hinted read may still
 * find freed bytes in a volume until GC compacts it (see route.h). */
static bool data_exists(struct env *e, const uint8_t *loc, size_t len)
{
	struct s3route_get *g;
	const uint8_t *p;
	size_t n;
	uint8_t v1[S3ROUTE_LOC_MAX];
	if (len >= 20 && len <= sizeof(v1) && loc[0] == 'D' && loc[1] == 2) {
		memcpy(v1, loc, 20);
		v1[1] = 1;
		loc = v1;
		len = 20;
	}
	if (s3route_get_open(e->rt, loc, len, 0, 1, &g) != 0)
		return false;
	bool ok = s3route_get_next(g, &p, &n) == 1;
	s3route_get_close(g);
	return ok;
}

TEST(s3_commit_group_isolates_failures)
{
	struct env e;
	REQUIRE(env_open(&e));
	done_count = 0;
	enum { N = 12 };
	struct s3commit_job jobs[N];
	char keys[6][16];
	/* Everything is queued while the committer is held: one group. */
	s3commit_hold(e.c, true);
	for (int i = 0; i < 6; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		char text[32];
		snprintf(text, sizeof(text), "data %d", i);
		put_job(&e, &jobs[i], "bkt", keys[i], text);
	}
	put_job(&e, &jobs[6], "nobucket", "k", "lost");    /* NoSuchBucket */
	put_job(&e, &jobs[7], "bkt", "", "empty key");        /* InvalidArgument */
	put_job(&e, &jobs[8], "bkt", "k1", "k1 again");       /* replaces jobs[1] */
	memset(&jobs[9], 0, sizeof(jobs[9]));               /* a part of no upload */
	jobs[9].kind = S3COMMIT_PART;
	jobs[9].bucket = "bkt";
	jobs[9].key = "mp";
	jobs[9].upload_id = "00000000000000000000000000000000";
	jobs[9].done = on_done;
	{
		struct s3commit_job tmp;
		put_job(&e, &tmp, "bkt", "x", "part bytes");
		jobs[9].data = tmp.data;
		jobs[9].part = (struct s3meta_part_put){ .part_number = 1, .size = 10,
							 .etag = "0123456789abcdef0123456789abcdef" };
	}
	memset(&jobs[10], 0, sizeof(jobs[10]));              /* deletes jobs[0]'s key */
	jobs[10].kind = S3COMMIT_DELETE;
	jobs[10].bucket = "bkt";
	jobs[10].key = "k0";
	jobs[10].owner = OWNER;
	jobs[10].done = on_done;
	put_job(&e, &jobs[11], "bkt", "k5", "k5 again");
	for (int i = 0; i < N; i++)
		REQUIRE(s3commit_submit(e.c, &jobs[i]) == 0);
	s3commit_hold(e.c, false);
	REQUIRE(wait_done(N));

	struct s3commit_stats st;
	s3commit_stats(e.c, &st);
	CHECK_EQ_INT(st.groups, 1);
	CHECK_EQ_INT(st.jobs, N);
	for (int i = 0; i < 6; i++)
		CHECK_EQ_INT(jobs[i].rc, 0);
	CHECK_EQ_INT(jobs[6].rc, -S3META_ENOSUCHBUCKET);
	CHECK_EQ_INT(jobs[7].rc, -S3META_EINVALIDARGUMENT);
	CHECK_EQ_INT(jobs[8].rc, 0);
	CHECK_EQ_INT(jobs[9].rc, -S3META_ENOSUCHUPLOAD);
	CHECK_EQ_INT(jobs[10].rc, 0);
	CHECK(jobs[10].del.found);
	CHECK_EQ_INT(jobs[11].rc, 0);
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(jobs[i].data_rc, 0);

	/* The group's effects, in submission order. */
	char buf[64];
	CHECK(!read_obj(&e, "k0", buf, sizeof(buf)));
	CHECK(read_obj(&e, "k1", buf, sizeof(buf)) && strcmp(buf, "k1 again") == 0);
	CHECK(read_obj(&e, "k2", buf, sizeof(buf)) && strcmp(buf, "data 2") == 0);
	CHECK(read_obj(&e, "k4", buf, sizeof(buf)) && strcmp(buf, "data 4") == 0);
	CHECK(read_obj(&e, "k5", buf, sizeof(buf)) && strcmp(buf, "k5 again") == 0);
	/* Data no version references was freed: the failed jobs' fresh data,
	 * the replaced and the deleted versions'. */
	CHECK(!data_exists(&e, jobs[6].loc, jobs[6].loclen));
	CHECK(!data_exists(&e, jobs[9].loc, jobs[9].loclen));
	CHECK(!data_exists(&e, jobs[0].loc, jobs[0].loclen));
	CHECK(!data_exists(&e, jobs[1].loc, jobs[1].loclen));
	CHECK(!data_exists(&e, jobs[5].loc, jobs[5].loclen));
	CHECK(data_exists(&e, jobs[2].loc, jobs[2].loclen));
	CHECK(data_exists(&e, jobs[8].loc, jobs[8].loclen));
	/* jobs[7] never got data recorded: its key was refused before. */
	struct s3meta_usage u;
	REQUIRE(s3meta_bucket_usage(e.meta, "bkt", &u) == 0);
	CHECK_EQ_INT(u.objects, 5); /* k1..k5 */

	/* Draining refuses new work; the job stays the caller's. */
	s3commit_drain(e.c);
	struct s3commit_job late;
	put_job(&e, &late, "bkt", "late", "too late");
	CHECK_EQ_INT(s3commit_submit(e.c, &late), -ESHUTDOWN);
	s3route_put_abort(late.data);
	env_close(&e);
}

/* Many writers at once: every job is answered, and the answers come in
 * fewer groups than jobs when they pile up. */
struct writer_arg {
	struct env *e;
	int id, n;
	struct s3commit_job *jobs;
	char (*keys)[24];
};

static void *writer(void *arg)
{
	struct writer_arg *w = arg;
	for (int i = 0; i < w->n; i++) {
		struct s3commit_job *j = &w->jobs[i];
		snprintf(w->keys[i], sizeof(w->keys[i]), "w%d/%04d", w->id, i);
		put_job(w->e, j, "bkt", w->keys[i], w->keys[i]);
		if (s3commit_submit(w->e->c, j) != 0)
			break;
	}
	return NULL;
}

TEST(s3_commit_concurrent_writers)
{
	struct env e;
	REQUIRE(env_open(&e));
	done_count = 0;
	enum { W = 4, PER = 200 };
	pthread_t th[W];
	struct writer_arg args[W];
	struct s3commit_job *jobs = xcalloc(W * PER, sizeof(*jobs));
	char(*keys)[24] = xcalloc(W * PER, sizeof(*keys));
	s3commit_hold(e.c, true);
	for (int i = 0; i < W; i++) {
		args[i] = (struct writer_arg){ &e, i, PER, jobs + i * PER, keys + i * PER };
		REQUIRE(pthread_create(&th[i], NULL, writer, &args[i]) == 0);
	}
	usleep(20000);
	s3commit_hold(e.c, false);
	for (int i = 0; i < W; i++)
		pthread_join(th[i], NULL);
	REQUIRE(wait_done(W * PER));
	struct s3commit_stats st;
	s3commit_stats(e.c, &st);
	CHECK_EQ_INT(st.jobs, W * PER);
	CHECK(st.groups < st.jobs);
	CHECK(st.max_group > 1 && st.max_group <= S3COMMIT_MAX_BATCH);
	int bad = 0;
	for (int i = 0; i < W * PER; i++) {
		char buf[32];
		if (jobs[i].rc != 0 || jobs[i].data_rc != 0 || !read_obj(&e, keys[i], buf, sizeof(buf)) ||
		    strcmp(buf, keys[i]) != 0)
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
	free(jobs);
	free(keys);
	env_close(&e);
}

/* datanode_put_commit_many: one transaction, but an insert that fails (an
 * object id already taken) fails only its own put. */
static void datanode_group(bool sync_commit)
{
	struct datanode *dn;
	struct datanode_opts o;
	datanode_opts_default(&o);
	o.chunk_bytes = 4096;
	o.sync_commit = sync_commit;
	REQUIRE(datanode_open(test_tmpdir(), 1, &o, &dn) == 0);
	struct dn_oid taken;
	struct datanode_put *w0;
	REQUIRE(datanode_put_begin(dn, 0, NULL, &w0) == 0);
	REQUIRE(datanode_put_write(w0, "first", 5) == 0);
	REQUIRE(datanode_put_commit(w0, &taken, NULL) == 0);

	uint8_t big[10000];
	memset(big, 'x', sizeof(big));
	struct datanode_put *w[3];
	REQUIRE(datanode_put_begin(dn, 0, NULL, &w[0]) == 0);
	REQUIRE(datanode_put_begin(dn, 0, &taken, &w[1]) == 0);
	REQUIRE(datanode_put_begin(dn, 0, NULL, &w[2]) == 0);
	REQUIRE(datanode_put_write(w[0], "alpha", 5) == 0);
	REQUIRE(datanode_put_write(w[1], big, sizeof(big)) == 0); /* 3 chunks */
	REQUIRE(datanode_put_write(w[2], big, sizeof(big)) == 0);
	struct datanode_put_result res[3];
	datanode_put_commit_many(dn, w, 3, res);
	CHECK_EQ_INT(res[0].rc, 0);
	CHECK_EQ_INT(res[1].rc, -SILT_EEXIST);
	CHECK_EQ_INT(res[2].rc, 0);
	CHECK_EQ_INT(res[2].info.nchunks, 3);
	uint8_t buf[sizeof(big)];
	size_t got;
	CHECK(datanode_read(dn, &res[0].oid, 0, buf, 5, &got) == 0 && got == 5 && memcmp(buf, "alpha", 5) == 0);
	CHECK(datanode_read(dn, &taken, 0, buf, 5, &got) == 0 && got == 5 && memcmp(buf, "first", 5) == 0);
	CHECK(datanode_read(dn, &res[2].oid, 0, buf, sizeof(buf), &got) == 0 && got == sizeof(big) &&
	      memcmp(buf, big, sizeof(big)) == 0);
	struct datanode_obj_info info;
	CHECK(datanode_stat(dn, &taken, &info) == 0 && info.size == 5);
	/* Deletes in one transaction: a missing object is reported, not fatal. */
	struct dn_oid del[3] = { res[0].oid, res[2].oid, res[0].oid };
	int rcs[3];
	CHECK_EQ_INT(datanode_delete_many(dn, del, 3, rcs), 0);
	CHECK_EQ_INT(rcs[0], 0);
	CHECK_EQ_INT(rcs[1], 0);
	CHECK_EQ_INT(rcs[2], -SILT_ENOENT);
	CHECK(datanode_stat(dn, &res[2].oid, &info) == -SILT_ENOENT);
	datanode_close(dn);
}

TEST(s3_commit_datanode_group_isolation)
{
	datanode_group(false);
	datanode_group(true); /* the volume fdatasynced once for the group */
}

/* The segments' accounting of inserted chunks moved from per-row triggers
 * (schema 1) to the group commit (schema 2): a database of schema 1 loses
 * its insert triggers when opened, so nothing is counted twice. */
static bool seg_of(const char *dir, struct dnmeta_seg *out)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/meta.db", dir);
	struct dnmeta *m;
	if (dnmeta_open(path, false, &m) != 0)
		return false;
	struct dnconn *c = dnmeta_conn_get(m);
	int rc = dnmeta_seg_get(c, 0, 0, out);
	dnmeta_conn_put(c);
	dnmeta_close(m);
	return rc == 0;
}

static int put_small(struct datanode *dn, const char *text)
{
	struct datanode_put *w;
	int rc = datanode_put_begin(dn, 0, NULL, &w);
	if (rc == 0 && (rc = datanode_put_write(w, text, strlen(text))) != 0) {
		datanode_put_abort(w);
		return rc;
	}
	return rc ? rc : datanode_put_commit(w, NULL, NULL);
}

TEST(s3_commit_dnmeta_accounting_and_v1_upgrade)
{
	const char *dir = test_tmpdir();
	struct datanode_opts o;
	datanode_opts_default(&o);
	struct datanode *dn;
	REQUIRE(datanode_open(dir, 1, &o, &dn) == 0);
	REQUIRE(put_small(dn, "12345") == 0);
	REQUIRE(put_small(dn, "") == 0); /* no chunk: not counted */
	datanode_close(dn);
	struct dnmeta_seg sg;
	REQUIRE(seg_of(dir, &sg));
	CHECK_EQ_INT(sg.live_chunks, 1);
	CHECK_EQ_INT(sg.live_bytes, DNCHUNK_HDR + 5);
	CHECK_EQ_INT(sg.max_end, DNCHUNK_HDR + 5);

	/* Make it a schema-1 database: the insert trigger back, version 1. */
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/meta.db", dir);
	sqlite3 *db;
	REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db,
			   "CREATE TRIGGER objects_ins AFTER INSERT ON objects WHEN NEW.stream IS NOT NULL BEGIN"
			   " UPDATE segments SET live_chunks = live_chunks + 1000 WHERE stream = NEW.stream"
			   " AND seg = NEW.seg; END; PRAGMA user_version = 1;",
			   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);

	REQUIRE(datanode_open(dir, 1, &o, &dn) == 0);
	REQUIRE(put_small(dn, "abc") == 0);
	datanode_close(dn);
	REQUIRE(seg_of(dir, &sg));
	CHECK_EQ_INT(sg.live_chunks, 2);
	CHECK_EQ_INT(sg.live_bytes, 2 * DNCHUNK_HDR + 8);
	CHECK_EQ_INT(sg.max_end, 2 * DNCHUNK_HDR + 8);
	REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
	sqlite3_stmt *st;
	int version = -1, triggers = -1;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%_ins'",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		triggers = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	CHECK_EQ_INT(version, 2);
	CHECK_EQ_INT(triggers, 0);
}

/* s3meta_batch_*: the calls of a group share one transaction; one that
 * fails undoes only itself; reads on the group's thread see the group. */
TEST(s3_commit_s3meta_batch)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/meta.db", test_tmpdir());
	struct s3meta_config cfg = { .path = path };
	struct s3meta *m;
	REQUIRE(s3meta_open(&cfg, &m) == 0);
	REQUIRE(s3meta_bucket_create(m, "bkt", OWNER, 0) == 0);
	REQUIRE(s3meta_bucket_versioning_set(m, "bkt", S3META_VERSIONING_ENABLED) == 0);
	struct s3meta_put p = { .size = 3, .etag = "e", .owner = OWNER, .locator = (const uint8_t *)"L1",
				.locator_len = 2 };
	char vid[S3META_VID_SIZE];
	struct s3meta_locs freed = { 0 };
	REQUIRE(s3meta_batch_begin(m, true) == 0);
	CHECK_EQ_INT(s3meta_batch_begin(m, true), -S3META_EINTERNAL); /* no nesting */
	CHECK_EQ_INT(s3meta_object_put(m, "bkt", "one", &p, vid, &freed), 0);
	CHECK_EQ_INT(s3meta_object_put(m, "nob", "two", &p, vid, &freed), -S3META_ENOSUCHBUCKET);
	struct s3meta_del del;
	CHECK_EQ_INT(s3meta_object_delete(m, "bkt", "one", "0000000000000001", OWNER, &del, &freed), 0);
	CHECK(!del.found);
	CHECK_EQ_INT(s3meta_object_put(m, "bkt", "three", &p, vid, &freed), 0);
	struct s3meta_obj o;
	CHECK_EQ_INT(s3meta_object_get(m, "bkt", "one", NULL, &o), 0);
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_batch_end(m), 0);
	CHECK_EQ_INT(s3meta_batch_end(m), -S3META_EINTERNAL);
	CHECK_EQ_INT(s3meta_object_get(m, "bkt", "one", NULL, &o), 0);
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_object_get(m, "bkt", "three", NULL, &o), 0);
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(freed.n, 0);
	struct s3meta_usage u;
	REQUIRE(s3meta_bucket_usage(m, "bkt", &u) == 0);
	CHECK_EQ_INT(u.versions, 2);
	/* Ordinary calls work again afterwards, on pooled connections. */
	CHECK_EQ_INT(s3meta_object_put(m, "bkt", "four", &p, vid, &freed), 0);
	s3meta_locs_destroy(&freed);

	/* Optimistic: usage counters summed per bucket and written at the
	 * end; a failed call adds nothing; a bucket call inside the group is
	 * seen by the calls after it. */
	REQUIRE(s3meta_bucket_create(m, "two", OWNER, 0) == 0);
	struct s3meta_put q = { .size = 100, .etag = "e", .owner = OWNER, .locator = (const uint8_t *)"L2",
				.locator_len = 2 };
	REQUIRE(s3meta_batch_begin(m, false) == 0);
	CHECK_EQ_INT(s3meta_object_put(m, "two", "x", &q, vid, &freed), 0);
	CHECK_EQ_INT(s3meta_object_put(m, "two", "y", &q, vid, &freed), 0);
	CHECK_EQ_INT(s3meta_object_put(m, "two", "x", &q, vid, &freed), 0);        /* replaces x */
	CHECK_EQ_INT(s3meta_object_put(m, "bkt", "five", &q, vid, &freed), 0);     /* versioned */
	CHECK_EQ_INT(s3meta_object_put(m, "two", "", &q, vid, &freed), -S3META_EINVALIDARGUMENT);
	CHECK_EQ_INT(s3meta_bucket_versioning_set(m, "two", S3META_VERSIONING_ENABLED), 0);
	CHECK_EQ_INT(s3meta_object_put(m, "two", "y", &q, vid, &freed), 0);        /* now a second version */
	CHECK(vid[0] && strcmp(vid, "null") != 0);
	CHECK_EQ_INT(s3meta_batch_end(m), 0);
	CHECK_EQ_INT(freed.n, 1); /* x's first data */
	s3meta_locs_destroy(&freed);
	REQUIRE(s3meta_bucket_usage(m, "two", &u) == 0);
	CHECK_EQ_INT(u.objects, 2);
	CHECK_EQ_INT(u.bytes, 200);
	CHECK_EQ_INT(u.versions, 3);
	CHECK_EQ_INT(u.version_bytes, 300);
	REQUIRE(s3meta_bucket_usage(m, "bkt", &u) == 0);
	CHECK_EQ_INT(u.versions, 4);
	CHECK_EQ_INT(u.objects, 4);
	s3meta_close(m);
}

/* A write that fails after it changed rows (here a trigger refuses the
 * version row after the old null version was deleted) must not take its
 * half-done changes, nor the rest of its group, down with it: the
 * optimistic group reports -EAGAIN and the isolated rerun fails only that
 * write, which leaves the key as it was. */
static bool add_poison_trigger(const char *path)
{
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return false;
	int rc = sqlite3_exec(db,
			      "CREATE TRIGGER poison BEFORE INSERT ON versions"
			      " WHEN NEW.name = CAST('poison' AS BLOB)"
			      " BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
			      NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK;
}

TEST(s3_commit_half_done_write_is_undone)
{
	struct env e;
	REQUIRE(env_open(&e));
	done_count = 0;
	/* "poison" exists before the trigger does. */
	struct s3commit_job first;
	put_job(&e, &first, "bkt", "poison", "the original");
	REQUIRE(s3commit_submit(e.c, &first) == 0);
	REQUIRE(wait_done(1));
	REQUIRE(first.rc == 0);
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/meta.db", e.dir);
	REQUIRE(add_poison_trigger(path));

	/* The same through the batch API: optimistic, then isolated. */
	struct s3meta_put p = { .size = 1, .etag = "e", .owner = OWNER };
	char vid[S3META_VID_SIZE];
	struct s3meta_locs freed = { 0 };
	REQUIRE(s3meta_batch_begin(e.meta, false) == 0);
	CHECK_EQ_INT(s3meta_object_put(e.meta, "bkt", "a", &p, vid, &freed), 0);
	CHECK(s3meta_object_put(e.meta, "bkt", "poison", &p, vid, &freed) != 0);
	CHECK(s3meta_object_put(e.meta, "bkt", "b", &p, vid, &freed) != 0); /* the group is spoiled */
	CHECK_EQ_INT(s3meta_batch_end(e.meta), -EAGAIN);
	s3meta_locs_destroy(&freed);
	struct s3meta_obj o;
	CHECK_EQ_INT(s3meta_object_get(e.meta, "bkt", "a", NULL, &o), -S3META_ENOSUCHKEY);
	s3meta_obj_destroy(&o);

	struct s3commit_job jobs[3];
	put_job(&e, &jobs[0], "bkt", "k1", "one");
	put_job(&e, &jobs[1], "bkt", "poison", "replacement");
	put_job(&e, &jobs[2], "bkt", "k2", "two");
	s3commit_hold(e.c, true);
	for (int i = 0; i < 3; i++)
		REQUIRE(s3commit_submit(e.c, &jobs[i]) == 0);
	s3commit_hold(e.c, false);
	REQUIRE(wait_done(4));
	CHECK_EQ_INT(jobs[0].rc, 0);
	CHECK(jobs[1].rc != 0);
	CHECK_EQ_INT(jobs[2].rc, 0);
	char buf[64];
	CHECK(read_obj(&e, "k1", buf, sizeof(buf)) && strcmp(buf, "one") == 0);
	CHECK(read_obj(&e, "k2", buf, sizeof(buf)) && strcmp(buf, "two") == 0);
	CHECK(read_obj(&e, "poison", buf, sizeof(buf)) && strcmp(buf, "the original") == 0);
	CHECK(data_exists(&e, first.loc, first.loclen));
	CHECK(!data_exists(&e, jobs[1].loc, jobs[1].loclen));
	struct s3meta_usage u;
	REQUIRE(s3meta_bucket_usage(e.meta, "bkt", &u) == 0);
	CHECK_EQ_INT(u.objects, 3);
	env_close(&e);
}

/* DeleteObjects as one job: every key a call of the group's transaction.
 * A key whose delete fails after it changed rows (the poison trigger
 * refuses the null delete marker after the null version was removed, in a
 * suspended bucket) spoils the optimistic group; the isolated rerun undoes
 * that key alone. The other keys, a key refused by the caller and the other
 * jobs of the group keep their own results, and the data freed by the
 * successful deletes is released. */
TEST(s3_commit_delete_many_isolates_a_key)
{
	struct env e;
	REQUIRE(env_open(&e));
	done_count = 0;
	REQUIRE(s3meta_bucket_create(e.meta, "sus", OWNER, 0) == 0);
	REQUIRE(s3meta_bucket_versioning_set(e.meta, "sus", S3META_VERSIONING_SUSPENDED) == 0);
	struct s3commit_job pre[4];
	put_job(&e, &pre[0], "sus", "a", "alpha");
	put_job(&e, &pre[1], "sus", "poison", "poison data");
	put_job(&e, &pre[2], "sus", "b", "beta");
	put_job(&e, &pre[3], "bkt", "u1", "unversioned");
	for (int i = 0; i < 4; i++)
		REQUIRE(s3commit_submit(e.c, &pre[i]) == 0);
	REQUIRE(wait_done(4));
	for (int i = 0; i < 4; i++)
		REQUIRE(pre[i].rc == 0);
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/meta.db", e.dir);
	REQUIRE(add_poison_trigger(path));
	struct s3commit_stats st0, st1;
	s3commit_stats(e.c, &st0);

	struct s3commit_key keys[6] = {
		{ .key = "a" },
		{ .key = "poison" },
		{ .key = NULL, .rc = -S3META_EINVALIDARGUMENT }, /* refused by the caller */
		{ .key = "b" },
		{ .key = "missing" },
		{ .key = "b", .version_id = "not-a-version" },
	};
	struct s3commit_key ukeys[1] = { { .key = "u1" } };
	struct s3commit_job jobs[3];
	memset(jobs, 0, sizeof(jobs));
	jobs[0] = (struct s3commit_job){ .kind = S3COMMIT_DELETE_MANY, .bucket = "sus", .owner = OWNER,
					 .keys = keys, .nkeys = 6, .done = on_done };
	jobs[1] = (struct s3commit_job){ .kind = S3COMMIT_DELETE_MANY, .bucket = "bkt", .owner = OWNER,
					 .keys = ukeys, .nkeys = 1, .done = on_done };
	put_job(&e, &jobs[2], "bkt", "after", "written in the same group");
	s3commit_hold(e.c, true);
	for (int i = 0; i < 3; i++)
		REQUIRE(s3commit_submit(e.c, &jobs[i]) == 0);
	s3commit_hold(e.c, false);
	REQUIRE(wait_done(7));
	s3commit_stats(e.c, &st1);
	CHECK_EQ_INT(st1.groups - st0.groups, 1);

	CHECK_EQ_INT(jobs[0].rc, 0);
	CHECK_EQ_INT(keys[0].rc, 0);
	CHECK(keys[0].del.delete_marker);
	CHECK(strcmp(keys[0].del.version_id, "null") == 0);
	CHECK(keys[1].rc != 0);
	CHECK(!keys[1].del.delete_marker);
	CHECK_EQ_INT(keys[2].rc, -S3META_EINVALIDARGUMENT);
	CHECK_EQ_INT(keys[3].rc, 0);
	CHECK(keys[3].del.delete_marker);
	CHECK_EQ_INT(keys[4].rc, 0); /* a missing key gets a marker too */
	CHECK_EQ_INT(keys[5].rc, -S3META_EINVALIDARGUMENT);
	CHECK_EQ_INT(jobs[1].rc, 0);
	CHECK_EQ_INT(ukeys[0].rc, 0);
	CHECK(ukeys[0].del.found);
	CHECK_EQ_INT(jobs[2].rc, 0);

	char buf[64];
	CHECK(!read_obj(&e, "a", buf, sizeof(buf)));
	CHECK(!read_obj(&e, "b", buf, sizeof(buf)));
	struct s3meta_obj o;
	CHECK_EQ_INT(s3meta_object_get(e.meta, "sus", "poison", NULL, &o), 0);
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_object_get(e.meta, "bkt", "u1", NULL, &o), -S3META_ENOSUCHKEY);
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_object_get(e.meta, "bkt", "after", NULL, &o), 0);
	s3meta_obj_destroy(&o);
	/* The null versions the markers replaced, and u1's data, are freed;
	 * poison's is still referenced. */
	CHECK(!data_exists(&e, pre[0].loc, pre[0].loclen));
	CHECK(data_exists(&e, pre[1].loc, pre[1].loclen));
	CHECK(!data_exists(&e, pre[2].loc, pre[2].loclen));
	CHECK(!data_exists(&e, pre[3].loc, pre[3].loclen));
	env_close(&e);
}

/* A group holds at most S3COMMIT_MAX_CALLS metadata calls past its first
 * job: two large DeleteObjects jobs are two groups, a small job queued
 * behind them rides with the second. */
TEST(s3_commit_group_call_cap)
{
	struct env e;
	REQUIRE(env_open(&e));
	done_count = 0;
	enum { K = S3COMMIT_MAX_CALLS - 10 };
	struct s3commit_key *k1 = xcalloc(K, sizeof(*k1)), *k2 = xcalloc(K, sizeof(*k2));
	char(*names)[24] = xcalloc(K, sizeof(*names));
	for (int i = 0; i < K; i++) {
		snprintf(names[i], sizeof(names[i]), "gone/%d", i);
		k1[i].key = k2[i].key = names[i];
	}
	struct s3commit_job jobs[3];
	memset(jobs, 0, sizeof(jobs));
	jobs[0] = (struct s3commit_job){ .kind = S3COMMIT_DELETE_MANY, .bucket = "bkt", .owner = OWNER,
					 .keys = k1, .nkeys = K, .done = on_done };
	jobs[1] = jobs[0];
	jobs[1].keys = k2;
	put_job(&e, &jobs[2], "bkt", "small", "small");
	s3commit_hold(e.c, true);
	for (int i = 0; i < 3; i++)
		REQUIRE(s3commit_submit(e.c, &jobs[i]) == 0);
	s3commit_hold(e.c, false);
	REQUIRE(wait_done(3));
	struct s3commit_stats st;
	s3commit_stats(e.c, &st);
	CHECK_EQ_INT(st.groups, 2);
	CHECK_EQ_INT(st.max_group, 2);
	int bad = 0;
	for (int i = 0; i < K; i++)
		bad += k1[i].rc != 0 || k2[i].rc != 0 || k1[i].del.found;
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(jobs[2].rc, 0);
	free(k1);
	free(k2);
	free(names);
	env_close(&e);
}

/* CreateMultipartUpload and AbortMultipartUpload as jobs: the upload id
 * comes back in the job, the abort frees the parts' data, and errors are
 * the job's own. */
TEST(s3_commit_mpu_create_and_abort)
{
	struct env e;
	REQUIRE(env_open(&e));
	done_count = 0;
	struct s3commit_job cr[2];
	memset(cr, 0, sizeof(cr));
	cr[0] = (struct s3commit_job){ .kind = S3COMMIT_MPU_CREATE, .bucket = "bkt", .key = "mp", .done = on_done };
	cr[0].put = (struct s3meta_put){ .owner = OWNER, .content_type = "text/plain", .cksum_algo = "CRC32" };
	cr[1] = (struct s3commit_job){ .kind = S3COMMIT_MPU_CREATE, .bucket = "nobucket", .key = "mp",
				       .done = on_done };
	cr[1].put = (struct s3meta_put){ .owner = OWNER };
	s3commit_hold(e.c, true);
	for (int i = 0; i < 2; i++)
		REQUIRE(s3commit_submit(e.c, &cr[i]) == 0);
	s3commit_hold(e.c, false);
	REQUIRE(wait_done(2));
	CHECK_EQ_INT(cr[0].rc, 0);
	CHECK_EQ_INT(strlen(cr[0].new_upload_id), 32);
	CHECK_EQ_INT(cr[1].rc, -S3META_ENOSUCHBUCKET);
	CHECK_EQ_INT(cr[1].new_upload_id[0], 0);
	struct s3meta_parts ps;
	CHECK_EQ_INT(s3meta_mpu_list_parts(e.meta, "bkt", "mp", cr[0].new_upload_id, 0, 0, &ps), 0);
	CHECK(ps.cksum_algo && strcmp(ps.cksum_algo, "CRC32") == 0);
	s3meta_parts_destroy(&ps);

	/* Two parts, then the abort (twice: the second finds no upload). */
	struct s3commit_job parts[2], ab[2];
	for (int i = 0; i < 2; i++) {
		struct s3commit_job tmp;
		put_job(&e, &tmp, "bkt", "x", "part bytes");
		memset(&parts[i], 0, sizeof(parts[i]));
		parts[i].kind = S3COMMIT_PART;
		parts[i].bucket = "bkt";
		parts[i].key = "mp";
		parts[i].upload_id = cr[0].new_upload_id;
		parts[i].data = tmp.data;
		parts[i].part = (struct s3meta_part_put){ .part_number = i + 1, .size = 10,
							  .etag = "0123456789abcdef0123456789abcdef" };
		parts[i].done = on_done;
		REQUIRE(s3commit_submit(e.c, &parts[i]) == 0);
	}
	REQUIRE(wait_done(4));
	CHECK_EQ_INT(parts[0].rc, 0);
	CHECK_EQ_INT(parts[1].rc, 0);
	CHECK(data_exists(&e, parts[0].loc, parts[0].loclen));
	memset(ab, 0, sizeof(ab));
	for (int i = 0; i < 2; i++)
		ab[i] = (struct s3commit_job){ .kind = S3COMMIT_MPU_ABORT, .bucket = "bkt", .key = "mp",
					       .upload_id = cr[0].new_upload_id, .done = on_done };
	s3commit_hold(e.c, true);
	for (int i = 0; i < 2; i++)
		REQUIRE(s3commit_submit(e.c, &ab[i]) == 0);
	s3commit_hold(e.c, false);
	REQUIRE(wait_done(6));
	CHECK_EQ_INT(ab[0].rc, 0);
	CHECK_EQ_INT(ab[1].rc, -S3META_ENOSUCHUPLOAD);
	CHECK(!data_exists(&e, parts[0].loc, parts[0].loclen));
	CHECK(!data_exists(&e, parts[1].loc, parts[1].loclen));
	CHECK_EQ_INT(s3meta_mpu_list_parts(e.meta, "bkt", "mp", cr[0].new_upload_id, 0, 0, &ps),
		     -S3META_ENOSUCHUPLOAD);
	s3meta_parts_destroy(&ps);

	/* Refused while draining, like every kind. */
	s3commit_drain(e.c);
	struct s3commit_job late = { .kind = S3COMMIT_MPU_CREATE, .bucket = "bkt", .key = "late", .done = on_done };
	CHECK_EQ_INT(s3commit_submit(e.c, &late), -ESHUTDOWN);
	env_close(&e);
}

/* Bucket writes are committer jobs too: in one group, each answers as its
 * own call would, in order with the object writes around it. */
TEST(s3_commit_bucket_writes)
{
	struct env e;
	REQUIRE(env_open(&e));
	done_count = 0;
	struct s3commit_job j[7];
	memset(j, 0, sizeof(j));
	j[0] = (struct s3commit_job){ .kind = S3COMMIT_BUCKET_CREATE, .bucket = "newb", .owner = OWNER };
	j[1] = (struct s3commit_job){ .kind = S3COMMIT_BUCKET_CREATE, .bucket = "newb", .owner = OWNER };
	j[2] = (struct s3commit_job){ .kind = S3COMMIT_BUCKET_CREATE, .bucket = "newb", .owner = "someone-else" };
	j[3] = (struct s3commit_job){ .kind = S3COMMIT_BUCKET_VERSIONING, .bucket = "newb",
				      .versioning = S3META_VERSIONING_ENABLED };
	put_job(&e, &j[4], "newb", "k", "object in the new bucket");
	j[5] = (struct s3commit_job){ .kind = S3COMMIT_BUCKET_DELETE, .bucket = "newb" };
	j[6] = (struct s3commit_job){ .kind = S3COMMIT_BUCKET_VERSIONING, .bucket = "missing",
				      .versioning = S3META_VERSIONING_SUSPENDED };
	REQUIRE(j[4].data);
	s3commit_hold(e.c, true);
	for (int i = 0; i < 7; i++) {
		j[i].done = on_done;
		REQUIRE(s3commit_submit(e.c, &j[i]) == 0);
	}
	s3commit_hold(e.c, false);
	REQUIRE(wait_done(7));
	CHECK_EQ_INT(j[0].rc, 0);
	CHECK_EQ_INT(j[1].rc, -S3META_EBUCKETOWNED);
	CHECK_EQ_INT(j[2].rc, -S3META_EBUCKETEXISTS);
	CHECK_EQ_INT(j[3].rc, 0);
	CHECK_EQ_INT(j[4].data_rc, 0);
	CHECK_EQ_INT(j[4].rc, 0);
	CHECK_EQ_INT(j[5].rc, -S3META_EBUCKETNOTEMPTY);
	CHECK_EQ_INT(j[6].rc, -S3META_ENOSUCHBUCKET);
	struct s3meta_bucket b;
	REQUIRE(s3meta_bucket_head(e.meta, "newb", &b) == 0);
	CHECK(strcmp(b.owner, OWNER) == 0);
	CHECK_EQ_INT(b.versioning, S3META_VERSIONING_ENABLED);

	/* An empty bucket goes; then it is gone. */
	struct s3commit_job c = { .kind = S3COMMIT_BUCKET_CREATE, .bucket = "empty", .owner = OWNER,
				  .done = on_done };
	struct s3commit_job d = { .kind = S3COMMIT_BUCKET_DELETE, .bucket = "empty", .done = on_done };
	REQUIRE(s3commit_submit(e.c, &c) == 0);
	REQUIRE(s3commit_submit(e.c, &d) == 0);
	REQUIRE(wait_done(9));
	CHECK_EQ_INT(c.rc, 0);
	CHECK_EQ_INT(d.rc, 0);
	CHECK_EQ_INT(s3meta_bucket_head(e.meta, "empty", &b), -S3META_ENOSUCHBUCKET);
	env_close(&e);
}

/* How much a write costs the committer in groups of 16 (no network, no
 * loops): build/unit_tests tool_s3_commit_cost. */
TEST(tool_s3_commit_cost)
{
	struct env e;
	REQUIRE(env_open(&e));
	done_count = 0;
	enum { G = 16, ROUNDS = 400 };
	struct s3commit_job *jobs = xcalloc(G * ROUNDS, sizeof(*jobs));
	char(*keys)[24] = xcalloc(G * ROUNDS, sizeof(*keys));
	char body[4096];
	memset(body, 'b', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	int64_t busy_us = 0, cpu = 0;
	for (int r = 0; r < ROUNDS; r++) {
		s3commit_hold(e.c, true);
		for (int i = 0; i < G; i++) {
			int k = r * G + i;
			snprintf(keys[k], sizeof(keys[k]), "bench/%08d", k);
			put_job(&e, &jobs[k], "bkt", keys[k], body);
			REQUIRE(s3commit_submit(e.c, &jobs[k]) == 0);
		}
		int64_t t0 = mono_us(), c0 = cpu_us();
		s3commit_hold(e.c, false);
		REQUIRE(wait_done((r + 1) * G));
		busy_us += mono_us() - t0;
		cpu += cpu_us() - c0;
	}
	printf("  committer: %d PUTs in groups of %d: %.1f us wall, %.1f us CPU per PUT\n", G * ROUNDS, G,
	       (double)busy_us / (G * ROUNDS), (double)cpu / (G * ROUNDS));
	free(jobs);
	free(keys);
	env_close(&e);
}
