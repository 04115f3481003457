/* api_core.c - Metadata. (ApiVersions lives with the table in dispatch.c.) */
#include "core/platform.h"
#include "core/log.h"
#include "kafka/broker.h"
#include "kafka/errors.h"
#include "kafka/handlers.h"

#define MAX_METADATA_TOPICS 100000

static void write_topic(struct wbuf *w, int16_t ver, int16_t err, const char *name, size_t nlen,
			struct ktopic *t)
{
	int32_t node = kbroker_conf()->node_id;
	wbuf_i16(w, err);
	wbuf_strn(w, name, (int32_t)nlen);
	if (ver >= 1)
		wbuf_i8(w, 0); /* is_internal */
	int32_t np = t ? ktopic_npartitions(t) : 0;
	wbuf_i32(w, np);
	for (int32_t i = 0; i < np; i++) {
		struct kpartition *p = ktopic_partition(t, i);
		wbuf_i16(w, KERR_NONE);
		wbuf_i32(w, i);
		wbuf_i32(w, node); /* leader */
		if (ver >= 7)
			wbuf_i32(w, p ? p->leader_epoch : 0);
		wbuf_i32(w, 1); /* replicas */
		wbuf_i32(w, node);
		wbuf_i32(w, 1); /* isr */
		wbuf_i32(w, node);
		if (ver >= 5)
			wbuf_i32(w, 0); /* offline replicas */
	}
	if (ver >= 8)
		wbuf_i32(w, INT32_MIN); /* topic_authorized_operations: not requested */
}

/* Metadata v0-8. Auto-creates requested topics when the broker allows it
 * and (v4+) the client asks for it, as Kafka does. */
int kh_metadata(struct kreq *req, struct rd *r)
{
	int16_t ver = req->api_version;
	const struct kbroker_conf *conf = kbroker_conf();
	int32_t n = rd_i32(r);
	bool all = ver == 0 ? n == 0 : n == -1;
	if (n < -1 || n > MAX_METADATA_TOPICS)
		return KH_CLOSE;
	if (n < 0)
		n = 0;
	struct slice *names = xcalloc((size_t)(n ? n : 1), sizeof(*names));
	for (int32_t i = 0; i < n && !r->err; i++)
		names[i] = rd_str(r);
	bool allow_create = true;
	if (ver >= 4)
		allow_create = rd_i8(r) != 0;
	if (ver >= 8) {
		(void)rd_i8(r);
		(void)rd_i8(r);
	}
	if (r->err) {
		free(names);
		return KH_CLOSE;
	}

	struct wbuf *w = &req->out;
	if (ver >= 3)
		wbuf_i32(w, 0); /* throttle */
	wbuf_i32(w, 1);         /* brokers */
	wbuf_i32(w, conf->node_id);
	wbuf_str(w, conf->kafka_host);
	wbuf_i32(w, conf->kafka_port);
	if (ver >= 1)
		wbuf_str(w, NULL); /* rack */
	if (ver >= 2)
		wbuf_str(w, "silt-single-node");
	if (ver >= 1)
		wbuf_i32(w, conf->node_id); /* controller */

	if (all) {
		int nt;
		struct ktopic **ts = kbroker_topics(&nt);
		wbuf_i32(w, nt);
		for (int i = 0; i < nt; i++) {
			write_topic(w, ver, KERR_NONE, ts[i]->name, strlen(ts[i]->name), ts[i]);
			ktopic_unref(ts[i]);
		}
		free(ts);
	} else {
		wbuf_i32(w, n);
		for (int32_t i = 0; i < n; i++) {
			const char *name = (const char *)names[i].p;
			size_t len = names[i].len > 0 ? (size_t)names[i].len : 0;
			struct ktopic *t = kbroker_topic(name ? name : "", len);
			int16_t err = KERR_NONE;
			if (!t) {
				if (!kafka_topic_name_valid(name, len)) {
					err = KERR_INVALID_TOPIC_EXCEPTION;
				} else if (conf->auto_create_topics && allow_create) {
					int e = kbroker_create_topic(name, len, 0, NULL, &t);
					if (e == KERR_TOPIC_ALREADY_EXISTS)
						t = kbroker_topic(name, len);
					else if (e != KERR_NONE)
						err = (int16_t)e;
					/* Kafka answers LEADER_NOT_AVAILABLE right after
					 * auto-creating; our leader exists at once, so we
					 * answer with the partitions directly. */
				} else {
					err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				}
			}
			write_topic(w, ver, err, name, len, t);
			ktopic_unref(t);
		}
	}
	if (ver >= 8)
		wbuf_i32(w, INT32_MIN); /* cluster_authorized_operations */
	free(names);
	return KH_DONE;
}
