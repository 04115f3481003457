/* chunked.c - aws-chunked decoder. See chunked.h. */
#include "core/platform.h"
#include "s3/chunked.h"

#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

enum { ST_SIZE, ST_DATA, ST_DATA_CR, ST_DATA_LF, ST_TRAILER, ST_DONE, ST_ERR };

#define DEFAULT_MAX_LINE 256
#define DEFAULT_MAX_TRAILERS 4096

const char *s3_chunked_err_code(enum s3_chunked_err e)
{
	switch (e) {
	case S3_CHUNKED_OK:
		return "";
	case S3_CHUNKED_E_SIGNATURE:
		return "SignatureDoesNotMatch";
	case S3_CHUNKED_E_LENGTH:
	case S3_CHUNKED_E_INCOMPLETE:
		return "IncompleteBody";
	case S3_CHUNKED_E_TRAILER:
		return "MalformedTrailerError";
	case S3_CHUNKED_E_FRAMING:
	case S3_CHUNKED_E_TOO_LONG:
		return "InvalidRequest";
	}
	return "InvalidRequest";
}

int s3_chunked_err_status(enum s3_chunked_err e)
{
	return e == S3_CHUNKED_OK ? 200 : e == S3_CHUNKED_E_SIGNATURE ? 403 : 400;
}

int s3_chunked_init(struct s3_chunked *d, const struct s3_chunked_cfg *cfg)
{
	memset(d, 0, sizeof(*d));
	switch (cfg->mode) {
	case S3_PAYLOAD_STREAMING_SIGNED:
		d->signed_chunks = true;
		break;
	case S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER:
		d->trailers_allowed = true;
		break;
	case S3_PAYLOAD_STREAMING_SIGNED_TRAILER:
		d->signed_chunks = d->trailers_allowed = d->signed_trailer = true;
		break;
	default:
		return -SILT_EINVAL;
	}
	if (d->signed_chunks) {
		if (!cfg->signing_key || !cfg->amz_date || !cfg->scope || !cfg->seed_sig ||
		    strlen(cfg->amz_date) != 16 || strlen(cfg->scope) >= sizeof(d->scope) ||
		    strlen(cfg->seed_sig) != 64)
			return -SILT_EINVAL;
		memcpy(d->key, cfg->signing_key, 32);
		memcpy(d->amz_date, cfg->amz_date, 17);
		strcpy(d->scope, cfg->scope);
		memcpy(d->prev_sig, cfg->seed_sig, 65);
		d->sha = EVP_MD_CTX_new();
		if (!d->sha)
			abort();
	}
	if (d->signed_trailer) {
		d->tsha = EVP_MD_CTX_new();
		if (!d->tsha || !EVP_DigestInit_ex(d->tsha, s3_cksum_md(S3_CKSUM_SHA256), NULL))
			abort();
	}
	d->decoded_length = cfg->decoded_length;
	d->max_line = cfg->max_line ? SILT_MIN(cfg->max_line, S3_CHUNKED_LINE_MAX)
				    : DEFAULT_MAX_LINE;
	d->max_trailers = cfg->max_trailers ? cfg->max_trailers : DEFAULT_MAX_TRAILERS;
	d->state = ST_SIZE;
	return 0;
}

void s3_chunked_destroy(struct s3_chunked *d)
{
	if (d->sha)
		EVP_MD_CTX_free(d->sha);
	if (d->tsha)
		EVP_MD_CTX_free(d->tsha);
	free(d->tbuf);
	OPENSSL_cleanse(d->key, sizeof(d->key));
	d->sha = d->tsha = NULL;
	d->tbuf = NULL;
}

static int errno_for(enum s3_chunked_err e)
{
	switch (e) {
	case S3_CHUNKED_E_SIGNATURE:
		return -SILT_ECORRUPT;
	case S3_CHUNKED_E_TOO_LONG:
		return -SILT_ETOOBIG;
	default:
		return -SILT_EINVAL;
	}
}

static int fail(struct s3_chunked *d, enum s3_chunked_err e, const char *why)
{
	d->state = ST_ERR;
	d->err = e;
	d->detail = why;
	return errno_for(e);
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

static bool lower_hex64(const char *s, size_t n)
{
	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Finishes the current chunk's hash and checks its signature; the chain
 * moves on to this chunk's signature. */
static int verify_chunk(struct s3_chunked *d)
{
	uint8_t h[32];
	unsigned int hl;
	char want[65];
	if (!EVP_DigestFinal_ex(d->sha, h, &hl))
		abort();
	s3_auth_chunk_signature(d->key, d->amz_date, d->scope, d->prev_sig, h, want);
	if (CRYPTO_memcmp(want, d->chunk_sig, 64) != 0)
		return fail(d, S3_CHUNKED_E_SIGNATURE, "chunk signature does not match");
	memcpy(d->prev_sig, d->chunk_sig, 65);
	return 0;
}

static int size_line(struct s3_chunked *d, const char *s, size_t n)
{
	uint64_t size = 0;
	size_t i = 0;
	for (; i < n && hexv(s[i]) >= 0; i++) {
		if (i == 16)
			return fail(d, S3_CHUNKED_E_FRAMING, "chunk size has too many digits");
		size = size << 4 | (uint64_t)hexv(s[i]);
	}
	if (i == 0)
		return fail(d, S3_CHUNKED_E_FRAMING, "chunk size is not hex");
	static const char ext[] = ";chunk-signature=";
	const size_t el = sizeof(ext) - 1;
	if (d->signed_chunks) {
		if (n - i != el + 64 || memcmp(s + i, ext, el) != 0 ||
		    !lower_hex64(s + i + el, 64))
			return fail(d, S3_CHUNKED_E_FRAMING, "chunk without a valid chunk-signature");
		memcpy(d->chunk_sig, s + i + el, 64);
		d->chunk_sig[64] = '\0';
	} else if (i < n && s[i] != ';') {
		/* Unsigned chunks may carry extensions, which mean nothing to us. */
		return fail(d, S3_CHUNKED_E_FRAMING, "junk after chunk size");
	}
	if (size > UINT64_MAX - d->total ||
	    (d->decoded_length >= 0 && d->total + size > (uint64_t)d->decoded_length))
		return fail(d, S3_CHUNKED_E_LENGTH, "body longer than x-amz-decoded-content-length");
	if (d->signed_chunks && !EVP_DigestInit_ex(d->sha, s3_cksum_md(S3_CKSUM_SHA256), NULL))
		abort();
	if (size > 0) {
		d->chunk_left = size;
		d->state = ST_DATA;
		return 0;
	}
	/* The final, empty chunk: signed like the others, then trailers. */
	if (d->signed_chunks) {
		int rc = verify_chunk(d);
		if (rc < 0)
			return rc;
	}
	if (d->decoded_length >= 0 && d->total != (uint64_t)d->decoded_length)
		return fail(d, S3_CHUNKED_E_LENGTH, "body shorter than x-amz-decoded-content-length");
	d->state = ST_TRAILER;
	return 0;
}

static bool token_char(char c)
{
	return c > ' ' && c < 0x7f && c != ':' && c != '(' && c != ')' && c != ',' && c != ';' &&
	       c != '"' && c != '/' && c != '[' && c != ']' && c != '{' && c != '}' && c != '=';
}

static int trailer_line(struct s3_chunked *d, const char *s, size_t n)
{
	if (n == 0) {
		if (d->signed_trailer && !d->trailer_sig_ok)
			return fail(d, S3_CHUNKED_E_TRAILER, "missing x-amz-trailer-signature");
		d->state = ST_DONE;
		return 0;
	}
	if (!d->trailers_allowed)
		return fail(d, S3_CHUNKED_E_FRAMING, "data after the final chunk");
	if (d->trailer_sig_ok)
		return fail(d, S3_CHUNKED_E_TRAILER, "trailer after x-amz-trailer-signature");
	const char *colon = memchr(s, ':', n);
	if (!colon || colon == s)
		return fail(d, S3_CHUNKED_E_TRAILER, "trailer without a name");
	size_t nl = (size_t)(colon - s);
	for (size_t i = 0; i < nl; i++)
		if (!token_char(s[i]))
			return fail(d, S3_CHUNKED_E_TRAILER, "bad character in trailer name");
	const char *v = colon + 1;
	size_t vl = n - nl - 1;
	while (vl && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	for (size_t i = 0; i < vl; i++)
		if ((uint8_t)v[i] < ' ' && v[i] != '\t')
			return fail(d, S3_CHUNKED_E_TRAILER, "control character in trailer value");

	if (nl == 23 && strncasecmp(s, "x-amz-trailer-signature", 23) == 0) {
		if (!d->signed_trailer)
			return fail(d, S3_CHUNKED_E_TRAILER, "unexpected x-amz-trailer-signature");
		if (!lower_hex64(v, vl))
			return fail(d, S3_CHUNKED_E_TRAILER, "bad x-amz-trailer-signature");
		uint8_t h[32];
		unsigned int hl;
		char want[65];
		if (!EVP_DigestFinal_ex(d->tsha, h, &hl))
			abort();
		s3_auth_trailer_signature(d->key, d->amz_date, d->scope, d->prev_sig, h, want);
		if (CRYPTO_memcmp(want, v, 64) != 0)
			return fail(d, S3_CHUNKED_E_SIGNATURE, "trailer signature does not match");
		d->trailer_sig_ok = true;
		return 0;
	}
	if (d->ntrailers == S3_CHUNKED_MAX_TRAILERS)
		return fail(d, S3_CHUNKED_E_TRAILER, "too many trailers");
	if (!d->tbuf)
		d->tbuf = xmalloc(d->max_trailers + 2 * S3_CHUNKED_MAX_TRAILERS);
	/* Stored bytes never exceed the trailer bytes seen (capped by
	 * max_trailers) plus two NULs per trailer, the buffer's size. */
	struct s3_chunked_trailer *t = &d->trailers[d->ntrailers++];
	t->name_off = (uint32_t)d->tbuf_len;
	t->name_len = (uint32_t)nl;
	memcpy(d->tbuf + d->tbuf_len, s, nl);
	d->tbuf_len += nl;
	d->tbuf[d->tbuf_len++] = '\0';
	t->value_off = (uint32_t)d->tbuf_len;
	t->value_len = (uint32_t)vl;
	memcpy(d->tbuf + d->tbuf_len, v, vl);
	d->tbuf_len += vl;
	d->tbuf[d->tbuf_len++] = '\0';
	if (d->signed_trailer) {
		/* The signed form is "name:value\n" with the name lower-cased. */
		char lname[S3_CHUNKED_LINE_MAX];
		for (size_t i = 0; i < nl; i++)
			lname[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
		if (!EVP_DigestUpdate(d->tsha, lname, nl) || !EVP_DigestUpdate(d->tsha, ":", 1) ||
		    !EVP_DigestUpdate(d->tsha, v, vl) || !EVP_DigestUpdate(d->tsha, "\n", 1))
			abort();
	}
	return 0;
}

int s3_chunked_feed(struct s3_chunked *d, const uint8_t *in, size_t len, size_t *consumed,
		    const uint8_t **out, size_t *outlen)
{
	size_t i = 0;
	int rc;
	*out = NULL;
	*outlen = 0;
	while (i < len) {
		switch (d->state) {
		case ST_SIZE:
		case ST_TRAILER: {
			const uint8_t *nl = memchr(in + i, '\n', len - i);
			size_t take = nl ? (size_t)(nl - (in + i)) + 1 : len - i;
			bool trailer = d->state == ST_TRAILER;
			if (trailer) {
				d->tbytes += take;
				/* +2 lets the final empty line through at the cap. */
				if (d->tbytes > (size_t)d->max_trailers + 2) {
					*consumed = i;
					return fail(d, S3_CHUNKED_E_TRAILER, "trailers too large");
				}
			}
			size_t cap = trailer ? S3_CHUNKED_LINE_MAX : d->max_line;
			if (d->line_len + take > cap) {
				*consumed = i;
				return trailer ? fail(d, S3_CHUNKED_E_TRAILER, "trailer line too long")
					       : fail(d, S3_CHUNKED_E_TOO_LONG, "chunk line too long");
			}
			memcpy(d->line + d->line_len, in + i, take);
			d->line_len += take;
			i += take;
			if (!nl)
				break;
			size_t n = d->line_len;
			d->line_len = 0;
			if (n < 2 || d->line[n - 2] != '\r') {
				*consumed = i;
				return fail(d, trailer ? S3_CHUNKED_E_TRAILER : S3_CHUNKED_E_FRAMING,
					    "line not ended by CRLF");
			}
			rc = trailer ? trailer_line(d, d->line, n - 2) : size_line(d, d->line, n - 2);
			if (rc < 0) {
				*consumed = i;
				return rc;
			}
			if (d->state == ST_DONE) {
				*consumed = i;
				return S3_CHUNKED_DONE;
			}
			break;
		}
		case ST_DATA: {
			size_t n = (size_t)SILT_MIN((uint64_t)(len - i), d->chunk_left);
			if (d->signed_chunks && !EVP_DigestUpdate(d->sha, in + i, n))
				abort();
			d->chunk_left -= n;
			d->total += n;
			*out = in + i;
			*outlen = n;
			i += n;
			*consumed = i;
			if (d->chunk_left == 0) {
				d->state = ST_DATA_CR;
				if (d->signed_chunks && (rc = verify_chunk(d)) < 0) {
					*out = NULL;
					*outlen = 0;
					return rc;
				}
			}
			return S3_CHUNKED_DATA;
		}
		case ST_DATA_CR:
		case ST_DATA_LF:
			if (in[i] != (d->state == ST_DATA_CR ? '\r' : '\n')) {
				*consumed = i;
				return fail(d, S3_CHUNKED_E_FRAMING, "chunk data not followed by CRLF");
			}
			i++;
			d->state = d->state == ST_DATA_CR ? ST_DATA_LF : ST_SIZE;
			break;
		case ST_DONE:
			*consumed = i;
			return S3_CHUNKED_DONE;
		default:
			*consumed = i;
			return errno_for(d->err);
		}
	}
	*consumed = i;
	if (d->state == ST_DONE)
		return S3_CHUNKED_DONE;
	if (d->state == ST_ERR)
		return errno_for(d->err);
	return -SILT_EAGAIN;
}

int s3_chunked_feed_all(struct s3_chunked *d, const uint8_t *in, size_t len, size_t *consumed,
			int (*sink)(void *arg, const uint8_t *p, size_t n), void *arg)
{
	size_t off = 0;
	for (;;) {
		size_t used;
		const uint8_t *p;
		size_t n;
		int rc = s3_chunked_feed(d, in + off, len - off, &used, &p, &n);
		off += used;
		*consumed = off;
		if (rc != S3_CHUNKED_DATA)
			return rc;
		int s = sink(arg, p, n);
		if (s)
			return s;
	}
}

int s3_chunked_finish(struct s3_chunked *d)
{
	if (d->state == ST_DONE)
		return 0;
	if (d->state == ST_ERR)
		return errno_for(d->err);
	/* Everything is framed and verified; only the empty line that closes
	 * the trailer section is missing (after the trailers the mode expects:
	 * none, at least one, or the signature). */
	bool trailers_done = d->signed_trailer ? d->trailer_sig_ok
			     : d->trailers_allowed ? d->ntrailers > 0 : true;
	if (d->state == ST_TRAILER && d->line_len == 0 && trailers_done) {
		d->state = ST_DONE;
		return 0;
	}
	return fail(d, S3_CHUNKED_E_INCOMPLETE, "body ended inside the aws-chunked framing");
}

size_t s3_chunked_ntrailers(const struct s3_chunked *d)
{
	return d->ntrailers;
}

void s3_chunked_trailer_at(const struct s3_chunked *d, size_t i, const char **name,
			   const char **value)
{
	*name = d->tbuf + d->trailers[i].name_off;
	*value = d->tbuf + d->trailers[i].value_off;
}

const char *s3_chunked_trailer(const struct s3_chunked *d, const char *name)
{
	for (size_t i = 0; i < d->ntrailers; i++)
		if (strcasecmp(d->tbuf + d->trailers[i].name_off, name) == 0)
			return d->tbuf + d->trailers[i].value_off;
	return NULL;
}

int s3_chunked_trailer_checksum(const struct s3_chunked *d, enum s3_cksum_alg *alg,
				uint8_t digest[S3_CKSUM_MAX_DIGEST], size_t *len)
{
	for (size_t i = 0; i < d->ntrailers; i++) {
		const struct s3_chunked_trailer *t = &d->trailers[i];
		enum s3_cksum_alg a = s3_cksum_alg_from_header(d->tbuf + t->name_off, t->name_len);
		if (a == S3_CKSUM_NONE)
			continue;
		*alg = a;
		if (s3_b64_decode(d->tbuf + t->value_off, t->value_len, digest, S3_CKSUM_MAX_DIGEST,
				  len) < 0 ||
		    *len != s3_cksum_digest_len(a))
			return -SILT_EINVAL;
		return 0;
	}
	return -SILT_ENOENT;
}
