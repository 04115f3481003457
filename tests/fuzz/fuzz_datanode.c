/* fuzz_datanode.c - libFuzzer target for the data node's on-disk decoders:
 * the chunk entry header and the recovery of a volume file.
 *
 * Each input is checked three ways: as one chunk entry (parse, verify); then
 * with every entry's CRCs recomputed ("re-signed", since random mutations
 * almost never keep a CRC right and recovery's interesting paths sit behind
 * it), as a volume file that seglog recovery must cut at the first bad
 * entry; the recovered volume is then walked with the data node's own
 * checks, which must accept every entry recovery kept. Seeds in
 * tests/fuzz/corpus/fuzz_datanode come from `SILT_WRITE_FUZZ_SEEDS=dir
 * build/unit_tests tool_datanode_write_fuzz_seeds`. */
#include "core/platform.h"
#include "core/crc.h"
#include "core/log.h"
#include "core/rd.h"
#include "core/util.h"
#include "core/wbuf.h"
#include "datanode/dnchunk.h"
#include "storage/seglog.h"

#include <ftw.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[256];

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Walks entries from the start, fixing the header and data CRCs of each
 * one whose header otherwise parses, so recovery sees valid-looking runs. */
static void resign(uint8_t *p, size_t len)
{
	size_t off = 0;
	while (len - off >= DNCHUNK_HDR) {
		uint8_t *h = p + off;
		uint32_t dlen = rd_be32(h + 36);
		if (dlen > len - off - DNCHUNK_HDR)
			return;
		wr_be32(h + 48, crc32c(0, h + DNCHUNK_HDR, dlen));
		wr_be32(h + 52, crc32c(0, h, 52));
		off += DNCHUNK_HDR + dlen;
	}
}

static void cleanup(void)
{
	if (g_dir[0])
		nftw(g_dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dnchunk_hdr h;
	if (size >= DNCHUNK_HDR && dnchunk_parse(data, size, &h) == 0) {
		if (h.len > DNCHUNK_MAX_DATA || h.seq < 0)
			abort();
		if (dnchunk_verify(data, size) == 0 && size != DNCHUNK_HDR + (size_t)h.len)
			abort();
	}
	if (size > (4u << 20))
		return 0;

	if (!g_dir[0]) {
		log_set_level(LOG_ERROR);
		snprintf(g_dir, sizeof(g_dir), "/tmp/fuzz-datanode-XXXXXX");
		if (!mkdtemp(g_dir))
			abort();
		atexit(cleanup);
	}
	uint8_t *copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	resign(copy, size);

	char vol[300], path[400];
	snprintf(vol, sizeof(vol), "%s/vol", g_dir);
	nftw(vol, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	if (mkdir_p(vol, 0755) != 0)
		abort();
	snprintf(path, sizeof(path), "%s/00000000000000000000.log", vol);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(copy, 1, size, f) != size || fclose(f) != 0)
		abort();

	struct seglog_opts so;
	struct seglog *log;
	seglog_opts_default(&so);
	so.segment_ms = 0;
	if (seglog_open(vol, &so, &dnchunk_seglog_format, &log) == 0) {
		/* Every entry recovery kept must pass the data node's checks,
		 * with consecutive seqs from 0. */
		struct seglog_read r;
		if (seglog_seg_get(log, 0, &r) != 0)
			abort();
		uint64_t pos = 0;
		int64_t seq = 0;
		while (pos < r.len) {
			if (r.len - pos < DNCHUNK_HDR || dnchunk_parse(copy + pos, DNCHUNK_HDR, &h) != 0 ||
			    h.seq != seq || h.len > r.len - pos - DNCHUNK_HDR ||
			    dnchunk_verify(copy + pos, DNCHUNK_HDR + (size_t)h.len) != 0)
				abort();
			pos += DNCHUNK_HDR + (uint64_t)h.len;
			seq++;
		}
		if (seglog_end_offset(log) != seq)
			abort();
		seglog_seg_unref(r.seg);
		seglog_close(log);
	}
	free(copy);
	return 0;
}
