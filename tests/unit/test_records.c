/* test_records.c - RecordBatch v2 validation, decompression, assignment and
 * seglog format. Batches are built here by a small independent encoder and
 * compressed with the real libraries, framed as the clients frame them. */
#include "core/platform.h"
#include "core/crc.h"
#include "core/rd.h"
#include "core/util.h"
#include "core/wbuf.h"
#include "kafka/records.h"
#include "storage/seglog.h"
#include "test.h"

#include <sys/stat.h>
#include <unistd.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

/* Codec variants: the codec id plus how the test frames it. */
enum tb_variant {
	TBV_DEFAULT = 0,
	TBV_SNAPPY_RAW,   /* one raw snappy block, no xerial framing */
	TBV_LZ4_SIZED,    /* LZ4 frame with content size set */
	TBV_ZSTD_STREAM,  /* zstd frame without content size (Java client) */
	TBV_GZIP_2MEMBER, /* two concatenated gzip members */
};

struct tb_opts {
	int codec;
	int variant;
	int nrecords;
	int value_size;
	bool keys_headers;   /* vary keys (some null) and headers */
	int64_t producer_id; /* -1 */
	int16_t producer_epoch;
	int32_t base_sequence;
	int16_t extra_attrs;
	int64_t base_ts;
	/* deliberate damage */
	int32_t count_adjust;     /* added to recordsCount only */
	int bad_offset_delta_at;  /* record index, or -1 */
	int stray_byte_in_record; /* record index gets an unread byte, or -1 */
	int trailing_bytes;       /* junk after the last record */
	int drop_last_records;    /* encode fewer records than declared */
	int8_t magic;
};

static void tb_defaults(struct tb_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->nrecords = 10;
	o->value_size = 20;
	o->keys_headers = true;
	o->producer_id = -1;
	o->producer_epoch = -1;
	o->base_sequence = -1;
	o->base_ts = 1700000000000LL;
	o->bad_offset_delta_at = -1;
	o->stray_byte_in_record = -1;
	o->magic = 2;
}

static void put_varbytes(struct wbuf *w, const void *p, int32_t n)
{
	wbuf_varint(w, n);
	if (n > 0)
		wbuf_put(w, p, (size_t)n);
}

static void tb_records(struct wbuf *out, const struct tb_opts *o)
{
	struct wbuf r;
	wbuf_init(&r, 256, 0);
	uint8_t *val = xmalloc((size_t)o->value_size + 1);
	int n = o->nrecords - o->drop_last_records;
	for (int i = 0; i < n; i++) {
		wbuf_reset(&r);
		wbuf_i8(&r, 0);
		wbuf_varint(&r, i * 3);
		wbuf_varint(&r, i == o->bad_offset_delta_at ? i + 1 : i);
		char key[32];
		int klen = snprintf(key, sizeof(key), "key-%d", i);
		if (o->keys_headers && i % 3 == 0)
			wbuf_varint(&r, -1);
		else if (o->keys_headers)
			put_varbytes(&r, key, klen);
		else
			wbuf_varint(&r, -1);
		for (int j = 0; j < o->value_size; j++)
			val[j] = (uint8_t)('a' + (i + j) % 26);
		put_varbytes(&r, val, o->value_size);
		int nh = o->keys_headers ? i % 3 : 0;
		wbuf_varint(&r, nh);
		for (int h = 0; h < nh; h++) {
			put_varbytes(&r, "hdr", 3);
			if (h == 1)
				wbuf_varint(&r, -1);
			else
				put_varbytes(&r, "value", 5);
		}
		if (i == o->stray_byte_in_record)
			wbuf_u8(&r, 0);
		wbuf_varint(out, (int64_t)r.len);
		wbuf_put(out, r.p, r.len);
	}
	for (int i = 0; i < o->trailing_bytes; i++)
		wbuf_u8(out, 0);
	free(val);
	wbuf_destroy(&r);
}

static void gzip_member(struct wbuf *out, const uint8_t *p, size_t n)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
	size_t bound = deflateBound(&zs, (uLong)n) + 32;
	REQUIRE(wbuf_reserve(out, bound));
	zs.next_in = (Bytef *)(uintptr_t)p;
	zs.avail_in = (uInt)n;
	zs.next_out = out->p + out->len;
	zs.avail_out = (uInt)bound;
	REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
	out->len += bound - zs.avail_out;
	deflateEnd(&zs);
}

static void snappy_raw(struct wbuf *out, const uint8_t *p, size_t n)
{
	size_t bound = snappy_max_compressed_length(n);
	REQUIRE(wbuf_reserve(out, bound));
	size_t got = bound;
	REQUIRE(snappy_compress((const char *)p, n, (char *)out->p + out->len, &got) == SNAPPY_OK);
	out->len += got;
}

/* Compresses (or copies) the records section as the clients do. */
static void tb_compress(struct wbuf *out, int codec, int variant, const uint8_t *p, size_t n)
{
	switch (codec) {
	case KCODEC_GZIP:
		if (variant == TBV_GZIP_2MEMBER) {
			gzip_member(out, p, n / 2);
			gzip_member(out, p + n / 2, n - n / 2);
		} else {
			gzip_member(out, p, n);
		}
		break;
	case KCODEC_SNAPPY:
		if (variant == TBV_SNAPPY_RAW) {
			snappy_raw(out, p, n);
			break;
		}
		/* xerial: magic, version 1, compatible version 1, then blocks
		 * of at most 32 KiB input each. */
		wbuf_put(out, "\x82SNAPPY\0", 8);
		wbuf_i32(out, 1);
		wbuf_i32(out, 1);
		for (size_t off = 0; off < n; off += 32768) {
			size_t chunk = SILT_MIN((size_t)32768, n - off);
			size_t at = wbuf_i32(out, 0);
			size_t before = out->len;
			snappy_raw(out, p + off, chunk);
			wbuf_patch_i32(out, at, (int32_t)(out->len - before));
		}
		break;
	case KCODEC_LZ4: {
		LZ4F_preferences_t prefs;
		memset(&prefs, 0, sizeof(prefs));
		if (variant == TBV_LZ4_SIZED)
			prefs.frameInfo.contentSize = n;
		size_t bound = LZ4F_compressFrameBound(n, &prefs);
		REQUIRE(wbuf_reserve(out, bound));
		size_t got = LZ4F_compressFrame(out->p + out->len, bound, p, n, &prefs);
		REQUIRE(!LZ4F_isError(got));
		out->len += got;
		break;
	}
	case KCODEC_ZSTD: {
		size_t bound = ZSTD_compressBound(n) + 64;
		REQUIRE(wbuf_reserve(out, bound));
		if (variant == TBV_ZSTD_STREAM) {
			ZSTD_CCtx *cc = ZSTD_createCCtx();
			ZSTD_inBuffer in = { p, n, 0 };
			ZSTD_outBuffer ob = { out->p + out->len, bound, 0 };
			size_t r;
			/* compressStream2 with Z_CONTINUE then END and no
			 * pledged size leaves the content size out. */
			REQUIRE(!ZSTD_isError(ZSTD_compressStream2(cc, &ob, &in, ZSTD_e_continue)));
			do {
				r = ZSTD_compressStream2(cc, &ob, &in, ZSTD_e_end);
				REQUIRE(!ZSTD_isError(r));
			} while (r != 0);
			out->len += ob.pos;
			ZSTD_freeCCtx(cc);
		} else {
			size_t got = ZSTD_compress(out->p + out->len, bound, p, n, 3);
			REQUIRE(!ZSTD_isError(got));
			out->len += got;
		}
		break;
	}
	default:
		wbuf_put(out, p, n);
	}
}

/* Writes the 61-byte header in front of a records section; returns size. */
static size_t tb_wrap(struct wbuf *out, const struct tb_opts *o, int codec_attr, const uint8_t *sec,
		      size_t n)
{
	size_t start = out->len;
	int32_t count = o->nrecords + o->count_adjust;
	wbuf_i64(out, 0);                                 /* baseOffset */
	wbuf_i32(out, (int32_t)(KBATCH_HEADER_SIZE - 12 + n)); /* batchLength */
	wbuf_i32(out, -1);                                /* partitionLeaderEpoch */
	wbuf_i8(out, o->magic);
	wbuf_i32(out, 0);                                 /* crc */
	wbuf_i16(out, (int16_t)(codec_attr | o->extra_attrs));
	wbuf_i32(out, o->nrecords - 1);                   /* lastOffsetDelta */
	wbuf_i64(out, o->base_ts);
	wbuf_i64(out, o->base_ts + (o->nrecords - 1) * 3);
	wbuf_i64(out, o->producer_id);
	wbuf_i16(out, o->producer_epoch);
	wbuf_i32(out, o->base_sequence);
	wbuf_i32(out, count);
	wbuf_put(out, sec, n);
	size_t size = out->len - start;
	wbuf_patch_i32(out, start + KB_CRC, (int32_t)kbatch_compute_crc(out->p + start, size));
	return size;
}

/* Appends one batch built from o to out; returns its size. */
static size_t tb_build(struct wbuf *out, const struct tb_opts *o)
{
	struct wbuf recs, comp;
	wbuf_init(&recs, 0, 0);
	wbuf_init(&comp, 0, 0);
	tb_records(&recs, o);
	tb_compress(&comp, o->codec, o->variant, recs.p, recs.len);
	size_t size = tb_wrap(out, o, o->codec, comp.p, comp.len);
	wbuf_destroy(&recs);
	wbuf_destroy(&comp);
	return size;
}

/* Re-signs a batch after the test edited it (the CRC must not be what
 * rejects it). */
static void tb_resign(uint8_t *p, size_t size)
{
	wr_be32(p + KB_LENGTH, (uint32_t)(size - 12));
	wr_be32(p + KB_CRC, kbatch_compute_crc(p, size));
}

static const struct kbatch_limits g_lim = { 1 << 20, 8 << 20 };

static int validate(const uint8_t *p, size_t n, int *nb, int64_t *total)
{
	struct wbuf scratch;
	wbuf_init(&scratch, 0, 16 << 20);
	int64_t mts, t;
	int b;
	int rc = kbatch_validate_set(p, n, &g_lim, &scratch, nb ? nb : &b, total ? total : &t, &mts);
	wbuf_destroy(&scratch);
	return rc;
}

static int validate_opts(const struct tb_opts *o)
{
	struct wbuf w;
	wbuf_init(&w, 0, 0);
	tb_build(&w, o);
	int rc = validate(w.p, w.len, NULL, NULL);
	wbuf_destroy(&w);
	return rc;
}

struct codec_case {
	const char *name;
	int codec, variant;
};

static const struct codec_case g_codecs[] = {
	{ "none", KCODEC_NONE, 0 },
	{ "gzip", KCODEC_GZIP, 0 },
	{ "gzip-2member", KCODEC_GZIP, TBV_GZIP_2MEMBER },
	{ "snappy-xerial", KCODEC_SNAPPY, 0 },
	{ "snappy-raw", KCODEC_SNAPPY, TBV_SNAPPY_RAW },
	{ "lz4", KCODEC_LZ4, 0 },
	{ "lz4-sized", KCODEC_LZ4, TBV_LZ4_SIZED },
	{ "zstd", KCODEC_ZSTD, 0 },
	{ "zstd-stream", KCODEC_ZSTD, TBV_ZSTD_STREAM },
};

TEST(records_valid_each_codec)
{
	for (size_t c = 0; c < SILT_ARRAY_LEN(g_codecs); c++) {
		int sizes[] = { 1, 10, 1000 };
		for (size_t s = 0; s < SILT_ARRAY_LEN(sizes); s++) {
			struct tb_opts o;
			tb_defaults(&o);
			o.codec = g_codecs[c].codec;
			o.variant = g_codecs[c].variant;
			o.nrecords = sizes[s];
			o.value_size = sizes[s] == 1000 ? 100 : 7;
			struct wbuf w, scratch, dec, plain;
			wbuf_init(&w, 0, 0);
			wbuf_init(&scratch, 0, 16 << 20);
			wbuf_init(&dec, 0, 16 << 20);
			wbuf_init(&plain, 0, 0);
			size_t size = tb_build(&w, &o);
			int nb = 0;
			int64_t total = 0, mts = 0;
			int rc = kbatch_validate_set(w.p, w.len, &g_lim, &scratch, &nb, &total, &mts);
			if (rc != KREC_OK)
				fprintf(stderr, "  codec %s n=%d rc=%d\n", g_codecs[c].name, o.nrecords, rc);
			CHECK_EQ_INT(rc, KREC_OK);
			CHECK_EQ_INT(nb, 1);
			CHECK_EQ_INT(total, o.nrecords);
			CHECK_EQ_INT(mts, o.base_ts + (o.nrecords - 1) * 3);
			/* kbatch_decompress gives back exactly the records. */
			struct kbatch b;
			CHECK_EQ_INT(kbatch_parse_header(w.p, w.len, &b), 0);
			CHECK_EQ_INT(b.size, size);
			CHECK_EQ_INT(b.attributes & KB_ATTR_CODEC_MASK, o.codec);
			CHECK_EQ_INT(kbatch_decompress(&b, &dec), 0);
			tb_records(&plain, &o);
			CHECK_EQ_INT(dec.len, plain.len);
			CHECK(dec.len == plain.len && memcmp(dec.p, plain.p, plain.len) == 0);
			wbuf_destroy(&w);
			wbuf_destroy(&scratch);
			wbuf_destroy(&dec);
			wbuf_destroy(&plain);
		}
	}
}

TEST(records_several_batches_back_to_back)
{
	struct wbuf w;
	wbuf_init(&w, 0, 0);
	int64_t want = 0;
	for (size_t c = 0; c < SILT_ARRAY_LEN(g_codecs); c++) {
		struct tb_opts o;
		tb_defaults(&o);
		o.codec = g_codecs[c].codec;
		o.variant = g_codecs[c].variant;
		o.nrecords = 5 + (int)c;
		o.base_ts += (int64_t)c * 1000;
		tb_build(&w, &o);
		want += o.nrecords;
	}
	struct wbuf scratch;
	wbuf_init(&scratch, 0, 1 << 20);
	int nb;
	int64_t total, mts;
	CHECK_EQ_INT(kbatch_validate_set(w.p, w.len, &g_lim, &scratch, &nb, &total, &mts), KREC_OK);
	CHECK_EQ_INT(nb, SILT_ARRAY_LEN(g_codecs));
	CHECK_EQ_INT(total, want);
	CHECK_EQ_INT(mts, 1700000000000LL + 8 * 1000 + (5 + 8 - 1) * 3);
	/* A partial batch after valid ones spoils the set. */
	CHECK_EQ_INT(kbatch_validate_set(w.p, w.len - 1, &g_lim, &scratch, &nb, &total, &mts),
		     KREC_CORRUPT_MESSAGE);
	/* An empty set is not a produce. */
	CHECK_EQ_INT(kbatch_validate_set(w.p, 0, &g_lim, &scratch, &nb, &total, &mts), KREC_INVALID_RECORD);
	wbuf_destroy(&scratch);
	wbuf_destroy(&w);
}

TEST(records_every_truncation_rejected)
{
	for (size_t c = 0; c < SILT_ARRAY_LEN(g_codecs); c++) {
		struct tb_opts o;
		tb_defaults(&o);
		o.codec = g_codecs[c].codec;
		o.variant = g_codecs[c].variant;
		o.nrecords = 12;
		struct wbuf w;
		wbuf_init(&w, 0, 0);
		size_t size = tb_build(&w, &o);
		uint8_t *copy = xmalloc(size);
		for (size_t k = 0; k < size; k++) {
			/* As cut off in transit: the framing does not add up. */
			memcpy(copy, w.p, size);
			int rc = validate(copy, k, NULL, NULL);
			CHECK(rc != KREC_OK);
			/* As if the client had sent the short batch, correctly
			 * framed and signed: the walk or the decoder must see it. */
			if (k >= KBATCH_HEADER_SIZE) {
				tb_resign(copy, k);
				rc = validate(copy, k, NULL, NULL);
				if (rc == KREC_OK)
					fprintf(stderr, "  %s: re-signed cut at %zu accepted\n", g_codecs[c].name, k);
				CHECK(rc != KREC_OK);
			}
		}
		free(copy);
		wbuf_destroy(&w);
	}
}

TEST(records_flipped_bytes_rejected)
{
	for (size_t c = 0; c < SILT_ARRAY_LEN(g_codecs); c++) {
		struct tb_opts o;
		tb_defaults(&o);
		o.codec = g_codecs[c].codec;
		o.variant = g_codecs[c].variant;
		o.nrecords = 6;
		struct wbuf w;
		wbuf_init(&w, 0, 0);
		size_t size = tb_build(&w, &o);
		uint8_t *copy = xmalloc(size);
		for (size_t i = KB_ATTRIBUTES; i < size; i++) {
			static const uint8_t masks[] = { 0x01, 0x80, 0xff };
			for (size_t m = 0; m < SILT_ARRAY_LEN(masks); m++) {
				memcpy(copy, w.p, size);
				copy[i] ^= masks[m];
				CHECK_EQ_INT(validate(copy, size, NULL, NULL), KREC_CORRUPT_MESSAGE);
				/* Re-signed, the damage reaches the decoders and
				 * the walk: any answer is fine, but no crash (ASan). */
				tb_resign(copy, size);
				(void)validate(copy, size, NULL, NULL);
			}
		}
		/* The CRC field itself. */
		for (size_t i = KB_CRC; i < KB_CRC + 4; i++) {
			memcpy(copy, w.p, size);
			copy[i] ^= 0x10;
			CHECK_EQ_INT(validate(copy, size, NULL, NULL), KREC_CORRUPT_MESSAGE);
		}
		/* baseOffset and leader epoch are outside the CRC: still valid. */
		memcpy(copy, w.p, size);
		copy[3] ^= 0xff;
		copy[KB_LEADER_EPOCH] ^= 0x7f;
		CHECK_EQ_INT(validate(copy, size, NULL, NULL), KREC_OK);
		free(copy);
		wbuf_destroy(&w);
	}
}

TEST(records_bad_magic)
{
	struct tb_opts o;
	tb_defaults(&o);
	o.magic = 0;
	CHECK_EQ_INT(validate_opts(&o), KREC_UNSUPPORTED_FOR_MESSAGE_FORMAT);
	o.magic = 1;
	CHECK_EQ_INT(validate_opts(&o), KREC_UNSUPPORTED_FOR_MESSAGE_FORMAT);
	o.magic = 3;
	CHECK_EQ_INT(validate_opts(&o), KREC_CORRUPT_MESSAGE);
	o.magic = -1;
	CHECK_EQ_INT(validate_opts(&o), KREC_CORRUPT_MESSAGE);
	/* A v0 message is shorter than a v2 header: its magic still counts. */
	uint8_t v0[26] = { 0 };
	v0[11] = 14; /* message size */
	v0[KB_MAGIC] = 0;
	CHECK_EQ_INT(validate(v0, sizeof(v0), NULL, NULL), KREC_UNSUPPORTED_FOR_MESSAGE_FORMAT);
	CHECK_EQ_INT(validate(v0, 16, NULL, NULL), KREC_CORRUPT_MESSAGE);
}

TEST(records_count_mismatch)
{
	for (size_t c = 0; c < SILT_ARRAY_LEN(g_codecs); c++) {
		struct tb_opts o;
		tb_defaults(&o);
		o.codec = g_codecs[c].codec;
		o.variant = g_codecs[c].variant;
		o.count_adjust = 1;
		CHECK_EQ_INT(validate_opts(&o), KREC_INVALID_RECORD);
		o.count_adjust = -1;
		CHECK_EQ_INT(validate_opts(&o), KREC_INVALID_RECORD);
		/* Header consistent, but fewer records than it says. */
		o.count_adjust = 0;
		o.drop_last_records = 1;
		CHECK_EQ_INT(validate_opts(&o), KREC_INVALID_RECORD);
		/* Junk after the last record. */
		o.drop_last_records = 0;
		o.trailing_bytes = 3;
		CHECK_EQ_INT(validate_opts(&o), KREC_INVALID_RECORD);
	}
	/* recordsCount 0 with lastOffsetDelta -1 is consistent but empty. */
	struct tb_opts o;
	tb_defaults(&o);
	o.nrecords = 0;
	CHECK_EQ_INT(validate_opts(&o), KREC_INVALID_RECORD);
}

TEST(records_wrong_offset_delta_and_record_framing)
{
	for (size_t c = 0; c < SILT_ARRAY_LEN(g_codecs); c++) {
		struct tb_opts o;
		tb_defaults(&o);
		o.codec = g_codecs[c].codec;
		o.variant = g_codecs[c].variant;
		o.bad_offset_delta_at = 4;
		CHECK_EQ_INT(validate_opts(&o), KREC_INVALID_RECORD);
		o.bad_offset_delta_at = 0;
		CHECK_EQ_INT(validate_opts(&o), KREC_INVALID_RECORD);
		o.bad_offset_delta_at = -1;
		o.stray_byte_in_record = 3;
		CHECK_EQ_INT(validate_opts(&o), KREC_INVALID_RECORD);
	}
	/* Hand-made records: a key length below -1, a null header key. */
	static const uint8_t bad_key[] = { 12, 0, 0, 0, 3 /* key len -2 */, 0, 0 };
	static const uint8_t null_hkey[] = { 16, 0, 0, 0, 1, 1, 2 /* one header */, 1 /* key -1 */, 1 };
	static const uint8_t ok_rec[] = { 14, 0, 0, 0, 1, 1, 2, 0, 1 };
	const struct {
		const uint8_t *p;
		size_t n;
		int want;
	} cases[] = {
		{ bad_key, sizeof(bad_key), KREC_INVALID_RECORD },
		{ null_hkey, sizeof(null_hkey), KREC_INVALID_RECORD },
		{ ok_rec, sizeof(ok_rec), KREC_OK },
	};
	for (size_t i = 0; i < SILT_ARRAY_LEN(cases); i++) {
		struct tb_opts o;
		tb_defaults(&o);
		o.nrecords = 1;
		struct wbuf w;
		wbuf_init(&w, 0, 0);
		/* zig-zag: length byte = 2 * len, fix it to the real size */
		uint8_t rec[16];
		memcpy(rec, cases[i].p, cases[i].n);
		rec[0] = (uint8_t)(2 * (cases[i].n - 1));
		tb_wrap(&w, &o, 0, rec, cases[i].n);
		CHECK_EQ_INT(validate(w.p, w.len, NULL, NULL), cases[i].want);
		wbuf_destroy(&w);
	}
}

TEST(records_control_codec_and_producer_rules)
{
	struct tb_opts o;
	tb_defaults(&o);
	o.extra_attrs = KB_ATTR_CONTROL;
	CHECK_EQ_INT(validate_opts(&o), KREC_INVALID_RECORD);
	o.extra_attrs = KB_ATTR_TRANSACTIONAL; /* left to the Produce handler */
	o.producer_id = 7;
	o.base_sequence = 0;
	o.producer_epoch = 0;
	CHECK_EQ_INT(validate_opts(&o), KREC_OK);
	o.extra_attrs = 0;
	for (int codec = 5; codec <= 7; codec++) {
		struct wbuf w;
		wbuf_init(&w, 0, 0);
		struct wbuf recs;
		wbuf_init(&recs, 0, 0);
		tb_records(&recs, &o);
		tb_wrap(&w, &o, codec, recs.p, recs.len);
		CHECK_EQ_INT(validate(w.p, w.len, NULL, NULL), KREC_UNSUPPORTED_COMPRESSION_TYPE);
		wbuf_destroy(&w);
		wbuf_destroy(&recs);
	}
	/* producerId set with a negative baseSequence. */
	o.producer_id = 7;
	o.base_sequence = -1;
	CHECK_EQ_INT(validate_opts(&o), KREC_INVALID_RECORD);
	o.base_sequence = INT32_MIN;
	CHECK_EQ_INT(validate_opts(&o), KREC_INVALID_RECORD);
	o.base_sequence = INT32_MAX; /* wraps inside the batch: fine */
	CHECK_EQ_INT(validate_opts(&o), KREC_OK);
	/* No producer: the sequence is ignored. */
	o.producer_id = -1;
	o.base_sequence = -1;
	CHECK_EQ_INT(validate_opts(&o), KREC_OK);
}

TEST(records_too_large)
{
	struct tb_opts o;
	tb_defaults(&o);
	o.nrecords = 100;
	o.value_size = 100;
	struct wbuf w, scratch;
	wbuf_init(&w, 0, 0);
	wbuf_init(&scratch, 0, 1 << 20);
	size_t size = tb_build(&w, &o);
	int nb;
	int64_t total, mts;
	struct kbatch_limits lim = { (uint32_t)size, 0 };
	CHECK_EQ_INT(kbatch_validate_set(w.p, w.len, &lim, &scratch, &nb, &total, &mts), KREC_OK);
	lim.max_batch_bytes = (uint32_t)size - 1;
	CHECK_EQ_INT(kbatch_validate_set(w.p, w.len, &lim, &scratch, &nb, &total, &mts),
		     KREC_MESSAGE_TOO_LARGE);
	/* The decompressed size cap, from the limits and from the scratch. */
	for (size_t c = 1; c < SILT_ARRAY_LEN(g_codecs); c++) {
		wbuf_reset(&w);
		o.codec = g_codecs[c].codec;
		o.variant = g_codecs[c].variant;
		tb_build(&w, &o);
		struct kbatch_limits l2 = { 0, 5000 };
		CHECK_EQ_INT(kbatch_validate_set(w.p, w.len, &l2, &scratch, &nb, &total, &mts),
			     KREC_MESSAGE_TOO_LARGE);
		struct wbuf small;
		wbuf_init(&small, 0, 4000);
		l2.max_uncompressed = 0;
		CHECK_EQ_INT(kbatch_validate_set(w.p, w.len, &l2, &small, &nb, &total, &mts),
			     KREC_MESSAGE_TOO_LARGE);
		wbuf_destroy(&small);
		l2.max_uncompressed = 1 << 20;
		CHECK_EQ_INT(kbatch_validate_set(w.p, w.len, &l2, &scratch, &nb, &total, &mts), KREC_OK);
	}
	wbuf_destroy(&w);
	wbuf_destroy(&scratch);
}

TEST(records_decompression_bomb_rejected)
{
	/* 64 MiB of zeros in one "record section" against an 8 MiB cap. */
	size_t n = 64u << 20;
	uint8_t *zeros = xcalloc(1, n);
	for (size_t c = 1; c < SILT_ARRAY_LEN(g_codecs); c++) {
		struct tb_opts o;
		tb_defaults(&o);
		struct wbuf comp, w, scratch;
		wbuf_init(&comp, 0, 0);
		wbuf_init(&w, 0, 0);
		wbuf_init(&scratch, 0, 64 << 20);
		tb_compress(&comp, g_codecs[c].codec, g_codecs[c].variant, zeros, n);
		tb_wrap(&w, &o, g_codecs[c].codec, comp.p, comp.len);
		struct kbatch_limits lim = { 0, 8 << 20 };
		int nb;
		int64_t total, mts;
		int64_t t0 = mono_us();
		int rc = kbatch_validate_set(w.p, w.len, &lim, &scratch, &nb, &total, &mts);
		int64_t t1 = mono_us();
		CHECK_EQ_INT(rc, KREC_MESSAGE_TOO_LARGE);
		CHECK(scratch.cap <= (8u << 20));
		printf("  bomb %-13s %8zu bytes -> rejected in %.1f ms, scratch %zu KiB\n", g_codecs[c].name,
		       comp.len, (double)(t1 - t0) / 1000.0, scratch.cap >> 10);
		wbuf_destroy(&comp);
		wbuf_destroy(&w);
		wbuf_destroy(&scratch);
	}
	free(zeros);
}

TEST(records_parse_header)
{
	struct tb_opts o;
	tb_defaults(&o);
	o.producer_id = 42;
	o.producer_epoch = 3;
	o.base_sequence = 17;
	o.nrecords = 4;
	struct wbuf w;
	wbuf_init(&w, 0, 0);
	size_t size = tb_build(&w, &o);
	struct kbatch b;
	CHECK_EQ_INT(kbatch_parse_header(w.p, 60, &b), -SILT_EAGAIN);
	CHECK_EQ_INT(kbatch_parse_header(w.p, w.len, &b), 0);
	CHECK(b.p == w.p);
	CHECK_EQ_INT(b.size, size);
	CHECK_EQ_INT(b.magic, 2);
	CHECK_EQ_INT(b.leader_epoch, -1);
	CHECK_EQ_INT(b.last_offset_delta, 3);
	CHECK_EQ_INT(b.records_count, 4);
	CHECK_EQ_INT(b.producer_id, 42);
	CHECK_EQ_INT(b.producer_epoch, 3);
	CHECK_EQ_INT(b.base_sequence, 17);
	CHECK_EQ_INT(b.base_timestamp, o.base_ts);
	CHECK_EQ_INT(b.max_timestamp, o.base_ts + 9);
	CHECK_EQ_INT(b.crc, kbatch_compute_crc(w.p, size));
	w.p[KB_MAGIC] = 1;
	CHECK_EQ_INT(kbatch_parse_header(w.p, w.len, &b), -SILT_ECORRUPT);
	w.p[KB_MAGIC] = 2;
	wr_be32(w.p + KB_LENGTH, 48);
	CHECK_EQ_INT(kbatch_parse_header(w.p, w.len, &b), -SILT_ECORRUPT);
	wbuf_destroy(&w);
}

TEST(records_assign_keeps_crc)
{
	for (size_t c = 0; c < SILT_ARRAY_LEN(g_codecs); c++) {
		struct tb_opts o;
		tb_defaults(&o);
		o.codec = g_codecs[c].codec;
		o.variant = g_codecs[c].variant;
		struct wbuf w;
		wbuf_init(&w, 0, 0);
		size_t size = tb_build(&w, &o);
		uint32_t crc0 = rd_be32(w.p + KB_CRC);
		kbatch_assign(w.p, 123456789012LL, 7, -1);
		struct kbatch b;
		CHECK_EQ_INT(kbatch_parse_header(w.p, w.len, &b), 0);
		CHECK_EQ_INT(b.base_offset, 123456789012LL);
		CHECK_EQ_INT(b.leader_epoch, 7);
		CHECK_EQ_INT(b.crc, crc0);
		CHECK_EQ_INT(validate(w.p, size, NULL, NULL), KREC_OK);
		CHECK_EQ_INT(kbatch_seglog_format.verify(w.p, size), 0);
		/* LogAppendTime: attribute bit, maxTimestamp, new CRC. */
		kbatch_assign(w.p, 5, 8, 1800000000000LL);
		CHECK_EQ_INT(kbatch_parse_header(w.p, w.len, &b), 0);
		CHECK_EQ_INT(b.base_offset, 5);
		CHECK_EQ_INT(b.leader_epoch, 8);
		CHECK(b.attributes & KB_ATTR_LOG_APPEND_TIME);
		CHECK_EQ_INT(b.attributes & KB_ATTR_CODEC_MASK, o.codec);
		CHECK_EQ_INT(b.max_timestamp, 1800000000000LL);
		CHECK_EQ_INT(b.base_timestamp, o.base_ts);
		CHECK(b.crc != crc0);
		CHECK_EQ_INT(b.crc, kbatch_compute_crc(w.p, size));
		CHECK_EQ_INT(validate(w.p, size, NULL, NULL), KREC_OK);
		CHECK_EQ_INT(kbatch_seglog_format.verify(w.p, size), 0);
		wbuf_destroy(&w);
	}
}

TEST(records_seglog_format)
{
	const struct seglog_format *f = &kbatch_seglog_format;
	CHECK_EQ_INT(f->header_size, 61);
	struct tb_opts o;
	tb_defaults(&o);
	o.nrecords = 9;
	o.codec = KCODEC_LZ4;
	struct wbuf w;
	wbuf_init(&w, 0, 0);
	size_t size = tb_build(&w, &o);
	kbatch_assign(w.p, 1000, 1, -1);
	struct seglog_entry e;
	CHECK_EQ_INT(f->scan_header(w.p, 61, &e), 0);
	CHECK_EQ_INT(e.size, size);
	CHECK_EQ_INT(e.first_offset, 1000);
	CHECK_EQ_INT(e.last_offset, 1008);
	CHECK_EQ_INT(e.max_timestamp, o.base_ts + 24);
	CHECK_EQ_INT(f->scan_header(w.p, 60, &e), -SILT_ECORRUPT);
	CHECK_EQ_INT(f->verify(w.p, size), 0);
	CHECK_EQ_INT(f->verify(w.p, size - 1), -SILT_ECORRUPT);
	uint8_t *copy = xmalloc(size);
	for (size_t i = KB_ATTRIBUTES; i < size; i++) {
		memcpy(copy, w.p, size);
		copy[i] ^= 0x04;
		CHECK_EQ_INT(f->verify(copy, size), -SILT_ECORRUPT);
	}
	/* Header sanity: negative base offset, negative lastOffsetDelta. */
	memcpy(copy, w.p, size);
	wr_be64(copy, (uint64_t)-5);
	CHECK_EQ_INT(f->scan_header(copy, size, &e), -SILT_ECORRUPT);
	CHECK_EQ_INT(f->verify(copy, size), -SILT_ECORRUPT);
	memcpy(copy, w.p, size);
	wr_be32(copy + KB_LAST_OFFSET_DELTA, (uint32_t)-1);
	tb_resign(copy, size);
	CHECK_EQ_INT(f->scan_header(copy, size, &e), -SILT_ECORRUPT);
	/* Compaction-style batch (fewer records than the offset span) passes
	 * verify; more records than offsets does not. */
	memcpy(copy, w.p, size);
	wr_be32(copy + KB_RECORDS_COUNT, 3);
	tb_resign(copy, size);
	CHECK_EQ_INT(f->verify(copy, size), 0);
	wr_be32(copy + KB_RECORDS_COUNT, 10);
	tb_resign(copy, size);
	CHECK_EQ_INT(f->verify(copy, size), -SILT_ECORRUPT);
	free(copy);
	wbuf_destroy(&w);
}

/* Appends one 5-record batch at the log's end; returns its size (0 on error). */
static size_t seglog_put_batch(struct seglog *log, struct wbuf *w)
{
	struct tb_opts o;
	tb_defaults(&o);
	o.nrecords = 5;
	wbuf_reset(w);
	size_t size = tb_build(w, &o);
	int64_t first = seglog_end_offset(log);
	kbatch_assign(w->p, first, 0, -1);
	struct iovec iov = { w->p, size };
	return seglog_append(log, &iov, 1, first + 4, o.base_ts + 24) == 0 ? size : 0;
}

/* A zero-filled tail after the last batch (a preallocated file, or one a
 * crash left longer than its data) is never taken for batches: an all-zero
 * header is invalid, and an open cuts the tail whether or not the log was
 * closed cleanly, so sizes, reads and later appends see only the batches. */
TEST(records_seglog_zero_tail_cut)
{
	const char *dir = test_tmpdir();
	struct seglog_opts so;
	struct seglog *log;
	struct seglog_stats st;
	struct seglog_entry e;
	struct stat sb;
	struct wbuf w;
	char path[PATH_MAX];
	uint8_t zero[KBATCH_HEADER_SIZE] = { 0 };
	uint64_t bytes = 0;

	CHECK_EQ_INT(kbatch_seglog_format.scan_header(zero, sizeof(zero), &e), -SILT_ECORRUPT);
	seglog_opts_default(&so);
	wbuf_init(&w, 0, 0);
	snprintf(path, sizeof(path), "%s/%020d.log", dir, 0);
	REQUIRE(seglog_open(dir, &so, &kbatch_seglog_format, &log) == 0);
	for (int i = 0; i < 3; i++) {
		size_t n = seglog_put_batch(log, &w);
		CHECK(n > 0);
		bytes += n;
	}
	for (int pass = 0; pass < 2; pass++) {
		seglog_close(log);
		REQUIRE(stat(path, &sb) == 0 && (uint64_t)sb.st_size == bytes);
		REQUIRE(truncate(path, (off_t)bytes + (1 << 20)) == 0);
		if (pass == 0) {
			char marker[PATH_MAX];
			snprintf(marker, sizeof(marker), "%s/.clean", dir);
			CHECK(unlink(marker) == 0);
		}
		REQUIRE(seglog_open(dir, &so, &kbatch_seglog_format, &log) == 0);
		seglog_get_stats(log, &st);
		CHECK(!st.open_was_clean);
		CHECK_EQ_INT(st.open_truncated_bytes, 1 << 20);
		CHECK_EQ_INT(seglog_end_offset(log), 15 + 5 * pass);
		CHECK_EQ_INT(seglog_size_bytes(log), bytes);
		CHECK(stat(path, &sb) == 0 && (uint64_t)sb.st_size == bytes);
		size_t n = seglog_put_batch(log, &w);
		CHECK(n > 0);
		bytes += n;
		struct seglog_read rd;
		REQUIRE(seglog_read(log, 0, 1 << 30, &rd) == 0 && rd.seg);
		CHECK_EQ_INT(rd.len, bytes);
		uint8_t *buf = xmalloc(rd.len);
		CHECK(pread(rd.fd, buf, rd.len, (off_t)rd.pos) == (ssize_t)rd.len);
		int nb = 0;
		for (uint64_t at = 0; at < rd.len; at += e.size, nb++) {
			if (kbatch_seglog_format.scan_header(buf + at, rd.len - at, &e) != 0 ||
			    e.size > rd.len - at) {
				test_fail(__FILE__, __LINE__, "whole batches up to the end");
				break;
			}
			CHECK_EQ_INT(kbatch_seglog_format.verify(buf + at, e.size), 0);
			CHECK_EQ_INT(e.first_offset, nb * 5);
		}
		CHECK_EQ_INT(nb, 4 + pass);
		free(buf);
		seglog_seg_unref(rd.seg);
	}
	seglog_close(log);
	wbuf_destroy(&w);
}

/* Not a check: prints how fast validation runs on a 10,000-record batch of
 * 100-byte values (the broker's target is > 1,000,000 records/s). */
TEST(records_validate_speed)
{
	for (size_t c = 0; c < SILT_ARRAY_LEN(g_codecs); c++) {
		struct tb_opts o;
		tb_defaults(&o);
		o.codec = g_codecs[c].codec;
		o.variant = g_codecs[c].variant;
		o.nrecords = 10000;
		o.value_size = 100;
		o.keys_headers = false;
		struct wbuf w, scratch;
		wbuf_init(&w, 0, 0);
		wbuf_init(&scratch, 0, 16 << 20);
		tb_build(&w, &o);
		struct kbatch_limits lim = { 0, 16 << 20 };
		int nb;
		int64_t total, mts;
		int iters = 0;
		int64_t t0 = mono_us(), t1;
		do {
			CHECK_EQ_INT(kbatch_validate_set(w.p, w.len, &lim, &scratch, &nb, &total, &mts), KREC_OK);
			iters++;
			t1 = mono_us();
		} while (t1 - t0 < 100000 || iters < 3);
		double secs = (double)(t1 - t0) / 1e6;
		printf("  validate %-13s %7zu bytes: %8.2f M records/s (%6.0f MB/s on the wire)\n",
		       g_codecs[c].name, w.len, (double)iters * o.nrecords / secs / 1e6,
		       (double)iters * (double)w.len / secs / 1e6);
		wbuf_destroy(&w);
		wbuf_destroy(&scratch);
	}
}

/* With SILT_WRITE_FUZZ_SEEDS=dir set, writes valid batches (one per codec,
 * plus a multi-batch set) as seed files for tests/fuzz/fuzz_kbatch. */
TEST(tool_records_write_fuzz_seeds)
{
	const char *dir = getenv("SILT_WRITE_FUZZ_SEEDS");
	if (!dir)
		return;
	struct wbuf all;
	wbuf_init(&all, 0, 0);
	for (size_t c = 0; c < SILT_ARRAY_LEN(g_codecs); c++) {
		struct tb_opts o;
		tb_defaults(&o);
		o.codec = g_codecs[c].codec;
		o.variant = g_codecs[c].variant;
		o.nrecords = 4;
		o.value_size = 5;
		if (c % 2) {
			o.producer_id = 1000 + (int64_t)c;
			o.producer_epoch = 0;
			o.base_sequence = 0;
		}
		struct wbuf w;
		wbuf_init(&w, 0, 0);
		tb_build(&w, &o);
		if (c < 4)
			wbuf_put(&all, w.p, w.len);
		char path[512];
		snprintf(path, sizeof(path), "%s/batch-%s", dir, g_codecs[c].name);
		CHECK_EQ_INT(write_file_atomic(path, w.p, w.len), 0);
		wbuf_destroy(&w);
	}
	char path[512];
	snprintf(path, sizeof(path), "%s/set-4-batches", dir);
	CHECK_EQ_INT(write_file_atomic(path, all.p, all.len), 0);
	wbuf_destroy(&all);
}
