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

#include <getopt.h>
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
		"  --config FILE         key=value file with Kafka broker config names, e.g.\n"
		"                        num.partitions, log.segment.bytes, log.retention.ms,\n"
		"                        log.retention.bytes, log.retention.check.interval.ms,\n"
		"                        auto.create.topics.enable, message.max.bytes,\n"
		"                        socket.request.max.bytes, max.connections,\n"
		"                        log.flush.interval.messages, log.flush.interval.ms,\n"
		"                        num.network.threads, group.initial.rebalance.delay.ms,\n"
		"                        silt.fsync.before.ack (fsync every ack, group commit)\n"
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
		"  server     run the broker (silt server --help)\n"
		"  bench      benchmarks against silt and its peers (silt bench --help)\n"
		"  version    print the version\n",
		version);
}

static volatile sig_atomic_t g_stop;
static struct loop *g_hk_loop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
	if (g_hk_loop)
		loop_stop(g_hk_loop);
}

struct housekeeping {
	struct loop *loop;
	struct loop_timer tick;
	int64_t next_retention;
	int64_t interval;
};

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

static int cmd_server(int argc, char **argv)
{
	struct kbroker_conf conf;
	config_defaults(&conf);
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "kafka-addr", required_argument, NULL, 'k' },
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 's' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *data_dir = NULL, *kafka_addr = NULL, *config = NULL;
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
	if (config && config_load_file(&conf, config) != 0)
		return 2;
	for (int i = 0; i < nsets; i++) {
		char *eq = strchr(sets[i], '=');
		if (!eq) {
			fprintf(stderr, "silt: --set wants KEY=VALUE, got '%s'\n", sets[i]);
			return 2;
		}
		*eq = '\0';
		int rc = config_set(&conf, sets[i], eq + 1);
		if (rc != 0) {
			fprintf(stderr, "silt: --set %s: %s\n", sets[i],
				rc == -SILT_ENOENT ? "unknown key" : "invalid value");
			return 2;
		}
	}
	if (data_dir && config_set(&conf, "data.dir", data_dir) != 0) {
		fprintf(stderr, "silt: invalid --data-dir\n");
		return 2;
	}
	if (kafka_addr && config_set_kafka_addr(&conf, kafka_addr) != 0) {
		fprintf(stderr, "silt: --kafka-addr wants HOST:PORT, got '%s'\n", kafka_addr);
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	log_info("silt", "silt %s starting: data in %s, %d network threads", version, conf.data_dir,
		 conf.nthreads);
	int rc = kbroker_open(&conf);
	if (rc != 0)
		return 1;
	rc = kgroup_init(conf.data_dir);
	if (rc != 0) {
		log_error("silt", "cannot load consumer group offsets: %s", silt_strerror(rc));
		kbroker_close();
		return 1;
	}
	if (conf.fsync_acks)
		kbroker_flusher_start();
	struct kserver *srv = NULL;
	rc = kserver_start(conf.kafka_host, conf.kafka_port, conf.nthreads, &srv);
	if (rc != 0) {
		log_error("silt", "cannot listen on %s:%d: %s", conf.kafka_host, conf.kafka_port,
			  silt_strerror(rc));
		kbroker_flusher_stop();
		kgroup_shutdown();
		kbroker_close();
		return 1;
	}
	log_info("kafka", "listening on %s:%d", conf.kafka_host, conf.kafka_port);

	struct housekeeping hk = { 0 };
	hk.loop = loop_new();
	hk.interval = conf.log_retention_check_interval_ms;
	hk.next_retention = mono_ms() + SILT_MIN(hk.interval, 1000);
	loop_timer_init(&hk.tick, hk_tick, &hk);
	g_hk_loop = hk.loop;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (g_stop)
		loop_stop(hk.loop);
	hk_main(&hk);

	log_info("silt", "shutting down");
	kserver_stop(srv);
	kbroker_flusher_stop();
	kgroup_shutdown();
	kbroker_close();
	loop_free(hk.loop);
	log_info("silt", "stopped cleanly");
	return 0;
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
