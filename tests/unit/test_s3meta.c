/* test_s3meta.c - the metadata service: buckets, users, version semantics,
 * listings (checked against a brute-force model), multipart uploads,
 * persistence. `build/unit_tests tool_s3meta_bench` runs a printed listing benchmark over
 * 1,000,000 keys. */
#include "core/platform.h"
#include "core/util.h"
#include "core/wbuf.h"
#include "s3meta/s3meta.h"
#include "test.h"

#include <openssl/evp.h>

#define OWNER "AKIAOWNER"

static struct s3meta *meta_open(const char *dir)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/meta.db", dir);
	struct s3meta_config cfg = { .path = path };
	struct s3meta *m = NULL;
	int rc = s3meta_open(&cfg, &m);
	if (rc)
		fprintf(stderr, "s3meta_open: %d\n", rc);
	return m;
}

static struct s3meta *fresh(void)
{
	return meta_open(test_tmpdir());
}

/* Puts key with a locator "loc:<tag>" and returns the put's rc; vid may be
 * NULL; the freed locators (if any) are appended to `freed`. */
static int put(struct s3meta *m, const char *bucket, const char *key, int64_t size, const char *tag,
	       char *vid, struct s3meta_locs *freed)
{
	char loc[128];
	snprintf(loc, sizeof(loc), "loc:%s", tag);
	struct s3meta_put p = {
		.size = size,
		.etag = "5d41402abc4b2a76b9719d911017c592",
		.owner = OWNER,
		.content_type = "text/plain",
		.locator = (const uint8_t *)loc,
		.locator_len = strlen(loc),
	};
	char v[S3META_VID_SIZE];
	struct s3meta_locs tmp = { 0 };
	int rc = s3meta_object_put(m, bucket, key, &p, vid ? vid : v, freed ? freed : &tmp);
	s3meta_locs_destroy(&tmp);
	return rc;
}

static bool locs_has(const struct s3meta_locs *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].len == strlen(s) && !memcmp(l->v[i].p, s, l->v[i].len))
			return true;
	return false;
}

static bool loc_is(const struct s3meta_obj *o, const char *s)
{
	return o->locator_len == strlen(s) && !memcmp(o->locator, s, o->locator_len);
}

/* ---- buckets and users ------------------------------------------------------------ */

TEST(s3meta_bucket_names)
{
	static const struct {
		const char *name;
		bool ok;
	} cases[] = {
		{ "abc", true },
		{ "my-bucket.example", true },
		{ "0bucket9", true },
		{ "a.b-c.d", true },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true }, /* 63 */
		{ "1.2.3", true },
		{ "192.168.5.4.5", true },
		{ "ab", false },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false }, /* 64 */
		{ "", false },
		{ "MyBucket", false },
		{ "my_bucket", false },
		{ "-bucket", false },
		{ "bucket-", false },
		{ ".bucket", false },
		{ "bucket.", false },
		{ "my..bucket", false },
		{ "192.168.5.4", false },
		{ "10.0.0.1", false },
		{ "xn--bucket", false },
		{ "bucket-s3alias", false },
		{ "bucket--ol-s3", false },
		{ "sthree-bucket", false },
		{ "bucket.mrap", false },
		{ "bucket--x-s3", false },
		{ "buck et", false },
		{ "bücket", false },
	};
	for (size_t i = 0; i < SILT_ARRAY_LEN(cases); i++) {
		int rc = s3meta_bucket_name_check(cases[i].name);
		if ((rc == 0) != cases[i].ok) {
			fprintf(stderr, "  bucket name '%s': rc %d\n", cases[i].name, rc);
			CHECK((rc == 0) == cases[i].ok);
		}
		if (!cases[i].ok)
			CHECK_EQ_INT(rc, -S3META_EINVALIDBUCKETNAME);
	}
	CHECK_EQ_INT(s3meta_bucket_name_check(NULL), -S3META_EINVALIDBUCKETNAME);
}

TEST(s3meta_errinfo)
{
	const struct s3meta_errinfo *e = s3meta_errinfo(-S3META_ENOSUCHKEY);
	CHECK(!strcmp(e->code, "NoSuchKey"));
	CHECK_EQ_INT(e->http_status, 404);
	e = s3meta_errinfo(-S3META_EBUCKETOWNED);
	CHECK(!strcmp(e->code, "BucketAlreadyOwnedByYou"));
	CHECK_EQ_INT(e->http_status, 409);
	CHECK_EQ_INT(s3meta_errinfo(-S3META_EMETHODNOTALLOWED)->http_status, 405);
	CHECK(!strcmp(s3meta_errinfo(-S3META_EKEYTOOLONG)->code, "KeyTooLongError"));
	CHECK(!strcmp(s3meta_errinfo(-S3META_EENTITYTOOSMALL)->code, "EntityTooSmall"));
	CHECK(!strcmp(s3meta_errinfo(-EIO)->code, "InternalError"));
	CHECK_EQ_INT(s3meta_errinfo(-EIO)->http_status, 500);
	CHECK(!strcmp(s3meta_errinfo(-S3META_ELAST)->code, "InternalError"));
	/* Every code has an entry. */
	for (int e2 = S3META_EINTERNAL; e2 < S3META_ELAST; e2++) {
		const struct s3meta_errinfo *x = s3meta_errinfo(-e2);
		CHECK(x->code && x->message && x->http_status >= 400);
		if (e2 != S3META_EINTERNAL)
			CHECK(strcmp(x->code, "InternalError"));
	}
}

TEST(s3meta_buckets)
{
	struct s3meta *m = fresh();
	REQUIRE(m);
	CHECK_EQ_INT(s3meta_bucket_create(m, "alpha", OWNER, 1000), 0);
	CHECK_EQ_INT(s3meta_bucket_create(m, "beta", OWNER, 0), 0);
	CHECK_EQ_INT(s3meta_bucket_create(m, "gamma", "OTHERKEY", 0), 0);
	CHECK_EQ_INT(s3meta_bucket_create(m, "alpha", OWNER, 0), -S3META_EBUCKETOWNED);
	CHECK_EQ_INT(s3meta_bucket_create(m, "alpha", "OTHERKEY", 0), -S3META_EBUCKETEXISTS);
	CHECK_EQ_INT(s3meta_bucket_create(m, "Bad_Name", OWNER, 0), -S3META_EINVALIDBUCKETNAME);

	struct s3meta_bucket b;
	CHECK_EQ_INT(s3meta_bucket_head(m, "alpha", &b), 0);
	CHECK(!strcmp(b.name, "alpha") && !strcmp(b.owner, OWNER));
	CHECK_EQ_INT(b.created_ms, 1000);
	CHECK_EQ_INT(b.versioning, S3META_UNVERSIONED);
	CHECK_EQ_INT(s3meta_bucket_head(m, "nope", NULL), -S3META_ENOSUCHBUCKET);

	struct s3meta_bucket *v;
	size_t n;
	CHECK_EQ_INT(s3meta_bucket_list(m, OWNER, &v, &n), 0);
	CHECK_EQ_INT(n, 2);
	if (n == 2)
		CHECK(!strcmp(v[0].name, "alpha") && !strcmp(v[1].name, "beta"));
	free(v);
	CHECK_EQ_INT(s3meta_bucket_list(m, NULL, &v, &n), 0);
	CHECK_EQ_INT(n, 3);
	free(v);

	/* Not empty: an object; then only a delete marker; then an upload. */
	CHECK_EQ_INT(put(m, "alpha", "k", 1, "a", NULL, NULL), 0);
	CHECK_EQ_INT(s3meta_bucket_delete(m, "alpha"), -S3META_EBUCKETNOTEMPTY);
	CHECK_EQ_INT(s3meta_bucket_versioning_set(m, "alpha", S3META_VERSIONING_ENABLED), 0);
	struct s3meta_del d;
	struct s3meta_locs fl = { 0 };
	CHECK_EQ_INT(s3meta_object_delete(m, "alpha", "k", "null", OWNER, &d, &fl), 0);
	CHECK(d.found && !d.delete_marker);
	CHECK(locs_has(&fl, "loc:a"));
	CHECK_EQ_INT(s3meta_object_delete(m, "alpha", "k", NULL, OWNER, &d, &fl), 0);
	CHECK(d.delete_marker);
	CHECK_EQ_INT(s3meta_bucket_delete(m, "alpha"), -S3META_EBUCKETNOTEMPTY);
	char dmv[S3META_VID_SIZE];
	memcpy(dmv, d.version_id, sizeof(dmv));
	CHECK_EQ_INT(s3meta_object_delete(m, "alpha", "k", dmv, OWNER, &d, &fl), 0);
	CHECK(d.found && d.delete_marker);
	struct s3meta_put attrs = { .owner = OWNER };
	char uid[S3META_UPLOAD_ID_SIZE];
	CHECK_EQ_INT(s3meta_mpu_create(m, "alpha", "up", &attrs, uid), 0);
	CHECK_EQ_INT(s3meta_bucket_delete(m, "alpha"), -S3META_EBUCKETNOTEMPTY);
	CHECK_EQ_INT(s3meta_mpu_abort(m, "alpha", "up", uid, &fl), 0);
	CHECK_EQ_INT(s3meta_bucket_delete(m, "alpha"), 0);
	CHECK_EQ_INT(s3meta_bucket_delete(m, "alpha"), -S3META_ENOSUCHBUCKET);
	CHECK_EQ_INT(s3meta_bucket_head(m, "alpha", NULL), -S3META_ENOSUCHBUCKET);
	CHECK_EQ_INT(put(m, "alpha", "k", 1, "a", NULL, NULL), -S3META_ENOSUCHBUCKET);
	/* The name is free again. */
	CHECK_EQ_INT(s3meta_bucket_create(m, "alpha", "OTHERKEY", 0), 0);
	CHECK_EQ_INT(s3meta_bucket_versioning_set(m, "alpha", S3META_UNVERSIONED), -S3META_EMALFORMEDXML);
	CHECK_EQ_INT(s3meta_bucket_versioning_set(m, "nope", S3META_VERSIONING_ENABLED), -S3META_ENOSUCHBUCKET);
	s3meta_locs_destroy(&fl);
	s3meta_close(m);
}

TEST(s3meta_users)
{
	const char *dir = test_tmpdir();
	struct s3meta *m = meta_open(dir);
	REQUIRE(m);
	char secret[S3META_SECRET_MAX + 1], name[S3META_DISPLAY_MAX + 1];
	CHECK_EQ_INT(s3meta_user_ensure(m, "ROOTKEY", "rootsecret1", "root"), 0);
	CHECK_EQ_INT(s3meta_user_create(m, "AKIA1", "secret-one", "one"), 0);
	CHECK_EQ_INT(s3meta_user_create(m, "AKIA1", "secret-two", "one"), -S3META_EUSEREXISTS);
	CHECK_EQ_INT(s3meta_user_create(m, "x", "secret-two", "short key"), -S3META_EINVALIDARGUMENT);
	CHECK_EQ_INT(s3meta_user_create(m, "AKIA2", "short", "short secret"), -S3META_EINVALIDARGUMENT);
	CHECK_EQ_INT(s3meta_user_secret(m, "AKIA1", secret), 0);
	CHECK(!strcmp(secret, "secret-one"));
	CHECK_EQ_INT(s3meta_user_secret(m, "AKIA9", secret), -S3META_EINVALIDACCESSKEYID);
	CHECK_EQ_INT(s3meta_user_display_name(m, "AKIA1", name), 0);
	CHECK(!strcmp(name, "one"));
	/* ensure updates the root user's secret. */
	CHECK_EQ_INT(s3meta_user_ensure(m, "ROOTKEY", "rootsecret2", "root"), 0);
	CHECK_EQ_INT(s3meta_user_secret(m, "ROOTKEY", secret), 0);
	CHECK(!strcmp(secret, "rootsecret2"));
	struct s3meta_user *u;
	size_t n;
	CHECK_EQ_INT(s3meta_user_list(m, &u, &n), 0);
	CHECK_EQ_INT(n, 2);
	if (n == 2)
		CHECK(!strcmp(u[0].access_key, "AKIA1") && !strcmp(u[1].access_key, "ROOTKEY"));
	free(u);
	CHECK_EQ_INT(s3meta_bucket_create(m, "owned", "AKIA1", 0), 0);
	CHECK_EQ_INT(s3meta_user_delete(m, "AKIA1"), -S3META_EUSERINUSE);
	CHECK_EQ_INT(s3meta_bucket_delete(m, "owned"), 0);
	CHECK_EQ_INT(s3meta_user_delete(m, "AKIA1"), 0);
	CHECK_EQ_INT(s3meta_user_delete(m, "AKIA1"), -S3META_ENOSUCHUSER);
	CHECK_EQ_INT(s3meta_user_secret(m, "AKIA1", secret), -S3META_EINVALIDACCESSKEYID);
	s3meta_close(m);
	m = meta_open(dir);
	REQUIRE(m);
	CHECK_EQ_INT(s3meta_user_secret(m, "ROOTKEY", secret), 0);
	CHECK(!strcmp(secret, "rootsecret2"));
	CHECK_EQ_INT(s3meta_user_secret(m, "AKIA1", secret), -S3META_EINVALIDACCESSKEYID);
	s3meta_close(m);
}

/* ---- version semantics ----------------------------------------------------------- */

TEST(s3meta_unversioned)
{
	struct s3meta *m = fresh();
	REQUIRE(m);
	REQUIRE(s3meta_bucket_create(m, "bk1", OWNER, 0) == 0);
	struct s3meta_locs fl = { 0 };
	char vid[S3META_VID_SIZE];
	CHECK_EQ_INT(put(m, "bk1", "k", 10, "one", vid, &fl), 0);
	CHECK_EQ_INT(vid[0], '\0');
	CHECK_EQ_INT(fl.n, 0);
	CHECK_EQ_INT(put(m, "bk1", "k", 20, "two", vid, &fl), 0);
	CHECK_EQ_INT(fl.n, 1);
	CHECK(locs_has(&fl, "loc:one"));

	struct s3meta_obj o;
	CHECK_EQ_INT(s3meta_object_get(m, "bk1", "k", NULL, &o), 0);
	CHECK_EQ_INT(o.size, 20);
	CHECK(loc_is(&o, "loc:two"));
	CHECK(!strcmp(o.version_id, "null"));
	CHECK(o.is_latest && !o.delete_marker);
	CHECK(o.content_type && !strcmp(o.content_type, "text/plain"));
	CHECK(!o.cache_control);
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_object_get(m, "bk1", "k", "null", &o), 0);
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_object_get(m, "bk1", "k", "0000000000000001", &o), -S3META_ENOSUCHVERSION);
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_object_get(m, "bk1", "k", "bogus", &o), -S3META_EINVALIDARGUMENT);
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_object_get(m, "bk1", "nokey", NULL, &o), -S3META_ENOSUCHKEY);
	CHECK(!o.delete_marker);
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_object_get(m, "nobk", "k", NULL, &o), -S3META_ENOSUCHBUCKET);
	s3meta_obj_destroy(&o);

	struct s3meta_usage us;
	CHECK_EQ_INT(put(m, "bk1", "k2", 5, "k2", NULL, &fl), 0);
	CHECK_EQ_INT(s3meta_bucket_usage(m, "bk1", &us), 0);
	CHECK_EQ_INT(us.objects, 2);
	CHECK_EQ_INT(us.bytes, 25);
	CHECK_EQ_INT(us.versions, 2);
	CHECK_EQ_INT(us.version_bytes, 25);

	struct s3meta_del d;
	s3meta_locs_destroy(&fl);
	CHECK_EQ_INT(s3meta_object_delete(m, "bk1", "k", NULL, OWNER, &d, &fl), 0);
	CHECK(d.found && !d.delete_marker && d.version_id[0] == '\0');
	CHECK(locs_has(&fl, "loc:two"));
	CHECK_EQ_INT(s3meta_object_get(m, "bk1", "k", NULL, &o), -S3META_ENOSUCHKEY);
	s3meta_obj_destroy(&o);
	/* Deleting what is not there succeeds and frees nothing. */
	s3meta_locs_destroy(&fl);
	CHECK_EQ_INT(s3meta_object_delete(m, "bk1", "k", NULL, OWNER, &d, &fl), 0);
	CHECK(!d.found);
	CHECK_EQ_INT(fl.n, 0);
	CHECK_EQ_INT(s3meta_bucket_usage(m, "bk1", &us), 0);
	CHECK_EQ_INT(us.objects, 1);
	CHECK_EQ_INT(us.bytes, 5);

	/* Key checks. */
	char longkey[1100];
	memset(longkey, 'k', 1025);
	longkey[1025] = '\0';
	CHECK_EQ_INT(put(m, "bk1", longkey, 1, "x", NULL, NULL), -S3META_EKEYTOOLONG);
	longkey[1024] = '\0';
	CHECK_EQ_INT(put(m, "bk1", longkey, 1, "x", NULL, NULL), 0);
	CHECK_EQ_INT(put(m, "bk1", "", 1, "x", NULL, NULL), -S3META_EINVALIDARGUMENT);
	CHECK_EQ_INT(put(m, "bk1", "bad\xff", 1, "x", NULL, NULL), -S3META_EINVALIDARGUMENT);
	CHECK_EQ_INT(put(m, "bk1", "caf\xc3\xa9", 1, "x", NULL, NULL), 0);
	s3meta_locs_destroy(&fl);
	s3meta_close(m);
}

TEST(s3meta_versioning_enabled)
{
	struct s3meta *m = fresh();
	REQUIRE(m);
	REQUIRE(s3meta_bucket_create(m, "vbk", OWNER, 0) == 0);
	REQUIRE(s3meta_bucket_versioning_set(m, "vbk", S3META_VERSIONING_ENABLED) == 0);
	struct s3meta_bucket bk;
	CHECK_EQ_INT(s3meta_bucket_head(m, "vbk", &bk), 0);
	CHECK_EQ_INT(bk.versioning, S3META_VERSIONING_ENABLED);
	struct s3meta_locs fl = { 0 };
	char v1[S3META_VID_SIZE], v2[S3META_VID_SIZE];
	CHECK_EQ_INT(put(m, "vbk", "k", 1, "one", v1, &fl), 0);
	CHECK_EQ_INT(put(m, "vbk", "k", 2, "two", v2, &fl), 0);
	CHECK_EQ_INT(fl.n, 0);
	CHECK_EQ_INT(strlen(v1), 16);
	CHECK(strcmp(v1, v2) < 0); /* ids sort by time */

	struct s3meta_obj o;
	CHECK_EQ_INT(s3meta_object_get(m, "vbk", "k", NULL, &o), 0);
	CHECK(!strcmp(o.version_id, v2) && o.is_latest && loc_is(&o, "loc:two"));
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_object_get(m, "vbk", "k", v1, &o), 0);
	CHECK(!o.is_latest && loc_is(&o, "loc:one"));
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_object_get(m, "vbk", "k", "null", &o), -S3META_ENOSUCHVERSION);
	s3meta_obj_destroy(&o);

	/* A delete adds a marker; GET says NoSuchKey + delete marker. */
	struct s3meta_del d;
	CHECK_EQ_INT(s3meta_object_delete(m, "vbk", "k", NULL, OWNER, &d, &fl), 0);
	CHECK(d.delete_marker && strlen(d.version_id) == 16);
	CHECK_EQ_INT(fl.n, 0);
	char dm[S3META_VID_SIZE];
	memcpy(dm, d.version_id, sizeof(dm));
	CHECK_EQ_INT(s3meta_object_get(m, "vbk", "k", NULL, &o), -S3META_ENOSUCHKEY);
	CHECK(o.delete_marker && !strcmp(o.version_id, dm));
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_object_get(m, "vbk", "k", dm, &o), -S3META_EMETHODNOTALLOWED);
	CHECK(o.delete_marker);
	s3meta_obj_destroy(&o);
	struct s3meta_usage us;
	CHECK_EQ_INT(s3meta_bucket_usage(m, "vbk", &us), 0);
	CHECK_EQ_INT(us.objects, 0);
	CHECK_EQ_INT(us.versions, 2);
	CHECK_EQ_INT(us.version_bytes, 3);

	/* Not in a listing; in the versions listing. */
	struct s3meta_list_req req = { .max = 1000 };
	struct s3meta_list l;
	CHECK_EQ_INT(s3meta_list_objects(m, "vbk", &req, &l), 0);
	CHECK_EQ_INT(l.n, 0);
	s3meta_list_destroy(&l);
	CHECK_EQ_INT(s3meta_list_versions(m, "vbk", &req, &l), 0);
	CHECK_EQ_INT(l.n, 3);
	if (l.n == 3) {
		CHECK(!strcmp(l.v[0].version_id, dm) && l.v[0].delete_marker && l.v[0].is_latest);
		CHECK(l.v[0].owner && !strcmp(l.v[0].owner, OWNER) && !l.v[0].etag && l.v[0].size == 0);
		CHECK(!strcmp(l.v[1].version_id, v2) && !l.v[1].delete_marker && !l.v[1].is_latest);
		CHECK(!strcmp(l.v[2].version_id, v1) && l.v[2].size == 1);
	}
	s3meta_list_destroy(&l);

	/* Removing the marker makes v2 the latest again. */
	CHECK_EQ_INT(s3meta_object_delete(m, "vbk", "k", dm, OWNER, &d, &fl), 0);
	CHECK(d.found && d.delete_marker && !strcmp(d.version_id, dm));
	CHECK_EQ_INT(fl.n, 0);
	CHECK_EQ_INT(s3meta_object_get(m, "vbk", "k", NULL, &o), 0);
	CHECK(!strcmp(o.version_id, v2) && o.is_latest);
	s3meta_obj_destroy(&o);
	/* Removing v2 for good frees its data; v1 is latest. */
	CHECK_EQ_INT(s3meta_object_delete(m, "vbk", "k", v2, OWNER, &d, &fl), 0);
	CHECK(d.found && !d.delete_marker);
	CHECK(locs_has(&fl, "loc:two") && fl.n == 1);
	CHECK_EQ_INT(s3meta_object_get(m, "vbk", "k", NULL, &o), 0);
	CHECK(!strcmp(o.version_id, v1) && o.is_latest);
	s3meta_obj_destroy(&o);
	/* A missing version: success, nothing found. */
	CHECK_EQ_INT(s3meta_object_delete(m, "vbk", "k", v2, OWNER, &d, &fl), 0);
	CHECK(!d.found);
	CHECK_EQ_INT(s3meta_object_delete(m, "vbk", "k", "zz", OWNER, &d, &fl), -S3META_EINVALIDARGUMENT);
	CHECK_EQ_INT(s3meta_bucket_usage(m, "vbk", &us), 0);
	CHECK_EQ_INT(us.objects, 1);
	CHECK_EQ_INT(us.bytes, 1);
	CHECK_EQ_INT(us.versions, 1);
	/* A delete of a key that never existed still adds a marker. */
	CHECK_EQ_INT(s3meta_object_delete(m, "vbk", "ghost", NULL, OWNER, &d, &fl), 0);
	CHECK(d.delete_marker);
	s3meta_locs_destroy(&fl);
	s3meta_close(m);
}

TEST(s3meta_versioning_suspended)
{
	struct s3meta *m = fresh();
	REQUIRE(m);
	REQUIRE(s3meta_bucket_create(m, "sbk", OWNER, 0) == 0);
	struct s3meta_locs fl = { 0 };
	char vid[S3META_VID_SIZE], v1[S3META_VID_SIZE];
	/* A null version from before versioning, then a real version. */
	CHECK_EQ_INT(put(m, "sbk", "k", 1, "n0", vid, &fl), 0);
	REQUIRE(s3meta_bucket_versioning_set(m, "sbk", S3META_VERSIONING_ENABLED) == 0);
	CHECK_EQ_INT(put(m, "sbk", "k", 2, "v1", v1, &fl), 0);
	CHECK_EQ_INT(fl.n, 0);
	REQUIRE(s3meta_bucket_versioning_set(m, "sbk", S3META_VERSIONING_SUSPENDED) == 0);

	/* Suspended put: new null version replaces the old null one, v1 kept. */
	CHECK_EQ_INT(put(m, "sbk", "k", 3, "n1", vid, &fl), 0);
	CHECK(!strcmp(vid, "null"));
	CHECK_EQ_INT(fl.n, 1);
	CHECK(locs_has(&fl, "loc:n0"));
	struct s3meta_obj o;
	CHECK_EQ_INT(s3meta_object_get(m, "sbk", "k", NULL, &o), 0);
	CHECK(!strcmp(o.version_id, "null") && loc_is(&o, "loc:n1") && o.is_latest);
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_object_get(m, "sbk", "k", v1, &o), 0);
	CHECK(!o.is_latest);
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(put(m, "sbk", "k", 4, "n2", vid, &fl), 0);
	CHECK_EQ_INT(fl.n, 2);
	CHECK(locs_has(&fl, "loc:n1"));

	/* Suspended delete: a null delete marker replaces the null version. */
	struct s3meta_del d;
	s3meta_locs_destroy(&fl);
	CHECK_EQ_INT(s3meta_object_delete(m, "sbk", "k", NULL, OWNER, &d, &fl), 0);
	CHECK(d.delete_marker && !strcmp(d.version_id, "null"));
	CHECK(fl.n == 1 && locs_has(&fl, "loc:n2"));
	CHECK_EQ_INT(s3meta_object_get(m, "sbk", "k", NULL, &o), -S3META_ENOSUCHKEY);
	CHECK(o.delete_marker && !strcmp(o.version_id, "null"));
	s3meta_obj_destroy(&o);
	/* Again: the null marker replaces the null marker, nothing to free. */
	s3meta_locs_destroy(&fl);
	CHECK_EQ_INT(s3meta_object_delete(m, "sbk", "k", NULL, OWNER, &d, &fl), 0);
	CHECK_EQ_INT(fl.n, 0);
	struct s3meta_list_req req = { .max = 1000 };
	struct s3meta_list l;
	CHECK_EQ_INT(s3meta_list_versions(m, "sbk", &req, &l), 0);
	CHECK_EQ_INT(l.n, 2);
	if (l.n == 2) {
		CHECK(!strcmp(l.v[0].version_id, "null") && l.v[0].delete_marker && l.v[0].is_latest);
		CHECK(!strcmp(l.v[1].version_id, v1) && !l.v[1].is_latest);
	}
	s3meta_list_destroy(&l);
	/* Deleting the null marker by id brings back v1. */
	CHECK_EQ_INT(s3meta_object_delete(m, "sbk", "k", "null", OWNER, &d, &fl), 0);
	CHECK(d.found && d.delete_marker);
	CHECK_EQ_INT(s3meta_object_get(m, "sbk", "k", NULL, &o), 0);
	CHECK(!strcmp(o.version_id, v1) && o.is_latest);
	s3meta_obj_destroy(&o);
	/* A suspended put with no null version around just adds one. */
	CHECK_EQ_INT(put(m, "sbk", "k", 5, "n3", vid, &fl), 0);
	CHECK_EQ_INT(fl.n, 0);
	struct s3meta_usage us;
	CHECK_EQ_INT(s3meta_bucket_usage(m, "sbk", &us), 0);
	CHECK_EQ_INT(us.objects, 1);
	CHECK_EQ_INT(us.bytes, 5);
	CHECK_EQ_INT(us.versions, 2);
	CHECK_EQ_INT(us.version_bytes, 7);
	s3meta_locs_destroy(&fl);
	s3meta_close(m);
}

/* ---- listings ----------------------------------------------------------------------- */

struct ref_ent {
	const char *s;
	size_t len;
	bool is_prefix;
};

/* The model: distinct E(K) for keys K > marker under the prefix, E(K) being
 * K cut after the first delimiter past the prefix (or K), E(K) != marker. */
static size_t ref_list(const char *const *sorted, size_t nk, const char *prefix, const char *delim,
		       const char *marker, struct ref_ent *out)
{
	size_t n = 0, plen = strlen(prefix), dlen = strlen(delim);
	for (size_t i = 0; i < nk; i++) {
		const char *k = sorted[i];
		if (strncmp(k, prefix, plen) || (marker && strcmp(k, marker) <= 0))
			continue;
		size_t elen = strlen(k);
		bool isp = false;
		if (dlen) {
			const char *d = strstr(k + plen, delim);
			if (d) {
				elen = (size_t)(d - k) + dlen;
				isp = true;
			}
		}
		if (marker && strlen(marker) == elen && !strncmp(marker, k, elen))
			continue;
		if (n && out[n - 1].len == elen && !strncmp(out[n - 1].s, k, elen))
			continue;
		out[n].s = k;
		out[n].len = elen;
		out[n].is_prefix = isp;
		n++;
	}
	return n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *const list_keys[] = {
	"a", "a/", "a/b", "a/b/c", "a/c", "a-b", "a0", "b//x", "b/", "b/y", "c|d|e", "c||", "c||f", "c|", "cab",
	"photos/2006/January/sample.jpg", "photos/2006/February/sample2.jpg", "photos/2006/February/sample3.jpg",
	"photos/2006/February/sample4.jpg", "photos/2007/x", "sample.jpg", "x", "xabyab", "xab", "yab",
	"caf\xc3\xa9/1", "caf\xc3\xa9/2", "z\xe2\x82\xac", "zz/zz/zz", "zz/zz", "~",
};

static bool same_entry(const struct s3meta_entry *e, const struct ref_ent *r)
{
	return e->is_prefix == r->is_prefix && e->key_len == r->len && !memcmp(e->key, r->s, r->len);
}

/* Walks the whole listing in pages of `max` (v2 tokens, or v1 markers)
 * and compares it with the model. */
static void walk_check(struct s3meta *m, const char *bucket, const char *const *sorted, size_t nk,
		       const char *prefix, const char *delim, int max, bool v1)
{
	struct ref_ent ref[64];
	size_t nref = ref_list(sorted, nk, prefix, delim, NULL, ref);
	size_t got = 0, pages = 0;
	char *resume = NULL;
	bool ok = true;
	for (;;) {
		struct s3meta_list_req req = { .prefix = prefix, .delimiter = delim, .max = max };
		if (v1)
			req.marker = resume;
		else
			req.token = resume;
		struct s3meta_list l;
		int rc = s3meta_list_objects(m, bucket, &req, &l);
		if (rc) {
			CHECK_EQ_INT(rc, 0);
			ok = false;
			break;
		}
		pages++;
		CHECK(l.n <= (size_t)max);
		CHECK_EQ_INT(l.n, l.n_keys + l.n_prefixes);
		for (size_t i = 0; i < l.n; i++) {
			if (got >= nref || !same_entry(&l.v[i], &ref[got])) {
				ok = false;
				break;
			}
			got++;
		}
		free(resume);
		resume = NULL;
		bool more = l.truncated;
		if (more) {
			CHECK(l.n > 0);
			if (v1)
				resume = xstrdup(*delim ? l.next_marker : l.v[l.n - 1].key);
			else
				resume = xstrdup(l.next_token);
		}
		s3meta_list_destroy(&l);
		if (!more || !ok || pages > 100)
			break;
	}
	free(resume);
	if (!ok || got != nref) {
		fprintf(stderr, "  walk prefix='%s' delim='%s' max=%d %s: got %zu of %zu\n", prefix, delim, max,
			v1 ? "v1" : "v2", got, nref);
		CHECK(ok && got == nref);
	}
	/* No empty last page: exactly ceil(n / max) pages. */
	size_t want_pages = nref ? (nref + (size_t)max - 1) / (size_t)max : 1;
	CHECK_EQ_INT(pages, want_pages);
}

static struct s3meta *list_fixture(const char ***sorted_out, size_t *nk)
{
	struct s3meta *m = fresh();
	if (!m)
		return NULL;
	if (s3meta_bucket_create(m, "lbk", OWNER, 0)) {
		s3meta_close(m);
		return NULL;
	}
	size_t n = SILT_ARRAY_LEN(list_keys);
	const char **sorted = xmalloc(n * sizeof(*sorted));
	for (size_t i = 0; i < n; i++) {
		sorted[i] = list_keys[i];
		if (put(m, "lbk", list_keys[i], (int64_t)i, list_keys[i], NULL, NULL))
			fprintf(stderr, "  put %s failed\n", list_keys[i]);
	}
	qsort(sorted, n, sizeof(*sorted), cmp_str);
	*sorted_out = sorted;
	*nk = n;
	return m;
}

TEST(s3meta_list_delimiter)
{
	const char **sorted;
	size_t nk;
	struct s3meta *m = list_fixture(&sorted, &nk);
	REQUIRE(m);
	/* The S3 guide's example: prefix photos/2006/, delimiter /. */
	struct s3meta_list_req req = { .prefix = "photos/2006/", .delimiter = "/", .max = 1000 };
	struct s3meta_list l;
	CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), 0);
	CHECK_EQ_INT(l.n, 2);
	CHECK_EQ_INT(l.n_prefixes, 2);
	if (l.n == 2) {
		CHECK(!strcmp(l.v[0].key, "photos/2006/February/") && l.v[0].is_prefix);
		CHECK(!strcmp(l.v[1].key, "photos/2006/January/") && l.v[1].is_prefix);
	}
	CHECK(!l.truncated && !l.next_token);
	s3meta_list_destroy(&l);
	/* Top level with '/': keys and prefixes interleaved in order. */
	req = (struct s3meta_list_req){ .delimiter = "/", .max = 1000 };
	CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), 0);
	static const char *const top[] = { "a", "a-b", "a/", "a0", "b/", "cab", "caf\xc3\xa9/", "c|",
					   "c|d|e", "c||", "c||f", "photos/", "sample.jpg", "x", "xab",
					   "xabyab", "yab", "zz/", "z\xe2\x82\xac", "~" };
	CHECK_EQ_INT(l.n, SILT_ARRAY_LEN(top));
	for (size_t i = 0; i < l.n && i < SILT_ARRAY_LEN(top); i++) {
		if (strcmp(l.v[i].key, top[i])) {
			fprintf(stderr, "  top[%zu] = %s, want %s\n", i, l.v[i].key, top[i]);
			CHECK(!strcmp(l.v[i].key, top[i]));
		}
		bool isp = top[i][strlen(top[i]) - 1] == '/';
		CHECK(l.v[i].is_prefix == isp);
		if (!isp)
			CHECK(l.v[i].etag && l.v[i].owner && !strcmp(l.v[i].owner, OWNER));
	}
	s3meta_list_destroy(&l);
	/* A multi-character delimiter. */
	req = (struct s3meta_list_req){ .delimiter = "ab", .max = 1000 };
	CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), 0);
	bool saw_cab = false, saw_xab = false, saw_yab = false;
	for (size_t i = 0; i < l.n; i++) {
		saw_cab |= l.v[i].is_prefix && !strcmp(l.v[i].key, "cab");
		saw_xab |= l.v[i].is_prefix && !strcmp(l.v[i].key, "xab");
		saw_yab |= l.v[i].is_prefix && !strcmp(l.v[i].key, "yab");
		CHECK(strcmp(l.v[i].key, "xabyab")); /* rolled into xab */
	}
	CHECK(saw_cab && saw_xab && saw_yab);
	s3meta_list_destroy(&l);
	/* Prefix with no delimiter, and a prefix that matches nothing. */
	req = (struct s3meta_list_req){ .prefix = "a/", .max = 1000 };
	CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), 0);
	CHECK_EQ_INT(l.n, 4);
	s3meta_list_destroy(&l);
	req = (struct s3meta_list_req){ .prefix = "nothing", .max = 1000 };
	CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), 0);
	CHECK(l.n == 0 && !l.truncated);
	s3meta_list_destroy(&l);
	/* max-keys 0 and bad input. */
	req = (struct s3meta_list_req){ .max = 0 };
	CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), 0);
	CHECK(l.n == 0 && !l.truncated);
	s3meta_list_destroy(&l);
	req = (struct s3meta_list_req){ .token = "not base64!", .max = 10 };
	CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), -S3META_EINVALIDARGUMENT);
	s3meta_list_destroy(&l);
	req = (struct s3meta_list_req){ .token = "MmFiYw==", .max = 10 }; /* "2abc": unknown version */
	CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), -S3META_EINVALIDARGUMENT);
	s3meta_list_destroy(&l);
	CHECK_EQ_INT(s3meta_list_objects(m, "nobk", &req, &l), -S3META_EINVALIDARGUMENT);
	s3meta_list_destroy(&l);
	req.token = NULL;
	CHECK_EQ_INT(s3meta_list_objects(m, "nobk", &req, &l), -S3META_ENOSUCHBUCKET);
	s3meta_list_destroy(&l);
	/* Over 1000 is clamped. */
	req = (struct s3meta_list_req){ .max = 5000 };
	CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), 0);
	CHECK_EQ_INT(l.n, nk);
	s3meta_list_destroy(&l);
	free(sorted);
	s3meta_close(m);
}

TEST(s3meta_list_pagination)
{
	const char **sorted;
	size_t nk;
	struct s3meta *m = list_fixture(&sorted, &nk);
	REQUIRE(m);
	static const char *const prefixes[] = { "", "a", "a/", "c", "photos/", "photos/2006/", "zz/", "q" };
	static const char *const delims[] = { "", "/", "|", "||", "ab", "06/", "/zz" };
	for (size_t p = 0; p < SILT_ARRAY_LEN(prefixes); p++)
		for (size_t d = 0; d < SILT_ARRAY_LEN(delims); d++)
			for (int max = 1; max <= 3; max++) {
				walk_check(m, "lbk", sorted, nk, prefixes[p], delims[d], max, false);
				walk_check(m, "lbk", sorted, nk, prefixes[p], delims[d], max, true);
			}
	walk_check(m, "lbk", sorted, nk, "", "/", 1000, false);
	free(sorted);
	s3meta_close(m);
}

TEST(s3meta_list_markers)
{
	const char **sorted;
	size_t nk;
	struct s3meta *m = list_fixture(&sorted, &nk);
	REQUIRE(m);
	/* start-after / marker: anything, existing or not, with and without a
	 * delimiter, compared with the model. */
	static const char *const markers[] = { "a", "a/", "a/b", "a/bb", "b", "c|", "c||", "photos/",
					       "photos/2006/February/", "zzz", "~~", "0", "\xf4" };
	static const char *const delims[] = { "", "/", "||" };
	for (size_t i = 0; i < SILT_ARRAY_LEN(markers); i++) {
		for (size_t d = 0; d < SILT_ARRAY_LEN(delims); d++) {
			struct ref_ent ref[64];
			size_t nref = ref_list(sorted, nk, "", delims[d], markers[i], ref);
			struct s3meta_list_req req = { .delimiter = delims[d], .marker = markers[i], .max = 1000 };
			struct s3meta_list l;
			CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), 0);
			bool ok = l.n == nref;
			for (size_t k = 0; ok && k < l.n; k++)
				ok = same_entry(&l.v[k], &ref[k]);
			if (!ok) {
				fprintf(stderr, "  marker '%s' delim '%s': %zu entries, model %zu\n", markers[i],
					delims[d], l.n, nref);
				CHECK(ok);
			}
			s3meta_list_destroy(&l);
		}
	}
	/* v1 NextMarker with a delimiter is the last common prefix; the next
	 * page does not return it again. */
	struct s3meta_list_req req = { .delimiter = "/", .max = 3 };
	struct s3meta_list l;
	CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), 0);
	CHECK(l.truncated && l.n == 3);
	if (l.n == 3) {
		CHECK(!strcmp(l.v[2].key, "a/") && l.v[2].is_prefix);
		CHECK(l.next_marker && !strcmp(l.next_marker, "a/"));
	}
	s3meta_list_destroy(&l);
	req.marker = "a/";
	CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), 0);
	CHECK(l.n == 3 && !strcmp(l.v[0].key, "a0"));
	s3meta_list_destroy(&l);
	/* A token wins over start-after. */
	req = (struct s3meta_list_req){ .marker = "zzz", .max = 2 };
	CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), 0);
	CHECK_EQ_INT(l.n, 2); /* "z\xe2\x82\xac", "~" */
	s3meta_list_destroy(&l);
	req = (struct s3meta_list_req){ .max = 2 };
	CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), 0);
	char *tok = xstrdup(l.next_token);
	s3meta_list_destroy(&l);
	req = (struct s3meta_list_req){ .marker = "zzz", .token = tok, .max = 1 };
	CHECK_EQ_INT(s3meta_list_objects(m, "lbk", &req, &l), 0);
	CHECK(l.n == 1 && !strcmp(l.v[0].key, sorted[2]));
	s3meta_list_destroy(&l);
	free(tok);
	free(sorted);
	s3meta_close(m);
}

TEST(s3meta_list_versions_paging)
{
	struct s3meta *m = fresh();
	REQUIRE(m);
	REQUIRE(s3meta_bucket_create(m, "vbk", OWNER, 0) == 0);
	/* A null version first, then versions and markers on several keys. */
	CHECK_EQ_INT(put(m, "vbk", "b", 1, "b0", NULL, NULL), 0);
	REQUIRE(s3meta_bucket_versioning_set(m, "vbk", S3META_VERSIONING_ENABLED) == 0);
	static const char *const keys[] = { "a", "b", "c/1", "c/2", "d" };
	struct s3meta_del d;
	struct s3meta_locs fl = { 0 };
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < SILT_ARRAY_LEN(keys); i++)
			CHECK_EQ_INT(put(m, "vbk", keys[i], round, keys[i], NULL, NULL), 0);
	CHECK_EQ_INT(s3meta_object_delete(m, "vbk", "a", NULL, OWNER, &d, &fl), 0);
	CHECK_EQ_INT(s3meta_object_delete(m, "vbk", "d", NULL, OWNER, &d, &fl), 0);
	CHECK_EQ_INT(put(m, "vbk", "d", 9, "d9", NULL, NULL), 0);

	struct s3meta_list_req req = { .max = 1000 };
	struct s3meta_list all;
	CHECK_EQ_INT(s3meta_list_versions(m, "vbk", &req, &all), 0);
	CHECK_EQ_INT(all.n, 19); /* 5*3 + null + 2 markers + d9 */
	CHECK(!all.truncated);
	/* Keys ascending, newest first within a key, one latest per key. */
	for (size_t i = 1; i < all.n; i++) {
		int c = strcmp(all.v[i - 1].key, all.v[i].key);
		CHECK(c <= 0);
		if (c == 0) {
			CHECK(!all.v[i].is_latest);
			if (strcmp(all.v[i].version_id, "null"))
				CHECK(strcmp(all.v[i - 1].version_id, all.v[i].version_id) > 0);
		} else {
			CHECK(all.v[i].is_latest);
		}
	}
	CHECK(all.v[0].delete_marker && all.v[0].is_latest);
	CHECK(!strcmp(all.v[7].version_id, "null")); /* b's oldest */

	for (int max = 1; max <= 4; max++) {
		size_t got = 0, pages = 0;
		char km[64] = "", vm[S3META_VID_SIZE] = "";
		bool more = true, ok = true;
		while (more && ok && pages < 50) {
			req = (struct s3meta_list_req){ .max = max };
			if (km[0]) {
				req.marker = km;
				req.id_marker = vm[0] ? vm : NULL;
			}
			struct s3meta_list l;
			CHECK_EQ_INT(s3meta_list_versions(m, "vbk", &req, &l), 0);
			pages++;
			CHECK(l.n <= (size_t)max);
			for (size_t i = 0; i < l.n && ok; i++, got++)
				ok = got < all.n && !strcmp(l.v[i].key, all.v[got].key) &&
				     !strcmp(l.v[i].version_id, all.v[got].version_id);
			more = l.truncated;
			if (more) {
				snprintf(km, sizeof(km), "%s", l.next_marker);
				snprintf(vm, sizeof(vm), "%s", l.next_id_marker ? l.next_id_marker : "");
			}
			s3meta_list_destroy(&l);
		}
		if (!ok || got != all.n) {
			fprintf(stderr, "  versions max=%d: %zu of %zu\n", max, got, all.n);
			CHECK(ok && got == all.n);
		}
		CHECK_EQ_INT(pages, (all.n + (size_t)max - 1) / (size_t)max);
	}
	/* With a delimiter: c/ rolls up into one entry. */
	req = (struct s3meta_list_req){ .delimiter = "/", .max = 1000 };
	struct s3meta_list l;
	CHECK_EQ_INT(s3meta_list_versions(m, "vbk", &req, &l), 0);
	CHECK_EQ_INT(l.n, 19 - 6 + 1);
	CHECK_EQ_INT(l.n_prefixes, 1);
	s3meta_list_destroy(&l);
	/* key-marker alone skips the whole key. */
	req = (struct s3meta_list_req){ .marker = "b", .max = 1000 };
	CHECK_EQ_INT(s3meta_list_versions(m, "vbk", &req, &l), 0);
	CHECK(l.n > 0 && !strcmp(l.v[0].key, "c/1"));
	s3meta_list_destroy(&l);
	/* version-id-marker null: after b's null version, i.e. c/1. */
	req = (struct s3meta_list_req){ .marker = "b", .id_marker = "null", .max = 1000 };
	CHECK_EQ_INT(s3meta_list_versions(m, "vbk", &req, &l), 0);
	CHECK(l.n > 0 && !strcmp(l.v[0].key, "c/1"));
	s3meta_list_destroy(&l);
	req = (struct s3meta_list_req){ .id_marker = "null", .max = 1000 };
	CHECK_EQ_INT(s3meta_list_versions(m, "vbk", &req, &l), -S3META_EINVALIDARGUMENT);
	s3meta_list_destroy(&l);
	req = (struct s3meta_list_req){ .marker = "b", .id_marker = "xyz", .max = 1000 };
	CHECK_EQ_INT(s3meta_list_versions(m, "vbk", &req, &l), -S3META_EINVALIDARGUMENT);
	s3meta_list_destroy(&l);
	s3meta_list_destroy(&all);
	s3meta_locs_destroy(&fl);
	s3meta_close(m);
}

/* ---- multipart ---------------------------------------------------------------------- */

static void md5_hex(const char *data, char *hex)
{
	uint8_t d[16];
	unsigned dl;
	EVP_Digest(data, strlen(data), d, &dl, EVP_md5(), NULL);
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static int put_part(struct s3meta *m, const char *key, const char *uid, int pn, int64_t size, const char *etag,
		    const char *ck, const char *loc, struct s3meta_locs *fl)
{
	struct s3meta_part_put pp = { .part_number = pn, .size = size, .etag = etag, .cksum_value = ck,
				      .locator = (const uint8_t *)loc, .locator_len = strlen(loc) };
	return s3meta_mpu_put_part(m, "mbk", key, uid, &pp, fl);
}

TEST(s3meta_multipart)
{
	struct s3meta *m = fresh();
	REQUIRE(m);
	REQUIRE(s3meta_bucket_create(m, "mbk", OWNER, 0) == 0);
	const int64_t MIB5 = 5 << 20;
	char e1[33], e2[33], e3[33];
	md5_hex("hello", e1);
	md5_hex("world", e2);
	md5_hex("other", e3);
	CHECK(!strcmp(e1, "5d41402abc4b2a76b9719d911017c592"));

	struct wbuf um;
	wbuf_init(&um, 64, 0);
	s3meta_umeta_add(&um, "color", "blue");
	s3meta_umeta_add(&um, "shape", "round");
	struct s3meta_put attrs = { .owner = OWNER, .content_type = "application/x-test", .cksum_algo = "CRC32",
				    .user_meta = um.p, .user_meta_len = um.len };
	char uid[S3META_UPLOAD_ID_SIZE];
	CHECK_EQ_INT(s3meta_mpu_create(m, "mbk", "big", &attrs, uid), 0);
	CHECK_EQ_INT(strlen(uid), 32);
	wbuf_destroy(&um);

	struct s3meta_locs fl = { 0 };
	CHECK_EQ_INT(put_part(m, "big", uid, 1, MIB5, e3, "AAAAAA==", "p1-old", &fl), 0);
	CHECK_EQ_INT(fl.n, 0);
	/* Replacing part 1 frees the old part's data. */
	CHECK_EQ_INT(put_part(m, "big", uid, 1, MIB5, e1, "NhCmhg==", "p1", &fl), 0);
	CHECK(fl.n == 1 && locs_has(&fl, "p1-old"));
	CHECK_EQ_INT(put_part(m, "big", uid, 2, 100, e2, "OncRQw==", "p2", &fl), 0);
	CHECK_EQ_INT(put_part(m, "big", uid, 3, 7, e3, NULL, "p3", &fl), 0);
	CHECK_EQ_INT(put_part(m, "big", uid, 0, 7, e3, NULL, "p0", &fl), -S3META_EINVALIDARGUMENT);
	CHECK_EQ_INT(put_part(m, "big", uid, 10001, 7, e3, NULL, "p0", &fl), -S3META_EINVALIDARGUMENT);
	CHECK_EQ_INT(put_part(m, "other", uid, 4, 7, e3, NULL, "p4", &fl), -S3META_ENOSUCHUPLOAD);
	CHECK_EQ_INT(put_part(m, "big", "00000000000000000000000000000000", 4, 7, e3, NULL, "p4", &fl),
		     -S3META_ENOSUCHUPLOAD);

	/* ListParts, two at a time. */
	struct s3meta_parts ps;
	CHECK_EQ_INT(s3meta_mpu_list_parts(m, "mbk", "big", uid, 0, 2, &ps), 0);
	CHECK(ps.n == 2 && ps.truncated && ps.next_marker == 2);
	CHECK(ps.owner && !strcmp(ps.owner, OWNER) && ps.cksum_algo && !strcmp(ps.cksum_algo, "CRC32"));
	if (ps.n == 2)
		CHECK(ps.v[0].part_number == 1 && !strcmp(ps.v[0].etag, e1) && ps.v[1].size == 100);
	s3meta_parts_destroy(&ps);
	CHECK_EQ_INT(s3meta_mpu_list_parts(m, "mbk", "big", uid, 2, 2, &ps), 0);
	CHECK(ps.n == 1 && !ps.truncated && ps.v[0].part_number == 3);
	s3meta_parts_destroy(&ps);
	CHECK_EQ_INT(s3meta_mpu_list_parts(m, "mbk", "big", "nope", 0, 2, &ps), -S3META_ENOSUCHUPLOAD);
	s3meta_parts_destroy(&ps);

	/* Validation. */
	struct s3meta_complete out;
	char q1[40], q2[40];
	snprintf(q1, sizeof(q1), "\"%s\"", e1);
	snprintf(q2, sizeof(q2), "\"%s\"", e2);
	struct s3meta_part_ref bad_order[] = { { 2, q2 }, { 1, q1 } };
	CHECK_EQ_INT(s3meta_mpu_complete(m, "mbk", "big", uid, bad_order, 2, 0, &out, &fl),
		     -S3META_EINVALIDPARTORDER);
	struct s3meta_part_ref dup[] = { { 1, q1 }, { 1, q1 } };
	CHECK_EQ_INT(s3meta_mpu_complete(m, "mbk", "big", uid, dup, 2, 0, &out, &fl), -S3META_EINVALIDPARTORDER);
	struct s3meta_part_ref missing[] = { { 1, q1 }, { 5, q2 } };
	CHECK_EQ_INT(s3meta_mpu_complete(m, "mbk", "big", uid, missing, 2, 0, &out, &fl), -S3META_EINVALIDPART);
	struct s3meta_part_ref wrong_etag[] = { { 1, q1 }, { 2, q1 } };
	CHECK_EQ_INT(s3meta_mpu_complete(m, "mbk", "big", uid, wrong_etag, 2, 0, &out, &fl),
		     -S3META_EINVALIDPART);
	struct s3meta_part_ref small[] = { { 2, q2 }, { 3, e3 } };
	CHECK_EQ_INT(s3meta_mpu_complete(m, "mbk", "big", uid, small, 2, 0, &out, &fl), -S3META_EENTITYTOOSMALL);
	CHECK_EQ_INT(s3meta_mpu_complete(m, "mbk", "big", uid, small, 0, 0, &out, &fl), -S3META_EMALFORMEDXML);
	CHECK_EQ_INT(fl.n, 1); /* failed calls free nothing */

	/* Complete with parts 1 and 2; part 3 is left out and freed. */
	struct s3meta_part_ref good[] = { { 1, q1 }, { 2, e2 } };
	CHECK_EQ_INT(s3meta_mpu_complete(m, "mbk", "big", uid, good, 2, 0, &out, &fl), 0);
	CHECK(!strcmp(out.etag, "065947336a2f2a95ba8899f3675c3be6-2"));
	/* The same, computed here from the binary part MD5s. */
	{
		uint8_t cat[32], d[16];
		unsigned dl;
		for (int i = 0; i < 16; i++) {
			unsigned x, y;
			sscanf(e1 + 2 * i, "%2x", &x);
			sscanf(e2 + 2 * i, "%2x", &y);
			cat[i] = (uint8_t)x;
			cat[16 + i] = (uint8_t)y;
		}
		EVP_Digest(cat, 32, d, &dl, EVP_md5(), NULL);
		char want[48];
		for (int i = 0; i < 16; i++)
			snprintf(want + 2 * i, 3, "%02x", d[i]);
		strcat(want, "-2");
		CHECK(!strcmp(out.etag, want));
	}
	CHECK_EQ_INT(out.size, MIB5 + 100);
	CHECK_EQ_INT(out.version_id[0], '\0');
	CHECK(fl.n == 2 && locs_has(&fl, "p3"));
	CHECK_EQ_INT(s3meta_mpu_abort(m, "mbk", "big", uid, &fl), -S3META_ENOSUCHUPLOAD);
	CHECK_EQ_INT(s3meta_mpu_complete(m, "mbk", "big", uid, good, 2, 0, &out, &fl), -S3META_ENOSUCHUPLOAD);

	struct s3meta_obj o;
	CHECK_EQ_INT(s3meta_object_get(m, "mbk", "big", NULL, &o), 0);
	CHECK_EQ_INT(o.parts_count, 2);
	CHECK_EQ_INT(o.size, MIB5 + 100);
	CHECK(o.etag && !strcmp(o.etag, "065947336a2f2a95ba8899f3675c3be6-2"));
	CHECK(o.content_type && !strcmp(o.content_type, "application/x-test"));
	CHECK(o.cksum_algo && !strcmp(o.cksum_algo, "CRC32"));
	CHECK(o.cksum_value && !strcmp(o.cksum_value, "wpn7tg==-2"));
	{
		size_t pos = 0, nl, vl;
		const char *nm, *vv;
		CHECK(s3meta_umeta_next(o.user_meta, o.user_meta_len, &pos, &nm, &nl, &vv, &vl));
		CHECK(nl == 5 && !memcmp(nm, "color", 5) && vl == 4 && !memcmp(vv, "blue", 4));
		CHECK(s3meta_umeta_next(o.user_meta, o.user_meta_len, &pos, &nm, &nl, &vv, &vl));
		CHECK(!s3meta_umeta_next(o.user_meta, o.user_meta_len, &pos, &nm, &nl, &vv, &vl));
	}
	struct s3meta_mploc_iter it;
	uint64_t np;
	CHECK(s3meta_mploc_init(&it, o.locator, o.locator_len, &np));
	CHECK_EQ_INT(np, 2);
	int64_t sz;
	const uint8_t *lp;
	size_t ll;
	CHECK(s3meta_mploc_next(&it, &sz, &lp, &ll) && sz == MIB5 && ll == 2 && !memcmp(lp, "p1", 2));
	CHECK(s3meta_mploc_next(&it, &sz, &lp, &ll) && sz == 100 && ll == 2 && !memcmp(lp, "p2", 2));
	CHECK(!s3meta_mploc_next(&it, &sz, &lp, &ll) && !it.err);
	s3meta_obj_destroy(&o);

	/* Completing over an existing object frees its data (unversioned). */
	s3meta_locs_destroy(&fl);
	CHECK_EQ_INT(s3meta_mpu_create(m, "mbk", "big", &(struct s3meta_put){ .owner = OWNER }, uid), 0);
	CHECK_EQ_INT(put_part(m, "big", uid, 1, 3, e1, NULL, "q1", &fl), 0);
	struct s3meta_part_ref one[] = { { 1, e1 } };
	CHECK_EQ_INT(s3meta_mpu_complete(m, "mbk", "big", uid, one, 1, 0, &out, &fl), 0);
	CHECK(fl.n == 1 && s3meta_mploc_init(&it, fl.v[0].p, fl.v[0].len, &np) && np == 2);
	CHECK_EQ_INT(s3meta_object_get(m, "mbk", "big", NULL, &o), 0);
	CHECK(!o.cksum_algo && !o.cksum_value && !o.content_type);
	s3meta_obj_destroy(&o);

	/* Abort frees every part. */
	s3meta_locs_destroy(&fl);
	CHECK_EQ_INT(s3meta_mpu_create(m, "mbk", "ab", &(struct s3meta_put){ .owner = OWNER }, uid), 0);
	CHECK_EQ_INT(put_part(m, "ab", uid, 1, 3, e1, NULL, "a1", &fl), 0);
	CHECK_EQ_INT(put_part(m, "ab", uid, 7, 3, e1, NULL, "a7", &fl), 0);
	CHECK_EQ_INT(s3meta_mpu_abort(m, "mbk", "ab", uid, &fl), 0);
	CHECK(fl.n == 2 && locs_has(&fl, "a1") && locs_has(&fl, "a7"));
	CHECK_EQ_INT(s3meta_mpu_abort(m, "mbk", "ab", uid, &fl), -S3META_ENOSUCHUPLOAD);
	s3meta_locs_destroy(&fl);
	s3meta_close(m);
}

TEST(s3meta_list_uploads)
{
	struct s3meta *m = fresh();
	REQUIRE(m);
	REQUIRE(s3meta_bucket_create(m, "mbk", OWNER, 0) == 0);
	static const char *const keys[] = { "a/1", "a/2", "b", "b", "b", "c" };
	char uids[6][S3META_UPLOAD_ID_SIZE];
	for (int i = 0; i < 6; i++) {
		struct s3meta_put attrs = { .owner = OWNER, .mtime_ms = i < 2 ? 1000 : 0 };
		CHECK_EQ_INT(s3meta_mpu_create(m, "mbk", keys[i], &attrs, uids[i]), 0);
	}
	struct s3meta_list_req req = { .max = 1000 };
	struct s3meta_list l;
	CHECK_EQ_INT(s3meta_list_uploads(m, "mbk", &req, &l), 0);
	CHECK_EQ_INT(l.n, 6);
	for (size_t i = 0; i < l.n && i < 6; i++)
		CHECK(!strcmp(l.v[i].key, keys[i]) && !strcmp(l.v[i].upload_id, uids[i]));
	s3meta_list_destroy(&l);
	/* Pages of 1 with key-marker / upload-id-marker. */
	for (int max = 1; max <= 2; max++) {
		char km[64] = "", um[S3META_UPLOAD_ID_SIZE] = "";
		size_t got = 0;
		bool more = true;
		int pages = 0;
		while (more && pages++ < 20) {
			req = (struct s3meta_list_req){ .max = max, .marker = km[0] ? km : NULL,
							.id_marker = um[0] ? um : NULL };
			CHECK_EQ_INT(s3meta_list_uploads(m, "mbk", &req, &l), 0);
			for (size_t i = 0; i < l.n; i++, got++)
				CHECK(got < 6 && !strcmp(l.v[i].upload_id, uids[got]));
			more = l.truncated;
			if (more) {
				snprintf(km, sizeof(km), "%s", l.next_marker);
				snprintf(um, sizeof(um), "%s", l.next_id_marker ? l.next_id_marker : "");
			}
			s3meta_list_destroy(&l);
		}
		CHECK_EQ_INT(got, 6);
	}
	req = (struct s3meta_list_req){ .delimiter = "/", .max = 1000 };
	CHECK_EQ_INT(s3meta_list_uploads(m, "mbk", &req, &l), 0);
	CHECK(l.n == 5 && l.v[0].is_prefix && !strcmp(l.v[0].key, "a/"));
	s3meta_list_destroy(&l);
	/* The two uploads "initiated" at t=1000 are abandoned. */
	CHECK_EQ_INT(s3meta_mpu_list_abandoned(m, 3600 * 1000, 100, &l), 0);
	CHECK_EQ_INT(l.n, 2);
	if (l.n == 2)
		CHECK(!strcmp(l.v[0].bucket, "mbk") && !strcmp(l.v[0].key, "a/1") &&
		      !strcmp(l.v[1].upload_id, uids[1]));
	s3meta_list_destroy(&l);
	s3meta_close(m);
}

/* ---- persistence -------------------------------------------------------------------- */

TEST(s3meta_persistence)
{
	const char *dir = test_tmpdir();
	struct s3meta *m = meta_open(dir);
	REQUIRE(m);
	REQUIRE(s3meta_bucket_create(m, "pbk", OWNER, 0) == 0);
	REQUIRE(s3meta_bucket_versioning_set(m, "pbk", S3META_VERSIONING_ENABLED) == 0);
	char v1[S3META_VID_SIZE], v2[S3META_VID_SIZE], uid[S3META_UPLOAD_ID_SIZE];
	CHECK_EQ_INT(put(m, "pbk", "k", 11, "one", v1, NULL), 0);
	CHECK_EQ_INT(put(m, "pbk", "k", 22, "two", v2, NULL), 0);
	CHECK_EQ_INT(s3meta_mpu_create(m, "pbk", "u", &(struct s3meta_put){ .owner = OWNER }, uid), 0);
	CHECK_EQ_INT(s3meta_checkpoint(m, NULL, NULL), 0);
	s3meta_close(m);

	m = meta_open(dir);
	REQUIRE(m);
	struct s3meta_bucket b;
	CHECK_EQ_INT(s3meta_bucket_head(m, "pbk", &b), 0);
	CHECK_EQ_INT(b.versioning, S3META_VERSIONING_ENABLED);
	struct s3meta_obj o;
	CHECK_EQ_INT(s3meta_object_get(m, "pbk", "k", NULL, &o), 0);
	CHECK(!strcmp(o.version_id, v2) && loc_is(&o, "loc:two"));
	s3meta_obj_destroy(&o);
	CHECK_EQ_INT(s3meta_object_get(m, "pbk", "k", v1, &o), 0);
	CHECK_EQ_INT(o.size, 11);
	s3meta_obj_destroy(&o);
	/* New ids keep increasing after a reopen. */
	char v3[S3META_VID_SIZE];
	CHECK_EQ_INT(put(m, "pbk", "k", 33, "three", v3, NULL), 0);
	CHECK(strcmp(v3, v2) > 0);
	struct s3meta_usage us;
	CHECK_EQ_INT(s3meta_bucket_usage(m, "pbk", &us), 0);
	CHECK_EQ_INT(us.objects, 1);
	CHECK_EQ_INT(us.bytes, 33);
	CHECK_EQ_INT(us.versions, 3);
	CHECK_EQ_INT(us.version_bytes, 66);
	struct s3meta_parts ps;
	CHECK_EQ_INT(s3meta_mpu_list_parts(m, "pbk", "u", uid, 0, 10, &ps), 0);
	s3meta_parts_destroy(&ps);
	s3meta_close(m);
}

/* ---- threads ------------------------------------------------------------------------ */

#include <pthread.h>

struct thr_arg {
	struct s3meta *m;
	int id;
	int errors;
};

static void *thr_main(void *p)
{
	struct thr_arg *a = p;
	char key[64];
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "t%d/%03d", a->id, i);
		if (put(a->m, "tbk", key, 1, key, NULL, NULL))
			a->errors++;
		struct s3meta_list_req req = { .prefix = "t", .delimiter = "/", .max = 10 };
		struct s3meta_list l;
		if (s3meta_list_objects(a->m, "tbk", &req, &l))
			a->errors++;
		s3meta_list_destroy(&l);
		char secret[S3META_SECRET_MAX + 1];
		if (s3meta_user_secret(a->m, "ROOTKEY", secret))
			a->errors++;
	}
	return NULL;
}

TEST(s3meta_threads)
{
	struct s3meta *m = fresh();
	REQUIRE(m);
	REQUIRE(s3meta_bucket_create(m, "tbk", OWNER, 0) == 0);
	REQUIRE(s3meta_user_ensure(m, "ROOTKEY", "rootsecret", "root") == 0);
	pthread_t t[4];
	struct thr_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thr_arg){ .m = m, .id = i };
		pthread_create(&t[i], NULL, thr_main, &args[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ_INT(args[i].errors, 0);
	}
	struct s3meta_usage us;
	CHECK_EQ_INT(s3meta_bucket_usage(m, "tbk", &us), 0);
	CHECK_EQ_INT(us.objects, 800);
	s3meta_close(m);
}

/* ---- benchmark (build/unit_tests tool_s3meta_bench) ---------------------------------------------------- */

static void bench_pages(struct s3meta *m, const char *delim, const char *start_after)
{
	char *tok = NULL;
	double tot = 0, worst = 0;
	size_t entries = 0;
	int pages = 0;
	printf("    delimiter '%s'%s%s:", delim, start_after ? " from " : "", start_after ? start_after : "");
	for (int page = 0; page < 10; page++) {
		struct s3meta_list_req req = { .delimiter = delim, .token = tok, .max = 1000 };
		if (!tok)
			req.marker = start_after;
		struct s3meta_list l;
		int64_t t0 = mono_us();
		int rc = s3meta_list_objects(m, "bench", &req, &l);
		double ms = (double)(mono_us() - t0) / 1000.0;
		CHECK_EQ_INT(rc, 0);
		CHECK(l.n == 1000 || !l.truncated);
		entries += l.n;
		pages++;
		tot += ms;
		worst = ms > worst ? ms : worst;
		printf(" %.2f", ms);
		free(tok);
		tok = l.next_token ? xstrdup(l.next_token) : NULL;
		s3meta_list_destroy(&l);
		if (!tok)
			break;
	}
	free(tok);
	printf(" ms; mean %.2f ms/page, worst %.2f (%zu entries)\n", tot / pages, worst, entries);
}

TEST(tool_s3meta_bench)
{
	struct s3meta *m = fresh();
	REQUIRE(m);
	REQUIRE(s3meta_bucket_create(m, "bench", OWNER, 0) == 0);
	/* 10,000 "directories" of 100 files: 1,000,000 keys. */
	enum { BATCH = 10000, TOTAL = 1000000 };
	char(*names)[32] = xmalloc(BATCH * sizeof(*names));
	const char **keys = xmalloc(BATCH * sizeof(*keys));
	struct s3meta_put *puts = xcalloc(BATCH, sizeof(*puts));
	char loc[16] = "0123456789abcdef";
	int64_t t0 = mono_us();
	for (int base = 0; base < TOTAL; base += BATCH) {
		for (int i = 0; i < BATCH; i++) {
			int k = base + i;
			snprintf(names[i], sizeof(names[i]), "dir%04d/file%06d", k / 100, k);
			keys[i] = names[i];
			puts[i] = (struct s3meta_put){ .size = k, .etag = "5d41402abc4b2a76b9719d911017c592",
						       .owner = OWNER, .locator = (const uint8_t *)loc,
						       .locator_len = sizeof(loc) };
		}
		struct s3meta_locs fl = { 0 };
		int rc = s3meta_object_put_many(m, "bench", BATCH, keys, puts, &fl);
		s3meta_locs_destroy(&fl);
		if (rc) {
			CHECK_EQ_INT(rc, 0);
			break;
		}
	}
	double ins = (double)(mono_us() - t0) / 1e6;
	printf("  s3meta bench: inserted %d keys in %.1f s (%.0f keys/s)\n", TOTAL, ins, TOTAL / ins);
	t0 = mono_us();
	for (int i = 0; i < 1000; i++) {
		char k[32];
		snprintf(k, sizeof(k), "dir%04d/file%06d", (i * 997) % 10000, ((i * 997) % 10000) * 100 + 7);
		CHECK_EQ_INT(put(m, "bench", k, 1, "x", NULL, NULL), 0);
	}
	printf("  single puts (overwrite, own transaction): %.1f us each\n", (double)(mono_us() - t0) / 1000.0);
	printf("  ListObjectsV2, 10 consecutive pages of 1,000 (ms per page):\n");
	bench_pages(m, "", NULL);
	bench_pages(m, "", "dir5000/");
	bench_pages(m, "", "dir9999/file999950");
	bench_pages(m, "/", NULL);
	bench_pages(m, "/", "dir2000/");
	/* One ListObjectVersions page and one ListMultipartUploads-free
	 * bucket check, for scale. */
	struct s3meta_list_req vreq = { .marker = "dir3000/file300000", .max = 1000 };
	struct s3meta_list vl;
	t0 = mono_us();
	CHECK_EQ_INT(s3meta_list_versions(m, "bench", &vreq, &vl), 0);
	printf("  ListObjectVersions page of %zu: %.2f ms\n", vl.n, (double)(mono_us() - t0) / 1000.0);
	s3meta_list_destroy(&vl);
	struct s3meta_usage us;
	CHECK_EQ_INT(s3meta_bucket_usage(m, "bench", &us), 0);
	CHECK_EQ_INT(us.objects, TOTAL);
	free(names);
	free(keys);
	free(puts);
	s3meta_close(m);
}

/* A v1 marker that is a common prefix skips everything rolled up in it, and
 * IsTruncated is exact (no truncated page followed by an empty one). */
TEST(s3meta_list_marker_is_prefix)
{
	struct s3meta *m = fresh();
	REQUIRE(m);
	REQUIRE(s3meta_bucket_create(m, "mk1", OWNER, 0) == 0);
	static const char *const keys[] = { "asdf", "boo/bar", "boo/baz/xyzzy", "cquux/thud", "cquux/bla" };
	for (size_t i = 0; i < SILT_ARRAY_LEN(keys); i++)
		CHECK_EQ_INT(put(m, "mk1", keys[i], 1, keys[i], NULL, NULL), 0);
	struct s3meta_list_req req = { .delimiter = "/", .marker = "boo/", .max = 1 };
	struct s3meta_list l;
	CHECK_EQ_INT(s3meta_list_objects(m, "mk1", &req, &l), 0);
	CHECK(l.n == 1 && l.v[0].is_prefix && !strcmp(l.v[0].key, "cquux/"));
	CHECK(!l.truncated && !l.next_marker);
	s3meta_list_destroy(&l);
	s3meta_close(m);
}
