#!/usr/bin/env bash
# Runs the comparison benchmarks of docs/BENCHMARKS.md: silt (Kafka API via
# librdkafka), NATS JetStream (file store) and Redis Streams (AOF everysec),
# all driven by `silt bench` with the same workload shapes, and prints the
# medians as a markdown table.
#
#   scripts/bench.sh [--runs N] [--only silt,nats,redis] [--quick]
#
# Each system is started on 127.0.0.1 in a temporary directory just before
# its workloads and stopped right after, so only one server is busy at a
# time. Every server runs under `timeout`, every client run under `timeout`
# and its own --duration-s cap, and everything started here is killed on
# exit. Missing peers (the Debian packages nats-server and redis-server) are
# installed with apt-get; nothing else is.
#
# Environment: SILT (server binary, default build/silt), SILT_ARGS (extra
# `silt server` options, e.g. "--set silt.fsync.before.ack=true"), BENCH_BIN
# (binary providing `bench`, default $SILT), KAFKA_PORT/NATS_PORT/REDIS_PORT
# (moved to the next free port if busy), BENCH_LOG (raw output, default
# /tmp/silt-bench-<date>.log).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=3
ONLY=silt,nats,redis
QUICK=0

usage() {
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-2}"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--runs) [ $# -ge 2 ] || usage; RUNS=$2; shift 2 ;;
	--runs=*) RUNS=${1#*=}; shift ;;
	--only) [ $# -ge 2 ] || usage; ONLY=$2; shift 2 ;;
	--only=*) ONLY=${1#*=}; shift ;;
	--quick) QUICK=1; shift ;;
	-h | --help) usage 0 ;;
	*) echo "bench.sh: unknown argument '$1'" >&2; usage ;;
	esac
done
case "$RUNS" in '' | *[!0-9]*) echo "bench.sh: --runs needs a number" >&2; exit 2 ;; esac
if [ "$RUNS" -lt 1 ] || [ "$RUNS" -gt 9 ]; then echo "bench.sh: --runs must be 1..9" >&2; exit 2; fi

# Workload sizes. --quick is a smoke run that takes seconds, not a benchmark.
if [ "$QUICK" = 1 ]; then
	N_SMALL=100000; N_LARGE=5000; LAT_S=2
else
	N_SMALL=2000000; N_LARGE=100000; LAT_S=10
fi
LAT_RATE=10000
CAP_S=120                 # --duration-s of every client run
CLIENT_TIMEOUT=$((CAP_S + 60))
SERVER_LIFETIME=3600      # hard bound on each server process

SILT=${SILT:-$ROOT/build/silt}
BENCH_BIN=${BENCH_BIN:-$SILT}
KAFKA_PORT=${KAFKA_PORT:-29092}
NATS_PORT=${NATS_PORT:-24222}
REDIS_PORT=${REDIS_PORT:-26379}
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
BENCH_LOG=${BENCH_LOG:-/tmp/silt-bench-$(date -u +%Y%m%dT%H%M%SZ).log}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/silt-bench.XXXXXX")
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do
		# Bounded: give each process 5 s to exit, then KILL.
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench.sh: $*" >&2; }

want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# --- prerequisites -----------------------------------------------------------
install_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	local SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pkgs=()
want nats && ! command -v nats-server >/dev/null && pkgs+=(nats-server)
want redis && ! command -v redis-server >/dev/null && pkgs+=(redis-server)
[ ${#pkgs[@]} -gt 0 ] && install_pkgs "${pkgs[@]}"

if { want silt && [ ! -x "$SILT" ]; } || [ ! -x "$BENCH_BIN" ]; then
	log "building build/silt"
	make -C "$ROOT" -j"$(nproc)" build/silt >/dev/null
fi
if ! "$BENCH_BIN" bench --help >/dev/null 2>&1; then
	echo "bench.sh: '$BENCH_BIN bench --help' failed; is the bench command wired into the CLI?" >&2
	exit 1
fi






# --- helpers (port handling, start/stop, quiesce: scripts/bench_lib.sh) ----
# shellcheck source=scripts/bench_lib.sh
. "$ROOT/scripts/bench_lib.sh"

# run SYS WORKLOAD RUN ARGS...: one client run; appends its RESULT line to
# $TMP/SYS.WORKLOAD (or "fail") and the whole output to the log.
run() {
	local sys=$1 wl=$2 i=$3
	shift 3
	local out rc=0
	echo "### $sys $wl run $i: bench $*" >>"$BENCH_LOG"
	out=$(timeout -s TERM "$CLIENT_TIMEOUT" "$BENCH_BIN" bench "$@" --duration-s "$CAP_S" 2>&1) || rc=$?
	echo "$out" >>"$BENCH_LOG"
	local res
	res=$(printf '%s\n' "$out" | grep '^RESULT ' | tail -n 1 || true)
	if [ $rc -ne 0 ] || [ -z "$res" ]; then
		log "$sys $wl run $i failed (exit $rc); see $BENCH_LOG"
		echo fail >>"$TMP/$sys.$wl"
	else
		echo "$res" >>"$TMP/$sys.$wl"
		log "$sys $wl run $i: $(printf '%s\n' "$res" | cut -d' ' -f5-)"
	fi
}


# median SYS WORKLOAD KEY: median over the successful runs, "fail" if none.
median() {
	local f=$TMP/$1.$2 vals
	[ -f "$f" ] || { echo "n/a"; return; }
	vals=$(grep -v '^fail$' "$f" | while read -r l; do field "$3" "$l"; done | sort -g)
	[ -n "$vals" ] || { echo "fail"; return; }
	printf '%s\n' "$vals" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Suffix " (k/n)" when only k of n runs succeeded.
okruns() {
	local f=$TMP/$1.$2
	[ -f "$f" ] || return 0
	local n k
	n=$(wc -l <"$f")
	k=$(grep -vc '^fail$' "$f" || true)
	[ "$k" = "$n" ] || printf ' (%s/%s ok)' "$k" "$n"
}

commas() { printf '%.0f' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }

# --- workloads ---------------------------------------------------------------
# workloads SYS TARGET-ARGS...: the four workloads, RUNS times each. Produce
# runs never append to older data: NATS and Redis recreate their stream at
# each produce run (so memory and disk do not grow run after run), silt gets
# a fresh topic per run. Each consume run reads what the produce run just
# before it wrote. Dirty pages are written back between runs so one run's
# writeback does not land in the next one's figures.
workloads() {
	local sys=$1 i sfx
	shift
	for i in $(seq "$RUNS"); do
		sfx=""
		[ "$sys" = silt ] && sfx=-$i
		quiesce
		run "$sys" lat "$i" "$@" --topic "bench-lat$sfx" --mode latency --rate "$LAT_RATE" --size 100 \
			--messages $((LAT_RATE * LAT_S))
		quiesce
		run "$sys" p100 "$i" "$@" --topic "bench-small$sfx" --mode produce --messages "$N_SMALL" --size 100
		run "$sys" c100 "$i" "$@" --topic "bench-small$sfx" --mode consume --messages "$N_SMALL" --size 100
		quiesce
		run "$sys" p16k "$i" "$@" --topic "bench-large$sfx" --mode produce --messages "$N_LARGE" --size 16384
	done
}

: >"$BENCH_LOG"
log "raw output in $BENCH_LOG"

# Other silt instances may be running on a shared machine: move off busy ports.
KAFKA_PORT=$(free_port "$KAFKA_PORT") || { log "no free port near $KAFKA_PORT"; exit 1; }
NATS_PORT=$(free_port "$NATS_PORT") || { log "no free port near $NATS_PORT"; exit 1; }
REDIS_PORT=$(free_port "$REDIS_PORT") || { log "no free port near $REDIS_PORT"; exit 1; }

if want silt; then
	mkdir -p "$TMP/silt-data"
	# shellcheck disable=SC2086 # SILT_ARGS is a list of words on purpose
	if start silt "$KAFKA_PORT" "$SILT" server --data-dir "$TMP/silt-data" --kafka-addr "127.0.0.1:$KAFKA_PORT" \
		${SILT_ARGS:-}; then
		workloads silt kafka --brokers "127.0.0.1:$KAFKA_PORT" --acks 1
		stop silt
	fi
fi
if want nats; then
	mkdir -p "$TMP/nats-js"
	if start nats "$NATS_PORT" nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$TMP/nats-js"; then
		workloads nats nats --url "nats://127.0.0.1:$NATS_PORT"
		stop nats
	fi
fi
if want redis; then
	mkdir -p "$TMP/redis"
	if start redis "$REDIS_PORT" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$TMP/redis" \
		--appendonly yes --appendfsync everysec --save '' --daemonize no; then
		workloads redis redis --host 127.0.0.1 --port "$REDIS_PORT"
		stop redis
	fi
fi

# --- report ------------------------------------------------------------------
cell_rate() { # SYS WL: msgs/s median
	local m
	m=$(median "$1" "$2" msgs_per_s)
	case "$m" in fail | n/a) echo "$m" ;; *) echo "$(commas "$m")$(okruns "$1" "$2")" ;; esac
}
cell_mb() {
	local m
	m=$(median "$1" "$2" mb_per_s)
	case "$m" in fail | n/a) echo "$m" ;; *) printf '%.1f%s' "$m" "$(okruns "$1" "$2")" ;; esac
}
cell_lat() {
	local a b c
	a=$(median "$1" lat p50_us)
	b=$(median "$1" lat p99_us)
	c=$(median "$1" lat p999_us)
	case "$b" in fail | n/a) echo "$b"; return ;; esac
	printf '%s%s' "$(awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN { printf "%.2f / %.2f / %.2f", a / 1000, b / 1000, c / 1000 }')" \
		"$(okruns "$1" lat)"
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
nats_v=$(nats-server --version 2>/dev/null | sed 's/^nats-server: //' || echo '?')
redis_v=$(redis-server --version 2>/dev/null | sed -n 's/.*v=\([^ ]*\).*/\1/p' || echo '?')
rdk_v=$(sed -n 's/^librdkafka \([^ ]*\) settings:/\1/p' "$BENCH_LOG" | head -n 1)
[ -n "$rdk_v" ] || rdk_v=$(pkg-config --modversion rdkafka 2>/dev/null || true)

cat <<EOF

### Results ($DATE)

Command: \`scripts/bench.sh --runs $RUNS$( [ "$QUICK" = 1 ] && echo ' --quick')$( [ "$ONLY" != silt,nats,redis ] && echo " --only $ONLY")\`
Machine: $(nproc) cores, $cpu, $(uname -sr). Client and server on the same host
over 127.0.0.1. Each cell is the median of $RUNS runs$( [ "$QUICK" = 1 ] && echo ' (QUICK SMOKE RUN, not a benchmark)').

| workload | silt (Kafka API, librdkafka ${rdk_v:-?}) | NATS JetStream ${nats_v} (file store) | Redis Streams ${redis_v} (AOF everysec) |
|---|---:|---:|---:|
| produce $(commas "$N_SMALL") x 100 B, acks=1, msgs/s | $(cell_rate silt p100) | $(cell_rate nats p100) | $(cell_rate redis p100) |
| consume $(commas "$N_SMALL") x 100 B from the start, msgs/s | $(cell_rate silt c100) | $(cell_rate nats c100) | $(cell_rate redis c100) |
| produce $(commas "$N_LARGE") x 16 KiB, MB/s | $(cell_mb silt p16k) | $(cell_mb nats p16k) | $(cell_mb redis p16k) |
| latency at $(commas "$LAT_RATE") msgs/s for ${LAT_S} s, p50 / p99 / p99.9 ms | $(cell_lat silt) | $(cell_lat nats) | $(cell_lat redis) |

Clients: silt via librdkafka (linger.ms=5, batch.size 1 MB, batch.num.messages 100000;
latency: linger.ms=0, acks=1); NATS via libnats js_PublishAsync (1000 in flight) and an
ephemeral AckNone pull consumer (fetch 1000); Redis via hiredis, XADD pipelined 1000 deep
and XREAD COUNT 1000. Latency is send-to-acknowledgement, measured from each message's
scheduled send time. MB = 10^6 bytes. Durability as configured: silt \`server${SILT_ARGS:+ $SILT_ARGS}\`
(default: acknowledges after the write, fsync by the flush policy, as Kafka does), NATS file
store with its default sync, Redis \`appendfsync everysec\`. Raw output: $BENCH_LOG.
EOF
