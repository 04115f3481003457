/* libFuzzer target: the multi-lane MD5 against OpenSSL's.
 *
 * Input: a 4-byte header, then the message bytes. Header byte 0 picks the
 * kernel (scalar / AVX2 / AVX-512, when this CPU has it) and the number of
 * streams (1..16: more than the lanes, so lanes are refilled); bytes 1..3
 * seed the choice of piece sizes. Each stream hashes its own window of the
 * message (windows overlap and start at odd offsets), fed through
 * md5mb_update_jobs in rounds of pseudo-random pieces (often empty, often
 * block-sized, sometimes the rest), mixed with plain md5mb_update calls.
 * Every stream's digest must equal OpenSSL's MD5 of its window. */
#include "core/platform.h"
#include "core/md5mb.h"

#include <openssl/evp.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXS 16

static uint32_t next_rand(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const impls[] = { "scalar", "avx2", "avx512" };
	if (size < 4)
		return 0;
	unsigned ns = 1 + (data[0] & 15);
	if (md5mb_force_impl(impls[(data[0] >> 4) % 3]) != 0)
		md5mb_force_impl("scalar");
	uint32_t seed = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16;
	const uint8_t *msg = data + 4;
	size_t len = size - 4;

	struct md5mb_ctx ctx[MAXS];
	size_t start[MAXS], wlen[MAXS], fed[MAXS];
	for (unsigned i = 0; i < ns; i++) {
		start[i] = len ? (i * 61) % (len + 1) : 0;
		wlen[i] = len - start[i];
		if (i % 3 == 1)
			wlen[i] /= 2;
		fed[i] = 0;
		md5mb_init(&ctx[i]);
	}
	for (int round = 0; round < 64; round++) {
		struct md5mb_job jobs[MAXS];
		size_t nj = 0;
		bool last = round == 63;
		for (unsigned i = 0; i < ns; i++) {
			size_t left = wlen[i] - fed[i];
			size_t k;
			switch (next_rand(&seed) % 5) {
			case 0: k = 0; break;
			case 1: k = next_rand(&seed) % 70; break;
			case 2: k = 64 * (next_rand(&seed) % 8); break;
			case 3: k = left; break;
			default: k = next_rand(&seed) % (left + 1); break;
			}
			k = last ? left : SILT_MIN(k, left);
			const uint8_t *p = msg + start[i] + fed[i];
			fed[i] += k;
			if (next_rand(&seed) % 8 == 0)
				md5mb_update(&ctx[i], p, k);
			else
				jobs[nj++] = (struct md5mb_job){ &ctx[i], p, k };
		}
		md5mb_update_jobs(jobs, nj);
	}
	for (unsigned i = 0; i < ns; i++) {
		uint8_t want[16], got[16];
		unsigned int dl = 0;
		if (!EVP_Digest(msg + start[i], wlen[i], want, &dl, EVP_md5(), NULL))
			abort();
		md5mb_final(&ctx[i], got);
		if (memcmp(want, got, 16) != 0)
			abort();
	}
	return 0;
}
