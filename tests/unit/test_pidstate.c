/* test_pidstate.c - idempotent producer state. */
#include "core/platform.h"
#include "kafka/errors.h"
#include "kafka/pidstate.h"
#include "test.h"

/* check + record as the Produce handler does; returns the check's code and
 * the offset the producer is answered with (new or original). */
static int produce(struct pidstate *ps, int64_t *next_offset, int64_t pid, int16_t epoch, int32_t seq,
		   int32_t count, int64_t *answered)
{
	int64_t dup;
	int rc = pidstate_check(ps, pid, epoch, seq, count, &dup);
	if (rc != KERR_NONE)
		return rc;
	if (dup >= 0) {
		*answered = dup;
		return rc;
	}
	*answered = *next_offset;
	pidstate_record(ps, pid, epoch, seq, count, *next_offset);
	*next_offset += count;
	return rc;
}

TEST(pidstate_in_order_and_duplicates)
{
	struct pidstate *ps = pidstate_new();
	int64_t next = 100, off;
	/* Ten batches of 3 records each, in order. */
	for (int i = 0; i < 10; i++) {
		CHECK_EQ_INT(produce(ps, &next, 7, 0, i * 3, 3, &off), KERR_NONE);
		CHECK_EQ_INT(off, 100 + i * 3);
	}
	CHECK_EQ_INT(next, 130);
	int16_t epoch;
	int32_t last_seq;
	int64_t last_off;
	CHECK(pidstate_lookup(ps, 7, &epoch, &last_seq, &last_off));
	CHECK_EQ_INT(epoch, 0);
	CHECK_EQ_INT(last_seq, 29);
	CHECK_EQ_INT(last_off, 129);
	/* Retries of the last five batches: success with the original
	 * offsets, nothing appended. */
	for (int i = 5; i < 10; i++) {
		CHECK_EQ_INT(produce(ps, &next, 7, 0, i * 3, 3, &off), KERR_NONE);
		CHECK_EQ_INT(off, 100 + i * 3);
	}
	CHECK_EQ_INT(next, 130);
	/* Older than the last five: out of order. */
	CHECK_EQ_INT(produce(ps, &next, 7, 0, 12, 3, &off), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	/* Same start, different length: not a duplicate, not next either. */
	CHECK_EQ_INT(produce(ps, &next, 7, 0, 27, 2, &off), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	/* The next batch still goes in. */
	CHECK_EQ_INT(produce(ps, &next, 7, 0, 30, 1, &off), KERR_NONE);
	CHECK_EQ_INT(off, 130);
	/* Not idempotent: always appended. */
	int64_t dup;
	CHECK_EQ_INT(pidstate_check(ps, -1, -1, -1, 5, &dup), KERR_NONE);
	CHECK_EQ_INT(dup, -1);
	CHECK_EQ_INT(pidstate_check(ps, 7, 0, 31, 0, &dup), KERR_INVALID_RECORD);
	CHECK_EQ_INT(pidstate_check(ps, 7, 0, -1, 1, &dup), KERR_INVALID_RECORD);
	pidstate_free(ps);
}

TEST(pidstate_gap_and_unknown_producer)
{
	struct pidstate *ps = pidstate_new();
	int64_t next = 0, off;
	/* Unknown producers may start anywhere (state lost on restart). */
	CHECK_EQ_INT(produce(ps, &next, 1, 0, 0, 2, &off), KERR_NONE);
	CHECK_EQ_INT(produce(ps, &next, 2, 3, 500, 2, &off), KERR_NONE);
	/* Gap of one. */
	CHECK_EQ_INT(produce(ps, &next, 1, 0, 3, 1, &off), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	/* Backwards, not a duplicate. */
	CHECK_EQ_INT(produce(ps, &next, 1, 0, 1, 1, &off), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	CHECK_EQ_INT(produce(ps, &next, 1, 0, 2, 1, &off), KERR_NONE);
	CHECK_EQ_INT(produce(ps, &next, 2, 3, 502, 1, &off), KERR_NONE);
	CHECK_EQ_INT(produce(ps, &next, 2, 3, 504, 1, &off), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	CHECK_EQ_INT(pidstate_count(ps), 2);
	pidstate_free(ps);
}

TEST(pidstate_epochs)
{
	struct pidstate *ps = pidstate_new();
	int64_t next = 0, off;
	CHECK_EQ_INT(produce(ps, &next, 9, 5, 0, 4, &off), KERR_NONE);
	CHECK_EQ_INT(produce(ps, &next, 9, 5, 4, 4, &off), KERR_NONE);
	/* A zombie with an older epoch. */
	CHECK_EQ_INT(produce(ps, &next, 9, 4, 8, 1, &off), KERR_INVALID_PRODUCER_EPOCH);
	CHECK_EQ_INT(produce(ps, &next, 9, 4, 0, 4, &off), KERR_INVALID_PRODUCER_EPOCH);
	/* A bumped epoch must restart at 0. */
	CHECK_EQ_INT(produce(ps, &next, 9, 6, 8, 1, &off), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	CHECK_EQ_INT(produce(ps, &next, 9, 6, 0, 2, &off), KERR_NONE);
	CHECK_EQ_INT(off, 8);
	int16_t epoch;
	CHECK(pidstate_lookup(ps, 9, &epoch, NULL, NULL));
	CHECK_EQ_INT(epoch, 6);
	/* The old epoch's batches are forgotten: (0,3) at epoch 6 is not a
	 * duplicate of epoch 5's first batch, and epoch 5 is now stale. */
	CHECK_EQ_INT(produce(ps, &next, 9, 5, 4, 4, &off), KERR_INVALID_PRODUCER_EPOCH);
	CHECK_EQ_INT(produce(ps, &next, 9, 6, 0, 4, &off), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	CHECK_EQ_INT(produce(ps, &next, 9, 6, 0, 2, &off), KERR_NONE); /* retry */
	CHECK_EQ_INT(off, 8);
	CHECK_EQ_INT(produce(ps, &next, 9, 6, 2, 2, &off), KERR_NONE);
	CHECK_EQ_INT(off, 10);
	pidstate_free(ps);
}

TEST(pidstate_sequence_wraps_at_int32_max)
{
	struct pidstate *ps = pidstate_new();
	int64_t next = 0, off;
	CHECK_EQ_INT(produce(ps, &next, 3, 0, INT32_MAX - 4, 3, &off), KERR_NONE); /* ..MAX-2 */
	/* This batch spans the wrap: MAX-1, MAX, 0, 1. */
	CHECK_EQ_INT(produce(ps, &next, 3, 0, INT32_MAX - 1, 4, &off), KERR_NONE);
	int32_t last_seq;
	CHECK(pidstate_lookup(ps, 3, NULL, &last_seq, NULL));
	CHECK_EQ_INT(last_seq, 1);
	CHECK_EQ_INT(produce(ps, &next, 3, 0, INT32_MAX - 1, 4, &off), KERR_NONE); /* retry */
	CHECK_EQ_INT(off, 3);
	CHECK_EQ_INT(produce(ps, &next, 3, 0, 2, 1, &off), KERR_NONE);
	CHECK_EQ_INT(off, 7);
	/* Exactly at MAX then 0. */
	CHECK_EQ_INT(produce(ps, &next, 4, 0, INT32_MAX, 1, &off), KERR_NONE);
	CHECK_EQ_INT(produce(ps, &next, 4, 0, INT32_MAX, 1, &off), KERR_NONE);
	CHECK_EQ_INT(off, 8);
	CHECK_EQ_INT(produce(ps, &next, 4, 0, 1, 1, &off), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	CHECK_EQ_INT(produce(ps, &next, 4, 0, 0, 1, &off), KERR_NONE);
	CHECK_EQ_INT(off, 9);
	pidstate_free(ps);
}

TEST(pidstate_eviction_bound)
{
	struct pidstate *ps = pidstate_new();
	int64_t next = 0, off;
	for (int64_t pid = 0; pid < 12000; pid++)
		CHECK_EQ_INT(produce(ps, &next, pid, 0, 0, 1, &off), KERR_NONE);
	CHECK_EQ_INT(pidstate_count(ps), PIDSTATE_DEFAULT_MAX_PIDS);
	/* The oldest went first. */
	CHECK(!pidstate_lookup(ps, 0, NULL, NULL, NULL));
	CHECK(!pidstate_lookup(ps, 1999, NULL, NULL, NULL));
	CHECK(pidstate_lookup(ps, 2000, NULL, NULL, NULL));
	CHECK(pidstate_lookup(ps, 11999, NULL, NULL, NULL));
	/* Use keeps a producer: touch 2000, then add one more. */
	CHECK_EQ_INT(produce(ps, &next, 2000, 0, 1, 1, &off), KERR_NONE);
	CHECK_EQ_INT(produce(ps, &next, 12000, 0, 0, 1, &off), KERR_NONE);
	CHECK(pidstate_lookup(ps, 2000, NULL, NULL, NULL));
	CHECK(!pidstate_lookup(ps, 2001, NULL, NULL, NULL));
	/* An evicted producer comes back at any sequence. */
	CHECK_EQ_INT(produce(ps, &next, 5, 0, 1, 1, &off), KERR_NONE);
	/* Shrinking evicts at once. */
	pidstate_set_max_pids(ps, 10);
	CHECK_EQ_INT(pidstate_count(ps), 10);
	CHECK(pidstate_lookup(ps, 5, NULL, NULL, NULL));
	CHECK(pidstate_lookup(ps, 12000, NULL, NULL, NULL));
	pidstate_free(ps);
}

TEST(pidstate_rebuild_by_replay)
{
	/* Replaying the batch headers of the log (pidstate_record in offset
	 * order) gives a table that answers like the original. */
	struct pidstate *a = pidstate_new(), *b = pidstate_new();
	int64_t next = 0, off;
	for (int i = 0; i < 20; i++) {
		int64_t pid = i % 3;
		int32_t seq;
		int16_t epoch = 0;
		int64_t before = next;
		if (!pidstate_lookup(a, pid, NULL, &seq, NULL))
			seq = -1;
		CHECK_EQ_INT(produce(a, &next, pid, epoch, seq + 1, 2, &off), KERR_NONE);
		pidstate_record(b, pid, epoch, seq + 1, 2, before);
	}
	for (int64_t pid = 0; pid < 3; pid++) {
		int32_t sa, sb;
		int64_t oa, ob, da, db;
		CHECK(pidstate_lookup(a, pid, NULL, &sa, &oa));
		CHECK(pidstate_lookup(b, pid, NULL, &sb, &ob));
		CHECK_EQ_INT(sa, sb);
		CHECK_EQ_INT(oa, ob);
		/* A retry of the newest batch is a duplicate in both. */
		CHECK_EQ_INT(pidstate_check(a, pid, 0, sa - 1, 2, &da), KERR_NONE);
		CHECK_EQ_INT(pidstate_check(b, pid, 0, sb - 1, 2, &db), KERR_NONE);
		CHECK_EQ_INT(da, db);
		CHECK(da >= 0);
	}
	pidstate_free(a);
	pidstate_free(b);
}
