/* util.h - clocks and small filesystem helpers shared by every module. */
#ifndef SILT_UTIL_H
#define SILT_UTIL_H

#include "core/platform.h"

#include <sys/stat.h>

int64_t now_ms(void);  /* wall clock, ms since the epoch (Kafka timestamps) */
int64_t mono_ms(void); /* monotonic, for timeouts */
int64_t mono_us(void);

/* mkdir -p; 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
int fsync_dir(const char *path);
/* Writes path.tmp, fsyncs, renames over path. 0 or -errno. */
int write_file_atomic(const char *path, const void *data, size_t len);
/* Reads a whole file of at most max bytes into a NUL-terminated heap buffer
 * the caller frees. 0, -errno or -SILT_ETOOBIG. */
int read_file(const char *path, size_t max, char **out, size_t *outlen);

#endif
