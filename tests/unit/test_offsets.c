/* The committed offsets store (kafka/offsets.c) and the CRC-framed record
 * log under it (storage/reclog.c): replay, torn tails, compaction, expiry,
 * and the file format, checked against bytes built here by hand so that a
 * change of format cannot pass unnoticed (an existing data dir must load). */
#include "core/platform.h"
#include "core/crc.h"
#include "core/log.h"
#include "core/util.h"
#include "core/wbuf.h"
#include "kafka/errors.h"
#include "kafka/offsets.h"
#include "storage/reclog.h"
#include "test.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static struct slice sl(const char *s)
{
	return (struct slice){ (const uint8_t *)s, (int32_t)strlen(s) };
}

static void path_of(char *p, size_t cap, const char *dir)
{
	snprintf(p, cap, "%s/groups/offsets.log", dir);
}

static long file_size(const char *dir)
{
	char p[512];
	path_of(p, sizeof(p), dir);
	struct stat st;
	return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static void append_raw(const char *dir, const void *bytes, size_t n)
{
	char p[512];
	path_of(p, sizeof(p), dir);
	int fd = open(p, O_WRONLY | O_APPEND | O_CREAT, 0644);
	REQUIRE(fd >= 0);
	CHECK_EQ_INT(write(fd, bytes, n), (ssize_t)n);
	close(fd);
}

/* ---- hand-built records: u32 length, u32 CRC-32C, body (big-endian) ---- */

struct hb {
	uint8_t b[4096];
	size_t n;
};

static void hb_u8(struct hb *h, uint8_t v)
{
	h->b[h->n++] = v;
}

static void hb_be(struct hb *h, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		hb_u8(h, (uint8_t)(v >> (8 * i)));
}

static void hb_str(struct hb *h, const char *s)
{
	hb_be(h, strlen(s), 2);
	memcpy(h->b + h->n, s, strlen(s));
	h->n += strlen(s);
}

/* Frames body b as one record onto out. */
static void hb_frame(struct hb *out, const struct hb *body)
{
	hb_be(out, body->n, 4);
	hb_be(out, crc32c(0, body->b, body->n), 4);
	memcpy(out->b + out->n, body->b, body->n);
	out->n += body->n;
}

static void hb_commit(struct hb *out, const char *group, const char *topic, int32_t part, int64_t off,
		      int32_t epoch, int64_t ts, const char *meta)
{
	struct hb b = { .n = 0 };
	hb_u8(&b, 1);
	hb_str(&b, group);
	hb_str(&b, topic);
	hb_be(&b, (uint32_t)part, 4);
	hb_be(&b, (uint64_t)off, 8);
	hb_be(&b, (uint32_t)epoch, 4);
	hb_be(&b, (uint64_t)ts, 8);
	hb_str(&b, meta);
	hb_frame(out, &b);
}

static void hb_del(struct hb *out, uint8_t type, const char *group, const char *topic, int32_t part)
{
	struct hb b = { .n = 0 };
	hb_u8(&b, type);
	if (group)
		hb_str(&b, group);
	if (topic)
		hb_str(&b, topic);
	if (type == 2)
		hb_be(&b, (uint32_t)part, 4);
	hb_frame(out, &b);
}

/* The committed offset of group/topic/partition (-1: none); meta and epoch
 * optional. */
static int64_t get(struct koffsets *s, const char *group, const char *topic, int32_t part, char *meta,
		   size_t metacap, int32_t *epoch)
{
	struct koffsets_offset o = { .topic = sl(topic), .partition = part };
	koffsets_fetch(s, sl(group), &o, 1);
	if (meta) {
		size_t n = SILT_MIN((size_t)o.metadata_len, metacap - 1);
		memcpy(meta, o.metadata ? (const char *)o.metadata : "", n);
		meta[n] = '\0';
	}
	if (epoch)
		*epoch = o.leader_epoch;
	free(o.metadata);
	return o.offset;
}

static int16_t put(struct koffsets *s, const char *group, const char *topic, int32_t part, int64_t off,
		   const char *meta, int64_t ts)
{
	struct koffsets_commit c = { .topic = sl(topic), .partition = part, .offset = off,
				     .leader_epoch = 3, .metadata = sl(meta) };
	koffsets_commit(s, group, &c, 1, ts);
	return c.error;
}

static enum log_level quiet(void)
{
	enum log_level l = log_get_level();
	log_set_level(LOG_ERROR);
	return l;
}

/* ---- reclog ---------------------------------------------------------- */

struct seen {
	int n;
	char last[64];
	int refuse_at; /* refuse the record with this index (0-based); -1 none */
};

static bool seen_fn(void *arg, const uint8_t *body, size_t len)
{
	struct seen *s = arg;
	if (s->n == s->refuse_at)
		return false;
	size_t k = SILT_MIN(len, sizeof(s->last) - 1);
	memcpy(s->last, body, k);
	s->last[k] = '\0';
	s->n++;
	return true;
}

static void put_rec(struct wbuf *w, const char *text)
{
	size_t at = reclog_rec_begin(w);
	wbuf_put(w, text, strlen(text));
	reclog_rec_end(w, at);
}

TEST(reclog_append_replay_cut_rewrite)
{
	enum log_level lv = quiet();
	char path[512];
	snprintf(path, sizeof(path), "%s/r.log", test_tmpdir());
	struct reclog *l = NULL;
	struct reclog_stats st;
	struct seen s = { .refuse_at = -1 };
	REQUIRE(reclog_open(path, 1024, seen_fn, &s, &l, &st) == 0);
	CHECK_EQ_INT(st.records, 0);
	CHECK_EQ_INT(reclog_size(l), 0);
	struct wbuf w;
	wbuf_init(&w, 0, 0);
	put_rec(&w, "one");
	put_rec(&w, "two");
	CHECK_EQ_INT(reclog_append(l, &w), 0);
	wbuf_reset(&w);
	put_rec(&w, "three");
	CHECK_EQ_INT(reclog_append(l, &w), 0);
	CHECK_EQ_INT(reclog_size(l), 3 * 8 + 3 + 3 + 5);
	/* The frame: big-endian length, CRC-32C of the body, body. */
	CHECK_EQ_INT(w.p[3], 5);
	CHECK_EQ_INT(w.p[0] | w.p[1] | w.p[2], 0);
	uint32_t crc = (uint32_t)w.p[4] << 24 | (uint32_t)w.p[5] << 16 | (uint32_t)w.p[6] << 8 | w.p[7];
	CHECK_EQ_INT(crc, crc32c(0, "three", 5));
	reclog_close(l);

	memset(&s, 0, sizeof(s));
	s.refuse_at = -1;
	REQUIRE(reclog_open(path, 1024, seen_fn, &s, &l, &st) == 0);
	CHECK_EQ_INT(s.n, 3);
	CHECK(strcmp(s.last, "three") == 0);
	CHECK_EQ_INT(st.records, 3);
	CHECK_EQ_INT(st.cut_bytes, 0);
	reclog_close(l);

	/* Each kind of bad tail is cut, and later appends follow the good
	 * records directly. */
	struct {
		const char *what;
		uint8_t bytes[16];
		size_t n;
	} tails[] = {
		{ "short header", { 0, 0, 0 }, 3 },
		{ "torn body", { 0, 0, 0, 9, 1, 2, 3, 4, 'a', 'b' }, 10 },
		{ "zero length", { 0, 0, 0, 0, 0, 0, 0, 0 }, 8 },
		{ "over max_body", { 0, 0, 4, 1, 0, 0, 0, 0, 'x' }, 9 },
		{ "bad CRC", { 0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef, 'h', 'i' }, 10 },
	};
	for (size_t i = 0; i < SILT_ARRAY_LEN(tails); i++) {
		int fd = open(path, O_WRONLY | O_APPEND);
		REQUIRE(fd >= 0);
		CHECK_EQ_INT(write(fd, tails[i].bytes, tails[i].n), (ssize_t)tails[i].n);
		close(fd);
		memset(&s, 0, sizeof(s));
		s.refuse_at = -1;
		REQUIRE(reclog_open(path, 1024, seen_fn, &s, &l, &st) == 0);
		CHECK_EQ_INT(s.n, 3);
		CHECK_EQ_INT(st.cut_bytes, tails[i].n);
		CHECK_EQ_INT(reclog_size(l), 3 * 8 + 11);
		reclog_close(l);
	}
	/* A record the owner cannot parse ends the log too, with all after it. */
	memset(&s, 0, sizeof(s));
	s.refuse_at = 1;
	REQUIRE(reclog_open(path, 1024, seen_fn, &s, &l, &st) == 0);
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_INT(st.cut_bytes, 8 + 3 + 8 + 5);
	CHECK_EQ_INT(reclog_size(l), 8 + 3);

	/* Rewrite replaces the content; appends go after the new content. */
	wbuf_reset(&w);
	put_rec(&w, "fresh");
	CHECK_EQ_INT(reclog_rewrite(l, &w), 0);
	wbuf_reset(&w);
	put_rec(&w, "after");
	CHECK_EQ_INT(reclog_append(l, &w), 0);
	CHECK_EQ_INT(reclog_size(l), 2 * (8 + 5));
	reclog_close(l);
	memset(&s, 0, sizeof(s));
	s.refuse_at = -1;
	REQUIRE(reclog_open(path, 1024, seen_fn, &s, &l, &st) == 0);
	CHECK_EQ_INT(s.n, 2);
	CHECK(strcmp(s.last, "after") == 0);
	reclog_close(l);
	wbuf_destroy(&w);
	log_set_level(lv);
}

/* ---- the offsets store ---------------------------------------------------- */

/* A log written by hand, record by record as the format says, loads: the
 * compatibility promise for existing data dirs. */
TEST(offsets_loads_hand_built_log)
{
	enum log_level lv = quiet();
	const char *dir = test_tmpdir();
	char gdir[512];
	snprintf(gdir, sizeof(gdir), "%s/groups", dir);
	REQUIRE(mkdir(gdir, 0755) == 0);
	struct hb f = { .n = 0 };
	hb_commit(&f, "g1", "orders", 0, 100, 7, 1000, "m0");
	hb_commit(&f, "g1", "orders", 1, 200, 7, 1000, "");
	hb_commit(&f, "g1", "orders", 0, 101, 8, 2000, "m1"); /* overwrites */
	hb_commit(&f, "g1", "audit", 0, 5, -1, 2000, "");
	hb_commit(&f, "g2", "orders", 0, 9, 1, 2000, "");
	hb_commit(&f, "g3", "audit", 0, 1, 1, 2000, "");
	hb_del(&f, 2, "g1", "orders", 1);    /* DEL_OFFSET */
	hb_del(&f, 3, "g2", NULL, 0);        /* DEL_GROUP */
	hb_del(&f, 4, NULL, "audit", 0);     /* DEL_TOPIC */
	append_raw(dir, f.b, f.n);

	struct koffsets *s = NULL;
	REQUIRE(koffsets_open(dir, &s) == 0);
	char meta[32];
	int32_t ep;
	CHECK_EQ_INT(get(s, "g1", "orders", 0, meta, sizeof(meta), &ep), 101);
	CHECK(strcmp(meta, "m1") == 0);
	CHECK_EQ_INT(ep, 8);
	CHECK_EQ_INT(get(s, "g1", "orders", 1, NULL, 0, NULL), -1);
	CHECK_EQ_INT(get(s, "g1", "audit", 0, NULL, 0, NULL), -1);
	CHECK_EQ_INT(get(s, "g2", "orders", 0, NULL, 0, NULL), -1);
	CHECK_EQ_INT(koffsets_count(s), 1);
	CHECK(koffsets_has_group(s, sl("g1")));
	CHECK(!koffsets_has_group(s, sl("g2")));
	CHECK(!koffsets_has_group(s, sl("g3"))); /* its only offset went with the topic */
	CHECK_EQ_INT(file_size(dir), (long)f.n);
	koffsets_close(s);
	log_set_level(lv);
}

/* What the store writes is the format, byte for byte. */
TEST(offsets_writes_the_format)
{
	enum log_level lv = quiet();
	const char *dir = test_tmpdir();
	struct koffsets *s = NULL;
	REQUIRE(koffsets_open(dir, &s) == 0);
	CHECK_EQ_INT(put(s, "grp", "orders", 2, 42, "meta", 123456), 0);
	REQUIRE(koffsets_drop_group(s, sl("grp")) == 0);
	CHECK_EQ_INT(put(s, "grp", "orders", 2, 43, "", 123457), 0);
	CHECK_EQ_INT(koffsets_drop_topic(s, "orders"), 1);
	koffsets_close(s);
	struct hb want = { .n = 0 };
	hb_commit(&want, "grp", "orders", 2, 42, 3, 123456, "meta");
	hb_del(&want, 3, "grp", NULL, 0);
	hb_commit(&want, "grp", "orders", 2, 43, 3, 123457, "");
	hb_del(&want, 4, NULL, "orders", 0);
	char p[512];
	path_of(p, sizeof(p), dir);
	char *got = NULL;
	size_t n = 0;
	REQUIRE(read_file(p, 1 << 20, &got, &n) == 0);
	CHECK_EQ_INT(n, want.n);
	CHECK(n == want.n && memcmp(got, want.b, n) == 0);
	free(got);
	log_set_level(lv);
}

TEST(offsets_commit_fetch_replay)
{
	enum log_level lv = quiet();
	const char *dir = test_tmpdir();
	struct koffsets *s = NULL;
	REQUIRE(koffsets_open(dir, &s) == 0);
	/* Several entries in one commit; ones that arrive with an error or are
	 * refused are not stored, the others are. */
	char big[KOFFSETS_MAX_METADATA + 2];
	memset(big, 'm', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	struct koffsets_commit c[4] = {
		{ .topic = sl("t"), .partition = 0, .offset = 10, .leader_epoch = 1, .metadata = sl("a") },
		{ .topic = sl("t"), .partition = 1, .offset = 11, .leader_epoch = 1, .metadata = sl(big) },
		{ .topic = sl("t"), .partition = 2, .offset = 12, .leader_epoch = 1,
		  .metadata = { NULL, -1 }, .error = KERR_UNKNOWN_TOPIC_OR_PARTITION },
		{ .topic = sl("u"), .partition = 0, .offset = 13, .leader_epoch = 2, .metadata = { NULL, -1 } },
	};
	koffsets_commit(s, "g", c, 4, 5000);
	CHECK_EQ_INT(c[0].error, 0);
	CHECK_EQ_INT(c[1].error, KERR_OFFSET_METADATA_TOO_LARGE);
	CHECK_EQ_INT(c[2].error, KERR_UNKNOWN_TOPIC_OR_PARTITION);
	CHECK_EQ_INT(c[3].error, 0);
	CHECK_EQ_INT(koffsets_count(s), 2);
	/* A topic name with a NUL would end the log at the next start. */
	struct koffsets_commit nul = { .topic = { (const uint8_t *)"a\0b", 3 }, .offset = 1 };
	koffsets_commit(s, "g", &nul, 1, 5000);
	CHECK(nul.error != 0);
	/* Fetch all: sorted by topic, then partition. */
	CHECK_EQ_INT(put(s, "g", "a", 5, 1, "", 5000), 0);
	CHECK_EQ_INT(put(s, "g", "a", 1, 2, "", 5000), 0);
	int32_t n = 0;
	struct koffsets_offset *all = koffsets_fetch_all(s, sl("g"), &n);
	REQUIRE(n == 4);
	CHECK(all[0].topic.len == 1 && all[0].topic.p[0] == 'a' && all[0].partition == 1);
	CHECK(all[1].topic.p[0] == 'a' && all[1].partition == 5);
	CHECK(all[2].topic.p[0] == 't' && all[2].offset == 10);
	CHECK(all[3].topic.p[0] == 'u' && all[3].offset == 13 && all[3].metadata_len == 0);
	koffsets_offsets_free(all, n, true);
	all = koffsets_fetch_all(s, sl("nobody"), &n);
	CHECK_EQ_INT(n, 0);
	koffsets_offsets_free(all, n, true);
	koffsets_close(s);

	REQUIRE(koffsets_open(dir, &s) == 0);
	char meta[16];
	int32_t ep;
	CHECK_EQ_INT(get(s, "g", "t", 0, meta, sizeof(meta), &ep), 10);
	CHECK(strcmp(meta, "a") == 0);
	CHECK_EQ_INT(ep, 1);
	CHECK_EQ_INT(get(s, "g", "t", 1, NULL, 0, NULL), -1);
	CHECK_EQ_INT(get(s, "g", "u", 0, NULL, 0, &ep), 13);
	CHECK_EQ_INT(ep, 2);
	CHECK_EQ_INT(koffsets_count(s), 4);
	koffsets_close(s);
	log_set_level(lv);
}

TEST(offsets_torn_tail_is_cut)
{
	enum log_level lv = quiet();
	const char *dir = test_tmpdir();
	struct koffsets *s = NULL;
	REQUIRE(koffsets_open(dir, &s) == 0);
	CHECK_EQ_INT(put(s, "g", "t", 0, 1, "", 1), 0);
	CHECK_EQ_INT(put(s, "g", "t", 0, 2, "", 1), 0);
	koffsets_close(s);
	long good = file_size(dir);
	/* A torn copy of the last record. */
	struct hb f = { .n = 0 };
	hb_commit(&f, "g", "t", 0, 3, 3, 1, "");
	append_raw(dir, f.b, f.n - 5);
	REQUIRE(koffsets_open(dir, &s) == 0);
	CHECK_EQ_INT(file_size(dir), good);
	CHECK_EQ_INT(get(s, "g", "t", 0, NULL, 0, NULL), 2);
	/* New commits land right after the cut, and load. */
	CHECK_EQ_INT(put(s, "g", "t", 0, 4, "", 1), 0);
	koffsets_close(s);
	/* A record with a good CRC that does not parse (unknown type, then a
	 * short COMMIT body) ends the log as well. */
	struct hb bad = { .n = 0 }, body = { .n = 0 };
	hb_u8(&body, 9);
	hb_frame(&bad, &body);
	body.n = 0;
	hb_u8(&body, 1);
	hb_str(&body, "g");
	hb_frame(&bad, &body);
	long before = file_size(dir);
	append_raw(dir, bad.b, bad.n);
	REQUIRE(koffsets_open(dir, &s) == 0);
	CHECK_EQ_INT(file_size(dir), before);
	CHECK_EQ_INT(get(s, "g", "t", 0, NULL, 0, NULL), 4);
	koffsets_close(s);
	log_set_level(lv);
}

TEST(offsets_compact_at_open)
{
	enum log_level lv = quiet();
	const char *dir = test_tmpdir();
	struct koffsets *s = NULL;
	REQUIRE(koffsets_open(dir, &s) == 0);
	char m[1000];
	memset(m, 'q', sizeof(m) - 1);
	m[sizeof(m) - 1] = '\0';
	/* ~2 MiB of overwrites of two offsets, and a dropped group. */
	for (int i = 0; i < 1100; i++) {
		CHECK_EQ_INT(put(s, "cg", "audit", 0, i, m, 7), 0);
		CHECK_EQ_INT(put(s, "cg", "audit", 1, 10 * i, "", 7), 0);
		CHECK_EQ_INT(put(s, "gone", "audit", 0, i, m, 7), 0);
	}
	REQUIRE(koffsets_drop_group(s, sl("gone")) == 0);
	CHECK(file_size(dir) > (2 << 20));
	koffsets_close(s);
	REQUIRE(koffsets_open(dir, &s) == 0);
	CHECK(file_size(dir) < 2000);
	char meta[8];
	CHECK_EQ_INT(get(s, "cg", "audit", 0, meta, sizeof(meta), NULL), 1099);
	CHECK(meta[0] == 'q');
	CHECK_EQ_INT(get(s, "cg", "audit", 1, NULL, 0, NULL), 10990);
	CHECK_EQ_INT(get(s, "gone", "audit", 0, NULL, 0, NULL), -1);
	/* Appends after the compaction survive the next load. */
	CHECK_EQ_INT(put(s, "cg", "audit", 0, 5000, "", 8), 0);
	koffsets_close(s);
	REQUIRE(koffsets_open(dir, &s) == 0);
	CHECK_EQ_INT(get(s, "cg", "audit", 0, NULL, 0, NULL), 5000);
	CHECK_EQ_INT(get(s, "cg", "audit", 1, NULL, 0, NULL), 10990);
	koffsets_close(s);
	log_set_level(lv);
}

static bool keep_busy(void *arg, const char *group)
{
	(void)arg;
	return strcmp(group, "busy") == 0;
}

TEST(offsets_expire)
{
	enum log_level lv = quiet();
	const char *dir = test_tmpdir();
	struct koffsets *s = NULL;
	REQUIRE(koffsets_open(dir, &s) == 0);
	CHECK_EQ_INT(put(s, "idle", "t", 0, 1, "", 1000), 0);
	CHECK_EQ_INT(put(s, "idle", "t", 1, 2, "", 3000), 0);
	CHECK_EQ_INT(put(s, "old", "t", 0, 3, "", 1000), 0);
	CHECK_EQ_INT(put(s, "busy", "t", 0, 4, "", 1000), 0);
	/* Committed before 2000, in groups not kept. */
	CHECK_EQ_INT(koffsets_expire(s, 2000, keep_busy, NULL), 2);
	CHECK_EQ_INT(get(s, "idle", "t", 0, NULL, 0, NULL), -1);
	CHECK_EQ_INT(get(s, "idle", "t", 1, NULL, 0, NULL), 2);
	CHECK(!koffsets_has_group(s, sl("old")));
	CHECK_EQ_INT(get(s, "busy", "t", 0, NULL, 0, NULL), 4);
	CHECK_EQ_INT(koffsets_expire(s, 2000, keep_busy, NULL), 0);
	koffsets_close(s);
	/* The tombstones are durable. */
	REQUIRE(koffsets_open(dir, &s) == 0);
	CHECK_EQ_INT(get(s, "idle", "t", 0, NULL, 0, NULL), -1);
	CHECK_EQ_INT(get(s, "idle", "t", 1, NULL, 0, NULL), 2);
	CHECK_EQ_INT(get(s, "old", "t", 0, NULL, 0, NULL), -1);
	CHECK_EQ_INT(get(s, "busy", "t", 0, NULL, 0, NULL), 4);
	CHECK_EQ_INT(koffsets_count(s), 2);
	koffsets_close(s);
	log_set_level(lv);
}

/* Without a directory: the same behaviour, nothing on disk. */
TEST(offsets_in_memory)
{
	struct koffsets *s = NULL;
	REQUIRE(koffsets_open(NULL, &s) == 0);
	koffsets_set_sync(s, true);
	CHECK_EQ_INT(put(s, "g", "t", 0, 7, "x", 1), 0);
	CHECK_EQ_INT(get(s, "g", "t", 0, NULL, 0, NULL), 7);
	CHECK_EQ_INT(koffsets_drop_group(s, sl("g")), 0);
	CHECK_EQ_INT(get(s, "g", "t", 0, NULL, 0, NULL), -1);
	CHECK_EQ_INT(put(s, "g", "t", 0, 8, "x", 1), 0);
	koffsets_close(s);
}
