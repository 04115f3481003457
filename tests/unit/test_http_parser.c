#include "core/platform.h"
#include "http/parser.h"
#include "test.h"

/* Parses a whole head in one call. */
static int parse_all(struct http_parser *p, const char *s, struct http_head *h)
{
	http_parser_reset(p);
	return http_parse_head(p, s, strlen(s), h);
}

static int status_of(const char *s)
{
	struct http_parser p;
	struct http_head h;
	http_parser_init(&p);
	int rc = parse_all(&p, s, &h);
	int st = rc == HTTP_PARSE_ERROR ? p.status : rc == HTTP_PARSE_OK ? 200 : -1;
	http_parser_destroy(&p);
	return st;
}

static bool veq(struct http_view v, const char *s)
{
	return v.base && http_view_eq(v, s);
}

TEST(http_parse_roundtrip)
{
	const char *req = "GET /bucket/key%20name?list-type=2&prefix=a%2Fb HTTP/1.1\r\n"
			  "Host: example.com:9000\r\n"
			  "X-Amz-Date:20260101T000000Z\r\n"
			  "x-amz-content-sha256: \t UNSIGNED-PAYLOAD \t\r\n"
			  "Empty:\r\n"
			  "\r\n"
			  "BODY";
	struct http_parser p;
	struct http_head h;
	http_parser_init(&p);
	REQUIRE(parse_all(&p, req, &h) == HTTP_PARSE_OK);
	CHECK_EQ_INT(p.head_len, strlen(req) - 4);
	CHECK(h.m == HTTP_GET);
	CHECK(veq(h.method, "GET"));
	CHECK(veq(h.target, "/bucket/key%20name?list-type=2&prefix=a%2Fb"));
	CHECK(veq(h.path, "/bucket/key%20name"));
	CHECK(veq(h.query, "list-type=2&prefix=a%2Fb"));
	CHECK(h.has_query);
	CHECK_EQ_INT(h.minor, 1);
	CHECK_EQ_INT(h.nheaders, 4);
	CHECK(veq(h.host, "example.com:9000"));
	CHECK(veq(h.headers[1].name, "X-Amz-Date"));
	CHECK(veq(h.headers[1].value, "20260101T000000Z"));
	CHECK(veq(http_header_get(&h, "X-AMZ-CONTENT-SHA256"), "UNSIGNED-PAYLOAD"));
	CHECK(http_header_get(&h, "empty").len == 0 && http_header_get(&h, "empty").base);
	CHECK(http_header_get(&h, "missing").base == NULL);
	CHECK_EQ_INT(h.content_length, 0);
	CHECK(h.keep_alive);
	CHECK(!h.expect_continue);

	struct http_view v;
	CHECK(http_query_param(h.query, "prefix", &v) && veq(v, "a%2Fb"));
	CHECK(http_query_param(h.query, "list-type", &v) && veq(v, "2"));
	CHECK(!http_query_param(h.query, "list", &v));

	/* HTTP/1.0, keep-alive, PUT with a body, Expect. */
	REQUIRE(parse_all(&p, "PUT /b/k HTTP/1.0\r\nConnection: Keep-Alive\r\n"
			      "Content-Length: 12\r\n\r\n", &h) == HTTP_PARSE_OK);
	CHECK(h.m == HTTP_PUT && h.minor == 0 && h.keep_alive && h.content_length == 12);
	CHECK(!h.has_query && veq(h.path, "/b/k"));
	REQUIRE(parse_all(&p, "PUT /b/k?uploads HTTP/1.1\r\nHost: h\r\nexpect: 100-Continue\r\n"
			      "Transfer-Encoding: chunked\r\nConnection: foo, close\r\n\r\n", &h) ==
		HTTP_PARSE_OK);
	CHECK(h.chunked && h.content_length == -1 && h.expect_continue && !h.keep_alive);
	CHECK(http_query_param(h.query, "uploads", &v) && v.len == 0);
	/* HTTP/1.0 without keep-alive closes; an unknown 1.x answers as 1.1. */
	REQUIRE(parse_all(&p, "DELETE /x HTTP/1.0\r\n\r\n", &h) == HTTP_PARSE_OK);
	CHECK(!h.keep_alive && h.m == HTTP_DELETE);
	REQUIRE(parse_all(&p, "GET / HTTP/1.7\r\nHost: a\r\n\r\n", &h) == HTTP_PARSE_OK);
	CHECK_EQ_INT(h.minor, 1);
	/* Absolute-form: the authority is the host; a missing path is "/". */
	REQUIRE(parse_all(&p, "GET http://bucket.s3.local:9000?x=1 HTTP/1.1\r\nHost: other\r\n\r\n",
			  &h) == HTTP_PARSE_OK);
	CHECK(veq(h.host, "bucket.s3.local:9000") && veq(h.path, "/") && veq(h.query, "x=1"));
	REQUIRE(parse_all(&p, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &h) == HTTP_PARSE_OK);
	CHECK(veq(h.path, "*"));
	/* Unknown methods are tokens like any other; leading CRLFs skipped. */
	REQUIRE(parse_all(&p, "\r\n\r\nMKCOL /d HTTP/1.1\r\nHost: a\r\n\r\n", &h) == HTTP_PARSE_OK);
	CHECK(h.m == HTTP_OTHER && veq(h.method, "MKCOL"));
	/* Identical repeated Content-Length values are one value. */
	REQUIRE(parse_all(&p, "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n"
			      "content-length: 5\r\n\r\n", &h) == HTTP_PARSE_OK);
	CHECK_EQ_INT(h.content_length, 5);
	/* Raw bytes in the target are kept as sent. */
	REQUIRE(parse_all(&p, "GET /a\xc3\xa9+b%2b HTTP/1.1\r\nHost: a\r\n\r\n", &h) == HTTP_PARSE_OK);
	CHECK(veq(h.path, "/a\xc3\xa9+b%2b"));
	http_parser_destroy(&p);
}

TEST(http_parse_errors)
{
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\nHost: a\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\r\n\n"), 400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("GET / http/1.1\r\nHost: a\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.x\r\nHost: a\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
	CHECK_EQ_INT(status_of("GET / HTTP/0.9\r\n\r\n"), 505);
	CHECK_EQ_INT(status_of("GET foo HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\n\r\n"), 400);                 /* no Host */
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n"), 400);
	/* Framing. */
	CHECK_EQ_INT(status_of("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
			       "Content-Length: 6\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
			       "Transfer-Encoding: chunked\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
	CHECK_EQ_INT(status_of("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
			       "Transfer-Encoding: chunked\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
	CHECK_EQ_INT(status_of("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"), 200);
	/* Too many blank lines before the request line. */
	CHECK_EQ_INT(status_of("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

/* A buffer of `n` bytes filled with c, NUL-terminated. */
static char *filled(size_t n, char c)
{
	char *s = xmalloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

TEST(http_parse_limits)
{
	struct http_parser p;
	struct http_head h;
	http_parser_init(&p);
	/* A request line of exactly 16 KiB passes; one byte more is 414,
	 * whether or not its end has arrived. */
	size_t tl = HTTP_MAX_REQUEST_LINE - strlen("GET  HTTP/1.1");
	char *t = filled(tl, 'a');
	t[0] = '/';
	char *req = xmalloc(tl + 256);
	sprintf(req, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", t);
	CHECK_EQ_INT(parse_all(&p, req, &h), HTTP_PARSE_OK);
	sprintf(req, "GET %sb HTTP/1.1\r\nHost: a\r\n\r\n", t);
	CHECK_EQ_INT(parse_all(&p, req, &h), HTTP_PARSE_ERROR);
	CHECK_EQ_INT(p.status, 414);
	http_parser_reset(&p);
	CHECK_EQ_INT(http_parse_head(&p, req, HTTP_MAX_REQUEST_LINE + 1, &h), HTTP_PARSE_AGAIN);
	CHECK_EQ_INT(http_parse_head(&p, req, HTTP_MAX_REQUEST_LINE + 3, &h), HTTP_PARSE_ERROR);
	CHECK_EQ_INT(p.status, 414);
	free(req);
	free(t);
	/* An unterminated request line is refused as soon as it is too long. */
	char *endless = filled(HTTP_MAX_REQUEST_LINE + 100, 'a');
	memcpy(endless, "GET /", 5);
	CHECK_EQ_INT(parse_all(&p, endless, &h), HTTP_PARSE_ERROR);
	CHECK_EQ_INT(p.status, 414);
	free(endless);

	/* 200 headers pass, 201 is 431. */
	struct { char *p; size_t len; } b = { xmalloc(64 * 1024), 0 };
	b.len = (size_t)sprintf(b.p, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 1; i < HTTP_MAX_HEADERS; i++)
		b.len += (size_t)sprintf(b.p + b.len, "X-H%d: %d\r\n", i, i);
	strcpy(b.p + b.len, "\r\n");
	CHECK_EQ_INT(parse_all(&p, b.p, &h), HTTP_PARSE_OK);
	CHECK_EQ_INT(h.nheaders, HTTP_MAX_HEADERS);
	b.len += (size_t)sprintf(b.p + b.len, "X-Last: 1\r\n\r\n");
	CHECK_EQ_INT(parse_all(&p, b.p, &h), HTTP_PARSE_ERROR);
	CHECK_EQ_INT(p.status, 431);
	free(b.p);

	/* A header block of exactly 64 KiB passes; one byte more is 431. */
	const char *pre = "GET / HTTP/1.1\r\n";
	const char *host = "Host: a\r\n";
	size_t vlen = HTTP_MAX_HEADER_BYTES - strlen(host) - strlen("X: \r\n") - 2;
	char *v = filled(vlen, 'v');
	char *big = xmalloc(HTTP_MAX_HEADER_BYTES + 256);
	sprintf(big, "%s%sX: %s\r\n\r\n", pre, host, v);
	CHECK_EQ_INT(parse_all(&p, big, &h), HTTP_PARSE_OK);
	CHECK_EQ_INT(p.head_len, strlen(pre) + HTTP_MAX_HEADER_BYTES);
	sprintf(big, "%s%sX: %sv\r\n\r\n", pre, host, v);
	CHECK_EQ_INT(parse_all(&p, big, &h), HTTP_PARSE_ERROR);
	CHECK_EQ_INT(p.status, 431);
	/* ...also when the block never ends. */
	sprintf(big, "%s%sX: %svvvvv", pre, host, v);
	CHECK_EQ_INT(parse_all(&p, big, &h), HTTP_PARSE_ERROR);
	CHECK_EQ_INT(p.status, 431);
	free(big);
	free(v);
	http_parser_destroy(&p);
}

static const char *g_valid_heads[] = {
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	("\r\nPUT /bucket/obj?partNumber=1&uploadId=x HTTP/1.1\r\nHost: s3.local:9000\r\n"
	 "Expect: 100-continue\r\nContent-Length: 4096\r\nx-amz-meta-a:  spaced value  \r\n\r\n"),
	"POST /b?delete HTTP/1.0\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
	"PUT /k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-Empty:\r\n\r\n",
	"HEAD http://h:1/p?q HTTP/1.1\r\nHost: x\r\n\r\n",
};

static bool same_view(struct http_view x, const char *xb, struct http_view y, const char *yb)
{
	if (!x.base || !y.base)
		return x.base == y.base && x.len == y.len;
	return x.len == y.len && x.base - xb == y.base - yb;
}

static void check_same(const struct http_head *a, const char *abase, const struct http_head *b,
		       const char *bbase)
{
#define SAMEV(f) CHECK(same_view(a->f, abase, b->f, bbase))
	SAMEV(method);
	SAMEV(target);
	SAMEV(query);
	CHECK(a->path.len == b->path.len && memcmp(a->path.base, b->path.base, a->path.len) == 0);
	CHECK_EQ_INT(a->nheaders, b->nheaders);
	for (int i = 0; i < a->nheaders && i < b->nheaders; i++) {
		SAMEV(headers[i].name);
		SAMEV(headers[i].value);
	}
#undef SAMEV
	CHECK_EQ_INT(a->content_length, b->content_length);
	CHECK_EQ_INT(a->keep_alive, b->keep_alive);
	CHECK_EQ_INT(a->expect_continue, b->expect_continue);
	CHECK_EQ_INT(a->minor, b->minor);
	CHECK_EQ_INT(a->m, b->m);
}

TEST(http_parse_truncation_and_bytewise)
{
	struct http_parser p, q;
	struct http_head h, hq;
	http_parser_init(&p);
	http_parser_init(&q);
	for (size_t k = 0; k < SILT_ARRAY_LEN(g_valid_heads); k++) {
		const char *s = g_valid_heads[k];
		size_t n = strlen(s);
		REQUIRE(parse_all(&p, s, &h) == HTTP_PARSE_OK);
		CHECK_EQ_INT(p.head_len, n);
		/* Every proper prefix is incomplete, never invalid. */
		for (size_t i = 0; i < n; i++) {
			http_parser_reset(&q);
			int rc = http_parse_head(&q, s, i, &hq);
			if (rc != HTTP_PARSE_AGAIN) {
				fprintf(stderr, "  head %zu prefix %zu: rc %d (%s)\n", k, i, rc,
					q.error ? q.error : "");
				CHECK(rc == HTTP_PARSE_AGAIN);
				break;
			}
		}
		/* One byte at a time, in a buffer that moves every call, gives
		 * the same head. */
		http_parser_reset(&q);
		char *buf = NULL;
		int rc = HTTP_PARSE_AGAIN;
		for (size_t i = 1; i <= n && rc == HTTP_PARSE_AGAIN; i++) {
			char *nb = xmalloc(i);
			memcpy(nb, s, i);
			free(buf);
			buf = nb;
			rc = http_parse_head(&q, buf, i, &hq);
		}
		CHECK_EQ_INT(rc, HTTP_PARSE_OK);
		CHECK_EQ_INT(q.head_len, n);
		if (rc == HTTP_PARSE_OK)
			check_same(&h, s, &hq, buf);
		free(buf);
		/* Bytes after the head are not the parser's. */
		char *more = xmalloc(n + 8);
		memcpy(more, s, n);
		memcpy(more + n, "GET / HT", 8);
		http_parser_reset(&q);
		CHECK_EQ_INT(http_parse_head(&q, more, n + 8, &hq), HTTP_PARSE_OK);
		CHECK_EQ_INT(q.head_len, n);
		free(more);
	}
	http_parser_destroy(&p);
	http_parser_destroy(&q);
}

TEST(http_parse_rebase)
{
	struct http_parser p;
	struct http_head h;
	http_parser_init(&p);
	const char *s = "GET /x?y=1 HTTP/1.1\r\nHost: a\r\nK: v\r\n\r\n";
	REQUIRE(parse_all(&p, s, &h) == HTTP_PARSE_OK);
	char *copy = xstrdup(s);
	http_head_rebase(&h, s, p.head_len, copy);
	CHECK(h.target.base == copy + 4);
	CHECK(h.headers[1].value.base >= copy && h.headers[1].value.base < copy + p.head_len);
	CHECK(veq(h.query, "y=1") && veq(h.headers[1].value, "v"));
	free(copy);
	http_parser_destroy(&p);
}

TEST(http_pct_decode)
{
	char out[64];
	CHECK_EQ_INT(http_pct_decode("/a%20b%2Fc+d", 12, out), 8);
	CHECK(strcmp(out, "/a b/c+d") == 0);
	CHECK_EQ_INT(http_pct_decode("%e2%82%AC", 9, out), 3);
	CHECK(strcmp(out, "\xe2\x82\xac") == 0);
	CHECK_EQ_INT(http_pct_decode("%", 1, out), -1);
	CHECK_EQ_INT(http_pct_decode("a%4", 3, out), -1);
	CHECK_EQ_INT(http_pct_decode("a%zz", 4, out), -1);
	CHECK_EQ_INT(http_pct_decode("a%00b", 5, out), -1);
	CHECK_EQ_INT(http_pct_decode("", 0, out), 0);
	CHECK(http_list_has((struct http_view){ "a, Close ,b", 11 }, "close"));
	CHECK(!http_list_has((struct http_view){ "closed", 6 }, "close"));
}

/* Decodes a whole body held in s[0..n) fed in pieces of `step` bytes
 * (the caller's buffer keeps unconsumed bytes). Returns the decoded data
 * length, or -status on error. *used = bytes of s that belonged to it. */
static int64_t decode_body(int64_t clen, const char *s, size_t n, size_t step, char *out,
			   size_t *used, int64_t max_total)
{
	struct http_body b;
	http_body_init(&b, clen, max_total);
	size_t have = 0, pos = 0, o = 0;
	for (;;) {
		have = SILT_MIN(n, have + step);
		size_t skip, avail;
		int rc;
		for (;;) {
			rc = http_body_next(&b, (const uint8_t *)s + pos, have - pos, &skip, &avail);
			pos += skip;
			if (rc != HTTP_BODY_DATA)
				break;
			/* Take at most 3 bytes at a time to exercise consume. */
			size_t k = SILT_MIN(avail, (size_t)3);
			memcpy(out + o, s + pos, k);
			o += k;
			pos += k;
			http_body_consume(&b, k);
		}
		if (rc == HTTP_PARSE_ERROR)
			return -b.status;
		if (rc == HTTP_PARSE_OK) {
			*used = pos;
			CHECK(http_body_done(&b));
			return (int64_t)o;
		}
		if (have == n)
			return -1; /* incomplete */
	}
}

TEST(http_body_chunked)
{
	const char *s = "4\r\nWiki\r\n5;name=val;x\r\npedia\r\nE  \r\n in\r\n\r\nchunks.\r\n"
			"000\r\nTrailer: x\r\nOther: y\r\n\r\nNEXT";
	size_t n = strlen(s);
	char out[64];
	for (size_t step = 1; step <= n; step++) {
		size_t used = 0;
		memset(out, 0, sizeof(out));
		int64_t r = decode_body(-1, s, n, step, out, &used, 0);
		CHECK_EQ_INT(r, 23);
		CHECK(memcmp(out, "Wikipedia in\r\n\r\nchunks.", 23) == 0);
		CHECK_EQ_INT(used, n - 4);
	}
	/* Every truncation is incomplete. */
	for (size_t i = 0; i < n - 4; i++) {
		size_t used;
		CHECK_EQ_INT(decode_body(-1, s, i, 7, out, &used, 0), -1);
	}
	size_t used;
	/* Errors. */
	CHECK_EQ_INT(decode_body(-1, "x\r\n", 3, 3, out, &used, 0), -400);
	CHECK_EQ_INT(decode_body(-1, "4x\r\nabcd\r\n0\r\n\r\n", 15, 15, out, &used, 0), -400);
	CHECK_EQ_INT(decode_body(-1, "4\r\nabcdX\r\n0\r\n\r\n", 15, 15, out, &used, 0), -400);
	CHECK_EQ_INT(decode_body(-1, "4\r\nabcd\rX0\r\n\r\n", 14, 14, out, &used, 0), -400);
	CHECK_EQ_INT(decode_body(-1, "4\nabcd\r\n0\r\n\r\n", 14, 14, out, &used, 0), -400);
	CHECK_EQ_INT(decode_body(-1, "0\r\n\n", 4, 4, out, &used, 0), -400);
	CHECK_EQ_INT(decode_body(-1, "0\r\nT: x\n\r\n", 10, 10, out, &used, 0), -400);
	CHECK_EQ_INT(decode_body(-1, "4;a\x01\r\nabcd\r\n0\r\n\r\n", 17, 17, out, &used, 0), -400);
	/* 17 hex digits (even all zero) exceed the digit cap; a size over 2^60
	 * is refused before it can overflow. */
	CHECK_EQ_INT(decode_body(-1, "00000000000000001\r\n", 19, 19, out, &used, 0), -400);
	CHECK_EQ_INT(decode_body(-1, "ffffffffffffffff\r\n", 18, 18, out, &used, 0), -400);
	/* A size line over the cap (extensions included). */
	char *longext = filled(HTTP_MAX_CHUNK_LINE + 16, 'e');
	longext[0] = '1';
	longext[1] = ';';
	CHECK_EQ_INT(decode_body(-1, longext, strlen(longext), 1000, out, &used, 0), -400);
	free(longext);
	/* The body size cap: 413 for chunked and for Content-Length. */
	CHECK_EQ_INT(decode_body(-1, "10\r\n", 4, 4, out, &used, 8), -413);
	CHECK_EQ_INT(decode_body(100, "x", 1, 1, out, &used, 8), -413);
	/* Trailer section cap. */
	size_t tn = HTTP_MAX_TRAILER_BYTES + 64;
	char *tr = filled(tn, 'a');
	memcpy(tr, "0\r\nX: ", 6);
	CHECK_EQ_INT(decode_body(-1, tr, tn, 4096, out, &used, 0), -400);
	free(tr);
}

TEST(http_body_content_length)
{
	char out[64];
	size_t used;
	CHECK_EQ_INT(decode_body(10, "0123456789GET", 13, 4, out, &used, 0), 10);
	CHECK_EQ_INT(used, 10);
	CHECK(memcmp(out, "0123456789", 10) == 0);
	CHECK_EQ_INT(decode_body(10, "01234", 5, 5, out, &used, 0), -1);
	struct http_body b;
	http_body_init(&b, 0, 0);
	CHECK(http_body_done(&b));
	CHECK_EQ_INT(http_body_remaining(&b), 0);
	http_body_init(&b, 7, 0);
	CHECK_EQ_INT(http_body_remaining(&b), 7);
	http_body_init(&b, -1, 0);
	CHECK_EQ_INT(http_body_remaining(&b), -1);
}
