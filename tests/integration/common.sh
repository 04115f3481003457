# common.sh - what silt's bash integration tests share: strict mode, the
# temporary directory, assertions, ports and one `silt server` process.
# Not sourced by tests directly: they source lib.sh (Kafka) or s3_lib.sh
# (S3), which source this.
#
# silt_launch WAIT_PORT ARGS... starts build/silt (or $SILT_BIN) with ARGS,
# its stderr appended to $SILT_LOG, and waits (bounded by
# $SILT_START_TIMEOUT, 10 s) until WAIT_PORT accepts connections. At exit
# the server is killed by PID; on failure (fail, or any command failing
# under set -e) the tail of the log is printed and the temporary directory
# kept for inspection.

set -euo pipefail

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$IT_DIR/../.." && pwd)
SILT_BIN=${SILT_BIN:-$ROOT/build/silt}
SILT_START_TIMEOUT=${SILT_START_TIMEOUT:-10}
PY=/usr/bin/python3
IT_TMP=$(mktemp -d "/tmp/${IT_TMP_PREFIX:-silt-it}-XXXXXX")
SILT_DATA=$IT_TMP/data
SILT_LOG=$IT_TMP/silt.stderr.log
SILT_PID=
_it_ok=0
_it_t0=$(date +%s.%N)

log() { printf '  [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

_it_exit() {
	local rc=$?
	silt_kill9 2>/dev/null || true
	if [ "$_it_ok" = 1 ] && [ "$rc" = 0 ]; then
		rm -rf "$IT_TMP"
	else
		[ "$rc" = 0 ] && rc=1
		echo "----- silt stderr ($SILT_LOG), last 80 lines -----"
		[ -f "$SILT_LOG" ] && tail -n 80 "$SILT_LOG" | sed 's/^/  | /'
		echo "kept for inspection: $IT_TMP"
		echo "FAILED"
	fi
	exit "$rc"
}
trap _it_exit EXIT
trap 'exit 130' INT TERM

fail() {
	echo "FAIL: $*"
	exit 1
}

pass() {
	_it_ok=1
	awk -v a="$_it_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "ok (%.1fs)\n", b - a }'
	exit 0
}

skip() {
	_it_ok=1
	echo "SKIPPED: $*"
	exit 0
}

# assert_eq GOT WANT WHAT
assert_eq() {
	if [ "$1" != "$2" ]; then
		printf 'FAIL: %s\n  got:  %q\n  want: %q\n' "$3" "$1" "$2"
		if [ "$(printf '%s' "$1" | wc -l)" -gt 1 ] || [ "$(printf '%s' "$2" | wc -l)" -gt 1 ]; then
			diff <(printf '%s\n' "$2") <(printf '%s\n' "$1") | head -40 | sed 's/^/  /' || true
		fi
		exit 1
	fi
}

# assert_contains HAYSTACK NEEDLE WHAT
assert_contains() {
	case "$1" in
	*"$2"*) ;;
	*) printf 'FAIL: %s: %q not found in:\n%s\n' "$3" "$2" "$1" | head -60; exit 1 ;;
	esac
}

# assert_not_contains HAYSTACK NEEDLE WHAT
assert_not_contains() {
	case "$1" in
	*"$2"*) printf 'FAIL: %s: %q found in:\n%s\n' "$3" "$2" "$1" | head -60; exit 1 ;;
	*) ;;
	esac
}

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

port_open() {
	# bash's /dev/tcp, bounded by timeout(1)
	timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# silt_launch WAIT_PORT ARGS...: start `$SILT_BIN ARGS...` in the
# background and wait until WAIT_PORT accepts connections.
silt_launch() {
	local wait_port=$1
	shift
	[ -x "$SILT_BIN" ] || fail "no executable $SILT_BIN (run make build/silt)"
	mkdir -p "$SILT_DATA"
	echo "=== start: $SILT_BIN $*" >>"$SILT_LOG"
	"$SILT_BIN" "$@" </dev/null >>"$SILT_LOG" 2>&1 &
	SILT_PID=$!
	local deadline=$((SECONDS + SILT_START_TIMEOUT)) i
	for ((i = 0; i < 1000; i++)); do
		kill -0 "$SILT_PID" 2>/dev/null || { wait "$SILT_PID" || true; SILT_PID=; fail "silt exited during startup"; }
		port_open "$wait_port" && return 0
		[ $SECONDS -ge $deadline ] && fail "silt did not accept connections on port $wait_port within ${SILT_START_TIMEOUT}s"
		sleep 0.05
	done
	fail "silt did not start"
}

# silt_stop: SIGTERM, wait (bounded), require exit status 0.
silt_stop() {
	[ -n "$SILT_PID" ] || return 0
	kill -TERM "$SILT_PID" 2>/dev/null || true
	local i rc
	for ((i = 0; i < 200; i++)); do
		kill -0 "$SILT_PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$SILT_PID" 2>/dev/null; then
		kill -KILL "$SILT_PID" 2>/dev/null || true
		wait "$SILT_PID" 2>/dev/null || true
		SILT_PID=
		fail "silt did not exit within 10s of SIGTERM"
	fi
	rc=0
	wait "$SILT_PID" || rc=$?
	SILT_PID=
	[ "$rc" = 0 ] || fail "silt exited with status $rc after SIGTERM"
}

silt_kill9() {
	[ -n "$SILT_PID" ] || return 0
	kill -KILL "$SILT_PID" 2>/dev/null || true
	wait "$SILT_PID" 2>/dev/null || true
	SILT_PID=
}
