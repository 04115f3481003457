/* dispatch.h - the API table {api_key, min, max, handler} and request header
 * decoding. The same table answers ApiVersions, so what we advertise is
 * exactly what we dispatch. */
#ifndef SILT_KAFKA_DISPATCH_H
#define SILT_KAFKA_DISPATCH_H

#include "kafka/kreq.h"

/* Decodes the request header from req->frame into req (api key, version,
 * correlation id, client id, body). 0, or -SILT_EINVAL if the frame is too
 * short to hold a header. */
int kafka_parse_header(struct kreq *req);
/* Runs the handler for req (KH_*). Unknown keys and versions are answered
 * as Kafka does: ApiVersions with error 35, anything else by closing. */
int kafka_dispatch(struct kreq *req);
const char *kafka_api_name(int16_t api_key);

#endif
