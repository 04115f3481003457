/* fuzz_kbatch.c - libFuzzer target for the produce record-set validator.
 *
 * Each input is validated twice: as given, and with every batch's CRC
 * recomputed, because random mutations almost never keep the CRC right and
 * the interesting code (decompressors, record walk) sits behind it. Then the
 * seglog callbacks and kbatch_decompress see the first batch. Seeds in
 * tests/fuzz/corpus/fuzz_kbatch come from `SILT_WRITE_FUZZ_SEEDS=dir
 * build/unit_tests tool_records_write_fuzz_seeds`. */
#include "core/platform.h"
#include "core/rd.h"
#include "core/wbuf.h"
#include "kafka/records.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void resign(uint8_t *p, size_t len)
{
	size_t off = 0;
	while (len - off >= KBATCH_HEADER_SIZE) {
		int32_t blen = (int32_t)rd_be32(p + off + KB_LENGTH);
		if (blen < KBATCH_HEADER_SIZE - KBATCH_LOG_OVERHEAD)
			return;
		size_t sz = (size_t)blen + KBATCH_LOG_OVERHEAD;
		if (sz > len - off)
			return;
		wr_be32(p + off + KB_CRC, kbatch_compute_crc(p + off, sz));
		off += sz;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wbuf scratch;
	wbuf_init(&scratch, 0, 8u << 20);
	struct kbatch_limits lim = { 4u << 20, 8u << 20 };
	int nb;
	int64_t total, mts;
	(void)kbatch_validate_set(data, size, &lim, &scratch, &nb, &total, &mts);

	uint8_t *copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	resign(copy, size);
	int rc = kbatch_validate_set(copy, size, &lim, &scratch, &nb, &total, &mts);
	if (rc == KREC_OK && (nb < 1 || total < nb))
		abort();

	struct seglog_entry e;
	if (size >= KBATCH_HEADER_SIZE && kbatch_seglog_format.scan_header(copy, size, &e) == 0 &&
	    e.size <= size) {
		if (kbatch_seglog_format.verify(copy, (size_t)e.size) == 0 && e.last_offset < e.first_offset)
			abort();
		struct kbatch b;
		if (kbatch_parse_header(copy, size, &b) == 0 && b.size <= size) {
			wbuf_reset(&scratch);
			(void)kbatch_decompress(&b, &scratch);
			if (scratch.len > scratch.max)
				abort();
		}
	}
	free(copy);
	wbuf_destroy(&scratch);
	return 0;
}
