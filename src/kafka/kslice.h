/* kslice.h - small helpers on Kafka string slices (struct slice, core/rd.h)
 * shared by the group coordinator and the offsets store. Unlike slice_eq, a
 * null slice counts as the empty string here: Kafka clients send either for
 * "no value" in the group APIs. */
#ifndef SILT_KAFKA_KSLICE_H
#define SILT_KAFKA_KSLICE_H

#include "core/platform.h"
#include "core/rd.h"

#include <string.h>

/* Length of s, 0 for a null slice. */
static inline size_t ks_len(struct slice s)
{
	return s.len > 0 ? (size_t)s.len : 0;
}

static inline bool ks_eq(struct slice s, const char *c)
{
	size_t n = strlen(c);
	return ks_len(s) == n && (n == 0 || memcmp(s.p, c, n) == 0);
}

/* A name with a NUL byte cannot be kept as a C string (nor journaled). */
static inline bool ks_has_nul(struct slice s)
{
	return s.len > 0 && memchr(s.p, 0, (size_t)s.len) != NULL;
}

/* A NUL-terminated copy the caller frees ("" for a null slice). */
static inline char *ks_dup(struct slice s)
{
	return xstrndup(s.len > 0 ? (const char *)s.p : "", ks_len(s));
}

/* A heap copy of n bytes the caller frees; NULL for n <= 0. */
static inline uint8_t *ks_bdup(const void *p, int32_t n)
{
	if (n <= 0)
		return NULL;
	uint8_t *d = xmalloc((size_t)n);
	memcpy(d, p, (size_t)n);
	return d;
}

/* FNV-1a over n bytes, continuing from h. */
static inline uint32_t ks_hash(const void *p, size_t n, uint32_t h)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

#endif
