/* records.c - Kafka RecordBatch v2 validation, decompression, offset
 * assignment and the seglog format callbacks. See records.h for the contract
 * and ../shared/KAFKA-NOTES.md for the layout.
 *
 * Error classes, chosen to match what Kafka's own broker answers so clients
 * react as they would against Kafka (CORRUPT_MESSAGE is retriable for the
 * Java client, INVALID_RECORD is not):
 *   - the set or a batch does not frame, its CRC fails, or its compressed
 *     section does not decompress: CORRUPT_MESSAGE (bytes damaged);
 *   - a CRC-valid batch breaks a rule (counts, offset deltas, record framing,
 *     control batch from a client, producerId without a sequence): the
 *     client built it that way, retrying cannot help: INVALID_RECORD;
 *   - magic 0/1: UNSUPPORTED_FOR_MESSAGE_FORMAT; unknown codec:
 *     UNSUPPORTED_COMPRESSION_TYPE; batch over max_batch_bytes or records
 *     over the decompression cap: MESSAGE_TOO_LARGE. */
#include "core/platform.h"
#include "kafka/records.h"

#include "core/crc.h"
#include "core/rd.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

/* The smallest possible record: length, attributes, timestampDelta,
 * offsetDelta, keyLength, valueLength, headerCount, one byte each. */
#define KREC_MIN_RECORD 7

/* Output growth for codecs that do not announce the decompressed size: start
 * at this, then double, never past the cap. Hints from the stream (gzip ISIZE,
 * LZ4 content size) are trusted only up to KDEC_MAX_HINT, so a lying header
 * cannot make us reserve more than that before real output justifies it. */
#define KDEC_MIN_CHUNK (64u << 10)
#define KDEC_MAX_HINT (16u << 20)

/* Largest zstd window accepted in streaming mode (frames without a content
 * size). 2^24 = 16 MiB covers zstd levels up to 19 (the Java and librdkafka
 * default is level 3, window 2^21); bounds what one frame header can make the
 * decoder allocate. */
#define KDEC_ZSTD_WINDOW_LOG_MAX 24

int kbatch_parse_header(const uint8_t *p, size_t len, struct kbatch *b)
{
	if (len < KBATCH_HEADER_SIZE)
		return -SILT_EAGAIN;
	int32_t blen = (int32_t)rd_be32(p + KB_LENGTH);
	b->p = p;
	b->base_offset = (int64_t)rd_be64(p + KB_BASE_OFFSET);
	b->leader_epoch = (int32_t)rd_be32(p + KB_LEADER_EPOCH);
	b->magic = (int8_t)p[KB_MAGIC];
	b->crc = rd_be32(p + KB_CRC);
	b->attributes = (int16_t)rd_be16(p + KB_ATTRIBUTES);
	b->last_offset_delta = (int32_t)rd_be32(p + KB_LAST_OFFSET_DELTA);
	b->base_timestamp = (int64_t)rd_be64(p + KB_BASE_TIMESTAMP);
	b->max_timestamp = (int64_t)rd_be64(p + KB_MAX_TIMESTAMP);
	b->producer_id = (int64_t)rd_be64(p + KB_PRODUCER_ID);
	b->producer_epoch = (int16_t)rd_be16(p + KB_PRODUCER_EPOCH);
	b->base_sequence = (int32_t)rd_be32(p + KB_BASE_SEQUENCE);
	b->records_count = (int32_t)rd_be32(p + KB_RECORDS_COUNT);
	if (blen < KBATCH_HEADER_SIZE - KBATCH_LOG_OVERHEAD || b->magic != 2) {
		b->size = 0;
		return -SILT_ECORRUPT;
	}
	b->size = (uint32_t)blen + KBATCH_LOG_OVERHEAD;
	return 0;
}

uint32_t kbatch_compute_crc(const uint8_t *p, size_t size)
{
	return crc32c(0, p + KB_ATTRIBUTES, size - KB_ATTRIBUTES);
}

/* ---- varints inside records ------------------------------------------------
 * Record fields are zig-zag varints, nearly always one byte long, so the
 * single-byte case is inlined and the rest goes to an out-of-line loop. Both
 * read only below `end` (the end of the current record). */

static bool rv32_slow(const uint8_t **pp, const uint8_t *end, int32_t *out)
{
	const uint8_t *p = *pp;
	uint32_t v = 0;
	for (int i = 0; i < 5; i++) {
		if (p >= end)
			return false;
		uint8_t b = *p++;
		if (i == 4 && b > 0x0f)
			return false; /* more than 32 bits */
		v |= (uint32_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*pp = p;
			*out = (int32_t)((v >> 1) ^ (0u - (v & 1)));
			return true;
		}
	}
	return false;
}

static inline bool rv32(const uint8_t **pp, const uint8_t *end, int32_t *out)
{
	const uint8_t *p = *pp;
	if (SILT_LIKELY(p < end && !(*p & 0x80))) {
		uint32_t v = *p;
		*out = (int32_t)((v >> 1) ^ (0u - (v & 1)));
		*pp = p + 1;
		return true;
	}
	/* Two bytes: record lengths and value lengths of 64..8191 bytes. */
	if (SILT_LIKELY(end - p >= 2 && !(p[1] & 0x80))) {
		uint32_t v = (uint32_t)(p[0] & 0x7f) | (uint32_t)p[1] << 7;
		*out = (int32_t)((v >> 1) ^ (0u - (v & 1)));
		*pp = p + 2;
		return true;
	}
	return rv32_slow(pp, end, out);
}

/* Skips a zig-zag varlong (timestampDelta; its value is not checked). */
static inline bool rv64_skip(const uint8_t **pp, const uint8_t *end)
{
	const uint8_t *p = *pp;
	for (int i = 0; i < 10; i++) {
		if (SILT_UNLIKELY(p >= end))
			return false;
		uint8_t b = *p++;
		if (!(b & 0x80)) {
			if (SILT_UNLIKELY(i == 9 && b > 1))
				return false; /* more than 64 bits */
			*pp = p;
			return true;
		}
	}
	return false;
}

/* Walks `count` records in [p, end): each record's framing must be exact,
 * offsetDeltas must run 0..count-1 and nothing may follow the last record.
 * Reads only; never allocates. */
static int walk_records(const uint8_t *p, const uint8_t *end, int32_t count)
{
	for (int32_t i = 0; i < count; i++) {
		int32_t rlen, v;
		if (!rv32(&p, end, &rlen) || rlen < KREC_MIN_RECORD - 1 || rlen > end - p)
			return KREC_INVALID_RECORD;
		const uint8_t *rend = p + rlen;
		p++; /* attributes: unused in v2 */
		if (!rv64_skip(&p, rend))
			return KREC_INVALID_RECORD;
		if (!rv32(&p, rend, &v) || v != i)
			return KREC_INVALID_RECORD;
		/* key, value: length (-1 = null) then bytes */
		for (int kv = 0; kv < 2; kv++) {
			if (!rv32(&p, rend, &v) || v < -1 || (v > 0 && v > rend - p))
				return KREC_INVALID_RECORD;
			if (v > 0)
				p += v;
		}
		int32_t nh;
		if (!rv32(&p, rend, &nh) || nh < 0)
			return KREC_INVALID_RECORD;
		for (int32_t h = 0; h < nh; h++) {
			/* header key: a string, never null */
			if (!rv32(&p, rend, &v) || v < 0 || v > rend - p)
				return KREC_INVALID_RECORD;
			p += v;
			if (!rv32(&p, rend, &v) || v < -1 || (v > 0 && v > rend - p))
				return KREC_INVALID_RECORD;
			if (v > 0)
				p += v;
		}
		if (p != rend)
			return KREC_INVALID_RECORD;
	}
	return p == end ? KREC_OK : KREC_INVALID_RECORD;
}

/* ---- decompression ----------------------------------------------------------
 * Every decoder appends to `out` and never lets out->len exceed `cap`
 * (cap <= out->max). -SILT_ETOOBIG when the data would, -SILT_ECORRUPT when
 * it does not decode; out->len is then unspecified. */

/* Makes at least some room for output, growing geometrically (or to `hint`
 * when the stream announced its size), bounded by cap. Returns the writable
 * bytes, 0 when out is at the cap. */
static size_t out_room(struct wbuf *out, size_t cap, size_t hint)
{
	if (out->len >= cap)
		return 0;
	size_t left = cap - out->len;
	size_t room = out->cap - out->len;
	if (room == 0) {
		size_t want = SILT_MAX((size_t)KDEC_MIN_CHUNK, out->len);
		if (hint > want)
			want = SILT_MIN(hint, (size_t)KDEC_MAX_HINT);
		want = SILT_MIN(want, left);
		if (!wbuf_reserve(out, want))
			return 0;
		room = out->cap - out->len;
	}
	return SILT_MIN(room, left);
}

static int dec_gzip(const uint8_t *src, size_t n, struct wbuf *out, size_t cap)
{
	if (n > UINT_MAX)
		return -SILT_ETOOBIG;
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	/* 15 + 32: maximum window, accept a gzip or zlib header. */
	if (inflateInit2(&zs, 15 + 32) != Z_OK)
		abort(); /* only fails for out of memory */
	zs.next_in = (Bytef *)(uintptr_t)src;
	zs.avail_in = (uInt)n;
	/* The gzip trailer's ISIZE is the single-member size mod 2^32: a hint. */
	size_t hint = 0;
	if (n >= 18) {
		const uint8_t *t = src + n - 4;
		hint = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
	}
	int rc = 0;
	for (;;) {
		size_t room = out_room(out, cap, hint);
		if (room == 0) {
			rc = out->len >= cap ? -SILT_ETOOBIG : -SILT_ECORRUPT;
			break;
		}
		zs.next_out = out->p + out->len;
		zs.avail_out = (uInt)SILT_MIN(room, (size_t)UINT_MAX);
		uInt before = zs.avail_out;
		int zr = inflate(&zs, Z_NO_FLUSH);
		out->len += before - zs.avail_out;
		if (zr == Z_STREAM_END) {
			if (zs.avail_in == 0)
				break;
			/* Another gzip member follows (Java's GZIPInputStream
			 * reads concatenated members too). */
			if (inflateReset(&zs) != Z_OK) {
				rc = -SILT_ECORRUPT;
				break;
			}
			continue;
		}
		if (zr == Z_OK || (zr == Z_BUF_ERROR && zs.avail_out == 0))
			continue;
		rc = -SILT_ECORRUPT; /* data error, or input ended mid-stream */
		break;
	}
	inflateEnd(&zs);
	return rc;
}

static int snappy_block(const uint8_t *src, size_t n, struct wbuf *out, size_t cap)
{
	size_t ulen;
	if (snappy_uncompressed_length((const char *)src, n, &ulen) != SNAPPY_OK)
		return -SILT_ECORRUPT;
	if (ulen > cap - out->len)
		return -SILT_ETOOBIG;
	char dummy[1];
	char *dst = dummy;
	if (ulen > 0) {
		if (!wbuf_reserve(out, ulen))
			return -SILT_ETOOBIG;
		dst = (char *)out->p + out->len;
	}
	size_t got = ulen;
	if (snappy_uncompress((const char *)src, n, dst, &got) != SNAPPY_OK || got != ulen)
		return -SILT_ECORRUPT;
	out->len += ulen;
	return 0;
}

/* Kafka's Java client and librdkafka frame snappy the way xerial's
 * SnappyOutputStream does: an 8-byte magic, two i32 versions, then blocks of
 * [i32 compressed length][raw snappy block]. Some clients send one raw block. */
static const uint8_t xerial_magic[8] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0 };

static int dec_snappy(const uint8_t *src, size_t n, struct wbuf *out, size_t cap)
{
	if (n < 16 || memcmp(src, xerial_magic, sizeof(xerial_magic)) != 0)
		return snappy_block(src, n, out, cap);
	size_t pos = 16;
	while (pos < n) {
		if (n - pos < 4)
			return -SILT_ECORRUPT;
		uint32_t blen = rd_be32(src + pos);
		pos += 4;
		if (blen > n - pos)
			return -SILT_ECORRUPT;
		int rc = snappy_block(src + pos, blen, out, cap);
		if (rc)
			return rc;
		pos += blen;
	}
	return 0;
}

static int dec_lz4(const uint8_t *src, size_t n, struct wbuf *out, size_t cap)
{
	LZ4F_dctx *dctx;
	if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
		abort(); /* only fails for out of memory */
	/* Content size is optional in the frame header (librdkafka leaves it
	 * out); when present, use it to size the output in one go. */
	size_t hint = 0;
	if (n >= 15 && rd_be32(src) == 0x04224D18u && (src[4] & 0x08)) {
		uint64_t cs = 0;
		for (int i = 7; i >= 0; i--)
			cs = cs << 8 | src[6 + i];
		hint = cs > SIZE_MAX ? SIZE_MAX : (size_t)cs;
	}
	int rc = 0;
	size_t pos = 0;
	for (;;) {
		size_t room = out_room(out, cap, hint);
		if (room == 0) {
			rc = out->len >= cap ? -SILT_ETOOBIG : -SILT_ECORRUPT;
			break;
		}
		size_t dst = room, srcsz = n - pos;
		size_t r = LZ4F_decompress(dctx, out->p + out->len, &dst, src + pos, &srcsz, NULL);
		if (LZ4F_isError(r)) {
			rc = -SILT_ECORRUPT;
			break;
		}
		pos += srcsz;
		out->len += dst;
		if (r == 0) {
			if (pos == n)
				break;
			continue; /* another frame follows */
		}
		/* The frame wants more input: unless the output was full (and
		 * more may be pending inside the decoder), it is truncated. */
		if (pos == n && dst < room) {
			rc = -SILT_ECORRUPT;
			break;
		}
		if (dst == 0 && srcsz == 0) {
			rc = -SILT_ECORRUPT; /* no progress: never loop forever */
			break;
		}
	}
	LZ4F_freeDecompressionContext(dctx);
	return rc;
}

static int dec_zstd(const uint8_t *src, size_t n, struct wbuf *out, size_t cap)
{
	/* One frame with its content size (librdkafka): size known up front.
	 * Anything else (several frames, or no size) goes the streaming way. */
	unsigned long long total = ZSTD_getFrameContentSize(src, n);
	if (total == ZSTD_CONTENTSIZE_ERROR)
		return -SILT_ECORRUPT;
	if (total != ZSTD_CONTENTSIZE_UNKNOWN && ZSTD_findFrameCompressedSize(src, n) != n)
		total = ZSTD_CONTENTSIZE_UNKNOWN;
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	if (!dctx)
		abort(); /* only fails for out of memory */
	int rc = 0;
	if (total != ZSTD_CONTENTSIZE_UNKNOWN) {
		/* Check the stated size against the cap, then decode in one
		 * call, which needs no window buffer. */
		if (total > cap - out->len) {
			rc = -SILT_ETOOBIG;
			goto out;
		}
		uint8_t dummy[1];
		uint8_t *dst = dummy;
		if (total > 0) {
			if (!wbuf_reserve(out, (size_t)total)) {
				rc = -SILT_ETOOBIG;
				goto out;
			}
			dst = out->p + out->len;
		}
		size_t r = ZSTD_decompressDCtx(dctx, dst, (size_t)total, src, n);
		if (ZSTD_isError(r) || r != total) {
			rc = -SILT_ECORRUPT;
			goto out;
		}
		out->len += (size_t)total;
		goto out;
	}
	/* Streaming frames (the Java client's ZstdOutputStream): grow the
	 * output as it comes, bounded by cap; bound the window too. */
	if (ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, KDEC_ZSTD_WINDOW_LOG_MAX)))
		abort();
	ZSTD_inBuffer in = { src, n, 0 };
	for (;;) {
		size_t room = out_room(out, cap, 0);
		if (room == 0) {
			rc = out->len >= cap ? -SILT_ETOOBIG : -SILT_ECORRUPT;
			break;
		}
		ZSTD_outBuffer ob = { out->p + out->len, room, 0 };
		size_t in_before = in.pos;
		size_t r = ZSTD_decompressStream(dctx, &ob, &in);
		if (ZSTD_isError(r)) {
			rc = -SILT_ECORRUPT;
			break;
		}
		out->len += ob.pos;
		if (r == 0 && in.pos == in.size)
			break; /* last frame complete */
		if (in.pos == in.size && ob.pos < ob.size) {
			rc = -SILT_ECORRUPT; /* truncated */
			break;
		}
		if (ob.pos == 0 && in.pos == in_before) {
			rc = -SILT_ECORRUPT;
			break;
		}
	}
out:
	ZSTD_freeDCtx(dctx);
	return rc;
}

static int decompress_into(int codec, const uint8_t *src, size_t n, struct wbuf *out, size_t cap)
{
	if (out->err || out->len > cap)
		return -SILT_ETOOBIG;
	switch (codec) {
	case KCODEC_NONE:
		if (n > cap - out->len)
			return -SILT_ETOOBIG;
		wbuf_put(out, src, n);
		return out->err ? -SILT_ETOOBIG : 0;
	case KCODEC_GZIP:
		return dec_gzip(src, n, out, cap);
	case KCODEC_SNAPPY:
		return dec_snappy(src, n, out, cap);
	case KCODEC_LZ4:
		return dec_lz4(src, n, out, cap);
	case KCODEC_ZSTD:
		return dec_zstd(src, n, out, cap);
	default:
		return -SILT_ECORRUPT;
	}
}

int kbatch_decompress(const struct kbatch *b, struct wbuf *out)
{
	if (b->size < KBATCH_HEADER_SIZE)
		return -SILT_ECORRUPT;
	return decompress_into(b->attributes & KB_ATTR_CODEC_MASK, b->p + KBATCH_HEADER_SIZE,
			       b->size - KBATCH_HEADER_SIZE, out, out->max);
}

/* ---- validation --------------------------------------------------------- */

/* Checks one batch at p whose size (batchLength + 12) is known to fit. */
static int validate_batch(const uint8_t *p, size_t size, size_t cap, struct wbuf *scratch,
			  struct kbatch *b)
{
	if (kbatch_parse_header(p, size, b) != 0)
		return KREC_CORRUPT_MESSAGE;
	if (kbatch_compute_crc(p, size) != b->crc)
		return KREC_CORRUPT_MESSAGE;
	int codec = b->attributes & KB_ATTR_CODEC_MASK;
	if (codec > KCODEC_ZSTD)
		return KREC_UNSUPPORTED_COMPRESSION_TYPE;
	/* Control batches (transaction markers) are written by the
	 * coordinator, never accepted from a producer. */
	if (b->attributes & KB_ATTR_CONTROL)
		return KREC_INVALID_RECORD;
	if (b->records_count <= 0 || b->last_offset_delta != b->records_count - 1)
		return KREC_INVALID_RECORD;
	if (b->producer_id >= 0 && b->base_sequence < 0)
		return KREC_INVALID_RECORD;
	const uint8_t *rec = p + KBATCH_HEADER_SIZE;
	size_t n = size - KBATCH_HEADER_SIZE;
	if (codec == KCODEC_NONE) {
		if ((uint64_t)b->records_count * KREC_MIN_RECORD > n)
			return KREC_INVALID_RECORD;
		return walk_records(rec, rec + n, b->records_count);
	}
	wbuf_reset(scratch);
	int rc = decompress_into(codec, rec, n, scratch, cap);
	if (rc == -SILT_ETOOBIG)
		return KREC_MESSAGE_TOO_LARGE;
	if (rc != 0)
		return KREC_CORRUPT_MESSAGE;
	return walk_records(scratch->p, scratch->p + scratch->len, b->records_count);
}

int kbatch_validate_set(const uint8_t *p, size_t len, const struct kbatch_limits *lim,
			struct wbuf *scratch, int *nbatches, int64_t *total_records, int64_t *max_ts)
{
	size_t cap = scratch->max;
	if (lim->max_uncompressed && lim->max_uncompressed < cap)
		cap = lim->max_uncompressed;
	int nb = 0;
	int64_t total = 0, mts = -1;
	size_t off = 0;
	if (len == 0)
		return KREC_INVALID_RECORD; /* Kafka: a produce needs a batch */
	while (off < len) {
		const uint8_t *bp = p + off;
		size_t left = len - off;
		/* magic sits at the same place in v0/v1 messages, which may be
		 * shorter than a v2 header: look at it first. */
		if (left <= KB_MAGIC)
			return KREC_CORRUPT_MESSAGE;
		int8_t magic = (int8_t)bp[KB_MAGIC];
		if (magic == 0 || magic == 1)
			return KREC_UNSUPPORTED_FOR_MESSAGE_FORMAT;
		if (magic != 2)
			return KREC_CORRUPT_MESSAGE;
		int32_t blen = (int32_t)rd_be32(bp + KB_LENGTH);
		if (blen < KBATCH_HEADER_SIZE - KBATCH_LOG_OVERHEAD)
			return KREC_CORRUPT_MESSAGE;
		size_t size = (size_t)blen + KBATCH_LOG_OVERHEAD;
		if (size > left)
			return KREC_CORRUPT_MESSAGE;
		if (lim->max_batch_bytes && size > lim->max_batch_bytes)
			return KREC_MESSAGE_TOO_LARGE;
		struct kbatch b;
		int rc = validate_batch(bp, size, cap, scratch, &b);
		if (rc != KREC_OK)
			return rc;
		nb++;
		total += b.records_count;
		if (b.max_timestamp > mts)
			mts = b.max_timestamp;
		off += size;
	}
	*nbatches = nb;
	*total_records = total;
	*max_ts = mts;
	return KREC_OK;
}

/* ---- offset assignment -------------------------------------------------- */

void kbatch_assign(uint8_t *p, int64_t base_offset, int32_t leader_epoch, int64_t log_append_time_ms)
{
	wr_be64(p + KB_BASE_OFFSET, (uint64_t)base_offset);
	wr_be32(p + KB_LEADER_EPOCH, (uint32_t)leader_epoch);
	if (log_append_time_ms < 0)
		return;
	size_t size = (size_t)rd_be32(p + KB_LENGTH) + KBATCH_LOG_OVERHEAD;
	uint16_t attr = rd_be16(p + KB_ATTRIBUTES) | KB_ATTR_LOG_APPEND_TIME;
	wr_be16(p + KB_ATTRIBUTES, attr);
	wr_be64(p + KB_MAX_TIMESTAMP, (uint64_t)log_append_time_ms);
	wr_be32(p + KB_CRC, kbatch_compute_crc(p, size));
}

/* ---- seglog format ------------------------------------------------------ */

static int seg_scan_header(const uint8_t *p, size_t len, struct seglog_entry *e)
{
	struct kbatch b;
	if (kbatch_parse_header(p, len, &b) != 0)
		return -SILT_ECORRUPT;
	if (b.base_offset < 0 || b.last_offset_delta < 0 ||
	    b.base_offset > INT64_MAX - b.last_offset_delta)
		return -SILT_ECORRUPT;
	e->size = b.size;
	e->first_offset = b.base_offset;
	e->last_offset = b.base_offset + b.last_offset_delta;
	e->max_timestamp = b.max_timestamp;
	return 0;
}

/* Header sanity and CRC only: recovery scans whole segments with this, so it
 * must not decompress. recordsCount may be below lastOffsetDelta + 1 (log
 * compaction keeps lastOffsetDelta when it drops records), never above. */
static int seg_verify(const uint8_t *p, size_t len)
{
	struct kbatch b;
	struct seglog_entry e;
	if (seg_scan_header(p, len, &e) != 0 || kbatch_parse_header(p, len, &b) != 0)
		return -SILT_ECORRUPT;
	if (e.size != len)
		return -SILT_ECORRUPT;
	if ((b.attributes & KB_ATTR_CODEC_MASK) > KCODEC_ZSTD || b.records_count < 0 ||
	    b.records_count > b.last_offset_delta + 1)
		return -SILT_ECORRUPT;
	if (kbatch_compute_crc(p, len) != b.crc)
		return -SILT_ECORRUPT;
	return 0;
}

const struct seglog_format kbatch_seglog_format = {
	.header_size = KBATCH_HEADER_SIZE,
	.scan_header = seg_scan_header,
	.verify = seg_verify,
};

/* ---- timestamps --------------------------------------------------------- */

int kbatch_offset_for_time(const struct kbatch *b, int64_t ts, struct wbuf *scratch, int64_t *offset)
{
	*offset = -1;
	if (b->max_timestamp < ts)
		return 0;
	/* LogAppendTime batches carry one time for every record. */
	if (b->attributes & KB_ATTR_LOG_APPEND_TIME) {
		*offset = b->base_offset;
		return 0;
	}
	const uint8_t *p = b->p + KBATCH_HEADER_SIZE;
	size_t n = b->size - KBATCH_HEADER_SIZE;
	if (b->attributes & KB_ATTR_CODEC_MASK) {
		wbuf_reset(scratch);
		int rc = kbatch_decompress(b, scratch);
		if (rc != 0)
			return rc;
		p = scratch->p;
		n = scratch->len;
	}
	struct rd r;
	rd_init(&r, p, n);
	for (int32_t i = 0; i < b->records_count && !r.err; i++) {
		int32_t rlen = rd_varint(&r);
		if (r.err || rlen < 0 || (size_t)rlen > rd_left(&r))
			return -SILT_ECORRUPT;
		struct rd rec;
		rd_init(&rec, r.p, (size_t)rlen);
		rd_skip(&r, (size_t)rlen);
		(void)rd_i8(&rec);
		int64_t delta = rd_varlong(&rec);
		int32_t odelta = rd_varint(&rec);
		if (rec.err)
			return -SILT_ECORRUPT;
		if (b->base_timestamp + delta >= ts) {
			*offset = b->base_offset + odelta;
			return 0;
		}
	}
	return r.err ? -SILT_ECORRUPT : 0;
}
