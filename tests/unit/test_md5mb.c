/* test_md5mb.c - the multi-lane MD5 against OpenSSL's MD5: every kernel
 * this CPU runs, many lengths, alignments, lane counts and split points. */
#include "core/platform.h"
#include "core/md5mb.h"
#include "core/util.h"
#include "test.h"

#include <math.h>

#include <openssl/evp.h>

static void ref_md5(const void *p, size_t n, uint8_t out[16])
{
	unsigned int len = 0;
	if (!EVP_Digest(p, n, out, &len, EVP_md5(), NULL) || len != 16)
		abort();
}

/* xorshift: reproducible bytes and choices without libc's rand state. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng_next(&s) >> 24);
}

static const char *const impls[] = { "scalar", "avx2", "avx512" };

/* Runs fn once per kernel this machine supports; restores the default. */
#define FOR_EACH_IMPL(...)                                                       \
	do {                                                                     \
		const char *dflt_ = md5mb_impl();                                \
		for (size_t ii_ = 0; ii_ < SILT_ARRAY_LEN(impls); ii_++) {       \
			if (md5mb_force_impl(impls[ii_]) != 0)                   \
				continue;                                        \
			__VA_ARGS__;                                                  \
		}                                                                \
		CHECK(md5mb_force_impl(dflt_) == 0);                             \
	} while (0)

TEST(md5mb_constants_from_sine)
{
	/* T[i] = floor(|sin(i + 1)| * 2^32): the RFC test suite below checks
	 * the table through digests; here the definition itself for the first
	 * and last entries. */
	CHECK_EQ_INT((uint32_t)floor(fabs(sin(1.0)) * 4294967296.0), 0xd76aa478u);
	CHECK_EQ_INT((uint32_t)floor(fabs(sin(64.0)) * 4294967296.0), 0xeb86d391u);
	const char *dflt = md5mb_impl();
	CHECK(md5mb_force_impl("nope") == -SILT_EINVAL);
	CHECK(strcmp(md5mb_impl(), dflt) == 0);
}

TEST(md5mb_rfc1321_suite)
{
	static const struct {
		const char *in, *hex;
	} v[] = {
		{ "", "d41d8cd98f00b204e9800998ecf8427e" },
		{ "a", "0cc175b9c0f1b6a831c399e269772661" },
		{ "abc", "900150983cd24fb0d6963f7d28e17f72" },
		{ "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
		{ "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
		{ "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
		  "d174ab98d277d9f5a5611c2c9f419d9f" },
		{ "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
		  "57edf4a22be3c955ac49da2e2107b67a" },
	};
	for (size_t i = 0; i < SILT_ARRAY_LEN(v); i++) {
		uint8_t d[16];
		char hex[33];
		md5mb_buf(v[i].in, strlen(v[i].in), d);
		for (int k = 0; k < 16; k++)
			snprintf(hex + 2 * k, 3, "%02x", d[k]);
		CHECK(strcmp(hex, v[i].hex) == 0);
	}
}

/* Every length around the padding boundaries and a few block multiples,
 * at every alignment mod 8, fed at once and in odd pieces. */
TEST(md5mb_single_stream_lengths)
{
	size_t cap = 4096 + 64;
	uint8_t *buf = xmalloc(cap + 16);
	fill(buf, cap + 16, 1);
	for (size_t n = 0; n <= 4096 + 3; n += (n < 300 ? 1 : 61)) {
		for (size_t al = 0; al < 8; al += 3) {
			uint8_t want[16], got[16];
			ref_md5(buf + al, n, want);
			md5mb_buf(buf + al, n, got);
			CHECK(memcmp(want, got, 16) == 0);
			struct md5mb_ctx c;
			md5mb_init(&c);
			size_t off = 0, step = 1 + n % 97;
			while (off < n) {
				size_t k = SILT_MIN(step, n - off);
				md5mb_update(&c, buf + al + off, k);
				off += k;
				step = step * 3 % 131 + 1;
			}
			md5mb_final(&c, got);
			CHECK(memcmp(want, got, 16) == 0);
		}
	}
	free(buf);
}

/* The block kernel with 1..8 lanes, each lane its own data at its own
 * alignment, against the scalar kernel. */
TEST(md5mb_blocks_lanes)
{
	const size_t nb = 37;
	uint8_t *buf = xmalloc(MD5MB_MAX_LANES * (nb * 64 + 8));
	fill(buf, MD5MB_MAX_LANES * (nb * 64 + 8), 2);
	FOR_EACH_IMPL({
		for (unsigned lanes = 1; lanes <= MD5MB_MAX_LANES; lanes++) {
			uint32_t st[MD5MB_MAX_LANES][4], ref[MD5MB_MAX_LANES][4];
			uint32_t *hp[MD5MB_MAX_LANES];
			const uint8_t *pp[MD5MB_MAX_LANES];
			for (unsigned i = 0; i < lanes; i++) {
				for (int w = 0; w < 4; w++)
					st[i][w] = ref[i][w] = 0x01020304u * (i + 1) + (uint32_t)w;
				hp[i] = st[i];
				pp[i] = buf + i * (nb * 64 + 8) + (i % 8);
			}
			md5mb_blocks(hp, pp, lanes, nb);
			/* Reference: the RFC's stream over the same blocks from
			 * the same start state, through md5mb_update with the
			 * padding stripped (only whole blocks, so no tail). */
			for (unsigned i = 0; i < lanes; i++) {
				struct md5mb_ctx c;
				md5mb_init(&c);
				memcpy(c.h, ref[i], sizeof(c.h));
				CHECK(md5mb_force_impl("scalar") == 0);
				md5mb_update(&c, pp[i], nb * 64);
				CHECK(md5mb_force_impl(impls[ii_]) == 0);
				CHECK(memcmp(c.h, st[i], sizeof(c.h)) == 0);
			}
		}
	});
	free(buf);
}

/* md5mb_update_jobs against OpenSSL: random numbers of streams with random
 * lengths (often empty, often equal, sometimes huge next to tiny), fed in
 * several rounds of random pieces, every kernel. */
TEST(md5mb_jobs_random)
{
	enum { MAXS = 21, ROUNDS = 4 };
	const size_t maxlen = 300000;
	uint8_t *data = xmalloc(MAXS * maxlen);
	fill(data, MAXS * maxlen, 3);
	uint64_t s = 42;
	FOR_EACH_IMPL({
		for (int trial = 0; trial < 60; trial++) {
			size_t ns = 1 + rng_next(&s) % MAXS;
			size_t len[MAXS], fed[MAXS];
			struct md5mb_ctx ctx[MAXS];
			for (size_t i = 0; i < ns; i++) {
				uint64_t r = rng_next(&s);
				switch (r % 5) {
				case 0: len[i] = 0; break;
				case 1: len[i] = r % 200; break;
				case 2: len[i] = 64 * (1 + r % 50); break;
				case 3: len[i] = 12345; break;
				default: len[i] = (size_t)((r >> 8) % maxlen); break;
				}
				fed[i] = 0;
				md5mb_init(&ctx[i]);
			}
			for (int round = 0; round < ROUNDS; round++) {
				struct md5mb_job jobs[MAXS];
				size_t nj = 0;
				for (size_t i = 0; i < ns; i++) {
					size_t left = len[i] - fed[i];
					size_t k = round == ROUNDS - 1 ? left : (left ? rng_next(&s) % (left + 1) : 0);
					if (k == 0 && rng_next(&s) % 2)
						continue; /* absent this round */
					jobs[nj++] = (struct md5mb_job){ &ctx[i], data + i * maxlen + fed[i], k };
					fed[i] += k;
				}
				md5mb_update_jobs(jobs, nj);
			}
			for (size_t i = 0; i < ns; i++) {
				uint8_t want[16], got[16];
				ref_md5(data + i * maxlen, len[i], want);
				md5mb_final(&ctx[i], got);
				if (memcmp(want, got, 16) != 0) {
					fprintf(stderr, "  impl %s trial %d stream %zu len %zu\n", impls[ii_], trial, i,
						len[i]);
					CHECK(memcmp(want, got, 16) == 0);
				}
			}
		}
	});
	free(data);
}

/* Throughput of each kernel at 1, 2, 4 and 8 busy lanes (a measurement,
 * not a test): build/unit_tests tool_md5mb_speed. */
TEST(tool_md5mb_speed)
{
	const size_t per = 8 << 20;
	uint8_t *data = xmalloc(MD5MB_MAX_LANES * per);
	fill(data, MD5MB_MAX_LANES * per, 4);
	{
		int64_t t0 = mono_us();
		uint8_t d[16];
		for (int i = 0; i < 4; i++)
			ref_md5(data, per, d);
		int64_t t1 = mono_us();
		printf("openssl      1 lane : %7.0f MB/s\n", 4.0 * per / (double)(t1 - t0));
	}
	FOR_EACH_IMPL({
		for (unsigned lanes = 1; lanes <= MD5MB_MAX_LANES; lanes *= 2) {
			struct md5mb_ctx c[MD5MB_MAX_LANES];
			struct md5mb_job j[MD5MB_MAX_LANES];
			int64_t t0 = mono_us();
			for (int rep = 0; rep < 4; rep++) {
				for (unsigned i = 0; i < lanes; i++) {
					md5mb_init(&c[i]);
					j[i] = (struct md5mb_job){ &c[i], data + i * per, per };
				}
				md5mb_update_jobs(j, lanes);
			}
			int64_t t1 = mono_us();
			printf("%-8s %2u lanes: %7.0f MB/s\n", impls[ii_], lanes,
			       4.0 * lanes * per / (double)(t1 - t0));
		}
	});
	free(data);
}
