/* rd.h - bounds-checked reader over bytes that came from outside.
 *
 * Every read past the end (or of a malformed varint) sets `err` and returns
 * zero; later reads keep failing. Callers decode a whole structure and check
 * `r->err` once before acting on it. All multi-byte integers are big-endian
 * (network order), as in the Kafka protocol and its on-disk batches.
 *
 * A reader never owns its bytes: views it returns (rd_bytes) are valid as
 * long as the underlying buffer is. */
#ifndef SILT_RD_H
#define SILT_RD_H

#include "core/platform.h"

struct rd {
	const uint8_t *p;
	const uint8_t *end;
	bool err;
};

static inline void rd_init(struct rd *r, const void *p, size_t len)
{
	r->p = p;
	r->end = (const uint8_t *)p + len;
	r->err = false;
}

static inline size_t rd_left(const struct rd *r)
{
	return r->err ? 0 : (size_t)(r->end - r->p);
}

static inline bool rd_need(struct rd *r, size_t n)
{
	if (SILT_UNLIKELY(r->err || (size_t)(r->end - r->p) < n)) {
		r->err = true;
		return false;
	}
	return true;
}

static inline void rd_fail(struct rd *r)
{
	r->err = true;
}

static inline uint8_t rd_u8(struct rd *r)
{
	if (!rd_need(r, 1))
		return 0;
	return *r->p++;
}

static inline int8_t rd_i8(struct rd *r)
{
	return (int8_t)rd_u8(r);
}

static inline uint16_t rd_be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t rd_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t rd_be64(const uint8_t *p)
{
	return (uint64_t)rd_be32(p) << 32 | rd_be32(p + 4);
}

static inline int16_t rd_i16(struct rd *r)
{
	if (!rd_need(r, 2))
		return 0;
	uint16_t v = rd_be16(r->p);
	r->p += 2;
	return (int16_t)v;
}

static inline int32_t rd_i32(struct rd *r)
{
	if (!rd_need(r, 4))
		return 0;
	uint32_t v = rd_be32(r->p);
	r->p += 4;
	return (int32_t)v;
}

static inline uint32_t rd_u32(struct rd *r)
{
	return (uint32_t)rd_i32(r);
}

static inline int64_t rd_i64(struct rd *r)
{
	if (!rd_need(r, 8))
		return 0;
	uint64_t v = rd_be64(r->p);
	r->p += 8;
	return (int64_t)v;
}

/* Unsigned LEB128 varint, at most 5 bytes for 32 bits / 10 for 64. */
static inline uint64_t rd_uvarint64(struct rd *r, int maxbytes)
{
	uint64_t v = 0;
	for (int i = 0; i < maxbytes; i++) {
		if (!rd_need(r, 1))
			return 0;
		uint8_t b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80))
			return v;
	}
	r->err = true;
	return 0;
}

static inline uint32_t rd_uvarint(struct rd *r)
{
	uint64_t v = rd_uvarint64(r, 5);
	if (v > UINT32_MAX) {
		r->err = true;
		return 0;
	}
	return (uint32_t)v;
}

/* Zig-zag signed varints as used inside Kafka records. */
static inline int32_t rd_varint(struct rd *r)
{
	uint32_t v = rd_uvarint(r);
	return (int32_t)((v >> 1) ^ (~(v & 1) + 1));
}

static inline int64_t rd_varlong(struct rd *r)
{
	uint64_t v = rd_uvarint64(r, 10);
	return (int64_t)((v >> 1) ^ (~(v & 1) + 1));
}

/* Returns a view of the next n bytes (NULL on error). */
static inline const uint8_t *rd_bytes(struct rd *r, size_t n)
{
	if (!rd_need(r, n))
		return NULL;
	const uint8_t *p = r->p;
	r->p += n;
	return p;
}

static inline void rd_skip(struct rd *r, size_t n)
{
	(void)rd_bytes(r, n);
}

/* A {base,len} view; base NULL with len -1 encodes a null string/bytes, and
 * is also what a failed read returns (never a NULL base with a length). */
struct slice {
	const uint8_t *p;
	int32_t len; /* -1 = null */
};

static inline bool slice_eq(struct slice s, const char *cstr)
{
	size_t n = strlen(cstr);
	return s.len >= 0 && (size_t)s.len == n && memcmp(s.p, cstr, n) == 0;
}

/* Kafka STRING (i16 length, -1 = null) and BYTES (i32 length). */
static inline struct slice rd_str(struct rd *r)
{
	struct slice s = { NULL, -1 };
	int16_t n = rd_i16(r);
	if (r->err || n < -1) {
		r->err = true;
		return s;
	}
	if (n >= 0) {
		s.p = rd_bytes(r, (size_t)n);
		s.len = s.p ? n : -1;
	}
	return s;
}

static inline struct slice rd_kbytes(struct rd *r)
{
	struct slice s = { NULL, -1 };
	int32_t n = rd_i32(r);
	if (r->err || n < -1) {
		r->err = true;
		return s;
	}
	if (n >= 0) {
		s.p = rd_bytes(r, (size_t)n);
		s.len = s.p ? n : -1;
	}
	return s;
}

/* KIP-482 compact STRING/BYTES: unsigned varint N+1, 0 = null. */
static inline struct slice rd_compact_str(struct rd *r)
{
	struct slice s = { NULL, -1 };
	uint32_t n = rd_uvarint(r);
	if (r->err || n > INT32_MAX)
		return r->err = true, s;
	if (n > 0) {
		s.p = rd_bytes(r, n - 1);
		s.len = s.p ? (int32_t)(n - 1) : -1;
	}
	return s;
}

/* Array count: i32 (-1 = null, returned as 0 with *isnull) capped by `max`
 * so the caller can allocate count*elem safely. */
static inline int32_t rd_array(struct rd *r, int32_t max)
{
	int32_t n = rd_i32(r);
	if (n == -1)
		return 0;
	if (r->err || n < 0 || n > max || (size_t)n > rd_left(r)) {
		r->err = true;
		return 0;
	}
	return n;
}

static inline int32_t rd_compact_array(struct rd *r, int32_t max)
{
	uint32_t n = rd_uvarint(r);
	if (n == 0)
		return 0;
	n--;
	if (r->err || n > (uint32_t)max || n > rd_left(r)) {
		r->err = true;
		return 0;
	}
	return (int32_t)n;
}

/* Tagged fields (KIP-482): we know none, so skip them all. */
static inline void rd_tags(struct rd *r)
{
	uint32_t n = rd_uvarint(r);
	for (uint32_t i = 0; i < n && !r->err; i++) {
		(void)rd_uvarint(r);
		uint32_t sz = rd_uvarint(r);
		rd_skip(r, sz);
	}
}

#endif
