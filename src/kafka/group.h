/* group.h - the consumer group coordinator.
 *
 * Single node: this broker coordinates every group. The module keeps Kafka's
 * classic group protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup) state
 * machine - Empty, PreparingRebalance, CompletingRebalance, Stable - and the
 * committed offsets of every group. It has no wire code: kafka/api_group.c
 * decodes requests, calls in here and encodes the answers.
 *
 * Threads: every function may be called from any thread. One mutex guards
 * all group state (groups are few and their requests rare, so simplicity
 * wins over lock granularity). kgroup_tick is meant to be called from one
 * thread about every 100 ms. The coordinator never touches a kreq: a JoinGroup
 * or SyncGroup that must wait gets a kgroup_waiter; when its answer is ready
 * the coordinator stores it there and calls kafka_kick(), and the request's
 * poll function collects it with kgroup_waiter_take on its own loop thread.
 *
 * Committed offsets: the coordinator owns the offsets store (kafka/offsets.h)
 * and calls it under its mutex; OffsetCommit and OffsetFetch go through the
 * functions below. A commit is appended to <data_dir>/groups/offsets.log
 * with write(2) before kgroup_commit_offsets returns, so an acknowledged
 * commit survives a kill -9 (page cache, like Kafka's default; fdatasync
 * too when the broker's fsync_acks is set). Group membership is not
 * persisted: after a restart members rejoin, and groups that have offsets
 * come back Empty. */
#ifndef SILT_KAFKA_GROUP_H
#define SILT_KAFKA_GROUP_H

#include "core/platform.h"
#include "core/rd.h"
#include "kafka/offsets.h"

/* Bounds that keep the coordinator's memory finite whatever clients send. */
enum {
	KGROUP_MAX_GROUPS = 10000,
	KGROUP_MAX_MEMBERS = 1000,            /* per group -> GROUP_MAX_SIZE_REACHED */
	KGROUP_MAX_MEMBER_BYTES = 1 << 20,    /* protocol metadata, assignment, each */
};
/* All members' metadata and assignments together; past it joins and syncs
 * get COORDINATOR_NOT_AVAILABLE (retriable) instead of growing memory. */
#define KGROUP_MAX_TOTAL_BYTES (512ull << 20)

enum kgroup_state {
	KGS_EMPTY,
	KGS_PREPARING_REBALANCE,
	KGS_COMPLETING_REBALANCE, /* Kafka's AwaitingSync */
	KGS_STABLE,
	KGS_DEAD,
};

/* Kafka's name of a state ("Empty", "PreparingRebalance", ...). */
const char *kgroup_state_name(enum kgroup_state s);

struct kgroup_limits {
	int64_t min_session_timeout_ms;
	int64_t max_session_timeout_ms;
	int64_t initial_rebalance_delay_ms;
	int64_t offsets_retention_ms; /* <= 0: keep forever */
	bool fsync;                   /* fdatasync each commit before answering */
};

/* Reads the limits from kbroker_conf() (call after the broker is open) and
 * opens the committed offsets store of data_dir (koffsets_open: replay, torn
 * tail cut, compaction); every group that has offsets exists, Empty. data_dir
 * NULL keeps offsets in memory only. 0 or -errno. */
int kgroup_init(const char *data_dir);
/* Frees every group and closes the offsets store; waiters still pending
 * are answered with COORDINATOR_NOT_AVAILABLE (their owners free them). */
void kgroup_shutdown(void);
/* Expires members and pending member ids whose session timed out, completes
 * rebalances whose deadline passed, drops offsets past retention of groups
 * without members and forgets groups left with nothing. The coordinator
 * reads its own clock (mono_ms(), or the test clock) so that the handlers'
 * and the timer's times always agree; now_ms is only the caller's hint. */
void kgroup_tick(int64_t now_ms);
/* Drops every group's committed offsets for a deleted topic. */
void kgroup_topic_deleted(const char *topic);

/* Test seams: a replacement monotonic clock and limits (NULL restores). */
void kgroup_set_clock(int64_t (*now)(void));
void kgroup_set_limits(const struct kgroup_limits *lim);
/* Partition count of a topic, or -1 when it does not exist; the default asks
 * kbroker_topic(). Used by api_group.c for OffsetCommit. */
void kgroup_set_topic_lookup(int32_t (*npartitions)(const char *name, size_t len));
int32_t kgroup_topic_partitions(const char *name, size_t len);

/* ---- JoinGroup / SyncGroup: answers that may have to wait ---- */

struct kgroup_protocol {
	struct slice name;
	struct slice metadata;
};

struct kgroup_join_args {
	struct slice group_id, member_id, group_instance_id, protocol_type, client_id;
	int32_t session_timeout_ms;
	int32_t rebalance_timeout_ms;
	int32_t nprotocols;
	const struct kgroup_protocol *protocols;
	bool require_known_member_id; /* JoinGroup v4+: answer MEMBER_ID_REQUIRED first */
	const char *client_host;      /* "/ip" as Kafka reports it; NULL = "" */
};

struct kgroup_member_info {
	char *member_id;
	char *group_instance_id; /* NULL = null */
	uint8_t *metadata;
	int32_t metadata_len;
};

/* The answer to a JoinGroup (error .. members) or a SyncGroup (error,
 * assignment). Strings and arrays are heap copies owned by the result. */
struct kgroup_result {
	int16_t error;
	int32_t generation_id;
	char *protocol_name;
	char *leader;
	char *member_id;
	int32_t nmembers; /* only the leader gets the member list */
	struct kgroup_member_info *members;
	uint8_t *assignment;
	int32_t assignment_len;
};

void kgroup_result_destroy(struct kgroup_result *res);

/* A pending answer. Owned by the request that asked; the coordinator only
 * fills it in (under its mutex). */
struct kgroup_waiter;

/* Both return a waiter that may already hold the answer (errors, or a
 * rebalance that completed at once); never NULL. */
struct kgroup_waiter *kgroup_join(const struct kgroup_join_args *a);

struct kgroup_assignment {
	struct slice member_id;
	struct slice assignment;
};
struct kgroup_waiter *kgroup_sync(struct slice group_id, int32_t generation_id,
				  struct slice member_id, int32_t nassign,
				  const struct kgroup_assignment *assign);

/* If w's answer is ready, moves it into *out (kgroup_result_destroy it),
 * frees w and returns true; else returns false and w stays valid. */
bool kgroup_waiter_take(struct kgroup_waiter *w, struct kgroup_result *out);
/* Gives up on w (deadline, closed connection) and frees it. The member stays
 * in the group until its session times out, as in Kafka. */
void kgroup_waiter_cancel(struct kgroup_waiter *w);

/* ---- Immediate operations; each returns a KERR_* code ---- */

int16_t kgroup_heartbeat(struct slice group_id, int32_t generation_id, struct slice member_id);
/* Removes a member, found by member_id or (if that is empty) by
 * group_instance_id, and rebalances the rest. */
int16_t kgroup_leave(struct slice group_id, struct slice member_id, struct slice group_instance_id);
/* Deletes an Empty group and its offsets: GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP. */
int16_t kgroup_delete(struct slice group_id);

/* Validates the committer (a member of the current generation, or a
 * "simple" consumer: generation < 0, empty member id, group without
 * members), then stores the entries without an error (koffsets_commit:
 * durable first, then applied); the others get the error. */
void kgroup_commit_offsets(struct slice group_id, int32_t generation_id, struct slice member_id,
			   struct koffsets_commit *c, int32_t n);

/* Fills offset/leader_epoch/metadata of each entry from its topic/partition. */
void kgroup_fetch_offsets(struct slice group_id, struct koffsets_offset *o, int32_t n);
/* Every offset of the group, sorted by topic then partition; topic views
 * point at heap copies. Free with koffsets_offsets_free(o, n, true). */
struct koffsets_offset *kgroup_fetch_all_offsets(struct slice group_id, int32_t *n);

/* ---- Listing ---- */

struct kgroup_listing {
	char *group_id;
	char *protocol_type; /* "" for groups used only to commit offsets */
};
struct kgroup_listing *kgroup_list(int32_t *n);
void kgroup_list_free(struct kgroup_listing *l, int32_t n);

struct kgroup_member_desc {
	char *member_id;
	char *group_instance_id; /* NULL = null */
	char *client_id;
	char *client_host;
	uint8_t *metadata; /* Stable groups only, else empty */
	int32_t metadata_len;
	uint8_t *assignment;
	int32_t assignment_len;
};

struct kgroup_desc {
	int16_t error;
	const char *state; /* "Dead" for an unknown group */
	char *protocol_type;
	char *protocol_data; /* the chosen protocol, Stable groups only */
	int32_t nmembers;
	struct kgroup_member_desc *members;
};
void kgroup_describe(struct slice group_id, struct kgroup_desc *d);
void kgroup_desc_destroy(struct kgroup_desc *d);

#endif
