/* tconf.h - topic configuration: Kafka's topic config names, their broker
 * default names (log.retention.ms for retention.ms, ...), parsing, rendering.
 *
 * A tconf holds one value per key and a mask of keys explicitly set. A
 * topic's effective value is its own if set, else the broker default
 * (kbroker_conf()->topic_defaults). Plain values, no ownership. */
#ifndef SILT_KAFKA_TCONF_H
#define SILT_KAFKA_TCONF_H

#include "core/platform.h"

enum tconf_key {
	TC_RETENTION_MS,
	TC_RETENTION_BYTES,
	TC_SEGMENT_BYTES,
	TC_SEGMENT_MS,
	TC_MAX_MESSAGE_BYTES,
	TC_FLUSH_MESSAGES,
	TC_FLUSH_MS,
	TC_INDEX_INTERVAL_BYTES,
	TC_MIN_INSYNC_REPLICAS,
	TC_CLEANUP_POLICY,      /* enum: delete, compact */
	TC_TIMESTAMP_TYPE,      /* enum: CreateTime, LogAppendTime */
	TC_COMPRESSION_TYPE,    /* enum: producer, uncompressed, gzip, snappy, lz4, zstd */
	TC__COUNT
};

enum { TC_TS_CREATE_TIME = 0, TC_TS_LOG_APPEND_TIME = 1 };

struct tconf {
	int64_t v[TC__COUNT];
	uint32_t set; /* bit k: key k explicitly set */
};

/* Kafka's defaults (retention 7 days, segment 1 GiB, ...). */
void tconf_defaults(struct tconf *c);
/* Topic name ("retention.ms") to key, or -1. */
int tconf_key_by_name(const char *name, size_t len);
/* Broker name ("log.retention.ms") to key, or -1. */
int tconf_key_by_broker_name(const char *name, size_t len);
const char *tconf_name(int key);
const char *tconf_broker_name(int key);
/* Parses value for key into c (marking it set). 0 or -SILT_EINVAL. */
int tconf_set(struct tconf *c, int key, const char *value, size_t len);
void tconf_unset(struct tconf *c, int key);
/* Renders the value of key in c into buf. */
void tconf_render(const struct tconf *c, int key, char *buf, size_t cap);
/* Effective value: c's own if set, else defaults'. */
int64_t tconf_get(const struct tconf *c, const struct tconf *defaults, int key);
/* Serialise the set keys as key=value lines / parse them back. */
char *tconf_serialize(const struct tconf *c);
int tconf_parse_lines(struct tconf *c, const char *text);

#endif
