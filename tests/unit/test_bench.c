/* test_bench.c - `silt bench` argument parsing and statistics; no servers. */
#include "core/platform.h"
#include "bench/bench.h"
#include "test.h"

/* Parses a NULL-terminated argument list into o. */
static int parse(struct bench_opts *o, char *err, size_t errlen, const char *const *args)
{
	char *argv[64];
	int argc = 0;
	for (; args[argc] && argc < 63; argc++)
		argv[argc] = (char *)(uintptr_t)args[argc];
	argv[argc] = NULL;
	return bench_parse_args(argc, argv, o, err, errlen);
}

#define PARSE(o, err, ...) parse((o), (err), sizeof(err), (const char *const[]){ __VA_ARGS__, NULL })

TEST(bench_parse_kafka_full)
{
	struct bench_opts o;
	char err[256];
	int rc = PARSE(&o, err, "bench", "kafka", "--brokers", "127.0.0.1:9999", "--topic=t1", "--messages",
		       "2000000", "--size", "16k", "--acks", "all", "--linger-ms", "0", "--batch-size", "1m",
		       "--compression", "lz4", "--mode", "produce", "--duration-s", "30", "--set",
		       "socket.send.buffer.bytes=1048576", "--no-create");
	REQUIRE(rc == 0);
	CHECK(o.target == BENCH_KAFKA);
	CHECK(o.mode == BENCH_PRODUCE);
	CHECK(strcmp(o.brokers, "127.0.0.1:9999") == 0);
	CHECK(strcmp(o.topic, "t1") == 0);
	CHECK_EQ_INT(o.messages, 2000000);
	CHECK_EQ_INT(o.size, 16384);
	CHECK(strcmp(o.acks, "all") == 0);
	CHECK_EQ_INT(o.linger_ms, 0);
	CHECK_EQ_INT(o.batch_size, 1048576);
	CHECK(strcmp(o.compression, "lz4") == 0);
	CHECK_EQ_INT(o.duration_s, 30);
	CHECK(o.no_create);
	REQUIRE(o.nset == 1);
	CHECK(strcmp(o.set_key[0], "socket.send.buffer.bytes") == 0);
	CHECK(strcmp(o.set_val[0], "1048576") == 0);
}

TEST(bench_parse_defaults)
{
	struct bench_opts o;
	char err[256];
	REQUIRE(PARSE(&o, err, "bench", "redis") == 0);
	CHECK(o.target == BENCH_REDIS);
	CHECK(o.mode == BENCH_PRODUCE);
	CHECK_EQ_INT(o.size, 100);
	CHECK_EQ_INT(o.port, 6379);
	CHECK(strcmp(o.host, "127.0.0.1") == 0);
	CHECK_EQ_INT(o.duration_s, 120);
	REQUIRE(PARSE(&o, err, "bench", "nats", "--window", "4096", "--mode", "consume") == 0);
	CHECK(o.target == BENCH_NATS);
	CHECK(o.mode == BENCH_CONSUME);
	CHECK_EQ_INT(o.window, 4096);
	CHECK(strcmp(o.url, "nats://127.0.0.1:4222") == 0);
}

TEST(bench_parse_latency_length)
{
	struct bench_opts o;
	char err[256];
	/* Without --messages the run is rate x duration messages long. */
	REQUIRE(PARSE(&o, err, "bench", "kafka", "--mode", "latency", "--rate", "10000", "--duration-s", "10") == 0);
	CHECK(o.mode == BENCH_LATENCY);
	CHECK_EQ_INT(o.messages, 100000);
	REQUIRE(PARSE(&o, err, "bench", "kafka", "--mode", "latency", "--messages", "500") == 0);
	CHECK_EQ_INT(o.messages, 500);
	/* The timestamp needs 8 bytes of value. */
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--mode", "latency", "--size", "4"), BENCH_EXIT_USAGE);
}

TEST(bench_parse_rejects)
{
	struct bench_opts o;
	char err[256];
	CHECK_EQ_INT(PARSE(&o, err, "bench"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "pulsar"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--bogus", "1"), BENCH_EXIT_USAGE);
	CHECK(strstr(err, "--bogus") != NULL);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "stray"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--messages"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--messages", "0"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--messages", "-5"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--messages", "12x"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--messages", "99999999999999999999999"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--messages", "10k"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--size", "9m"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--acks", "2"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--compression", "brotli"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--mode", "fast"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--set", "novalue"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--no-create=1"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--topic", ""), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--duration-s", "0"), BENCH_EXIT_USAGE);
	/* Options of another target are refused, not ignored. */
	CHECK_EQ_INT(PARSE(&o, err, "bench", "redis", "--acks", "1"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--port", "1"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "nats", "--host", "x"), BENCH_EXIT_USAGE);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "redis", "--port", "70000"), BENCH_EXIT_USAGE);
}

TEST(bench_parse_help)
{
	struct bench_opts o;
	char err[256];
	CHECK_EQ_INT(PARSE(&o, err, "bench", "--help"), BENCH_PARSE_HELP);
	CHECK_EQ_INT(PARSE(&o, err, "bench", "kafka", "--messages", "5", "-h"), BENCH_PARSE_HELP);
}

TEST(bench_set_is_bounded)
{
	struct bench_opts o;
	char err[256];
	const char *args[2 + 2 * (BENCH_MAX_SET + 1) + 1];
	int n = 0;
	args[n++] = "bench";
	args[n++] = "kafka";
	for (int i = 0; i <= BENCH_MAX_SET; i++) {
		args[n++] = "--set";
		args[n++] = "a=b";
	}
	args[n] = NULL;
	CHECK_EQ_INT(parse(&o, err, sizeof(err), args), BENCH_EXIT_USAGE);
}

TEST(bench_quantiles)
{
	int64_t v[1000];
	for (int i = 0; i < 1000; i++)
		v[i] = 1000 - i; /* 1000 .. 1, unsorted */
	struct bench_result r = { .lat = v, .nlat = 1000 };
	bench_lat_sort(&r);
	CHECK_EQ_INT(bench_quantile(&r, 0.50), 500);
	CHECK_EQ_INT(bench_quantile(&r, 0.99), 990);
	CHECK_EQ_INT(bench_quantile(&r, 0.999), 999);
	CHECK_EQ_INT(bench_quantile(&r, 1.0), 1000);
	struct bench_result empty = { 0 };
	CHECK_EQ_INT(bench_quantile(&empty, 0.5), 0);
	int64_t one = 7;
	struct bench_result single = { .lat = &one, .nlat = 1 };
	CHECK_EQ_INT(bench_quantile(&single, 0.999), 7);
}

TEST(bench_payload_and_stamp)
{
	uint8_t *p = bench_payload_new(3); /* at least 8 bytes allocated */
	bench_stamp_put(p, 123456789012345LL);
	CHECK_EQ_INT(bench_stamp_get(p, 8), 123456789012345LL);
	CHECK_EQ_INT(bench_stamp_get(p, 7), 0);
	CHECK_EQ_INT(bench_stamp_get(NULL, 8), 0);
	free(p);
}

TEST(bench_latency_samples_are_bounded)
{
	struct bench_opts o;
	char err[256];
	/* A huge N with a short cap must not size the sample array by N. */
	REQUIRE(PARSE(&o, err, "bench", "redis", "--mode", "latency", "--messages", "1000000000", "--rate", "1000",
		      "--duration-s", "5") == 0);
	CHECK_EQ_INT(bench_lat_cap(&o), 5001);
	REQUIRE(PARSE(&o, err, "bench", "redis", "--mode", "latency", "--messages", "10") == 0);
	CHECK_EQ_INT(bench_lat_cap(&o), 10);
}
