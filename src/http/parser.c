#include "core/platform.h"
#include "http/parser.h"

enum { PS_REQLINE, PS_HEADERS, PS_DONE, PS_ERROR };

/* RFC 9110 5.6.2 tchar. */
static const uint8_t g_tchar[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1,
	['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,
	['~'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
	['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
	['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
	['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
	['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
	['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
	['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
	['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static inline int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static bool ieq(const char *a, size_t n, const char *b)
{
	if (strlen(b) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((uint8_t)a[i]) != lower((uint8_t)b[i]))
			return false;
	return true;
}

bool http_view_ieq(struct http_view v, const char *s)
{
	return ieq(v.base, v.len, s);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void http_parser_init(struct http_parser *p)
{
	memset(p, 0, sizeof(*p));
	http_parser_reset(p);
}

void http_parser_reset(struct http_parser *p)
{
	p->pos = p->scan = p->hdr_start = 0;
	p->state = PS_REQLINE;
	p->leading_crlf = 0;
	p->m_off = p->m_len = p->t_off = p->t_len = 0;
	p->nhdrs = 0;
	p->host_idx = -1;
	p->nhost = 0;
	p->minor = 0;
	p->cl = 0;
	p->have_cl = p->have_te = p->te_chunked = false;
	p->conn_close = p->conn_keepalive = p->expect = false;
	p->head_len = 0;
	p->status = 0;
	p->error = NULL;
}

void http_parser_destroy(struct http_parser *p)
{
	free(p->hoff);
	free(p->hdrs);
	p->hoff = NULL;
	p->hdrs = NULL;
	p->caphdrs = 0;
}

static int fail(struct http_parser *p, int status, const char *why)
{
	p->state = PS_ERROR;
	p->status = status;
	p->error = why;
	return HTTP_PARSE_ERROR;
}

static const struct {
	const char *name;
	enum http_method m;
} g_methods[] = {
	{ "GET", HTTP_GET },         { "HEAD", HTTP_HEAD },   { "PUT", HTTP_PUT },
	{ "POST", HTTP_POST },       { "DELETE", HTTP_DELETE }, { "OPTIONS", HTTP_OPTIONS },
	{ "PATCH", HTTP_PATCH },     { "TRACE", HTTP_TRACE }, { "CONNECT", HTTP_CONNECT },
};

const char *http_method_name(enum http_method m)
{
	for (size_t i = 0; i < SILT_ARRAY_LEN(g_methods); i++)
		if (g_methods[i].m == m)
			return g_methods[i].name;
	return "OTHER";
}

/* request-line = method SP request-target SP HTTP-version, single spaces
 * (RFC 9112 3: lenient splitting on other whitespace invites smuggling). */
static int parse_request_line(struct http_parser *p, const char *buf, size_t off, size_t n)
{
	const char *s = buf + off;
	size_t i = 0;
	while (i < n && g_tchar[(uint8_t)s[i]])
		i++;
	if (i == 0 || i >= n || s[i] != ' ')
		return fail(p, 400, "malformed method");
	p->m_off = (uint32_t)off;
	p->m_len = (uint32_t)i;
	size_t t0 = ++i;
	/* Bytes >= 0x80 pass (nginx does too): the target is kept raw and
	 * judged by the application. Controls, SP and DEL end or break it. */
	while (i < n && (uint8_t)s[i] > 0x20 && (uint8_t)s[i] != 0x7f)
		i++;
	if (i == t0 || i >= n || s[i] != ' ')
		return fail(p, 400, "malformed request-target");
	p->t_off = (uint32_t)(off + t0);
	p->t_len = (uint32_t)(i - t0);
	i++;
	if (n - i != 8 || memcmp(s + i, "HTTP/", 5) != 0 || s[i + 6] != '.')
		return fail(p, 400, "malformed HTTP version");
	int major = s[i + 5] - '0', minor = s[i + 7] - '0';
	if (major < 0 || major > 9 || minor < 0 || minor > 9)
		return fail(p, 400, "malformed HTTP version");
	if (major != 1)
		return fail(p, 505, "HTTP version not supported");
	/* A higher 1.x minor is answered as 1.1 (RFC 9110 6.2). */
	p->minor = minor == 0 ? 0 : 1;
	return HTTP_PARSE_OK;
}

/* Parses a comma list of identical decimal values (RFC 9110 8.6 lets a
 * recipient accept "5, 5" and repeated fields with one value). */
static int parse_content_length(struct http_parser *p, const char *v, size_t n)
{
	size_t i = 0;
	bool any = false;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		size_t d0 = i;
		int64_t val = 0;
		while (i < n && v[i] >= '0' && v[i] <= '9') {
			if (i - d0 >= 18)
				return fail(p, 400, "Content-Length too large");
			val = val * 10 + (v[i] - '0');
			i++;
		}
		if (i == d0)
			return fail(p, 400, "malformed Content-Length");
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		if (i < n && v[i] != ',')
			return fail(p, 400, "malformed Content-Length");
		i++;
		if ((p->have_cl || any) && val != p->cl)
			return fail(p, 400, "conflicting Content-Length values");
		p->cl = val;
		any = true;
	}
	if (!any)
		return fail(p, 400, "empty Content-Length");
	p->have_cl = true;
	return HTTP_PARSE_OK;
}

/* Walks a comma list, calling fn on each non-empty element (OWS trimmed). */
typedef int (*list_fn)(struct http_parser *p, const char *e, size_t n);

static int each_element(struct http_parser *p, const char *v, size_t n, list_fn fn)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t e0 = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e1 = i;
		while (e1 > e0 && (v[e1 - 1] == ' ' || v[e1 - 1] == '\t'))
			e1--;
		if (e1 > e0) {
			int rc = fn(p, v + e0, e1 - e0);
			if (rc != HTTP_PARSE_OK)
				return rc;
		}
	}
	return HTTP_PARSE_OK;
}

static int te_element(struct http_parser *p, const char *e, size_t n)
{
	/* Anything after chunked (or a second chunked) makes the length
	 * undeterminable: 400. Codings we cannot undo: 501 (RFC 9112 6.1). */
	if (p->te_chunked)
		return fail(p, 400, "transfer coding after chunked");
	if (ieq(e, n, "chunked")) {
		p->te_chunked = true;
		return HTTP_PARSE_OK;
	}
	return fail(p, 501, "unsupported transfer coding");
}

static int conn_element(struct http_parser *p, const char *e, size_t n)
{
	if (ieq(e, n, "close"))
		p->conn_close = true;
	else if (ieq(e, n, "keep-alive"))
		p->conn_keepalive = true;
	return HTTP_PARSE_OK;
}

static int note_header(struct http_parser *p, const char *name, size_t nl, const char *v, size_t vl)
{
	switch (nl) {
	case 4:
		if (ieq(name, nl, "host")) {
			p->host_idx = p->host_idx < 0 ? p->nhdrs : p->host_idx;
			p->nhost++;
		}
		break;
	case 6:
		if (ieq(name, nl, "expect") && ieq(v, vl, "100-continue"))
			p->expect = true;
		break;
	case 10:
		if (ieq(name, nl, "connection"))
			return each_element(p, v, vl, conn_element);
		break;
	case 14:
		if (ieq(name, nl, "content-length"))
			return parse_content_length(p, v, vl);
		break;
	case 17:
		if (ieq(name, nl, "transfer-encoding")) {
			p->have_te = true;
			return each_element(p, v, vl, te_element);
		}
		break;
	default:
		break;
	}
	return HTTP_PARSE_OK;
}

static int parse_header_line(struct http_parser *p, const char *buf, size_t off, size_t n)
{
	const char *s = buf + off;
	if (s[0] == ' ' || s[0] == '\t')
		return fail(p, 400, p->nhdrs ? "obsolete line folding" : "whitespace before first header");
	size_t i = 0;
	while (i < n && g_tchar[(uint8_t)s[i]])
		i++;
	if (i == 0 || i >= n || s[i] != ':')
		return fail(p, 400, "malformed header field name");
	size_t nl = i++;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	size_t v0 = i;
	for (; i < n; i++) {
		uint8_t c = (uint8_t)s[i];
		if (c < 0x20 && c != '\t')
			return fail(p, 400, "control character in header value");
		if (c == 0x7f)
			return fail(p, 400, "control character in header value");
	}
	size_t v1 = n;
	while (v1 > v0 && (s[v1 - 1] == ' ' || s[v1 - 1] == '\t'))
		v1--;
	if (p->nhdrs >= HTTP_MAX_HEADERS)
		return fail(p, 431, "too many header fields");
	if (p->nhdrs == p->caphdrs) {
		p->caphdrs = p->caphdrs ? SILT_MIN(p->caphdrs * 2, HTTP_MAX_HEADERS) : 32;
		p->hoff = xrealloc(p->hoff, sizeof(*p->hoff) * (size_t)p->caphdrs);
		p->hdrs = xrealloc(p->hdrs, sizeof(*p->hdrs) * (size_t)p->caphdrs);
	}
	int rc = note_header(p, s, nl, s + v0, v1 - v0);
	if (rc != HTTP_PARSE_OK)
		return rc;
	p->hoff[p->nhdrs++] = (struct http_hoff){
		(uint32_t)off, (uint32_t)nl, (uint32_t)(off + v0), (uint32_t)(v1 - v0)
	};
	return HTTP_PARSE_OK;
}

static struct http_view view_at(const char *buf, uint32_t off, uint32_t len)
{
	return (struct http_view){ buf + off, len };
}

static bool prefix_ieq(struct http_view v, const char *pre)
{
	size_t n = strlen(pre);
	return v.len >= n && ieq(v.base, n, pre);
}

/* Splits the request-target into path and query (RFC 9112 3.2). */
static int split_target(struct http_parser *p, struct http_head *h)
{
	struct http_view t = h->target;
	struct http_view rest = t;
	if (t.base[0] == '/') {
		/* origin-form */
	} else if (t.len == 1 && t.base[0] == '*') {
		if (h->m != HTTP_OPTIONS)
			return fail(p, 400, "asterisk-form target outside OPTIONS");
	} else if (prefix_ieq(t, "http://") || prefix_ieq(t, "https://")) {
		/* absolute-form: the authority replaces Host (RFC 9112 3.2.2). */
		size_t a0 = t.base[4] == ':' ? 7 : 8, a1 = a0;
		while (a1 < t.len && t.base[a1] != '/' && t.base[a1] != '?')
			a1++;
		if (a1 == a0)
			return fail(p, 400, "absolute-form target without authority");
		h->host = (struct http_view){ t.base + a0, a1 - a0 };
		rest = (struct http_view){ t.base + a1, t.len - a1 };
	} else {
		return fail(p, 400, "unsupported request-target form");
	}
	const char *q = rest.len ? memchr(rest.base, '?', rest.len) : NULL;
	if (q) {
		h->path = (struct http_view){ rest.base, (size_t)(q - rest.base) };
		h->query = (struct http_view){ q + 1, rest.len - h->path.len - 1 };
		h->has_query = true;
	} else {
		h->path = rest;
	}
	if (h->path.len == 0)
		h->path = (struct http_view){ "/", 1 };
	return HTTP_PARSE_OK;
}

static int finish_head(struct http_parser *p, const char *buf, struct http_head *h)
{
	int minor = p->minor;
	memset(h, 0, sizeof(*h));
	h->minor = minor;
	h->method = view_at(buf, p->m_off, p->m_len);
	h->m = HTTP_OTHER;
	for (size_t i = 0; i < SILT_ARRAY_LEN(g_methods); i++)
		if (http_view_eq(h->method, g_methods[i].name))
			h->m = g_methods[i].m;
	h->target = view_at(buf, p->t_off, p->t_len);
	for (int i = 0; i < p->nhdrs; i++) {
		p->hdrs[i].name = view_at(buf, p->hoff[i].no, p->hoff[i].nl);
		p->hdrs[i].value = view_at(buf, p->hoff[i].vo, p->hoff[i].vl);
	}
	h->headers = p->hdrs;
	h->nheaders = p->nhdrs;
	if (p->nhost > 1)
		return fail(p, 400, "more than one Host header");
	if (minor >= 1 && p->nhost == 0)
		return fail(p, 400, "HTTP/1.1 request without Host");
	if (p->host_idx >= 0)
		h->host = p->hdrs[p->host_idx].value;
	if (p->have_te) {
		if (minor == 0)
			return fail(p, 400, "Transfer-Encoding in an HTTP/1.0 request");
		if (p->have_cl)
			return fail(p, 400, "both Transfer-Encoding and Content-Length");
		if (!p->te_chunked)
			return fail(p, 400, "Transfer-Encoding without coding");
		h->chunked = true;
		h->content_length = -1;
	} else {
		h->content_length = p->have_cl ? p->cl : 0;
	}
	h->keep_alive = minor >= 1 ? !p->conn_close : p->conn_keepalive && !p->conn_close;
	/* 100-continue means nothing to an HTTP/1.0 client (RFC 9110 10.1.1). */
	h->expect_continue = p->expect && minor >= 1;
	int rc = split_target(p, h);
	if (rc != HTTP_PARSE_OK)
		return rc;
	p->state = PS_DONE;
	return HTTP_PARSE_OK;
}

int http_parse_head(struct http_parser *p, const char *buf, size_t len, struct http_head *out)
{
	if (p->state == PS_DONE || p->state == PS_ERROR)
		return p->state == PS_DONE ? HTTP_PARSE_OK : HTTP_PARSE_ERROR;
	for (;;) {
		const char *lf = p->scan < len ? memchr(buf + p->scan, '\n', len - p->scan) : NULL;
		if (!lf) {
			p->scan = len;
			/* Fail early on an unterminated line that is already over
			 * its cap, so a slow client cannot make us buffer more. */
			if (p->state == PS_REQLINE && len - p->pos > HTTP_MAX_REQUEST_LINE + 1)
				return fail(p, 414, "request line too long");
			if (p->state == PS_HEADERS && len - p->hdr_start > HTTP_MAX_HEADER_BYTES)
				return fail(p, 431, "header block too large");
			return HTTP_PARSE_AGAIN;
		}
		size_t eol = (size_t)(lf - buf);
		size_t start = p->pos;
		if (eol == start || buf[eol - 1] != '\r')
			return fail(p, 400, "line not terminated by CRLF");
		size_t n = eol - 1 - start;
		if (memchr(buf + start, '\r', n))
			return fail(p, 400, "bare CR");
		p->pos = p->scan = eol + 1;
		int rc;
		if (p->state == PS_REQLINE) {
			if (n == 0) {
				if (++p->leading_crlf > HTTP_MAX_LEADING_CRLF)
					return fail(p, 400, "blank lines before request line");
				continue;
			}
			if (n > HTTP_MAX_REQUEST_LINE)
				return fail(p, 414, "request line too long");
			rc = parse_request_line(p, buf, start, n);
			if (rc == HTTP_PARSE_OK) {
				p->state = PS_HEADERS;
				p->hdr_start = p->pos;
			}
		} else {
			if (eol + 1 - p->hdr_start > HTTP_MAX_HEADER_BYTES)
				return fail(p, 431, "header block too large");
			if (n == 0) {
				p->head_len = eol + 1;
				return finish_head(p, buf, out);
			}
			rc = parse_header_line(p, buf, start, n);
		}
		if (rc != HTTP_PARSE_OK)
			return rc;
	}
}

static void rebase(struct http_view *v, const char *old, size_t len, const char *nb)
{
	if (v->base >= old && v->base < old + len)
		v->base = nb + (v->base - old);
}

void http_head_rebase(struct http_head *h, const char *old, size_t len, const char *nb)
{
	rebase(&h->method, old, len, nb);
	rebase(&h->target, old, len, nb);
	rebase(&h->path, old, len, nb);
	rebase(&h->query, old, len, nb);
	rebase(&h->host, old, len, nb);
	for (int i = 0; i < h->nheaders; i++) {
		rebase(&h->headers[i].name, old, len, nb);
		rebase(&h->headers[i].value, old, len, nb);
	}
}

const struct http_header *http_header_find(const struct http_head *h, const char *name,
					   const struct http_header *after)
{
	int i = after ? (int)(after - h->headers) + 1 : 0;
	size_t n = strlen(name);
	for (; i < h->nheaders; i++)
		if (h->headers[i].name.len == n && ieq(h->headers[i].name.base, n, name))
			return &h->headers[i];
	return NULL;
}

struct http_view http_header_get(const struct http_head *h, const char *name)
{
	const struct http_header *hd = http_header_find(h, name, NULL);
	return hd ? hd->value : (struct http_view){ NULL, 0 };
}

bool http_list_has(struct http_view v, const char *token)
{
	size_t i = 0;
	while (i < v.len) {
		while (i < v.len && (v.base[i] == ' ' || v.base[i] == '\t' || v.base[i] == ','))
			i++;
		size_t e0 = i;
		while (i < v.len && v.base[i] != ',')
			i++;
		size_t e1 = i;
		while (e1 > e0 && (v.base[e1 - 1] == ' ' || v.base[e1 - 1] == '\t'))
			e1--;
		if (e1 > e0 && ieq(v.base + e0, e1 - e0, token))
			return true;
	}
	return false;
}

ssize_t http_pct_decode(const char *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (in[i] != '%') {
			out[o++] = in[i];
			continue;
		}
		if (n - i < 3)
			return -1;
		int hi = hexval((uint8_t)in[i + 1]), lo = hexval((uint8_t)in[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -1;
		out[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	out[o] = '\0';
	return (ssize_t)o;
}

bool http_query_param(struct http_view q, const char *name, struct http_view *val)
{
	size_t nl = strlen(name), i = 0;
	while (i <= q.len && q.len) {
		size_t e0 = i;
		while (i < q.len && q.base[i] != '&')
			i++;
		const char *e = q.base + e0;
		size_t el = i - e0;
		const char *eq = el ? memchr(e, '=', el) : NULL;
		size_t kl = eq ? (size_t)(eq - e) : el;
		if (kl == nl && memcmp(e, name, nl) == 0) {
			if (val)
				*val = eq ? (struct http_view){ eq + 1, el - kl - 1 }
					  : (struct http_view){ e + el, 0 };
			return true;
		}
		i++;
	}
	return false;
}

/* ---- body framing ------------------------------------------------------ */

enum {
	B_DONE = 0,
	B_CL,         /* Content-Length data */
	CK_SIZE,      /* hex digits of a chunk size */
	CK_EXT,       /* after the digits: BWS, extensions, until CR */
	CK_SIZE_LF,   /* LF ending the size line */
	CK_DATA,
	CK_DATA_CR,   /* CRLF after chunk data */
	CK_DATA_LF,
	CK_TRL_START, /* start of a trailer line or the final CRLF */
	CK_TRL,       /* inside a trailer line (skipped) */
	CK_TRL_LF,
	CK_END_LF,    /* LF of the final blank line */
};

void http_body_init(struct http_body *b, int64_t content_length, int64_t max_total)
{
	memset(b, 0, sizeof(*b));
	b->max_total = max_total > 0 ? max_total : INT64_MAX;
	if (content_length < 0) {
		b->state = CK_SIZE;
	} else if (content_length > b->max_total) {
		b->state = B_CL;
		b->left = content_length;
		b->status = 413;
		b->error = "Content-Length over the body size limit";
	} else {
		b->state = content_length ? B_CL : B_DONE;
		b->left = content_length;
	}
}

int64_t http_body_remaining(const struct http_body *b)
{
	if (b->state == B_DONE)
		return 0;
	return b->state == B_CL ? b->left : -1;
}

static int body_fail(struct http_body *b, int status, const char *why)
{
	b->status = status;
	b->error = why;
	return HTTP_PARSE_ERROR;
}

void http_body_consume(struct http_body *b, size_t n)
{
	b->left -= (int64_t)n;
	b->total += (int64_t)n;
	if (b->left == 0)
		b->state = b->state == B_CL ? B_DONE : CK_DATA_CR;
}

/* Errors report the framing bytes before the bad byte as consumed. */
#define FAIL(st, why) do { *skip = i; return body_fail(b, st, why); } while (0)

int http_body_next(struct http_body *b, const uint8_t *in, size_t len, size_t *skip, size_t *avail)
{
	size_t i = 0;
	*avail = 0;
	*skip = 0;
	if (b->status)
		return HTTP_PARSE_ERROR;
	while (i < len) {
		uint8_t c = in[i];
		switch (b->state) {
		case B_DONE:
			*skip = i;
			return HTTP_PARSE_OK;
		case B_CL:
		case CK_DATA:
			*skip = i;
			*avail = (size_t)SILT_MIN((int64_t)(len - i), b->left);
			return HTTP_BODY_DATA;
		case CK_SIZE: {
			int h = hexval(c);
			if (h >= 0) {
				if (++b->ndigits > HTTP_MAX_CHUNK_DIGITS || (b->left >> 59) != 0)
					FAIL(400, "chunk size too large");
				b->left = b->left << 4 | h;
				b->line++;
				i++;
				break;
			}
			if (b->ndigits == 0 || (c != ';' && c != ' ' && c != '\t' && c != '\r'))
				FAIL(400, "malformed chunk size");
			b->state = CK_EXT;
			break;
		}
		case CK_EXT:
			if (c == '\r') {
				b->state = CK_SIZE_LF;
			} else if (c == '\n' || (c < 0x20 && c != '\t') || c == 0x7f) {
				FAIL(400, "malformed chunk extension");
			} else if (++b->line > HTTP_MAX_CHUNK_LINE) {
				FAIL(400, "chunk size line too long");
			}
			i++;
			break;
		case CK_SIZE_LF:
			if (c != '\n')
				FAIL(400, "chunk size line not terminated by CRLF");
			i++;
			b->line = 0;
			b->ndigits = 0;
			if (b->left == 0) {
				b->state = CK_TRL_START;
			} else {
				if (b->left > b->max_total - b->total)
					FAIL(413, "chunked body over the body size limit");
				b->state = CK_DATA;
			}
			break;
		case CK_DATA_CR:
			if (c != '\r')
				FAIL(400, "chunk data not followed by CRLF");
			b->state = CK_DATA_LF;
			i++;
			break;
		case CK_DATA_LF:
			if (c != '\n')
				FAIL(400, "chunk data not followed by CRLF");
			b->state = CK_SIZE;
			b->left = 0;
			i++;
			break;
		case CK_TRL_START:
			b->state = c == '\r' ? CK_END_LF : CK_TRL;
			if (c == '\n')
				FAIL(400, "bare LF in trailer section");
			if (++b->trailer > HTTP_MAX_TRAILER_BYTES)
				FAIL(400, "trailer section too large");
			i++;
			break;
		case CK_TRL:
			if (c == '\r')
				b->state = CK_TRL_LF;
			else if (c == '\n')
				FAIL(400, "bare LF in trailer section");
			if (++b->trailer > HTTP_MAX_TRAILER_BYTES)
				FAIL(400, "trailer section too large");
			i++;
			break;
		case CK_TRL_LF:
			if (c != '\n')
				FAIL(400, "bare CR in trailer section");
			b->state = CK_TRL_START;
			i++;
			break;
		case CK_END_LF:
			if (c != '\n')
				FAIL(400, "bare CR after last chunk");
			b->state = B_DONE;
			*skip = i + 1;
			return HTTP_PARSE_OK;
		default:
			FAIL(400, "body decoder state");
		}
	}
	*skip = i;
	return b->state == B_DONE ? HTTP_PARSE_OK : HTTP_PARSE_AGAIN;
}

#undef FAIL

const char *http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}
