/* commit.h - group commit of the S3 writes that follow a request body.
 *
 * A PUT whose body is complete (its bytes already appended to a data-node
 * volume) still has to record two things: the data node's chunk locations
 * and the metadata service's version row that points at them. Done per
 * request on the loop thread, that is two SQLite transactions per PUT,
 * each with its locks, WAL frames and (now and then) a checkpoint's fsyncs,
 * with the loop's other connections waiting meanwhile. Here a committer
 * thread takes every job queued since its last round (up to
 * S3COMMIT_MAX_BATCH) and writes the whole group in ONE transaction per
 * database:
 *
 *   1. data node: every data put of the group (datanode_put_commit_many);
 *   2. metadata: every job's metadata call, in s3meta_batch_begin/_end;
 *   3. the data nobody references any more is freed (one data-node
 *      transaction): what the metadata calls replaced, and the fresh data of
 *      jobs whose metadata call failed;
 *   4. each job's `done` runs on its own loop (one loop_post per loop and
 *      group), where the request is answered.
 *
 * Crash safety is that of the per-request path: the data node commits the
 * locations before the metadata service commits a version pointing at them,
 * so a crash between the two leaves unreferenced data (garbage), never a
 * version without data; a job is answered only after both committed. Each
 * job succeeds or fails on its own (savepoints in both databases); only a
 * failure of a group's transaction itself (disk full, I/O error) fails every
 * job of that group.
 *
 * Job kinds: PUT (data + s3meta_object_put: PutObject, CopyObject), PART
 * (data + s3meta_mpu_put_part: UploadPart, UploadPartCopy), DELETE
 * (s3meta_object_delete), DELETE_MANY (one s3meta_object_delete per key of
 * a DeleteObjects request, all in the group's transaction, each key
 * succeeding or failing on its own like a job), COMPLETE
 * (s3meta_mpu_complete), MPU_CREATE (s3meta_mpu_create) and MPU_ABORT
 * (s3meta_mpu_abort; the parts' data freed here). The caller fills the
 * inputs; strings and arrays they point at must stay valid until `done`
 * has run. The locator fields of `put` and `part` are filled in by the
 * committer.
 *
 * A group holds at most S3COMMIT_MAX_BATCH jobs and, past its first job, at
 * most S3COMMIT_MAX_CALLS metadata calls (a DELETE_MANY job makes one per
 * key), so that a few large DeleteObjects do not make one long transaction
 * that every other write waits behind.
 *
 * The committer also owns a checkpointer thread, which copies both
 * databases' WALs into their files every S3COMMIT_CKPT_MS (PASSIVE), so no
 * loop ever runs a checkpoint. A WAL restarts from its beginning only when a
 * writer finds it entirely copied, which never happens while the committer
 * keeps writing; so once a WAL is longer than S3COMMIT_RESET_FRAMES, the
 * committer itself checkpoints the little left between two groups (two
 * fsyncs, about once per 32 MiB of WAL) and its next group restarts it.
 *
 * Threads: s3commit_submit from any thread (normally a loop); `done` runs on
 * job->loop, or on the committer thread when job->loop is NULL (tests).
 * s3commit_new/drain/free from one control thread. */
#ifndef SILT_S3_COMMIT_H
#define SILT_S3_COMMIT_H

#include "core/platform.h"
#include "s3/route.h"
#include "s3meta/s3meta.h"

#define S3COMMIT_MAX_BATCH 256 /* jobs per group */
#define S3COMMIT_MAX_CALLS 1024 /* metadata calls per group (past its first job) */
#define S3COMMIT_CKPT_MS 250   /* checkpoint period */
#define S3COMMIT_RESET_FRAMES 8192 /* WAL length (frames) the committer catches up at */
#define S3COMMIT_CATCHUP_FRAMES 256 /* ...once a background pass copied no more than this */

struct loop;
struct s3commit;

enum s3commit_kind {
	S3COMMIT_PUT,
	S3COMMIT_PART,
	S3COMMIT_DELETE,
	S3COMMIT_COMPLETE,
	S3COMMIT_DELETE_MANY,
	S3COMMIT_MPU_CREATE,
	S3COMMIT_MPU_ABORT,
	S3COMMIT_BUCKET_CREATE,
	S3COMMIT_BUCKET_DELETE,
	S3COMMIT_BUCKET_VERSIONING,
};

/* DELETE_MANY: one key. A key the caller refused itself has key NULL and
 * its error in rc; the committer leaves it alone. */
struct s3commit_key {
	const char *key;        /* input */
	const char *version_id; /* input: NULL for the latest */
	int rc;                 /* result (-S3META_E*, -errno) */
	struct s3meta_del del;  /* result */
};

struct s3commit_job {
	enum s3commit_kind kind;
	/* ---- inputs ---- */
	const char *bucket, *key;
	/* PUT, PART: a sealed data put (s3route_put_seal); the committer owns
	 * it from a successful submit on and frees it. */
	struct s3route_put *data;
	struct s3meta_put put;        /* PUT; MPU_CREATE: the object's attributes */
	const char *upload_id;        /* PART, COMPLETE, MPU_ABORT */
	struct s3meta_part_put part;  /* PART */
	const char *version_id;       /* DELETE: NULL for the latest */
	const char *owner;            /* DELETE, DELETE_MANY: owner of a new delete marker;
				       * BUCKET_CREATE: the bucket's owner */
	enum s3meta_versioning versioning; /* BUCKET_VERSIONING: the new state */
	const struct s3meta_part_ref *parts; /* COMPLETE */
	size_t nparts;
	struct s3commit_key *keys;    /* DELETE_MANY: inputs and per-key results */
	size_t nkeys;
	/* ---- results, valid in done ---- */
	int data_rc; /* PUT, PART: the data commit failed (no metadata call made) */
	int rc;      /* the metadata call's result (-S3META_E*, -errno); DELETE_MANY:
		      * 0, or the group's failure (then also in every key's rc) */
	char new_version_id[S3META_VID_SIZE]; /* PUT */
	char new_upload_id[S3META_UPLOAD_ID_SIZE]; /* MPU_CREATE */
	struct s3meta_del del;                /* DELETE */
	struct s3meta_complete complete;      /* COMPLETE */
	/* ---- completion ---- */
	struct loop *loop;
	void (*done)(struct s3commit_job *j);
	void *udata;
	/* ---- private ---- */
	uint8_t loc[S3ROUTE_LOC_MAX];
	size_t loclen;
	struct s3meta_locs freed;
	struct s3commit_job *next;
};

struct s3commit_stats {
	uint64_t jobs;      /* done */
	uint64_t groups;    /* rounds of the committer */
	uint64_t max_group; /* largest group so far */
	uint64_t catch_ups; /* WAL catch-ups between groups */
	uint64_t catch_up_us; /* their total time */
};

/* Starts the committer and checkpointer threads. meta and rt must outlive
 * the committer. 0 or -errno. */
int s3commit_new(struct s3meta *meta, struct s3route *rt, struct s3commit **out);
/* Queues the job. -ESHUTDOWN once s3commit_drain has begun: the job is
 * then untouched and still the caller's (data put included). */
int s3commit_submit(struct s3commit *c, struct s3commit_job *j);
/* Refuses new jobs and returns once every queued job is done (its done run
 * or posted to its loop). Loops must keep running until then. */
void s3commit_drain(struct s3commit *c);
/* Drains, stops and joins the threads, frees c. */
void s3commit_free(struct s3commit *c);
void s3commit_stats(struct s3commit *c, struct s3commit_stats *st);
/* Tests: while held the committer starts no group, so jobs pile up. */
void s3commit_hold(struct s3commit *c, bool hold);

#endif
