/* The data routing layer: round trips, and a read that outlives a free of
 * the object it reads (S3 lets an in-flight GET finish after an overwrite). */
#include "core/platform.h"
#include "core/log.h"
#include "s3/route.h"
#include "test.h"

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 31 + seed) ^ (i >> 11));
}

static int put(struct s3route *rt, const uint8_t *p, size_t n, uint8_t *loc, size_t *loclen)
{
	struct s3route_put *w;
	int rc = s3route_put_begin(rt, 0, &w);
	if (rc != 0)
		return rc;
	for (size_t off = 0; off < n; off += 100000) {
		rc = s3route_put_write(w, p + off, SILT_MIN((size_t)100000, n - off));
		if (rc != 0) {
			s3route_put_abort(w);
			return rc;
		}
	}
	return s3route_put_commit(w, loc, loclen);
}

/* Reads [off, off+len) back and compares with want. */
static bool read_back(struct s3route *rt, const uint8_t *loc, size_t loclen, uint64_t off, uint64_t len,
		      const uint8_t *want)
{
	struct s3route_get *g;
	if (s3route_get_open(rt, loc, loclen, off, len, &g) != 0)
		return false;
	uint64_t got = 0;
	const uint8_t *p;
	size_t n;
	int rc;
	bool ok = true;
	while ((rc = s3route_get_next(g, &p, &n)) == 1) {
		if (got + n > len || memcmp(p, want + off + got, n) != 0)
			ok = false;
		got += n;
	}
	s3route_get_close(g);
	return ok && rc == 0 && got == len;
}

TEST(s3_route_roundtrip_and_ranges)
{
	struct s3route *rt;
	REQUIRE(s3route_open(test_tmpdir(), 2, &rt) == 0);
	size_t n = 3 * 1024 * 1024 + 17;
	uint8_t *data = xmalloc(n);
	fill(data, n, 7);
	uint8_t loc[S3ROUTE_LOC_MAX];
	size_t loclen;
	REQUIRE(put(rt, data, n, loc, &loclen) == 0);
	CHECK(read_back(rt, loc, loclen, 0, n, data));
	CHECK(read_back(rt, loc, loclen, 1048570, 20, data));
	CHECK(read_back(rt, loc, loclen, n - 1, 1, data));
	/* A locator that is not one of ours is refused, not read. */
	uint8_t bad[S3ROUTE_LOC_MAX];
	memcpy(bad, loc, loclen);
	bad[0] = 'X';
	struct s3route_get *g;
	CHECK(s3route_get_open(rt, bad, loclen, 0, 1, &g) == -SILT_ECORRUPT);
	/* New locators carry the data node's read hint (version 2); a
	 * version 1 locator (written before hints existed: the same bytes
	 * without the hint) still reads. Truncated or padded ones do not. */
	CHECK_EQ_INT(loc[1], 2);
	CHECK(loclen > 20);
	uint8_t v1[20];
	memcpy(v1, loc, 20);
	v1[1] = 1;
	CHECK(read_back(rt, v1, 20, 0, n, data));
	CHECK(read_back(rt, v1, 20, 2 * 1048576 + 5, 1048576, data));
	CHECK(s3route_get_open(rt, loc, loclen - 1, 0, 1, &g) == -SILT_ECORRUPT);
	memcpy(bad, loc, loclen);
	bad[loclen] = 0;
	CHECK(s3route_get_open(rt, bad, loclen + 1, 0, 1, &g) == -SILT_ECORRUPT);
	CHECK(s3route_get_open(rt, v1, 21, 0, 1, &g) == -SILT_ECORRUPT);
	CHECK_EQ_INT(s3route_free(rt, loc, loclen), 0);
	/* Freed: the records are gone, so a read that must look them up fails
	 * (the hinted read may still find the verified old bytes until GC). */
	CHECK(!read_back(rt, v1, 20, 0, 1, data));
	CHECK(!read_back(rt, loc, loclen, 2 * 1048576, 1, data));
	free(data);
	s3route_close(rt);
}

TEST(s3_route_free_waits_for_readers)
{
	struct s3route *rt;
	REQUIRE(s3route_open(test_tmpdir(), 1, &rt) == 0);
	size_t n = 5 * 1024 * 1024;
	uint8_t *data = xmalloc(n);
	fill(data, n, 3);
	uint8_t loc[S3ROUTE_LOC_MAX];
	size_t loclen;
	REQUIRE(put(rt, data, n, loc, &loclen) == 0);
	struct s3route_get *g;
	REQUIRE(s3route_get_open(rt, loc, loclen, 0, n, &g) == 0);
	const uint8_t *p;
	size_t len;
	uint64_t got = 0;
	REQUIRE(s3route_get_next(g, &p, &len) == 1);
	CHECK(memcmp(p, data, len) == 0);
	got += len;
	/* The key is overwritten: its old data is freed while we read. */
	CHECK_EQ_INT(s3route_free(rt, loc, loclen), 0);
	int rc;
	bool same = true;
	while ((rc = s3route_get_next(g, &p, &len)) == 1) {
		if (memcmp(p, data + got, len) != 0)
			same = false;
		got += len;
	}
	CHECK_EQ_INT(rc, 0);
	CHECK(same);
	CHECK_EQ_INT(got, n);
	s3route_get_close(g);
	/* The last reader gone, the data is gone too (a read through the
	 * records fails: here, one past chunk 0, whose hint the locator has). */
	CHECK(s3route_get_open(rt, loc, loclen, 1048576, 1, &g) == 0);
	CHECK(s3route_get_next(g, &p, &len) < 0);
	s3route_get_close(g);
	free(data);
	s3route_close(rt);
}
