/* md5mb.c - multi-lane MD5, written from RFC 1321. See md5mb.h.
 *
 * MD5 in one paragraph: the message is padded (0x80, zeros, the bit length
 * as a little-endian u64) to whole 64-byte blocks of sixteen little-endian
 * 32-bit words M[0..15]. A 4-word state (a, b, c, d) starts at the RFC's
 * constants; each block runs 64 steps of
 *     a = b + rotl(a + f(b, c, d) + M[g] + T[i], s)
 * with the roles of a..d rotating every step, four rounds of 16 steps with
 * the functions F, G, H, I, message orders g and shifts s below, and
 * T[i] = floor(|sin(i + 1)| * 2^32). The block's input state is added back
 * at the end. The digest is the final state, little-endian.
 *
 * The step list is written once (MD5_STEPS) and expanded three times: the
 * scalar code and the two 8-lane vector kernels, whose lane k holds the
 * state of stream k and word g of stream k's block. A vector kernel loads
 * each lane's 64-byte block as two 8-word rows and transposes the 8x8 word
 * matrices, so that vector g holds word g of every lane. */
#include "core/platform.h"
#include "core/md5mb.h"

#include <endian.h>
#include <pthread.h>
#include <strings.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MD5MB_X86 1
#include <immintrin.h>
#endif

static const uint32_t T[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
	0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
	0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
	0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
	0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
	0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* S(function, a, b, c, d, message word, T index, shift) for the 64 steps:
 * round 1 takes words in order, round 2 (5i+1) mod 16, round 3 (3i+5)
 * mod 16, round 4 7i mod 16. */
#define MD5_STEPS(S)                                                            \
	S(F, a, b, c, d, 0, 0, 7) S(F, d, a, b, c, 1, 1, 12)                    \
	S(F, c, d, a, b, 2, 2, 17) S(F, b, c, d, a, 3, 3, 22)                   \
	S(F, a, b, c, d, 4, 4, 7) S(F, d, a, b, c, 5, 5, 12)                    \
	S(F, c, d, a, b, 6, 6, 17) S(F, b, c, d, a, 7, 7, 22)                   \
	S(F, a, b, c, d, 8, 8, 7) S(F, d, a, b, c, 9, 9, 12)                    \
	S(F, c, d, a, b, 10, 10, 17) S(F, b, c, d, a, 11, 11, 22)               \
	S(F, a, b, c, d, 12, 12, 7) S(F, d, a, b, c, 13, 13, 12)                \
	S(F, c, d, a, b, 14, 14, 17) S(F, b, c, d, a, 15, 15, 22)               \
	S(G, a, b, c, d, 1, 16, 5) S(G, d, a, b, c, 6, 17, 9)                   \
	S(G, c, d, a, b, 11, 18, 14) S(G, b, c, d, a, 0, 19, 20)                \
	S(G, a, b, c, d, 5, 20, 5) S(G, d, a, b, c, 10, 21, 9)                  \
	S(G, c, d, a, b, 15, 22, 14) S(G, b, c, d, a, 4, 23, 20)                \
	S(G, a, b, c, d, 9, 24, 5) S(G, d, a, b, c, 14, 25, 9)                  \
	S(G, c, d, a, b, 3, 26, 14) S(G, b, c, d, a, 8, 27, 20)                 \
	S(G, a, b, c, d, 13, 28, 5) S(G, d, a, b, c, 2, 29, 9)                  \
	S(G, c, d, a, b, 7, 30, 14) S(G, b, c, d, a, 12, 31, 20)                \
	S(H, a, b, c, d, 5, 32, 4) S(H, d, a, b, c, 8, 33, 11)                  \
	S(H, c, d, a, b, 11, 34, 16) S(H, b, c, d, a, 14, 35, 23)               \
	S(H, a, b, c, d, 1, 36, 4) S(H, d, a, b, c, 4, 37, 11)                  \
	S(H, c, d, a, b, 7, 38, 16) S(H, b, c, d, a, 10, 39, 23)                \
	S(H, a, b, c, d, 13, 40, 4) S(H, d, a, b, c, 0, 41, 11)                 \
	S(H, c, d, a, b, 3, 42, 16) S(H, b, c, d, a, 6, 43, 23)                 \
	S(H, a, b, c, d, 9, 44, 4) S(H, d, a, b, c, 12, 45, 11)                 \
	S(H, c, d, a, b, 15, 46, 16) S(H, b, c, d, a, 2, 47, 23)                \
	S(I, a, b, c, d, 0, 48, 6) S(I, d, a, b, c, 7, 49, 10)                  \
	S(I, c, d, a, b, 14, 50, 15) S(I, b, c, d, a, 5, 51, 21)                \
	S(I, a, b, c, d, 12, 52, 6) S(I, d, a, b, c, 3, 53, 10)                 \
	S(I, c, d, a, b, 10, 54, 15) S(I, b, c, d, a, 1, 55, 21)                \
	S(I, a, b, c, d, 8, 56, 6) S(I, d, a, b, c, 15, 57, 10)                 \
	S(I, c, d, a, b, 6, 58, 15) S(I, b, c, d, a, 13, 59, 21)                \
	S(I, a, b, c, d, 4, 60, 6) S(I, d, a, b, c, 11, 61, 10)                 \
	S(I, c, d, a, b, 2, 62, 15) S(I, b, c, d, a, 9, 63, 21)

/* ---- scalar ----------------------------------------------------------- */

/* F = x ? y : z, G = z ? x : y, H = parity, I = y ^ (x | ~z), each in the
 * form with the fewest operations. */
#define SC_F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define SC_G(x, y, z) ((y) ^ ((z) & ((x) ^ (y))))
#define SC_H(x, y, z) ((x) ^ (y) ^ (z))
#define SC_I(x, y, z) ((y) ^ ((x) | ~(z)))
#define SC_ROL(x, s) (((x) << (s)) | ((x) >> (32 - (s))))
#define SC_STEP(f, a, b, c, d, g, t, s)              \
	a += m[g] + T[t];                            \
	a += SC_##f(b, c, d);                        \
	a = SC_ROL(a, s) + b;

static void blocks_scalar(uint32_t h[4], const uint8_t *p, size_t nblocks)
{
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
	for (size_t k = 0; k < nblocks; k++, p += MD5MB_BLOCK) {
		uint32_t m[16];
		memcpy(m, p, sizeof(m));
		for (int i = 0; i < 16; i++)
			m[i] = le32toh(m[i]);
		uint32_t aa = a, bb = b, cc = c, dd = d;
		MD5_STEPS(SC_STEP)
		a += aa;
		b += bb;
		c += cc;
		d += dd;
	}
	h[0] = a;
	h[1] = b;
	h[2] = c;
	h[3] = d;
}

/* Two streams interleaved: MD5 is one long dependency chain, so a second,
 * independent chain fills the issue slots the first leaves idle (about
 * twice the throughput of one stream where no vector kernel runs). */
#define SC2_STEP(f, a, b, c, d, g, t, s)              \
	a##0 += m0[g] + T[t];                         \
	a##1 += m1[g] + T[t];                         \
	a##0 += SC_##f(b##0, c##0, d##0);             \
	a##1 += SC_##f(b##1, c##1, d##1);             \
	a##0 = SC_ROL(a##0, s) + b##0;                \
	a##1 = SC_ROL(a##1, s) + b##1;

static void blocks_scalar2(uint32_t *h0, uint32_t *h1, const uint8_t *p0, const uint8_t *p1, size_t nblocks)
{
	uint32_t a0 = h0[0], b0 = h0[1], c0 = h0[2], d0 = h0[3];
	uint32_t a1 = h1[0], b1 = h1[1], c1 = h1[2], d1 = h1[3];
	for (size_t k = 0; k < nblocks; k++, p0 += MD5MB_BLOCK, p1 += MD5MB_BLOCK) {
		uint32_t m0[16], m1[16];
		memcpy(m0, p0, sizeof(m0));
		memcpy(m1, p1, sizeof(m1));
		for (int i = 0; i < 16; i++) {
			m0[i] = le32toh(m0[i]);
			m1[i] = le32toh(m1[i]);
		}
		uint32_t aa0 = a0, bb0 = b0, cc0 = c0, dd0 = d0;
		uint32_t aa1 = a1, bb1 = b1, cc1 = c1, dd1 = d1;
		MD5_STEPS(SC2_STEP)
		a0 += aa0;
		b0 += bb0;
		c0 += cc0;
		d0 += dd0;
		a1 += aa1;
		b1 += bb1;
		c1 += cc1;
		d1 += dd1;
	}
	h0[0] = a0;
	h0[1] = b0;
	h0[2] = c0;
	h0[3] = d0;
	h1[0] = a1;
	h1[1] = b1;
	h1[2] = c1;
	h1[3] = d1;
}

/* ---- 8-lane vector kernels (x86-64) ------------------------------------ */

#ifdef MD5MB_X86

typedef void (*kernel8_fn)(uint32_t *const h[MD5MB_MAX_LANES], const uint8_t *const p[MD5MB_MAX_LANES],
			   size_t nblocks);

/* Words [off, off+8) of the eight lanes' current blocks into m[base..base+8):
 * m[base+j] holds word off/4+j of every lane. */
#define TRANSPOSE8(p, off, m, base)                                                            \
	do {                                                                                   \
		__m256i r0 = _mm256_loadu_si256((const __m256i *)((p)[0] + (off)));            \
		__m256i r1 = _mm256_loadu_si256((const __m256i *)((p)[1] + (off)));            \
		__m256i r2 = _mm256_loadu_si256((const __m256i *)((p)[2] + (off)));            \
		__m256i r3 = _mm256_loadu_si256((const __m256i *)((p)[3] + (off)));            \
		__m256i r4 = _mm256_loadu_si256((const __m256i *)((p)[4] + (off)));            \
		__m256i r5 = _mm256_loadu_si256((const __m256i *)((p)[5] + (off)));            \
		__m256i r6 = _mm256_loadu_si256((const __m256i *)((p)[6] + (off)));            \
		__m256i r7 = _mm256_loadu_si256((const __m256i *)((p)[7] + (off)));            \
		__m256i t0 = _mm256_unpacklo_epi32(r0, r1), t1 = _mm256_unpackhi_epi32(r0, r1); \
		__m256i t2 = _mm256_unpacklo_epi32(r2, r3), t3 = _mm256_unpackhi_epi32(r2, r3); \
		__m256i t4 = _mm256_unpacklo_epi32(r4, r5), t5 = _mm256_unpackhi_epi32(r4, r5); \
		__m256i t6 = _mm256_unpacklo_epi32(r6, r7), t7 = _mm256_unpackhi_epi32(r6, r7); \
		__m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2); \
		__m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3); \
		__m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6); \
		__m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7); \
		(m)[(base) + 0] = _mm256_permute2x128_si256(u0, u4, 0x20);                      \
		(m)[(base) + 1] = _mm256_permute2x128_si256(u1, u5, 0x20);                      \
		(m)[(base) + 2] = _mm256_permute2x128_si256(u2, u6, 0x20);                      \
		(m)[(base) + 3] = _mm256_permute2x128_si256(u3, u7, 0x20);                      \
		(m)[(base) + 4] = _mm256_permute2x128_si256(u0, u4, 0x31);                      \
		(m)[(base) + 5] = _mm256_permute2x128_si256(u1, u5, 0x31);                      \
		(m)[(base) + 6] = _mm256_permute2x128_si256(u2, u6, 0x31);                      \
		(m)[(base) + 7] = _mm256_permute2x128_si256(u3, u7, 0x31);                      \
	} while (0)

/* The state of lane k is word k of a, b, c, d. */
#define LOAD_STATE(h, a, b, c, d)                                               \
	do {                                                                    \
		uint32_t s_[4][MD5MB_MAX_LANES];                                \
		for (int k_ = 0; k_ < MD5MB_MAX_LANES; k_++)                    \
			for (int w_ = 0; w_ < 4; w_++)                          \
				s_[w_][k_] = (h)[k_][w_];                       \
		a = _mm256_loadu_si256((const __m256i *)s_[0]);                 \
		b = _mm256_loadu_si256((const __m256i *)s_[1]);                 \
		c = _mm256_loadu_si256((const __m256i *)s_[2]);                 \
		d = _mm256_loadu_si256((const __m256i *)s_[3]);                 \
	} while (0)

#define STORE_STATE(h, a, b, c, d)                                              \
	do {                                                                    \
		uint32_t s_[4][MD5MB_MAX_LANES];                                \
		_mm256_storeu_si256((__m256i *)s_[0], a);                       \
		_mm256_storeu_si256((__m256i *)s_[1], b);                       \
		_mm256_storeu_si256((__m256i *)s_[2], c);                       \
		_mm256_storeu_si256((__m256i *)s_[3], d);                       \
		for (int k_ = 0; k_ < MD5MB_MAX_LANES; k_++)                    \
			for (int w_ = 0; w_ < 4; w_++)                          \
				(h)[k_][w_] = s_[w_][k_];                       \
	} while (0)

/* The kernel body, shared by both ISAs: STEP is the ISA's step macro. */
#define KERNEL8_BODY(STEP)                                                      \
	__m256i a, b, c, d;                                                     \
	__m256i m[16];                                                          \
	LOAD_STATE(h, a, b, c, d);                                              \
	for (size_t k = 0; k < nblocks; k++) {                                  \
		const size_t off = k * MD5MB_BLOCK;                             \
		TRANSPOSE8(p, off, m, 0);                                       \
		TRANSPOSE8(p, off + 32, m, 8);                                  \
		__m256i aa = a, bb = b, cc = c, dd = d;                         \
		MD5_STEPS(STEP)                                                 \
		a = _mm256_add_epi32(a, aa);                                    \
		b = _mm256_add_epi32(b, bb);                                    \
		c = _mm256_add_epi32(c, cc);                                    \
		d = _mm256_add_epi32(d, dd);                                    \
	}                                                                       \
	STORE_STATE(h, a, b, c, d);

/* AVX2: no rotate and no three-input logic, so F/G/H/I take 2-3
 * instructions and the rotate three. */
#define A2_F(x, y, z) _mm256_xor_si256(z, _mm256_and_si256(x, _mm256_xor_si256(y, z)))
#define A2_G(x, y, z) _mm256_xor_si256(y, _mm256_and_si256(z, _mm256_xor_si256(x, y)))
#define A2_H(x, y, z) _mm256_xor_si256(_mm256_xor_si256(x, y), z)
#define A2_I(x, y, z) _mm256_xor_si256(y, _mm256_or_si256(x, _mm256_xor_si256(z, ones)))
#define A2_ROL(x, s) _mm256_or_si256(_mm256_slli_epi32(x, s), _mm256_srli_epi32(x, 32 - (s)))
#define A2_STEP(f, a, b, c, d, g, t, s)                                                              \
	a = _mm256_add_epi32(_mm256_add_epi32(a, _mm256_add_epi32(m[g], _mm256_set1_epi32((int)T[t]))), \
			     A2_##f(b, c, d));                                                        \
	a = _mm256_add_epi32(A2_ROL(a, s), b);

__attribute__((target("avx2"))) static void blocks_avx2(uint32_t *const h[MD5MB_MAX_LANES],
							  const uint8_t *const p[MD5MB_MAX_LANES], size_t nblocks)
{
	const __m256i ones = _mm256_set1_epi32(-1);
	KERNEL8_BODY(A2_STEP)
}

/* AVX-512VL on 256-bit registers: vpternlogd computes each of F/G/H/I in
 * one instruction (the immediate is the function's truth table over
 * x=0xF0, y=0xCC, z=0xAA) and vprold rotates in one. */
#define A5_F(x, y, z) _mm256_ternarylogic_epi32(x, y, z, 0xCA)
#define A5_G(x, y, z) _mm256_ternarylogic_epi32(x, y, z, 0xE4)
#define A5_H(x, y, z) _mm256_ternarylogic_epi32(x, y, z, 0x96)
#define A5_I(x, y, z) _mm256_ternarylogic_epi32(x, y, z, 0x39)
#define A5_STEP(f, a, b, c, d, g, t, s)                                                              \
	a = _mm256_add_epi32(_mm256_add_epi32(a, _mm256_add_epi32(m[g], _mm256_set1_epi32((int)T[t]))), \
			     A5_##f(b, c, d));                                                        \
	a = _mm256_add_epi32(_mm256_rol_epi32(a, s), b);

__attribute__((target("avx2,avx512f,avx512vl"))) static void
blocks_avx512(uint32_t *const h[MD5MB_MAX_LANES], const uint8_t *const p[MD5MB_MAX_LANES], size_t nblocks)
{
	KERNEL8_BODY(A5_STEP)
}

#endif /* MD5MB_X86 */

/* ---- kernel choice -------------------------------------------------------- */

struct impl {
	const char *name;
#ifdef MD5MB_X86
	kernel8_fn k8;      /* NULL: scalar only */
	unsigned min_lanes; /* fewer busy lanes run faster in scalar code */
#endif
};

static struct impl g_impl = { .name = "scalar" };
static pthread_once_t g_impl_once = PTHREAD_ONCE_INIT;

static int impl_lookup(const char *name, struct impl *out)
{
	if (strcasecmp(name, "scalar") == 0) {
		*out = (struct impl){ .name = "scalar" };
		return 0;
	}
#ifdef MD5MB_X86
	__builtin_cpu_init();
	if (strcasecmp(name, "avx2") == 0) {
		if (!__builtin_cpu_supports("avx2"))
			return -ENOTSUP;
		*out = (struct impl){ .name = "avx2", .k8 = blocks_avx2, .min_lanes = 3 };
		return 0;
	}
	if (strcasecmp(name, "avx512") == 0) {
		if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512vl"))
			return -ENOTSUP;
		*out = (struct impl){ .name = "avx512", .k8 = blocks_avx512, .min_lanes = 2 };
		return 0;
	}
#else
	if (strcasecmp(name, "avx2") == 0 || strcasecmp(name, "avx512") == 0)
		return -ENOTSUP;
#endif
	return -SILT_EINVAL;
}

static void impl_choose(void)
{
	const char *env = getenv("SILT_MD5MB");
	if (env && impl_lookup(env, &g_impl) == 0)
		return;
	if (impl_lookup("avx512", &g_impl) == 0 || impl_lookup("avx2", &g_impl) == 0)
		return;
	impl_lookup("scalar", &g_impl);
}

const char *md5mb_impl(void)
{
	pthread_once(&g_impl_once, impl_choose);
	return g_impl.name;
}

int md5mb_force_impl(const char *name)
{
	pthread_once(&g_impl_once, impl_choose);
	struct impl im;
	int rc = impl_lookup(name, &im);
	if (rc == 0)
		g_impl = im;
	return rc;
}

/* ---- the block kernel ----------------------------------------------------- */

void md5mb_blocks(uint32_t *const h[], const uint8_t *const p[], unsigned nlanes, size_t nblocks)
{
	if (nlanes == 0 || nblocks == 0)
		return;
	pthread_once(&g_impl_once, impl_choose);
#ifdef MD5MB_X86
	/* A vector call costs the same however few lanes are busy; with one
	 * or two streams the (interleaved) scalar code is as fast or faster
	 * (measured here: AVX-512 8 lanes ~4 GB/s, AVX2 8 lanes ~2.2 GB/s,
	 * scalar ~0.55 GB/s per stream, ~1 GB/s for an interleaved pair). */
	if (g_impl.k8 && nlanes >= g_impl.min_lanes) {
		uint32_t spare[MD5MB_MAX_LANES][4];
		uint32_t *vh[MD5MB_MAX_LANES];
		const uint8_t *vp[MD5MB_MAX_LANES];
		for (unsigned i = 0; i < MD5MB_MAX_LANES; i++) {
			/* Idle lanes hash lane 0's bytes into a throwaway state. */
			vh[i] = i < nlanes ? h[i] : spare[i];
			vp[i] = i < nlanes ? p[i] : p[0];
			if (i >= nlanes)
				memcpy(spare[i], h[0], sizeof(spare[i]));
		}
		g_impl.k8(vh, vp, nblocks);
		return;
	}
#endif
	unsigned i = 0;
	for (; i + 1 < nlanes; i += 2)
		blocks_scalar2(h[i], h[i + 1], p[i], p[i + 1], nblocks);
	if (i < nlanes)
		blocks_scalar(h[i], p[i], nblocks);
}

/* ---- streams -------------------------------------------------------------- */

void md5mb_init(struct md5mb_ctx *c)
{
	c->h[0] = 0x67452301;
	c->h[1] = 0xefcdab89;
	c->h[2] = 0x98badcfe;
	c->h[3] = 0x10325476;
	c->nbytes = 0;
	c->ntail = 0;
}

/* Tops up the partial block from *p; hashes it when complete. Returns false
 * when all input went into a still-partial block. */
static bool tail_fill(struct md5mb_ctx *c, const uint8_t **p, size_t *n)
{
	if (c->ntail == 0)
		return *n > 0;
	size_t k = SILT_MIN((size_t)MD5MB_BLOCK - c->ntail, *n);
	memcpy(c->tail + c->ntail, *p, k);
	c->ntail += (uint32_t)k;
	*p += k;
	*n -= k;
	if (c->ntail < MD5MB_BLOCK)
		return false;
	blocks_scalar(c->h, c->tail, 1);
	c->ntail = 0;
	return *n > 0;
}

void md5mb_update(struct md5mb_ctx *c, const void *data, size_t n)
{
	const uint8_t *p = data;
	c->nbytes += n;
	if (!tail_fill(c, &p, &n))
		return;
	size_t nb = n / MD5MB_BLOCK;
	blocks_scalar(c->h, p, nb);
	p += nb * MD5MB_BLOCK;
	n -= nb * MD5MB_BLOCK;
	memcpy(c->tail, p, n);
	c->ntail = (uint32_t)n;
}

void md5mb_final(struct md5mb_ctx *c, uint8_t out[16])
{
	uint8_t pad[2 * MD5MB_BLOCK];
	size_t np = c->ntail < MD5MB_BLOCK - 8 ? MD5MB_BLOCK : 2 * MD5MB_BLOCK;
	memset(pad, 0, sizeof(pad));
	memcpy(pad, c->tail, c->ntail);
	pad[c->ntail] = 0x80;
	uint64_t bits = htole64(c->nbytes * 8);
	memcpy(pad + np - 8, &bits, 8);
	blocks_scalar(c->h, pad, np / MD5MB_BLOCK);
	for (int i = 0; i < 4; i++) {
		uint32_t w = htole32(c->h[i]);
		memcpy(out + 4 * i, &w, 4);
	}
}

void md5mb_buf(const void *p, size_t n, uint8_t out[16])
{
	struct md5mb_ctx c;
	md5mb_init(&c);
	md5mb_update(&c, p, n);
	md5mb_final(&c, out);
}

/* Partial blocks are settled first, one stream at a time (at most one block
 * each). The whole blocks then run through the lanes: each call advances
 * every busy lane by the fewest blocks any of them has left, a lane that
 * runs dry takes the next stream, and the last streams finish with fewer
 * lanes busy. */
void md5mb_update_jobs(struct md5mb_job *jobs, size_t njobs)
{
	size_t nwork = 0;
	for (size_t i = 0; i < njobs; i++) {
		struct md5mb_ctx *c = jobs[i].ctx;
		const uint8_t *p = jobs[i].p;
		size_t n = jobs[i].n;
		c->nbytes += n;
		if (!tail_fill(c, &p, &n))
			continue;
		size_t nb = n / MD5MB_BLOCK, rest = n % MD5MB_BLOCK;
		memcpy(c->tail, p + nb * MD5MB_BLOCK, rest);
		c->ntail = (uint32_t)rest;
		if (nb)
			jobs[nwork++] = (struct md5mb_job){ c, p, nb };
	}

	uint32_t *lh[MD5MB_MAX_LANES];
	const uint8_t *lp[MD5MB_MAX_LANES];
	size_t ln[MD5MB_MAX_LANES];
	unsigned nact = 0;
	size_t next = 0;
	for (;;) {
		while (nact < MD5MB_MAX_LANES && next < nwork) {
			lh[nact] = jobs[next].ctx->h;
			lp[nact] = jobs[next].p;
			ln[nact] = jobs[next].n;
			nact++;
			next++;
		}
		if (nact == 0)
			break;
		size_t k = ln[0];
		for (unsigned i = 1; i < nact; i++)
			k = SILT_MIN(k, ln[i]);
		md5mb_blocks(lh, lp, nact, k);
		for (unsigned i = 0; i < nact;) {
			lp[i] += k * MD5MB_BLOCK;
			ln[i] -= k;
			if (ln[i] == 0) {
				nact--;
				lh[i] = lh[nact];
				lp[i] = lp[nact];
				ln[i] = ln[nact];
			} else {
				i++;
			}
		}
	}
}
