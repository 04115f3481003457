/* fuzz_offsets_log.c - opens a committed offsets store (kafka/offsets.c)
 * whose groups/offsets.log is built from the fuzz input, commits, closes
 * and reopens it. Bytes on disk are untrusted: nothing may crash, leak or
 * read out of bounds, and what the store holds after the first open must
 * come back, with the new commit, after the second (a cut tail included).
 *
 * Input: a sequence of `u16 length, body`; each body is framed as a record
 * with its correct CRC, so the fuzzer reaches the record parser. Bytes left
 * over (a length past the end) are appended raw, as a torn tail. */
#include "core/platform.h"
#include "core/crc.h"
#include "core/log.h"
#include "core/rd.h"
#include "kafka/offsets.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[256], g_path[320];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_ERROR);
	snprintf(g_dir, sizeof(g_dir), "%s/silt-fuzz-offsets-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(g_dir))
		abort();
	char groups[300];
	snprintf(groups, sizeof(groups), "%s/groups", g_dir);
	if (mkdir(groups, 0755) != 0)
		abort();
	snprintf(g_path, sizeof(g_path), "%s/offsets.log", groups);
	return 0;
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = open(g_path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0)
		abort();
	struct rd in;
	rd_init(&in, data, size);
	while (rd_left(&in) >= 2) {
		size_t len = (uint16_t)rd_i16(&in);
		if (len > rd_left(&in)) {
			in.p -= 2;
			break;
		}
		const uint8_t *body = rd_bytes(&in, len);
		uint8_t hdr[8];
		be32(hdr, (uint32_t)len);
		be32(hdr + 4, crc32c(0, body, len));
		if (write(fd, hdr, 8) != 8 || (len && write(fd, body, len) != (ssize_t)len))
			abort();
	}
	size_t rest = rd_left(&in);
	if (rest && write(fd, in.p, rest) != (ssize_t)rest)
		abort();
	close(fd);

	struct koffsets *s = NULL;
	if (koffsets_open(g_dir, &s) != 0)
		abort();
	struct slice fz = { (const uint8_t *)"fz", 2 };
	struct koffsets_commit c = { .topic = fz, .partition = 0, .offset = 77, .metadata = fz };
	koffsets_commit(s, "fz", &c, 1, 1);
	uint32_t n = koffsets_count(s);
	if (c.error && n < KOFFSETS_MAX)
		abort();
	koffsets_close(s);

	if (koffsets_open(g_dir, &s) != 0)
		abort();
	struct koffsets_offset o = { .topic = fz, .partition = 0 };
	koffsets_fetch(s, fz, &o, 1);
	if (koffsets_count(s) != n || (!c.error && o.offset != 77))
		abort();
	free(o.metadata);
	koffsets_close(s);
	return 0;
}
