#include "core/platform.h"
#include "core/util.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
	fprintf(stderr, "silt: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom(n * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		oom(strlen(s));
	return d;
}

char *xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	if (!d)
		oom(n);
	return d;
}

const char *silt_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case -SILT_ECORRUPT:
		return "corrupt data";
	case -SILT_ETOOBIG:
		return "length over limit";
	case -SILT_ERANGE:
		return "out of range";
	case -SILT_EEXIST:
		return "already exists";
	case -SILT_ENOENT:
		return "does not exist";
	case -SILT_EINVAL:
		return "invalid input";
	case -SILT_EAGAIN:
		return "incomplete input";
	default:
		if (err < 0 && err > -SILT_EBASE)
			return strerror(-err);
		return "unknown error";
	}
}

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void civil_from_epoch(int64_t sec, struct civil_time *t)
{
	int64_t days = sec / 86400, rem = sec % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	t->hour = (int)(rem / 3600);
	t->min = (int)(rem / 60 % 60);
	t->sec = (int)(rem % 60);
	t->wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
	/* Count in 400-year eras of 146097 days starting on 0000-03-01, so
	 * that the leap day ends each year of the era. */
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;                                  /* 0..146096 */
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);           /* 0..365, from March */
	int64_t mp = (5 * doy + 2) / 153;                                /* 0 = March */
	t->day = (int)(doy - (153 * mp + 2) / 5 + 1);
	t->month = (int)(mp < 10 ? mp + 3 : mp - 9);
	t->year = (int)(yoe + era * 400 + (t->month <= 2));
}

int64_t epoch_from_civil(int year, int month, int day, int hour, int min, int sec)
{
	/* The same March-based eras as civil_from_epoch, run backwards. */
	int64_t y = (int64_t)year - (month <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;                                          /* 0..399 */
	int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1; /* 0..365 */
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;                  /* 0..146096 */
	int64_t days = era * 146097 + doe - 719468;
	return days * 86400 + (int64_t)hour * 3600 + (int64_t)min * 60 + sec;
}

static void put2(char *p, int v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
}

size_t fmt_http_date(int64_t sec, char out[30])
{
	static const char wd[] = "SunMonTueWedThuFriSat";
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct civil_time t;
	civil_from_epoch(sec, &t);
	int y = t.year < 0 ? 0 : t.year > 9999 ? 9999 : t.year;
	memcpy(out, wd + 3 * t.wday, 3);
	memcpy(out + 3, ", ", 2);
	put2(out + 5, t.day);
	out[7] = ' ';
	memcpy(out + 8, mon + 3 * (t.month - 1), 3);
	out[11] = ' ';
	put2(out + 12, y / 100);
	put2(out + 14, y % 100);
	out[16] = ' ';
	put2(out + 17, t.hour);
	out[19] = ':';
	put2(out + 20, t.min);
	out[22] = ':';
	put2(out + 23, t.sec);
	memcpy(out + 25, " GMT", 5);
	return 29;
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -errno;
		buf[i] = c;
	}
	return 0;
}

int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

int write_file_atomic(const char *path, const void *data, size_t len)
{
	char tmp[PATH_MAX];
	int rc = 0;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) != 0) {
		rc = -errno;
		goto out;
	}
	if (rename(tmp, path) != 0)
		rc = -errno;
out:
	close(fd);
	if (rc)
		unlink(tmp);
	return rc;
}

int read_file(const char *path, size_t max, char **out, size_t *outlen)
{
	int rc = 0;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		rc = -SILT_ETOOBIG;
		goto out;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -SILT_ECORRUPT;
			goto out;
		}
		got += (size_t)r;
	}
	buf[got] = '\0';
	*out = buf;
	*outlen = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

int thread_sched_batch(void)
{
	struct sched_param sp = { .sched_priority = 0 };
	return sched_setscheduler(0, SCHED_BATCH, &sp) == 0 ? 0 : -errno;
}
