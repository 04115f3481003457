/* broker.h - the broker's state: its identity and configuration, the topic
 * table, and each partition's log.
 *
 * Ownership: one global broker (kbroker_get()) created by kbroker_open and
 * freed by kbroker_close. Topics are reference counted: lookups return a
 * reference (ktopic_unref when done), so DeleteTopics can remove a topic
 * while a fetch is still reading it. Partitions live inside their topic.
 *
 * Threads: the topic table is guarded by a rwlock; each partition by its own
 * mutex for appends (reads go straight to the seglog, which is thread-safe).
 * Every function here may be called from any loop thread. */
#ifndef SILT_KAFKA_BROKER_H
#define SILT_KAFKA_BROKER_H

#include "core/platform.h"
#include "kafka/kreq.h"
#include "kafka/tconf.h"
#include "storage/seglog.h"

#include <pthread.h>

struct kpartition {
	struct ktopic *topic;
	int32_t id;
	int32_t leader_epoch;
	struct seglog *log;
	pthread_mutex_t mu;  /* serialises appends and producer state */
	struct pidstate *pids; /* idempotent producer state (kafka/pidstate.h) */
	int64_t high_watermark; /* single node: the log end offset */
};

struct ktopic {
	char *name;
	uint8_t id[16]; /* topic UUID (Metadata v10+, for later) */
	int32_t npartitions;
	struct kpartition **parts;
	struct tconf conf; /* per-topic overrides merged over broker defaults */
	int refs;
	bool deleted;
	char *dir;
};

struct kbroker_conf {
	int32_t node_id;
	char kafka_host[256];
	int kafka_port;
	char data_dir[1024];
	bool auto_create_topics;
	int32_t num_partitions;
	int16_t default_replication_factor;
	uint32_t socket_request_max_bytes;   /* socket.request.max.bytes, 100 MiB */
	int max_connections;                 /* max.connections */
	uint64_t max_inflight_bytes;         /* cap on request bytes buffered across connections */
	int64_t group_min_session_timeout_ms;
	int64_t group_max_session_timeout_ms;
	int64_t group_initial_rebalance_delay_ms;
	int64_t offsets_retention_ms;
	int64_t log_retention_check_interval_ms;
	bool fsync_acks;                     /* fsync before acknowledging a produce (group commit) */
	bool debug_request_timing;           /* silt.debug.request.timing: log produce time in server */
	struct tconf topic_defaults;         /* log.retention.ms etc. as topic defaults */
	int nthreads;
	bool sched_batch; /* silt.network.sched.batch: network loops under SCHED_BATCH */
};

/* Partition `id` of t, or NULL if out of range. Valid while the caller holds
 * a reference to t (partitions are never removed from a live topic). */
struct kpartition *ktopic_partition(struct ktopic *t, int32_t id);
int32_t ktopic_npartitions(struct ktopic *t);

/* Looks up a topic; returns a reference or NULL. */
struct ktopic *kbroker_topic(const char *name, size_t len);
void ktopic_unref(struct ktopic *t);
/* Snapshot of all live topics (each referenced); caller unrefs each and
 * frees the array. */
struct ktopic **kbroker_topics(int *n);

/* Creates a topic; error is a Kafka code (KERR_*). npartitions <= 0 takes
 * the broker default. overrides may be NULL. On success *out (if not NULL)
 * is a reference. */
int kbroker_create_topic(const char *name, size_t len, int32_t npartitions,
			 const struct tconf *overrides, struct ktopic **out);
int kbroker_delete_topic(const char *name, size_t len);
int kbroker_create_partitions(struct ktopic *t, int32_t total);
/* Persists t->conf after a change and applies it to the partitions' logs. */
int kbroker_topic_conf_changed(struct ktopic *t);

/* Kafka's topic name rules: [a-zA-Z0-9._-]{1,249}, not "." or "..". */
bool kafka_topic_name_valid(const char *name, size_t len);

const struct kbroker_conf *kbroker_conf(void);

/* Lifecycle, called by the CLI: loads every topic under data_dir/kafka. */
int kbroker_open(const struct kbroker_conf *conf);
void kbroker_close(void);
/* Flush policy and (if retention) retention over every partition; from the
 * housekeeping thread. */
void kbroker_housekeeping(int64_t now_wall_ms, bool retention);
/* Group commit for fsync_acks: asks the flusher thread to fsync p soon;
 * seglog_flushed_offset(p->log) then moves and kafka_kick() is called. */
void kbroker_request_flush(struct kpartition *p);
void kbroker_flusher_start(void);
void kbroker_flusher_stop(void);

#endif
