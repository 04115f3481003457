/* fuzz_s3_auth.c - libFuzzer target for SigV4 parsing and canonicalisation.
 *
 * Input: lines. Line 1 is the method, 2 the raw path, 3 the raw query, then
 * headers as "name:value" lines. The request goes through s3_auth_verify
 * (with the example credentials, clock at the example date), the raw input
 * through s3_auth_parse_header and the time parsers, and the path through
 * the URI codec, which must round-trip. Finally the request is signed with
 * the client-side signer and must then verify: signer and verifier share
 * the canonicalisation, so this checks the Authorization header format and
 * the parsing of what the signer produced for arbitrary bytes. */
#include "core/platform.h"
#include "core/wbuf.h"
#include "s3/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define T0 1369353600

static int lookup(void *arg, const char *akid, char *secret, size_t cap)
{
	(void)arg;
	if (strcmp(akid, AK) != 0)
		return -SILT_ENOENT;
	memcpy(secret, SK, strlen(SK));
	return (int)strlen(SK);
}

#define MAX_HDRS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct s3_auth_ctx *ctx;
	if (!ctx)
		ctx = s3_auth_ctx_new(lookup, NULL, 0);
	const char *s = (const char *)data, *end = s + size;
	const char *line[3 + MAX_HDRS];
	size_t len[3 + MAX_HDRS];
	size_t n = 0;
	while (s < end && n < SILT_ARRAY_LEN(line)) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl ? nl : end;
		line[n] = s;
		len[n++] = (size_t)(e - s);
		s = nl ? nl + 1 : end;
	}

	/* Parsers on the raw bytes. */
	struct s3_auth_hdr ah;
	(void)s3_auth_parse_header((const char *)data, size, &ah);
	int64_t t;
	(void)s3_auth_parse_time((const char *)data, size, true, &t);
	(void)s3_auth_parse_time((const char *)data, size, false, &t);
	if (n < 3)
		return 0;

	char method[16];
	size_t ml = SILT_MIN(len[0], sizeof(method) - 1);
	memcpy(method, line[0], ml);
	method[ml] = '\0';
	if (memchr(method, '\0', ml))
		return 0;
	struct s3_hdr hdrs[MAX_HDRS];
	size_t nh = 0;
	for (size_t i = 3; i < n; i++) {
		const char *colon = memchr(line[i], ':', len[i]);
		if (!colon)
			continue;
		hdrs[nh].name = line[i];
		hdrs[nh].name_len = (size_t)(colon - line[i]);
		hdrs[nh].value = colon + 1;
		hdrs[nh].value_len = len[i] - hdrs[nh].name_len - 1;
		nh++;
	}
	struct s3_auth_req req = {
		.method = method, .path = line[1], .path_len = len[1], .query = line[2],
		.query_len = len[2], .hdrs = hdrs, .nhdrs = nh, .now = T0,
	};
	struct s3_auth_result res;
	enum s3_auth_err e = s3_auth_verify(ctx, &req, &res);
	if (e == S3_AUTH_OK && (strlen(res.seed_sig) != 64 || strcmp(res.access_key, AK) != 0))
		abort();
	if (!*s3_auth_err_code(e) && e != S3_AUTH_OK)
		abort();

	/* URI codec: decode(encode(x)) == x. */
	struct wbuf w;
	wbuf_init(&w, 0, 0);
	s3_url_encode_buf(&w, line[1], len[1], true);
	char *dec = malloc(w.len + 1);
	size_t dl = s3_url_decode((const char *)w.p, w.len, dec);
	if (dl != len[1] || memcmp(dec, line[1], dl) != 0)
		abort();
	free(dec);
	wbuf_destroy(&w);

	/* Sign, then verify, the request made of the fuzzed path, query and
	 * header values (names made safe: the signer lower-cases and sorts). */
	if (memchr(line[1], '\0', len[1]) || memchr(line[2], '\0', len[2]))
		return 0;
	char *path = strndup(line[1], len[1]);
	char *query = strndup(line[2], len[2]);
	struct s3_hdr sh[MAX_HDRS + 4];
	size_t ns = 0;
	sh[ns++] = (struct s3_hdr){ "host", 4, "example.com:9000", 16 };
	sh[ns++] = (struct s3_hdr){ "x-amz-date", 10, "20130524T000000Z", 16 };
	sh[ns++] = (struct s3_hdr){ "x-amz-content-sha256", 20, "UNSIGNED-PAYLOAD", 16 };
	char names[MAX_HDRS][16];
	for (size_t i = 0; i < nh; i++) {
		snprintf(names[i], sizeof(names[i]), "x-amz-meta-%zu", i);
		sh[ns++] = (struct s3_hdr){ names[i], strlen(names[i]), hdrs[i].value,
					    hdrs[i].value_len };
	}
	struct s3_sign_req sr = {
		.method = "PUT", .path = path, .query = query, .hdrs = sh, .nhdrs = ns,
		.access_key = AK, .secret = SK, .region = "us-east-1",
		.amz_date = "20130524T000000Z", .payload_hash = "UNSIGNED-PAYLOAD",
	};
	struct wbuf auth;
	wbuf_init(&auth, 0, 0);
	if (s3_auth_sign(&sr, &auth, NULL) == 0) {
		sh[ns++] = (struct s3_hdr){ "Authorization", 13, (const char *)auth.p, auth.len };
		struct s3_auth_req vr = {
			.method = "PUT", .path = path, .path_len = strlen(path), .query = query,
			.query_len = strlen(query), .hdrs = sh, .nhdrs = ns, .now = T0,
		};
		e = s3_auth_verify(ctx, &vr, &res);
		/* A query that itself carries X-Amz-* auth parameters is refused as
		 * a second mechanism; anything else must verify. */
		if (e != S3_AUTH_OK && e != S3_AUTH_INVALID_ARGUMENT && e != S3_AUTH_INVALID_REQUEST)
			abort();
	}
	wbuf_destroy(&auth);
	free(path);
	free(query);
	return 0;
}
