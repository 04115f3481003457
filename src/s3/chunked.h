/* chunked.h - resumable decoder for S3's aws-chunked body framing.
 *
 *   signed:    <hex>;chunk-signature=<64 hex>\r\n<data>\r\n ... 0;chunk-signature=..\r\n
 *   unsigned:  <hex>\r\n<data>\r\n ... 0\r\n
 *   then trailers `name:value\r\n` (x-amz-checksum-*, and x-amz-trailer-signature
 *   in the signed-trailer mode) and a final empty line `\r\n`.
 *
 * Feed it the body as it arrives, in pieces of any size; it hands back the
 * payload as views into the bytes fed (no copy, never the whole body in
 * memory). Each chunk signature is checked against the chain that starts
 * at the request's seed signature, the trailer signature against the last
 * chunk's. Decoded bytes are provisional: a later chunk can still fail, so
 * the caller commits the object only once the decoder reports DONE (and it
 * has checked the trailer checksum against its own running checksum).
 *
 * "Need more input" (-SILT_EAGAIN) and "invalid" (other negatives) are kept
 * apart: every prefix of a valid body gives -SILT_EAGAIN, never an error.
 *
 * Threads: a decoder belongs to the connection's loop thread. */
#ifndef SILT_S3_CHUNKED_H
#define SILT_S3_CHUNKED_H

#include "core/platform.h"
#include "s3/auth.h"
#include "s3/checksum.h"

#define S3_CHUNKED_LINE_MAX 1024 /* hard cap of the line buffer */
#define S3_CHUNKED_MAX_TRAILERS 16

enum {
	S3_CHUNKED_DATA = 1, /* payload bytes are in out, outlen */
	S3_CHUNKED_DONE = 2, /* body complete (trailers parsed and checked) */
};

enum s3_chunked_err {
	S3_CHUNKED_OK = 0,
	S3_CHUNKED_E_FRAMING,    /* InvalidRequest: malformed chunk framing */
	S3_CHUNKED_E_SIGNATURE,  /* SignatureDoesNotMatch: chunk or trailer signature */
	S3_CHUNKED_E_LENGTH,     /* IncompleteBody: total differs from x-amz-decoded-content-length */
	S3_CHUNKED_E_TOO_LONG,   /* InvalidRequest: chunk line over its cap */
	S3_CHUNKED_E_TRAILER,    /* MalformedTrailerError: bad, unexpected or oversized trailers */
	S3_CHUNKED_E_INCOMPLETE, /* IncompleteBody: the body ended early (s3_chunked_finish) */
};

struct s3_chunked_cfg {
	enum s3_payload_mode mode; /* one of the S3_PAYLOAD_STREAMING_* modes */
	/* Signed modes only (copied): from struct s3_auth_result. */
	const uint8_t *signing_key;
	const char *amz_date;
	const char *scope;
	const char *seed_sig;
	int64_t decoded_length;  /* x-amz-decoded-content-length, -1 = not given */
	uint32_t max_line;       /* chunk-size line cap; 0 = 256, at most S3_CHUNKED_LINE_MAX */
	uint32_t max_trailers;   /* total trailer bytes cap; 0 = 4096 */
};

struct s3_chunked_trailer {
	uint32_t name_off, name_len, value_off, value_len; /* into trailer buffer */
};

struct s3_chunked {
	int state;
	bool signed_chunks, trailers_allowed, signed_trailer, trailer_sig_ok;
	enum s3_chunked_err err;
	const char *detail;
	uint8_t key[32];
	char amz_date[17];
	char scope[S3_AUTH_SCOPE_MAX];
	char prev_sig[65];
	char chunk_sig[65];
	uint64_t chunk_left;
	uint64_t total;
	int64_t decoded_length;
	uint32_t max_line, max_trailers;
	void *sha;  /* EVP_MD_CTX: data of the current chunk */
	void *tsha; /* EVP_MD_CTX: canonical trailers */
	size_t line_len;
	char line[S3_CHUNKED_LINE_MAX];
	char *tbuf; /* trailer names and values, NUL-terminated each */
	size_t tbuf_len;
	size_t tbytes; /* trailer section bytes seen, against max_trailers */
	size_t ntrailers;
	struct s3_chunked_trailer trailers[S3_CHUNKED_MAX_TRAILERS];
};

/* 0, or -SILT_EINVAL for a non-streaming mode or missing signing data. */
int s3_chunked_init(struct s3_chunked *d, const struct s3_chunked_cfg *cfg);
void s3_chunked_destroy(struct s3_chunked *d);

/* Decodes from in[0..len). Sets *consumed to the bytes used and returns:
 *   S3_CHUNKED_DATA  payload bytes at *out (a view into `in`, *outlen > 0):
 *                    call again with the rest of the input;
 *   -SILT_EAGAIN     all input consumed, more is needed;
 *   S3_CHUNKED_DONE  the body ended after *consumed bytes (what follows is
 *                    not part of it); later calls return DONE and consume 0;
 *   -SILT_EINVAL / -SILT_ECORRUPT / -SILT_ETOOBIG  invalid (see d->err,
 *                    s3_chunked_err_code); sticky. */
int s3_chunked_feed(struct s3_chunked *d, const uint8_t *in, size_t len, size_t *consumed,
		    const uint8_t **out, size_t *outlen);

/* Convenience loop over s3_chunked_feed: sink gets every payload slice
 * (returning non-zero stops with that value). Returns -SILT_EAGAIN, DONE
 * (with *consumed) or an error. */
int s3_chunked_feed_all(struct s3_chunked *d, const uint8_t *in, size_t len, size_t *consumed,
			int (*sink)(void *arg, const uint8_t *p, size_t n), void *arg);

/* The transport says the body ended. 0 if the decoder is done; a body
 * whose only missing part is the final empty line after the trailers is
 * accepted. Otherwise -SILT_EINVAL with S3_CHUNKED_E_INCOMPLETE. */
int s3_chunked_finish(struct s3_chunked *d);

static inline uint64_t s3_chunked_total(const struct s3_chunked *d)
{
	return d->total;
}

const char *s3_chunked_err_code(enum s3_chunked_err e);
int s3_chunked_err_status(enum s3_chunked_err e);

/* Trailers (views valid until s3_chunked_destroy). Names as sent. */
size_t s3_chunked_ntrailers(const struct s3_chunked *d);
void s3_chunked_trailer_at(const struct s3_chunked *d, size_t i, const char **name,
			   const char **value);
/* Case-insensitive lookup; NULL when absent. */
const char *s3_chunked_trailer(const struct s3_chunked *d, const char *name);
/* The first x-amz-checksum-<alg> trailer: its algorithm and decoded digest.
 * 0, -SILT_ENOENT (none), -SILT_EINVAL (bad base64 or wrong length). */
int s3_chunked_trailer_checksum(const struct s3_chunked *d, enum s3_cksum_alg *alg,
				uint8_t digest[S3_CKSUM_MAX_DIGEST], size_t *len);

#endif
