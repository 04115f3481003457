/* records.h - Kafka RecordBatch v2 (magic 2): validation, offset assignment,
 * decompression, and the seglog format callbacks for partitions.
 *
 * Batches are stored exactly as the producer sent them (compressed or not);
 * the broker only rewrites baseOffset, partitionLeaderEpoch and, for
 * LogAppendTime topics, maxTimestamp (+ CRC). See ../shared/KAFKA-NOTES.md.
 *
 * Threads: pure functions, callable from any thread; the decompression
 * scratch buffer is passed in by the caller (one per loop thread). */
#ifndef SILT_KAFKA_RECORDS_H
#define SILT_KAFKA_RECORDS_H

#include "core/platform.h"
#include "core/wbuf.h"
#include "storage/seglog.h"

#define KBATCH_HEADER_SIZE 61
#define KBATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */

/* Byte offsets of header fields inside a batch. */
enum {
	KB_BASE_OFFSET = 0,
	KB_LENGTH = 8,
	KB_LEADER_EPOCH = 12,
	KB_MAGIC = 16,
	KB_CRC = 17,
	KB_ATTRIBUTES = 21,
	KB_LAST_OFFSET_DELTA = 23,
	KB_BASE_TIMESTAMP = 27,
	KB_MAX_TIMESTAMP = 35,
	KB_PRODUCER_ID = 43,
	KB_PRODUCER_EPOCH = 51,
	KB_BASE_SEQUENCE = 53,
	KB_RECORDS_COUNT = 57,
};

enum {
	KB_ATTR_CODEC_MASK = 0x07,
	KB_ATTR_LOG_APPEND_TIME = 0x08,
	KB_ATTR_TRANSACTIONAL = 0x10,
	KB_ATTR_CONTROL = 0x20,
};

enum kcodec { KCODEC_NONE = 0, KCODEC_GZIP = 1, KCODEC_SNAPPY = 2, KCODEC_LZ4 = 3, KCODEC_ZSTD = 4 };

/* The parsed header of one batch. */
struct kbatch {
	const uint8_t *p; /* start of the batch (baseOffset field) */
	uint32_t size;    /* whole batch: batchLength + 12 */
	int64_t base_offset;
	int32_t leader_epoch;
	int8_t magic;
	uint32_t crc;
	int16_t attributes;
	int32_t last_offset_delta;
	int64_t base_timestamp;
	int64_t max_timestamp;
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_sequence;
	int32_t records_count;
};

/* Limits applied while validating a produce request's record set. */
struct kbatch_limits {
	uint32_t max_batch_bytes;      /* topic max.message.bytes (Kafka: applies to the batch); 0 = no limit */
	uint32_t max_uncompressed;     /* cap on decompressed size (protects memory); 0 = scratch->max only */
};

/* Kafka error codes the validator can return (positive, Kafka's numbering). */
enum {
	KREC_OK = 0,
	KREC_CORRUPT_MESSAGE = 2,
	KREC_MESSAGE_TOO_LARGE = 10,
	KREC_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
	KREC_INVALID_RECORD = 87,
	KREC_UNSUPPORTED_COMPRESSION_TYPE = 76,
};

/* Parses the 61-byte header at p (len available). 0 or -SILT_ECORRUPT /
 * -SILT_EAGAIN if fewer than 61 bytes. Does not check the CRC.
 * -SILT_ECORRUPT when magic != 2 or batchLength < 49 (every field is still
 * filled in, b->size is then 0). It does not check that b->size <= len. */
int kbatch_parse_header(const uint8_t *p, size_t len, struct kbatch *b);

/* CRC-32C of a whole batch of `size` bytes as stored in its crc field
 * (attributes through the end). */
uint32_t kbatch_compute_crc(const uint8_t *p, size_t size);

/* Validates a produce request's record set (one or more batches back to
 * back, as sent). Checks for each batch: magic 2, sizes, CRC-32C, attributes
 * (no client control batches, known codec), records count ==
 * lastOffsetDelta + 1, producerId/baseSequence consistency, and walks every
 * record (after decompressing into `scratch`) checking its framing and that
 * offsetDeltas run 0..count-1. Returns a KREC_* code; on KREC_OK fills
 * *nbatches, *total_records and *max_ts (max of maxTimestamp).
 *
 * Which code for what (as Kafka answers; CORRUPT_MESSAGE is retriable for
 * clients, INVALID_RECORD is not):
 *   CORRUPT_MESSAGE      set/batch framing (sizes), CRC, undecodable
 *                        compressed data, magic other than 0..2
 *   INVALID_RECORD       empty set, client control batch, recordsCount <= 0
 *                        or != lastOffsetDelta + 1, producerId >= 0 with
 *                        baseSequence < 0, record framing, offsetDelta,
 *                        record count, trailing bytes after the records
 *   UNSUPPORTED_FOR_MESSAGE_FORMAT  magic 0 or 1
 *   UNSUPPORTED_COMPRESSION_TYPE    codec 5..7
 *   MESSAGE_TOO_LARGE    batch > max_batch_bytes, or records decompress to
 *                        more than min(max_uncompressed, scratch->max)
 * Uncompressed batches are walked in place; compressed ones are decompressed
 * into scratch, which is reset per batch (so on return it holds the last
 * compressed batch's records, if any). Several batches back to back are
 * accepted (Kafka itself wants exactly one per partition from v3 on). */
int kbatch_validate_set(const uint8_t *p, size_t len, const struct kbatch_limits *lim,
			struct wbuf *scratch, int *nbatches, int64_t *total_records, int64_t *max_ts);

/* Decompresses the records section of a batch (everything after the 61-byte
 * header) into out (appended). 0, -SILT_ECORRUPT or -SILT_ETOOBIG (over
 * out->max). For KCODEC_NONE copies. b must come from kbatch_parse_header
 * with b->size bytes readable at b->p. Gzip accepts concatenated members,
 * LZ4 and zstd concatenated frames; snappy takes xerial framing or one raw
 * block. The output never grows past out->max, so a bomb costs at most that. */
int kbatch_decompress(const struct kbatch *b, struct wbuf *out);

/* Rewrites baseOffset and partitionLeaderEpoch in place (CRC unaffected).
 * For LogAppendTime (log_append_time_ms >= 0) also sets the attribute bit and
 * maxTimestamp and recomputes the CRC. p must be a validated batch (its
 * batchLength is trusted). */
void kbatch_assign(uint8_t *p, int64_t base_offset, int32_t leader_epoch, int64_t log_append_time_ms);

/* The offset of the first record of b whose timestamp is >= ts (Kafka's
 * ListOffsets by time), or -1 if none is. Decompresses into scratch when
 * needed. 0 or -SILT_ECORRUPT / -SILT_ETOOBIG. */
int kbatch_offset_for_time(const struct kbatch *b, int64_t ts, struct wbuf *scratch, int64_t *offset);

/* seglog format for partitions: entries are batches. scan_header needs magic
 * 2, batchLength >= 49, baseOffset >= 0, lastOffsetDelta >= 0 and gives
 * [baseOffset, baseOffset + lastOffsetDelta] and maxTimestamp. verify checks
 * the header again, size == len, a known codec, 0 <= recordsCount <=
 * lastOffsetDelta + 1 (compaction may drop records) and the CRC; it never
 * decompresses. */
extern const struct seglog_format kbatch_seglog_format;

#endif
