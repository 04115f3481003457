/* lathist.c - fixed-size latency histogram (see lathist.h). */
#include "core/platform.h"
#include "core/lathist.h"

void lathist_reset(struct lathist *h)
{
	memset(h, 0, sizeof(*h));
}

void lathist_add(struct lathist *h, int64_t us)
{
	if (us < 0)
		us = 0;
	int64_t i = us / LATHIST_STEP_US;
	if (i >= LATHIST_NBUCKETS)
		i = LATHIST_NBUCKETS - 1;
	h->b[i]++;
	h->count++;
	if (us > h->max_us)
		h->max_us = us;
	if (us > 1000)
		h->over_1ms++;
	if (us > 2000)
		h->over_2ms++;
}

int64_t lathist_quantile(const struct lathist *h, double q)
{
	if (h->count == 0)
		return 0;
	if (q >= 1.0)
		return h->max_us;
	/* The rank of the q-quantile sample, 1-based, rounded up. */
	uint64_t rank = (uint64_t)(q * (double)h->count);
	if ((double)rank < q * (double)h->count)
		rank++;
	if (rank == 0)
		rank = 1;
	uint64_t acc = 0;
	for (int i = 0; i < LATHIST_NBUCKETS - 1; i++) {
		acc += h->b[i];
		if (acc >= rank)
			return SILT_MIN((int64_t)(i + 1) * LATHIST_STEP_US, h->max_us);
	}
	return h->max_us;
}
