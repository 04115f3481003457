/* auth.c - AWS SigV4 for S3. See auth.h. */
/* SHA256_Init and friends are deprecated in OpenSSL 3 but kept; see
 * sha256_2 for why they are used. Before any include: auth.h includes
 * <openssl/sha.h>. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "core/platform.h"
#include "s3/auth.h"
#include "s3/checksum.h"
#include "core/util.h"

#include <pthread.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#define ALGO "AWS4-HMAC-SHA256"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define PRESIGN_MAX_EXPIRES 604800
/* Canonical requests are built from headers and a query the HTTP layer has
 * already capped; this bound only keeps a pathological one from growing. */
#define CANON_MAX (1u << 20)
#define MAX_QUERY_PARAMS 1024
#define MAX_SIGNED_HEADERS 128
#define KEY_CACHE_SLOTS 16

/* ------------------------------------------------------------------ */
/* Errors                                                             */

const char *s3_auth_err_code(enum s3_auth_err e)
{
	switch (e) {
	case S3_AUTH_OK:
		return "";
	case S3_AUTH_ANONYMOUS:
	case S3_AUTH_ACCESS_DENIED:
	case S3_AUTH_EXPIRED:
		return "AccessDenied";
	case S3_AUTH_SIGNATURE_MISMATCH:
		return "SignatureDoesNotMatch";
	case S3_AUTH_INVALID_ACCESS_KEY:
		return "InvalidAccessKeyId";
	case S3_AUTH_HEADER_MALFORMED:
		return "AuthorizationHeaderMalformed";
	case S3_AUTH_QUERY_MALFORMED:
		return "AuthorizationQueryParametersError";
	case S3_AUTH_TIME_SKEWED:
		return "RequestTimeTooSkewed";
	case S3_AUTH_MISSING_SECURITY_HDR:
		return "MissingSecurityHeader";
	case S3_AUTH_INVALID_REQUEST:
		return "InvalidRequest";
	case S3_AUTH_INVALID_ARGUMENT:
		return "InvalidArgument";
	case S3_AUTH_CONTENT_SHA256_MISMATCH:
		return "XAmzContentSHA256Mismatch";
	}
	return "AccessDenied";
}

int s3_auth_err_status(enum s3_auth_err e)
{
	switch (e) {
	case S3_AUTH_OK:
		return 200;
	case S3_AUTH_HEADER_MALFORMED:
	case S3_AUTH_QUERY_MALFORMED:
	case S3_AUTH_MISSING_SECURITY_HDR:
	case S3_AUTH_INVALID_REQUEST:
	case S3_AUTH_INVALID_ARGUMENT:
	case S3_AUTH_CONTENT_SHA256_MISMATCH:
		return 400;
	default:
		return 403;
	}
}

/* ------------------------------------------------------------------ */
/* URI encoding                                                       */

/* Bitwise ORs, not ||: a path's letters and digits alternate at random,
 * and a branch per class mispredicts on them. */
static bool unreserved(uint8_t c)
{
	return ((unsigned)(c - 'A') < 26) | ((unsigned)(c - 'a') < 26) | ((unsigned)(c - '0') < 10) |
	       (c == '-') | (c == '_') | (c == '.') | (c == '~');
}

static void enc_byte(struct wbuf *out, uint8_t c, bool encode_slash)
{
	static const char hx[] = "0123456789ABCDEF";
	if (unreserved(c) || (c == '/' && !encode_slash)) {
		wbuf_u8(out, c);
		return;
	}
	char e[3] = { '%', hx[c >> 4], hx[c & 15] };
	wbuf_put(out, e, 3);
}

void s3_url_encode_buf(struct wbuf *out, const void *s, size_t n, bool encode_slash)
{
	const uint8_t *p = s;
	for (size_t i = 0; i < n; i++)
		enc_byte(out, p[i], encode_slash);
}

char *s3_url_encode(const char *s, bool encode_slash)
{
	struct wbuf w;
	size_t n = strlen(s), len;
	wbuf_init(&w, n * 3 + 1, 0);
	s3_url_encode_buf(&w, s, n, encode_slash);
	wbuf_u8(&w, 0);
	return (char *)wbuf_steal(&w, &len);
}

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes %XX at s[i] (needs i+2 < n); -1 when it is not a valid escape. */
static int pct_at(const char *s, size_t n, size_t i)
{
	if (s[i] != '%' || n < 3 || i > n - 3)
		return -1;
	int hi = hexv(s[i + 1]), lo = hexv(s[i + 2]);
	return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
}

static size_t url_decode(const char *s, size_t n, char *out, bool plus_space)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int v = s[i] == '%' ? pct_at(s, n, i) : -1;
		if (v >= 0) {
			out[o++] = (char)v;
			i += 2;
		} else if (plus_space && s[i] == '+') {
			out[o++] = ' ';
		} else {
			out[o++] = s[i];
		}
	}
	return o;
}

size_t s3_url_decode(const char *s, size_t n, char *out)
{
	return url_decode(s, n, out, false);
}

/* The canonical URI: each byte of the path encoded once. An escape in the
 * raw path stands for its byte (so clients that send "%24" and clients that
 * send "$" both verify), and an escaped "/" stays "%2F" because it is part
 * of a key rather than a separator. The path is never normalised. */
static void canonical_uri(struct wbuf *out, const char *path, size_t n)
{
	if (n == 0) {
		wbuf_u8(out, '/');
		return;
	}
	for (size_t i = 0; i < n;) {
		/* Runs that stay as they are go out in one copy. */
		size_t j = i;
		while (j < n && (unreserved((uint8_t)path[j]) || path[j] == '/'))
			j++;
		wbuf_put(out, path + i, j - i);
		if (j == n)
			break;
		int v = path[j] == '%' ? pct_at(path, n, j) : -1;
		if (v >= 0) {
			enc_byte(out, (uint8_t)v, true);
			j += 3;
		} else {
			enc_byte(out, (uint8_t)path[j], false);
			j++;
		}
		i = j;
	}
}

/* ------------------------------------------------------------------ */
/* Query strings                                                      */

struct qparam {
	const char *name, *value; /* raw views */
	size_t name_len, value_len;
};

/* Iterates `a=1&b&c=` in raw form, skipping empty pieces. */
static bool query_next(const char **pp, const char *end, struct qparam *q)
{
	const char *p = *pp;
	while (p < end && *p == '&')
		p++;
	if (p >= end)
		return false;
	const char *amp = memchr(p, '&', (size_t)(end - p));
	const char *e = amp ? amp : end;
	const char *eq = memchr(p, '=', (size_t)(e - p));
	q->name = p;
	q->name_len = (size_t)((eq ? eq : e) - p);
	q->value = eq ? eq + 1 : e;
	q->value_len = eq ? (size_t)(e - eq - 1) : 0;
	*pp = e;
	return true;
}

/* The names looked up are short literals, so a name whose encoded form is
 * over three times as long cannot match and is not decoded at all. */
static bool decoded_eq(const char *s, size_t n, const char *lit)
{
	char tmp[192];
	size_t ll = strlen(lit);
	if (n > sizeof(tmp) || n > 3 * ll)
		return false;
	size_t m = url_decode(s, n, tmp, true);
	return m == ll && memcmp(tmp, lit, m) == 0;
}

/* Finds the decoded value of query parameter `name` (matched after
 * decoding). Returns its length, -1 when absent, -2 when longer than cap. */
static ssize_t query_get(const char *query, size_t qlen, const char *name, char *out,
			 size_t cap)
{
	if (!query)
		return -1;
	const char *p = query, *end = query + qlen;
	struct qparam q;
	while (query_next(&p, end, &q)) {
		if (!decoded_eq(q.name, q.name_len, name))
			continue;
		char *tmp = xmalloc(q.value_len + 1);
		size_t m = url_decode(q.value, q.value_len, tmp, true);
		if (m <= cap)
			memcpy(out, tmp, m);
		free(tmp);
		return m <= cap ? (ssize_t)m : -2;
	}
	return -1;
}

struct canon_pair {
	size_t noff, nlen, voff, vlen;
	const uint8_t *base;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct canon_pair *x = a, *y = b;
	int c = memcmp(x->base + x->noff, y->base + y->noff, SILT_MIN(x->nlen, y->nlen));
	if (c)
		return c;
	if (x->nlen != y->nlen)
		return x->nlen < y->nlen ? -1 : 1;
	c = memcmp(x->base + x->voff, y->base + y->voff, SILT_MIN(x->vlen, y->vlen));
	if (c)
		return c;
	return x->vlen < y->vlen ? -1 : x->vlen > y->vlen;
}

/* Canonical query: every parameter decoded ('+' is a space, as in forms)
 * and re-encoded with S3's rule, sorted by encoded name then value. */
static int canonical_query(struct wbuf *out, const char *query, size_t qlen, const char *skip)
{
	if (!query || qlen == 0)
		return 0;
	size_t n = 0;
	const char *p = query, *end = query + qlen;
	struct qparam q;
	while (query_next(&p, end, &q))
		n++;
	if (n > MAX_QUERY_PARAMS)
		return -SILT_ETOOBIG;
	struct canon_pair *pairs = xcalloc(n ? n : 1, sizeof(*pairs));
	struct wbuf scratch;
	char *dec = xmalloc(qlen + 1);
	wbuf_init(&scratch, qlen * 3 + 16, CANON_MAX);
	size_t k = 0;
	p = query;
	while (query_next(&p, end, &q)) {
		size_t dn = url_decode(q.name, q.name_len, dec, true);
		if (skip && dn == strlen(skip) && memcmp(dec, skip, dn) == 0)
			continue;
		pairs[k].noff = scratch.len;
		s3_url_encode_buf(&scratch, dec, dn, true);
		pairs[k].nlen = scratch.len - pairs[k].noff;
		size_t dv = url_decode(q.value, q.value_len, dec, true);
		pairs[k].voff = scratch.len;
		s3_url_encode_buf(&scratch, dec, dv, true);
		pairs[k].vlen = scratch.len - pairs[k].voff;
		k++;
	}
	int rc = 0;
	if (scratch.err) {
		rc = -SILT_ETOOBIG;
		goto out;
	}
	for (size_t i = 0; i < k; i++)
		pairs[i].base = scratch.p;
	qsort(pairs, k, sizeof(*pairs), pair_cmp);
	for (size_t i = 0; i < k; i++) {
		if (i)
			wbuf_u8(out, '&');
		wbuf_put(out, scratch.p + pairs[i].noff, pairs[i].nlen);
		wbuf_u8(out, '=');
		wbuf_put(out, scratch.p + pairs[i].voff, pairs[i].vlen);
	}
out:
	wbuf_destroy(&scratch);
	free(dec);
	free(pairs);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Headers                                                            */

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static uint8_t ascii_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* ASCII case-insensitive, no locale: header names are tokens. */
static bool name_eq(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++)
		if (a[i] != b[i] && ascii_lower((uint8_t)a[i]) != ascii_lower((uint8_t)b[i]))
			return false;
	return true;
}

/* Header value with surrounding whitespace trimmed and inner runs of
 * whitespace collapsed to one space (SigV4 "trimall"). */
static void put_trimmed(struct wbuf *out, const char *v, size_t n)
{
	size_t i = 0;
	while (n > 0 && is_ws(v[n - 1]))
		n--;
	while (i < n && is_ws(v[i]))
		i++;
	/* Nearly every value has nothing to collapse: no tab, no double
	 * space. Copy it whole then. */
	bool plain = true;
	for (size_t k = i; k < n && plain; k++)
		plain = v[k] != '\t' && !(v[k] == ' ' && k + 1 < n && v[k + 1] == ' ');
	if (plain) {
		wbuf_put(out, v + i, n - i);
		return;
	}
	bool ws = false;
	for (; i < n; i++) {
		if (is_ws(v[i])) {
			ws = true;
			continue;
		}
		if (ws)
			wbuf_u8(out, ' ');
		ws = false;
		wbuf_u8(out, (uint8_t)v[i]);
	}
}

static void trim_view(const char **v, size_t *n)
{
	while (*n > 0 && is_ws((*v)[*n - 1]))
		(*n)--;
	while (*n > 0 && is_ws(**v)) {
		(*v)++;
		(*n)--;
	}
}

static int canonical_request(const struct s3_auth_req *req, const char *signed_headers,
			     size_t shn, const char *skip_query_param, const char *payload_hash,
			     size_t payload_hash_len, bool verbatim_path, struct wbuf *out)
{
	wbuf_put(out, req->method, strlen(req->method));
	wbuf_u8(out, '\n');
	if (verbatim_path)
		wbuf_put(out, req->path, req->path_len);
	else
		canonical_uri(out, req->path, req->path_len);
	wbuf_u8(out, '\n');
	int rc = canonical_query(out, req->query, req->query_len, skip_query_param);
	if (rc < 0)
		return rc;
	wbuf_u8(out, '\n');

	/* The signed header list, as the client sent it, decides which headers
	 * enter and in what order; clients send it sorted and lower-case. */
	if (shn == 0)
		return -SILT_EINVAL;
	size_t count = 0;
	for (size_t i = 0; i < shn;) {
		const char *semi = memchr(signed_headers + i, ';', shn - i);
		size_t e = semi ? (size_t)(semi - signed_headers) : shn;
		const char *name = signed_headers + i;
		size_t nl = e - i;
		if (nl == 0 || ++count > MAX_SIGNED_HEADERS)
			return -SILT_EINVAL;
		bool found = false, upper = false;
		for (size_t k = 0; k < nl; k++) {
			char c = name[k];
			if (c <= ' ' || c == ':' || c >= 0x7f)
				return -SILT_EINVAL;
			upper |= c >= 'A' && c <= 'Z';
		}
		if (!upper)
			wbuf_put(out, name, nl);
		else
			for (size_t k = 0; k < nl; k++)
				wbuf_u8(out, ascii_lower((uint8_t)name[k]));
		wbuf_u8(out, ':');
		for (size_t h = 0; h < req->nhdrs; h++) {
			if (!name_eq(req->hdrs[h].name, req->hdrs[h].name_len, name, nl))
				continue;
			if (found)
				wbuf_u8(out, ',');
			put_trimmed(out, req->hdrs[h].value, req->hdrs[h].value_len);
			found = true;
		}
		if (!found)
			return -SILT_EINVAL;
		wbuf_u8(out, '\n');
		i = e + 1;
		if (!semi)
			break;
		if (i == shn) /* trailing ';' */
			return -SILT_EINVAL;
	}
	wbuf_u8(out, '\n');
	wbuf_put(out, signed_headers, shn);
	wbuf_u8(out, '\n');
	wbuf_put(out, payload_hash, payload_hash_len);
	return out->err ? -SILT_ETOOBIG : 0;
}

int s3_auth_canonical_request(const struct s3_auth_req *req, const char *signed_headers,
			      size_t shn, const char *skip_query_param, const char *payload_hash,
			      size_t payload_hash_len, struct wbuf *out)
{
	return canonical_request(req, signed_headers, shn, skip_query_param, payload_hash,
				 payload_hash_len, false, out);
}

/* Whether the canonical URI differs from the path as received, i.e. the
 * client might have signed a spelling we re-encoded (lower-case escapes,
 * raw bytes outside the unreserved set). */
static bool path_not_canonical(const struct s3_auth_req *req)
{
	struct wbuf w;
	wbuf_init(&w, req->path_len + 16, CANON_MAX);
	canonical_uri(&w, req->path, req->path_len);
	bool differs = w.err || w.len != req->path_len || memcmp(w.p, req->path, w.len) != 0;
	wbuf_destroy(&w);
	return differs;
}

/* ------------------------------------------------------------------ */
/* Crypto                                                             */

/* OpenSSL 3's one-shot HMAC() and EVP_Digest(EVP_sha256()) look the
 * algorithm up in the provider store on every call (a global rwlock both
 * loop threads take per request, and a dozen small allocations), and even a
 * kept EVP_MD_CTX frees and allocates its provider context on every
 * EVP_DigestInit_ex (OpenSSL 3.0). Every request hashes its canonical
 * request and runs an HMAC, so SHA-256 is taken from the low-level
 * SHA256_* functions instead: a context on the stack, no allocation, no
 * lock. The HMAC is built on it (RFC 2104: H(K^opad || H(K^ipad || m))).
 * Hashing public bytes (a canonical request) leaves nothing to wipe. */
static void sha256_2(const void *a, size_t an, const void *b, size_t bn, uint8_t out[32])
{
	SHA256_CTX c;
	if (!SHA256_Init(&c) || !SHA256_Update(&c, a, an) || (bn && !SHA256_Update(&c, b, bn)) ||
	    !SHA256_Final(out, &c))
		abort();
}

/* The signing-key cache keeps keys as s3_hmac_key (auth.h). */
void s3_hmac_key_init(struct s3_hmac_key *hk, const void *key, size_t klen)
{
	uint8_t k[64] = { 0 }, pad[64];
	if (klen > sizeof(k)) {
		SHA256_CTX c;
		if (!SHA256_Init(&c) || !SHA256_Update(&c, key, klen) || !SHA256_Final(k, &c))
			abort();
		OPENSSL_cleanse(&c, sizeof(c));
	} else {
		memcpy(k, key, klen);
	}
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = k[i] ^ 0x36;
	if (!SHA256_Init(&hk->in) || !SHA256_Update(&hk->in, pad, sizeof(pad)))
		abort();
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = k[i] ^ 0x5c;
	if (!SHA256_Init(&hk->out) || !SHA256_Update(&hk->out, pad, sizeof(pad)))
		abort();
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(pad, sizeof(pad));
}

/* The copies on the stack hold what the key cache holds anyway. */
static void hmac_with(const struct s3_hmac_key *hk, const void *msg, size_t mlen, uint8_t out[32])
{
	uint8_t inner[32];
	SHA256_CTX c = hk->in;
	if (!SHA256_Update(&c, msg, mlen) || !SHA256_Final(inner, &c))
		abort();
	c = hk->out;
	if (!SHA256_Update(&c, inner, sizeof(inner)) || !SHA256_Final(out, &c))
		abort();
}

/* The canonical request of a verification is built in a buffer each thread
 * keeps (a malloc and free per request otherwise); one that grew past
 * CANON_KEEP for a large request is given back. */
#define CANON_KEEP (16 * 1024)
static pthread_once_t canon_once = PTHREAD_ONCE_INIT;
static pthread_key_t canon_key;

static void canon_buf_free(void *p)
{
	struct wbuf *w = p;
	wbuf_destroy(w);
	free(w);
}

static void canon_init(void)
{
	if (pthread_key_create(&canon_key, canon_buf_free) != 0)
		abort();
}

static struct wbuf *canon_get(void)
{
	pthread_once(&canon_once, canon_init);
	struct wbuf *w = pthread_getspecific(canon_key);
	if (!w) {
		w = xmalloc(sizeof(*w));
		wbuf_init(w, 1024, CANON_MAX);
		if (pthread_setspecific(canon_key, w) != 0)
			abort();
	}
	wbuf_reset(w);
	return w;
}

static void canon_put(struct wbuf *w)
{
	if (w->cap > CANON_KEEP) {
		wbuf_destroy(w);
		wbuf_init(w, 1024, CANON_MAX);
	}
}

static void sha256(const void *p, size_t n, uint8_t out[32])
{
	sha256_2(p, n, NULL, 0, out);
}

static void hmac(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32])
{
	struct s3_hmac_key hk;
	s3_hmac_key_init(&hk, key, klen);
	hmac_with(&hk, msg, mlen, out);
	OPENSSL_cleanse(&hk, sizeof(hk));
}

void s3_auth_signing_key(const char *secret, size_t secret_len, const char *date8,
			 const char *region, size_t region_len, uint8_t key[32])
{
	uint8_t k[32];
	size_t n = 4 + secret_len;
	char *seed = xmalloc(n);
	memcpy(seed, "AWS4", 4);
	memcpy(seed + 4, secret, secret_len);
	hmac(seed, n, date8, 8, k);
	OPENSSL_cleanse(seed, n);
	free(seed);
	hmac(k, 32, region, region_len, k);
	hmac(k, 32, "s3", 2, k);
	hmac(k, 32, "aws4_request", 12, key);
	OPENSSL_cleanse(k, sizeof(k));
}

static void sign_sts(const uint8_t key[32], const char *sts, size_t n, char sig[65])
{
	uint8_t mac[32];
	hmac(key, 32, sts, n, mac);
	s3_hex_encode(mac, 32, sig);
}

/* The signature as the 32-byte MAC; s3_auth_sign_canonical_with hex-encodes it. */
static void sign_canonical_mac(const struct s3_hmac_key *hk, const char *amz_date, const char *scope,
			       const void *canonical, size_t canonical_len, uint8_t mac[32])
{
	uint8_t h[32];
	char hex[65], sts[256 + S3_AUTH_SCOPE_MAX];
	sha256(canonical, canonical_len, h);
	s3_hex_encode(h, 32, hex);
	/* ALGO "\n" amz_date "\n" scope "\n" hex, without printf: this is on
	 * every request. Inputs longer than their caps are cut, as the
	 * bounded snprintf this replaces would have cut the whole. */
	size_t al = sizeof(ALGO) - 1, dl = strnlen(amz_date, 64), sl = strnlen(scope, S3_AUTH_SCOPE_MAX);
	size_t n = 0;
	memcpy(sts, ALGO "\n", al + 1);
	n += al + 1;
	memcpy(sts + n, amz_date, dl);
	n += dl;
	sts[n++] = '\n';
	memcpy(sts + n, scope, sl);
	n += sl;
	sts[n++] = '\n';
	memcpy(sts + n, hex, 64);
	n += 64;
	hmac_with(hk, sts, n, mac);
}

void s3_auth_sign_canonical_with(const struct s3_hmac_key *hk, const char *amz_date, const char *scope,
				 const void *canonical, size_t canonical_len, char sig[65])
{
	uint8_t mac[32];
	sign_canonical_mac(hk, amz_date, scope, canonical, canonical_len, mac);
	s3_hex_encode(mac, 32, sig);
}

void s3_auth_sign_canonical(const uint8_t key[32], const char *amz_date, const char *scope,
			    const void *canonical, size_t canonical_len, char sig[65])
{
	struct s3_hmac_key hk;
	s3_hmac_key_init(&hk, key, 32);
	s3_auth_sign_canonical_with(&hk, amz_date, scope, canonical, canonical_len, sig);
	OPENSSL_cleanse(&hk, sizeof(hk));
}

void s3_auth_chunk_signature(const uint8_t key[32], const char *amz_date, const char *scope,
			     const char *prev_sig, const uint8_t chunk_sha256[32], char sig[65])
{
	char hex[65], sts[512 + S3_AUTH_SCOPE_MAX];
	s3_hex_encode(chunk_sha256, 32, hex);
	int n = snprintf(sts, sizeof(sts), ALGO "-PAYLOAD\n%s\n%s\n%s\n" EMPTY_SHA256 "\n%s",
			 amz_date, scope, prev_sig, hex);
	sign_sts(key, sts, (size_t)n, sig);
}

void s3_auth_trailer_signature(const uint8_t key[32], const char *amz_date, const char *scope,
			       const char *prev_sig, const uint8_t trailers_sha256[32],
			       char sig[65])
{
	char hex[65], sts[512 + S3_AUTH_SCOPE_MAX];
	s3_hex_encode(trailers_sha256, 32, hex);
	int n = snprintf(sts, sizeof(sts), ALGO "-TRAILER\n%s\n%s\n%s\n%s", amz_date, scope,
			 prev_sig, hex);
	sign_sts(key, sts, (size_t)n, sig);
}

/* ------------------------------------------------------------------ */
/* Time                                                               */

static bool digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static int tm_to_epoch(struct tm *tm, int64_t *out)
{
	if (tm->tm_mon < 0 || tm->tm_mon > 11 || tm->tm_mday < 1 || tm->tm_mday > 31 ||
	    tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60 || tm->tm_year < 70 ||
	    tm->tm_year > 8000)
		return -SILT_EINVAL;
	*out = epoch_from_civil(tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday, tm->tm_hour, tm->tm_min,
				tm->tm_sec);
	return 0;
}

int s3_auth_parse_time(const char *s, size_t n, bool iso, int64_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (iso) {
		int y, mo, d, h, mi, se;
		if (n != 16 || s[8] != 'T' || s[15] != 'Z' || !digits(s, 4, &y) ||
		    !digits(s + 4, 2, &mo) || !digits(s + 6, 2, &d) || !digits(s + 9, 2, &h) ||
		    !digits(s + 11, 2, &mi) || !digits(s + 13, 2, &se))
			return -SILT_EINVAL;
		tm.tm_year = y - 1900;
		tm.tm_mon = mo - 1;
		tm.tm_mday = d;
		tm.tm_hour = h;
		tm.tm_min = mi;
		tm.tm_sec = se;
		return tm_to_epoch(&tm, out);
	}
	/* RFC 7231 IMF-fixdate, the only form clients send for SigV4. */
	static const char *const mons[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	int d, y, h, mi, se;
	if (n != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
	    s[16] != ' ' || s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0 ||
	    !digits(s + 5, 2, &d) || !digits(s + 12, 4, &y) || !digits(s + 17, 2, &h) ||
	    !digits(s + 20, 2, &mi) || !digits(s + 23, 2, &se))
		return -SILT_EINVAL;
	tm.tm_mon = -1;
	for (int i = 0; i < 12; i++)
		if (memcmp(s + 8, mons[i], 3) == 0)
			tm.tm_mon = i;
	tm.tm_year = y - 1900;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	return tm_to_epoch(&tm, out);
}

void s3_auth_format_time(int64_t t, char out[17])
{
	struct civil_time c;
	civil_from_epoch(t, &c);
	int v[6] = { c.year < 0 ? 0 : c.year > 9999 ? 9999 : c.year, c.month, c.day, c.hour, c.min, c.sec };
	static const int width[6] = { 4, 2, 2, 2, 2, 2 };
	char *p = out;
	for (int i = 0; i < 6; i++) {
		if (i == 3)
			*p++ = 'T';
		for (int k = width[i] - 1, x = v[i]; k >= 0; k--, x /= 10)
			p[k] = (char)('0' + x % 10);
		p += width[i];
	}
	*p++ = 'Z';
	*p = '\0';
}

/* ------------------------------------------------------------------ */
/* Authorization header                                               */

/* `AKID/yyyymmdd/region/service/aws4_request`, split from the right so the
 * four scope parts are exact and anything before them is the key id. */
static int parse_credential(const char *s, size_t n, struct s3_auth_hdr *h)
{
	const char *parts[5];
	size_t lens[5];
	size_t end = n;
	for (int k = 4; k >= 1; k--) {
		size_t i = end;
		while (i > 0 && s[i - 1] != '/')
			i--;
		if (i == 0)
			return -SILT_EINVAL;
		parts[k] = s + i;
		lens[k] = end - i;
		end = i - 1;
	}
	parts[0] = s;
	lens[0] = end;
	for (int k = 0; k < 5; k++)
		if (lens[k] == 0)
			return -SILT_EINVAL;
	h->akid = parts[0], h->akid_len = lens[0];
	h->date = parts[1], h->date_len = lens[1];
	h->region = parts[2], h->region_len = lens[2];
	h->service = parts[3], h->service_len = lens[3];
	h->term = parts[4], h->term_len = lens[4];
	return 0;
}

int s3_auth_parse_header(const char *v, size_t n, struct s3_auth_hdr *out)
{
	memset(out, 0, sizeof(*out));
	trim_view(&v, &n);
	size_t al = strlen(ALGO);
	if (n < al || memcmp(v, ALGO, al) != 0 || (n > al && !is_ws(v[al])))
		return -SILT_ENOENT;
	const char *p = v + al, *end = v + n;
	bool have_cred = false;
	while (p < end) {
		while (p < end && (is_ws(*p) || *p == ','))
			p++;
		if (p == end)
			break;
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *e = comma ? comma : end;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		if (!eq)
			return -SILT_EINVAL;
		const char *key = p, *val = eq + 1;
		size_t kl = (size_t)(eq - p), vl = (size_t)(e - val);
		trim_view(&key, &kl);
		trim_view(&val, &vl);
		if (vl == 0)
			return -SILT_EINVAL;
		if (kl == 10 && memcmp(key, "Credential", 10) == 0) {
			if (have_cred || parse_credential(val, vl, out) < 0)
				return -SILT_EINVAL;
			have_cred = true;
		} else if (kl == 13 && memcmp(key, "SignedHeaders", 13) == 0) {
			if (out->signed_headers)
				return -SILT_EINVAL;
			out->signed_headers = val;
			out->signed_headers_len = vl;
		} else if (kl == 9 && memcmp(key, "Signature", 9) == 0) {
			if (out->signature)
				return -SILT_EINVAL;
			out->signature = val;
			out->signature_len = vl;
		} else {
			return -SILT_EINVAL;
		}
		p = e;
	}
	if (!have_cred || !out->signed_headers || !out->signature)
		return -SILT_EINVAL;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Verification                                                       */

struct key_slot {
	bool used;
	char secret[S3_AUTH_MAX_SECRET];
	size_t secret_len;
	char date[9];
	char region[S3_AUTH_MAX_REGION + 1];
	uint8_t key[32];
	struct s3_hmac_key hk; /* key, made ready */
};

struct s3_auth_ctx {
	s3_secret_fn lookup;
	void *arg;
	int64_t max_skew;
	/* The loop threads share one context: slot reads and the slot a
	 * miss fills are under mu (a short scan; misses are once a day). */
	pthread_mutex_t mu;
	unsigned next_slot;
	struct key_slot slots[KEY_CACHE_SLOTS];
};

struct s3_auth_ctx *s3_auth_ctx_new(s3_secret_fn lookup, void *arg, int64_t max_skew_s)
{
	struct s3_auth_ctx *c = xcalloc(1, sizeof(*c));
	c->lookup = lookup;
	c->arg = arg;
	c->max_skew = max_skew_s > 0 ? max_skew_s : 900;
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

void s3_auth_ctx_free(struct s3_auth_ctx *ctx)
{
	if (!ctx)
		return;
	pthread_mutex_destroy(&ctx->mu);
	OPENSSL_cleanse(ctx, sizeof(*ctx));
	free(ctx);
}

/* A signing key changes once a day per (secret, region), while every
 * request needs one: four HMACs saved per request on a warm cache. */
static void cached_key(struct s3_auth_ctx *ctx, const char *secret, size_t sl,
		       const char *date, const char *region, uint8_t key[32], struct s3_hmac_key *hk)
{
	size_t rl = strlen(region);
	pthread_mutex_lock(&ctx->mu);
	for (int i = 0; i < KEY_CACHE_SLOTS; i++) {
		struct key_slot *s = &ctx->slots[i];
		if (s->used && s->secret_len == sl && memcmp(s->secret, secret, sl) == 0 &&
		    memcmp(s->date, date, 8) == 0 && strcmp(s->region, region) == 0) {
			memcpy(key, s->key, 32);
			*hk = s->hk;
			pthread_mutex_unlock(&ctx->mu);
			return;
		}
	}
	s3_auth_signing_key(secret, sl, date, region, rl, key);
	s3_hmac_key_init(hk, key, 32);
	if (sl <= sizeof(ctx->slots[0].secret)) {
		struct key_slot *s = &ctx->slots[ctx->next_slot++ % KEY_CACHE_SLOTS];
		s->used = true;
		memcpy(s->secret, secret, sl);
		s->secret_len = sl;
		memcpy(s->date, date, 8);
		s->date[8] = '\0';
		memcpy(s->region, region, rl + 1);
		memcpy(s->key, key, 32);
		s->hk = *hk;
	}
	pthread_mutex_unlock(&ctx->mu);
}

static enum s3_auth_err fail(struct s3_auth_result *res, enum s3_auth_err e, const char *why)
{
	res->err = e;
	res->detail = why;
	return e;
}

/* Without a branch per character (see unreserved). */
static bool is_lower_hex(const char *s, size_t n, size_t want)
{
	if (n != want)
		return false;
	bool ok = true;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];
		ok &= ((unsigned)(c - '0') < 10) | ((unsigned)(c - 'a') < 6);
	}
	return ok;
}

/* Maps x-amz-content-sha256 to a payload mode. */
static int parse_payload(const char *v, size_t n, struct s3_auth_result *res)
{
	static const struct {
		const char *s;
		enum s3_payload_mode m;
	} modes[] = {
		{ "UNSIGNED-PAYLOAD", S3_PAYLOAD_UNSIGNED },
		{ "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", S3_PAYLOAD_STREAMING_SIGNED },
		{ "STREAMING-UNSIGNED-PAYLOAD-TRAILER", S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER },
		{ "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", S3_PAYLOAD_STREAMING_SIGNED_TRAILER },
	};
	for (size_t i = 0; i < SILT_ARRAY_LEN(modes); i++) {
		if (n == strlen(modes[i].s) && memcmp(v, modes[i].s, n) == 0) {
			res->payload = modes[i].m;
			return 0;
		}
	}
	if (s3_hex_decode(v, n, res->payload_sha256, 32) == 0) {
		res->payload = S3_PAYLOAD_SHA256;
		return 0;
	}
	return -SILT_EINVAL;
}

/* The headers verification reads: the first of each name, as a lookup by
 * name would find it, all found in one pass over the request's headers. */
struct auth_hdrs {
	const struct s3_hdr *authorization, *amz_date, *date, *content_sha256, *decoded_length;
};

static void auth_hdrs_find(const struct s3_auth_req *req, struct auth_hdrs *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < req->nhdrs; i++) {
		const struct s3_hdr *h = &req->hdrs[i];
		const struct s3_hdr **slot = NULL;
		const char *want = NULL;
		switch (h->name_len) {
		case 4:
			slot = &out->date, want = "date";
			break;
		case 10:
			slot = &out->amz_date, want = "x-amz-date";
			break;
		case 13:
			slot = &out->authorization, want = "authorization";
			break;
		case 20:
			slot = &out->content_sha256, want = "x-amz-content-sha256";
			break;
		case 28:
			slot = &out->decoded_length, want = "x-amz-decoded-content-length";
			break;
		default:
			continue;
		}
		if (!*slot && name_eq(h->name, h->name_len, want, h->name_len))
			*slot = h;
	}
}

static int parse_decoded_length(const struct auth_hdrs *hs, struct s3_auth_result *res)
{
	const struct s3_hdr *h = hs->decoded_length;
	res->decoded_length = -1;
	if (!h)
		return 0;
	const char *v = h->value;
	size_t n = h->value_len;
	trim_view(&v, &n);
	if (n == 0 || n > 15)
		return -SILT_EINVAL;
	int64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -SILT_EINVAL;
		x = x * 10 + (v[i] - '0');
	}
	res->decoded_length = x;
	return 0;
}

/* Checks the credential scope and copies key id, region and scope into res. */
static enum s3_auth_err take_scope(const struct s3_auth_hdr *h, struct s3_auth_result *res,
				   enum s3_auth_err bad)
{
	int dummy;
	if (h->service_len != 2 || memcmp(h->service, "s3", 2) != 0)
		return fail(res, bad, "credential service is not s3");
	if (h->term_len != 12 || memcmp(h->term, "aws4_request", 12) != 0)
		return fail(res, bad, "credential does not end in aws4_request");
	if (h->date_len != 8 || !digits(h->date, 8, &dummy))
		return fail(res, bad, "credential date is not yyyymmdd");
	if (h->akid_len > S3_AUTH_MAX_AKID || h->region_len > S3_AUTH_MAX_REGION)
		return fail(res, bad, "credential too long");
	for (size_t i = 0; i < h->akid_len; i++)
		if ((uint8_t)h->akid[i] <= ' ' || h->akid[i] == 0x7f)
			return fail(res, bad, "bad character in access key");
	for (size_t i = 0; i < h->region_len; i++)
		if ((uint8_t)h->region[i] <= ' ' || h->region[i] == 0x7f)
			return fail(res, bad, "bad character in region");
	memcpy(res->access_key, h->akid, h->akid_len);
	res->access_key[h->akid_len] = '\0';
	memcpy(res->region, h->region, h->region_len);
	res->region[h->region_len] = '\0';
	/* "<date8>/<region>/s3/aws4_request", built without printf (every
	 * request passes here); S3_AUTH_SCOPE_MAX has room for the longest
	 * region, which was checked above. */
	char *sc = res->scope;
	memcpy(sc, h->date, 8);
	sc[8] = '/';
	memcpy(sc + 9, res->region, h->region_len);
	memcpy(sc + 9 + h->region_len, "/s3/aws4_request", 17);
	return S3_AUTH_OK;
}

/* Shared tail of both schemes: secret, key, canonical request, compare. */
static enum s3_auth_err check_signature(struct s3_auth_ctx *ctx, const struct s3_auth_req *req,
					const struct s3_auth_hdr *h, const char *skip,
					const char *payload, size_t payload_len,
					struct s3_auth_result *res)
{
	char secret[S3_AUTH_MAX_SECRET];
	int sl = ctx->lookup(ctx->arg, res->access_key, secret, sizeof(secret));
	if (sl < 0 || (size_t)sl > sizeof(secret))
		return fail(res, S3_AUTH_INVALID_ACCESS_KEY,
			    "The AWS Access Key Id you provided does not exist in our records.");
	struct s3_hmac_key hk;
	cached_key(ctx, secret, (size_t)sl, h->date, res->region, res->signing_key, &hk);
	OPENSSL_cleanse(secret, sizeof(secret));

	/* The MACs are compared, not their hex: both callers checked that the
	 * client's signature is 64 lower-case hex digits, so on a match it is
	 * also the hex of ours (the seed of chunk signatures). */
	uint8_t want[32], mac[32];
	if (h->signature_len != 64 || s3_hex_decode(h->signature, 64, want, sizeof(want)) != 0)
		return fail(res, S3_AUTH_SIGNATURE_MISMATCH,
			    "The request signature we calculated does not match the signature you provided.");

	/* S3 clients sign the path the way they sent it, and nearly all of
	 * them send it canonically encoded, so the canonical form is tried
	 * first; a client that signed another spelling (lower-case escapes,
	 * raw UTF-8 or '+') gets a second try with the path verbatim. */
	bool match = false;
	int rc = 0;
	for (int verbatim = 0; verbatim < 2 && !match; verbatim++) {
		if (verbatim && !path_not_canonical(req))
			break;
		struct wbuf *canon = canon_get();
		rc = canonical_request(req, h->signed_headers, h->signed_headers_len, skip, payload,
				       payload_len, verbatim, canon);
		if (rc == 0)
			sign_canonical_mac(&hk, res->amz_date, res->scope, canon->p, canon->len, mac);
		canon_put(canon);
		if (rc < 0)
			break;
		match = CRYPTO_memcmp(mac, want, sizeof(mac)) == 0;
	}
	if (rc == -SILT_ETOOBIG)
		return fail(res, S3_AUTH_INVALID_REQUEST, "request too large to canonicalise");
	if (rc < 0)
		return fail(res, S3_AUTH_SIGNATURE_MISMATCH, "a signed header is missing");
	if (!match)
		return fail(res, S3_AUTH_SIGNATURE_MISMATCH,
			    "The request signature we calculated does not match the signature you provided.");
	memcpy(res->seed_sig, h->signature, 64);
	res->seed_sig[64] = '\0';
	res->err = S3_AUTH_OK;
	res->detail = "";
	return S3_AUTH_OK;
}

static bool signs_host(const char *sh, size_t n)
{
	for (size_t i = 0; i < n;) {
		const char *semi = memchr(sh + i, ';', n - i);
		size_t e = semi ? (size_t)(semi - sh) : n;
		if (e - i == 4 && strncasecmp(sh + i, "host", 4) == 0)
			return true;
		i = e + 1;
	}
	return false;
}

static enum s3_auth_err verify_header(struct s3_auth_ctx *ctx, const struct s3_auth_req *req,
				      const struct auth_hdrs *hs, struct s3_auth_result *res)
{
	struct s3_auth_hdr h;
	const struct s3_hdr *auth = hs->authorization;
	int rc = s3_auth_parse_header(auth->value, auth->value_len, &h);
	if (rc == -SILT_ENOENT)
		return fail(res, S3_AUTH_INVALID_REQUEST,
			    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.");
	if (rc < 0)
		return fail(res, S3_AUTH_HEADER_MALFORMED, "The authorization header is malformed.");
	if (take_scope(&h, res, S3_AUTH_HEADER_MALFORMED) != S3_AUTH_OK)
		return res->err;
	if (!signs_host(h.signed_headers, h.signed_headers_len))
		return fail(res, S3_AUTH_HEADER_MALFORMED, "host must be a signed header");
	if (!is_lower_hex(h.signature, h.signature_len, 64))
		return fail(res, S3_AUTH_HEADER_MALFORMED, "signature is not 64 hex digits");

	int64_t t;
	const struct s3_hdr *d = hs->amz_date;
	const char *dv;
	size_t dn;
	if (d) {
		dv = d->value, dn = d->value_len;
		trim_view(&dv, &dn);
		rc = s3_auth_parse_time(dv, dn, true, &t);
	} else if ((d = hs->date) != NULL) {
		dv = d->value, dn = d->value_len;
		trim_view(&dv, &dn);
		rc = s3_auth_parse_time(dv, dn, false, &t);
	} else {
		return fail(res, S3_AUTH_ACCESS_DENIED,
			    "AWS authentication requires a valid Date or x-amz-date header");
	}
	if (rc < 0)
		return fail(res, S3_AUTH_ACCESS_DENIED,
			    "AWS authentication requires a valid Date or x-amz-date header");
	s3_auth_format_time(t, res->amz_date);
	if (memcmp(res->amz_date, h.date, 8) != 0)
		return fail(res, S3_AUTH_HEADER_MALFORMED,
			    "Invalid credential date. Date is not the same as X-Amz-Date.");

	const struct s3_hdr *ph = hs->content_sha256;
	if (!ph)
		return fail(res, S3_AUTH_INVALID_REQUEST,
			    "Missing required header for this request: x-amz-content-sha256");
	const char *pv = ph->value;
	size_t pn = ph->value_len;
	trim_view(&pv, &pn);
	if (parse_payload(pv, pn, res) < 0)
		return fail(res, S3_AUTH_INVALID_ARGUMENT,
			    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING- mode or a valid sha256 value.");
	if (parse_decoded_length(hs, res) < 0)
		return fail(res, S3_AUTH_INVALID_ARGUMENT, "invalid x-amz-decoded-content-length");

	if (t > req->now + ctx->max_skew || t < req->now - ctx->max_skew)
		return fail(res, S3_AUTH_TIME_SKEWED,
			    "The difference between the request time and the current time is too large.");
	return check_signature(ctx, req, &h, NULL, pv, pn, res);
}

static enum s3_auth_err verify_presigned(struct s3_auth_ctx *ctx, const struct s3_auth_req *req,
					 const struct auth_hdrs *hs, struct s3_auth_result *res)
{
	/* Decoded query values live here for the duration of the check; the
	 * credential view points into cred[]. */
	char algo[32], cred[S3_AUTH_MAX_AKID + S3_AUTH_MAX_REGION + 40], date[32], exp[16];
	char sh[1024], sig[80], payload[80];
	res->presigned = true;
	res->payload = S3_PAYLOAD_UNSIGNED;
	ssize_t an = query_get(req->query, req->query_len, "X-Amz-Algorithm", algo, sizeof(algo));
	if (an != (ssize_t)strlen(ALGO) || memcmp(algo, ALGO, (size_t)an) != 0)
		return fail(res, S3_AUTH_QUERY_MALFORMED,
			    "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
	ssize_t cn = query_get(req->query, req->query_len, "X-Amz-Credential", cred, sizeof(cred));
	ssize_t dn = query_get(req->query, req->query_len, "X-Amz-Date", date, sizeof(date));
	ssize_t en = query_get(req->query, req->query_len, "X-Amz-Expires", exp, sizeof(exp));
	ssize_t hn = query_get(req->query, req->query_len, "X-Amz-SignedHeaders", sh, sizeof(sh));
	ssize_t sn = query_get(req->query, req->query_len, "X-Amz-Signature", sig, sizeof(sig));
	if (cn <= 0 || dn <= 0 || en <= 0 || hn <= 0 || sn <= 0)
		return fail(res, S3_AUTH_QUERY_MALFORMED,
			    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
	struct s3_auth_hdr h;
	memset(&h, 0, sizeof(h));
	if (parse_credential(cred, (size_t)cn, &h) < 0)
		return fail(res, S3_AUTH_QUERY_MALFORMED, "Error parsing the X-Amz-Credential parameter");
	if (take_scope(&h, res, S3_AUTH_QUERY_MALFORMED) != S3_AUTH_OK)
		return res->err;
	h.signed_headers = sh, h.signed_headers_len = (size_t)hn;
	h.signature = sig, h.signature_len = (size_t)sn;
	if (!signs_host(sh, (size_t)hn))
		return fail(res, S3_AUTH_QUERY_MALFORMED, "host must be a signed header");
	if (!is_lower_hex(sig, (size_t)sn, 64))
		return fail(res, S3_AUTH_QUERY_MALFORMED, "X-Amz-Signature is not 64 hex digits");

	int64_t t, expires;
	if (s3_auth_parse_time(date, (size_t)dn, true, &t) < 0)
		return fail(res, S3_AUTH_QUERY_MALFORMED, "X-Amz-Date must be in the ISO8601 Long Format");
	int e32;
	if (en > 7 || !digits(exp, (size_t)en, &e32))
		return fail(res, S3_AUTH_QUERY_MALFORMED, "X-Amz-Expires should be a number");
	expires = e32;
	if (expires > PRESIGN_MAX_EXPIRES)
		return fail(res, S3_AUTH_QUERY_MALFORMED,
			    "X-Amz-Expires must be less than a week (in seconds) that is 604800");
	s3_auth_format_time(t, res->amz_date);
	if (memcmp(res->amz_date, h.date, 8) != 0)
		return fail(res, S3_AUTH_QUERY_MALFORMED,
			    "Invalid credential date. Date is not the same as X-Amz-Date.");

	/* Presigned URLs sign UNSIGNED-PAYLOAD unless the URL itself carries a
	 * body hash. */
	const char *pv = "UNSIGNED-PAYLOAD";
	size_t pn = strlen(pv);
	ssize_t qn = query_get(req->query, req->query_len, "X-Amz-Content-Sha256", payload,
			       sizeof(payload));
	if (qn >= 0) {
		pv = payload, pn = (size_t)qn;
		if (parse_payload(pv, pn, res) < 0 || s3_payload_is_chunked(res->payload))
			return fail(res, S3_AUTH_INVALID_ARGUMENT, "invalid X-Amz-Content-Sha256");
	}
	if (parse_decoded_length(hs, res) < 0)
		return fail(res, S3_AUTH_INVALID_ARGUMENT, "invalid x-amz-decoded-content-length");

	if (req->now < t - ctx->max_skew)
		return fail(res, S3_AUTH_ACCESS_DENIED, "Request is not valid yet");
	if (req->now > t + expires)
		return fail(res, S3_AUTH_EXPIRED, "Request has expired");
	return check_signature(ctx, req, &h, "X-Amz-Signature", pv, pn, res);
}

static bool query_has(const struct s3_auth_req *req, const char *name)
{
	char tmp[1];
	return query_get(req->query, req->query_len, name, tmp, 0) != -1;
}

enum s3_auth_err s3_auth_verify(struct s3_auth_ctx *ctx, const struct s3_auth_req *req,
				struct s3_auth_result *res)
{
	memset(res, 0, sizeof(*res));
	res->decoded_length = -1;
	res->payload = S3_PAYLOAD_UNSIGNED;
	struct auth_hdrs hs;
	auth_hdrs_find(req, &hs);
	const struct s3_hdr *auth = hs.authorization;
	bool pre = query_has(req, "X-Amz-Algorithm") || query_has(req, "X-Amz-Credential") ||
		   query_has(req, "X-Amz-Signature");
	if (auth && pre)
		return fail(res, S3_AUTH_INVALID_ARGUMENT,
			    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified");
	if (auth)
		return verify_header(ctx, req, &hs, res);
	if (pre)
		return verify_presigned(ctx, req, &hs, res);
	if (query_has(req, "AWSAccessKeyId") || query_has(req, "Signature"))
		return fail(res, S3_AUTH_INVALID_REQUEST,
			    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.");
	return fail(res, S3_AUTH_ANONYMOUS, "Anonymous access is forbidden for this operation");
}

/* ------------------------------------------------------------------ */
/* Client side                                                        */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lower-cased, sorted, de-duplicated `a;b;c` of the request's headers. */
static int signed_header_list(const struct s3_sign_req *r, struct wbuf *out)
{
	if (r->nhdrs == 0 || r->nhdrs > MAX_SIGNED_HEADERS)
		return -SILT_EINVAL;
	char **names = xcalloc(r->nhdrs, sizeof(char *));
	for (size_t i = 0; i < r->nhdrs; i++) {
		names[i] = xstrndup(r->hdrs[i].name, r->hdrs[i].name_len);
		for (char *c = names[i]; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c + 32);
	}
	qsort(names, r->nhdrs, sizeof(char *), cmp_str);
	for (size_t i = 0; i < r->nhdrs; i++) {
		if (i && strcmp(names[i], names[i - 1]) == 0)
			continue;
		if (i)
			wbuf_u8(out, ';');
		wbuf_put(out, names[i], strlen(names[i]));
	}
	for (size_t i = 0; i < r->nhdrs; i++)
		free(names[i]);
	free(names);
	return 0;
}

static int sign_common(const struct s3_sign_req *r, const char *query, const char *sh,
		       size_t shn, const char *payload, char sig[65], char scope[S3_AUTH_SCOPE_MAX])
{
	if (strlen(r->amz_date) != 16 || strlen(r->region) > S3_AUTH_MAX_REGION)
		return -SILT_EINVAL;
	struct s3_auth_req req = {
		.method = r->method,
		.path = r->path,
		.path_len = strlen(r->path),
		.query = query,
		.query_len = query ? strlen(query) : 0,
		.hdrs = r->hdrs,
		.nhdrs = r->nhdrs,
	};
	struct wbuf canon;
	wbuf_init(&canon, 1024, CANON_MAX);
	int rc = s3_auth_canonical_request(&req, sh, shn, NULL, payload, strlen(payload), &canon);
	if (rc == 0) {
		uint8_t key[32];
		snprintf(scope, S3_AUTH_SCOPE_MAX, "%.8s/%s/s3/aws4_request", r->amz_date, r->region);
		s3_auth_signing_key(r->secret, strlen(r->secret), r->amz_date, r->region,
				    strlen(r->region), key);
		s3_auth_sign_canonical(key, r->amz_date, scope, canon.p, canon.len, sig);
		OPENSSL_cleanse(key, sizeof(key));
	}
	wbuf_destroy(&canon);
	return rc;
}

int s3_auth_sign(const struct s3_sign_req *r, struct wbuf *auth, char sig_out[65])
{
	struct wbuf sh;
	char sig[65], scope[S3_AUTH_SCOPE_MAX];
	wbuf_init(&sh, 256, 0);
	int rc = signed_header_list(r, &sh);
	if (rc < 0)
		goto out;
	rc = sign_common(r, r->query, (const char *)sh.p, sh.len,
			 r->payload_hash ? r->payload_hash : "UNSIGNED-PAYLOAD", sig, scope);
	if (rc < 0)
		goto out;
	if (auth) {
		wbuf_put(auth, ALGO " Credential=", strlen(ALGO) + 12);
		wbuf_put(auth, r->access_key, strlen(r->access_key));
		wbuf_u8(auth, '/');
		wbuf_put(auth, scope, strlen(scope));
		wbuf_put(auth, ", SignedHeaders=", 16);
		wbuf_put(auth, sh.p, sh.len);
		wbuf_put(auth, ", Signature=", 12);
		wbuf_put(auth, sig, 64);
		wbuf_u8(auth, 0);
		auth->len--; /* NUL present but not counted */
		rc = auth->err ? -SILT_ETOOBIG : 0;
	}
	if (sig_out)
		memcpy(sig_out, sig, 65);
out:
	wbuf_destroy(&sh);
	return rc;
}

int s3_auth_presign(const struct s3_sign_req *r, int64_t expires_s, struct wbuf *query,
		    char sig_out[65])
{
	struct wbuf sh, q;
	char sig[65], scope[S3_AUTH_SCOPE_MAX], num[24];
	if (expires_s < 1 || expires_s > PRESIGN_MAX_EXPIRES)
		return -SILT_EINVAL;
	wbuf_init(&sh, 256, 0);
	wbuf_init(&q, 512, 0);
	int rc = signed_header_list(r, &sh);
	if (rc < 0)
		goto out;
	if (r->query && *r->query) {
		wbuf_put(&q, r->query, strlen(r->query));
		wbuf_u8(&q, '&');
	}
	snprintf(scope, sizeof(scope), "%.8s/%s/s3/aws4_request", r->amz_date, r->region);
	wbuf_put(&q, "X-Amz-Algorithm=" ALGO "&X-Amz-Credential=", 16 + strlen(ALGO) + 18);
	s3_url_encode_buf(&q, r->access_key, strlen(r->access_key), true);
	wbuf_put(&q, "%2F", 3);
	s3_url_encode_buf(&q, scope, strlen(scope), true);
	wbuf_put(&q, "&X-Amz-Date=", 12);
	wbuf_put(&q, r->amz_date, strlen(r->amz_date));
	snprintf(num, sizeof(num), "%" PRId64, expires_s);
	wbuf_put(&q, "&X-Amz-Expires=", 15);
	wbuf_put(&q, num, strlen(num));
	wbuf_put(&q, "&X-Amz-SignedHeaders=", 21);
	s3_url_encode_buf(&q, sh.p, sh.len, true);
	wbuf_u8(&q, 0);
	rc = sign_common(r, (const char *)q.p, (const char *)sh.p, sh.len, "UNSIGNED-PAYLOAD",
			 sig, scope);
	if (rc < 0)
		goto out;
	q.len--;
	wbuf_put(&q, "&X-Amz-Signature=", 17);
	wbuf_put(&q, sig, 64);
	wbuf_put(query, q.p, q.len);
	wbuf_u8(query, 0);
	query->len--;
	rc = query->err ? -SILT_ETOOBIG : 0;
	if (sig_out)
		memcpy(sig_out, sig, 65);
out:
	wbuf_destroy(&q);
	wbuf_destroy(&sh);
	return rc;
}
