/* wbuf.h - growable output buffer with a hard maximum, and big-endian writers.
 *
 * A wbuf owns its bytes (`p`, heap). Growth past `max` sets `err` and every
 * later write is dropped, so encoders write a whole response and check once.
 * Writers that emit a length or CRC placeholder return its offset so the
 * caller can patch it after the body is written (wbuf_patch_i32). */
#ifndef SILT_WBUF_H
#define SILT_WBUF_H

#include "core/platform.h"

struct wbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
	size_t max; /* hard cap; 0 means SIZE_MAX/2 */
	bool err;
};

void wbuf_init(struct wbuf *w, size_t initial, size_t max);
void wbuf_destroy(struct wbuf *w);
/* Ensures room for n more bytes; false (and err set) if over max. */
bool wbuf_reserve(struct wbuf *w, size_t n);
void wbuf_reset(struct wbuf *w);
/* Hands the heap bytes to the caller (who frees them) and empties w. */
uint8_t *wbuf_steal(struct wbuf *w, size_t *len);

static inline void wbuf_put(struct wbuf *w, const void *src, size_t n)
{
	if (SILT_UNLIKELY(w->cap - w->len < n) && !wbuf_reserve(w, n))
		return;
	if (n)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

static inline void wbuf_u8(struct wbuf *w, uint8_t v)
{
	wbuf_put(w, &v, 1);
}

static inline void wbuf_i8(struct wbuf *w, int8_t v)
{
	wbuf_u8(w, (uint8_t)v);
}

static inline void wr_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void wr_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void wr_be64(uint8_t *p, uint64_t v)
{
	wr_be32(p, (uint32_t)(v >> 32));
	wr_be32(p + 4, (uint32_t)v);
}

static inline void wbuf_i16(struct wbuf *w, int16_t v)
{
	uint8_t b[2];
	wr_be16(b, (uint16_t)v);
	wbuf_put(w, b, 2);
}

static inline size_t wbuf_i32(struct wbuf *w, int32_t v)
{
	uint8_t b[4];
	size_t at = w->len;
	wr_be32(b, (uint32_t)v);
	wbuf_put(w, b, 4);
	return at;
}

static inline void wbuf_i64(struct wbuf *w, int64_t v)
{
	uint8_t b[8];
	wr_be64(b, (uint64_t)v);
	wbuf_put(w, b, 8);
}

static inline void wbuf_patch_i32(struct wbuf *w, size_t at, int32_t v)
{
	if (!w->err && at + 4 <= w->len)
		wr_be32(w->p + at, (uint32_t)v);
}

static inline void wbuf_uvarint(struct wbuf *w, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	while (v >= 0x80) {
		b[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b[n++] = (uint8_t)v;
	wbuf_put(w, b, n);
}

static inline void wbuf_varint(struct wbuf *w, int64_t v)
{
	wbuf_uvarint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* Kafka STRING: i16 length then bytes; NULL s writes the null string. */
static inline void wbuf_str(struct wbuf *w, const char *s)
{
	if (!s) {
		wbuf_i16(w, -1);
		return;
	}
	size_t n = strlen(s);
	wbuf_i16(w, (int16_t)n);
	wbuf_put(w, s, n);
}

static inline void wbuf_strn(struct wbuf *w, const void *s, int32_t n)
{
	wbuf_i16(w, (int16_t)n);
	if (n > 0)
		wbuf_put(w, s, (size_t)n);
}

/* KIP-482 compact string: uvarint N+1 (0 = null). */
static inline void wbuf_compact_str(struct wbuf *w, const char *s)
{
	if (!s) {
		wbuf_uvarint(w, 0);
		return;
	}
	size_t n = strlen(s);
	wbuf_uvarint(w, n + 1);
	wbuf_put(w, s, n);
}

static inline void wbuf_kbytes(struct wbuf *w, const void *p, int32_t n)
{
	wbuf_i32(w, n);
	if (n > 0)
		wbuf_put(w, p, (size_t)n);
}

#endif
