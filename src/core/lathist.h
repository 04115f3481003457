/* lathist.h - a fixed-size latency histogram for diagnostics.
 *
 * Records durations in microseconds into 10 us buckets up to LATHIST_MAX_US
 * and one overflow bucket (whose samples still count toward max_us), and
 * answers percentiles. No allocation; a histogram belongs to one thread.
 * Used by `silt.debug.request.timing` (kafka/server.c) to log how long
 * requests stay in the server, so a benchmark's tail latency can be split
 * into server time and everything else. */
#ifndef SILT_LATHIST_H
#define SILT_LATHIST_H

#include "core/platform.h"

#define LATHIST_STEP_US 10
#define LATHIST_MAX_US 20000
#define LATHIST_NBUCKETS (LATHIST_MAX_US / LATHIST_STEP_US + 1)

struct lathist {
	uint64_t count;
	int64_t max_us;
	uint64_t over_1ms, over_2ms;
	uint32_t b[LATHIST_NBUCKETS];
};

void lathist_reset(struct lathist *h);
/* Negative durations (clock steps) count as 0. */
void lathist_add(struct lathist *h, int64_t us);
/* The upper edge of the bucket holding the q-quantile sample (0 < q <= 1),
 * so the true value is at most this; max_us for the overflow bucket and
 * for q = 1. 0 when empty. */
int64_t lathist_quantile(const struct lathist *h, double q);

#endif
