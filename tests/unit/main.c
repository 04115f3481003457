#include "core/platform.h"
#include "test.h"

#include <ftw.h>
#include <unistd.h>

static struct test_case *g_tests, **g_tail = &g_tests;
static int g_failed_checks;
static char g_tmp[256];

void test_register(struct test_case *tc)
{
	*g_tail = tc;
	g_tail = &tc->next;
}

void test_fail(const char *file, int line, const char *expr)
{
	fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, expr);
	g_failed_checks++;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tmp(void)
{
	if (g_tmp[0])
		nftw(g_tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	g_tmp[0] = '\0';
}

const char *test_tmpdir(void)
{
	rm_tmp();
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(g_tmp, sizeof(g_tmp), "%s/silt-test-XXXXXX", base);
	if (!mkdtemp(g_tmp)) {
		perror("mkdtemp");
		abort();
	}
	return g_tmp;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	for (struct test_case *tc = g_tests; tc; tc = tc->next) {
		if (argc > 1 && !strstr(tc->name, argv[1]))
			continue;
		/* tool_* entries (seed-corpus writers, long measurements) are not
		 * tests: they run only when asked for by their own name. */
		if (strncmp(tc->name, "tool_", 5) == 0 && (argc < 2 || strncmp(argv[1], "tool_", 5) != 0))
			continue;
		int before = g_failed_checks;
		tc->fn();
		rm_tmp();
		if (g_failed_checks == before) {
			passed++;
		} else {
			failed++;
			fprintf(stderr, "FAILED %s\n", tc->name);
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
