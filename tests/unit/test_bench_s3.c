/* test_bench_s3.c - `silt bench s3`: argument parsing, endpoint splitting,
 * response heads and ListObjectsV2 pages; no servers. */
#include "core/platform.h"
#include "bench/bench.h"
#include "s3/auth.h"
#include "test.h"

static int parse(struct bench_opts *o, char *err, size_t errlen, const char *const *args)
{
	char *argv[64];
	int argc = 0;
	for (; args[argc] && argc < 63; argc++)
		argv[argc] = (char *)(uintptr_t)args[argc];
	argv[argc] = NULL;
	return bench_parse_args(argc, argv, o, err, errlen);
}

#define PARSE(o, err, ...) parse((o), (err), sizeof(err), (const char *const[]){ __VA_ARGS__, NULL })

TEST(bench_s3_parse_defaults)
{
	struct bench_opts o;
	char err[256];
	REQUIRE(PARSE(&o, err, "bench", "s3") == 0);
	CHECK(o.target == BENCH_S3);
	CHECK(o.s3_mode == BENCH_S3_BOTH);
	CHECK(!o.s3_mode_given);
	CHECK_EQ_INT(o.objects, 1000);
	CHECK_EQ_INT(o.size, 4096);
	CHECK_EQ_INT(o.concurrency, 16);
	CHECK_EQ_INT(o.duration_s, 120);
	CHECK_EQ_INT(o.max_keys, 1000);
	CHECK_EQ_INT(o.populate, 0);
	CHECK(strcmp(o.bucket, "silt-bench") == 0);
	CHECK(strcmp(o.prefix, "bench/") == 0);
	CHECK(strcmp(o.access_key, "siltadmin") == 0);
	CHECK(strcmp(o.region, "us-east-1") == 0);
	CHECK(strcmp(o.s3_host, "127.0.0.1") == 0);
	CHECK(strcmp(o.s3_port, "9000") == 0);
	CHECK(strcmp(o.s3_authority, "127.0.0.1:9000") == 0);
	CHECK(!o.unsigned_req && !o.create_bucket && !o.verify);
}

TEST(bench_s3_parse_full)
{
	struct bench_opts o;
	char err[256];
	int rc = PARSE(&o, err, "bench", "s3", "--endpoint", "http://localhost:8080/", "--bucket=b1", "--objects",
		       "20000", "--size", "64m", "--concurrency", "32", "--mode", "put", "--access-key", "AK",
		       "--secret-key", "SECRET", "--region", "eu-west-1", "--prefix", "", "--duration-s", "30",
		       "--verify", "--create-bucket");
	REQUIRE(rc == 0);
	CHECK(o.s3_mode == BENCH_S3_PUT);
	CHECK(o.s3_mode_given);
	CHECK(strcmp(o.bucket, "b1") == 0);
	CHECK_EQ_INT(o.objects, 20000);
	CHECK_EQ_INT(o.size, 64 << 20);
	CHECK_EQ_INT(o.concurrency, 32);
	CHECK_EQ_INT(o.duration_s, 30);
	CHECK(strcmp(o.prefix, "") == 0);
	CHECK(strcmp(o.access_key, "AK") == 0);
	CHECK(strcmp(o.secret_key, "SECRET") == 0);
	CHECK(strcmp(o.region, "eu-west-1") == 0);
	CHECK(o.verify && o.create_bucket);
	CHECK(strcmp(o.s3_host, "localhost") == 0);
	CHECK(strcmp(o.s3_port, "8080") == 0);
	CHECK(strcmp(o.s3_authority, "localhost:8080") == 0);

	REQUIRE(PARSE(&o, err, "bench", "s3", "--unsigned", "--mode", "get", "--size", "0") == 0);
	CHECK(o.unsigned_req);
	CHECK(o.s3_mode == BENCH_S3_GET);
	CHECK_EQ_INT(o.size, 0);
}

TEST(bench_s3_parse_list_and_populate)
{
	struct bench_opts o;
	char err[256];
	/* A list run lists everything unless told how many keys. */
	REQUIRE(PARSE(&o, err, "bench", "s3", "--mode", "list") == 0);
	CHECK(o.s3_mode == BENCH_S3_LIST);
	CHECK_EQ_INT(o.objects, BENCH_S3_MAX_OBJECTS);
	REQUIRE(PARSE(&o, err, "bench", "s3", "--mode", "list", "--objects", "5000", "--max-keys", "100") == 0);
	CHECK_EQ_INT(o.objects, 5000);
	CHECK_EQ_INT(o.max_keys, 100);
	/* Populating alone, or before a list, with small objects by default. */
	REQUIRE(PARSE(&o, err, "bench", "s3", "--populate", "1000000", "--concurrency", "64") == 0);
	CHECK_EQ_INT(o.populate, 1000000);
	CHECK_EQ_INT(o.size, 16);
	CHECK(!o.s3_mode_given);
	REQUIRE(PARSE(&o, err, "bench", "s3", "--populate", "100", "--mode", "list", "--size", "1k") == 0);
	CHECK_EQ_INT(o.size, 1024);
	CHECK_EQ_INT(o.concurrency, 64);
	REQUIRE(PARSE(&o, err, "bench", "s3", "--populate", "100", "--concurrency", "8") == 0);
	CHECK_EQ_INT(o.concurrency, 8);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--populate", "100", "--mode", "put"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--populate", "100", "--mode", "both"), BENCH_EXIT_USAGE);
}

TEST(bench_s3_parse_rejects)
{
	struct bench_opts o;
	char err[256];
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--bogus"), BENCH_EXIT_USAGE);
	CHECK(strstr(err, "--bogus") != NULL);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "stray"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--mode", "produce"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--mode"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--objects", "0"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--objects", "10000001"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--size", "2g"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--size", "-1"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--concurrency", "0"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--concurrency", "1025"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--max-keys", "1001"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--duration-s", "0"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--bucket", ""), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--bucket", "a/b"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--unsigned=yes"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--unsigned", "--create-bucket"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--unsigned", "--mode", "list"), BENCH_EXIT_USAGE);
	/* Options of other targets are refused, and s3's are refused elsewhere. */
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--messages", "10"), BENCH_EXIT_USAGE);
	CHECK(strstr(err, "does not apply") != NULL);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--topic", "t"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--objects", "10"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "redis", "--endpoint", "http://x"), BENCH_EXIT_USAGE);
	/* The kafka --size limit still holds for kafka; s3 has its own. */
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--size", "64m"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--mode", "put"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "s3", "--help"), BENCH_PARSE_HELP);
}

TEST(bench_s3_endpoint)
{
	struct bench_opts o;
	char err[256];
	bench_opts_init(&o);
	REQUIRE(bench_s3_parse_endpoint("http://example.com", &o, err, sizeof(err)) == 0);
	CHECK(strcmp(o.s3_host, "example.com") == 0);
	CHECK(strcmp(o.s3_port, "80") == 0);
	CHECK(strcmp(o.s3_authority, "example.com") == 0);
	REQUIRE(bench_s3_parse_endpoint("http://[::1]:9000", &o, err, sizeof(err)) == 0);
	CHECK(strcmp(o.s3_host, "::1") == 0);
	CHECK(strcmp(o.s3_port, "9000") == 0);
	CHECK(strcmp(o.s3_authority, "[::1]:9000") == 0);
	const char *bad[] = {
		"https://127.0.0.1:9000", "127.0.0.1:9000", "http://", "http://:9000", "http://h:", "http://h:0",
		"http://h:65536", "http://h:123456", "http://h:9x", "http://h/path", "http://h?x=1",
		"http://[::1", "http://[]:80", "http://[::1]x", "http://u@h", "ftp://h",
	};
	for (size_t i = 0; i < SILT_ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		if (bench_s3_parse_endpoint(bad[i], &o, err, sizeof(err)) != -SILT_EINVAL) {
			char m[128];
			snprintf(m, sizeof(m), "endpoint '%s' accepted", bad[i]);
			test_fail(__FILE__, __LINE__, m);
		}
		CHECK(err[0] != '\0');
	}
}

#define RESP(s) bench_s3_parse_resp((s), strlen(s), &r)

TEST(bench_s3_response_head)
{
	struct bench_s3_resp r;
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 4096\r\nETag: \"x\"\r\n\r\nBODY";
	REQUIRE(RESP(ok) == 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(r.minor, 1);
	CHECK_EQ_INT(r.content_length, 4096);
	CHECK(!r.chunked && !r.close);
	CHECK_EQ_INT(r.head_len, strlen(ok) - 4);
	/* Every prefix is incomplete, never invalid. */
	for (size_t n = 0; n < strlen(ok) - 4; n++)
		CHECK_EQ_INT(bench_s3_parse_resp(ok, n, &r), -SILT_EAGAIN);

	REQUIRE(RESP("HTTP/1.1 201 Created\r\ntransfer-encoding:  chunked \r\nContent-Length: 5\r\n\r\n") == 0);
	CHECK(r.chunked);
	CHECK_EQ_INT(r.content_length, -1);
	REQUIRE(RESP("HTTP/1.1 404 Not Found\r\nConnection: keep-alive, close\r\n\r\n") == 0);
	CHECK_EQ_INT(r.status, 404);
	CHECK(r.close);
	CHECK_EQ_INT(r.content_length, -1);
	REQUIRE(RESP("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n") == 0);
	CHECK(r.close);
	REQUIRE(RESP("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n") == 0);
	CHECK(!r.close);
	REQUIRE(RESP("HTTP/1.1 204\r\n\r\n") == 0);
	CHECK_EQ_INT(r.status, 204);
	REQUIRE(RESP("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n") == 0);
	CHECK_EQ_INT(r.status, 100);
	CHECK_EQ_INT(r.head_len, 25);
	REQUIRE(RESP("HTTP/1.1 200 OK\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n") == 0);
	CHECK_EQ_INT(r.content_length, 7);

	const char *bad[] = {
		"HTTP/2.0 200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 600 X\r\n\r\n",
		"HTTP/1.1 200X\r\n\r\n",
		"http/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
		"HTTP/1.1 200 OK\r\n: v\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	};
	for (size_t i = 0; i < SILT_ARRAY_LEN(bad); i++) {
		if (RESP(bad[i]) != -SILT_EINVAL) {
			char m[160];
			snprintf(m, sizeof(m), "response head %zu accepted", i);
			test_fail(__FILE__, __LINE__, m);
		}
	}
	/* A head that never ends is refused at 64 KiB. */
	size_t big = 70 * 1024;
	char *b = xmalloc(big);
	memcpy(b, "HTTP/1.1 200 OK\r\nX: ", 20);
	memset(b + 20, 'a', big - 20);
	CHECK_EQ_INT(bench_s3_parse_resp(b, big, &r), -SILT_ETOOBIG);
	CHECK_EQ_INT(bench_s3_parse_resp(b, 1000, &r), -SILT_EAGAIN);
	free(b);
}

TEST(bench_s3_list_page)
{
	struct bench_s3_page p;
	const char *page =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
		"<Prefix>bench/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
		"<Contents><Key>bench/o00000000</Key><Size>16</Size></Contents>"
		"<Contents><Key>bench/o00000001</Key><Size>16</Size></Contents>"
		"<NextContinuationToken>a&amp;b&lt;c&gt;&#x2B;&#61;&quot;&apos;</NextContinuationToken>"
		"</ListBucketResult>";
	REQUIRE(bench_s3_parse_page(page, strlen(page), &p) == 0);
	CHECK_EQ_INT(p.key_count, 2);
	CHECK(p.truncated);
	REQUIRE(p.next_token != NULL);
	CHECK(strcmp(p.next_token, "a&b<c>+=\"'") == 0);
	free(p.next_token);

	/* The last page; KeyCount missing: the keys are counted. */
	const char *last = "<ListBucketResult><IsTruncated>false</IsTruncated>"
			   "<Contents><Key>k1</Key></Contents><Contents><Key>k2</Key></Contents>"
			   "<Contents><Key>k3</Key></Contents></ListBucketResult>";
	REQUIRE(bench_s3_parse_page(last, strlen(last), &p) == 0);
	CHECK_EQ_INT(p.key_count, 3);
	CHECK(!p.truncated);
	CHECK(p.next_token == NULL);

	/* Truncated without a token cannot go on; not a listing at all. */
	const char *notoken = "<ListBucketResult><KeyCount>1</KeyCount><IsTruncated>true</IsTruncated>"
			      "</ListBucketResult>";
	CHECK_EQ_INT(bench_s3_parse_page(notoken, strlen(notoken), &p), -SILT_EINVAL);
	const char *err = "<Error><Code>NoSuchBucket</Code></Error>";
	CHECK_EQ_INT(bench_s3_parse_page(err, strlen(err), &p), -SILT_EINVAL);
	const char *badent = "<ListBucketResult><IsTruncated>true</IsTruncated>"
			     "<NextContinuationToken>a&bogus;</NextContinuationToken></ListBucketResult>";
	CHECK_EQ_INT(bench_s3_parse_page(badent, strlen(badent), &p), -SILT_EINVAL);
	const char *nul = "<ListBucketResult><IsTruncated>true</IsTruncated>"
			  "<NextContinuationToken>a&#0;</NextContinuationToken></ListBucketResult>";
	CHECK_EQ_INT(bench_s3_parse_page(nul, strlen(nul), &p), -SILT_EINVAL);
}

/* The cached-key signer must produce exactly what s3_auth_sign does. */
static void check_same_signature(const struct bench_opts *o, struct bench_s3_signer *s, const char *method,
				 const char *path, const char *query, const char *date)
{
	struct s3_hdr hdrs[3] = {
		{ "host", 4, o->s3_authority, strlen(o->s3_authority) },
		{ "x-amz-content-sha256", 20, "UNSIGNED-PAYLOAD", 16 },
		{ "x-amz-date", 10, date, 16 },
	};
	struct s3_sign_req sr = {
		.method = method,
		.path = path,
		.query = query,
		.hdrs = hdrs,
		.nhdrs = 3,
		.access_key = o->access_key,
		.secret = o->secret_key,
		.region = o->region,
		.amz_date = date,
		.payload_hash = "UNSIGNED-PAYLOAD",
	};
	struct wbuf want, got;
	wbuf_init(&want, 256, 0);
	wbuf_init(&got, 256, 0);
	REQUIRE(s3_auth_sign(&sr, &want, NULL) == 0);
	REQUIRE(bench_s3_authorization(o, s, method, path, query, date, &got) == 0);
	CHECK_EQ_INT(got.len, want.len);
	CHECK(got.len == want.len && memcmp(got.p, want.p, got.len) == 0);
	wbuf_destroy(&want);
	wbuf_destroy(&got);
}

TEST(bench_s3_signer_matches_s3_auth_sign)
{
	struct bench_opts o;
	char err[256];
	REQUIRE(PARSE(&o, err, "bench", "s3", "--endpoint", "http://127.0.0.1:9000", "--access-key", "AKIDEXAMPLE",
		      "--secret-key", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "--region", "eu-central-1") == 0);
	struct bench_s3_signer s = { 0 };
	check_same_signature(&o, &s, "PUT", "/silt-bench/bench/o00000001", NULL, "20240101T000000Z");
	check_same_signature(&o, &s, "GET", "/silt-bench/bench/o00000002", NULL, "20240101T235959Z");
	check_same_signature(&o, &s, "GET", "/silt-bench",
			     "continuation-token=a%2Bb%3D&list-type=2&max-keys=1000&prefix=bench%2F",
			     "20240101T120000Z");
	/* A new day re-derives the key. */
	check_same_signature(&o, &s, "GET", "/silt-bench/k%20x", NULL, "20240102T000001Z");
	CHECK(memcmp(s.date8, "20240102", 8) == 0);
	struct wbuf w;
	wbuf_init(&w, 64, 0);
	CHECK_EQ_INT(bench_s3_authorization(&o, &s, "GET", "/", NULL, "2024", &w), -SILT_EINVAL);
	wbuf_destroy(&w);
	/* Usable again after destroy. */
	bench_s3_signer_destroy(&s);
	check_same_signature(&o, &s, "PUT", "/b/k", NULL, "20240102T000002Z");
	bench_s3_signer_destroy(&s);
}
