/* aws-chunked decoder tests: the AWS sigv4-streaming and
 * sigv4-streaming-trailers examples (their published chunk and trailer
 * signatures), botocore's unsigned-trailer framing, split invariance,
 * truncations and corruptions. */
#include "core/platform.h"
#include "core/crc.h"
#include "s3/auth.h"
#include "s3/chunked.h"
#include "test.h"

#include <openssl/evp.h>

#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define DATE "20130524T000000Z"
#define SCOPE "20130524/us-east-1/s3/aws4_request"
#define SEED "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define SEED_TR "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"

static uint8_t g_key[32];

static void key_init(void)
{
	s3_auth_signing_key(SK, strlen(SK), "20130524", "us-east-1", 9, g_key);
}

static struct s3_chunked_cfg cfg_for(enum s3_payload_mode m, const char *seed, int64_t dlen)
{
	struct s3_chunked_cfg c = {
		.mode = m,
		.signing_key = g_key,
		.amz_date = DATE,
		.scope = SCOPE,
		.seed_sig = seed,
		.decoded_length = dlen,
	};
	return c;
}

static void put_str(struct wbuf *w, const char *s)
{
	wbuf_put(w, s, strlen(s));
}

static void put_a(struct wbuf *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		wbuf_u8(w, 'a');
}

/* The sigv4-streaming example body: 65536 + 1024 bytes of 'a'. */
static void aws_streaming_body(struct wbuf *w)
{
	put_str(w, "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
	put_a(w, 65536);
	put_str(w, "\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
	put_a(w, 1024);
	put_str(w, "\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
}

/* The sigv4-streaming-trailers example: the same data, a CRC32C trailer. */
static void aws_trailer_body(struct wbuf *w)
{
	put_str(w, "10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n");
	put_a(w, 65536);
	put_str(w, "\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n");
	put_a(w, 1024);
	put_str(w, "\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n");
	put_str(w, "x-amz-checksum-crc32c:sOO8/Q==\r\n");
	put_str(w, "x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n");
}

/* Feeds `in` in pieces of `step` bytes, collecting the payload. Returns
 * the last feed result; *used is the total consumed. */
static int decode(struct s3_chunked *d, const uint8_t *in, size_t len, size_t step,
		  struct wbuf *out, size_t *used)
{
	size_t off = 0;
	int rc = -SILT_EAGAIN;
	*used = 0;
	while (off < len) {
		size_t piece = SILT_MIN(step, len - off), p = 0;
		while (p < piece) {
			size_t c;
			const uint8_t *o;
			size_t olen;
			rc = s3_chunked_feed(d, in + off + p, piece - p, &c, &o, &olen);
			p += c;
			if (rc == S3_CHUNKED_DATA) {
				wbuf_put(out, o, olen);
				continue;
			}
			if (rc != -SILT_EAGAIN) {
				*used = off + p;
				return rc;
			}
		}
		off += piece;
	}
	*used = off;
	if (rc == S3_CHUNKED_DATA) {
		/* The input ended on payload bytes: ask what the decoder wants now. */
		size_t c;
		const uint8_t *o;
		size_t olen;
		rc = s3_chunked_feed(d, in + len, 0, &c, &o, &olen);
	}
	return rc;
}

TEST(s3_chunked_aws_streaming_example)
{
	key_init();
	struct wbuf body, out;
	wbuf_init(&body, 0, 0);
	wbuf_init(&out, 0, 0);
	aws_streaming_body(&body);
	CHECK_EQ_INT(body.len, 66824); /* the example's Content-Length */
	static const size_t steps[] = { SIZE_MAX, 1, 7, 89, 4096, 65536 };
	for (size_t s = 0; s < SILT_ARRAY_LEN(steps); s++) {
		struct s3_chunked d;
		struct s3_chunked_cfg cfg = cfg_for(S3_PAYLOAD_STREAMING_SIGNED, SEED, 66560);
		REQUIRE(s3_chunked_init(&d, &cfg) == 0);
		size_t used;
		wbuf_reset(&out);
		CHECK_EQ_INT(decode(&d, body.p, body.len, steps[s], &out, &used), S3_CHUNKED_DONE);
		CHECK_EQ_INT(used, body.len);
		CHECK_EQ_INT(out.len, 66560);
		CHECK_EQ_INT(s3_chunked_total(&d), 66560);
		bool all_a = true;
		for (size_t i = 0; i < out.len; i++)
			all_a &= out.p[i] == 'a';
		CHECK(all_a);
		CHECK(strcmp(d.prev_sig, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9") == 0);
		CHECK_EQ_INT(s3_chunked_finish(&d), 0);
		CHECK_EQ_INT(s3_chunked_ntrailers(&d), 0);
		s3_chunked_destroy(&d);
	}
	/* The wrong seed breaks the chain at the first chunk. */
	struct s3_chunked d;
	struct s3_chunked_cfg cfg = cfg_for(S3_PAYLOAD_STREAMING_SIGNED, SEED_TR, 66560);
	REQUIRE(s3_chunked_init(&d, &cfg) == 0);
	size_t used;
	wbuf_reset(&out);
	CHECK_EQ_INT(decode(&d, body.p, body.len, SIZE_MAX, &out, &used), -SILT_ECORRUPT);
	CHECK(d.err == S3_CHUNKED_E_SIGNATURE);
	CHECK(strcmp(s3_chunked_err_code(d.err), "SignatureDoesNotMatch") == 0);
	CHECK_EQ_INT(out.len, 0); /* the failing chunk's last slice is withheld */
	s3_chunked_destroy(&d);
	/* Sampled truncations are incomplete, never errors. */
	for (size_t k = 0; k < body.len; k += (k < 200 || k > body.len - 200) ? 1 : 997) {
		cfg = cfg_for(S3_PAYLOAD_STREAMING_SIGNED, SEED, 66560);
		REQUIRE(s3_chunked_init(&d, &cfg) == 0);
		wbuf_reset(&out);
		int rc = decode(&d, body.p, k, SIZE_MAX, &out, &used);
		CHECK(rc == -SILT_EAGAIN || (k == 0 && rc == -SILT_EAGAIN));
		if (rc != -SILT_EAGAIN)
			fprintf(stderr, "  truncation at %zu gave %d\n", k, rc);
		s3_chunked_destroy(&d);
	}
	wbuf_destroy(&body);
	wbuf_destroy(&out);
}

TEST(s3_chunked_aws_trailer_example)
{
	key_init();
	/* The request that carries the seed signature. */
	const struct s3_hdr h[] = {
		{ "Host", 4, "s3.amazonaws.com", 16 },
		{ "x-amz-date", 10, DATE, 16 },
		{ "x-amz-storage-class", 19, "REDUCED_REDUNDANCY", 18 },
		{ "x-amz-content-sha256", 20, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", 42 },
		{ "Content-Encoding", 16, "aws-chunked", 11 },
		{ "x-amz-decoded-content-length", 28, "66560", 5 },
		{ "x-amz-trailer", 13, "x-amz-checksum-crc32c", 21 },
	};
	struct s3_sign_req sr = {
		.method = "PUT", .path = "/examplebucket/chunkObject.txt", .hdrs = h, .nhdrs = 7,
		.access_key = "AKIAIOSFODNN7EXAMPLE", .secret = SK, .region = "us-east-1",
		.amz_date = DATE, .payload_hash = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
	};
	char seed[65];
	REQUIRE(s3_auth_sign(&sr, NULL, seed) == 0);
	CHECK(strcmp(seed, SEED_TR) == 0);

	struct wbuf body, out;
	wbuf_init(&body, 0, 0);
	wbuf_init(&out, 0, 0);
	aws_trailer_body(&body);
	static const size_t steps[] = { SIZE_MAX, 1, 13, 1000 };
	for (size_t s = 0; s < SILT_ARRAY_LEN(steps); s++) {
		struct s3_chunked d;
		struct s3_chunked_cfg cfg = cfg_for(S3_PAYLOAD_STREAMING_SIGNED_TRAILER, SEED_TR, 66560);
		REQUIRE(s3_chunked_init(&d, &cfg) == 0);
		size_t used;
		wbuf_reset(&out);
		CHECK_EQ_INT(decode(&d, body.p, body.len, steps[s], &out, &used), S3_CHUNKED_DONE);
		CHECK_EQ_INT(used, body.len);
		CHECK_EQ_INT(out.len, 66560);
		REQUIRE(s3_chunked_ntrailers(&d) == 1);
		const char *n, *v;
		s3_chunked_trailer_at(&d, 0, &n, &v);
		CHECK(strcmp(n, "x-amz-checksum-crc32c") == 0 && strcmp(v, "sOO8/Q==") == 0);
		CHECK(strcmp(s3_chunked_trailer(&d, "X-Amz-Checksum-CRC32C"), "sOO8/Q==") == 0);
		CHECK(s3_chunked_trailer(&d, "x-amz-checksum-crc32") == NULL);
		enum s3_cksum_alg alg;
		uint8_t dig[S3_CKSUM_MAX_DIGEST];
		size_t dl;
		REQUIRE(s3_chunked_trailer_checksum(&d, &alg, dig, &dl) == 0);
		CHECK(alg == S3_CKSUM_CRC32C && dl == 4);
		/* The caller's running checksum over the payload agrees. */
		uint32_t c = crc32c(0, out.p, out.len);
		CHECK(dig[0] == (uint8_t)(c >> 24) && dig[3] == (uint8_t)c);
		s3_chunked_destroy(&d);
	}
	/* A changed trailer value fails the trailer signature. */
	char *p = memmem(body.p, body.len, "sOO8", 4);
	REQUIRE(p);
	p[0] = 't';
	struct s3_chunked d;
	struct s3_chunked_cfg cfg = cfg_for(S3_PAYLOAD_STREAMING_SIGNED_TRAILER, SEED_TR, 66560);
	REQUIRE(s3_chunked_init(&d, &cfg) == 0);
	size_t used;
	CHECK_EQ_INT(decode(&d, body.p, body.len, SIZE_MAX, &out, &used), -SILT_ECORRUPT);
	CHECK(d.err == S3_CHUNKED_E_SIGNATURE);
	s3_chunked_destroy(&d);
	wbuf_destroy(&body);
	wbuf_destroy(&out);
}

static const char boto_body[] =
	"4\r\nhell\r\n4\r\no wo\r\n3\r\nrld\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";

TEST(s3_chunked_unsigned_trailer_botocore)
{
	struct s3_chunked d;
	struct s3_chunked_cfg cfg = { .mode = S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER,
				      .decoded_length = 11 };
	struct wbuf out;
	wbuf_init(&out, 0, 0);
	size_t len = strlen(boto_body), used;
	for (size_t step = 1; step <= len; step++) {
		REQUIRE(s3_chunked_init(&d, &cfg) == 0);
		wbuf_reset(&out);
		CHECK_EQ_INT(decode(&d, (const uint8_t *)boto_body, len, step, &out, &used),
			     S3_CHUNKED_DONE);
		CHECK(out.len == 11 && memcmp(out.p, "hello world", 11) == 0);
		enum s3_cksum_alg alg;
		uint8_t dig[S3_CKSUM_MAX_DIGEST];
		size_t dl;
		CHECK(s3_chunked_trailer_checksum(&d, &alg, dig, &dl) == 0 && alg == S3_CKSUM_CRC32);
		CHECK(dig[0] == 0x0d && dig[3] == 0x85);
		s3_chunked_destroy(&d);
	}
	/* Every truncation: incomplete while feeding, an error at finish except
	 * when only the closing empty line is missing. */
	for (size_t k = 0; k < len; k++) {
		REQUIRE(s3_chunked_init(&d, &cfg) == 0);
		wbuf_reset(&out);
		CHECK_EQ_INT(decode(&d, (const uint8_t *)boto_body, k, 3, &out, &used), -SILT_EAGAIN);
		int fin = s3_chunked_finish(&d);
		CHECK_EQ_INT(fin, (k == len - 2 ? 0 : -SILT_EINVAL));
		if (fin)
			CHECK(strcmp(s3_chunked_err_code(d.err), "IncompleteBody") == 0);
		s3_chunked_destroy(&d);
	}
	/* Extra bytes after the body are not consumed. */
	struct wbuf b;
	wbuf_init(&b, 0, 0);
	put_str(&b, boto_body);
	put_str(&b, "GET / HTTP/1.1\r\n");
	REQUIRE(s3_chunked_init(&d, &cfg) == 0);
	wbuf_reset(&out);
	CHECK_EQ_INT(decode(&d, b.p, b.len, SIZE_MAX, &out, &used), S3_CHUNKED_DONE);
	CHECK_EQ_INT(used, len);
	const uint8_t *o;
	size_t ol, c;
	CHECK_EQ_INT(s3_chunked_feed(&d, b.p + used, b.len - used, &c, &o, &ol), S3_CHUNKED_DONE);
	CHECK_EQ_INT(c, 0);
	s3_chunked_destroy(&d);
	wbuf_destroy(&b);
	wbuf_destroy(&out);
}

/* A small signed-trailer body built with the (vector-checked) signer. */
static void build_signed(struct wbuf *w, const uint8_t *data, size_t n, const size_t *chunks,
			 size_t nchunks, const char *trailers, bool trailer_sig)
{
	char prev[65], sig[65];
	uint8_t h[32];
	memcpy(prev, SEED, 65);
	size_t off = 0;
	for (size_t i = 0; i <= nchunks; i++) {
		size_t len = i < nchunks ? chunks[i] : 0;
		EVP_Digest(data + off, len, h, NULL, EVP_sha256(), NULL);
		s3_auth_chunk_signature(g_key, DATE, SCOPE, prev, h, sig);
		char line[128];
		snprintf(line, sizeof(line), "%zx;chunk-signature=%s\r\n", len, sig);
		put_str(w, line);
		wbuf_put(w, data + off, len);
		if (len)
			put_str(w, "\r\n");
		off += len;
		memcpy(prev, sig, 65);
	}
	(void)n;
	if (trailers)
		put_str(w, trailers);
	if (trailer_sig) {
		/* trailers are "name:value\r\n" lines; the signed form uses \n. */
		struct wbuf canon;
		wbuf_init(&canon, 0, 0);
		for (const char *p = trailers; p && *p; p++)
			if (*p != '\r')
				wbuf_u8(&canon, (uint8_t)*p);
		EVP_Digest(canon.p, canon.len, h, NULL, EVP_sha256(), NULL);
		wbuf_destroy(&canon);
		s3_auth_trailer_signature(g_key, DATE, SCOPE, prev, h, sig);
		put_str(w, "x-amz-trailer-signature:");
		put_str(w, sig);
		put_str(w, "\r\n");
	}
	put_str(w, "\r\n");
}

TEST(s3_chunked_truncations_and_corruptions)
{
	key_init();
	uint8_t data[100];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	const size_t chunks[] = { 40, 40, 20 };
	struct wbuf body, out;
	wbuf_init(&body, 0, 0);
	wbuf_init(&out, 0, 0);
	build_signed(&body, data, 100, chunks, 3, "x-amz-checksum-crc32:AAAAAA==\r\n", true);
	struct s3_chunked_cfg cfg = cfg_for(S3_PAYLOAD_STREAMING_SIGNED_TRAILER, SEED, 100);
	struct s3_chunked d;
	size_t used;

	REQUIRE(s3_chunked_init(&d, &cfg) == 0);
	CHECK_EQ_INT(decode(&d, body.p, body.len, 1, &out, &used), S3_CHUNKED_DONE);
	CHECK(out.len == 100 && memcmp(out.p, data, 100) == 0);
	s3_chunked_destroy(&d);

	for (size_t k = 0; k < body.len; k++) {
		REQUIRE(s3_chunked_init(&d, &cfg) == 0);
		wbuf_reset(&out);
		int rc = decode(&d, body.p, k, SIZE_MAX, &out, &used);
		CHECK_EQ_INT(rc, -SILT_EAGAIN);
		CHECK(out.len <= 100 && memcmp(out.p, data, out.len) == 0);
		CHECK_EQ_INT(s3_chunked_finish(&d), k == body.len - 2 ? 0 : -SILT_EINVAL);
		s3_chunked_destroy(&d);
	}
	/* Every single-bit flip anywhere is caught: by framing, by a chunk or
	 * trailer signature, by the length, or as an incomplete body. */
	for (size_t k = 0; k < body.len; k++) {
		for (int bit = 0; bit < 8; bit += 3) {
			/* (Bit 5 would only change the case of trailer names,
			 * which is allowed.) */
			body.p[k] ^= (uint8_t)(1 << bit);
			REQUIRE(s3_chunked_init(&d, &cfg) == 0);
			wbuf_reset(&out);
			int rc = decode(&d, body.p, body.len, 17, &out, &used);
			bool caught = (rc < 0 && rc != -SILT_EAGAIN) ||
				      (rc == -SILT_EAGAIN && s3_chunked_finish(&d) < 0) ||
				      (rc == S3_CHUNKED_DONE && used < body.len);
			if (!caught)
				fprintf(stderr, "  flip at %zu bit %d not caught (rc %d)\n", k, bit, rc);
			CHECK(caught);
			s3_chunked_destroy(&d);
			body.p[k] ^= (uint8_t)(1 << bit);
		}
	}
	/* Length checks against x-amz-decoded-content-length. */
	for (int64_t dl = 99; dl <= 101; dl += 2) {
		cfg.decoded_length = dl;
		REQUIRE(s3_chunked_init(&d, &cfg) == 0);
		CHECK_EQ_INT(decode(&d, body.p, body.len, SIZE_MAX, &out, &used), -SILT_EINVAL);
		CHECK(d.err == S3_CHUNKED_E_LENGTH);
		s3_chunked_destroy(&d);
	}
	/* The signed-trailer mode requires the trailer signature. */
	wbuf_reset(&body);
	build_signed(&body, data, 100, chunks, 3, "x-amz-checksum-crc32:AAAAAA==\r\n", false);
	cfg.decoded_length = -1;
	REQUIRE(s3_chunked_init(&d, &cfg) == 0);
	CHECK_EQ_INT(decode(&d, body.p, body.len, SIZE_MAX, &out, &used), -SILT_EINVAL);
	CHECK(d.err == S3_CHUNKED_E_TRAILER);
	s3_chunked_destroy(&d);
	/* The plain signed mode accepts no trailers. */
	cfg.mode = S3_PAYLOAD_STREAMING_SIGNED;
	REQUIRE(s3_chunked_init(&d, &cfg) == 0);
	CHECK_EQ_INT(decode(&d, body.p, body.len, SIZE_MAX, &out, &used), -SILT_EINVAL);
	CHECK(d.err == S3_CHUNKED_E_FRAMING);
	s3_chunked_destroy(&d);
	wbuf_reset(&body);
	build_signed(&body, data, 100, chunks, 3, NULL, false);
	REQUIRE(s3_chunked_init(&d, &cfg) == 0);
	CHECK_EQ_INT(decode(&d, body.p, body.len, 5, &out, &used), S3_CHUNKED_DONE);
	s3_chunked_destroy(&d);
	wbuf_destroy(&body);
	wbuf_destroy(&out);
}

static int expect_rc(enum s3_payload_mode m, const char *body, size_t max_line,
		     size_t max_trailers, enum s3_chunked_err *err)
{
	struct s3_chunked d;
	struct s3_chunked_cfg cfg = cfg_for(m, SEED, -1);
	cfg.max_line = (uint32_t)max_line;
	cfg.max_trailers = (uint32_t)max_trailers;
	struct wbuf out;
	wbuf_init(&out, 0, 0);
	size_t used;
	if (s3_chunked_init(&d, &cfg) < 0)
		return 99;
	int rc = decode(&d, (const uint8_t *)body, strlen(body), SIZE_MAX, &out, &used);
	*err = d.err;
	s3_chunked_destroy(&d);
	wbuf_destroy(&out);
	return rc;
}

TEST(s3_chunked_framing_rules_and_caps)
{
	key_init();
	enum s3_chunked_err e;
	const enum s3_payload_mode U = S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER;
	CHECK_EQ_INT(expect_rc(U, "0\r\n\r\n", 0, 0, &e), S3_CHUNKED_DONE);
	CHECK_EQ_INT(expect_rc(U, "3;ext=1\r\nabc\r\n0\r\n\r\n", 0, 0, &e), S3_CHUNKED_DONE);
	CHECK_EQ_INT(expect_rc(U, "A\r\n0123456789\r\n0\r\n\r\n", 0, 0, &e), S3_CHUNKED_DONE);
	CHECK_EQ_INT(expect_rc(U, "3\nabc\r\n0\r\n\r\n", 0, 0, &e), -SILT_EINVAL);
	CHECK(e == S3_CHUNKED_E_FRAMING);
	CHECK_EQ_INT(expect_rc(U, "3\r\nabcd\r\n0\r\n\r\n", 0, 0, &e), -SILT_EINVAL);
	CHECK_EQ_INT(expect_rc(U, "\r\n", 0, 0, &e), -SILT_EINVAL);
	CHECK_EQ_INT(expect_rc(U, "x\r\n", 0, 0, &e), -SILT_EINVAL);
	CHECK_EQ_INT(expect_rc(U, " 3\r\n", 0, 0, &e), -SILT_EINVAL);
	CHECK_EQ_INT(expect_rc(U, "3 \r\n", 0, 0, &e), -SILT_EINVAL);
	CHECK_EQ_INT(expect_rc(U, "00000000000000001\r\n", 0, 0, &e), -SILT_EINVAL);
	/* A huge declared size is fine to start (data is never buffered)... */
	CHECK_EQ_INT(expect_rc(U, "ffffffffffffffff\r\nab", 0, 0, &e), -SILT_EAGAIN);
	/* ...but not past the decoded length when one is given. */
	{
		struct s3_chunked d;
		struct s3_chunked_cfg cfg = { .mode = U, .decoded_length = 5 };
		REQUIRE(s3_chunked_init(&d, &cfg) == 0);
		const uint8_t *o;
		size_t ol, c;
		CHECK_EQ_INT(s3_chunked_feed(&d, (const uint8_t *)"6\r\n", 3, &c, &o, &ol), -SILT_EINVAL);
		CHECK(d.err == S3_CHUNKED_E_LENGTH);
		/* Errors are sticky. */
		CHECK_EQ_INT(s3_chunked_feed(&d, (const uint8_t *)"0\r\n", 3, &c, &o, &ol), -SILT_EINVAL);
		s3_chunked_destroy(&d);
	}
	/* Line caps. */
	CHECK_EQ_INT(expect_rc(U, "3;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 32, 0, &e),
		     -SILT_ETOOBIG);
	CHECK(e == S3_CHUNKED_E_TOO_LONG);
	CHECK_EQ_INT(expect_rc(U, "0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", 0, 16, &e), -SILT_EINVAL);
	CHECK(e == S3_CHUNKED_E_TRAILER);
	CHECK_EQ_INT(expect_rc(U, "0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", 0, 32, &e),
		     S3_CHUNKED_DONE);
	{
		struct wbuf b;
		wbuf_init(&b, 0, 0);
		put_str(&b, "0\r\n");
		for (int i = 0; i < S3_CHUNKED_MAX_TRAILERS + 1; i++)
			put_str(&b, "x-a:1\r\n");
		put_str(&b, "\r\n");
		wbuf_u8(&b, 0);
		CHECK_EQ_INT(expect_rc(U, (char *)b.p, 0, 0, &e), -SILT_EINVAL);
		CHECK(e == S3_CHUNKED_E_TRAILER);
		wbuf_destroy(&b);
	}
	/* Malformed trailers. */
	CHECK_EQ_INT(expect_rc(U, "0\r\n:v\r\n\r\n", 0, 0, &e), -SILT_EINVAL);
	CHECK_EQ_INT(expect_rc(U, "0\r\nnovalue\r\n\r\n", 0, 0, &e), -SILT_EINVAL);
	CHECK_EQ_INT(expect_rc(U, "0\r\nx y:v\r\n\r\n", 0, 0, &e), -SILT_EINVAL);
	CHECK_EQ_INT(expect_rc(U, "0\r\nx-amz-trailer-signature:00\r\n\r\n", 0, 0, &e), -SILT_EINVAL);
	CHECK(e == S3_CHUNKED_E_TRAILER);
	/* A trailer whose base64 is bad or the wrong size for its algorithm. */
	{
		struct s3_chunked d;
		struct s3_chunked_cfg cfg = { .mode = U, .decoded_length = -1 };
		REQUIRE(s3_chunked_init(&d, &cfg) == 0);
		const char *b = "0\r\nx-amz-checksum-sha1:AAAAAA==\r\n\r\n";
		const uint8_t *o;
		size_t ol, c, dl;
		CHECK_EQ_INT(s3_chunked_feed(&d, (const uint8_t *)b, strlen(b), &c, &o, &ol),
			     S3_CHUNKED_DONE);
		enum s3_cksum_alg alg;
		uint8_t dig[S3_CKSUM_MAX_DIGEST];
		CHECK_EQ_INT(s3_chunked_trailer_checksum(&d, &alg, dig, &dl), -SILT_EINVAL);
		s3_chunked_destroy(&d);
		REQUIRE(s3_chunked_init(&d, &cfg) == 0);
		b = "0\r\n\r\n";
		CHECK_EQ_INT(s3_chunked_feed(&d, (const uint8_t *)b, strlen(b), &c, &o, &ol),
			     S3_CHUNKED_DONE);
		CHECK_EQ_INT(s3_chunked_trailer_checksum(&d, &alg, dig, &dl), -SILT_ENOENT);
		s3_chunked_destroy(&d);
	}
	/* Signed modes need a signature on every chunk. */
	const enum s3_payload_mode S = S3_PAYLOAD_STREAMING_SIGNED;
	CHECK_EQ_INT(expect_rc(S, "3\r\nabc\r\n", 0, 0, &e), -SILT_EINVAL);
	CHECK_EQ_INT(expect_rc(S, "0;chunk-signature=b6c6\r\n", 0, 0, &e), -SILT_EINVAL);
	/* init refuses non-streaming modes and missing signing data. */
	struct s3_chunked d;
	struct s3_chunked_cfg bad = { .mode = S3_PAYLOAD_UNSIGNED };
	CHECK(s3_chunked_init(&d, &bad) == -SILT_EINVAL);
	bad.mode = S;
	CHECK(s3_chunked_init(&d, &bad) == -SILT_EINVAL);
}

static int sink_count(void *arg, const uint8_t *p, size_t n)
{
	(void)p;
	*(size_t *)arg += n;
	return 0;
}

TEST(s3_chunked_feed_all_sink)
{
	struct s3_chunked d;
	struct s3_chunked_cfg cfg = { .mode = S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER,
				      .decoded_length = -1 };
	REQUIRE(s3_chunked_init(&d, &cfg) == 0);
	size_t total = 0, used;
	size_t len = strlen(boto_body);
	CHECK_EQ_INT(s3_chunked_feed_all(&d, (const uint8_t *)boto_body, 20, &used, sink_count,
					 &total), -SILT_EAGAIN);
	CHECK_EQ_INT(used, 20);
	CHECK_EQ_INT(s3_chunked_feed_all(&d, (const uint8_t *)boto_body + 20, len - 20, &used,
					 sink_count, &total), S3_CHUNKED_DONE);
	CHECK_EQ_INT(total, 11);
	CHECK_EQ_INT(used, len - 20);
	s3_chunked_destroy(&d);
}
