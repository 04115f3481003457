# lib.sh - harness for silt's bash Kafka integration tests (the shared part
# is common.sh). Source it:
#
#   . "$(dirname "$0")/lib.sh"
#   silt_start 'num.partitions=2' 'auto.create.topics.enable=true'
#   ... use $SILT_BOOT (127.0.0.1:PORT), $SILT_PORT, $SILT_DATA, $SILT_LOG ...
#   pass
#
# silt_start starts build/silt on free 127.0.0.1 ports (Kafka and S3) with a
# fresh data directory, writing the given key=value lines to a config file,
# and waits until the Kafka port accepts connections.

# shellcheck source=tests/integration/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SILT_PORT=
SILT_BOOT=
SILT_S3_PORT=
SILT_CONF=

# silt_start [key=value ...]: first start; later calls restart on the same
# ports and data directory with the same config.
silt_start() {
	if [ -z "$SILT_PORT" ]; then
		SILT_PORT=$(free_port)
		SILT_S3_PORT=$(free_port)
		SILT_BOOT=127.0.0.1:$SILT_PORT
		if [ $# -gt 0 ]; then
			SILT_CONF=$IT_TMP/silt.conf
			printf '%s\n' "$@" >"$SILT_CONF"
		fi
	fi
	local args=(server --data-dir "$SILT_DATA" --kafka-addr "$SILT_BOOT" --s3-addr "127.0.0.1:$SILT_S3_PORT")
	[ -n "$SILT_CONF" ] && args+=(--config "$SILT_CONF")
	silt_launch "$SILT_PORT" "${args[@]}"
}

# kc ARGS...: kcat against the server, bounded in time.
kc() {
	timeout 30 kcat -b "$SILT_BOOT" "$@"
}
