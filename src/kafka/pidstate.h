/* pidstate.h - idempotent producer state of one partition.
 *
 * For every producerId that wrote to the partition: its current epoch and
 * the last PIDSTATE_MAX_BATCHES batches it appended (first/last sequence,
 * first/last offset), so the Produce handler can tell an append from a retry
 * of something already written (answered with the original offsets) from a
 * gap or a zombie producer. Rules (KAFKA-NOTES.md, "Idempotence"):
 *
 *   unknown producerId     any baseSequence is accepted (see below)
 *   lower epoch            INVALID_PRODUCER_EPOCH (47)
 *   higher epoch           baseSequence must be 0, else
 *                          OUT_OF_ORDER_SEQUENCE_NUMBER (45); recording it
 *                          forgets the old epoch's batches
 *   same epoch             same first and last sequence as one of the last 5
 *                          batches: duplicate; baseSequence == lastSeq + 1
 *                          (INT32_MAX wraps to 0): append; else 45
 *
 * An unknown producer may start at any sequence, not only 0, on purpose:
 * the state of a producer disappears when it is evicted (the table holds at
 * most max_pids producers, least recently used go first), when the broker
 * restarts without replaying the batch that last mentioned it, or when
 * retention deletes its batches; answering 45 (or UNKNOWN_PRODUCER_ID) then
 * would make a live producer fail although nothing was lost. The price is
 * that a duplicate of a batch from before the loss is appended again. Kafka
 * itself accepts unknown producers with any sequence since 2.5 (KIP-360).
 *
 * Rebuilding after a restart: call pidstate_record for every batch with
 * producerId >= 0 in offset order (baseSequence, recordsCount =
 * lastOffsetDelta + 1 and baseOffset from the headers, e.g. via
 * kbatch_seglog_format.scan_header plus kbatch_parse_header over the last
 * segment(s)); the table then holds the same state as before.
 *
 * Threads: none of its own. A pidstate belongs to its partition; the caller
 * holds the partition's mutex around pidstate_check + append +
 * pidstate_record so no other batch slips in between. */
#ifndef SILT_KAFKA_PIDSTATE_H
#define SILT_KAFKA_PIDSTATE_H

#include "core/platform.h"

#define PIDSTATE_MAX_BATCHES 5
#define PIDSTATE_DEFAULT_MAX_PIDS 10000

struct pidstate;

/* A table limited to PIDSTATE_DEFAULT_MAX_PIDS producers; owned by the
 * caller, freed with pidstate_free. */
struct pidstate *pidstate_new(void);
void pidstate_free(struct pidstate *ps);
/* Changes the producer limit (>= 1), evicting the least recently used
 * producers down to it at once. */
void pidstate_set_max_pids(struct pidstate *ps, uint32_t max_pids);
/* Producers currently known. */
uint32_t pidstate_count(const struct pidstate *ps);

/* Decides what to do with a batch of `count` records (>= 1) starting at
 * sequence base_seq from producer pid at epoch `epoch`. Returns a Kafka
 * error code (errors.h):
 *   KERR_NONE and *dup_base_offset == -1: append it, then pidstate_record;
 *   KERR_NONE and *dup_base_offset >= 0: a retry of a batch already in the
 *     log at that base offset: do not append, answer success with it;
 *   KERR_OUT_OF_ORDER_SEQUENCE_NUMBER, KERR_INVALID_PRODUCER_EPOCH: reject;
 *   KERR_INVALID_RECORD when count < 1 or base_seq < 0 (the validator
 *     already rejects these).
 * pid < 0 (not idempotent) is always KERR_NONE/-1. Does not change the
 * table except to mark pid as recently used. */
int pidstate_check(struct pidstate *ps, int64_t pid, int16_t epoch, int32_t base_seq, int32_t count,
		   int64_t *dup_base_offset);

/* Records an appended batch: offsets [base_offset, base_offset + count - 1].
 * Creates the producer if needed (evicting the least recently used one when
 * full); a different epoch replaces the stored epoch and forgets its
 * batches. pid < 0 is ignored. */
void pidstate_record(struct pidstate *ps, int64_t pid, int16_t epoch, int32_t base_seq, int32_t count,
		     int64_t base_offset);

/* What the table knows about pid, for InitProducerId and tests: false if
 * unknown. *last_seq is the last sequence of the newest batch, *last_offset
 * its last offset. Any out pointer may be NULL. */
bool pidstate_lookup(const struct pidstate *ps, int64_t pid, int16_t *epoch, int32_t *last_seq,
		     int64_t *last_offset);

#endif
