/* config.h - `silt server` configuration: embedded defaults, then the
 * key=value file (--config), then command-line flags. Keys use Kafka's
 * broker config names where one exists. */
#ifndef SILT_CLI_CONFIG_H
#define SILT_CLI_CONFIG_H

#include "kafka/broker.h"

void config_defaults(struct kbroker_conf *c);
/* Applies one key=value; 0, or -SILT_EINVAL (bad value) / -SILT_ENOENT
 * (unknown key). */
int config_set(struct kbroker_conf *c, const char *key, const char *value);
/* Reads a key=value file ('#' comments, blank lines). Errors are printed
 * with file:line. 0 or negative. */
int config_load_file(struct kbroker_conf *c, const char *path);
/* "host:port" into c->kafka_host / kafka_port. */
int config_set_kafka_addr(struct kbroker_conf *c, const char *addr);

#endif
