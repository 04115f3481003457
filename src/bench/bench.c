/* bench.c - argument parsing, reporting and small shared helpers for
 * `silt bench`. The workloads live in bench_kafka.c and bench_peers.c. */
#include "core/platform.h"
#include "bench/bench.h"

#include <signal.h>
#include <time.h>

/* Options are described by a table so that parsing, per-target validation
 * and the usage text cannot drift apart. `targets` is a bit mask of the
 * targets an option applies to; giving an option to a target that would
 * silently ignore it is a usage error, since a benchmark that quietly ran
 * with other settings than asked is worse than one that did not run. */
enum opt_kind { OPT_STR, OPT_INT, OPT_BYTES, OPT_FLAG, OPT_MODE, OPT_ACKS, OPT_COMP, OPT_SET, OPT_S3MODE,
	OPT_STRZ /* a string that may be empty */ };

#define T_K (1u << BENCH_KAFKA)
#define T_N (1u << BENCH_NATS)
#define T_R (1u << BENCH_REDIS)
#define T_ALL (T_K | T_N | T_R)
#define T_S (1u << BENCH_S3)

struct opt_def {
	const char *name;
	unsigned targets;
	enum opt_kind kind;
	size_t off;
	int64_t min, max;
	const char *help;
};

#define OFF(f) offsetof(struct bench_opts, f)

static const struct opt_def opt_defs[] = {
	{ "mode", T_ALL, OPT_MODE, OFF(mode), 0, 0, "produce|consume|latency (default produce)" },
	{ "messages", T_ALL, OPT_INT, OFF(messages), 1, BENCH_MAX_MESSAGES, "N messages (default 1000000)" },
	{ "size", T_ALL, OPT_BYTES, OFF(size), 1, BENCH_MAX_SIZE, "bytes per message, k/m suffix ok (default 100)" },
	{ "duration-s", T_ALL | T_S, OPT_INT, OFF(duration_s), 1, BENCH_MAX_DURATION_S, "wall-clock cap in seconds (default 120)" },
	{ "rate", T_ALL, OPT_INT, OFF(rate), 1, 10000000, "latency mode: messages per second (default 10000)" },
	{ "topic", T_ALL, OPT_STR, OFF(topic), 0, 0, "topic / NATS subject+stream / Redis key (default silt-bench)" },
	{ "brokers", T_K, OPT_STR, OFF(brokers), 0, 0, "bootstrap servers (default 127.0.0.1:9092)" },
	{ "acks", T_K, OPT_ACKS, OFF(acks), 0, 0, "0|1|all (default 1)" },
	{ "linger-ms", T_K, OPT_INT, OFF(linger_ms), 0, 60000, "linger.ms (default 5; latency mode 0)" },
	{ "batch-size", T_K, OPT_BYTES, OFF(batch_size), 1, 1 << 30, "batch.size bytes (default 1000000)" },
	{ "batch-num", T_K, OPT_INT, OFF(batch_num), 1, 1000000, "batch.num.messages (default 100000)" },
	{ "compression", T_K, OPT_COMP, OFF(compression), 0, 0, "none|gzip|snappy|lz4|zstd (default none)" },
	{ "no-create", T_K, OPT_FLAG, OFF(no_create), 0, 0, "do not create the topic (rely on auto-create)" },
	{ "set", T_K, OPT_SET, 0, 0, 0, "KEY=VALUE extra librdkafka property (repeatable)" },
	{ "url", T_N, OPT_STR, OFF(url), 0, 0, "NATS server URL (default nats://127.0.0.1:4222)" },
	{ "host", T_R, OPT_STR, OFF(host), 0, 0, "Redis host (default 127.0.0.1)" },
	{ "port", T_R, OPT_INT, OFF(port), 1, 65535, "Redis port (default 6379)" },
	{ "window", T_N | T_R, OPT_INT, OFF(window), 1, 1000000,
	  "in-flight publishes / pipeline depth / fetch batch (default 1000)" },
	/* s3: a name may appear again with another target mask (mode, size);
	 * the parser takes the entry that applies to the target. */
	{ "endpoint", T_S, OPT_STR, OFF(endpoint), 0, 0, "http://host[:port] (default http://127.0.0.1:9000)" },
	{ "bucket", T_S, OPT_STR, OFF(bucket), 0, 0, "bucket (default silt-bench)" },
	{ "objects", T_S, OPT_INT, OFF(objects), 1, BENCH_S3_MAX_OBJECTS,
	  "N objects to put/get; list: stop after N keys (default 1000; list: all)" },
	{ "size", T_S, OPT_BYTES, OFF(size), 0, BENCH_S3_MAX_SIZE, "bytes per object, k/m/g suffix ok (default 4k)" },
	{ "concurrency", T_S, OPT_INT, OFF(concurrency), 1, BENCH_S3_MAX_CONCURRENCY,
	  "connections, one request in flight each (default 16)" },
	{ "mode", T_S, OPT_S3MODE, 0, 0, 0, "put|get|both|list (default both; none with --populate)" },
	{ "prefix", T_S, OPT_STRZ, OFF(prefix), 0, 0, "key prefix (default bench/)" },
	{ "access-key", T_S, OPT_STR, OFF(access_key), 0, 0, "SigV4 access key (default siltadmin)" },
	{ "secret-key", T_S, OPT_STR, OFF(secret_key), 0, 0, "SigV4 secret key (default siltadmin)" },
	{ "region", T_S, OPT_STR, OFF(region), 0, 0, "SigV4 region (default us-east-1)" },
	{ "unsigned", T_S, OPT_FLAG, OFF(unsigned_req), 0, 0, "plain HTTP PUT/GET /bucket/key, no auth (nginx)" },
	{ "create-bucket", T_S, OPT_FLAG, OFF(create_bucket), 0, 0, "PUT /bucket first (exists is fine)" },
	{ "populate", T_S, OPT_INT, OFF(populate), 1, BENCH_S3_MAX_OBJECTS,
	  "first create N objects (default 16 B, 64 connections) under the prefix" },
	{ "max-keys", T_S, OPT_INT, OFF(max_keys), 1, 1000, "list: keys per page (default 1000)" },
	{ "verify", T_S, OPT_FLAG, OFF(verify), 0, 0, "get: compare bodies byte for byte (length is always checked)" },
};

void bench_opts_init(struct bench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->target = BENCH_KAFKA;
	o->mode = BENCH_PRODUCE;
	o->messages = 1000000;
	o->size = 100;
	o->duration_s = 120;
	o->rate = 10000;
	o->topic = "silt-bench";
	o->brokers = "127.0.0.1:9092";
	o->acks = "1";
	o->linger_ms = -1;
	o->batch_size = -1;
	o->batch_num = -1;
	o->compression = "none";
	o->url = "nats://127.0.0.1:4222";
	o->host = "127.0.0.1";
	o->port = 6379;
	o->window = 1000;
	o->endpoint = "http://127.0.0.1:9000";
	o->bucket = "silt-bench";
	o->prefix = "bench/";
	o->access_key = "siltadmin";
	o->secret_key = "siltadmin";
	o->region = "us-east-1";
	o->objects = 1000;
	o->concurrency = 16;
	o->max_keys = 1000;
	o->s3_mode = BENCH_S3_BOTH;
}

void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: silt bench kafka|nats|redis|s3 [options]\n"
		"\n"
		"Drives a Kafka-compatible broker (librdkafka), NATS JetStream (libnats)\n"
		"or Redis Streams (hiredis) with N messages of SIZE bytes on one\n"
		"partition/stream, and prints msgs/s, MB/s (10^6 bytes) or latency\n"
		"percentiles plus one `RESULT key=value ...` line. The s3 target\n"
		"drives an S3 endpoint (or any HTTP server with --unsigned) with its\n"
		"own HTTP/1.1 client: C keep-alive connections PUT/GET N objects of\n"
		"SIZE bytes (SigV4, UNSIGNED-PAYLOAD) or list a bucket, one RESULT\n"
		"line per phase.\n"
		"\n"
		"options (target in brackets; --opt VALUE or --opt=VALUE):\n");
	for (size_t i = 0; i < SILT_ARRAY_LEN(opt_defs); i++) {
		const struct opt_def *d = &opt_defs[i];
		char tg[8];
		int n = 0;
		if (d->targets & T_K)
			tg[n++] = 'k';
		if (d->targets & T_N)
			tg[n++] = 'n';
		if (d->targets & T_R)
			tg[n++] = 'r';
		if (d->targets & T_S)
			tg[n++] = 's';
		tg[n] = '\0';
		char name[32];
		snprintf(name, sizeof(name), "--%s%s", d->name, d->kind == OPT_FLAG ? "" : " V");
		fprintf(f, "  %-18s [%-4s] %s\n", name, tg, d->help);
	}
	fprintf(f,
		"  -h, --help\n"
		"\n"
		"modes: produce  N messages async, wait for every acknowledgement\n"
		"       consume  read N messages from the beginning (stops early at the end)\n"
		"       latency  send at --rate for min(N/rate, duration) s; send -> ack latency\n"
		"s3 modes: put, get (the objects a put run left), both (put then get),\n"
		"       list (ListObjectsV2 pages with continuation tokens; per-page latency)\n"
		"       keys are <prefix>o00000000, o00000001, ...; client CPU is reported\n"
		"       so a client-bound figure shows as such\n"
		"exit status: 0 ok, 1 failed or incomplete run, 2 usage error\n");
}

const char *bench_target_name(enum bench_target t)
{
	switch (t) {
	case BENCH_KAFKA:
		return "kafka";
	case BENCH_NATS:
		return "nats";
	case BENCH_REDIS:
		return "redis";
	case BENCH_S3:
		return "s3";
	}
	return "?";
}

const char *bench_s3_mode_name(enum bench_s3_mode m)
{
	switch (m) {
	case BENCH_S3_PUT:
		return "put";
	case BENCH_S3_GET:
		return "get";
	case BENCH_S3_BOTH:
		return "both";
	case BENCH_S3_LIST:
		return "list";
	}
	return "?";
}

const char *bench_mode_name(enum bench_mode m)
{
	switch (m) {
	case BENCH_PRODUCE:
		return "produce";
	case BENCH_CONSUME:
		return "consume";
	case BENCH_LATENCY:
		return "latency";
	}
	return "?";
}

/* Strict decimal integer with an optional binary k/m/g suffix when `bytes`.
 * Rejects empty strings, signs where not allowed, trailing junk and values
 * outside [min, max]. */
static bool parse_int(const char *s, bool bytes, int64_t min, int64_t max, int64_t *out)
{
	if (!s || !*s)
		return false;
	bool neg = false;
	if (*s == '-') {
		neg = true;
		s++;
	}
	int64_t v = 0;
	int digits = 0;
	for (; *s >= '0' && *s <= '9' && digits < 20; s++, digits++) {
		int d = *s - '0';
		if (v > (INT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (digits == 0 || (*s >= '0' && *s <= '9'))
		return false;
	int64_t mul = 1;
	if (bytes && *s) {
		switch (*s) {
		case 'k':
		case 'K':
			mul = 1024;
			break;
		case 'm':
		case 'M':
			mul = 1024 * 1024;
			break;
		case 'g':
		case 'G':
			mul = 1024 * 1024 * 1024;
			break;
		default:
			return false;
		}
		s++;
		if (*s == 'i' || *s == 'I')
			s++;
		if (*s == 'b' || *s == 'B')
			s++;
	}
	if (*s)
		return false;
	if (v > INT64_MAX / mul)
		return false;
	v *= mul;
	if (neg)
		v = -v;
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

static const char *const comp_names[] = { "none", "gzip", "snappy", "lz4", "zstd" };

static int set_opt(struct bench_opts *o, const struct opt_def *d, const char *val, char *err, size_t errlen)
{
	char *base = (char *)o;
	switch (d->kind) {
	case OPT_FLAG:
		*(bool *)(void *)(base + d->off) = true;
		return 0;
	case OPT_STRZ:
		*(const char **)(void *)(base + d->off) = val;
		return 0;
	case OPT_STR:
		if (!*val) {
			snprintf(err, errlen, "--%s: empty value", d->name);
			return BENCH_EXIT_USAGE;
		}
		*(const char **)(void *)(base + d->off) = val;
		return 0;
	case OPT_INT:
	case OPT_BYTES:
		if (!parse_int(val, d->kind == OPT_BYTES, d->min, d->max, (int64_t *)(void *)(base + d->off))) {
			snprintf(err, errlen, "--%s: '%s' is not an integer in [%" PRId64 ", %" PRId64 "]",
				 d->name, val, d->min, d->max);
			return BENCH_EXIT_USAGE;
		}
		return 0;
	case OPT_MODE:
		for (int m = BENCH_PRODUCE; m <= BENCH_LATENCY; m++) {
			if (strcmp(val, bench_mode_name((enum bench_mode)m)) == 0) {
				o->mode = (enum bench_mode)m;
				return 0;
			}
		}
		snprintf(err, errlen, "--mode: '%s' is not produce, consume or latency", val);
		return BENCH_EXIT_USAGE;
	case OPT_S3MODE:
		for (int m = BENCH_S3_PUT; m <= BENCH_S3_LIST; m++) {
			if (strcmp(val, bench_s3_mode_name((enum bench_s3_mode)m)) == 0) {
				o->s3_mode = (enum bench_s3_mode)m;
				o->s3_mode_given = true;
				return 0;
			}
		}
		snprintf(err, errlen, "--mode: '%s' is not put, get, both or list", val);
		return BENCH_EXIT_USAGE;
	case OPT_ACKS:
		if (strcmp(val, "0") == 0 || strcmp(val, "1") == 0) {
			o->acks = val;
			return 0;
		}
		if (strcmp(val, "all") == 0 || strcmp(val, "-1") == 0) {
			o->acks = "all";
			return 0;
		}
		snprintf(err, errlen, "--acks: '%s' is not 0, 1 or all", val);
		return BENCH_EXIT_USAGE;
	case OPT_COMP:
		for (size_t i = 0; i < SILT_ARRAY_LEN(comp_names); i++) {
			if (strcmp(val, comp_names[i]) == 0) {
				o->compression = comp_names[i];
				return 0;
			}
		}
		snprintf(err, errlen, "--compression: '%s' is not none, gzip, snappy, lz4 or zstd", val);
		return BENCH_EXIT_USAGE;
	case OPT_SET: {
		const char *eq = strchr(val, '=');
		size_t len = strlen(val);
		if (!eq || eq == val || len >= sizeof(o->set_buf[0])) {
			snprintf(err, errlen, "--set: expected KEY=VALUE (under %zu bytes), got '%s'",
				 sizeof(o->set_buf[0]), val);
			return BENCH_EXIT_USAGE;
		}
		if (o->nset >= BENCH_MAX_SET) {
			snprintf(err, errlen, "--set: more than %d properties", BENCH_MAX_SET);
			return BENCH_EXIT_USAGE;
		}
		char *b = o->set_buf[o->nset];
		memcpy(b, val, len + 1);
		b[eq - val] = '\0';
		o->set_key[o->nset] = b;
		o->set_val[o->nset] = b + (eq - val) + 1;
		o->nset++;
		return 0;
	}
	}
	snprintf(err, errlen, "internal: bad option kind");
	return BENCH_EXIT_USAGE;
}

/* Defaults and combinations of the s3 options that the table cannot
 * express. A combination that would silently do something else than asked
 * is refused. */
static int s3_check_args(struct bench_opts *o, bool objects_given, bool size_given, bool conc_given, char *err,
			 size_t errlen)
{
	/* Populating is a put of many small objects ahead of a list run; in
	 * front of a put or get run the two sizes would be one option. */
	if (o->populate && o->s3_mode_given && o->s3_mode != BENCH_S3_LIST) {
		snprintf(err, errlen, "--populate runs alone or before --mode list");
		return BENCH_EXIT_USAGE;
	}
	if (!size_given)
		o->size = o->populate ? 16 : 4096;
	/* Many small PUTs are latency-bound per connection: go wide. */
	if (!conc_given && o->populate)
		o->concurrency = 64;
	if (o->s3_mode == BENCH_S3_LIST && !objects_given)
		o->objects = BENCH_S3_MAX_OBJECTS;
	if (bench_s3_parse_endpoint(o->endpoint, o, err, errlen))
		return BENCH_EXIT_USAGE;
	if (o->unsigned_req && o->create_bucket) {
		snprintf(err, errlen, "--create-bucket needs the S3 API (not --unsigned)");
		return BENCH_EXIT_USAGE;
	}
	if (o->unsigned_req && o->s3_mode_given && o->s3_mode == BENCH_S3_LIST) {
		snprintf(err, errlen, "--mode list needs the S3 API (not --unsigned)");
		return BENCH_EXIT_USAGE;
	}
	if (strlen(o->bucket) > 63 || strchr(o->bucket, '/')) {
		snprintf(err, errlen, "--bucket: '%s' is not a bucket name", o->bucket);
		return BENCH_EXIT_USAGE;
	}
	if (strlen(o->prefix) > 900) {
		snprintf(err, errlen, "--prefix: longer than 900 bytes");
		return BENCH_EXIT_USAGE;
	}
	return 0;
}

int bench_parse_args(int argc, char **argv, struct bench_opts *o, char *err, size_t errlen)
{
	bench_opts_init(o);
	if (errlen)
		err[0] = '\0';
	if (argc < 2 || !argv[1]) {
		snprintf(err, errlen, "missing target (kafka, nats, redis or s3)");
		return BENCH_EXIT_USAGE;
	}
	const char *t = argv[1];
	if (strcmp(t, "-h") == 0 || strcmp(t, "--help") == 0 || strcmp(t, "help") == 0)
		return BENCH_PARSE_HELP;
	if (strcmp(t, "kafka") == 0) {
		o->target = BENCH_KAFKA;
	} else if (strcmp(t, "nats") == 0) {
		o->target = BENCH_NATS;
	} else if (strcmp(t, "redis") == 0) {
		o->target = BENCH_REDIS;
	} else if (strcmp(t, "s3") == 0) {
		o->target = BENCH_S3;
	} else {
		snprintf(err, errlen, "unknown target '%s' (kafka, nats, redis or s3)", t);
		return BENCH_EXIT_USAGE;
	}
	bool messages_given = false, objects_given = false, size_given = false, conc_given = false;

	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return BENCH_PARSE_HELP;
		if (strncmp(a, "--", 2) != 0 || !a[2]) {
			snprintf(err, errlen, "unexpected argument '%s'", a);
			return BENCH_EXIT_USAGE;
		}
		const char *name = a + 2;
		const char *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		const struct opt_def *d = NULL;
		for (size_t k = 0; k < SILT_ARRAY_LEN(opt_defs); k++) {
			if (strlen(opt_defs[k].name) == nlen && memcmp(opt_defs[k].name, name, nlen) == 0) {
				d = &opt_defs[k];
				if (d->targets & (1u << o->target))
					break;
			}
		}
		if (!d) {
			snprintf(err, errlen, "unknown option '%.*s'", (int)(nlen + 2), a);
			return BENCH_EXIT_USAGE;
		}
		if (!(d->targets & (1u << o->target))) {
			snprintf(err, errlen, "option --%s does not apply to target %s", d->name, t);
			return BENCH_EXIT_USAGE;
		}
		const char *val;
		if (d->kind == OPT_FLAG) {
			if (eq) {
				snprintf(err, errlen, "option --%s takes no value", d->name);
				return BENCH_EXIT_USAGE;
			}
			val = "";
		} else if (eq) {
			val = eq + 1;
		} else {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "option --%s needs a value", d->name);
				return BENCH_EXIT_USAGE;
			}
			val = argv[++i];
		}
		int rc = set_opt(o, d, val, err, errlen);
		if (rc)
			return rc;
		if (strcmp(d->name, "messages") == 0)
			messages_given = true;
		if (d->off == OFF(objects))
			objects_given = true;
		if (d->off == OFF(size))
			size_given = true;
		if (d->off == OFF(concurrency))
			conc_given = true;
	}
	if (o->target == BENCH_S3)
		return s3_check_args(o, objects_given, size_given, conc_given, err, errlen);

	/* In latency mode the run length is the duration; unless N was given,
	 * send exactly rate x duration messages. */
	if (o->mode == BENCH_LATENCY && !messages_given)
		o->messages = SILT_MIN(o->rate * o->duration_s, BENCH_MAX_MESSAGES);
	if (o->mode == BENCH_LATENCY && o->size < 8) {
		snprintf(err, errlen, "--size: latency mode needs at least 8 bytes for the timestamp");
		return BENCH_EXIT_USAGE;
	}
	return 0;
}

int64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_sleep_until(int64_t deadline_ns)
{
	if (deadline_ns <= bench_now_ns())
		return;
	struct timespec ts = { .tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000 };
	/* EINTR only shortens the sleep, which the pacing loops tolerate. */
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

uint8_t *bench_payload_new(size_t size)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t *p = xmalloc(SILT_MAX(size, 8));
	/* Printable text with ~5 bits of entropy per byte: compressible the
	 * way log lines are, but not a run of one byte that every codec
	 * reduces to nothing. */
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < SILT_MAX(size, 8); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)alphabet[x % (sizeof(alphabet) - 1)];
	}
	return p;
}

int64_t bench_lat_cap(const struct bench_opts *o)
{
	return SILT_MAX(1, SILT_MIN(o->messages, o->rate * o->duration_s + 1));
}

void bench_stamp_put(uint8_t *p, int64_t v)
{
	memcpy(p, &v, sizeof(v));
}

int64_t bench_stamp_get(const void *p, size_t len)
{
	int64_t v = 0;
	if (p && len >= sizeof(v))
		memcpy(&v, p, sizeof(v));
	return v;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

void bench_lat_sort(struct bench_result *r)
{
	if (r->lat && r->nlat > 1)
		qsort(r->lat, (size_t)r->nlat, sizeof(r->lat[0]), cmp_i64);
}

int64_t bench_quantile(const struct bench_result *r, double q)
{
	if (!r->lat || r->nlat <= 0)
		return 0;
	/* Nearest rank: the smallest sample with at least q of all samples
	 * at or below it. */
	int64_t idx = (int64_t)(q * (double)r->nlat + 0.999999) - 1;
	if (idx < 0)
		idx = 0;
	if (idx >= r->nlat)
		idx = r->nlat - 1;
	return r->lat[idx];
}

void bench_report(const struct bench_opts *o, struct bench_result *r)
{
	double secs = (double)r->elapsed_ns / 1e9;
	double mps = secs > 0 ? (double)r->msgs / secs : 0;
	double mbps = secs > 0 ? (double)r->bytes / secs / 1e6 : 0;
	printf("%s %s: %" PRId64 " msgs x %" PRId64 " B in %.3f s%s\n", bench_target_name(o->target),
	       bench_mode_name(o->mode), r->msgs, o->size, secs,
	       r->incomplete ? " (INCOMPLETE: duration cap or error)" : "");
	printf("  %.0f msgs/s  %.2f MB/s  failures %" PRId64 "\n", mps, mbps, r->failures);
	char lat[256] = "";
	if (o->mode == BENCH_LATENCY) {
		bench_lat_sort(r);
		int64_t p50 = bench_quantile(r, 0.50), p99 = bench_quantile(r, 0.99);
		int64_t p999 = bench_quantile(r, 0.999), pmax = bench_quantile(r, 1.0);
		printf("  latency over %" PRId64 " samples at %.0f msgs/s target: p50 %.3f ms  p99 %.3f ms"
		       "  p99.9 %.3f ms  max %.3f ms\n",
		       r->nlat, r->target_rate, p50 / 1e6, p99 / 1e6, p999 / 1e6, pmax / 1e6);
		snprintf(lat, sizeof(lat),
			 " rate=%.0f samples=%" PRId64 " p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f",
			 r->target_rate, r->nlat, p50 / 1e3, p99 / 1e3, p999 / 1e3, pmax / 1e3);
	}
	printf("RESULT target=%s mode=%s size=%" PRId64 " msgs=%" PRId64 " bytes=%" PRId64
	       " secs=%.3f msgs_per_s=%.0f mb_per_s=%.2f failures=%" PRId64 " complete=%d%s\n",
	       bench_target_name(o->target), bench_mode_name(o->mode), o->size, r->msgs, r->bytes, secs, mps,
	       mbps, r->failures, r->incomplete ? 0 : 1, lat);
	fflush(stdout);
}

int bench_main(int argc, char **argv)
{
	struct bench_opts *o = xmalloc(sizeof(*o));
	char err[256];
	int rc = bench_parse_args(argc, argv, o, err, sizeof(err));
	if (rc == BENCH_PARSE_HELP) {
		bench_usage(stdout);
		rc = BENCH_EXIT_OK;
		goto out;
	}
	if (rc) {
		fprintf(stderr, "silt bench: %s\n\n", err);
		bench_usage(stderr);
		rc = BENCH_EXIT_USAGE;
		goto out;
	}
	/* A peer that dies mid-run must end the run with an error, not kill
	 * the process from inside a write(2). */
	signal(SIGPIPE, SIG_IGN);
	switch (o->target) {
	case BENCH_KAFKA:
		rc = bench_kafka_run(o);
		break;
	case BENCH_NATS:
		rc = bench_nats_run(o);
		break;
	case BENCH_REDIS:
		rc = bench_redis_run(o);
		break;
	case BENCH_S3:
		rc = bench_s3_run(o);
		break;
	}
out:
	free(o);
	return rc;
}
