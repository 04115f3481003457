/* fuzz_seglog_recover.c - opens a log whose segment and index files are the
 * fuzz input, then reads every offset, looks up times, appends, truncates,
 * closes and reopens. Bytes on disk are untrusted: nothing here may crash,
 * leak or read out of bounds, and the log must stay usable.
 *
 * Input: u8 flags, u16 index length + bytes, u16 time index length + bytes,
 * then the .log bytes. Flags: 1 = write the clean marker, 2 = add an empty
 * segment after it (so the fuzzed one is inactive and loaded lazily),
 * 4 = tiny index interval, 8 = skip checksums (so the fuzzer can build
 * valid-looking entries without computing CRCs). */
#include "core/platform.h"
#include "core/crc.h"
#include "core/log.h"
#include "core/rd.h"
#include "core/wbuf.h"
#include "storage/seglog.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR 28

static bool g_nocrc;

static int f_scan(const uint8_t *p, size_t len, struct seglog_entry *e)
{
	struct rd r;
	rd_init(&r, p, len);
	int64_t first = rd_i64(&r);
	uint32_t count = rd_u32(&r);
	uint32_t body = rd_u32(&r);
	int64_t ts = rd_i64(&r);
	if (r.err || first < 0 || first > INT64_MAX / 2 || count == 0 || body > (1u << 20))
		return -SILT_ECORRUPT;
	e->size = HDR + (uint64_t)body;
	e->first_offset = first;
	e->last_offset = first + count - 1;
	e->max_timestamp = ts;
	return 0;
}

static int f_verify(const uint8_t *p, size_t len)
{
	if (len < HDR || rd_be32(p + 12) + (size_t)HDR != len)
		return -SILT_ECORRUPT;
	if (g_nocrc)
		return 0;
	uint32_t c = crc32c(crc32c(0, p, 24), p + HDR, len - HDR);
	return c == rd_be32(p + 24) ? 0 : -SILT_ECORRUPT;
}

static const struct seglog_format f_fmt = { HDR, f_scan, f_verify };
static char g_dir[256];

static void put_file(const char *name, const uint8_t *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", g_dir, name);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0)
		abort();
	if (n && write(fd, p, n) != (ssize_t)n)
		abort();
	close(fd);
}

static size_t take(const uint8_t **p, size_t *n, size_t want)
{
	size_t k = want < *n ? want : *n;
	*p += k;
	*n -= k;
	return k;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_ERROR);
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(g_dir, sizeof(g_dir), "%s/silt-fuzz-seglog-%d", base, (int)getpid());
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5)
		return 0;
	uint8_t flags = data[0];
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	size_t il = rd_be16(p);
	take(&p, &n, 2);
	const uint8_t *ib = p;
	il = take(&p, &n, il);
	if (n < 2)
		return 0;
	size_t tl = rd_be16(p);
	take(&p, &n, 2);
	const uint8_t *tb = p;
	tl = take(&p, &n, tl);
	g_nocrc = flags & 8;

	if (mkdir(g_dir, 0755) != 0 && errno != EEXIST)
		abort();
	put_file("00000000000000000000.log", p, n);
	put_file("00000000000000000000.index", ib, il);
	put_file("00000000000000000000.timeindex", tb, tl);
	if (flags & 1)
		put_file(".clean", NULL, 0);
	if (flags & 2)
		put_file("00000000000000100000.log", NULL, 0);

	struct seglog_opts o;
	seglog_opts_default(&o);
	o.index_interval_bytes = (flags & 4) ? 1 : 64;
	struct seglog *log;
	if (seglog_open(g_dir, &o, &f_fmt, &log) != 0)
		abort();
	int64_t start = seglog_start_offset(log), end = seglog_end_offset(log);
	if (start > end)
		abort();
	uint8_t buf[4096];
	int budget = 300;
	for (int64_t off = start; off < end && budget-- > 0; off++) {
		struct seglog_read rd;
		int rc = seglog_read(log, off, (uint64_t)(off % 3) * 100, &rd);
		/* Bad bytes may only surface from what open trusted without
		 * reading: an inactive segment, or the active one's entries
		 * before its last index entry after a clean shutdown. An
		 * unclean open verified every byte of the active segment. */
		if (rc == -SILT_ECORRUPT && (flags & 3))
			continue;
		if (rc != 0 || !rd.seg)
			abort();
		size_t k = rd.len < sizeof(buf) ? (size_t)rd.len : sizeof(buf);
		if (pread(rd.fd, buf, k, (off_t)rd.pos) != (ssize_t)k)
			abort();
		struct seglog_entry e;
		if (k >= HDR && (f_scan(buf, k, &e) != 0 || e.last_offset < off))
			abort();
		seglog_seg_unref(rd.seg);
	}
	(void)seglog_offset_for_time(log, 0);
	(void)seglog_offset_for_time(log, INT64_MAX);
	(void)seglog_offset_for_time(log, (int64_t)size);

	/* The log keeps working: append a valid entry and find it again. */
	uint8_t ent[HDR + 4] = { 0 };
	int64_t at = seglog_end_offset(log);
	wr_be64(ent, (uint64_t)at);
	wr_be32(ent + 8, 1);
	wr_be32(ent + 12, 4);
	wr_be64(ent + 16, 7);
	wr_be32(ent + 24, crc32c(crc32c(0, ent, 24), ent + HDR, 4));
	struct iovec iov = { ent, sizeof(ent) };
	if (seglog_append(log, &iov, 1, at, 7) != 0)
		abort();
	struct seglog_read rd;
	if (seglog_read(log, at, 1, &rd) != 0 || !rd.seg || rd.len != sizeof(ent))
		abort();
	seglog_seg_unref(rd.seg);
	(void)seglog_truncate(log, seglog_start_offset(log));
	seglog_close(log);

	if (seglog_open(g_dir, &o, &f_fmt, &log) != 0)
		abort();
	if (seglog_destroy(log) != 0)
		abort();
	return 0;
}
