/* util.h - clocks and small filesystem helpers shared by every module. */
#ifndef SILT_UTIL_H
#define SILT_UTIL_H

#include "core/platform.h"

#include <sys/stat.h>

int64_t now_ms(void);  /* wall clock, ms since the epoch (Kafka timestamps) */
int64_t mono_ms(void); /* monotonic, for timeouts */
int64_t mono_us(void);

/* Broken-down UTC time of seconds since the epoch (proleptic Gregorian),
 * computed arithmetically: no gmtime, no locale, no time zone lock. */
struct civil_time {
	int year, month, day; /* month 1..12 */
	int hour, min, sec;
	int wday; /* 0 = Sunday */
};
void civil_from_epoch(int64_t sec, struct civil_time *t);
/* The inverse for a proleptic Gregorian date-time in UTC, with no time
 * zone and no normalising beyond arithmetic (day 31 of a 30-day month is
 * the 1st of the next, as timegm would make it). month 1..12. */
int64_t epoch_from_civil(int year, int month, int day, int hour, int min, int sec);
/* IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT": 29 characters and a NUL. */
size_t fmt_http_date(int64_t sec, char out[30]);

/* mkdir -p; 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
int fsync_dir(const char *path);
/* Writes path.tmp, fsyncs, renames over path. 0 or -errno. */
int write_file_atomic(const char *path, const void *data, size_t len);
/* Reads a whole file of at most max bytes into a NUL-terminated heap buffer
 * the caller frees. 0, -errno or -SILT_ETOOBIG. */
int read_file(const char *path, size_t max, char **out, size_t *outlen);

/* Puts the calling thread under SCHED_BATCH: same nice level and share of
 * the CPU, but its wakeups do not preempt the thread that is running. A
 * network loop woken by every arriving request then lets the thread that
 * sent it (on a shared machine: the client) go on until it blocks, and
 * finds several requests waiting instead of one, which is fewer context
 * switches per request. 0 or -errno. */
int thread_sched_batch(void);

#endif
