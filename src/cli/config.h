/* config.h - `silt server` configuration: embedded defaults, then the
 * key=value file (--config), then command-line flags. Keys use Kafka's
 * broker config names where one exists. */
#ifndef SILT_CLI_CONFIG_H
#define SILT_CLI_CONFIG_H

#include "kafka/broker.h"

/* Everything `silt server` is configured with. */
struct silt_conf {
	struct kbroker_conf k; /* Kafka broker (and data_dir, nthreads) */
	bool s3_enabled;       /* s3.enable */
	char s3_host[256];     /* s3.addr / --s3-addr */
	int s3_port;
	char s3_domain[256];   /* s3.domain: virtual-host suffix */
	char s3_region[64];    /* s3.region */
	char root_user[129];   /* s3.root.user, SILT_ROOT_USER */
	char root_password[129]; /* s3.root.password, SILT_ROOT_PASSWORD */
	bool root_from_default;
};

void config_defaults(struct silt_conf *c);
/* Applies one key=value; 0, or -SILT_EINVAL (bad value) / -SILT_ENOENT
 * (unknown key). */
int config_set(struct silt_conf *c, const char *key, const char *value);
/* Reads a key=value file ('#' comments, blank lines). Errors are printed
 * with file:line. 0 or negative. */
int config_load_file(struct silt_conf *c, const char *path);
/* "host:port" into host (cap bytes) and *port. */
int config_parse_addr(const char *addr, char *host, size_t cap, int *port);

#endif
