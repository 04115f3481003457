/* bench.h - `silt bench`: load generator built on the real client libraries.
 *
 * One workload shape for every system: N messages of SIZE bytes, produced
 * into (or consumed from) one partition / stream, or produced at a fixed rate
 * to measure per-message acknowledgement latency. The Kafka target drives any
 * Kafka-compatible broker (silt itself) through librdkafka; the peers are
 * NATS JetStream (libnats) and Redis Streams (hiredis), so the numbers in
 * docs/BENCHMARKS.md come from the clients people actually use.
 *
 * Every run is bounded twice: by the message count and by a wall-clock cap
 * (--duration-s). Each run prints the settings used and a short summary on
 * stdout, ending with one machine-readable `RESULT key=value ...` line that
 * scripts/bench.sh parses.
 *
 * Threading: bench_main runs on the caller's thread; the client libraries
 * start their own threads internally and call back into this module only
 * through counters owned by the running workload. */
#ifndef SILT_BENCH_H
#define SILT_BENCH_H

#include "core/platform.h"
#include "core/wbuf.h"
#include "s3/auth.h"

enum bench_target { BENCH_KAFKA, BENCH_NATS, BENCH_REDIS, BENCH_S3 };
enum bench_mode { BENCH_PRODUCE, BENCH_CONSUME, BENCH_LATENCY };
/* `silt bench s3 --mode`: the phases to run (both = put, then get). */
enum bench_s3_mode { BENCH_S3_PUT, BENCH_S3_GET, BENCH_S3_BOTH, BENCH_S3_LIST };

/* Exit codes of bench_main. */
enum { BENCH_EXIT_OK = 0, BENCH_EXIT_FAIL = 1, BENCH_EXIT_USAGE = 2 };

/* Return of bench_parse_args when --help was asked for. */
enum { BENCH_PARSE_HELP = 1 };

#define BENCH_MAX_SET 32           /* --set key=value pairs for librdkafka */
#define BENCH_MAX_MESSAGES 1000000000LL
#define BENCH_MAX_SIZE (8 << 20)   /* one message, bytes */
#define BENCH_MAX_DURATION_S 86400

/* s3: caps on the options; latency samples are one int64 per object. */
#define BENCH_S3_MAX_OBJECTS 10000000LL
#define BENCH_S3_MAX_SIZE (1LL << 30)  /* one object, bytes */
#define BENCH_S3_MAX_CONCURRENCY 1024
#define BENCH_S3_MAX_HOST 255

struct bench_opts {
	enum bench_target target;
	enum bench_mode mode;
	int64_t messages;    /* upper bound on messages sent or read */
	int64_t size;        /* bytes per message value */
	int64_t duration_s;  /* wall-clock cap for the whole run */
	int64_t rate;        /* latency mode: messages per second */
	const char *topic;   /* Kafka topic, NATS stream+subject, Redis key */

	/* kafka */
	const char *brokers;
	const char *acks;        /* "0", "1", "all"/"-1" */
	int64_t linger_ms;       /* -1: mode default */
	int64_t batch_size;      /* bytes; -1: default */
	int64_t batch_num;       /* messages per batch; -1: default */
	const char *compression; /* none, gzip, snappy, lz4, zstd */
	bool no_create;          /* skip the CreateTopics admin call */
	int nset;
	const char *set_key[BENCH_MAX_SET];
	const char *set_val[BENCH_MAX_SET];
	/* Backing store for --set strings split at '='; owned by the opts. */
	char set_buf[BENCH_MAX_SET][256];

	/* nats */
	const char *url;

	/* redis */
	const char *host;
	int64_t port;

	/* nats, redis: messages in flight (publish window, pipeline depth)
	 * and the batch size of consume requests. */
	int64_t window;

	/* s3 (size is shared: bytes per object) */
	const char *endpoint;    /* http://host[:port] */
	const char *bucket;
	const char *prefix;      /* key prefix, may be empty */
	const char *access_key;
	const char *secret_key;
	const char *region;
	int64_t objects;         /* put/get: N objects; list: at most N keys */
	int64_t concurrency;     /* connections, one request in flight each */
	int64_t populate;        /* 0, or N small objects to create first */
	int64_t max_keys;        /* list page size */
	enum bench_s3_mode s3_mode;
	bool s3_mode_given;
	bool unsigned_req;       /* plain HTTP, no SigV4 (nginx and other servers) */
	bool create_bucket;
	bool verify;             /* compare GET bodies byte for byte */
	/* The endpoint split by bench_parse_args: what to connect to, and the
	 * Host header (authority exactly as given, which is also signed). */
	char s3_host[BENCH_S3_MAX_HOST + 1];
	char s3_port[8];
	char s3_authority[BENCH_S3_MAX_HOST + 8];
};

/* The result of one workload, printed by bench_report. */
struct bench_result {
	int64_t msgs;      /* acknowledged (produce) or read (consume) */
	int64_t bytes;     /* value bytes behind msgs */
	int64_t failures;  /* messages the system refused or lost */
	int64_t elapsed_ns;
	bool incomplete;   /* hit the duration cap before N messages */
	/* latency mode, nanoseconds; samples owned by the workload */
	int64_t *lat;
	int64_t nlat;
	double target_rate;
};

/* Fills `o` with defaults. */
void bench_opts_init(struct bench_opts *o);

/* Parses `argv` as given to bench_main (argv[0] = "bench", argv[1] = the
 * target). Returns 0, BENCH_PARSE_HELP, or BENCH_EXIT_USAGE with a one-line
 * reason in err. String fields of `o` point into argv or into `o` itself, so
 * they are valid while both are. */
int bench_parse_args(int argc, char **argv, struct bench_opts *o, char *err, size_t errlen);

void bench_usage(FILE *f);

/* Entry point for `silt bench ...`; returns a process exit code. */
int bench_main(int argc, char **argv);

/* Shared helpers for the target modules. */
int64_t bench_now_ns(void);
/* Sleeps until the monotonic time `deadline_ns` (no-op if it has passed). */
void bench_sleep_until(int64_t deadline_ns);
/* A heap buffer of `size` bytes of printable pseudo-random text; the caller
 * frees it. At least 8 bytes are allocated so a timestamp always fits. */
uint8_t *bench_payload_new(size_t size);
/* How many latency samples a run can produce: messages, bounded by what
 * the rate allows within the duration cap. */
int64_t bench_lat_cap(const struct bench_opts *o);
/* Reads/writes an int64 at the start of a payload (latency timestamps). */
void bench_stamp_put(uint8_t *p, int64_t v);
int64_t bench_stamp_get(const void *p, size_t len);
/* Sorts r->lat in place; bench_quantile needs sorted samples and returns
 * the nearest-rank q-quantile (0 < q <= 1), 0 without samples. */
void bench_lat_sort(struct bench_result *r);
int64_t bench_quantile(const struct bench_result *r, double q);
/* Prints the summary and the RESULT line for one run. */
void bench_report(const struct bench_opts *o, struct bench_result *r);
const char *bench_target_name(enum bench_target t);
const char *bench_mode_name(enum bench_mode m);
const char *bench_s3_mode_name(enum bench_s3_mode m);

/* Workloads; each returns BENCH_EXIT_OK or BENCH_EXIT_FAIL. */
int bench_kafka_run(const struct bench_opts *o);
int bench_nats_run(const struct bench_opts *o);
int bench_redis_run(const struct bench_opts *o);
int bench_s3_run(const struct bench_opts *o);

/* ---- s3 helpers, exported for the unit tests ---- */

/* Splits "http://host[:port][/]" (host may be a [v6] literal) into host,
 * port (default 80) and authority. 0, or -SILT_EINVAL with a reason in err
 * (https and paths are refused). */
int bench_s3_parse_endpoint(const char *ep, struct bench_opts *o, char *err, size_t errlen);

/* A parsed HTTP/1.x response head. */
struct bench_s3_resp {
	int status;
	int minor;
	int64_t content_length; /* -1: absent */
	bool chunked;
	bool close;             /* the server closes after this response */
	size_t head_len;        /* bytes of the head, blank line included */
};

/* Parses a response head at buf[0..len): 0 (complete, *r filled),
 * -SILT_EAGAIN (incomplete), -SILT_EINVAL (malformed), -SILT_ETOOBIG
 * (over 64 KiB). */
int bench_s3_parse_resp(const char *buf, size_t len, struct bench_s3_resp *r);

/* What the benchmark needs from a ListObjectsV2 page. */
struct bench_s3_page {
	int64_t key_count;      /* <KeyCount>, or the number of <Key> if absent */
	bool truncated;
	char *next_token;       /* decoded NextContinuationToken (heap) or NULL */
};

/* SigV4 for the benchmark's requests: always signed over host,
 * x-amz-content-sha256 (UNSIGNED-PAYLOAD) and x-amz-date, with the signing
 * key derived once per day instead of per request (the derivation is four
 * of the six HMAC/SHA-256 calls of a signature, and a client that spends
 * them on every small request measures itself). */
struct bench_s3_signer {
	char date8[9];
	bool ready;
	/* The day's signing key with its HMAC pads absorbed: one signature
	 * costs the canonical request's hash and two short ones. */
	struct s3_hmac_key hk;
	struct wbuf canon; /* the canonical request, kept between requests */
};

/* Frees what the signer allocated; it may be used again afterwards. */
void bench_s3_signer_destroy(struct bench_s3_signer *s);

/* Appends the Authorization header value (no CRLF) to out: the same bytes
 * s3_auth_sign produces for those three headers. `authority` is the Host
 * value, path and query as sent (query may be NULL). 0 or -SILT_EINVAL. */
int bench_s3_authorization(const struct bench_opts *o, struct bench_s3_signer *s, const char *method,
			   const char *path, const char *query, const char *amz_date, struct wbuf *out);

/* Scans a ListObjectsV2 result body. 0 or -SILT_EINVAL (not a
 * ListBucketResult, or truncated without a token). */
int bench_s3_parse_page(const char *xml, size_t len, struct bench_s3_page *p);

#endif
