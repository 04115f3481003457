/* libFuzzer target: HTTP request heads and bodies.
 *
 * The input is parsed three ways: whole, byte by byte, and in pieces cut
 * where the input's first byte says, each time from a fresh copy so a
 * parser that kept pointers into an old buffer reads freed memory. All
 * three must agree (status, head length, every view's offset). A parsed
 * head's body framing (Content-Length or chunked) then decodes the bytes
 * after the head, whole and one byte at a time, which must also agree. */
#include "core/platform.h"
#include "http/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	int rc;
	int status;
	size_t head_len;
	struct http_head h;
	const char *base;
};

static void check_view(struct http_view v, const char *base, size_t len)
{
	if (!v.base)
		return;
	if (v.len == 1 && v.base[0] == '/' && (v.base < base || v.base >= base + len))
		return; /* the static "/" of an absolute-form target */
	if (v.base < base || v.base + v.len > base + len)
		abort();
}

/* Parses data[0..size) delivered in steps; `cut` picks step sizes. */
static void parse_steps(struct http_parser *p, const uint8_t *data, size_t size, unsigned cut,
			struct outcome *o, char **keep)
{
	http_parser_reset(p);
	char *buf = NULL;
	size_t have = 0;
	int rc = HTTP_PARSE_AGAIN;
	unsigned k = cut;
	while (rc == HTTP_PARSE_AGAIN && have < size) {
		size_t step = cut == 0 ? size : 1 + (k % 7) * (k % 3);
		k = k * 1103515245u + 12345u;
		have = SILT_MIN(size, have + step);
		char *nb = malloc(have ? have : 1);
		if (!nb)
			abort();
		memcpy(nb, data, have);
		free(buf);
		buf = nb;
		rc = http_parse_head(p, buf, have, &o->h);
	}
	o->rc = rc;
	o->status = rc == HTTP_PARSE_ERROR ? p->status : 0;
	o->head_len = rc == HTTP_PARSE_OK ? p->head_len : 0;
	o->base = buf;
	if (rc == HTTP_PARSE_OK) {
		if (p->head_len > have || p->head_len < 4)
			abort();
		check_view(o->h.method, buf, p->head_len);
		check_view(o->h.target, buf, p->head_len);
		check_view(o->h.path, buf, p->head_len);
		check_view(o->h.query, buf, p->head_len);
		check_view(o->h.host, buf, p->head_len);
		for (int i = 0; i < o->h.nheaders; i++) {
			check_view(o->h.headers[i].name, buf, p->head_len);
			check_view(o->h.headers[i].value, buf, p->head_len);
		}
		if (o->h.nheaders > HTTP_MAX_HEADERS)
			abort();
	}
	if (rc == HTTP_PARSE_ERROR && (p->status < 400 || p->status > 505 || !p->error))
		abort();
	*keep = buf;
}

static void same_view(struct http_view a, const char *ab, struct http_view b, const char *bb)
{
	if (a.len != b.len || (!a.base) != (!b.base))
		abort();
	if (a.base && a.len && memcmp(a.base, b.base, a.len) != 0)
		abort();
	(void)ab;
	(void)bb;
}

static void same(const struct outcome *a, const struct outcome *b)
{
	if (a->rc != b->rc || a->status != b->status || a->head_len != b->head_len)
		abort();
	if (a->rc != HTTP_PARSE_OK)
		return;
	same_view(a->h.method, a->base, b->h.method, b->base);
	same_view(a->h.target, a->base, b->h.target, b->base);
	same_view(a->h.path, a->base, b->h.path, b->base);
	same_view(a->h.query, a->base, b->h.query, b->base);
	if (a->h.nheaders != b->h.nheaders || a->h.content_length != b->h.content_length ||
	    a->h.keep_alive != b->h.keep_alive || a->h.expect_continue != b->h.expect_continue)
		abort();
}

/* Decodes a body; returns the total data bytes, and sets *end to the
 * bytes used (or size on AGAIN) and *rc. */
static int64_t decode(int64_t clen, const uint8_t *d, size_t size, bool bytewise, int *rc_out,
		      size_t *end)
{
	struct http_body b;
	http_body_init(&b, clen, 1 << 20);
	size_t pos = 0, have = bytewise ? 0 : size;
	int64_t total = 0;
	int rc = HTTP_PARSE_AGAIN;
	for (;;) {
		size_t skip, avail;
		rc = http_body_next(&b, d + pos, have - pos, &skip, &avail);
		if (skip > have - pos)
			abort();
		pos += skip;
		if (rc == HTTP_BODY_DATA) {
			if (avail == 0 || avail > have - pos)
				abort();
			http_body_consume(&b, avail);
			pos += avail;
			total += (int64_t)avail;
			continue;
		}
		if (rc != HTTP_PARSE_AGAIN || have == size)
			break;
		have++;
	}
	*rc_out = rc;
	*end = pos;
	return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned cut = data[0];
	data++;
	size--;
	struct http_parser p;
	http_parser_init(&p);
	struct outcome whole, bytes, pieces;
	char *b1, *b2, *b3;
	parse_steps(&p, data, size, 0, &whole, &b1);
	/* Compare by value before the parser's header array is reused. */
	struct http_head h = whole.h;
	int64_t clen = h.content_length;
	bool ok = whole.rc == HTTP_PARSE_OK;
	size_t hl = whole.head_len;
	struct http_parser q, r;
	http_parser_init(&q);
	http_parser_init(&r);
	parse_steps(&q, data, size, 1, &bytes, &b2);
	parse_steps(&r, data, size, cut | 1, &pieces, &b3);
	same(&whole, &bytes);
	same(&whole, &pieces);
	if (ok) {
		struct http_view v;
		(void)http_query_param(h.query, "uploadId", &v);
		(void)http_header_get(&h, "content-type");
		char *dec = malloc(h.path.len + 1);
		if (!dec)
			abort();
		ssize_t dn = http_pct_decode(h.path.base, h.path.len, dec);
		if (dn > (ssize_t)h.path.len)
			abort();
		free(dec);
		int rc1, rc2;
		size_t e1, e2;
		int64_t t1 = decode(clen, data + hl, size - hl, false, &rc1, &e1);
		int64_t t2 = decode(clen, data + hl, size - hl, true, &rc2, &e2);
		if (rc1 != rc2 || t1 != t2 || (rc1 == HTTP_PARSE_OK && e1 != e2))
			abort();
		if (clen >= 0 && rc1 == HTTP_PARSE_OK && t1 != clen)
			abort();
	}
	free(b1);
	free(b2);
	free(b3);
	http_parser_destroy(&p);
	http_parser_destroy(&q);
	http_parser_destroy(&r);
	return 0;
}
