/* handlers.h - every Kafka API handler, one per API key. Each decodes its
 * request from r (body, positioned after the request header), writes the
 * response body to req->out and returns KH_* (see kreq.h). The dispatch table
 * in dispatch.c maps {api_key, min, max} to these. */
#ifndef SILT_KAFKA_HANDLERS_H
#define SILT_KAFKA_HANDLERS_H

#include "kafka/kreq.h"

/* api_core.c */
int kh_api_versions(struct kreq *req, struct rd *r);
int kh_metadata(struct kreq *req, struct rd *r);
/* api_produce.c */
int kh_produce(struct kreq *req, struct rd *r);
/* api_fetch.c */
int kh_fetch(struct kreq *req, struct rd *r);
int kh_list_offsets(struct kreq *req, struct rd *r);
/* api_admin.c */
int kh_create_topics(struct kreq *req, struct rd *r);
int kh_delete_topics(struct kreq *req, struct rd *r);
int kh_create_partitions(struct kreq *req, struct rd *r);
int kh_describe_configs(struct kreq *req, struct rd *r);
int kh_alter_configs(struct kreq *req, struct rd *r);
int kh_incremental_alter_configs(struct kreq *req, struct rd *r);
/* api_group.c */
int kh_find_coordinator(struct kreq *req, struct rd *r);
int kh_join_group(struct kreq *req, struct rd *r);
int kh_sync_group(struct kreq *req, struct rd *r);
int kh_heartbeat(struct kreq *req, struct rd *r);
int kh_leave_group(struct kreq *req, struct rd *r);
int kh_offset_commit(struct kreq *req, struct rd *r);
int kh_offset_fetch(struct kreq *req, struct rd *r);
int kh_list_groups(struct kreq *req, struct rd *r);
int kh_describe_groups(struct kreq *req, struct rd *r);
int kh_delete_groups(struct kreq *req, struct rd *r);
/* api_admin.c (InitProducerId: id allocation only, no transactions) */
int kh_init_producer_id(struct kreq *req, struct rd *r);

#endif
