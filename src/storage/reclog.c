#include "core/platform.h"
#include "storage/reclog.h"

#include "core/crc.h"
#include "core/log.h"
#include "core/rd.h"
#include "core/util.h"

#include <fcntl.h>
#include <libgen.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUB "reclog"

struct reclog {
	int fd; /* O_APPEND */
	bool sync;
	uint64_t size; /* bytes of whole records */
	char path[PATH_MAX];
};

size_t reclog_rec_begin(struct wbuf *w)
{
	size_t at = wbuf_i32(w, 0);
	wbuf_i32(w, 0);
	return at;
}

void reclog_rec_end(struct wbuf *w, size_t at)
{
	if (w->err)
		return;
	size_t n = w->len - at - 8;
	wbuf_patch_i32(w, at, (int32_t)n);
	wbuf_patch_i32(w, at + 4, (int32_t)crc32c(0, w->p + at + 8, n));
}

/* Replays the file at l->path and cuts it after the last good record. A
 * missing file is an empty log. */
static int replay_file(struct reclog *l, uint32_t max_body, reclog_replay_fn replay, void *arg,
		       struct reclog_stats *st)
{
	int fd = open(l->path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	int rc = 0;
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		rc = -errno;
		goto out;
	}
	size_t size = (size_t)sb.st_size, good = 0;
	if (size > 0) {
		const uint8_t *base = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (base == MAP_FAILED) {
			rc = -errno;
			goto out;
		}
		struct rd r;
		rd_init(&r, base, size);
		while (rd_left(&r) >= 8) {
			uint32_t len = rd_u32(&r);
			uint32_t crc = rd_u32(&r);
			if (len == 0 || len > max_body || len > rd_left(&r))
				break;
			const uint8_t *body = rd_bytes(&r, len);
			if (crc32c(0, body, len) != crc || !replay(arg, body, len))
				break;
			good = (size_t)(r.p - base);
			st->records++;
		}
		munmap((void *)(uintptr_t)base, size);
	}
	if (good < size) {
		log_warn(SUB, "%s: cutting %zu bytes of torn or corrupt tail at %zu", l->path, size - good,
			 good);
		if (ftruncate(fd, (off_t)good) != 0) {
			rc = -errno;
			goto out;
		}
		st->cut_bytes = size - good;
	}
	l->size = good;
out:
	close(fd);
	return rc;
}

static int open_append(struct reclog *l)
{
	l->fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	return l->fd < 0 ? -errno : 0;
}

int reclog_open(const char *path, uint32_t max_body, reclog_replay_fn replay, void *arg,
		struct reclog **out, struct reclog_stats *stats)
{
	struct reclog_stats st = { 0 };
	struct reclog *l = xcalloc(1, sizeof(*l));
	l->fd = -1;
	int rc = 0;
	if (snprintf(l->path, sizeof(l->path), "%s", path) >= (int)sizeof(l->path)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	struct stat sb;
	bool existed = stat(path, &sb) == 0;
	if ((rc = replay_file(l, max_body, replay, arg, &st)) != 0 || (rc = open_append(l)) != 0)
		goto out;
	if (!existed) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", path);
		rc = fsync_dir(dirname(dir));
	}
out:
	if (rc) {
		reclog_close(l);
		l = NULL;
	}
	if (stats)
		*stats = st;
	*out = l;
	return rc;
}

void reclog_close(struct reclog *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}

void reclog_set_sync(struct reclog *l, bool sync)
{
	l->sync = sync;
}

int reclog_append(struct reclog *l, const struct wbuf *w)
{
	if (w->err)
		return -ENOMEM;
	if (w->len == 0)
		return 0;
	if (l->fd < 0)
		return -EBADF;
	const uint8_t *p = w->p;
	size_t left = w->len;
	int rc = 0;
	while (left > 0) {
		ssize_t n = write(l->fd, p, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		p += n;
		left -= (size_t)n;
	}
	if (!rc && l->sync && fdatasync(l->fd) != 0)
		rc = -errno;
	if (rc) {
		log_error(SUB, "appending to %s: %s", l->path, silt_strerror(rc));
		if (ftruncate(l->fd, (off_t)l->size) != 0)
			log_error(SUB, "cutting %s back: %s", l->path, strerror(errno));
		return rc;
	}
	l->size += w->len;
	return 0;
}

int reclog_rewrite(struct reclog *l, const struct wbuf *w)
{
	int rc = w->err ? -ENOMEM : write_file_atomic(l->path, w->p, w->len);
	if (rc)
		return rc;
	/* The old descriptor points at the replaced file. */
	if (l->fd >= 0)
		close(l->fd);
	l->size = w->len;
	rc = open_append(l);
	if (rc)
		log_error(SUB, "reopening %s: %s", l->path, silt_strerror(rc));
	return rc;
}

uint64_t reclog_size(const struct reclog *l)
{
	return l->size;
}

const char *reclog_path(const struct reclog *l)
{
	return l->path;
}
