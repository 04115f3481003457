#include "core/platform.h"
#include "cli/config.h"
#include "core/log.h"
#include "core/util.h"

#include <unistd.h>

void config_defaults(struct silt_conf *sc)
{
	struct kbroker_conf *c = &sc->k;
	memset(sc, 0, sizeof(*sc));
	sc->s3_enabled = true;
	snprintf(sc->s3_host, sizeof(sc->s3_host), "127.0.0.1");
	sc->s3_port = 9000;
	snprintf(sc->s3_domain, sizeof(sc->s3_domain), "localhost");
	snprintf(sc->s3_region, sizeof(sc->s3_region), "us-east-1");
	snprintf(sc->root_user, sizeof(sc->root_user), "siltadmin");
	snprintf(sc->root_password, sizeof(sc->root_password), "siltadmin");
	sc->root_from_default = true;
	c->node_id = 0;
	snprintf(c->kafka_host, sizeof(c->kafka_host), "127.0.0.1");
	c->kafka_port = 9092;
	snprintf(c->data_dir, sizeof(c->data_dir), "./silt-data");
	c->auto_create_topics = true;
	c->num_partitions = 1;
	c->default_replication_factor = 1;
	c->socket_request_max_bytes = 100u << 20;
	c->max_connections = 10000;
	c->max_inflight_bytes = 512u << 20;
	c->group_min_session_timeout_ms = 6000;
	c->group_max_session_timeout_ms = 1800000;
	/* Kafka waits 3 s for more members of a new group; a single-node
	 * broker for development is better served by a short delay. */
	c->group_initial_rebalance_delay_ms = 300;
	c->offsets_retention_ms = 7LL * 24 * 3600 * 1000;
	c->log_retention_check_interval_ms = 300000;
	c->fsync_acks = false;
	c->debug_request_timing = false;
	c->sched_batch = true;
	tconf_defaults(&c->topic_defaults);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	c->nthreads = n > 0 ? (int)SILT_MIN(n, 64) : 1;
}

static int parse_i64(const char *v, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *end != '\0' || x < min || x > max)
		return -SILT_EINVAL;
	*out = x;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
		*out = false;
		return 0;
	}
	return -SILT_EINVAL;
}

int config_parse_addr(const char *addr, char *host, size_t cap, int *port)
{
	const char *colon = strrchr(addr, ':');
	int64_t p;
	if (!colon || colon == addr || (size_t)(colon - addr) >= cap || parse_i64(colon + 1, 0, 65535, &p) != 0)
		return -SILT_EINVAL;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	*port = (int)p;
	return 0;
}

static int set_string(char *dst, size_t cap, const char *v)
{
	if (strlen(v) == 0 || strlen(v) >= cap)
		return -SILT_EINVAL;
	snprintf(dst, cap, "%s", v);
	return 0;
}

/* The object store's keys, all under "s3.". */
static int config_set_s3(struct silt_conf *sc, const char *key, const char *v)
{
	if (strcmp(key, "s3.enable") == 0)
		return parse_bool(v, &sc->s3_enabled);
	if (strcmp(key, "s3.addr") == 0)
		return config_parse_addr(v, sc->s3_host, sizeof(sc->s3_host), &sc->s3_port);
	if (strcmp(key, "s3.domain") == 0)
		return set_string(sc->s3_domain, sizeof(sc->s3_domain), v);
	if (strcmp(key, "s3.region") == 0)
		return set_string(sc->s3_region, sizeof(sc->s3_region), v);
	if (strcmp(key, "s3.root.user") == 0) {
		sc->root_from_default = false;
		return strlen(v) < 3 ? -SILT_EINVAL : set_string(sc->root_user, sizeof(sc->root_user), v);
	}
	if (strcmp(key, "s3.root.password") == 0) {
		sc->root_from_default = false;
		return strlen(v) < 8 ? -SILT_EINVAL : set_string(sc->root_password, sizeof(sc->root_password), v);
	}
	return -SILT_ENOENT;
}

int config_set(struct silt_conf *sc, const char *key, const char *v)
{
	struct kbroker_conf *c = &sc->k;
	int64_t x;
	int rc = 0;
	if (strncmp(key, "s3.", 3) == 0)
		return config_set_s3(sc, key, v);
	/* Topic defaults under their broker names, and Kafka's unit variants. */
	int tk = tconf_key_by_broker_name(key, strlen(key));
	if (tk >= 0)
		return tconf_set(&c->topic_defaults, tk, v, strlen(v));
	if (strcmp(key, "log.retention.minutes") == 0 || strcmp(key, "log.retention.hours") == 0) {
		int64_t mul = key[14] == 'm' ? 60000 : 3600000;
		if ((rc = parse_i64(v, -1, INT64_MAX / mul, &x)) == 0) {
			char buf[32];
			snprintf(buf, sizeof(buf), "%" PRId64, x < 0 ? -1 : x * mul);
			rc = tconf_set(&c->topic_defaults, TC_RETENTION_MS, buf, strlen(buf));
		}
		return rc;
	}
	if (strcmp(key, "log.roll.hours") == 0) {
		if ((rc = parse_i64(v, 1, INT64_MAX / 3600000, &x)) == 0) {
			char buf[32];
			snprintf(buf, sizeof(buf), "%" PRId64, x * 3600000);
			rc = tconf_set(&c->topic_defaults, TC_SEGMENT_MS, buf, strlen(buf));
		}
		return rc;
	}
	if (strcmp(key, "broker.id") == 0 || strcmp(key, "node.id") == 0) {
		if ((rc = parse_i64(v, 0, INT32_MAX, &x)) == 0)
			c->node_id = (int32_t)x;
	} else if (strcmp(key, "listeners") == 0) {
		const char *p = strstr(v, "://");
		rc = config_parse_addr(p ? p + 3 : v, c->kafka_host, sizeof(c->kafka_host), &c->kafka_port);
	} else if (strcmp(key, "log.dirs") == 0 || strcmp(key, "log.dir") == 0 ||
		   strcmp(key, "data.dir") == 0) {
		if (strlen(v) == 0 || strlen(v) >= sizeof(c->data_dir) || strchr(v, ','))
			return -SILT_EINVAL;
		snprintf(c->data_dir, sizeof(c->data_dir), "%s", v);
	} else if (strcmp(key, "auto.create.topics.enable") == 0) {
		rc = parse_bool(v, &c->auto_create_topics);
	} else if (strcmp(key, "num.partitions") == 0) {
		if ((rc = parse_i64(v, 1, 100000, &x)) == 0)
			c->num_partitions = (int32_t)x;
	} else if (strcmp(key, "default.replication.factor") == 0) {
		if ((rc = parse_i64(v, 1, 1, &x)) == 0)
			c->default_replication_factor = (int16_t)x;
	} else if (strcmp(key, "socket.request.max.bytes") == 0) {
		if ((rc = parse_i64(v, 1024, INT32_MAX, &x)) == 0)
			c->socket_request_max_bytes = (uint32_t)x;
	} else if (strcmp(key, "max.connections") == 0) {
		if ((rc = parse_i64(v, 1, 1000000, &x)) == 0)
			c->max_connections = (int)x;
	} else if (strcmp(key, "queued.max.request.bytes") == 0) {
		if ((rc = parse_i64(v, -1, INT64_MAX, &x)) == 0)
			c->max_inflight_bytes = x < 0 ? (512u << 20) : (uint64_t)x;
	} else if (strcmp(key, "group.min.session.timeout.ms") == 0) {
		rc = parse_i64(v, 1, INT32_MAX, &c->group_min_session_timeout_ms);
	} else if (strcmp(key, "group.max.session.timeout.ms") == 0) {
		rc = parse_i64(v, 1, INT32_MAX, &c->group_max_session_timeout_ms);
	} else if (strcmp(key, "group.initial.rebalance.delay.ms") == 0) {
		rc = parse_i64(v, 0, INT32_MAX, &c->group_initial_rebalance_delay_ms);
	} else if (strcmp(key, "offsets.retention.minutes") == 0) {
		if ((rc = parse_i64(v, 1, INT64_MAX / 60000, &x)) == 0)
			c->offsets_retention_ms = x * 60000;
	} else if (strcmp(key, "log.retention.check.interval.ms") == 0) {
		rc = parse_i64(v, 1, INT64_MAX, &c->log_retention_check_interval_ms);
	} else if (strcmp(key, "num.network.threads") == 0) {
		if ((rc = parse_i64(v, 1, 64, &x)) == 0)
			c->nthreads = (int)x;
	} else if (strcmp(key, "silt.network.sched.batch") == 0) {
		rc = parse_bool(v, &c->sched_batch);
	} else if (strcmp(key, "silt.fsync.before.ack") == 0) {
		rc = parse_bool(v, &c->fsync_acks);
	} else if (strcmp(key, "silt.debug.request.timing") == 0) {
		rc = parse_bool(v, &c->debug_request_timing);
	} else {
		return -SILT_ENOENT;
	}
	return rc;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

int config_load_file(struct silt_conf *c, const char *path)
{
	char *text;
	size_t len;
	int rc = read_file(path, 1 << 20, &text, &len);
	if (rc != 0) {
		fprintf(stderr, "silt: cannot read config %s: %s\n", path, silt_strerror(rc));
		return rc;
	}
	int lineno = 0;
	for (char *line = text, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			fprintf(stderr, "silt: %s:%d: expected key=value\n", path, lineno);
			rc = -SILT_EINVAL;
			break;
		}
		*eq = '\0';
		char *k = trim(s), *v = trim(eq + 1);
		int r = config_set(c, k, v);
		if (r == -SILT_ENOENT) {
			log_warn("config", "%s:%d: unknown key '%s' ignored", path, lineno, k);
		} else if (r != 0) {
			fprintf(stderr, "silt: %s:%d: invalid value '%s' for %s\n", path, lineno, v, k);
			rc = -SILT_EINVAL;
			break;
		}
	}
	free(text);
	return rc;
}
