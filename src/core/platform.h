/* platform.h - included first by every silt source file.
 *
 * Fixes the feature-test macros and pulls in the handful of standard headers
 * every module uses, so that no .c file depends on include order. */
#ifndef SILT_PLATFORM_H
#define SILT_PLATFORM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define SILT_UNUSED __attribute__((unused))
#define SILT_LIKELY(x) __builtin_expect(!!(x), 1)
#define SILT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SILT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SILT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SILT_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Project error codes live in a reserved negative range below every errno
 * value, so an int return is 0 (ok), -errno (system) or -SILT_E* (ours). */
enum {
	SILT_EBASE = 10000,
	SILT_ECORRUPT = SILT_EBASE + 1, /* bytes on disk or wire failed a check */
	SILT_ETOOBIG = SILT_EBASE + 2,  /* a length over its configured cap */
	SILT_ERANGE = SILT_EBASE + 3,   /* offset/position outside what exists */
	SILT_EEXIST = SILT_EBASE + 4,   /* named thing already exists */
	SILT_ENOENT = SILT_EBASE + 5,   /* named thing does not exist */
	SILT_EINVAL = SILT_EBASE + 6,   /* malformed input */
	SILT_EAGAIN = SILT_EBASE + 7,   /* incomplete input, call again with more */
};

/* Returns a static string for 0, -errno or -SILT_E*. */
const char *silt_strerror(int err);

/* Out-of-memory on internal allocations aborts (see STYLE.md): memory is
 * bounded by admission limits, so failure here means the host is gone. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
