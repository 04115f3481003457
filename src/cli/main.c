/* main.c - the `silt` command: `silt server` runs the broker in the
 * foreground; `silt bench` runs benchmarks against silt and its peers. */
#include "core/platform.h"
#include "bench/bench.h"
#include "cli/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "kafka/broker.h"
#include "kafka/group.h"
#include "kafka/server.h"
#include "s3/service.h"
#include "s3meta/s3meta.h"

#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <sys/file.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *const version = "0.1.0";

static void server_usage(FILE *f)
{
	fprintf(f,
		"usage: silt server [options]\n"
		"\n"
		"Runs the broker in the foreground until SIGINT/SIGTERM.\n"
		"\n"
		"  --data-dir DIR        where topics and offsets live (default ./silt-data)\n"
		"  --kafka-addr H:P      Kafka listener (default 127.0.0.1:9092)\n"
		"  --s3-addr H:P         S3 listener (default 127.0.0.1:9000); s3.enable=false\n"
		"                        turns the object store off\n"
		"  --config FILE         key=value file with Kafka broker config names, e.g.\n"
		"                        num.partitions, log.segment.bytes, log.retention.ms,\n"
		"                        log.retention.bytes, log.retention.check.interval.ms,\n"
		"                        auto.create.topics.enable, message.max.bytes,\n"
		"                        socket.request.max.bytes, max.connections,\n"
		"                        log.flush.interval.messages, log.flush.interval.ms,\n"
		"                        num.network.threads, group.initial.rebalance.delay.ms,\n"
		"                        silt.fsync.before.ack (fsync every ack, group commit),\n"
		"                        silt.network.sched.batch (default true: network\n"
		"                        threads under SCHED_BATCH, fewer context switches),\n"
		"                        silt.debug.request.timing (log produce requests'\n"
		"                        time in the server, receive to response sent),\n"
		"                        s3.addr, s3.root.user, s3.root.password, s3.domain,\n"
		"                        s3.region (root credentials also from SILT_ROOT_USER\n"
		"                        and SILT_ROOT_PASSWORD)\n"
		"  --set KEY=VALUE       one config key, after the file (repeatable)\n"
		"  --log-level LEVEL     debug, info (default), warn, error\n"
		"  -h, --help            this text\n");
}

static void usage(FILE *f)
{
	fprintf(f,
		"silt %s - a Kafka-compatible durable message log\n"
		"\n"
		"usage: silt <command> [options]\n"
		"\n"
		"commands:\n"
		"  server     run the Kafka broker and the S3 object store (silt server --help)\n"
		"  user       manage S3 users: silt user add|list|delete (silt user --help)\n"
		"  space      disk used by Kafka logs and S3 volumes, and what GC can reclaim\n"
		"  bench      benchmarks against silt and its peers (silt bench --help)\n"
		"  version    print the version\n",
		version);
}

static volatile sig_atomic_t g_stop;
static struct s3svc *g_s3;
static struct loop *g_hk_loop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
	struct loop *l = __atomic_load_n(&g_hk_loop, __ATOMIC_SEQ_CST);
	if (l)
		loop_stop(l);
}

struct housekeeping {
	struct loop *loop;
	struct loop_timer tick;
	int64_t next_retention;
	int64_t interval;
	int64_t next_status;
	const char *data_dir;
};

/* <data-dir>/status: what `silt space` prints, rewritten every 10 s so the
 * command works beside a running server without touching its files. */
static void write_status(const char *data_dir)
{
	char path[PATH_MAX], text[512];
	uint64_t kafka = 0, used = 0, reclaimable = 0;
	int n;
	struct ktopic **ts = kbroker_topics(&n);
	for (int i = 0; i < n; i++) {
		for (int32_t j = 0; j < ktopic_npartitions(ts[i]); j++)
			kafka += seglog_size_bytes(ktopic_partition(ts[i], j)->log);
		ktopic_unref(ts[i]);
	}
	free(ts);
	if (g_s3)
		s3svc_space(g_s3, &used, &reclaimable);
	int len = snprintf(text, sizeof(text),
			   "updated_ms=%" PRId64 "\nkafka.topics=%d\nkafka.log_bytes=%" PRIu64
			   "\ns3.volume_bytes=%" PRIu64 "\ns3.reclaimable_bytes=%" PRIu64 "\n",
			   now_ms(), n, kafka, used, reclaimable);
	snprintf(path, sizeof(path), "%s/status", data_dir);
	write_file_atomic(path, text, (size_t)len);
}

/* Runs on its own thread so that retention (unlink), the flush policy
 * (fsync) and group session expiry never stall a network loop. */
static void hk_tick(struct loop_timer *t)
{
	struct housekeeping *hk = t->data;
	int64_t now = mono_ms();
	bool retention = now >= hk->next_retention;
	if (retention)
		hk->next_retention = now + hk->interval;
	kbroker_housekeeping(now_ms(), retention);
	kgroup_tick(now_ms());
	if (g_s3)
		s3svc_housekeeping(g_s3, now);
	if (now >= hk->next_status) {
		hk->next_status = now + 10000;
		write_status(hk->data_dir);
	}
	loop_timer_start(hk->loop, t, 100);
}

static void *hk_main(void *arg)
{
	struct housekeeping *hk = arg;
	pthread_setname_np(pthread_self(), "silt-housekeep");
	loop_timer_start(hk->loop, &hk->tick, 100);
	loop_run(hk->loop);
	return NULL;
}

/* One server per data directory: a second one would recover the first's
 * live segments as if they were torn. Kafka refuses the same way (.lock).
 * The lock lives as long as the returned fd. */
static int lock_data_dir(const char *dir)
{
	char path[PATH_MAX];
	int rc = mkdir_p(dir, 0755);
	if (rc != 0) {
		log_error("silt", "cannot create %s: %s", dir, silt_strerror(rc));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/.lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_error("silt", "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		log_error("silt", "%s is in use by another silt process (%s is locked)", dir, path);
		close(fd);
		return -1;
	}
	return fd;
}

static int cmd_server(int argc, char **argv)
{
	struct silt_conf sconf;
	config_defaults(&sconf);
	struct kbroker_conf *kc = &sconf.k;
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "kafka-addr", required_argument, NULL, 'k' },
		{ "s3-addr", required_argument, NULL, '3' },
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 's' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *data_dir = NULL, *kafka_addr = NULL, *s3_addr = NULL, *config = NULL;
	char *sets[64];
	int nsets = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			data_dir = optarg;
			break;
		case 'k':
			kafka_addr = optarg;
			break;
		case '3':
			s3_addr = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 's':
			if (nsets == (int)SILT_ARRAY_LEN(sets)) {
				fprintf(stderr, "silt: too many --set\n");
				return 2;
			}
			sets[nsets++] = optarg;
			break;
		case 'l':
			if (strcmp(optarg, "debug") == 0)
				log_set_level(LOG_DEBUG);
			else if (strcmp(optarg, "info") == 0)
				log_set_level(LOG_INFO);
			else if (strcmp(optarg, "warn") == 0)
				log_set_level(LOG_WARN);
			else if (strcmp(optarg, "error") == 0)
				log_set_level(LOG_ERROR);
			else {
				fprintf(stderr, "silt: unknown log level '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h':
			server_usage(stdout);
			return 0;
		default:
			server_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "silt: unexpected argument '%s'\n", argv[optind]);
		server_usage(stderr);
		return 2;
	}
	if (config && config_load_file(&sconf, config) != 0)
		return 2;
	for (int i = 0; i < nsets; i++) {
		char *eq = strchr(sets[i], '=');
		if (!eq) {
			fprintf(stderr, "silt: --set wants KEY=VALUE, got '%s'\n", sets[i]);
			return 2;
		}
		*eq = '\0';
		int rc = config_set(&sconf, sets[i], eq + 1);
		if (rc != 0) {
			fprintf(stderr, "silt: --set %s: %s\n", sets[i],
				rc == -SILT_ENOENT ? "unknown key" : "invalid value");
			return 2;
		}
	}
	if (data_dir && config_set(&sconf, "data.dir", data_dir) != 0) {
		fprintf(stderr, "silt: invalid --data-dir\n");
		return 2;
	}
	if (kafka_addr && config_parse_addr(kafka_addr, kc->kafka_host, sizeof(kc->kafka_host), &kc->kafka_port) != 0) {
		fprintf(stderr, "silt: --kafka-addr wants HOST:PORT, got '%s'\n", kafka_addr);
		return 2;
	}
	if (s3_addr && config_set(&sconf, "s3.addr", s3_addr) != 0) {
		fprintf(stderr, "silt: --s3-addr wants HOST:PORT, got '%s'\n", s3_addr);
		return 2;
	}
	const char *env_user = getenv("SILT_ROOT_USER"), *env_pass = getenv("SILT_ROOT_PASSWORD");
	if ((env_user && config_set(&sconf, "s3.root.user", env_user) != 0) ||
	    (env_pass && config_set(&sconf, "s3.root.password", env_pass) != 0)) {
		fprintf(stderr, "silt: SILT_ROOT_USER needs 3+ characters, SILT_ROOT_PASSWORD 8+\n");
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	/* Request frames of up to a few MiB are allocated and freed at the
	 * produce rate; glibc would mmap and munmap each one (page faults and
	 * zeroing per request). Keep them in the heap, where they are reused. */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 128 << 20);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* Signals are caught from the start: a SIGTERM during recovery or
	 * startup still ends in a clean shutdown once startup is done. */
	struct housekeeping hk = { 0 };
	hk.loop = loop_new();
	hk.interval = kc->log_retention_check_interval_ms;
	hk.data_dir = kc->data_dir;
	hk.next_retention = mono_ms() + SILT_MIN(hk.interval, 1000);
	loop_timer_init(&hk.tick, hk_tick, &hk);
	g_hk_loop = hk.loop;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Every thread started from here on inherits a mask that blocks the
	 * stop signals, so the handler only ever runs on this thread -- never
	 * on another one while this one frees the housekeeping loop at
	 * shutdown. A signal that arrives during startup stays pending until
	 * the unblock before hk_main, which then returns at once. */
	sigset_t stopsigs;
	sigemptyset(&stopsigs);
	sigaddset(&stopsigs, SIGINT);
	sigaddset(&stopsigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stopsigs, NULL);

	int exit_code = 1, lock_fd = -1, rc;
	bool broker_open = false, groups_open = false;
	struct kserver *srv = NULL;
	log_info("silt", "silt %s starting: data in %s, %d network threads", version, kc->data_dir,
		 kc->nthreads);
	if ((lock_fd = lock_data_dir(kc->data_dir)) < 0)
		goto out;
	if (kbroker_open(kc) != 0)
		goto out;
	broker_open = true;
	if ((rc = kgroup_init(kc->data_dir)) != 0) {
		log_error("silt", "cannot load consumer group offsets: %s", silt_strerror(rc));
		goto out;
	}
	groups_open = true;
	if (kc->fsync_acks)
		kbroker_flusher_start();
	if ((rc = kserver_start(kc->kafka_host, kc->kafka_port, kc->nthreads, kc->sched_batch, &srv)) != 0) {
		log_error("silt", "cannot listen on %s:%d: %s", kc->kafka_host, kc->kafka_port,
			  silt_strerror(rc));
		goto out;
	}
	log_info("kafka", "listening on %s:%d", kc->kafka_host, kc->kafka_port);
	if (sconf.s3_enabled) {
		struct s3svc_conf s3c = {
			.host = sconf.s3_host,
			.port = sconf.s3_port,
			.nthreads = kc->nthreads,
			.sched_batch = kc->sched_batch,
			.data_dir = kc->data_dir,
			.root_user = sconf.root_user,
			.root_password = sconf.root_password,
			.domain = sconf.s3_domain,
			.region = sconf.s3_region,
		};
		if (s3svc_start(&s3c, &g_s3) != 0)
			goto out;
		log_info("s3", "listening on %s:%d (path style, and virtual hosts under %s)", sconf.s3_host,
			 sconf.s3_port, sconf.s3_domain);
		log_info("s3", "root credentials: access key %s, secret key %s%s", sconf.root_user,
			 sconf.root_password,
			 sconf.root_from_default ? " (the defaults: set s3.root.user/s3.root.password or "
						   "SILT_ROOT_USER/SILT_ROOT_PASSWORD)" : "");
	}
	pthread_sigmask(SIG_UNBLOCK, &stopsigs, NULL);
	if (g_stop)
		loop_stop(hk.loop);
	hk_main(&hk);
	log_info("silt", "shutting down");
	exit_code = 0;
out:
	s3svc_stop(g_s3);
	g_s3 = NULL;
	/* Loops first (no new requests, pending ones cancelled), then the
	 * flusher, which may still kafka_kick() the stopped loops: the server
	 * is freed only after it. */
	kserver_stop(srv);
	kbroker_flusher_stop();
	if (groups_open)
		kgroup_shutdown();
	kserver_free(srv);
	if (broker_open)
		kbroker_close();
	__atomic_store_n(&g_hk_loop, NULL, __ATOMIC_SEQ_CST);
	loop_free(hk.loop);
	if (lock_fd >= 0)
		close(lock_fd);
	if (exit_code == 0)
		log_info("silt", "stopped cleanly");
	return exit_code;
}

/* `silt space`: disk used by Kafka logs and S3 volumes, and what GC can
 * reclaim, as the running (or last) server reported it. */
static int cmd_space(int argc, char **argv)
{
	const char *data_dir = argc >= 3 && strcmp(argv[1], "--data-dir") == 0 ? argv[2] : "./silt-data";
	if (argc > 1 && !(argc == 3 && strcmp(argv[1], "--data-dir") == 0)) {
		fprintf(stderr, "usage: silt space [--data-dir DIR]\n");
		return 2;
	}
	char path[PATH_MAX], *text;
	size_t len;
	snprintf(path, sizeof(path), "%s/status", data_dir);
	int rc = read_file(path, 64 * 1024, &text, &len);
	if (rc != 0) {
		fprintf(stderr, "silt: no status in %s (%s): is a server running there?\n", data_dir,
			silt_strerror(rc));
		return 1;
	}
	uint64_t v[4] = { 0 };
	int64_t updated = 0;
	static const char *const keys[] = { "kafka.log_bytes=", "s3.volume_bytes=", "s3.reclaimable_bytes=",
					    "kafka.topics=" };
	for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, "updated_ms=", 11) == 0)
			updated = strtoll(line + 11, NULL, 10);
		for (int k = 0; k < 4; k++)
			if (strncmp(line, keys[k], strlen(keys[k])) == 0)
				v[k] = strtoull(line + strlen(keys[k]), NULL, 10);
	}
	free(text);
	printf("kafka logs:        %12.1f MiB in %" PRIu64 " topics\n", (double)v[0] / 1048576, v[3]);
	printf("s3 volumes:        %12.1f MiB\n", (double)v[1] / 1048576);
	printf("s3 reclaimable:    %12.1f MiB (garbage in sealed volumes; GC compacts under 50%% live)\n",
	       (double)v[2] / 1048576);
	printf("(reported %.0f s ago)\n", (double)(now_ms() - updated) / 1000);
	return 0;
}

static void user_usage(FILE *f)
{
	fprintf(f, "usage: silt user [--data-dir DIR] add ACCESS_KEY SECRET_KEY [DISPLAY_NAME]\n"
		   "       silt user [--data-dir DIR] list\n"
		   "       silt user [--data-dir DIR] delete ACCESS_KEY\n"
		   "\n"
		   "Manages S3 users in DIR/s3/meta.db (default ./silt-data); a running server\n"
		   "picks changes up within two seconds. A user sees only the buckets it owns.\n");
}

/* `silt user ...`: S3 users, kept by the metadata service. */
static int cmd_user(int argc, char **argv)
{
	const char *data_dir = "./silt-data";
	int i = 1;
	if (i + 1 < argc && strcmp(argv[i], "--data-dir") == 0) {
		data_dir = argv[i + 1];
		i += 2;
	}
	if (i >= argc || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
		user_usage(i >= argc ? stderr : stdout);
		return i >= argc ? 2 : 0;
	}
	const char *verb = argv[i++];
	int nargs = argc - i;
	if (!((strcmp(verb, "add") == 0 && (nargs == 2 || nargs == 3)) || (strcmp(verb, "list") == 0 && nargs == 0) ||
	      (strcmp(verb, "delete") == 0 && nargs == 1))) {
		user_usage(stderr);
		return 2;
	}
	char dir[PATH_MAX], path[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/s3", data_dir);
	if (mkdir_p(dir, 0755) != 0) {
		fprintf(stderr, "silt: cannot create %s\n", dir);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/meta.db", dir);
	log_set_level(LOG_WARN);
	struct s3meta *m = NULL;
	struct s3meta_config mc = { .path = path };
	int rc = s3meta_open(&mc, &m);
	if (rc != 0) {
		fprintf(stderr, "silt: cannot open %s: %s\n", path, silt_strerror(rc));
		return 1;
	}
	if (strcmp(verb, "add") == 0) {
		rc = s3meta_user_create(m, argv[i], argv[i + 1], nargs == 3 ? argv[i + 2] : argv[i]);
		if (rc == 0)
			printf("added user %s\n", argv[i]);
	} else if (strcmp(verb, "delete") == 0) {
		rc = s3meta_user_delete(m, argv[i]);
		if (rc == 0)
			printf("deleted user %s\n", argv[i]);
	} else {
		struct s3meta_user *us = NULL;
		size_t n = 0;
		rc = s3meta_user_list(m, &us, &n);
		for (size_t k = 0; rc == 0 && k < n; k++)
			printf("%s\t%s\n", us[k].access_key, us[k].display_name);
		free(us);
	}
	if (rc != 0) {
		const struct s3meta_errinfo *ei = s3meta_errinfo(rc);
		fprintf(stderr, "silt: %s: %s\n", ei ? ei->code : "error", ei ? ei->message : silt_strerror(rc));
	}
	s3meta_close(m);
	return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "server") == 0)
		return cmd_server(argc - 1, argv + 1);
	if (strcmp(cmd, "space") == 0)
		return cmd_space(argc - 1, argv + 1);
	if (strcmp(cmd, "user") == 0)
		return cmd_user(argc - 1, argv + 1);
	if (strcmp(cmd, "bench") == 0)
		return bench_main(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("silt %s\n", version);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "silt: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
