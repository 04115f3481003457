#include "core/platform.h"
#include "kafka/tconf.h"
#include "core/wbuf.h"

struct tconf_def {
	const char *name;
	const char *broker_name;
	int64_t def;
	int64_t min;
	const char *const *enums; /* NULL-terminated names for enum keys */
};

static const char *const cleanup_enums[] = { "delete", "compact", NULL };
static const char *const ts_enums[] = { "CreateTime", "LogAppendTime", NULL };
static const char *const comp_enums[] = { "producer", "uncompressed", "gzip", "snappy", "lz4", "zstd", NULL };

static const struct tconf_def defs[TC__COUNT] = {
	[TC_RETENTION_MS] = { "retention.ms", "log.retention.ms", 7LL * 24 * 3600 * 1000, -1, NULL },
	[TC_RETENTION_BYTES] = { "retention.bytes", "log.retention.bytes", -1, -1, NULL },
	[TC_SEGMENT_BYTES] = { "segment.bytes", "log.segment.bytes", 1LL << 30, 14, NULL },
	[TC_SEGMENT_MS] = { "segment.ms", "log.roll.ms", 7LL * 24 * 3600 * 1000, 1, NULL },
	[TC_MAX_MESSAGE_BYTES] = { "max.message.bytes", "message.max.bytes", 1048588, 0, NULL },
	[TC_FLUSH_MESSAGES] = { "flush.messages", "log.flush.interval.messages", INT64_MAX, 1, NULL },
	[TC_FLUSH_MS] = { "flush.ms", "log.flush.interval.ms", INT64_MAX, 0, NULL },
	[TC_INDEX_INTERVAL_BYTES] = { "index.interval.bytes", "log.index.interval.bytes", 4096, 0, NULL },
	[TC_MIN_INSYNC_REPLICAS] = { "min.insync.replicas", "min.insync.replicas", 1, 1, NULL },
	[TC_CLEANUP_POLICY] = { "cleanup.policy", "log.cleanup.policy", 0, 0, cleanup_enums },
	[TC_TIMESTAMP_TYPE] = { "message.timestamp.type", "log.message.timestamp.type", 0, 0, ts_enums },
	[TC_COMPRESSION_TYPE] = { "compression.type", "compression.type", 0, 0, comp_enums },
};

void tconf_defaults(struct tconf *c)
{
	for (int k = 0; k < TC__COUNT; k++)
		c->v[k] = defs[k].def;
	c->set = 0;
}

static int key_by(const char *name, size_t len, bool broker)
{
	for (int k = 0; k < TC__COUNT; k++) {
		const char *n = broker ? defs[k].broker_name : defs[k].name;
		if (strlen(n) == len && memcmp(n, name, len) == 0)
			return k;
	}
	return -1;
}

int tconf_key_by_name(const char *name, size_t len)
{
	return key_by(name, len, false);
}

int tconf_key_by_broker_name(const char *name, size_t len)
{
	return key_by(name, len, true);
}

const char *tconf_name(int key)
{
	return defs[key].name;
}

const char *tconf_broker_name(int key)
{
	return defs[key].broker_name;
}

int tconf_set(struct tconf *c, int key, const char *value, size_t len)
{
	char buf[64];
	if (key < 0 || key >= TC__COUNT || len == 0 || len >= sizeof(buf))
		return -SILT_EINVAL;
	memcpy(buf, value, len);
	buf[len] = '\0';
	const struct tconf_def *d = &defs[key];
	int64_t v;
	if (d->enums) {
		for (v = 0; d->enums[v]; v++)
			if (strcasecmp(d->enums[v], buf) == 0)
				break;
		if (!d->enums[v])
			return -SILT_EINVAL;
	} else {
		char *end;
		errno = 0;
		long long x = strtoll(buf, &end, 10);
		if (errno || *end != '\0' || x < d->min)
			return -SILT_EINVAL;
		v = x;
	}
	c->v[key] = v;
	c->set |= 1u << key;
	return 0;
}

void tconf_unset(struct tconf *c, int key)
{
	c->set &= ~(1u << key);
	c->v[key] = defs[key].def;
}

void tconf_render(const struct tconf *c, int key, char *buf, size_t cap)
{
	const struct tconf_def *d = &defs[key];
	if (d->enums)
		snprintf(buf, cap, "%s", d->enums[c->v[key]]);
	else
		snprintf(buf, cap, "%" PRId64, c->v[key]);
}

int64_t tconf_get(const struct tconf *c, const struct tconf *defaults, int key)
{
	if (c && (c->set & (1u << key)))
		return c->v[key];
	return defaults->v[key];
}

char *tconf_serialize(const struct tconf *c)
{
	struct wbuf w;
	char val[64];
	wbuf_init(&w, 256, 0);
	for (int k = 0; k < TC__COUNT; k++) {
		if (!(c->set & (1u << k)))
			continue;
		tconf_render(c, k, val, sizeof(val));
		wbuf_put(&w, defs[k].name, strlen(defs[k].name));
		wbuf_u8(&w, '=');
		wbuf_put(&w, val, strlen(val));
		wbuf_u8(&w, '\n');
	}
	wbuf_u8(&w, '\0');
	size_t n;
	return (char *)wbuf_steal(&w, &n);
}

int tconf_parse_lines(struct tconf *c, const char *text)
{
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		const char *eq = memchr(p, '=', n);
		if (n > 0 && p[0] != '#') {
			if (!eq)
				return -SILT_EINVAL;
			int k = tconf_key_by_name(p, (size_t)(eq - p));
			if (k < 0 || tconf_set(c, k, eq + 1, n - (size_t)(eq - p) - 1) != 0)
				return -SILT_EINVAL;
		}
		p += n + (nl ? 1 : 0);
	}
	return 0;
}
