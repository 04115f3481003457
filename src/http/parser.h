/* parser.h - HTTP/1.x request heads and body framing, resumable.
 *
 * Both decoders follow nginx's rule: fed a prefix of a valid message they
 * return HTTP_PARSE_AGAIN and keep their place, so the caller appends more
 * bytes and calls again; they never confuse "incomplete" with "invalid"
 * (h2o). Feeding a head one byte at a time gives exactly the result of
 * feeding it at once, and costs O(total bytes): the head parser remembers
 * how far it has scanned and parses each line once, when its LF arrives.
 *
 * Head parsing is strict where leniency is a request-smuggling risk: lines
 * end in CRLF (bare CR or bare LF is 400), obs-fold is 400, whitespace
 * between a field name and its colon is 400, Content-Length must be one
 * decimal value (identical repeats allowed), Transfer-Encoding plus
 * Content-Length is 400, a transfer coding other than a lone "chunked" is
 * 501, HTTP/1.1 needs exactly one Host.
 *
 * Views (struct http_view) point into the buffer given to the final
 * http_parse_head() call, or into static strings (path "/" of an
 * absolute-form target without a path); see http_head_rebase().
 *
 * No allocation except the parser's header array, grown up to
 * HTTP_MAX_HEADERS and reused across requests. Any thread; no globals. */
#ifndef SILT_HTTP_PARSER_H
#define SILT_HTTP_PARSER_H

#include "core/platform.h"

/* Limits from the brief (and close to nginx's large_client_header_buffers):
 * over the request-line cap answers 414, over the header-block or count caps
 * 431. The request line is counted without its CRLF; the header block from
 * the first header byte to the end of the blank line. */
#define HTTP_MAX_REQUEST_LINE (16 * 1024)
#define HTTP_MAX_HEADER_BYTES (64 * 1024)
#define HTTP_MAX_HEADERS 200
/* Blank lines tolerated before a request line (RFC 9112 2.2: SHOULD ignore
 * at least one; clients that send a body-terminating CRLF too many). */
#define HTTP_MAX_LEADING_CRLF 4
/* Chunked framing caps: a size line (hex digits + extensions) and the whole
 * trailer section. aws-chunked puts an 80-byte signature extension on each
 * size line, so 4 KiB leaves ample room. */
#define HTTP_MAX_CHUNK_LINE 4096
#define HTTP_MAX_CHUNK_DIGITS 16
#define HTTP_MAX_TRAILER_BYTES (64 * 1024)

enum {
	HTTP_PARSE_ERROR = -1, /* invalid: see ->status and ->error */
	HTTP_PARSE_OK = 0,     /* complete */
	HTTP_PARSE_AGAIN = 1,  /* incomplete: call again with more bytes */
	HTTP_BODY_DATA = 2,    /* http_body_next: body bytes are available */
};

struct http_view {
	const char *base;
	size_t len;
};

static inline bool http_view_eq(struct http_view v, const char *s)
{
	size_t n = strlen(s);
	return v.len == n && memcmp(v.base, s, n) == 0;
}
bool http_view_ieq(struct http_view v, const char *s);

enum http_method {
	HTTP_OTHER = 0, /* a valid token we have no constant for */
	HTTP_GET,
	HTTP_HEAD,
	HTTP_PUT,
	HTTP_POST,
	HTTP_DELETE,
	HTTP_OPTIONS,
	HTTP_PATCH,
	HTTP_TRACE,
	HTTP_CONNECT,
};

struct http_header {
	struct http_view name;  /* as sent (case preserved) */
	struct http_view value; /* leading and trailing SP/HTAB trimmed */
};

/* A parsed request head. Every view is valid as long as the bytes given to
 * http_parse_head() are, and `headers` until the parser is reset. */
struct http_head {
	struct http_view method;
	enum http_method m;
	struct http_view target; /* raw request-target, byte-exact (SigV4) */
	struct http_view path;   /* target up to '?', still percent-encoded */
	struct http_view query;  /* after the first '?', without it */
	bool has_query;          /* "?" present (query may still be empty) */
	int minor;               /* HTTP/1.<minor>: 0 or 1 */
	struct http_header *headers;
	int nheaders;
	struct http_view host;   /* Host value (authority of absolute-form wins) */

	/* Message framing (RFC 9112 6.3). */
	int64_t content_length;  /* bytes; -1 = chunked; 0 = no body */
	bool chunked;
	bool keep_alive;         /* Connection semantics after this request */
	bool expect_continue;    /* Expect: 100-continue */
};

/* Parser state; embed it and call http_parser_init once, _reset between
 * requests, _destroy at the end. Only the fields below "results" are for
 * callers. */
struct http_parser {
	size_t pos;       /* first byte of the line being parsed */
	size_t scan;      /* where the search for its LF resumes */
	size_t hdr_start; /* first byte of the header block */
	int state;
	int leading_crlf;
	/* Offsets while parsing (the buffer may move between calls). */
	uint32_t m_off, m_len, t_off, t_len;
	struct http_hoff { uint32_t no, nl, vo, vl; } *hoff;
	struct http_header *hdrs;
	int nhdrs, caphdrs;
	int host_idx, nhost;
	int minor;
	int64_t cl;
	bool have_cl, have_te, te_chunked, conn_close, conn_keepalive, expect;

	/* Results. */
	size_t head_len;     /* on OK: bytes of the head, blank line included */
	int status;          /* on ERROR: the status to answer (400/414/431/501/505) */
	const char *error;   /* on ERROR: static text for logs and error bodies */
};

void http_parser_init(struct http_parser *p);
void http_parser_reset(struct http_parser *p);
void http_parser_destroy(struct http_parser *p);

/* Parses the head at the start of buf[0..len). `buf` must hold the same
 * bytes as on earlier calls since the last reset (it may have moved and
 * grown). Returns HTTP_PARSE_OK with *out filled and p->head_len set (bytes
 * after that belong to the body or the next request), HTTP_PARSE_AGAIN, or
 * HTTP_PARSE_ERROR with p->status/p->error set. After OK or ERROR, reset
 * before parsing another head. */
int http_parse_head(struct http_parser *p, const char *buf, size_t len, struct http_head *out);

/* Moves every view of h that points into old[0..len) to the same offset in
 * new_base (after the caller copied the head there). */
void http_head_rebase(struct http_head *h, const char *old_base, size_t len, const char *new_base);

/* The first header named `name` (ASCII case-insensitive) after `after`
 * (NULL: from the start), or NULL. */
const struct http_header *http_header_find(const struct http_head *h, const char *name,
					   const struct http_header *after);
/* The value of the first header `name`; {NULL,0} when absent. */
struct http_view http_header_get(const struct http_head *h, const char *name);
/* True if the comma-separated list in v contains token (case-insensitive),
 * e.g. http_list_has(connection_value, "close"). */
bool http_list_has(struct http_view v, const char *token);

/* Percent-decodes in[0..n) into out (room for n+1 bytes), NUL-terminates,
 * returns the decoded length or -1 for a malformed escape or an encoded NUL
 * (which no key name may contain). '+' is kept: it means space only in
 * form-encoded queries, never in paths. */
ssize_t http_pct_decode(const char *in, size_t n, char *out);

/* Looks a parameter up in a raw query string ("a=1&b&c=x%20y"): true if
 * present, with *val the raw (still encoded) value, empty for "b" and "b=". */
bool http_query_param(struct http_view query, const char *name, struct http_view *val);

/* Body framing: Content-Length bodies and chunked transfer coding behind one
 * interface, so the connection layer has a single path. Zero-copy: it
 * tells the caller how many framing bytes to skip and how many data bytes
 * follow; the caller hands data on and reports what was taken with
 * http_body_consume(). */
struct http_body {
	int state;
	int64_t left;     /* data bytes left (whole body, or current chunk) */
	int64_t total;    /* data bytes so far, for the max_total cap */
	int64_t max_total;
	size_t line;      /* bytes of the current size or trailer line */
	size_t trailer;   /* trailer section bytes */
	int ndigits;
	int status;       /* on ERROR: 400 or 413 */
	const char *error;
};

/* content_length from struct http_head (-1 = chunked). max_total caps the
 * decoded size (413 above it); 0 = no cap. A Content-Length above the cap
 * fails on the first http_body_next call. */
void http_body_init(struct http_body *b, int64_t content_length, int64_t max_total);
/* Looks at in[0..len): consumes framing and sets *skip to the number of
 * framing bytes to drop. Returns
 *   HTTP_BODY_DATA:   in[*skip .. *skip + *avail) is body data (*avail > 0);
 *                     consume some with http_body_consume, then call again
 *                     with the bytes after what was consumed;
 *   HTTP_PARSE_AGAIN: all of in was framing (*skip == len), need more;
 *   HTTP_PARSE_OK:    the body is complete after *skip bytes (the rest of in
 *                     is the next request);
 *   HTTP_PARSE_ERROR: b->status, b->error set. */
int http_body_next(struct http_body *b, const uint8_t *in, size_t len, size_t *skip, size_t *avail);
void http_body_consume(struct http_body *b, size_t n);
static inline bool http_body_done(const struct http_body *b)
{
	return b->state == 0;
}
/* Data bytes still expected when known (Content-Length), else -1. */
int64_t http_body_remaining(const struct http_body *b);

const char *http_method_name(enum http_method m);
/* Reason phrase for a status code ("Unknown" for unlisted ones). */
const char *http_reason(int status);

#endif
