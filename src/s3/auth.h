/* auth.h - AWS Signature Version 4 for S3: server-side verification of
 * Authorization-header and presigned-URL requests, and a client-side signer
 * (tests, `silt bench s3`).
 *
 * Everything here is pure: the caller hands in the request as received
 * (method, raw path, raw query, headers) and the current time, and gets a
 * verdict plus what the body decoder needs (payload mode, seed signature,
 * signing key). Secrets come from a lookup callback.
 *
 * The canonical request follows S3's rules (see shared/S3-NOTES.md): the
 * path is not normalised ("//" and "." stay), each byte of it is
 * URI-encoded once (an already-encoded path is decoded then re-encoded, so
 * both spellings verify, and an encoded "/" stays "%2F"; if that fails, the
 * path exactly as sent is tried, for clients that signed e.g. lower-case
 * escapes verbatim); query parameters
 * are decoded, re-encoded canonically and sorted by name then value; header
 * values are trimmed and inner whitespace runs collapse to one space.
 *
 * Threads: a struct s3_auth_ctx (its derived-key cache) belongs to one
 * loop thread; the callback is called on that thread. The other functions
 * are reentrant. */
#ifndef SILT_S3_AUTH_H
#define SILT_S3_AUTH_H

#include "core/platform.h"
#include "core/wbuf.h"

#include <openssl/sha.h>

/* Outcomes, each one S3 error code (s3_auth_err_code) and HTTP status. */
enum s3_auth_err {
	S3_AUTH_OK = 0,
	S3_AUTH_ANONYMOUS,            /* no credentials at all: the caller decides (AccessDenied) */
	S3_AUTH_ACCESS_DENIED,        /* AccessDenied 403 */
	S3_AUTH_EXPIRED,              /* AccessDenied 403 "Request has expired" */
	S3_AUTH_SIGNATURE_MISMATCH,   /* SignatureDoesNotMatch 403 */
	S3_AUTH_INVALID_ACCESS_KEY,   /* InvalidAccessKeyId 403 */
	S3_AUTH_HEADER_MALFORMED,     /* AuthorizationHeaderMalformed 400 */
	S3_AUTH_QUERY_MALFORMED,      /* AuthorizationQueryParametersError 400 */
	S3_AUTH_TIME_SKEWED,          /* RequestTimeTooSkewed 403 */
	S3_AUTH_MISSING_SECURITY_HDR, /* MissingSecurityHeader 400 (for the API layer; verify
				       * reports a missing date as AccessDenied, as S3 does) */
	S3_AUTH_INVALID_REQUEST,      /* InvalidRequest 400: SigV2, other algorithms */
	S3_AUTH_INVALID_ARGUMENT,     /* InvalidArgument 400: bad x-amz-content-sha256 etc. */
	S3_AUTH_CONTENT_SHA256_MISMATCH, /* XAmzContentSHA256Mismatch 400 (checked by the caller at body end) */
};

const char *s3_auth_err_code(enum s3_auth_err e);
int s3_auth_err_status(enum s3_auth_err e);

/* What x-amz-content-sha256 says about the body. */
enum s3_payload_mode {
	S3_PAYLOAD_SHA256 = 0,          /* hex SHA-256 of the body: verify at its end */
	S3_PAYLOAD_UNSIGNED,            /* UNSIGNED-PAYLOAD (and every presigned URL) */
	S3_PAYLOAD_STREAMING_SIGNED,    /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD */
	S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER, /* STREAMING-UNSIGNED-PAYLOAD-TRAILER */
	S3_PAYLOAD_STREAMING_SIGNED_TRAILER,   /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER */
};

/* True for the three aws-chunked modes. */
static inline bool s3_payload_is_chunked(enum s3_payload_mode m)
{
	return m >= S3_PAYLOAD_STREAMING_SIGNED;
}

/* One header as received; neither string is NUL-terminated. */
struct s3_hdr {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

struct s3_auth_req {
	const char *method;            /* "GET", NUL-terminated */
	const char *path;              /* raw request-target path, without '?' and query */
	size_t path_len;
	const char *query;             /* raw query after '?', may be NULL/empty */
	size_t query_len;
	const struct s3_hdr *hdrs;     /* all headers, Host included */
	size_t nhdrs;
	int64_t now;                   /* server clock, seconds since the epoch */
};

#define S3_AUTH_MAX_AKID 128
#define S3_AUTH_MAX_REGION 64
#define S3_AUTH_MAX_SECRET 256
#define S3_AUTH_SCOPE_MAX (8 + 1 + S3_AUTH_MAX_REGION + 1 + 2 + 1 + 12 + 1)

struct s3_auth_result {
	enum s3_auth_err err;
	const char *detail;            /* static human-readable reason for logs/Message */
	bool presigned;
	char access_key[S3_AUTH_MAX_AKID + 1];
	char region[S3_AUTH_MAX_REGION + 1];
	char amz_date[17];             /* 20130524T000000Z */
	char scope[S3_AUTH_SCOPE_MAX]; /* 20130524/us-east-1/s3/aws4_request */
	char seed_sig[65];             /* the request signature (hex) */
	uint8_t signing_key[32];       /* for chunk and trailer signatures */
	enum s3_payload_mode payload;
	uint8_t payload_sha256[32];    /* when payload == S3_PAYLOAD_SHA256 */
	int64_t decoded_length;        /* x-amz-decoded-content-length, -1 if absent */
};

/* Secret lookup: copy the secret for access key `akid` (NUL-terminated)
 * into secret (cap bytes) and return its length, or return -SILT_ENOENT. */
typedef int (*s3_secret_fn)(void *arg, const char *akid, char *secret, size_t cap);

struct s3_auth_ctx;

/* max_skew_s: allowed clock difference (0 = the S3 default, 900 s). */
struct s3_auth_ctx *s3_auth_ctx_new(s3_secret_fn lookup, void *arg, int64_t max_skew_s);
void s3_auth_ctx_free(struct s3_auth_ctx *ctx);

/* Verifies a request; fills *res (always) and returns res->err. */
enum s3_auth_err s3_auth_verify(struct s3_auth_ctx *ctx, const struct s3_auth_req *req,
				struct s3_auth_result *res);

/* ---- building blocks, exported for the chunk decoder, tests and fuzzers ---- */

/* A view into the Authorization header value. */
struct s3_auth_hdr {
	const char *akid, *date, *region, *service, *term;
	size_t akid_len, date_len, region_len, service_len, term_len;
	const char *signed_headers;
	size_t signed_headers_len;
	const char *signature;
	size_t signature_len;
};

/* Parses `AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..`.
 * 0, or -SILT_EINVAL (malformed) / -SILT_ENOENT (another scheme, e.g. SigV2). */
int s3_auth_parse_header(const char *v, size_t n, struct s3_auth_hdr *out);

/* Writes the canonical request. signed_headers is the `a;b;c` list as the
 * client sent it; skip_query_param (may be NULL) names a query parameter to
 * leave out (X-Amz-Signature when presigned). 0, or -SILT_EINVAL when a
 * signed header is missing from the request or the list is malformed. */
int s3_auth_canonical_request(const struct s3_auth_req *req, const char *signed_headers,
			      size_t signed_headers_len, const char *skip_query_param,
			      const char *payload_hash, size_t payload_hash_len, struct wbuf *out);

/* The signing key: HMAC chain "AWS4"+secret, date, region, "s3", "aws4_request". */
void s3_auth_signing_key(const char *secret, size_t secret_len, const char *date8,
			 const char *region, size_t region_len, uint8_t key[32]);

/* Hex HMAC-SHA256 of the string to sign
 * "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256(canonical)>". */
void s3_auth_sign_canonical(const uint8_t key[32], const char *amz_date, const char *scope,
			    const void *canonical, size_t canonical_len, char sig[65]);

/* A signing key made ready for HMAC: the SHA-256 states after absorbing
 * K^ipad and K^opad (RFC 2104), so each signature saves those two blocks.
 * A signing key serves a whole day; keep it in this form. Secret: wipe
 * with OPENSSL_cleanse when done. */
struct s3_hmac_key {
	SHA256_CTX in, out;
};
void s3_hmac_key_init(struct s3_hmac_key *hk, const void *key, size_t klen);
/* s3_auth_sign_canonical with a ready key. */
void s3_auth_sign_canonical_with(const struct s3_hmac_key *hk, const char *amz_date, const char *scope,
				 const void *canonical, size_t canonical_len, char sig[65]);

/* Signature of one aws-chunked chunk, chained from prev_sig:
 * "AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<prev>\n<sha256("")>\n<hex chunk_sha256>". */
void s3_auth_chunk_signature(const uint8_t key[32], const char *amz_date, const char *scope,
			     const char *prev_sig, const uint8_t chunk_sha256[32], char sig[65]);

/* Signature of the trailer chunk:
 * "AWS4-HMAC-SHA256-TRAILER\n<date>\n<scope>\n<prev>\n<hex trailers_sha256>". */
void s3_auth_trailer_signature(const uint8_t key[32], const char *amz_date, const char *scope,
			       const char *prev_sig, const uint8_t trailers_sha256[32],
			       char sig[65]);

/* Parses an ISO 8601 basic timestamp (20130524T000000Z) or, when iso is
 * false, an RFC 7231 HTTP date (Fri, 24 May 2013 00:00:00 GMT). 0 or -SILT_EINVAL. */
int s3_auth_parse_time(const char *s, size_t n, bool iso, int64_t *out);
/* Formats t as 20130524T000000Z. */
void s3_auth_format_time(int64_t t, char out[17]);

/* S3's URI encoding: every byte except A-Z a-z 0-9 - _ . ~ becomes %XX
 * (upper-case hex); '/' is kept unless encode_slash. */
void s3_url_encode_buf(struct wbuf *out, const void *s, size_t n, bool encode_slash);
/* The same into a new NUL-terminated heap string (free()). */
char *s3_url_encode(const char *s, bool encode_slash);
/* Percent-decoding ('+' stays '+'); invalid escapes are kept literally.
 * Writes at most n bytes to out (n suffices); returns the length. */
size_t s3_url_decode(const char *s, size_t n, char *out);

/* ---- client side ---- */

struct s3_sign_req {
	const char *method;
	const char *path;              /* as it will be sent (already URI-encoded) */
	const char *query;             /* as it will be sent, without '?'; NULL = none */
	const struct s3_hdr *hdrs;     /* the headers to sign: must include host;
					* x-amz-date and x-amz-content-sha256 as wanted */
	size_t nhdrs;
	const char *access_key;
	const char *secret;
	const char *region;
	const char *amz_date;          /* 20130524T000000Z */
	const char *payload_hash;      /* hex SHA-256, UNSIGNED-PAYLOAD, STREAMING-... */
};

/* Signs with the Authorization header: writes its value (NUL-terminated)
 * into *auth and the hex signature into sig (both optional). The headers'
 * names are lower-cased and sorted for SignedHeaders. 0 or -SILT_EINVAL. */
int s3_auth_sign(const struct s3_sign_req *r, struct wbuf *auth, char sig[65]);

/* Presigns: writes the query string to send (r->query's parameters plus the
 * X-Amz-* ones and X-Amz-Signature, NUL-terminated) into *query. r->hdrs
 * is normally just host; payload_hash is ignored (UNSIGNED-PAYLOAD). */
int s3_auth_presign(const struct s3_sign_req *r, int64_t expires_s, struct wbuf *query,
		    char sig[65]);

#endif
