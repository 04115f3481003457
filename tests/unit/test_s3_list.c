/* test_s3_list.c - listings and multipart uploads, end to end: a real S3
 * service (s3svc_start on an ephemeral port, data in a temp dir) driven by
 * SigV4-signed HTTP/1.1 requests from a minimal blocking client (one
 * connection per request, "Connection: close", read to EOF). Objects are
 * made with multipart uploads, so these tests do not depend on PutObject. */
#include "core/platform.h"
#include "test.h"

#include "core/util.h"
#include "s3/service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define AK "testadmin"
#define SK "testadmin-secret"

struct resp {
	int status;
	char *head; /* heap, NUL-terminated */
	char *body; /* heap, NUL-terminated */
	size_t body_len;
};

static void resp_free(struct resp *r)
{
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static int g_port;

/* Sends one signed request; path and query as they go on the wire
 * (already percent-encoded). */
static bool req_x(const char *method, const char *path, const char *query, const char *copy_src,
		  const char *copy_range, const void *body, size_t blen, struct resp *out)
{
	memset(out, 0, sizeof(*out));
	char host[32], date[17], ph[65];
	snprintf(host, sizeof(host), "127.0.0.1:%d", g_port);
	s3_auth_format_time(time(NULL), date);
	uint8_t dig[S3_CKSUM_MAX_DIGEST];
	s3_cksum_buf(S3_CKSUM_SHA256, body ? body : "", blen, dig);
	s3_hex_encode(dig, 32, ph);
	struct s3_hdr hs[5] = {
		{ "host", 4, host, strlen(host) },
		{ "x-amz-date", 10, date, strlen(date) },
		{ "x-amz-content-sha256", 20, ph, 64 },
	};
	size_t nh = 3;
	if (copy_src)
		hs[nh++] = (struct s3_hdr){ "x-amz-copy-source", 17, copy_src, strlen(copy_src) };
	if (copy_range)
		hs[nh++] = (struct s3_hdr){ "x-amz-copy-source-range", 23, copy_range, strlen(copy_range) };
	struct s3_sign_req sr = {
		.method = method, .path = path, .query = query, .hdrs = hs, .nhdrs = nh,
		.access_key = AK, .secret = SK, .region = "us-east-1", .amz_date = date, .payload_hash = ph,
	};
	struct wbuf auth, w;
	wbuf_init(&auth, 0, 0);
	if (s3_auth_sign(&sr, &auth, NULL) != 0) {
		wbuf_destroy(&auth);
		return false;
	}
	wbuf_init(&w, 1024, 0);
	char line[8192];
	int n = snprintf(line, sizeof(line),
			 "%s %s%s%s HTTP/1.1\r\nHost: %s\r\nx-amz-date: %s\r\nx-amz-content-sha256: %s\r\n"
			 "Authorization: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			 method, path, query ? "?" : "", query ? query : "", host, date, ph, (char *)auth.p, blen);
	wbuf_put(&w, line, (size_t)n - 2);
	for (size_t i = 3; i < nh; i++) {
		n = snprintf(line, sizeof(line), "%s: %s\r\n", hs[i].name, hs[i].value);
		wbuf_put(&w, line, (size_t)n);
	}
	wbuf_put(&w, "\r\n", 2);
	if (blen)
		wbuf_put(&w, body, blen);
	wbuf_destroy(&auth);

	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)g_port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	struct timeval tv = { 10, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	for (size_t off = 0; ok && off < w.len;) {
		ssize_t k = send(fd, w.p + off, w.len - off, MSG_NOSIGNAL);
		if (k <= 0)
			ok = false;
		else
			off += (size_t)k;
	}
	wbuf_destroy(&w);
	struct wbuf in;
	wbuf_init(&in, 4096, 0);
	while (ok) {
		char buf[16384];
		ssize_t k = recv(fd, buf, sizeof(buf), 0);
		if (k < 0)
			ok = false;
		if (k <= 0)
			break;
		wbuf_put(&in, buf, (size_t)k);
	}
	close(fd);
	wbuf_u8(&in, 0);
	const char *s = (const char *)in.p;
	const char *eoh = ok ? strstr(s, "\r\n\r\n") : NULL;
	if (!eoh || sscanf(s, "HTTP/1.1 %d", &out->status) != 1) {
		wbuf_destroy(&in);
		return false;
	}
	out->head = strndup(s, (size_t)(eoh - s));
	out->body_len = in.len - 1 - (size_t)(eoh + 4 - s);
	out->body = strndup(eoh + 4, out->body_len);
	wbuf_destroy(&in);
	return true;
}

static bool req(const char *method, const char *path, const char *query, const void *body, size_t blen,
		struct resp *out)
{
	return req_x(method, path, query, NULL, NULL, body, blen, out);
}

static bool req_hdrs(const char *method, const char *path, const char *query, const char *copy_src,
		     const char *copy_range, struct resp *out)
{
	return req_x(method, path, query, copy_src, copy_range, NULL, 0, out);
}

/* The text of the first <tag>...</tag> after `from` in s, copied into out. */
static const char *xml_get(const char *s, const char *tag, char *out, size_t cap)
{
	char open[64], close_[64];
	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close_, sizeof(close_), "</%s>", tag);
	const char *a = s ? strstr(s, open) : NULL;
	const char *b = a ? strstr(a, close_) : NULL;
	if (!a || !b) {
		if (cap)
			out[0] = '\0';
		return NULL;
	}
	a += strlen(open);
	size_t n = SILT_MIN((size_t)(b - a), cap - 1);
	memcpy(out, a, n);
	out[n] = '\0';
	return b;
}

static int count(const char *s, const char *needle)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static bool has_hdr(const struct resp *r, const char *line)
{
	return r->head && strcasestr(r->head, line) != NULL;
}

/* A one-part object via create / part / complete; key as it goes in the
 * path (encoded). */
static bool mkobj(const char *bucket, const char *key, const char *data)
{
	char path[512], q[128], uid[64], etag[64], doc[512];
	struct resp r;
	snprintf(path, sizeof(path), "/%s/%s", bucket, key);
	if (!req("POST", path, "uploads=", NULL, 0, &r) || r.status != 200)
		goto fail;
	xml_get(r.body, "UploadId", uid, sizeof(uid));
	resp_free(&r);
	snprintf(q, sizeof(q), "partNumber=1&uploadId=%s", uid);
	if (!req("PUT", path, q, data, strlen(data), &r) || r.status != 200)
		goto fail;
	resp_free(&r);
	snprintf(q, sizeof(q), "uploadId=%s", uid);
	char md5hex[33];
	uint8_t dig[S3_CKSUM_MAX_DIGEST];
	s3_cksum_buf(S3_CKSUM_MD5, data, strlen(data), dig);
	s3_hex_encode(dig, 16, md5hex);
	snprintf(etag, sizeof(etag), "\"%s\"", md5hex);
	snprintf(doc, sizeof(doc),
		 "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part>"
		 "</CompleteMultipartUpload>",
		 etag);
	if (!req("POST", path, q, doc, strlen(doc), &r) || r.status != 200)
		goto fail;
	resp_free(&r);
	return true;
fail:
	fprintf(stderr, "mkobj %s: %d %s\n", key, r.status, r.body ? r.body : "");
	resp_free(&r);
	return false;
}

static struct s3svc *start(void)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/s3", test_tmpdir());
	struct s3svc_conf c = {
		.host = "127.0.0.1", .port = 0, .nthreads = 1, .data_dir = dir,
		.root_user = AK, .root_password = SK, .mpu_expire_ms = 1,
	};
	struct s3svc *s = NULL;
	if (s3svc_start(&c, &s) != 0)
		return NULL;
	g_port = http_server_port(s->http);
	return s;
}

TEST(s3_list_objects_and_multipart)
{
	struct s3svc *s = start();
	REQUIRE(s != NULL);
	struct resp r;
	REQUIRE(req("PUT", "/lbk", NULL, NULL, 0, &r));
	if (r.status != 200)
		fprintf(stderr, "%d %s\n", r.status, r.body);
	REQUIRE(r.status == 200);
	resp_free(&r);
	static const char *const keys[] = { "a%20b", "a%2Bb", "d/1", "d/2", "d/e/3", "z" };
	for (size_t i = 0; i < SILT_ARRAY_LEN(keys); i++)
		REQUIRE(mkobj("lbk", keys[i], "hello"));

	/* v2, everything: 6 keys, Owner only with fetch-owner. */
	char v[256];
	REQUIRE(req("GET", "/lbk", "list-type=2", NULL, 0, &r) && r.status == 200);
	CHECK(strcmp(xml_get(r.body, "KeyCount", v, sizeof(v)) ? v : "", "6") == 0);
	CHECK(strstr(r.body, "<IsTruncated>false</IsTruncated>") != NULL);
	CHECK(strstr(r.body, "<Key>a b</Key>") && strstr(r.body, "<Key>a+b</Key>"));
	CHECK(strstr(r.body, "<Owner>") == NULL);
	CHECK(strstr(r.body, "<ETag>&quot;62109206880d38a4010a98e11243924a-1&quot;</ETag>") != NULL);
	CHECK(strstr(r.body, "<StorageClass>STANDARD</StorageClass>") != NULL);
	resp_free(&r);

	/* v2 pages of 2 with a delimiter: a b, a+b | d/, z. */
	REQUIRE(req("GET", "/lbk", "delimiter=%2F&list-type=2&max-keys=2", NULL, 0, &r) && r.status == 200);
	CHECK(strstr(r.body, "<IsTruncated>true</IsTruncated>") != NULL);
	char tok[256], q[1024];
	REQUIRE(xml_get(r.body, "NextContinuationToken", tok, sizeof(tok)));
	resp_free(&r);
	char etok[768];
	{
		struct wbuf t;
		wbuf_init(&t, 0, 0);
		s3_url_encode_buf(&t, tok, strlen(tok), true);
		snprintf(etok, sizeof(etok), "%.*s", (int)t.len, (char *)t.p);
		wbuf_destroy(&t);
	}
	snprintf(q, sizeof(q), "continuation-token=%s&delimiter=%%2F&fetch-owner=true&list-type=2&max-keys=2", etok);
	REQUIRE(req("GET", "/lbk", q, NULL, 0, &r) && r.status == 200);
	CHECK(strstr(r.body, "<CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes>") != NULL);
	CHECK(strstr(r.body, "<Key>z</Key>") != NULL);
	CHECK(strstr(r.body, "<IsTruncated>false</IsTruncated>") != NULL);
	CHECK(strstr(r.body, "<Owner><ID>testadmin</ID>") != NULL);
	CHECK(xml_get(r.body, "ContinuationToken", v, sizeof(v)) && strcmp(v, tok) == 0);
	resp_free(&r);

	/* encoding-type=url encodes keys, prefixes and the delimiter. */
	REQUIRE(req("GET", "/lbk", "encoding-type=url&list-type=2&prefix=a", NULL, 0, &r) && r.status == 200);
	CHECK(strstr(r.body, "<Key>a%20b</Key>") && strstr(r.body, "<Key>a%2Bb</Key>"));
	CHECK(strstr(r.body, "<EncodingType>url</EncodingType>") != NULL);
	resp_free(&r);

	/* v1: NextMarker only with a delimiter. */
	REQUIRE(req("GET", "/lbk", "max-keys=1", NULL, 0, &r) && r.status == 200);
	CHECK(strstr(r.body, "<IsTruncated>true</IsTruncated>") && !strstr(r.body, "<NextMarker>"));
	CHECK(strstr(r.body, "<Owner>") != NULL);
	resp_free(&r);
	REQUIRE(req("GET", "/lbk", "delimiter=%2F&marker=a%2Bb&max-keys=1", NULL, 0, &r) && r.status == 200);
	CHECK(xml_get(r.body, "NextMarker", v, sizeof(v)) && strcmp(v, "d/") == 0);
	resp_free(&r);
	REQUIRE(req("GET", "/lbk", "delimiter=%2F&marker=d%2F", NULL, 0, &r) && r.status == 200);
	CHECK(count(r.body, "<Key>") == 1 && strstr(r.body, "<Key>z</Key>"));
	resp_free(&r);

	/* Bad parameters. */
	static const char *const bad[] = { "list-type=2&max-keys=-1", "list-type=2&max-keys=x",
					   "list-type=2&encoding-type=gzip", "list-type=2&continuation-token=%21",
					   "list-type=3", "versions=&version-id-marker=1" };
	for (size_t i = 0; i < SILT_ARRAY_LEN(bad); i++) {
		REQUIRE(req("GET", "/lbk", bad[i], NULL, 0, &r));
		CHECK_EQ_INT(r.status, 400);
		CHECK(strstr(r.body, "<Code>InvalidArgument</Code>") != NULL);
		resp_free(&r);
	}
	REQUIRE(req("GET", "/lbk", "list-type=2&max-keys=0", NULL, 0, &r) && r.status == 200);
	CHECK(strstr(r.body, "<KeyCount>0</KeyCount>") && strstr(r.body, "<IsTruncated>false</IsTruncated>"));
	resp_free(&r);
	REQUIRE(req("GET", "/nob", "list-type=2", NULL, 0, &r) && r.status == 404);
	resp_free(&r);

	/* Versions of an unversioned bucket: null ids, latest. */
	REQUIRE(req("GET", "/lbk", "max-keys=2&versions=", NULL, 0, &r) && r.status == 200);
	CHECK(count(r.body, "<Version>") == 2 && count(r.body, "<VersionId>null</VersionId>") == 2);
	CHECK(xml_get(r.body, "NextKeyMarker", v, sizeof(v)) && strcmp(v, "a+b") == 0);
	resp_free(&r);

	/* Multipart errors. */
	REQUIRE(req("POST", "/lbk/m", "uploads=", NULL, 0, &r) && r.status == 200);
	char uid[64];
	REQUIRE(xml_get(r.body, "UploadId", uid, sizeof(uid)));
	resp_free(&r);
	snprintf(q, sizeof(q), "partNumber=0&uploadId=%s", uid);
	REQUIRE(req("PUT", "/lbk/m", q, "x", 1, &r));
	CHECK(r.status == 400 && strstr(r.body, "InvalidArgument"));
	resp_free(&r);
	REQUIRE(req("PUT", "/lbk/m", "partNumber=1&uploadId=00000000000000000000000000000000", "x", 1, &r));
	CHECK(r.status == 404 && strstr(r.body, "NoSuchUpload"));
	resp_free(&r);
	snprintf(q, sizeof(q), "partNumber=2&uploadId=%s", uid);
	REQUIRE(req("PUT", "/lbk/m", q, "part two", 8, &r) && r.status == 200);
	CHECK(has_hdr(&r, "ETag: \""));
	resp_free(&r);
	snprintf(q, sizeof(q), "uploadId=%s", uid);
	REQUIRE(req("POST", "/lbk/m", q, "<Complete", 9, &r));
	CHECK(r.status == 400 && strstr(r.body, "MalformedXML"));
	resp_free(&r);
	REQUIRE(req("GET", "/lbk/m", q, NULL, 0, &r) && r.status == 200);
	CHECK(strstr(r.body, "<PartNumber>2</PartNumber>") && strstr(r.body, "<Size>8</Size>"));
	resp_free(&r);
	REQUIRE(req("GET", "/lbk", "uploads=", NULL, 0, &r) && r.status == 200);
	CHECK(count(r.body, "<Upload>") == 1 && strstr(r.body, "<Key>m</Key>"));
	resp_free(&r);

	/* Housekeeping reclaims it (expiry 1 ms in this service). */
	usleep(5000);
	s3svc_housekeeping(s, now_ms());
	REQUIRE(req("GET", "/lbk", "uploads=", NULL, 0, &r) && r.status == 200);
	CHECK(count(r.body, "<Upload>") == 0);
	resp_free(&r);
	REQUIRE(req("DELETE", "/lbk/m", q, NULL, 0, &r));
	CHECK(r.status == 404 && strstr(r.body, "NoSuchUpload"));
	resp_free(&r);

	/* A two-part object (5 MiB + 4 bytes), then UploadPartCopy of a range
	 * across the part boundary: the new part's ETag is the range's MD5. */
	size_t big = 5u << 20;
	char *data = xmalloc(big + 4);
	for (size_t i = 0; i < big + 4; i++)
		data[i] = (char)('a' + (i * 7 + i / 1000) % 26);
	REQUIRE(req("POST", "/lbk/two", "uploads=", NULL, 0, &r) && r.status == 200);
	xml_get(r.body, "UploadId", uid, sizeof(uid));
	resp_free(&r);
	char e1[64] = "", e2[64] = "";
	snprintf(q, sizeof(q), "partNumber=1&uploadId=%s", uid);
	REQUIRE(req("PUT", "/lbk/two", q, data, big, &r) && r.status == 200);
	const char *eh = strcasestr(r.head, "ETag: ");
	if (eh)
		snprintf(e1, sizeof(e1), "%.34s", eh + 6);
	resp_free(&r);
	snprintf(q, sizeof(q), "partNumber=2&uploadId=%s", uid);
	REQUIRE(req("PUT", "/lbk/two", q, data + big, 4, &r) && r.status == 200);
	eh = strcasestr(r.head, "ETag: ");
	if (eh)
		snprintf(e2, sizeof(e2), "%.34s", eh + 6);
	resp_free(&r);
	char doc[512];
	snprintf(doc, sizeof(doc),
		 "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part>"
		 "<Part><PartNumber>2</PartNumber><ETag>%s</ETag></Part></CompleteMultipartUpload>",
		 e1, e2);
	snprintf(q, sizeof(q), "uploadId=%s", uid);
	REQUIRE(req("POST", "/lbk/two", q, doc, strlen(doc), &r) && r.status == 200);
	CHECK(xml_get(r.body, "ETag", v, sizeof(v)) && strstr(v, "-2&quot;") != NULL);
	resp_free(&r);
	REQUIRE(req("POST", "/lbk/cp", "uploads=", NULL, 0, &r) && r.status == 200);
	xml_get(r.body, "UploadId", uid, sizeof(uid));
	resp_free(&r);
	snprintf(q, sizeof(q), "partNumber=1&uploadId=%s", uid);
	struct resp cr;
	REQUIRE(req_hdrs("PUT", "/lbk/cp", q, "/lbk/two", "bytes=5242000-5242883", &cr));
	CHECK_EQ_INT(cr.status, 200);
	char want[64], hex[33];
	uint8_t dg[S3_CKSUM_MAX_DIGEST];
	s3_cksum_buf(S3_CKSUM_MD5, data + 5242000, 884, dg);
	s3_hex_encode(dg, 16, hex);
	snprintf(want, sizeof(want), "&quot;%s&quot;", hex);
	CHECK(cr.body && xml_get(cr.body, "ETag", v, sizeof(v)) && strcmp(v, want) == 0);
	resp_free(&cr);
	REQUIRE(req_hdrs("PUT", "/lbk/cp", q, "lbk/two", "bytes=0-5242884", &cr));
	CHECK(cr.status == 400 && strstr(cr.body, "InvalidArgument"));
	resp_free(&cr);
	free(data);

	/* Abort answers 204. */
	REQUIRE(req("POST", "/lbk/m2", "uploads=", NULL, 0, &r) && r.status == 200);
	xml_get(r.body, "UploadId", uid, sizeof(uid));
	resp_free(&r);
	snprintf(q, sizeof(q), "uploadId=%s", uid);
	REQUIRE(req("DELETE", "/lbk/m2", q, NULL, 0, &r));
	CHECK_EQ_INT(r.status, 204);
	resp_free(&r);
	s3svc_stop(s);
}
