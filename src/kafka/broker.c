#include "core/platform.h"
#include "kafka/broker.h"
#include "core/log.h"
#include "core/util.h"
#include "kafka/errors.h"
#include "kafka/pidstate.h"
#include "kafka/records.h"

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

/* The topic table: a sorted array of references, guarded by g_mu. Topic
 * metadata changes are rare (create, delete, add partitions, alter config);
 * lookups happen per produce/fetch, so they take the lock shared. */
static pthread_rwlock_t g_mu = PTHREAD_RWLOCK_INITIALIZER;
static struct ktopic **g_topics;
static int g_ntopics, g_captopics;
static struct kbroker_conf g_conf;
static int g_deleted_seq;

const struct kbroker_conf *kbroker_conf(void)
{
	return &g_conf;
}

bool kafka_topic_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > 249)
		return false;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int topic_cmp(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	int c = memcmp(a, b, SILT_MIN(alen, blen));
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Index of name in g_topics, or -(insertion point)-1. Caller holds g_mu. */
static int topic_index(const char *name, size_t len)
{
	int lo = 0, hi = g_ntopics - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		int c = topic_cmp(name, len, g_topics[mid]->name);
		if (c == 0)
			return mid;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return -lo - 1;
}

static void topic_ref(struct ktopic *t)
{
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
}

static void partition_free(struct kpartition *p)
{
	if (!p)
		return;
	if (p->log) {
		if (p->topic->deleted)
			seglog_destroy(p->log);
		else
			seglog_close(p->log);
	}
	pidstate_free(p->pids);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void topic_free(struct ktopic *t)
{
	for (int i = 0; i < t->npartitions; i++)
		partition_free(t->parts[i]);
	if (t->deleted && t->dir)
		nftw(t->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(t->parts);
	free(t->dir);
	free(t->name);
	free(t);
}

void ktopic_unref(struct ktopic *t)
{
	if (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
		topic_free(t);
}

struct ktopic *kbroker_topic(const char *name, size_t len)
{
	struct ktopic *t = NULL;
	pthread_rwlock_rdlock(&g_mu);
	int i = topic_index(name, len);
	if (i >= 0) {
		t = g_topics[i];
		topic_ref(t);
	}
	pthread_rwlock_unlock(&g_mu);
	return t;
}

struct kpartition *ktopic_partition(struct ktopic *t, int32_t id)
{
	struct kpartition *p = NULL;
	pthread_rwlock_rdlock(&g_mu);
	if (id >= 0 && id < t->npartitions)
		p = t->parts[id];
	pthread_rwlock_unlock(&g_mu);
	return p;
}

int32_t ktopic_npartitions(struct ktopic *t)
{
	pthread_rwlock_rdlock(&g_mu);
	int32_t n = t->npartitions;
	pthread_rwlock_unlock(&g_mu);
	return n;
}

struct ktopic **kbroker_topics(int *n)
{
	pthread_rwlock_rdlock(&g_mu);
	struct ktopic **arr = xmalloc(sizeof(*arr) * (size_t)(g_ntopics ? g_ntopics : 1));
	for (int i = 0; i < g_ntopics; i++) {
		arr[i] = g_topics[i];
		topic_ref(arr[i]);
	}
	*n = g_ntopics;
	pthread_rwlock_unlock(&g_mu);
	return arr;
}

/* seglog options from a topic's effective config. */
static void topic_log_opts(const struct ktopic *t, struct seglog_opts *o)
{
	const struct tconf *d = &g_conf.topic_defaults;
	seglog_opts_default(o);
	o->segment_bytes = (uint64_t)tconf_get(&t->conf, d, TC_SEGMENT_BYTES);
	o->segment_ms = tconf_get(&t->conf, d, TC_SEGMENT_MS);
	o->index_interval_bytes = (uint32_t)tconf_get(&t->conf, d, TC_INDEX_INTERVAL_BYTES);
	int64_t fm = tconf_get(&t->conf, d, TC_FLUSH_MESSAGES);
	int64_t fms = tconf_get(&t->conf, d, TC_FLUSH_MS);
	o->flush_messages = fm == INT64_MAX ? 0 : fm;
	o->flush_ms = fms == INT64_MAX ? 0 : fms;
}

static int partition_open(struct ktopic *t, int32_t id, struct kpartition **out)
{
	char dir[PATH_MAX];
	struct seglog_opts o;
	snprintf(dir, sizeof(dir), "%s/%d", t->dir, id);
	struct kpartition *p = xcalloc(1, sizeof(*p));
	p->topic = t;
	p->id = id;
	pthread_mutex_init(&p->mu, NULL);
	p->pids = pidstate_new();
	topic_log_opts(t, &o);
	int rc = seglog_open(dir, &o, &kbatch_seglog_format, &p->log);
	if (rc != 0) {
		log_error("kafka", "cannot open partition %s-%d in %s: %s", t->name, id, dir,
			  silt_strerror(rc));
		partition_free(p);
		return rc;
	}
	p->high_watermark = seglog_end_offset(p->log);
	*out = p;
	return 0;
}

static int topic_write_meta(struct ktopic *t)
{
	char path[PATH_MAX];
	char *conf = tconf_serialize(&t->conf);
	size_t n = strlen(conf) + 64;
	char *text = xmalloc(n);
	int len = snprintf(text, n, "partitions=%d\n%s", t->npartitions, conf);
	snprintf(path, sizeof(path), "%s/topic.meta", t->dir);
	int rc = write_file_atomic(path, text, (size_t)len);
	free(text);
	free(conf);
	return rc;
}

static void table_insert(struct ktopic *t)
{
	int i = topic_index(t->name, strlen(t->name));
	i = -i - 1;
	if (g_ntopics == g_captopics) {
		g_captopics = g_captopics ? g_captopics * 2 : 64;
		g_topics = xrealloc(g_topics, sizeof(*g_topics) * (size_t)g_captopics);
	}
	memmove(&g_topics[i + 1], &g_topics[i], sizeof(*g_topics) * (size_t)(g_ntopics - i));
	g_topics[i] = t;
	g_ntopics++;
}

static struct ktopic *topic_alloc(const char *name, size_t len)
{
	struct ktopic *t = xcalloc(1, sizeof(*t));
	t->name = xstrndup(name, len);
	t->refs = 1; /* the table's */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/kafka/%s", g_conf.data_dir, t->name);
	t->dir = xstrdup(dir);
	tconf_defaults(&t->conf);
	return t;
}

static int topic_add_partitions(struct ktopic *t, int32_t total)
{
	struct kpartition **parts = xcalloc((size_t)total, sizeof(*parts));
	for (int32_t i = 0; i < t->npartitions; i++)
		parts[i] = t->parts[i];
	for (int32_t i = t->npartitions; i < total; i++) {
		int rc = partition_open(t, i, &parts[i]);
		if (rc != 0) {
			for (int32_t j = t->npartitions; j < i; j++) {
				seglog_destroy(parts[j]->log);
				parts[j]->log = NULL;
				partition_free(parts[j]);
			}
			free(parts);
			return rc;
		}
	}
	/* Readers hold t->npartitions/t->parts under the table lock's read side;
	 * the caller holds the write side. */
	free(t->parts);
	t->parts = parts;
	t->npartitions = total;
	return 0;
}

int kbroker_create_topic(const char *name, size_t len, int32_t npartitions,
			 const struct tconf *overrides, struct ktopic **out)
{
	if (!kafka_topic_name_valid(name, len))
		return KERR_INVALID_TOPIC_EXCEPTION;
	if (npartitions <= 0)
		npartitions = g_conf.num_partitions;
	if (npartitions > 100000)
		return KERR_INVALID_PARTITIONS;
	pthread_rwlock_wrlock(&g_mu);
	int err = KERR_NONE;
	struct ktopic *t = NULL;
	if (topic_index(name, len) >= 0) {
		err = KERR_TOPIC_ALREADY_EXISTS;
		goto out;
	}
	t = topic_alloc(name, len);
	if (overrides)
		t->conf = *overrides;
	if (mkdir_p(t->dir, 0755) != 0 || topic_add_partitions(t, npartitions) != 0 ||
	    topic_write_meta(t) != 0) {
		log_error("kafka", "cannot create topic %s under %s", t->name, t->dir);
		t->deleted = true;
		topic_free(t);
		t = NULL;
		err = KERR_UNKNOWN_SERVER_ERROR;
		goto out;
	}
	table_insert(t);
	log_info("kafka", "created topic %s with %d partition%s", t->name, npartitions,
		 npartitions == 1 ? "" : "s");
	if (out) {
		topic_ref(t);
		*out = t;
	}
out:
	pthread_rwlock_unlock(&g_mu);
	return err;
}

int kbroker_delete_topic(const char *name, size_t len)
{
	pthread_rwlock_wrlock(&g_mu);
	int i = topic_index(name, len);
	if (i < 0) {
		pthread_rwlock_unlock(&g_mu);
		return KERR_UNKNOWN_TOPIC_OR_PARTITION;
	}
	struct ktopic *t = g_topics[i];
	memmove(&g_topics[i], &g_topics[i + 1], sizeof(*g_topics) * (size_t)(g_ntopics - i - 1));
	g_ntopics--;
	/* Move the directory aside first so a crash never resurrects half a
	 * topic, and a topic of the same name can be created at once. */
	char aside[PATH_MAX];
	snprintf(aside, sizeof(aside), "%s/kafka/.deleted-%d-%ld-%s", g_conf.data_dir, ++g_deleted_seq,
		 (long)now_ms(), t->name);
	if (rename(t->dir, aside) == 0) {
		free(t->dir);
		t->dir = xstrdup(aside);
	}
	t->deleted = true;
	pthread_rwlock_unlock(&g_mu);
	log_info("kafka", "deleted topic %s", t->name);
	ktopic_unref(t);
	return KERR_NONE;
}

int kbroker_create_partitions(struct ktopic *t, int32_t total)
{
	if (total <= t->npartitions || total > 100000)
		return KERR_INVALID_PARTITIONS;
	pthread_rwlock_wrlock(&g_mu);
	int32_t before = t->npartitions;
	int rc = t->deleted ? -SILT_ENOENT : topic_add_partitions(t, total);
	if (rc == 0)
		rc = topic_write_meta(t);
	pthread_rwlock_unlock(&g_mu);
	if (rc != 0)
		return KERR_UNKNOWN_SERVER_ERROR;
	log_info("kafka", "topic %s: partitions %d -> %d", t->name, before, total);
	return KERR_NONE;
}

int kbroker_topic_conf_changed(struct ktopic *t)
{
	struct seglog_opts o;
	pthread_rwlock_wrlock(&g_mu);
	int rc = topic_write_meta(t);
	topic_log_opts(t, &o);
	for (int i = 0; i < t->npartitions; i++)
		seglog_set_opts(t->parts[i]->log, &o);
	pthread_rwlock_unlock(&g_mu);
	return rc == 0 ? KERR_NONE : KERR_UNKNOWN_SERVER_ERROR;
}

/* Loads one topic directory written by topic_write_meta. */
static void load_topic(const char *name)
{
	char path[PATH_MAX];
	char *text = NULL;
	size_t len;
	snprintf(path, sizeof(path), "%s/kafka/%s/topic.meta", g_conf.data_dir, name);
	if (!kafka_topic_name_valid(name, strlen(name)) || read_file(path, 1 << 20, &text, &len) != 0) {
		log_warn("kafka", "ignoring %s/kafka/%s: not a complete topic", g_conf.data_dir, name);
		return;
	}
	struct ktopic *t = topic_alloc(name, strlen(name));
	int32_t np = 0;
	char *rest = text;
	if (strncmp(text, "partitions=", 11) == 0) {
		np = (int32_t)strtol(text + 11, &rest, 10);
		if (*rest == '\n')
			rest++;
	}
	if (np <= 0 || np > 100000 || tconf_parse_lines(&t->conf, rest) != 0) {
		log_error("kafka", "topic %s: unreadable %s, skipped", name, path);
		topic_free(t);
		free(text);
		return;
	}
	free(text);
	if (topic_add_partitions(t, np) != 0) {
		log_error("kafka", "topic %s: cannot open its partitions, skipped", name);
		topic_free(t);
		return;
	}
	table_insert(t);
}

int kbroker_open(const struct kbroker_conf *conf)
{
	char path[PATH_MAX];
	g_conf = *conf;
	snprintf(path, sizeof(path), "%s/kafka", g_conf.data_dir);
	int rc = mkdir_p(path, 0755);
	if (rc != 0) {
		log_error("kafka", "cannot create %s: %s", path, silt_strerror(rc));
		return rc;
	}
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	int64_t t0 = mono_ms();
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.') {
			if (strncmp(de->d_name, ".deleted-", 9) == 0) {
				char p2[PATH_MAX + 256];
				if (snprintf(p2, sizeof(p2), "%s/%s", path, de->d_name) < (int)sizeof(p2))
					nftw(p2, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
			}
			continue;
		}
		load_topic(de->d_name);
	}
	closedir(d);
	int64_t nparts = 0;
	for (int i = 0; i < g_ntopics; i++)
		nparts += g_topics[i]->npartitions;
	log_info("kafka", "loaded %d topics, %" PRId64 " partitions from %s in %" PRId64 " ms", g_ntopics,
		 nparts, path, mono_ms() - t0);
	return 0;
}

void kbroker_close(void)
{
	pthread_rwlock_wrlock(&g_mu);
	for (int i = 0; i < g_ntopics; i++)
		ktopic_unref(g_topics[i]);
	free(g_topics);
	g_topics = NULL;
	g_ntopics = g_captopics = 0;
	pthread_rwlock_unlock(&g_mu);
}

/* Runs retention and the flush policy over every partition. Called from the
 * housekeeping thread, never a network loop: deleting segments and fsync
 * may block. */
void kbroker_housekeeping(int64_t now_wall_ms, bool retention)
{
	int n;
	struct ktopic **ts = kbroker_topics(&n);
	const struct tconf *d = &g_conf.topic_defaults;
	for (int i = 0; i < n; i++) {
		struct ktopic *t = ts[i];
		int64_t rms = tconf_get(&t->conf, d, TC_RETENTION_MS);
		int64_t rbytes = tconf_get(&t->conf, d, TC_RETENTION_BYTES);
		int np = ktopic_npartitions(t);
		for (int j = 0; j < np; j++) {
			struct kpartition *p = ktopic_partition(t, j);
			seglog_maybe_flush(p->log, now_wall_ms);
			if (!retention)
				continue;
			int64_t before = seglog_start_offset(p->log);
			int rc = seglog_retain(p->log, rms, rbytes, now_wall_ms);
			if (rc > 0)
				log_info("kafka", "retention: %s-%d deleted %d segment%s, log start %" PRId64
					 " -> %" PRId64, t->name, p->id, rc, rc == 1 ? "" : "s", before,
					 seglog_start_offset(p->log));
			else if (rc < 0)
				log_error("kafka", "retention on %s-%d failed: %s", t->name, p->id,
					  silt_strerror(rc));
		}
		ktopic_unref(t);
	}
	free(ts);
}

/* ---- group commit ------------------------------------------------------ */

/* With fsync_acks, producers wait for their partition to be fsynced. One
 * flusher thread fsyncs every partition asked for since its last round, so
 * all acks that arrive during one fsync share the next one. */
static pthread_mutex_t g_fl_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_fl_cv = PTHREAD_COND_INITIALIZER;
static struct kpartition **g_fl_set;
static int g_fl_n, g_fl_cap;
static bool g_fl_stop, g_fl_running;
static pthread_t g_fl_thread;

void kbroker_request_flush(struct kpartition *p)
{
	pthread_mutex_lock(&g_fl_mu);
	for (int i = 0; i < g_fl_n; i++)
		if (g_fl_set[i] == p)
			goto out;
	if (g_fl_n == g_fl_cap) {
		g_fl_cap = g_fl_cap ? g_fl_cap * 2 : 64;
		g_fl_set = xrealloc(g_fl_set, sizeof(*g_fl_set) * (size_t)g_fl_cap);
	}
	topic_ref(p->topic);
	g_fl_set[g_fl_n++] = p;
	pthread_cond_signal(&g_fl_cv);
out:
	pthread_mutex_unlock(&g_fl_mu);
}

static void *flusher_main(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "silt-flusher");
	struct kpartition **batch = NULL;
	int cap = 0;
	pthread_mutex_lock(&g_fl_mu);
	for (;;) {
		while (g_fl_n == 0 && !g_fl_stop)
			pthread_cond_wait(&g_fl_cv, &g_fl_mu);
		if (g_fl_n == 0 && g_fl_stop)
			break;
		if (cap < g_fl_n) {
			cap = g_fl_n;
			batch = xrealloc(batch, sizeof(*batch) * (size_t)cap);
		}
		int n = g_fl_n;
		memcpy(batch, g_fl_set, sizeof(*batch) * (size_t)n);
		g_fl_n = 0;
		pthread_mutex_unlock(&g_fl_mu);
		for (int i = 0; i < n; i++) {
			int rc = seglog_flush(batch[i]->log, NULL);
			if (rc != 0)
				log_error("kafka", "fsync of %s-%d failed: %s", batch[i]->topic->name,
					  batch[i]->id, silt_strerror(rc));
			ktopic_unref(batch[i]->topic);
		}
		kafka_kick();
		pthread_mutex_lock(&g_fl_mu);
	}
	pthread_mutex_unlock(&g_fl_mu);
	free(batch);
	return NULL;
}

void kbroker_flusher_start(void)
{
	g_fl_stop = false;
	g_fl_running = pthread_create(&g_fl_thread, NULL, flusher_main, NULL) == 0;
}

void kbroker_flusher_stop(void)
{
	if (!g_fl_running)
		return;
	pthread_mutex_lock(&g_fl_mu);
	g_fl_stop = true;
	pthread_cond_signal(&g_fl_cv);
	pthread_mutex_unlock(&g_fl_mu);
	pthread_join(g_fl_thread, NULL);
	g_fl_running = false;
	free(g_fl_set);
	g_fl_set = NULL;
	g_fl_cap = 0;
}
