/* log.h - one readable line per event on stderr.
 *
 * Format: `2026-11-27T04:22:20.123Z INFO  kafka: message`. Safe from any
 * thread: each line is formatted into a local buffer and written with one
 * write(2), so lines from different loops never interleave. */
#ifndef SILT_LOG_H
#define SILT_LOG_H

#include "core/platform.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
void log_msg(enum log_level lvl, const char *sub, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(sub, ...) \
	do { if (log_get_level() <= LOG_DEBUG) log_msg(LOG_DEBUG, sub, __VA_ARGS__); } while (0)
#define log_info(sub, ...) log_msg(LOG_INFO, sub, __VA_ARGS__)
#define log_warn(sub, ...) log_msg(LOG_WARN, sub, __VA_ARGS__)
#define log_error(sub, ...) log_msg(LOG_ERROR, sub, __VA_ARGS__)

#endif
