/* test_s3_objects.c - the object operations (op_object.c) end to end: a
 * real S3 service on an ephemeral port, requests signed with libcurl's
 * SigV4. */
#include "core/platform.h"
#include "core/wbuf.h"
#include "s3/checksum.h"
#include "s3/service.h"
#include "test.h"

#include <curl/curl.h>

struct env {
	struct s3svc *svc;
	int port;
};

struct resp {
	long status;
	struct wbuf body;
	struct wbuf hdrs;
};

static bool env_start(struct env *e)
{
	static bool curl_init;
	if (!curl_init) {
		curl_global_init(CURL_GLOBAL_ALL);
		curl_init = true;
	}
	struct s3svc_conf c = {
		.host = "127.0.0.1",
		.port = 0,
		.nthreads = 1,
		.data_dir = test_tmpdir(),
		.root_user = "testadmin",
		.root_password = "testsecret",
	};
	if (s3svc_start(&c, &e->svc) != 0)
		return false;
	e->port = http_server_port(e->svc->http);
	return true;
}

static void env_stop(struct env *e)
{
	s3svc_stop(e->svc);
}

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
	wbuf_put(arg, p, sz * n);
	return sz * n;
}

static void resp_destroy(struct resp *r)
{
	wbuf_destroy(&r->body);
	wbuf_destroy(&r->hdrs);
}

/* One signed request. hdrs is NULL-terminated "Name: value" lines. */
static long req(struct env *e, const char *method, const char *path, const char *const *hdrs, const void *body,
		size_t len, struct resp *out)
{
	char url[2048];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", e->port, path);
	wbuf_init(&out->body, 0, 64u << 20);
	wbuf_init(&out->hdrs, 0, 1u << 20);
	CURL *c = curl_easy_init();
	struct curl_slist *sl = NULL;
	sl = curl_slist_append(sl, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
	bool ct = false;
	for (size_t i = 0; hdrs && hdrs[i]; i++) {
		sl = curl_slist_append(sl, hdrs[i]);
		ct = ct || strncasecmp(hdrs[i], "Content-Type:", 13) == 0;
	}
	if (!ct && body)
		sl = curl_slist_append(sl, "Content-Type: application/octet-stream");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
	curl_easy_setopt(c, CURLOPT_USERPWD, "testadmin:testsecret");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &out->hdrs);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	out->status = -1;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	curl_slist_free_all(sl);
	curl_easy_cleanup(c);
	wbuf_u8(&out->hdrs, 0);
	return out->status;
}

/* Response header value (copied into buf), or NULL. */
static const char *hdr(struct resp *r, const char *name, char *buf, size_t cap)
{
	const char *p = (const char *)r->hdrs.p;
	size_t nl = strlen(name);
	while (p && *p) {
		const char *eol = strchr(p, '\n');
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ')
				v++;
			size_t n = (size_t)((eol ? eol : v + strlen(v)) - v);
			while (n && (v[n - 1] == '\r' || v[n - 1] == ' '))
				n--;
			snprintf(buf, cap, "%.*s", (int)n, v);
			return buf;
		}
		p = eol ? eol + 1 : NULL;
	}
	return NULL;
}

static bool body_has(struct resp *r, const char *s)
{
	return r->body.len && memmem(r->body.p, r->body.len, s, strlen(s)) != NULL;
}

static long simple(struct env *e, const char *method, const char *path, const char *const *hdrs, const void *body,
		   size_t len)
{
	struct resp r;
	long st = req(e, method, path, hdrs, body, len, &r);
	resp_destroy(&r);
	return st;
}

static void content_md5(const void *p, size_t n, char *out)
{
	uint8_t d[S3_CKSUM_MAX_DIGEST];
	s3_cksum_buf(S3_CKSUM_MD5, p, n, d);
	char b64[S3_CKSUM_B64_MAX];
	s3_b64_encode(d, 16, b64);
	sprintf(out, "Content-MD5: %s", b64);
}

TEST(s3obj_put_get_range)
{
	struct env e;
	REQUIRE(env_start(&e));
	CHECK_EQ_INT(simple(&e, "PUT", "/bkt", NULL, NULL, 0), 200);
	size_t n = 3u << 20;
	uint8_t *data = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i * 7 + i / 1000);
	struct resp r;
	CHECK_EQ_INT(req(&e, "PUT", "/bkt/a%20b", NULL, data, n, &r), 200);
	char etag[64], buf[256];
	REQUIRE(hdr(&r, "ETag", etag, sizeof(etag)));
	resp_destroy(&r);
	CHECK_EQ_INT(req(&e, "GET", "/bkt/a%20b", NULL, NULL, 0, &r), 200);
	CHECK(r.body.len == n && memcmp(r.body.p, data, n) == 0);
	CHECK(hdr(&r, "Content-Type", buf, sizeof(buf)) && strcmp(buf, "application/octet-stream") == 0);
	CHECK(hdr(&r, "Last-Modified", buf, sizeof(buf)) != NULL);
	resp_destroy(&r);
	/* Ranges: a-b across a chunk boundary, a-, -n, beyond the end. */
	static const struct {
		const char *h;
		size_t off, len;
	} rs[] = {
		{ "Range: bytes=1048570-1048580", 1048570, 11 },
		{ "Range: bytes=3145700-", 3145700, 28 },
		{ "Range: bytes=-10", 3145718, 10 },
		{ "Range: bytes=5-99999999", 5, 3145723 },
	};
	for (size_t i = 0; i < SILT_ARRAY_LEN(rs); i++) {
		const char *h[] = { rs[i].h, NULL };
		CHECK_EQ_INT(req(&e, "GET", "/bkt/a%20b", h, NULL, 0, &r), 206);
		CHECK(r.body.len == rs[i].len && memcmp(r.body.p, data + rs[i].off, rs[i].len) == 0);
		CHECK(hdr(&r, "Content-Range", buf, sizeof(buf)) != NULL);
		resp_destroy(&r);
	}
	const char *multi[] = { "Range: bytes=0-1,5-6", NULL };
	CHECK_EQ_INT(req(&e, "GET", "/bkt/a%20b", multi, NULL, 0, &r), 200);
	CHECK(r.body.len == n);
	resp_destroy(&r);
	const char *bad[] = { "Range: bytes=3145728-", NULL };
	CHECK_EQ_INT(req(&e, "GET", "/bkt/a%20b", bad, NULL, 0, &r), 416);
	CHECK(hdr(&r, "Content-Range", buf, sizeof(buf)) && strcmp(buf, "bytes */3145728") == 0);
	CHECK(body_has(&r, "InvalidRange"));
	resp_destroy(&r);
	/* HEAD: the GET's headers, no body. */
	CHECK_EQ_INT(req(&e, "HEAD", "/bkt/a%20b", NULL, NULL, 0, &r), 200);
	CHECK(hdr(&r, "Content-Length", buf, sizeof(buf)) && strcmp(buf, "3145728") == 0);
	CHECK(r.body.len == 0);
	resp_destroy(&r);
	/* Conditionals. */
	char im[100], inm[100];
	snprintf(im, sizeof(im), "If-Match: %s", etag);
	snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
	const char *c1[] = { im, NULL };
	CHECK_EQ_INT(simple(&e, "HEAD", "/bkt/a%20b", c1, NULL, 0), 200);
	const char *c2[] = { "If-Match: \"0123\"", NULL };
	CHECK_EQ_INT(simple(&e, "GET", "/bkt/a%20b", c2, NULL, 0), 412);
	const char *c3[] = { inm, NULL };
	CHECK_EQ_INT(simple(&e, "GET", "/bkt/a%20b", c3, NULL, 0), 304);
	const char *c4[] = { im, "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT", NULL };
	CHECK_EQ_INT(simple(&e, "HEAD", "/bkt/a%20b", c4, NULL, 0), 200);
	const char *c5[] = { "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT", NULL };
	CHECK_EQ_INT(simple(&e, "HEAD", "/bkt/a%20b", c5, NULL, 0), 412);
	const char *c6[] = { inm, "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT", NULL };
	CHECK_EQ_INT(simple(&e, "HEAD", "/bkt/a%20b", c6, NULL, 0), 304);
	const char *c7[] = { "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT", NULL };
	CHECK_EQ_INT(simple(&e, "HEAD", "/bkt/a%20b", c7, NULL, 0), 304);
	/* An empty object, and a range of it. */
	CHECK_EQ_INT(simple(&e, "PUT", "/bkt/empty", NULL, "", 0), 200);
	CHECK_EQ_INT(req(&e, "GET", "/bkt/empty", NULL, NULL, 0, &r), 200);
	CHECK(r.body.len == 0);
	resp_destroy(&r);
	const char *r0[] = { "Range: bytes=0-", NULL };
	CHECK_EQ_INT(simple(&e, "GET", "/bkt/empty", r0, NULL, 0), 416);
	CHECK_EQ_INT(simple(&e, "GET", "/bkt/missing", NULL, NULL, 0), 404);
	free(data);
	env_stop(&e);
}

TEST(s3obj_digest_and_metadata)
{
	struct env e;
	REQUIRE(env_start(&e));
	CHECK_EQ_INT(simple(&e, "PUT", "/bkt", NULL, NULL, 0), 200);
	struct resp r;
	const char *badmd5[] = { "Content-MD5: AAAAAAAAAAAAAAAAAAAAAA==", NULL };
	CHECK_EQ_INT(req(&e, "PUT", "/bkt/k", badmd5, "hello", 5, &r), 400);
	CHECK(body_has(&r, "BadDigest"));
	resp_destroy(&r);
	CHECK_EQ_INT(simple(&e, "GET", "/bkt/k", NULL, NULL, 0), 404);
	const char *badcrc[] = { "x-amz-checksum-crc32: AAAAAA==", NULL };
	CHECK_EQ_INT(simple(&e, "PUT", "/bkt/k", badcrc, "hello", 5), 400);
	CHECK_EQ_INT(simple(&e, "GET", "/bkt/k", NULL, NULL, 0), 404);
	/* A good CRC32 is stored and returned only when asked for. */
	uint8_t d[S3_CKSUM_MAX_DIGEST];
	char b64[S3_CKSUM_B64_MAX], crc[80], buf[256];
	s3_b64_encode(d, s3_cksum_buf(S3_CKSUM_CRC32, "hello", 5, d), b64);
	snprintf(crc, sizeof(crc), "x-amz-checksum-crc32: %s", b64);
	const char *meta[] = { crc, "x-amz-meta-Color: blue", "X-Amz-Meta-Size: big", "Content-Type: text/plain",
			       "Content-Encoding: aws-chunked,gzip", NULL };
	CHECK_EQ_INT(req(&e, "PUT", "/bkt/k", meta, "hello", 5, &r), 200);
	CHECK(hdr(&r, "x-amz-checksum-crc32", buf, sizeof(buf)) && strcmp(buf, b64) == 0);
	resp_destroy(&r);
	CHECK_EQ_INT(req(&e, "GET", "/bkt/k", NULL, NULL, 0, &r), 200);
	CHECK(hdr(&r, "x-amz-meta-color", buf, sizeof(buf)) && strcmp(buf, "blue") == 0);
	CHECK(hdr(&r, "x-amz-meta-size", buf, sizeof(buf)) && strcmp(buf, "big") == 0);
	CHECK(hdr(&r, "Content-Type", buf, sizeof(buf)) && strcmp(buf, "text/plain") == 0);
	CHECK(hdr(&r, "Content-Encoding", buf, sizeof(buf)) && strcmp(buf, "gzip") == 0);
	CHECK(!hdr(&r, "x-amz-checksum-crc32", buf, sizeof(buf)));
	resp_destroy(&r);
	const char *mode[] = { "x-amz-checksum-mode: ENABLED", NULL };
	CHECK_EQ_INT(req(&e, "GET", "/bkt/k?response-content-type=x%2Fy", mode, NULL, 0, &r), 200);
	CHECK(hdr(&r, "x-amz-checksum-crc32", buf, sizeof(buf)) && strcmp(buf, b64) == 0);
	CHECK(hdr(&r, "Content-Type", buf, sizeof(buf)) && strcmp(buf, "x/y") == 0);
	resp_destroy(&r);
	/* 2 KiB of user metadata at most. */
	char big[2200];
	snprintf(big, sizeof(big), "x-amz-meta-a: %02100d", 0);
	const char *toobig[] = { big, NULL };
	CHECK_EQ_INT(req(&e, "PUT", "/bkt/m", toobig, "x", 1, &r), 400);
	CHECK(body_has(&r, "MetadataTooLarge"));
	resp_destroy(&r);
	env_stop(&e);
}

TEST(s3obj_copy_delete)
{
	struct env e;
	REQUIRE(env_start(&e));
	CHECK_EQ_INT(simple(&e, "PUT", "/bkt", NULL, NULL, 0), 200);
	const char *meta[] = { "x-amz-meta-a: 1", NULL };
	CHECK_EQ_INT(simple(&e, "PUT", "/bkt/src%2Bkey", meta, "copy me", 7), 200);
	struct resp r;
	char buf[256];
	const char *cp[] = { "x-amz-copy-source: /bkt/src%2Bkey", NULL };
	CHECK_EQ_INT(req(&e, "PUT", "/bkt/dst", cp, NULL, 0, &r), 200);
	CHECK(body_has(&r, "<CopyObjectResult") && body_has(&r, "<ETag>"));
	resp_destroy(&r);
	CHECK_EQ_INT(req(&e, "GET", "/bkt/dst", NULL, NULL, 0, &r), 200);
	CHECK(r.body.len == 7 && memcmp(r.body.p, "copy me", 7) == 0);
	CHECK(hdr(&r, "x-amz-meta-a", buf, sizeof(buf)) && strcmp(buf, "1") == 0);
	resp_destroy(&r);
	const char *rep[] = { "x-amz-copy-source: bkt/dst", "x-amz-metadata-directive: REPLACE", "x-amz-meta-b: 2",
			      NULL };
	CHECK_EQ_INT(simple(&e, "PUT", "/bkt/dst2", rep, NULL, 0), 200);
	CHECK_EQ_INT(req(&e, "HEAD", "/bkt/dst2", NULL, NULL, 0, &r), 200);
	CHECK(!hdr(&r, "x-amz-meta-a", buf, sizeof(buf)) && hdr(&r, "x-amz-meta-b", buf, sizeof(buf)));
	resp_destroy(&r);
	const char *self[] = { "x-amz-copy-source: bkt/dst", NULL };
	CHECK_EQ_INT(req(&e, "PUT", "/bkt/dst", self, NULL, 0, &r), 400);
	CHECK(body_has(&r, "InvalidRequest"));
	resp_destroy(&r);
	const char *cond[] = { "x-amz-copy-source: bkt/dst", "x-amz-copy-source-if-match: \"nope\"", NULL };
	CHECK_EQ_INT(simple(&e, "PUT", "/bkt/dst3", cond, NULL, 0), 412);
	const char *nosrc[] = { "x-amz-copy-source: bkt/none", NULL };
	CHECK_EQ_INT(simple(&e, "PUT", "/bkt/dst3", nosrc, NULL, 0), 404);
	const char *garbage[] = { "x-amz-copy-source: justabucket", NULL };
	CHECK_EQ_INT(simple(&e, "PUT", "/bkt/dst3", garbage, NULL, 0), 400);
	/* DeleteObject: 204, also for a missing key. */
	CHECK_EQ_INT(simple(&e, "DELETE", "/bkt/dst2", NULL, NULL, 0), 204);
	CHECK_EQ_INT(simple(&e, "DELETE", "/bkt/dst2", NULL, NULL, 0), 204);
	CHECK_EQ_INT(simple(&e, "GET", "/bkt/dst2", NULL, NULL, 0), 404);
	/* DeleteObjects needs an integrity header. */
	const char *doc = "<Delete><Object><Key>dst</Key></Object><Object><Key>zzz</Key></Object></Delete>";
	CHECK_EQ_INT(req(&e, "POST", "/bkt?delete=", NULL, doc, strlen(doc), &r), 400);
	CHECK(body_has(&r, "Content-MD5"));
	resp_destroy(&r);
	char md5[80];
	content_md5(doc, strlen(doc), md5);
	const char *h[] = { md5, NULL };
	CHECK_EQ_INT(req(&e, "POST", "/bkt?delete=", h, doc, strlen(doc), &r), 200);
	CHECK(body_has(&r, "<Deleted><Key>dst</Key></Deleted>") && body_has(&r, "<Key>zzz</Key>"));
	resp_destroy(&r);
	CHECK_EQ_INT(simple(&e, "GET", "/bkt/dst", NULL, NULL, 0), 404);
	const char *bad[] = { "Content-MD5: AAAAAAAAAAAAAAAAAAAAAA==", NULL };
	CHECK_EQ_INT(simple(&e, "POST", "/bkt?delete=", bad, doc, strlen(doc)), 400);
	const char *quiet = "<Delete><Quiet>true</Quiet><Object><Key>src+key</Key></Object></Delete>";
	content_md5(quiet, strlen(quiet), md5);
	CHECK_EQ_INT(req(&e, "POST", "/bkt?delete=", h, quiet, strlen(quiet), &r), 200);
	CHECK(!body_has(&r, "<Deleted>"));
	resp_destroy(&r);
	CHECK_EQ_INT(simple(&e, "GET", "/bkt/src%2Bkey", NULL, NULL, 0), 404);
	env_stop(&e);
}

TEST(s3obj_versioned)
{
	struct env e;
	REQUIRE(env_start(&e));
	CHECK_EQ_INT(simple(&e, "PUT", "/bkt", NULL, NULL, 0), 200);
	const char *vc = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
	CHECK_EQ_INT(simple(&e, "PUT", "/bkt?versioning=", NULL, vc, strlen(vc)), 200);
	struct resp r;
	char v1[32], v2[32], dm[32], buf[256], path[128];
	CHECK_EQ_INT(req(&e, "PUT", "/bkt/k", NULL, "one", 3, &r), 200);
	REQUIRE(hdr(&r, "x-amz-version-id", v1, sizeof(v1)));
	resp_destroy(&r);
	CHECK_EQ_INT(req(&e, "PUT", "/bkt/k", NULL, "two", 3, &r), 200);
	REQUIRE(hdr(&r, "x-amz-version-id", v2, sizeof(v2)));
	resp_destroy(&r);
	CHECK(strcmp(v1, v2) != 0);
	snprintf(path, sizeof(path), "/bkt/k?versionId=%s", v1);
	CHECK_EQ_INT(req(&e, "GET", path, NULL, NULL, 0, &r), 200);
	CHECK(r.body.len == 3 && memcmp(r.body.p, "one", 3) == 0);
	CHECK(hdr(&r, "x-amz-version-id", buf, sizeof(buf)) && strcmp(buf, v1) == 0);
	resp_destroy(&r);
	CHECK_EQ_INT(req(&e, "DELETE", "/bkt/k", NULL, NULL, 0, &r), 204);
	CHECK(hdr(&r, "x-amz-delete-marker", buf, sizeof(buf)) && strcmp(buf, "true") == 0);
	REQUIRE(hdr(&r, "x-amz-version-id", dm, sizeof(dm)));
	resp_destroy(&r);
	CHECK_EQ_INT(req(&e, "GET", "/bkt/k", NULL, NULL, 0, &r), 404);
	CHECK(hdr(&r, "x-amz-delete-marker", buf, sizeof(buf)) && strcmp(buf, "true") == 0);
	CHECK(body_has(&r, "NoSuchKey"));
	resp_destroy(&r);
	snprintf(path, sizeof(path), "/bkt/k?versionId=%s", dm);
	CHECK_EQ_INT(req(&e, "HEAD", path, NULL, NULL, 0, &r), 405);
	CHECK(hdr(&r, "x-amz-delete-marker", buf, sizeof(buf)) != NULL);
	resp_destroy(&r);
	/* Removing the marker brings v2 back. */
	CHECK_EQ_INT(simple(&e, "DELETE", path, NULL, NULL, 0), 204);
	CHECK_EQ_INT(req(&e, "GET", "/bkt/k", NULL, NULL, 0, &r), 200);
	CHECK(r.body.len == 3 && memcmp(r.body.p, "two", 3) == 0);
	resp_destroy(&r);
	CHECK_EQ_INT(simple(&e, "GET", "/bkt/k?versionId=", NULL, NULL, 0), 400);
	env_stop(&e);
}

/* ---- concurrent uploads: the batched MD5 ---------------------------------- */

struct upl {
	const uint8_t *data;
	size_t len, off;
	bool chunked_te; /* Transfer-Encoding: chunked (length unknown up front) */
	bool bad_md5;    /* a Content-MD5 that does not match */
	struct resp r;
	struct curl_slist *sl;
	CURL *c;
};

static size_t upl_read(char *buf, size_t sz, size_t n, void *arg)
{
	struct upl *u = arg;
	/* Small odd pieces: the server sees many short reads. */
	size_t k = SILT_MIN(SILT_MIN(sz * n, u->len - u->off), (size_t)50000);
	memcpy(buf, u->data + u->off, k);
	u->off += k;
	return k;
}

/* Uploads of many sizes at once on a one-loop server, so their MD5s share
 * the lanes and flushes: every ETag must be the plain MD5 of the bytes,
 * the bytes must read back, and a wrong Content-MD5 on a large body must
 * still fail with BadDigest and leave nothing visible. */
TEST(s3obj_concurrent_puts_etags)
{
	struct env e;
	REQUIRE(env_start(&e));
	CHECK_EQ_INT(simple(&e, "PUT", "/cbkt", NULL, NULL, 0), 200);
	static const size_t sizes[] = { 0,	 1,	    63,		 64,	      65,	   100000,
					 1048575, 1048576, 1048577, 1572864 + 5, 2097152, 3145728 + 4099,
					 5000000, 6291456 };
	enum { N = SILT_ARRAY_LEN(sizes) + 2 };
	size_t maxlen = 6291456;
	uint8_t *data = xmalloc(maxlen);
	for (size_t i = 0; i < maxlen; i++)
		data[i] = (uint8_t)(i * 131 + (i >> 9) * 7 + 3);
	struct upl u[N];
	memset(u, 0, sizeof(u));
	CURLM *m = curl_multi_init();
	char urls[N][128], md5h[N][80];
	for (int i = 0; i < N; i++) {
		struct upl *x = &u[i];
		/* The last two: chunked transfer encoding, and a bad Content-MD5. */
		x->len = i < (int)SILT_ARRAY_LEN(sizes) ? sizes[i] : 4194304 + 77;
		x->data = data + (size_t)i * 17 % 4096;
		if (x->len + (size_t)i * 17 % 4096 > maxlen)
			x->data = data;
		x->chunked_te = i == N - 2;
		x->bad_md5 = i == N - 1;
		snprintf(urls[i], sizeof(urls[i]), "http://127.0.0.1:%d/cbkt/o%d", e.port, i);
		wbuf_init(&x->r.body, 0, 1u << 20);
		wbuf_init(&x->r.hdrs, 0, 1u << 20);
		x->c = curl_easy_init();
		x->sl = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
		x->sl = curl_slist_append(x->sl, "Content-Type: application/octet-stream");
		if (i % 3 == 0 || x->bad_md5) {
			content_md5(x->data, x->len, md5h[i]);
			if (x->bad_md5)
				content_md5(x->data, x->len - 1, md5h[i]);
			x->sl = curl_slist_append(x->sl, md5h[i]);
		}
		curl_easy_setopt(x->c, CURLOPT_URL, urls[i]);
		curl_easy_setopt(x->c, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
		curl_easy_setopt(x->c, CURLOPT_USERPWD, "testadmin:testsecret");
		curl_easy_setopt(x->c, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(x->c, CURLOPT_WRITEDATA, &x->r.body);
		curl_easy_setopt(x->c, CURLOPT_HEADERFUNCTION, on_data);
		curl_easy_setopt(x->c, CURLOPT_HEADERDATA, &x->r.hdrs);
		curl_easy_setopt(x->c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(x->c, CURLOPT_READFUNCTION, upl_read);
		curl_easy_setopt(x->c, CURLOPT_READDATA, x);
		if (x->chunked_te)
			x->sl = curl_slist_append(x->sl, "Transfer-Encoding: chunked");
		else
			curl_easy_setopt(x->c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->len);
		curl_easy_setopt(x->c, CURLOPT_HTTPHEADER, x->sl);
		curl_multi_add_handle(m, x->c);
	}
	int running = 1;
	for (int rounds = 0; running && rounds < 100000; rounds++) {
		curl_multi_perform(m, &running);
		if (running)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	CHECK_EQ_INT(running, 0);
	for (int i = 0; i < N; i++) {
		struct upl *x = &u[i];
		x->r.status = -1;
		curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &x->r.status);
		wbuf_u8(&x->r.hdrs, 0);
		char path[64];
		snprintf(path, sizeof(path), "/cbkt/o%d", i);
		if (x->bad_md5) {
			CHECK_EQ_INT(x->r.status, 400);
			CHECK(body_has(&x->r, "BadDigest"));
			CHECK_EQ_INT(simple(&e, "HEAD", path, NULL, NULL, 0), 404);
		} else {
			CHECK_EQ_INT(x->r.status, 200);
			uint8_t d[S3_CKSUM_MAX_DIGEST];
			s3_cksum_buf(S3_CKSUM_MD5, x->data, x->len, d);
			char hex[33], want[40], got[64];
			s3_hex_encode(d, 16, hex);
			snprintf(want, sizeof(want), "\"%s\"", hex);
			if (!hdr(&x->r, "ETag", got, sizeof(got)) || strcmp(got, want) != 0) {
				fprintf(stderr, "  upload %d (%zu bytes): ETag %s, want %s\n", i, x->len,
					hdr(&x->r, "ETag", got, sizeof(got)) ? got : "none", want);
				CHECK(!"ETag is the MD5 of the body");
			}
			struct resp g;
			CHECK_EQ_INT(req(&e, "GET", path, NULL, NULL, 0, &g), 200);
			CHECK(g.body.len == x->len && (x->len == 0 || memcmp(g.body.p, x->data, x->len) == 0));
			resp_destroy(&g);
		}
		curl_multi_remove_handle(m, x->c);
		curl_easy_cleanup(x->c);
		curl_slist_free_all(x->sl);
		resp_destroy(&x->r);
	}
	curl_multi_cleanup(m);
	free(data);
	env_stop(&e);
}
