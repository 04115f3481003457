#include "core/platform.h"
#include "core/crc.h"
#include "core/log.h"
#include "core/rd.h"
#include "core/util.h"
#include "core/wbuf.h"
#include "storage/seglog.h"
#include "test.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A tiny entry format for the tests. Header (28 bytes, big-endian):
 * u64 first offset, u32 count, u32 body length, i64 timestamp, u32 CRC-32C
 * over the first 24 header bytes and the body. */
#define T_HDR 28
#define T_MAX_BODY (1u << 20)

static int t_scan(const uint8_t *p, size_t len, struct seglog_entry *e)
{
	struct rd r;
	rd_init(&r, p, len);
	int64_t first = rd_i64(&r);
	uint32_t count = rd_u32(&r);
	uint32_t body = rd_u32(&r);
	int64_t ts = rd_i64(&r);
	(void)rd_u32(&r);
	if (r.err || first < 0 || count == 0 || body > T_MAX_BODY)
		return -SILT_ECORRUPT;
	e->size = T_HDR + (uint64_t)body;
	e->first_offset = first;
	e->last_offset = first + count - 1;
	e->max_timestamp = ts;
	return 0;
}

static int t_verify(const uint8_t *p, size_t len)
{
	if (len < T_HDR || rd_be32(p + 12) + (size_t)T_HDR != len)
		return -SILT_ECORRUPT;
	uint32_t c = crc32c(0, p, 24);
	c = crc32c(c, p + T_HDR, len - T_HDR);
	return c == rd_be32(p + 24) ? 0 : -SILT_ECORRUPT;
}

static const struct seglog_format t_fmt = { T_HDR, t_scan, t_verify };

/* Writes an entry into buf (which must hold T_HDR + body bytes). */
static size_t t_make(uint8_t *buf, int64_t first, uint32_t count, uint32_t body, int64_t ts)
{
	wr_be64(buf, (uint64_t)first);
	wr_be32(buf + 8, count);
	wr_be32(buf + 12, body);
	wr_be64(buf + 16, (uint64_t)ts);
	for (uint32_t i = 0; i < body; i++)
		buf[T_HDR + i] = (uint8_t)(first * 31 + i);
	uint32_t c = crc32c(0, buf, 24);
	c = crc32c(c, buf + T_HDR, body);
	wr_be32(buf + 24, c);
	return T_HDR + body;
}

/* What the tests remember about each appended entry. */
struct tent {
	int64_t first, last, ts;
	uint32_t size;
};

struct model {
	struct tent *e;
	size_t n, cap;
};

static void model_add(struct model *m, int64_t first, uint32_t count, uint32_t size, int64_t ts)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->e = xrealloc(m->e, m->cap * sizeof(*m->e));
	}
	m->e[m->n++] = (struct tent){ first, first + count - 1, ts, size };
}

/* Entry index containing offset, or -1. */
static ssize_t model_find(const struct model *m, int64_t off)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (m->e[mid].last < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n && m->e[lo].first <= off ? (ssize_t)lo : -1;
}

/* Appends one entry at the log's end offset. */
static int append1(struct seglog *log, struct model *m, uint32_t count, uint32_t body, int64_t ts)
{
	static uint8_t buf[T_HDR + 70000];
	int64_t first = seglog_end_offset(log);
	size_t n = t_make(buf, first, count, body, ts);
	struct iovec iov = { buf, n };
	int rc = seglog_append(log, &iov, 1, first + count - 1, ts);
	if (rc == 0 && m)
		model_add(m, first, count, (uint32_t)n, ts);
	return rc;
}

/* Appends k entries in one call (one iovec each). */
static int append_k(struct seglog *log, struct model *m, int k, uint32_t count, uint32_t body,
		    int64_t ts)
{
	uint8_t *bufs[8];
	struct iovec iov[8];
	int64_t first = seglog_end_offset(log), at = first, maxts = -1;
	for (int i = 0; i < k; i++) {
		bufs[i] = xmalloc(T_HDR + body);
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = t_make(bufs[i], at, count, body, ts + i);
		at += count;
		maxts = ts + i;
	}
	int rc = seglog_append(log, iov, k, at - 1, maxts);
	for (int i = 0; i < k; i++) {
		if (rc == 0 && m)
			model_add(m, first + (int64_t)i * count, count, (uint32_t)iov[i].iov_len, ts + i);
		free(bufs[i]);
	}
	return rc;
}

static void t_opts(struct seglog_opts *o, uint64_t seg_bytes, uint32_t interval)
{
	seglog_opts_default(o);
	o->segment_bytes = seg_bytes;
	o->index_interval_bytes = interval;
}

static int count_files(const char *dir, const char *ext)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "ls %s | grep -c '\\%s$'", dir, ext);
	FILE *f = popen(cmd, "r");
	int n = 0;
	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

static void seg_file(char *out, size_t n, const char *dir, int64_t base, const char *ext)
{
	snprintf(out, n, "%s/%020" PRId64 "%s", dir, base, ext);
}

/* Reads [offset, max) and checks the range against the model: it starts at
 * the entry holding offset, holds whole valid consecutive entries, and is
 * as long as max_bytes allows within the segment. Returns entries seen. */
static int check_read(struct seglog *log, const struct model *m, int64_t offset, uint64_t max)
{
	struct seglog_read rd;
	int rc = seglog_read(log, offset, max, &rd);
	CHECK_EQ_INT(rc, 0);
	if (rc)
		return -1;
	ssize_t k = model_find(m, offset);
	CHECK(k >= 0);
	CHECK(rd.seg != NULL);
	if (k < 0 || !rd.seg) {
		seglog_seg_unref(rd.seg);
		return -1;
	}
	CHECK_EQ_INT(rd.first_offset, m->e[k].first);
	CHECK(rd.len >= m->e[k].size);
	CHECK(rd.len <= SILT_MAX(max, m->e[k].size));
	uint8_t *buf = xmalloc(rd.len + T_HDR);
	ssize_t got = pread(rd.fd, buf, rd.len, (off_t)rd.pos);
	CHECK_EQ_INT(got, (ssize_t)rd.len);
	uint64_t at = 0;
	int n = 0;
	while (got == (ssize_t)rd.len && at < rd.len) {
		struct seglog_entry e;
		if (t_scan(buf + at, rd.len - at, &e) != 0 || at + e.size > rd.len ||
		    (size_t)(k + n) >= m->n) {
			test_fail(__FILE__, __LINE__, "range holds whole entries of the model");
			break;
		}
		CHECK(t_verify(buf + at, e.size) == 0);
		CHECK_EQ_INT(e.first_offset, m->e[k + n].first);
		CHECK_EQ_INT(e.size, m->e[k + n].size);
		at += e.size;
		n++;
	}
	/* Maximal: the next entry (if in this segment) would not fit. */
	struct stat st;
	CHECK(fstat(rd.fd, &st) == 0);
	CHECK(rd.pos + rd.len <= (uint64_t)st.st_size);
	if (rd.len >= m->e[k].size && rd.pos + rd.len < (uint64_t)st.st_size &&
	    (size_t)(k + n) < m->n && rd.len < max)
		CHECK(rd.len + m->e[k + n].size > max);
	free(buf);
	seglog_seg_unref(rd.seg);
	return n;
}

TEST(seglog_append_read_many)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	struct model m = { 0 };
	t_opts(&o, 16 * 1024, 256);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	CHECK_EQ_INT(seglog_start_offset(log), 0);
	CHECK_EQ_INT(seglog_end_offset(log), 0);
	uint32_t seed = 1;
	for (int i = 0; i < 1500; i++) {
		seed = seed * 1103515245 + 12345;
		uint32_t count = 1 + (seed >> 16) % 5;
		uint32_t body = (seed >> 8) % 300;
		int rc = (i % 7 == 3) ? append_k(log, &m, 3, count, body, 1000 + i)
				      : append1(log, &m, count, body, 1000 + i);
		REQUIRE(rc == 0);
	}
	int64_t end = seglog_end_offset(log);
	CHECK_EQ_INT(end, m.e[m.n - 1].last + 1);
	struct seglog_stats st;
	seglog_get_stats(log, &st);
	CHECK(st.segments > 5);
	CHECK(count_files(dir, ".log") == (int)st.segments);
	uint64_t total = 0;
	for (size_t i = 0; i < m.n; i++)
		total += m.e[i].size;
	CHECK_EQ_INT(seglog_size_bytes(log), total);

	/* Every offset, including those inside multi-offset entries. */
	for (int64_t off = 0; off < end; off++)
		CHECK_EQ_INT(check_read(log, &m, off, 1), 1);
	for (int64_t off = 0; off < end; off += 3) {
		check_read(log, &m, off, 1000);
		check_read(log, &m, off, 5000);
	}
	/* A large max_bytes stops at the segment end. */
	CHECK(check_read(log, &m, 0, 1 << 30) > 1);

	/* End offset: empty read; beyond: ERANGE. */
	struct seglog_read rd;
	CHECK_EQ_INT(seglog_read(log, end, 100, &rd), 0);
	CHECK(rd.seg == NULL);
	CHECK_EQ_INT(rd.len, 0);
	CHECK_EQ_INT(seglog_read(log, end + 1, 100, &rd), -SILT_ERANGE);
	CHECK_EQ_INT(seglog_read(log, -1, 100, &rd), -SILT_ERANGE);

	/* Non-active segments never exceed segment_bytes. */
	int found = 0;
	for (size_t i = 0; i < m.n; i++) {
		char path[512];
		struct stat sb;
		seg_file(path, sizeof(path), dir, m.e[i].first, ".log");
		if (stat(path, &sb) == 0) {
			found++;
			CHECK(sb.st_size <= 16 * 1024);
		}
	}
	CHECK_EQ_INT(found, st.segments);
	seglog_close(log);
	free(m.e);
}

TEST(seglog_first_entry_always_whole)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	struct model m = { 0 };
	t_opts(&o, 1 << 20, 4096);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	REQUIRE(append1(log, &m, 4, 1000, 5) == 0);
	REQUIRE(append1(log, &m, 1, 10, 6) == 0);
	REQUIRE(append1(log, &m, 1, 10, 7) == 0);
	struct seglog_read rd;
	REQUIRE(seglog_read(log, 2, 10, &rd) == 0);
	CHECK_EQ_INT(rd.pos, 0);
	CHECK_EQ_INT(rd.len, T_HDR + 1000);
	CHECK_EQ_INT(rd.first_offset, 0);
	seglog_seg_unref(rd.seg);
	/* Range cut at whole entries: room for the first and one more. */
	REQUIRE(seglog_read(log, 0, T_HDR + 1000 + T_HDR + 10 + 5, &rd) == 0);
	CHECK_EQ_INT(rd.len, T_HDR + 1000 + T_HDR + 10);
	seglog_seg_unref(rd.seg);
	REQUIRE(seglog_read(log, 4, 1, &rd) == 0);
	CHECK_EQ_INT(rd.first_offset, 4);
	CHECK_EQ_INT(rd.pos, T_HDR + 1000);
	CHECK_EQ_INT(rd.len, T_HDR + 10);
	seglog_seg_unref(rd.seg);
	seglog_close(log);
	free(m.e);
}

TEST(seglog_roll_by_size_and_age)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	struct seglog_stats st;
	t_opts(&o, 1000, 4096);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	/* 3 x 328 bytes fit in 1000; the fourth rolls. */
	for (int i = 0; i < 3; i++)
		REQUIRE(append1(log, NULL, 1, 300, i) == 0);
	seglog_get_stats(log, &st);
	CHECK_EQ_INT(st.segments, 1);
	REQUIRE(append1(log, NULL, 1, 300, 3) == 0);
	seglog_get_stats(log, &st);
	CHECK_EQ_INT(st.segments, 2);
	/* An entry larger than segment_bytes goes alone into a segment. */
	REQUIRE(append1(log, NULL, 1, 5000, 4) == 0);
	seglog_get_stats(log, &st);
	CHECK_EQ_INT(st.segments, 3);
	REQUIRE(append1(log, NULL, 1, 10, 5) == 0);
	seglog_get_stats(log, &st);
	CHECK_EQ_INT(st.segments, 4);
	char path[512];
	seg_file(path, sizeof(path), dir, 3, ".log");
	CHECK(access(path, F_OK) == 0);
	/* The old segment's indexes were written on roll. */
	seg_file(path, sizeof(path), dir, 0, ".index");
	struct stat sb;
	CHECK(stat(path, &sb) == 0 && sb.st_size == 8);

	o.segment_bytes = 1 << 20;
	o.segment_ms = 30;
	seglog_set_opts(log, &o);
	REQUIRE(append1(log, NULL, 1, 10, 6) == 0);
	seglog_get_stats(log, &st);
	CHECK_EQ_INT(st.segments, 4);
	usleep(60 * 1000);
	REQUIRE(append1(log, NULL, 1, 10, 7) == 0);
	seglog_get_stats(log, &st);
	CHECK_EQ_INT(st.segments, 5);
	CHECK_EQ_INT(seglog_end_offset(log), 8);
	/* A roll fsyncs the old segment. */
	CHECK(seglog_flushed_offset(log) >= 7);
	seglog_close(log);
}

/* writeback_bytes only starts writeback early: appends, rolls and reads
 * behave exactly as without it. */
TEST(seglog_writeback_bytes)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	struct model m = { 0 };
	t_opts(&o, 300000, 4096);
	o.writeback_bytes = 65536;
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	for (int i = 0; i < 40; i++)
		REQUIRE(append1(log, &m, 2, 30000, i) == 0);
	struct seglog_stats st;
	seglog_get_stats(log, &st);
	CHECK(st.segments >= 4);
	CHECK_EQ_INT(seglog_end_offset(log), 80);
	for (int64_t off = 0; off < 80; off += 7)
		CHECK(check_read(log, &m, off, 1 << 20) > 0);
	seglog_close(log);
	free(m.e);
}

/* Fills a log with small entries in several segments. */
static void fill(struct seglog *log, struct model *m, int n)
{
	for (int i = 0; i < n; i++)
		if (append1(log, m, 1 + (uint32_t)(i % 3), 40 + (uint32_t)(i % 50), 100 + i) != 0)
			test_fail(__FILE__, __LINE__, "append");
}

static void flip_byte(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	uint8_t b = 0;
	if (fd < 0 || pread(fd, &b, 1, at) != 1)
		test_fail(__FILE__, __LINE__, "flip_byte read");
	b ^= 0x5a;
	if (pwrite(fd, &b, 1, at) != 1)
		test_fail(__FILE__, __LINE__, "flip_byte write");
	close(fd);
}

static void append_raw(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	if (fd < 0 || write(fd, p, n) != (ssize_t)n)
		test_fail(__FILE__, __LINE__, "append_raw");
	close(fd);
}

static void drop_clean(const char *dir)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/.clean", dir);
	CHECK(unlink(path) == 0);
}

/* Position of model entry k inside its segment, given segment bases. */
static uint64_t model_pos(const struct model *m, size_t k, int64_t base)
{
	uint64_t pos = 0;
	for (size_t i = 0; i < k; i++)
		if (m->e[i].first >= base)
			pos += m->e[i].size;
	return pos;
}

TEST(seglog_reopen_clean_reads_no_data)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	struct seglog_stats st;
	struct model m = { 0 };
	char path[512];
	t_opts(&o, 8192, 256);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	fill(log, &m, 400);
	int64_t end = seglog_end_offset(log);
	uint64_t size = seglog_size_bytes(log);
	seglog_get_stats(log, &st);
	uint32_t nseg = st.segments;
	seglog_close(log);
	CHECK(count_files(dir, ".index") == (int)nseg);

	/* Find the active segment's base and damage an entry body early in it
	 * (before its last index entry) and one in segment 0. */
	int64_t abase = 0;
	for (size_t i = 0; i < m.n; i++) {
		seg_file(path, sizeof(path), dir, m.e[i].first, ".log");
		if (access(path, F_OK) == 0)
			abase = m.e[i].first;
	}
	size_t k = 0;
	while (m.e[k].first != abase)
		k++;
	size_t victim = k + 1;
	seg_file(path, sizeof(path), dir, abase, ".log");
	flip_byte(path, (off_t)(model_pos(&m, victim, abase) + T_HDR + 3));
	seg_file(path, sizeof(path), dir, 0, ".log");
	flip_byte(path, (off_t)(model_pos(&m, 2, 0) + T_HDR + 1));

	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	seglog_get_stats(log, &st);
	CHECK(st.open_was_clean);
	CHECK_EQ_INT(st.open_scanned_bytes, 0);
	CHECK(st.open_headers_read < 20);
	CHECK_EQ_INT(st.segments, nseg);
	CHECK_EQ_INT(seglog_end_offset(log), end);
	CHECK_EQ_INT(seglog_size_bytes(log), size);
	CHECK_EQ_INT(seglog_flushed_offset(log), end);
	snprintf(path, sizeof(path), "%s/.clean", dir);
	CHECK(access(path, F_OK) != 0); /* removed so a crash is noticed */
	/* Indexes of old segments come from disk: every offset still found. */
	for (int64_t off = 0; off < end; off += 7)
		check_read(log, &m, off, 1);
	seglog_close(log);

	/* Unclean: the active segment is verified and cut at the damage; the
	 * old segment is trusted (it was fsynced on roll). */
	drop_clean(dir);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	seglog_get_stats(log, &st);
	CHECK(!st.open_was_clean);
	CHECK(st.open_scanned_bytes > 0);
	CHECK_EQ_INT(st.open_recovered_entries, victim - k);
	CHECK_EQ_INT(seglog_end_offset(log), m.e[victim].first);
	m.n = victim;
	REQUIRE(append1(log, &m, 2, 10, 9999) == 0);
	CHECK_EQ_INT(seglog_end_offset(log), m.e[victim].last + 1);
	check_read(log, &m, m.e[victim].first, 1000);
	seglog_close(log);
	free(m.e);
}

TEST(seglog_torn_tail_recovery)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	struct seglog_stats st;
	struct model m = { 0 };
	char path[512];
	uint8_t buf[T_HDR + 200];
	t_opts(&o, 1 << 20, 512);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	fill(log, &m, 50);
	int64_t end = seglog_end_offset(log);
	seglog_close(log);
	seg_file(path, sizeof(path), dir, 0, ".log");

	/* 1. Half an entry. */
	size_t n = t_make(buf, end, 1, 200, 1);
	append_raw(path, buf, n / 2);
	drop_clean(dir);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	seglog_get_stats(log, &st);
	CHECK_EQ_INT(st.open_truncated_bytes, n / 2);
	CHECK_EQ_INT(st.open_recovered_entries, 50);
	CHECK_EQ_INT(seglog_end_offset(log), end);
	REQUIRE(append1(log, &m, 1, 20, 1) == 0);
	end++;
	seglog_close(log);

	/* 2. Garbage after the last entry. */
	memset(buf, 0xa5, sizeof(buf));
	append_raw(path, buf, 100);
	drop_clean(dir);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	seglog_get_stats(log, &st);
	CHECK_EQ_INT(st.open_truncated_bytes, 100);
	CHECK_EQ_INT(seglog_end_offset(log), end);
	seglog_close(log);

	/* 3. A flipped byte in the last entry drops it. Also lose the index
	 * file: recovery rebuilds it. */
	struct stat sb;
	REQUIRE(stat(path, &sb) == 0);
	flip_byte(path, sb.st_size - 2);
	seg_file(path, sizeof(path), dir, 0, ".index");
	unlink(path);
	drop_clean(dir);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	seglog_get_stats(log, &st);
	CHECK_EQ_INT(st.open_truncated_bytes, m.e[m.n - 1].size);
	CHECK_EQ_INT(seglog_end_offset(log), end - 1);
	m.n--;
	REQUIRE(append1(log, &m, 3, 30, 2) == 0);
	CHECK_EQ_INT(seglog_end_offset(log), end + 2);
	for (int64_t off = 0; off < end + 2; off++)
		check_read(log, &m, off, 1);
	seglog_close(log);
	CHECK(stat(path, &sb) == 0 && sb.st_size > 0);

	/* 4. A clean marker with a short index file: falls back to recovery. */
	REQUIRE(truncate(path, 5) == 0);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	seglog_get_stats(log, &st);
	CHECK(!st.open_was_clean);
	CHECK_EQ_INT(seglog_end_offset(log), end + 2);
	seglog_close(log);
	free(m.e);
}

TEST(seglog_crash_without_close)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	struct seglog_stats st;
	t_opts(&o, 4096, 256);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		if (seglog_open(dir, &o, &t_fmt, &log) != 0)
			_exit(1);
		for (int i = 0; i < 100; i++)
			if (append1(log, NULL, 2, 50, i) != 0)
				_exit(2);
		_exit(0); /* no close: like kill -9 after the writes */
	}
	int status = 0;
	waitpid(pid, &status, 0);
	REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	seglog_get_stats(log, &st);
	CHECK(!st.open_was_clean);
	CHECK_EQ_INT(st.open_truncated_bytes, 0);
	CHECK_EQ_INT(seglog_end_offset(log), 200);
	CHECK(st.segments > 1);
	struct seglog_read rd;
	REQUIRE(seglog_read(log, 199, 1, &rd) == 0);
	CHECK_EQ_INT(rd.first_offset, 198);
	seglog_seg_unref(rd.seg);
	seglog_close(log);
}

TEST(seglog_empty_segments)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	char path[512];
	t_opts(&o, 1 << 20, 4096);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	seglog_close(log);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	CHECK_EQ_INT(seglog_end_offset(log), 0);
	fill(log, NULL, 10);
	int64_t end = seglog_end_offset(log);
	seglog_close(log);
	/* A crash right after a roll: an empty last segment without indexes. */
	seg_file(path, sizeof(path), dir, end, ".log");
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	REQUIRE(fd >= 0);
	close(fd);
	drop_clean(dir);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	CHECK_EQ_INT(seglog_end_offset(log), end);
	REQUIRE(append1(log, NULL, 1, 5, 1) == 0);
	CHECK_EQ_INT(seglog_end_offset(log), end + 1);
	struct seglog_read rd;
	REQUIRE(seglog_read(log, end, 1, &rd) == 0);
	CHECK_EQ_INT(rd.pos, 0);
	seglog_seg_unref(rd.seg);
	seglog_close(log);
	/* Orphan index files of a deleted segment are removed on open. */
	seg_file(path, sizeof(path), dir, 999999, ".index");
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	close(fd);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	CHECK(access(path, F_OK) != 0);
	seglog_close(log);
}

TEST(seglog_corrupt_old_index_rebuilt)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	struct model m = { 0 };
	char path[512];
	t_opts(&o, 4096, 256);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	fill(log, &m, 200);
	int64_t end = seglog_end_offset(log);
	seglog_close(log);
	/* Segment 0: positions going backwards; its time index: short. */
	seg_file(path, sizeof(path), dir, 0, ".index");
	int fd = open(path, O_WRONLY);
	uint8_t junk[8] = { 0, 0, 0, 9, 0xff, 0xff, 0, 0 };
	REQUIRE(fd >= 0 && pwrite(fd, junk, 8, 8) == 8);
	close(fd);
	seg_file(path, sizeof(path), dir, 0, ".timeindex");
	REQUIRE(truncate(path, 7) == 0);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	for (int64_t off = 0; off < end; off++)
		check_read(log, &m, off, 300);
	CHECK_EQ_INT(seglog_offset_for_time(log, 0), 0);
	CHECK_EQ_INT(seglog_offset_for_time(log, 105), m.e[5].first);
	seglog_close(log);
	struct stat sb;
	CHECK(stat(path, &sb) == 0 && sb.st_size % 12 == 0 && sb.st_size > 0);
	free(m.e);
}

TEST(seglog_offset_for_time)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	struct model m = { 0 };
	t_opts(&o, 4096, 200);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	/* Timestamps wander: mostly rising, sometimes back, some -1. */
	uint32_t seed = 7;
	int64_t ts = 1000;
	for (int i = 0; i < 600; i++) {
		seed = seed * 1103515245 + 12345;
		int r = (int)((seed >> 16) % 10);
		int64_t t = r == 0 ? -1 : r == 1 ? ts - 50 : (ts += (seed >> 8) % 20);
		REQUIRE(append1(log, &m, 1 + (seed >> 4) % 3, 30, t) == 0);
	}
	for (int pass = 0; pass < 2; pass++) {
		for (int64_t q = 900; q < ts + 30; q += 3) {
			int64_t want = seglog_end_offset(log);
			for (size_t i = 0; i < m.n; i++) {
				if (m.e[i].ts >= q) {
					want = m.e[i].first;
					break;
				}
			}
			CHECK_EQ_INT(seglog_offset_for_time(log, q), want);
		}
		/* Again with every index loaded from disk. */
		seglog_close(log);
		REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	}
	seglog_close(log);
	free(m.e);
}

TEST(seglog_retention_by_bytes)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	struct seglog_stats st;
	struct model m = { 0 };
	t_opts(&o, 2048, 256);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	fill(log, &m, 300);
	int64_t end = seglog_end_offset(log);
	seglog_get_stats(log, &st);
	uint32_t before = st.segments;
	CHECK_EQ_INT(seglog_retain(log, -1, -1, now_ms()), 0);
	int n = seglog_retain(log, -1, 6000, now_ms());
	CHECK(n > 0);
	seglog_get_stats(log, &st);
	CHECK_EQ_INT(st.segments, before - (uint32_t)n);
	CHECK(seglog_size_bytes(log) <= 6000);
	CHECK(seglog_size_bytes(log) + 2048 > 6000);
	int64_t start = seglog_start_offset(log);
	CHECK(start > 0);
	CHECK_EQ_INT(seglog_end_offset(log), end);
	char path[512];
	seg_file(path, sizeof(path), dir, start, ".log");
	CHECK(access(path, F_OK) == 0);
	seg_file(path, sizeof(path), dir, 0, ".log");
	CHECK(access(path, F_OK) != 0);
	struct seglog_read rd;
	CHECK_EQ_INT(seglog_read(log, start - 1, 10, &rd), -SILT_ERANGE);
	check_read(log, &m, start, 10);
	/* Retention never deletes the active segment. */
	CHECK(seglog_retain(log, -1, 0, now_ms()) > 0);
	seglog_get_stats(log, &st);
	CHECK_EQ_INT(st.segments, 1);
	CHECK_EQ_INT(seglog_end_offset(log), end);
	seglog_close(log);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	CHECK(seglog_start_offset(log) > start);
	CHECK_EQ_INT(seglog_end_offset(log), end);
	seglog_close(log);
	free(m.e);
}

TEST(seglog_retention_by_time)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	struct seglog_stats st;
	struct model m = { 0 };
	t_opts(&o, 2048, 256);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	fill(log, &m, 200); /* timestamps 100..299 */
	int64_t end = seglog_end_offset(log);
	/* Everything with max ts < 250 - 100 = 150 goes. */
	int n = seglog_retain(log, 100, -1, 250);
	CHECK(n > 0);
	int64_t start = seglog_start_offset(log);
	ssize_t k = model_find(&m, start);
	REQUIRE(k > 0);
	CHECK(m.e[k - 1].ts < 150);  /* last deleted entry was expired */
	CHECK(m.e[k].ts <= 150 + 60); /* the first kept segment was not all expired */
	CHECK_EQ_INT(seglog_retain(log, 100, -1, 250), 0);
	/* All expired, the active segment too: roll, delete, stay at end. */
	n = seglog_retain(log, 100, -1, 100000);
	CHECK(n > 0);
	seglog_get_stats(log, &st);
	CHECK_EQ_INT(st.segments, 1);
	CHECK_EQ_INT(seglog_start_offset(log), end);
	CHECK_EQ_INT(seglog_end_offset(log), end);
	CHECK_EQ_INT(seglog_size_bytes(log), 0);
	struct seglog_read rd;
	CHECK_EQ_INT(seglog_read(log, end, 10, &rd), 0);
	CHECK(rd.seg == NULL);
	CHECK_EQ_INT(seglog_read(log, end - 1, 10, &rd), -SILT_ERANGE);
	CHECK_EQ_INT(seglog_offset_for_time(log, 0), end);
	REQUIRE(append1(log, NULL, 1, 10, 100001) == 0);
	CHECK_EQ_INT(seglog_end_offset(log), end + 1);
	CHECK_EQ_INT(seglog_retain(log, 100, -1, 100000), 0);
	seglog_close(log);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	CHECK_EQ_INT(seglog_start_offset(log), end);
	CHECK_EQ_INT(seglog_end_offset(log), end + 1);
	seglog_close(log);
	free(m.e);
}

TEST(seglog_read_ref_outlives_retention)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	struct model m = { 0 };
	t_opts(&o, 2048, 256);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	fill(log, &m, 100);
	struct seglog_read rd;
	REQUIRE(seglog_read(log, 0, 1500, &rd) == 0);
	REQUIRE(rd.seg != NULL);
	CHECK(seglog_retain(log, -1, 0, now_ms()) > 0);
	char path[512];
	seg_file(path, sizeof(path), dir, 0, ".log");
	CHECK(access(path, F_OK) != 0);
	/* The file is gone from the directory but the held fd still reads. */
	uint8_t *buf = xmalloc(rd.len);
	REQUIRE(pread(rd.fd, buf, rd.len, (off_t)rd.pos) == (ssize_t)rd.len);
	uint64_t at = 0;
	size_t k = 0;
	while (at < rd.len) {
		struct seglog_entry e;
		REQUIRE(t_scan(buf + at, rd.len - at, &e) == 0);
		CHECK(t_verify(buf + at, e.size) == 0);
		CHECK_EQ_INT(e.first_offset, m.e[k].first);
		at += e.size;
		k++;
	}
	CHECK(k > 1);
	free(buf);
	/* The reference may even outlive the log. */
	seglog_close(log);
	seglog_seg_unref(rd.seg);
	free(m.e);
}

TEST(seglog_truncate)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	struct seglog_stats st;
	struct model m = { 0 };
	t_opts(&o, 2048, 256);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	fill(log, &m, 200);
	int64_t end = seglog_end_offset(log);
	CHECK_EQ_INT(seglog_truncate(log, end + 1), -SILT_ERANGE);
	CHECK_EQ_INT(seglog_truncate(log, end), 0);
	/* Not an entry boundary (entry 2 covers 3 offsets). */
	CHECK_EQ_INT(seglog_truncate(log, m.e[2].first + 1), -SILT_EINVAL);
	CHECK_EQ_INT(seglog_end_offset(log), end);

	/* Cut inside an old segment. */
	size_t k = 60;
	int64_t cut = m.e[k].first;
	seglog_get_stats(log, &st);
	uint32_t nseg = st.segments;
	REQUIRE(seglog_truncate(log, cut) == 0);
	m.n = k;
	CHECK_EQ_INT(seglog_end_offset(log), cut);
	CHECK(seglog_flushed_offset(log) <= cut);
	seglog_get_stats(log, &st);
	CHECK(st.segments < nseg);
	CHECK_EQ_INT(count_files(dir, ".log"), st.segments);
	uint64_t total = 0;
	for (size_t i = 0; i < m.n; i++)
		total += m.e[i].size;
	CHECK_EQ_INT(seglog_size_bytes(log), total);
	struct seglog_read rd;
	CHECK_EQ_INT(seglog_read(log, cut + 1, 10, &rd), -SILT_ERANGE);
	/* Timestamps of removed entries no longer count. */
	CHECK_EQ_INT(seglog_offset_for_time(log, m.e[k].ts), cut);
	/* Appends continue at the cut. */
	REQUIRE(append1(log, &m, 2, 33, 5000) == 0);
	REQUIRE(append1(log, &m, 1, 33, 5001) == 0);
	CHECK_EQ_INT(seglog_offset_for_time(log, 5000), cut);
	for (int64_t off = 0; off < seglog_end_offset(log); off++)
		check_read(log, &m, off, 200);
	int64_t end2 = seglog_end_offset(log);
	seglog_close(log);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	seglog_get_stats(log, &st);
	CHECK(st.open_was_clean);
	CHECK_EQ_INT(seglog_end_offset(log), end2);
	CHECK_EQ_INT(seglog_offset_for_time(log, 5001), cut + 2);
	/* Down to a segment base, then to the very start. */
	REQUIRE(seglog_truncate(log, m.e[1].first) == 0);
	REQUIRE(seglog_truncate(log, 0) == 0);
	CHECK_EQ_INT(seglog_end_offset(log), 0);
	CHECK_EQ_INT(seglog_size_bytes(log), 0);
	m.n = 0;
	fill(log, &m, 5);
	check_read(log, &m, 0, 10000);
	seglog_close(log);
	drop_clean(dir);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	CHECK_EQ_INT(seglog_end_offset(log), m.e[4].last + 1);
	seglog_close(log);
	free(m.e);
}

TEST(seglog_flush_policy)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	t_opts(&o, 1 << 20, 4096);
	o.flush_messages = 10;
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	for (int i = 0; i < 9; i++)
		REQUIRE(append1(log, NULL, 1, 10, i) == 0);
	CHECK_EQ_INT(seglog_flushed_offset(log), 0);
	REQUIRE(append1(log, NULL, 1, 10, 9) == 0);
	CHECK_EQ_INT(seglog_flushed_offset(log), 10);
	o.flush_messages = 0;
	o.flush_ms = 50;
	seglog_set_opts(log, &o);
	REQUIRE(append1(log, NULL, 1, 10, 10) == 0);
	int64_t t = now_ms();
	CHECK_EQ_INT(seglog_maybe_flush(log, t), 0);
	CHECK_EQ_INT(seglog_flushed_offset(log), 10);
	CHECK_EQ_INT(seglog_maybe_flush(log, t + 1000), 0);
	CHECK_EQ_INT(seglog_flushed_offset(log), 11);
	REQUIRE(append1(log, NULL, 1, 10, 11) == 0);
	int64_t f = -1;
	CHECK_EQ_INT(seglog_flush(log, &f), 0);
	CHECK_EQ_INT(f, 12);
	/* Bad appends. */
	uint8_t buf[T_HDR];
	struct iovec iov = { buf, t_make(buf, 12, 1, 0, 1) };
	CHECK_EQ_INT(seglog_append(log, &iov, 1, 11, 1), -SILT_EINVAL);
	CHECK_EQ_INT(seglog_append(log, &iov, 0, 12, 1), -SILT_EINVAL);
	CHECK_EQ_INT(seglog_destroy(log), 0);
	CHECK(access(dir, F_OK) != 0);
	mkdir(dir, 0700); /* the harness removes it */
}

struct conc {
	struct seglog *log;
	atomic_bool stop;
	int errors;
};

static void *reader_thread(void *arg)
{
	struct conc *c = arg;
	uint32_t seed = (uint32_t)(uintptr_t)&seed;
	uint8_t buf[8192];
	while (!atomic_load(&c->stop)) {
		int64_t start = seglog_start_offset(c->log), end = seglog_end_offset(c->log);
		if (end == start)
			continue;
		seed = seed * 1103515245 + 12345;
		int64_t off = start + (int64_t)(seed >> 8) % (end - start);
		struct seglog_read rd;
		int rc = seglog_read(c->log, off, sizeof(buf), &rd);
		if (rc == -SILT_ERANGE)
			continue; /* retention moved the start */
		if (rc != 0 || !rd.seg || rd.len > sizeof(buf) ||
		    pread(rd.fd, buf, rd.len, (off_t)rd.pos) != (ssize_t)rd.len) {
			c->errors++;
			seglog_seg_unref(rd.seg);
			continue;
		}
		struct seglog_entry e;
		if (t_scan(buf, rd.len, &e) != 0 || t_verify(buf, e.size) != 0 ||
		    e.first_offset > off || e.last_offset < off)
			c->errors++;
		seglog_seg_unref(rd.seg);
	}
	return NULL;
}

TEST(seglog_concurrent_readers)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct conc c = { 0 };
	t_opts(&o, 16384, 512);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &c.log) == 0);
	append1(c.log, NULL, 1, 10, 0);
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, reader_thread, &c);
	for (int i = 0; i < 3000; i++) {
		if (append1(c.log, NULL, 1 + (uint32_t)(i % 4), (uint32_t)(i % 200), i) != 0)
			c.errors++;
		if (i % 500 == 499)
			seglog_retain(c.log, -1, 40000, now_ms());
		if (i % 300 == 0)
			seglog_flush(c.log, NULL);
	}
	atomic_store(&c.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ_INT(c.errors, 0);
	seglog_close(c.log);
}

/* Not a check: prints how long a clean (and an unclean) reopen of a log of
 * 1,000,000 small entries takes. */
TEST(seglog_bench_reopen_1m)
{
	const char *dir = test_tmpdir();
	struct seglog_opts o;
	struct seglog *log;
	struct seglog_stats st;
	t_opts(&o, 16u << 20, 4096);
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	/* Ten entries per append, as a busy producer's batches might come. */
	enum { PER = 10, BODY = 12 };
	uint8_t *buf = xmalloc(PER * (T_HDR + BODY));
	for (int b = 0; b < 1000000 / PER; b++) {
		int64_t first = (int64_t)b * PER;
		size_t n = 0;
		for (int i = 0; i < PER; i++)
			n += t_make(buf + n, first + i, 1, BODY, first + i);
		struct iovec iov = { buf, n };
		REQUIRE(seglog_append(log, &iov, 1, first + PER - 1, first + PER - 1) == 0);
	}
	free(buf);
	seglog_close(log);
	int64_t t0 = mono_us();
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	int64_t t1 = mono_us();
	seglog_get_stats(log, &st);
	CHECK_EQ_INT(seglog_end_offset(log), 1000000);
	CHECK(st.open_was_clean);
	printf("  seglog: clean reopen of 1,000,000 entries in %u segments: %.2f ms "
	       "(%" PRIu64 " headers read)\n",
	       st.segments, (double)(t1 - t0) / 1000.0, st.open_headers_read);
	seglog_close(log);
	drop_clean(dir);
	t0 = mono_us();
	REQUIRE(seglog_open(dir, &o, &t_fmt, &log) == 0);
	t1 = mono_us();
	seglog_get_stats(log, &st);
	CHECK_EQ_INT(seglog_end_offset(log), 1000000);
	printf("  seglog: unclean reopen (active segment verified, %" PRIu64 " entries): %.2f ms\n",
	       st.open_recovered_entries, (double)(t1 - t0) / 1000.0);
	/* Read throughput at small max_bytes (Fetch-like). */
	t0 = mono_us();
	int64_t off = 0;
	int reads = 0;
	while (off < 1000000) {
		struct seglog_read rd;
		REQUIRE(seglog_read(log, off, 64 * 1024, &rd) == 0);
		REQUIRE(rd.seg != NULL);
		off = rd.first_offset + (int64_t)(rd.len / (T_HDR + BODY));
		seglog_seg_unref(rd.seg);
		reads++;
	}
	t1 = mono_us();
	printf("  seglog: %d sequential 64 KiB reads over 1M entries: %.2f us/read\n", reads,
	       (double)(t1 - t0) / reads);
	seglog_close(log);
}
