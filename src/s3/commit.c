/* commit.c - the S3 group committer and the WAL checkpointer (see commit.h). */
#include "core/platform.h"
#include "s3/commit.h"

#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"

#include <pthread.h>
#include <time.h>

struct s3commit {
	struct s3meta *meta;
	struct s3route *rt;

	pthread_mutex_t mu;
	pthread_cond_t work_cv; /* the committer waits for jobs (or the end of a hold) */
	pthread_cond_t idle_cv; /* s3commit_drain waits for an empty queue */
	struct s3commit_job *head, *tail;
	bool sleeping; /* the committer waits on work_cv */
	bool busy;     /* a group is being committed */
	bool closing;  /* s3commit_drain began: no new jobs */
	bool stopping; /* the committer thread ends once the queue is empty */
	bool held;
	/* The checkpointer asks for a catch-up between groups (catch_up). */
	bool reset_dn, reset_meta;
	struct s3commit_stats st;
	pthread_t thread;

	pthread_mutex_t ckpt_mu;
	pthread_cond_t ckpt_cv;
	bool ckpt_stop;
	pthread_t ckpt_thread;
};

/* ---- one group ----------------------------------------------------------- */

static int meta_call(struct s3commit *c, struct s3commit_job *j)
{
	switch (j->kind) {
	case S3COMMIT_PUT:
		return s3meta_object_put(c->meta, j->bucket, j->key, &j->put, j->new_version_id, &j->freed);
	case S3COMMIT_PART:
		return s3meta_mpu_put_part(c->meta, j->bucket, j->key, j->upload_id, &j->part, &j->freed);
	case S3COMMIT_DELETE:
		return s3meta_object_delete(c->meta, j->bucket, j->key, j->version_id, j->owner, &j->del,
					    &j->freed);
	case S3COMMIT_COMPLETE:
		return s3meta_mpu_complete(c->meta, j->bucket, j->key, j->upload_id, j->parts, j->nparts, 0,
					   &j->complete, &j->freed);
	case S3COMMIT_DELETE_MANY:
		/* Each key is a call of its own in the group: a key that fails
		 * is undone alone (a savepoint when the group runs isolated),
		 * as a job would be. What the successful ones free shares the
		 * job's list. */
		for (size_t k = 0; k < j->nkeys; k++) {
			struct s3commit_key *ky = &j->keys[k];
			if (ky->key)
				ky->rc = s3meta_object_delete(c->meta, j->bucket, ky->key, ky->version_id, j->owner,
							      &ky->del, &j->freed);
		}
		return 0;
	case S3COMMIT_MPU_CREATE:
		return s3meta_mpu_create(c->meta, j->bucket, j->key, &j->put, j->new_upload_id);
	case S3COMMIT_MPU_ABORT:
		return s3meta_mpu_abort(c->meta, j->bucket, j->key, j->upload_id, &j->freed);
	case S3COMMIT_BUCKET_CREATE:
		return s3meta_bucket_create(c->meta, j->bucket, j->owner, 0);
	case S3COMMIT_BUCKET_DELETE:
		return s3meta_bucket_delete(c->meta, j->bucket);
	case S3COMMIT_BUCKET_VERSIONING:
		return s3meta_bucket_versioning_set(c->meta, j->bucket, j->versioning);
	}
	return -S3META_EINTERNAL;
}

/* How many metadata calls the job makes (S3COMMIT_MAX_CALLS). */
static size_t job_calls(const struct s3commit_job *j)
{
	return j->kind == S3COMMIT_DELETE_MANY && j->nkeys > 1 ? j->nkeys : 1;
}

static bool has_data(const struct s3commit_job *j)
{
	return j->kind == S3COMMIT_PUT || j->kind == S3COMMIT_PART;
}

/* Phase 1: every data put of the group in one data-node transaction. */
static void commit_data(struct s3commit *c, struct s3commit_job **jobs, size_t n)
{
	struct s3route_commit dc[S3COMMIT_MAX_BATCH];
	size_t map[S3COMMIT_MAX_BATCH];
	size_t nd = 0;
	for (size_t i = 0; i < n; i++) {
		struct s3commit_job *j = jobs[i];
		if (!has_data(j))
			continue;
		if (!j->data) {
			j->data_rc = -SILT_EINVAL;
			continue;
		}
		dc[nd].put = j->data;
		j->data = NULL;
		map[nd++] = i;
	}
	if (nd == 0)
		return;
	s3route_put_commit_many(c->rt, dc, nd);
	for (size_t k = 0; k < nd; k++) {
		struct s3commit_job *j = jobs[map[k]];
		j->data_rc = dc[k].rc;
		if (dc[k].rc != 0)
			continue;
		memcpy(j->loc, dc[k].loc, dc[k].loclen);
		j->loclen = dc[k].loclen;
		if (j->kind == S3COMMIT_PUT) {
			j->put.locator = j->loc;
			j->put.locator_len = j->loclen;
		} else {
			j->part.locator = j->loc;
			j->part.locator_len = j->loclen;
		}
	}
}

/* Phase 2: every metadata call in one transaction. Optimistic first (no
 * savepoints); a group that a call spoiled by failing after it wrote is
 * run again with each call in its own savepoint. */
static void commit_meta(struct s3commit *c, struct s3commit_job **jobs, size_t n)
{
	int brc = 0;
	for (int isolated = 0; isolated < 2; isolated++) {
		for (size_t i = 0; i < n; i++) {
			struct s3commit_job *j = jobs[i];
			j->rc = 0;
			s3meta_locs_destroy(&j->freed);
			if (j->kind == S3COMMIT_DELETE_MANY)
				for (size_t k = 0; k < j->nkeys; k++)
					if (j->keys[k].key)
						j->keys[k].rc = 0;
		}
		brc = s3meta_batch_begin(c->meta, isolated);
		if (brc == 0) {
			for (size_t i = 0; i < n; i++)
				if (jobs[i]->data_rc == 0)
					jobs[i]->rc = meta_call(c, jobs[i]);
			brc = s3meta_batch_end(c->meta);
		}
		if (brc != -EAGAIN)
			break;
		log_warn("s3", "a write failed half-way in a group of %zu; running the group again, isolated", n);
	}
	if (brc == 0)
		return;
	log_error("s3", "group commit of %zu metadata changes failed: %s", n, s3meta_errinfo(brc)->message);
	for (size_t i = 0; i < n; i++) {
		struct s3commit_job *j = jobs[i];
		if (j->data_rc != 0)
			continue;
		if (j->rc == 0)
			j->rc = brc;
		if (j->kind == S3COMMIT_DELETE_MANY)
			for (size_t k = 0; k < j->nkeys; k++)
				if (j->keys[k].key && j->keys[k].rc == 0)
					j->keys[k].rc = brc;
		/* Rolled back: what the calls listed is still referenced. */
		s3meta_locs_destroy(&j->freed);
	}
}

static void add_blob(struct s3meta_blob **v, size_t *n, size_t *cap, const uint8_t *p, size_t len)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = (struct s3meta_blob){ (uint8_t *)(uintptr_t)p, len };
}

/* Phase 3: the data no committed version references any more. */
static void free_unreferenced(struct s3commit *c, struct s3commit_job **jobs, size_t n)
{
	struct s3meta_blob *v = NULL;
	size_t nv = 0, cap = 0;
	for (size_t i = 0; i < n; i++) {
		struct s3commit_job *j = jobs[i];
		if (j->rc != 0 && j->loclen > 0)
			add_blob(&v, &nv, &cap, j->loc, j->loclen); /* the new data is nobody's */
		if (j->rc == 0)
			for (size_t k = 0; k < j->freed.n; k++)
				add_blob(&v, &nv, &cap, j->freed.v[k].p, j->freed.v[k].len);
	}
	if (nv > 0) {
		int rc = s3route_free_many(c->rt, v, nv);
		if (rc != 0)
			log_warn("s3", "cannot free the data of %zu replaced or unused objects: %s", nv,
				 silt_strerror(rc));
	}
	free(v);
	for (size_t i = 0; i < n; i++)
		s3meta_locs_destroy(&jobs[i]->freed);
}

static void run_chain(void *arg)
{
	struct s3commit_job *j = arg;
	while (j) {
		/* done may free the job (the request may complete at once). */
		struct s3commit_job *next = j->next;
		j->done(j);
		j = next;
	}
}

/* Phase 4: one post per loop, the jobs in their group order. */
static void complete(struct s3commit_job **jobs, size_t n)
{
	struct s3commit_job *heads[S3COMMIT_MAX_BATCH], *tails[S3COMMIT_MAX_BATCH];
	size_t nchains = 0;
	for (size_t i = 0; i < n; i++) {
		struct s3commit_job *j = jobs[i];
		j->next = NULL;
		size_t k = 0;
		while (k < nchains && heads[k]->loop != j->loop)
			k++;
		if (k == nchains)
			heads[nchains++] = j;
		else
			tails[k]->next = j;
		tails[k] = j;
	}
	for (size_t k = 0; k < nchains; k++) {
		if (heads[k]->loop)
			loop_post(heads[k]->loop, run_chain, heads[k]);
		else
			run_chain(heads[k]);
	}
}

static void run_group(struct s3commit *c, struct s3commit_job **jobs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct s3commit_job *j = jobs[i];
		j->data_rc = 0;
		j->rc = 0;
		j->loclen = 0;
		j->new_version_id[0] = '\0';
		j->new_upload_id[0] = '\0';
		memset(&j->freed, 0, sizeof(j->freed));
	}
	commit_data(c, jobs, n);
	commit_meta(c, jobs, n);
	free_unreferenced(c, jobs, n);
	/* Counted before the answers go out: whoever sees an answer sees it
	 * counted. */
	pthread_mutex_lock(&c->mu);
	c->st.jobs += n;
	c->st.groups++;
	c->st.max_group = SILT_MAX(c->st.max_group, (uint64_t)n);
	pthread_mutex_unlock(&c->mu);
	complete(jobs, n);
}

/* A WAL starts over only when a writer begins while everything in it is
 * checkpointed, which the checkpointer thread alone never sees happen: it
 * copies the bulk in the background, but the committer keeps appending.
 * So when the WAL has grown long, the committer checkpoints what little
 * the checkpointer has not copied yet, between two groups: its next group
 * then restarts the WAL. This costs the committer the checkpoint's two
 * fsyncs about once per S3COMMIT_RESET_FRAMES frames of WAL. */
static void catch_up(struct s3commit *c, bool dn, bool meta)
{
	int64_t t0 = mono_us();
	if (dn)
		s3route_checkpoint(c->rt, NULL, NULL);
	if (meta)
		s3meta_checkpoint(c->meta, NULL, NULL);
	int64_t us = mono_us() - t0;
	pthread_mutex_lock(&c->mu);
	c->st.catch_ups++;
	c->st.catch_up_us += (uint64_t)us;
	pthread_mutex_unlock(&c->mu);
}

static void *committer_main(void *arg)
{
	struct s3commit *c = arg;
	struct s3commit_job *jobs[S3COMMIT_MAX_BATCH];
	pthread_setname_np(pthread_self(), "s3-commit");
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!(c->head && !c->held) && !(c->stopping && !c->head)) {
			c->sleeping = true;
			pthread_cond_wait(&c->work_cv, &c->mu);
			c->sleeping = false;
		}
		if (!c->head)
			break; /* stopping */
		size_t n = 0, calls = 0;
		while (c->head && n < S3COMMIT_MAX_BATCH &&
		       (n == 0 || calls + job_calls(c->head) <= S3COMMIT_MAX_CALLS)) {
			calls += job_calls(c->head);
			jobs[n++] = c->head;
			c->head = c->head->next;
		}
		if (!c->head)
			c->tail = NULL;
		c->busy = true;
		pthread_mutex_unlock(&c->mu);

		run_group(c, jobs, n);

		pthread_mutex_lock(&c->mu);
		if (c->reset_dn || c->reset_meta) {
			bool dn = c->reset_dn, meta = c->reset_meta;
			c->reset_dn = c->reset_meta = false;
			pthread_mutex_unlock(&c->mu);
			catch_up(c, dn, meta);
			pthread_mutex_lock(&c->mu);
		}
		c->busy = false;
		if (!c->head)
			pthread_cond_broadcast(&c->idle_cv);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* ---- checkpoints ------------------------------------------------------------ */

/* One database's background checkpoint. When its WAL has grown long, the
 * passes are repeated until one finds little new to copy (each copies what
 * was written during the previous one, so they shrink fast), and then the
 * committer is asked for the catch-up that lets the WAL start over. */
static void ckpt_one(struct s3commit *c, bool meta)
{
	int nlog = 0, done = 0, prev = 0;
	for (int pass = 0; pass < 6; pass++) {
		prev = done;
		int rc = meta ? s3meta_checkpoint(c->meta, &nlog, &done) : s3route_checkpoint(c->rt, &nlog, &done);
		if (rc != 0 || nlog <= S3COMMIT_RESET_FRAMES)
			return;
		if (pass > 0 && done - prev <= S3COMMIT_CATCHUP_FRAMES)
			break;
	}
	pthread_mutex_lock(&c->mu);
	if (meta)
		c->reset_meta = true;
	else
		c->reset_dn = true;
	pthread_mutex_unlock(&c->mu);
}

static void *ckpt_main(void *arg)
{
	struct s3commit *c = arg;
	pthread_setname_np(pthread_self(), "s3-checkpoint");
	pthread_mutex_lock(&c->ckpt_mu);
	while (!c->ckpt_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)S3COMMIT_CKPT_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&c->ckpt_cv, &c->ckpt_mu, &ts);
		if (c->ckpt_stop)
			break;
		pthread_mutex_unlock(&c->ckpt_mu);
		ckpt_one(c, false);
		ckpt_one(c, true);
		pthread_mutex_lock(&c->ckpt_mu);
	}
	pthread_mutex_unlock(&c->ckpt_mu);
	return NULL;
}

/* ---- lifecycle -------------------------------------------------------------- */

int s3commit_new(struct s3meta *meta, struct s3route *rt, struct s3commit **out)
{
	struct s3commit *c = xcalloc(1, sizeof(*c));
	pthread_condattr_t ca;
	int rc;
	c->meta = meta;
	c->rt = rt;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->work_cv, NULL);
	pthread_cond_init(&c->idle_cv, NULL);
	pthread_mutex_init(&c->ckpt_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->ckpt_cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((rc = pthread_create(&c->thread, NULL, committer_main, c)) != 0) {
		free(c);
		return -rc;
	}
	if ((rc = pthread_create(&c->ckpt_thread, NULL, ckpt_main, c)) != 0) {
		pthread_mutex_lock(&c->mu);
		c->stopping = true;
		pthread_cond_signal(&c->work_cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->thread, NULL);
		free(c);
		return -rc;
	}
	*out = c;
	return 0;
}

int s3commit_submit(struct s3commit *c, struct s3commit_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->closing) {
		pthread_mutex_unlock(&c->mu);
		return -ESHUTDOWN;
	}
	if (c->tail)
		c->tail->next = j;
	else
		c->head = j;
	c->tail = j;
	/* A busy committer looks at the queue again when its group is done. */
	if (c->sleeping)
		pthread_cond_signal(&c->work_cv);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

void s3commit_drain(struct s3commit *c)
{
	pthread_mutex_lock(&c->mu);
	c->closing = true;
	c->held = false;
	pthread_cond_signal(&c->work_cv);
	while (c->head || c->busy)
		pthread_cond_wait(&c->idle_cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

void s3commit_free(struct s3commit *c)
{
	if (!c)
		return;
	s3commit_drain(c);
	pthread_mutex_lock(&c->mu);
	if (c->st.groups > 0)
		log_info("s3", "committer: %" PRIu64 " writes in %" PRIu64 " groups (%.1f per group, at most %" PRIu64
			 "); %" PRIu64 " WAL catch-ups, %.1f ms each",
			 c->st.jobs, c->st.groups, (double)c->st.jobs / (double)c->st.groups, c->st.max_group,
			 c->st.catch_ups, c->st.catch_ups ? (double)c->st.catch_up_us / 1000.0 / (double)c->st.catch_ups : 0.0);
	c->stopping = true;
	pthread_cond_signal(&c->work_cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	pthread_mutex_lock(&c->ckpt_mu);
	c->ckpt_stop = true;
	pthread_cond_signal(&c->ckpt_cv);
	pthread_mutex_unlock(&c->ckpt_mu);
	pthread_join(c->ckpt_thread, NULL);
	pthread_cond_destroy(&c->ckpt_cv);
	pthread_mutex_destroy(&c->ckpt_mu);
	pthread_cond_destroy(&c->idle_cv);
	pthread_cond_destroy(&c->work_cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void s3commit_stats(struct s3commit *c, struct s3commit_stats *st)
{
	pthread_mutex_lock(&c->mu);
	*st = c->st;
	pthread_mutex_unlock(&c->mu);
}

void s3commit_hold(struct s3commit *c, bool hold)
{
	pthread_mutex_lock(&c->mu);
	c->held = hold;
	if (!hold)
		pthread_cond_signal(&c->work_cv);
	pthread_mutex_unlock(&c->mu);
}
