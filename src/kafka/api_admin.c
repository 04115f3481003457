/* api_admin.c - topic administration: CreateTopics v0-4, DeleteTopics v0-3,
 * CreatePartitions v0-1, DescribeConfigs v0-3, AlterConfigs v0-1,
 * IncrementalAlterConfigs v0, and InitProducerId v0-1. */
#include "core/platform.h"
#include "core/log.h"
#include "core/util.h"
#include "kafka/broker.h"
#include "kafka/errors.h"
#include "kafka/group.h"
#include "kafka/handlers.h"

#define MAX_ADMIN_ITEMS 10000

enum { RES_TOPIC = 2, RES_BROKER = 4 };
enum { SRC_DYNAMIC_TOPIC = 1, SRC_STATIC_BROKER = 4, SRC_DEFAULT = 5 };

static const char *slice_cstr(struct slice s, char *buf, size_t cap)
{
	size_t n = s.len > 0 ? SILT_MIN((size_t)s.len, cap - 1) : 0;
	if (n)
		memcpy(buf, s.p, n);
	buf[n] = '\0';
	return buf;
}

/* Applies one topic config to c. Returns a Kafka error code. */
static int16_t set_topic_config(struct tconf *c, struct slice name, struct slice value, char *msg, size_t cap)
{
	char k[128], v[128];
	slice_cstr(name, k, sizeof(k));
	int key = tconf_key_by_name(k, strlen(k));
	if (key < 0) {
		snprintf(msg, cap, "Unknown topic config name: %s", k);
		return KERR_INVALID_CONFIG;
	}
	if (value.len < 0) {
		tconf_unset(c, key);
		return KERR_NONE;
	}
	slice_cstr(value, v, sizeof(v));
	if (tconf_set(c, key, v, strlen(v)) != 0) {
		snprintf(msg, cap, "Invalid value %s for configuration %s", v, k);
		return KERR_INVALID_CONFIG;
	}
	return KERR_NONE;
}

int kh_create_topics(struct kreq *req, struct rd *r)
{
	int16_t ver = req->api_version;
	const struct kbroker_conf *conf = kbroker_conf();
	int32_t n = rd_array(r, MAX_ADMIN_ITEMS);
	if (r->err)
		return KH_CLOSE;
	struct item {
		struct slice name;
		int32_t partitions;
		int16_t rf;
		int32_t nassign;
		bool bad_assign;
		int16_t err;
		char msg[160];
		struct tconf conf;
	} *items = xcalloc((size_t)(n ? n : 1), sizeof(*items));
	for (int32_t i = 0; i < n && !r->err; i++) {
		struct item *it = &items[i];
		tconf_defaults(&it->conf);
		it->name = rd_str(r);
		it->partitions = rd_i32(r);
		it->rf = rd_i16(r);
		it->nassign = rd_array(r, 100000);
		for (int32_t j = 0; j < it->nassign && !r->err; j++) {
			(void)rd_i32(r);
			int32_t nb = rd_array(r, 1000);
			for (int32_t k = 0; k < nb && !r->err; k++)
				if (rd_i32(r) != conf->node_id)
					it->bad_assign = true;
			if (nb != 1)
				it->bad_assign = true;
		}
		int32_t nc = rd_array(r, 1000);
		for (int32_t j = 0; j < nc && !r->err; j++) {
			struct slice k = rd_str(r), v = rd_str(r);
			if (it->err == KERR_NONE)
				it->err = set_topic_config(&it->conf, k, v, it->msg, sizeof(it->msg));
		}
	}
	(void)rd_i32(r); /* timeout_ms */
	bool validate_only = ver >= 1 ? rd_i8(r) != 0 : false;
	if (r->err) {
		free(items);
		return KH_CLOSE;
	}
	struct wbuf *w = &req->out;
	if (ver >= 2)
		wbuf_i32(w, 0);
	wbuf_i32(w, n);
	for (int32_t i = 0; i < n; i++) {
		struct item *it = &items[i];
		const char *nm = it->name.p ? (const char *)it->name.p : "";
		size_t nlen = it->name.len > 0 ? (size_t)it->name.len : 0;
		int32_t parts = it->nassign > 0 ? it->nassign : it->partitions;
		if (it->err != KERR_NONE) {
			/* message already set */
		} else if (!kafka_topic_name_valid(nm, nlen)) {
			it->err = KERR_INVALID_TOPIC_EXCEPTION;
			snprintf(it->msg, sizeof(it->msg), "Topic name is invalid: must match [a-zA-Z0-9._-]{1,249}");
		} else if (it->nassign > 0 && (it->partitions != -1 || it->rf != -1)) {
			it->err = KERR_INVALID_REQUEST;
			snprintf(it->msg, sizeof(it->msg), "Both assignments and partitions/replication factor given");
		} else if (it->bad_assign) {
			it->err = KERR_INVALID_REPLICA_ASSIGNMENT;
			snprintf(it->msg, sizeof(it->msg), "Replicas must be exactly this broker (%d)", conf->node_id);
		} else if (it->rf != -1 && it->rf != 1 && it->nassign == 0) {
			it->err = KERR_INVALID_REPLICATION_FACTOR;
			snprintf(it->msg, sizeof(it->msg), "Replication factor: %d larger than available brokers: 1.",
				 it->rf);
		} else if (parts == 0 || parts < -1) {
			it->err = KERR_INVALID_PARTITIONS;
			snprintf(it->msg, sizeof(it->msg), "Number of partitions must be larger than 0.");
		} else if (validate_only) {
			struct ktopic *t = kbroker_topic(nm, nlen);
			if (t) {
				it->err = KERR_TOPIC_ALREADY_EXISTS;
				snprintf(it->msg, sizeof(it->msg), "Topic '%.*s' already exists.", (int)SILT_MIN(nlen, 100), nm);
			}
			ktopic_unref(t);
		} else {
			it->err = (int16_t)kbroker_create_topic(nm, nlen, parts, &it->conf, NULL);
			if (it->err == KERR_TOPIC_ALREADY_EXISTS)
				snprintf(it->msg, sizeof(it->msg), "Topic '%.*s' already exists.", (int)SILT_MIN(nlen, 100), nm);
		}
		wbuf_strn(w, nm, (int32_t)nlen);
		wbuf_i16(w, it->err);
		if (ver >= 1)
			wbuf_str(w, it->err != KERR_NONE && it->msg[0] ? it->msg : NULL);
	}
	free(items);
	return KH_DONE;
}

int kh_delete_topics(struct kreq *req, struct rd *r)
{
	int16_t ver = req->api_version;
	int32_t n = rd_array(r, MAX_ADMIN_ITEMS);
	if (r->err)
		return KH_CLOSE;
	struct slice *names = xcalloc((size_t)(n ? n : 1), sizeof(*names));
	for (int32_t i = 0; i < n; i++)
		names[i] = rd_str(r);
	(void)rd_i32(r);
	if (r->err) {
		free(names);
		return KH_CLOSE;
	}
	struct wbuf *w = &req->out;
	if (ver >= 1)
		wbuf_i32(w, 0);
	wbuf_i32(w, n);
	for (int32_t i = 0; i < n; i++) {
		const char *nm = names[i].p ? (const char *)names[i].p : "";
		size_t nlen = names[i].len > 0 ? (size_t)names[i].len : 0;
		int16_t err = (int16_t)kbroker_delete_topic(nm, nlen);
		if (err == KERR_NONE) {
			char topic[256];
			kgroup_topic_deleted(slice_cstr(names[i], topic, sizeof(topic)));
		}
		wbuf_strn(w, nm, (int32_t)nlen);
		wbuf_i16(w, err);
	}
	free(names);
	return KH_DONE;
}

int kh_create_partitions(struct kreq *req, struct rd *r)
{
	int32_t n = rd_array(r, MAX_ADMIN_ITEMS);
	if (r->err)
		return KH_CLOSE;
	struct item {
		struct slice name;
		int32_t count;
	} *items = xcalloc((size_t)(n ? n : 1), sizeof(*items));
	for (int32_t i = 0; i < n && !r->err; i++) {
		items[i].name = rd_str(r);
		items[i].count = rd_i32(r);
		int32_t na = rd_i32(r); /* nullable array of assignments */
		if (na < -1 || na > 100000) {
			r->err = true;
			break;
		}
		for (int32_t j = 0; j < na && !r->err; j++) {
			int32_t nb = rd_array(r, 1000);
			for (int32_t k = 0; k < nb && !r->err; k++)
				(void)rd_i32(r);
		}
	}
	(void)rd_i32(r);
	bool validate_only = rd_i8(r) != 0;
	if (r->err) {
		free(items);
		return KH_CLOSE;
	}
	struct wbuf *w = &req->out;
	wbuf_i32(w, 0);
	wbuf_i32(w, n);
	for (int32_t i = 0; i < n; i++) {
		const char *nm = items[i].name.p ? (const char *)items[i].name.p : "";
		size_t nlen = items[i].name.len > 0 ? (size_t)items[i].name.len : 0;
		struct ktopic *t = kbroker_topic(nm, nlen);
		int16_t err = KERR_NONE;
		char msg[128] = "";
		if (!t) {
			err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		} else if (items[i].count <= ktopic_npartitions(t)) {
			err = KERR_INVALID_PARTITIONS;
			snprintf(msg, sizeof(msg), "Topic currently has %d partitions, which is higher than or equal to the requested %d.",
				 ktopic_npartitions(t), items[i].count);
		} else if (!validate_only) {
			err = (int16_t)kbroker_create_partitions(t, items[i].count);
		}
		ktopic_unref(t);
		wbuf_strn(w, nm, (int32_t)nlen);
		wbuf_i16(w, err);
		wbuf_str(w, msg[0] ? msg : NULL);
	}
	free(items);
	return KH_DONE;
}

static int8_t config_type(int key)
{
	switch (key) {
	case TC_CLEANUP_POLICY:
		return 7; /* LIST */
	case TC_TIMESTAMP_TYPE:
	case TC_COMPRESSION_TYPE:
		return 2; /* STRING */
	case TC_MAX_MESSAGE_BYTES:
	case TC_SEGMENT_BYTES:
	case TC_INDEX_INTERVAL_BYTES:
	case TC_MIN_INSYNC_REPLICAS:
		return 3; /* INT */
	default:
		return 5; /* LONG */
	}
}

static bool key_requested(int32_t nkeys, const struct slice *keys, const char *name)
{
	if (nkeys < 0)
		return true;
	for (int32_t i = 0; i < nkeys; i++)
		if (slice_eq(keys[i], name))
			return true;
	return false;
}

static void write_config_entry(struct wbuf *w, int16_t ver, const char *name, const char *value,
			       int8_t source, bool synonyms, const char *syn_name, int8_t syn_source, int8_t type)
{
	wbuf_str(w, name);
	wbuf_str(w, value);
	wbuf_i8(w, 0); /* read_only */
	if (ver == 0)
		wbuf_i8(w, source == SRC_DEFAULT);
	else
		wbuf_i8(w, source);
	wbuf_i8(w, 0); /* is_sensitive */
	if (ver >= 1) {
		if (synonyms && syn_name) {
			wbuf_i32(w, 1);
			wbuf_str(w, syn_name);
			wbuf_str(w, value);
			wbuf_i8(w, syn_source);
		} else {
			wbuf_i32(w, 0);
		}
	}
	if (ver >= 3) {
		wbuf_i8(w, type);
		wbuf_str(w, NULL);
	}
}

int kh_describe_configs(struct kreq *req, struct rd *r)
{
	int16_t ver = req->api_version;
	const struct kbroker_conf *conf = kbroker_conf();
	int32_t n = rd_array(r, MAX_ADMIN_ITEMS);
	if (r->err)
		return KH_CLOSE;
	struct item {
		int8_t type;
		struct slice name;
		int32_t nkeys; /* -1 = all */
		struct slice *keys;
	} *items = xcalloc((size_t)(n ? n : 1), sizeof(*items));
	for (int32_t i = 0; i < n && !r->err; i++) {
		items[i].type = rd_i8(r);
		items[i].name = rd_str(r);
		int32_t nk = rd_i32(r);
		if (nk < -1 || nk > 1000 || (size_t)SILT_MAX(nk, 0) > rd_left(r)) {
			r->err = true;
			break;
		}
		items[i].nkeys = nk;
		if (nk > 0) {
			items[i].keys = xcalloc((size_t)nk, sizeof(struct slice));
			for (int32_t k = 0; k < nk; k++)
				items[i].keys[k] = rd_str(r);
		}
	}
	bool synonyms = ver >= 1 ? rd_i8(r) != 0 : false;
	if (ver >= 3)
		(void)rd_i8(r);
	if (r->err)
		goto malformed;

	struct wbuf *w = &req->out;
	wbuf_i32(w, 0);
	wbuf_i32(w, n);
	for (int32_t i = 0; i < n; i++) {
		struct item *it = &items[i];
		char val[64];
		if (it->type == RES_TOPIC) {
			const char *nm = it->name.p ? (const char *)it->name.p : "";
			size_t nlen = it->name.len > 0 ? (size_t)it->name.len : 0;
			struct ktopic *t = kbroker_topic(nm, nlen);
			wbuf_i16(w, t ? KERR_NONE : KERR_UNKNOWN_TOPIC_OR_PARTITION);
			wbuf_str(w, t ? NULL : "Topic does not exist");
			wbuf_i8(w, it->type);
			wbuf_strn(w, nm, (int32_t)nlen);
			if (!t) {
				wbuf_i32(w, 0);
				continue;
			}
			size_t at = wbuf_i32(w, 0);
			int32_t count = 0;
			for (int k = 0; k < TC__COUNT; k++) {
				if (!key_requested(it->nkeys, it->keys, tconf_name(k)))
					continue;
				bool own = t->conf.set & (1u << k);
				struct tconf eff = own ? t->conf : conf->topic_defaults;
				tconf_render(&eff, k, val, sizeof(val));
				bool broker_set = conf->topic_defaults.set & (1u << k);
				int8_t src = own ? SRC_DYNAMIC_TOPIC : broker_set ? SRC_STATIC_BROKER : SRC_DEFAULT;
				write_config_entry(w, ver, tconf_name(k), val, src, synonyms,
						   src == SRC_DEFAULT ? NULL : (own ? tconf_name(k) : tconf_broker_name(k)), src,
						   config_type(k));
				count++;
			}
			wbuf_patch_i32(w, at, count);
			ktopic_unref(t);
		} else if (it->type == RES_BROKER) {
			char idbuf[16];
			snprintf(idbuf, sizeof(idbuf), "%d", conf->node_id);
			bool ours = it->name.len == 0 || slice_eq(it->name, idbuf);
			wbuf_i16(w, ours ? KERR_NONE : KERR_INVALID_REQUEST);
			wbuf_str(w, ours ? NULL : "Unexpected broker id");
			wbuf_i8(w, it->type);
			wbuf_strn(w, it->name.p, it->name.len > 0 ? it->name.len : 0);
			if (!ours) {
				wbuf_i32(w, 0);
				continue;
			}
			size_t at = wbuf_i32(w, 0);
			int32_t count = 0;
			for (int k = 0; k < TC__COUNT; k++) {
				if (!key_requested(it->nkeys, it->keys, tconf_broker_name(k)))
					continue;
				tconf_render(&conf->topic_defaults, k, val, sizeof(val));
				bool set = conf->topic_defaults.set & (1u << k);
				write_config_entry(w, ver, tconf_broker_name(k), val, set ? SRC_STATIC_BROKER : SRC_DEFAULT,
						   synonyms, NULL, 0, config_type(k));
				count++;
			}
			wbuf_patch_i32(w, at, count);
		} else {
			wbuf_i16(w, KERR_INVALID_REQUEST);
			wbuf_str(w, "Unsupported resource type");
			wbuf_i8(w, it->type);
			wbuf_strn(w, it->name.p, it->name.len > 0 ? it->name.len : 0);
			wbuf_i32(w, 0);
		}
	}
	for (int32_t i = 0; i < n; i++)
		free(items[i].keys);
	free(items);
	return KH_DONE;
malformed:
	for (int32_t i = 0; i < n; i++)
		free(items[i].keys);
	free(items);
	return KH_CLOSE;
}

/* AlterConfigs (replace the whole set) and IncrementalAlterConfigs (per-key
 * SET/DELETE) share this. Only topic resources are alterable at runtime. */
static int alter_configs(struct kreq *req, struct rd *r, bool incremental)
{
	int32_t n = rd_array(r, MAX_ADMIN_ITEMS);
	if (r->err)
		return KH_CLOSE;
	struct res {
		int8_t type;
		struct slice name;
		int16_t err;
		char msg[160];
	} *res = xcalloc((size_t)(n ? n : 1), sizeof(*res));
	struct tconf *newconf = xcalloc((size_t)(n ? n : 1), sizeof(*newconf));
	for (int32_t i = 0; i < n && !r->err; i++) {
		res[i].type = rd_i8(r);
		res[i].name = rd_str(r);
		int32_t nc = rd_array(r, 1000);
		struct ktopic *t = NULL;
		if (res[i].type == RES_TOPIC && res[i].name.len > 0)
			t = kbroker_topic((const char *)res[i].name.p, (size_t)res[i].name.len);
		if (t) {
			newconf[i] = t->conf;
			if (!incremental)
				tconf_defaults(&newconf[i]);
		}
		for (int32_t j = 0; j < nc && !r->err; j++) {
			struct slice k = rd_str(r);
			int8_t op = incremental ? rd_i8(r) : 0;
			struct slice v = rd_str(r);
			if (res[i].err != KERR_NONE || res[i].type != RES_TOPIC || !t)
				continue;
			if (op == 1)
				v.len = -1; /* DELETE: back to the default */
			else if (op != 0) {
				res[i].err = KERR_INVALID_CONFIG;
				snprintf(res[i].msg, sizeof(res[i].msg), "APPEND/SUBTRACT apply to list configs only");
				continue;
			}
			res[i].err = set_topic_config(&newconf[i], k, v, res[i].msg, sizeof(res[i].msg));
		}
		if (res[i].err == KERR_NONE && res[i].type == RES_BROKER) {
			res[i].err = KERR_INVALID_REQUEST;
			snprintf(res[i].msg, sizeof(res[i].msg), "Broker configs are static: set them in the config file");
		} else if (res[i].err == KERR_NONE && res[i].type != RES_TOPIC) {
			res[i].err = KERR_INVALID_REQUEST;
			snprintf(res[i].msg, sizeof(res[i].msg), "Unsupported resource type");
		} else if (res[i].err == KERR_NONE && !t) {
			res[i].err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		}
		ktopic_unref(t);
	}
	bool validate_only = rd_i8(r) != 0;
	if (r->err) {
		free(res);
		free(newconf);
		return KH_CLOSE;
	}
	struct wbuf *w = &req->out;
	wbuf_i32(w, 0);
	wbuf_i32(w, n);
	for (int32_t i = 0; i < n; i++) {
		if (res[i].err == KERR_NONE && !validate_only) {
			struct ktopic *t = kbroker_topic((const char *)res[i].name.p, (size_t)res[i].name.len);
			if (t) {
				t->conf = newconf[i];
				res[i].err = (int16_t)kbroker_topic_conf_changed(t);
				log_info("kafka", "topic %s: config altered", t->name);
				ktopic_unref(t);
			} else {
				res[i].err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			}
		}
		wbuf_i16(w, res[i].err);
		wbuf_str(w, res[i].err != KERR_NONE && res[i].msg[0] ? res[i].msg : NULL);
		wbuf_i8(w, res[i].type);
		wbuf_strn(w, res[i].name.p, res[i].name.len > 0 ? res[i].name.len : 0);
	}
	free(res);
	free(newconf);
	return KH_DONE;
}

int kh_alter_configs(struct kreq *req, struct rd *r)
{
	return alter_configs(req, r, false);
}

int kh_incremental_alter_configs(struct kreq *req, struct rd *r)
{
	return alter_configs(req, r, true);
}

/* Producer ids must never repeat, even across restarts, or a new producer
 * could inherit an old one's sequence state. Seeding from the wall clock
 * (ms << 10) gives 1,024 ids per millisecond of downtime without keeping
 * state on disk. */
static int64_t g_next_pid;

int kh_init_producer_id(struct kreq *req, struct rd *r)
{
	struct slice txn = rd_str(r);
	(void)rd_i32(r); /* transaction_timeout_ms */
	if (r->err)
		return KH_CLOSE;
	int16_t err = KERR_NONE;
	int64_t pid = -1;
	int16_t epoch = -1;
	if (txn.len >= 0) {
		/* Transactions are not implemented; say so rather than pretend. */
		err = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
	} else {
		int64_t seed = now_ms() << 10;
		int64_t cur = __atomic_load_n(&g_next_pid, __ATOMIC_RELAXED);
		if (cur < seed)
			__atomic_compare_exchange_n(&g_next_pid, &cur, seed, false, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
		pid = __atomic_fetch_add(&g_next_pid, 1, __ATOMIC_RELAXED);
		epoch = 0;
	}
	struct wbuf *w = &req->out;
	wbuf_i32(w, 0);
	wbuf_i16(w, err);
	wbuf_i64(w, pid);
	wbuf_i16(w, epoch);
	return KH_DONE;
}
