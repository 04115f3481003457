/* test.h - the in-tree unit test harness.
 *
 * TEST(name) { ... } registers a test at load time; CHECK(cond) records a
 * failure (with file:line and the expression) and continues; REQUIRE(cond)
 * records and returns from the test. tests/unit/main.c runs them all (or
 * those whose name contains argv[1]) and prints "N passed, N failed".
 * TEST(tool_x) registers a tool (seed-corpus writer, long measurement) that
 * runs only when named explicitly: build/unit_tests tool_x. */
#ifndef SILT_TEST_H
#define SILT_TEST_H

#include "core/platform.h"

struct test_case {
	const char *name;
	void (*fn)(void);
	struct test_case *next;
};

void test_register(struct test_case *tc);
void test_fail(const char *file, int line, const char *expr);
/* A fresh empty directory under $TMPDIR for this test; removed at exit. */
const char *test_tmpdir(void);

#define TEST(name)                                                            \
	static void test_##name(void);                                        \
	static struct test_case tc_##name = { #name, test_##name, NULL };     \
	__attribute__((constructor)) static void reg_##name(void)             \
	{                                                                     \
		test_register(&tc_##name);                                    \
	}                                                                     \
	static void test_##name(void)

#define CHECK(cond)                                                   \
	do {                                                          \
		if (!(cond))                                          \
			test_fail(__FILE__, __LINE__, #cond);         \
	} while (0)

#define REQUIRE(cond)                                                 \
	do {                                                          \
		if (!(cond)) {                                        \
			test_fail(__FILE__, __LINE__, #cond);         \
			return;                                       \
		}                                                     \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                          \
	do {                                                                        \
		long long _a = (long long)(a), _b = (long long)(b);                 \
		if (_a != _b) {                                                     \
			char _m[256];                                               \
			snprintf(_m, sizeof(_m), "%s == %s (%lld != %lld)", #a, #b, \
				 _a, _b);                                           \
			test_fail(__FILE__, __LINE__, _m);                          \
		}                                                                   \
	} while (0)

#endif
