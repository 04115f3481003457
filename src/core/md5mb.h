/* md5mb.h - MD5 (RFC 1321) over several independent streams at once.
 *
 * S3 ETags are the MD5 of the object, and MD5 is latency-bound: every one
 * of its 64 steps per 64-byte block waits for the previous one, so a single
 * stream runs at ~600 MB/s per core no matter how wide the CPU is, and it
 * cannot be split within one stream. Independent streams, though, can share
 * the machine: one call here advances up to MD5MB_MAX_LANES streams, each
 * over its own next blocks, in the 32-bit lanes of one vector register
 * (AVX-512VL or AVX2 on x86-64, chosen at run time), so hashing eight
 * concurrent uploads costs little more than hashing one.
 *
 * Two layers:
 *   md5mb_init/_update/_final   one stream, scalar (the 1-lane case and the
 *                               bit-exact reference for the vector kernels);
 *   md5mb_update_jobs           many streams: equivalent to calling
 *                               md5mb_update on each job in turn, with the
 *                               whole blocks hashed lane-parallel.
 * A stream's partial block (< 64 bytes) stays in its md5mb_ctx between
 * calls, so callers feed any byte counts they like.
 *
 * Implementation choice: the first call picks AVX-512VL, else AVX2, else
 * the portable scalar code; SILT_MD5MB=scalar|avx2|avx512 in the
 * environment overrides that (for measurements), as does md5mb_force_impl
 * (tests). Every implementation gives the same digests.
 *
 * Threads: a ctx belongs to one thread at a time; the functions share no
 * mutable state except the implementation choice (made once, thread-safe). */
#ifndef SILT_MD5MB_H
#define SILT_MD5MB_H

#include "core/platform.h"

#define MD5MB_MAX_LANES 8
#define MD5MB_BLOCK 64

struct md5mb_ctx {
	uint32_t h[4];
	uint64_t nbytes;          /* bytes fed so far */
	uint8_t tail[MD5MB_BLOCK]; /* the partial block */
	uint32_t ntail;
};

void md5mb_init(struct md5mb_ctx *c);
void md5mb_update(struct md5mb_ctx *c, const void *p, size_t n);
/* Writes the digest. The ctx is spent afterwards: md5mb_init to reuse it. */
void md5mb_final(struct md5mb_ctx *c, uint8_t out[16]);
void md5mb_buf(const void *p, size_t n, uint8_t out[16]);

/* One piece of one stream for md5mb_update_jobs. */
struct md5mb_job {
	struct md5mb_ctx *ctx;
	const uint8_t *p;
	size_t n;
};

/* Same result as md5mb_update(jobs[i].ctx, jobs[i].p, jobs[i].n) for every
 * i, in order. The ctxs must be distinct (one piece per stream per call).
 * jobs[] is used as scratch: its p and n are undefined afterwards. */
void md5mb_update_jobs(struct md5mb_job *jobs, size_t njobs);

/* The block kernel: advances h[i] (4 words each) over nblocks whole
 * blocks at p[i], for i < nlanes (1..MD5MB_MAX_LANES). */
void md5mb_blocks(uint32_t *const h[], const uint8_t *const p[], unsigned nlanes, size_t nblocks);

/* "avx512", "avx2" or "scalar": the kernel md5mb_blocks uses. */
const char *md5mb_impl(void);
/* Tests and benchmarks: use the named kernel from now on. 0, or
 * -ENOTSUP when this CPU cannot run it (or it is not built here),
 * -SILT_EINVAL for an unknown name. Not thread-safe with concurrent
 * hashing. */
int md5mb_force_impl(const char *name);

#endif
