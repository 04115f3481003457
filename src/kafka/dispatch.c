#include "core/platform.h"
#include "kafka/dispatch.h"
#include "core/log.h"
#include "kafka/errors.h"
#include "kafka/handlers.h"

struct kapi {
	int16_t key;
	int16_t min, max;
	const char *name;
	kafka_handler_fn fn;
};

/* Every API starts at version 0: librdkafka enables features only when the
 * advertised range contains specific old versions (KAFKA-NOTES.md). Maxima
 * stay below each API's first flexible version; ApiVersions v3 is the one
 * flexible request we decode. */
static const struct kapi apis[] = {
	{ 0, 0, 7, "Produce", kh_produce },
	{ 1, 0, 11, "Fetch", kh_fetch },
	{ 2, 0, 5, "ListOffsets", kh_list_offsets },
	{ 3, 0, 8, "Metadata", kh_metadata },
	{ 8, 0, 7, "OffsetCommit", kh_offset_commit },
	{ 9, 0, 5, "OffsetFetch", kh_offset_fetch },
	{ 10, 0, 2, "FindCoordinator", kh_find_coordinator },
	{ 11, 0, 5, "JoinGroup", kh_join_group },
	{ 12, 0, 3, "Heartbeat", kh_heartbeat },
	{ 13, 0, 3, "LeaveGroup", kh_leave_group },
	{ 14, 0, 3, "SyncGroup", kh_sync_group },
	{ 15, 0, 4, "DescribeGroups", kh_describe_groups },
	{ 16, 0, 2, "ListGroups", kh_list_groups },
	{ 18, 0, 3, "ApiVersions", kh_api_versions },
	{ 19, 0, 4, "CreateTopics", kh_create_topics },
	{ 20, 0, 3, "DeleteTopics", kh_delete_topics },
	{ 22, 0, 1, "InitProducerId", kh_init_producer_id },
	{ 32, 0, 3, "DescribeConfigs", kh_describe_configs },
	{ 33, 0, 1, "AlterConfigs", kh_alter_configs },
	{ 37, 0, 1, "CreatePartitions", kh_create_partitions },
	{ 42, 0, 1, "DeleteGroups", kh_delete_groups },
	{ 44, 0, 0, "IncrementalAlterConfigs", kh_incremental_alter_configs },
};

static const struct kapi *api_find(int16_t key)
{
	for (size_t i = 0; i < SILT_ARRAY_LEN(apis); i++)
		if (apis[i].key == key)
			return &apis[i];
	return NULL;
}

const char *kafka_api_name(int16_t api_key)
{
	const struct kapi *a = api_find(api_key);
	return a ? a->name : "UnknownApi";
}

int kafka_parse_header(struct kreq *req)
{
	struct rd r;
	rd_init(&r, req->frame, req->frame_len);
	req->api_key = rd_i16(&r);
	req->api_version = rd_i16(&r);
	req->correlation_id = rd_i32(&r);
	req->client_id = rd_str(&r);
	if (r.err)
		return -SILT_EINVAL;
	/* Request header v2 (flexible versions) adds tagged fields. The only
	 * flexible request we accept is ApiVersions v3+. */
	if (req->api_key == 18 && req->api_version >= 3)
		rd_tags(&r);
	if (r.err)
		return -SILT_EINVAL;
	req->body.p = r.p;
	req->body.len = (int32_t)(r.end - r.p);
	return 0;
}

int kafka_dispatch(struct kreq *req)
{
	const struct kapi *a = api_find(req->api_key);
	if (a && req->api_version >= a->min && req->api_version <= a->max) {
		struct rd r;
		rd_init(&r, req->body.p, (size_t)req->body.len);
		return a->fn(req, &r);
	}
	if (req->api_key == 18) {
		/* Unknown ApiVersions version: answer in v0 format with
		 * UNSUPPORTED_VERSION and our own range, so the client retries
		 * lower (KIP-511). */
		wbuf_i16(&req->out, KERR_UNSUPPORTED_VERSION);
		wbuf_i32(&req->out, 1);
		wbuf_i16(&req->out, 18);
		wbuf_i16(&req->out, a->min);
		wbuf_i16(&req->out, a->max);
		return KH_DONE;
	}
	log_warn("kafka", "unsupported request %s (key %d) v%d from client '%.*s', closing",
		 kafka_api_name(req->api_key), req->api_key, req->api_version,
		 req->client_id.len > 0 ? (int)SILT_MIN(req->client_id.len, 64) : 0,
		 req->client_id.len > 0 ? (const char *)req->client_id.p : "");
	return KH_CLOSE;
}

int kh_api_versions(struct kreq *req, struct rd *r)
{
	bool flexible = req->api_version >= 3;
	if (flexible) {
		(void)rd_compact_str(r); /* client_software_name */
		(void)rd_compact_str(r); /* client_software_version */
		rd_tags(r);
		/* Kafka answers a malformed v3 body with INVALID_REQUEST rather
		 * than closing; we do the same. */
	}
	struct wbuf *w = &req->out;
	wbuf_i16(w, r->err ? KERR_INVALID_REQUEST : KERR_NONE);
	if (flexible)
		wbuf_uvarint(w, SILT_ARRAY_LEN(apis) + 1);
	else
		wbuf_i32(w, (int32_t)SILT_ARRAY_LEN(apis));
	for (size_t i = 0; i < SILT_ARRAY_LEN(apis); i++) {
		wbuf_i16(w, apis[i].key);
		wbuf_i16(w, apis[i].min);
		wbuf_i16(w, apis[i].max);
		if (flexible)
			wbuf_uvarint(w, 0);
	}
	if (req->api_version >= 1)
		wbuf_i32(w, 0); /* throttle_time_ms */
	if (flexible)
		wbuf_uvarint(w, 0);
	return KH_DONE;
}
