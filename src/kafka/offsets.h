/* offsets.h - the committed consumer offsets store.
 *
 * What Kafka keeps in its compacted __consumer_offsets topic: per group, per
 * topic-partition, the last committed offset, leader epoch, metadata and
 * commit time. The store holds all of them in memory (a hash of groups, each
 * a hash of partitions) and journals every change to
 * <data_dir>/groups/offsets.log, a storage/reclog of these record bodies
 * (a type byte first; strings are i16 length + bytes):
 *   1 COMMIT      group, topic, i32 partition, i64 offset, i32 leader epoch,
 *                 i64 commit time (wall ms), metadata
 *   2 DEL_OFFSET  group, topic, i32 partition
 *   3 DEL_GROUP   group
 *   4 DEL_TOPIC   topic
 * Opening replays them in order (a torn tail is cut, see reclog.h) and
 * compacts the file when it is mostly dead records; so do commits and
 * expiry, past a higher threshold. Compaction rewrites the live set as
 * COMMIT records.
 *
 * Every change is appended before it is applied, and only applied if the
 * append succeeded (the drop of a deleted topic excepted, see
 * koffsets_drop_topic): what a caller was told is committed survives a
 * kill -9.
 *
 * Ownership and threads: the store knows nothing of group membership. Its
 * one owner, the group coordinator (kafka/group.c), decides who may commit
 * and when offsets expire, and serializes every call under its own mutex:
 * the store has no lock. A store opened without a directory keeps offsets
 * in memory only (tests, fuzzers).
 *
 * Errors: 0 or -errno; per-entry Kafka error codes where noted. */
#ifndef SILT_KAFKA_OFFSETS_H
#define SILT_KAFKA_OFFSETS_H

#include "core/platform.h"
#include "core/rd.h"

/* Bounds that keep the store's memory finite whatever clients send. */
enum {
	KOFFSETS_MAX = 1000000,       /* committed offsets across groups */
	KOFFSETS_MAX_METADATA = 4096, /* per offset -> OFFSET_METADATA_TOO_LARGE */
};

struct koffsets;

/* Opens the store of <data_dir>/groups/ (creating the directory), loading
 * and possibly compacting the log; data_dir NULL: in memory only. The
 * counts of what was loaded are logged. 0 or -errno. */
int koffsets_open(const char *data_dir, struct koffsets **out);
void koffsets_close(struct koffsets *s);
/* fdatasync every append before it counts as done. */
void koffsets_set_sync(struct koffsets *s, bool sync);

/* One partition of an OffsetCommit. error is in/out: entries that arrive
 * with an error (e.g. unknown topic) are skipped and keep it. */
struct koffsets_commit {
	struct slice topic;
	int32_t partition;
	int64_t offset;
	int32_t leader_epoch;
	struct slice metadata; /* null stored as "" */
	int16_t error;
};

/* Stores the entries without an error for group, commit time ts (wall
 * ms): durable first (one append for all), then applied. Sets error on the
 * entries it refuses: OFFSET_METADATA_TOO_LARGE, UNKNOWN_SERVER_ERROR past
 * KOFFSETS_MAX or when the append fails (then for all of them). */
void koffsets_commit(struct koffsets *s, const char *group, struct koffsets_commit *c, int32_t n,
		     int64_t ts);

/* A committed offset; offset -1, leader_epoch -1 and no metadata when none. */
struct koffsets_offset {
	struct slice topic;
	int32_t partition;
	int64_t offset;
	int32_t leader_epoch;
	uint8_t *metadata; /* heap, may be NULL when metadata_len is 0 */
	int32_t metadata_len;
};

/* Fills offset/leader_epoch/metadata of each entry from its topic/partition. */
void koffsets_fetch(struct koffsets *s, struct slice group, struct koffsets_offset *o, int32_t n);
/* Every offset of the group, sorted by topic then partition; topic views
 * point at heap copies. Free with koffsets_offsets_free(o, n, true). */
struct koffsets_offset *koffsets_fetch_all(struct koffsets *s, struct slice group, int32_t *n);
void koffsets_offsets_free(struct koffsets_offset *o, int32_t n, bool topics_owned);

/* Whether the group has any committed offset. */
bool koffsets_has_group(struct koffsets *s, struct slice group);
/* Calls fn for every group that has offsets (the store must not change
 * meanwhile). */
void koffsets_for_each_group(struct koffsets *s, void (*fn)(void *arg, const char *group), void *arg);
/* Offsets held, across groups. */
uint32_t koffsets_count(const struct koffsets *s);

/* Drops every offset of the group (DEL_GROUP). 0, or -errno when the
 * append failed (nothing dropped). */
int koffsets_drop_group(struct koffsets *s, struct slice group);
/* Drops every group's offsets of a deleted topic (DEL_TOPIC); returns how
 * many. Dropped in memory even if the append fails: the topic is gone, and
 * a later topic of that name starting from stale offsets is the lesser harm
 * of the two. */
uint32_t koffsets_drop_topic(struct koffsets *s, const char *topic);
/* Drops the offsets committed before `before` (wall ms) of every group for
 * which keep(arg, group) is false (DEL_OFFSET each); returns how many. */
uint32_t koffsets_expire(struct koffsets *s, int64_t before, bool (*keep)(void *arg, const char *group),
			 void *arg);

#endif
