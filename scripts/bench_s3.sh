#!/usr/bin/env bash
# Runs the object-store benchmarks of docs/BENCHMARKS.md: silt's S3 API
# against nginx serving the same files (WebDAV PUT, static GET with
# sendfile), both driven by `silt bench s3` with the same workload shapes,
# and prints the medians as a markdown table with the silt/nginx ratios.
#
#   scripts/bench_s3.sh [--runs N] [--only silt,nginx] [--quick] [--list-1m] [--no-large]
#
#   4 KiB objects x 16 connections: PUT 100,000, then GET them back (a
#              phase of a second or more, so a scheduler hiccup of a few ms
#              on this 2-core machine does not decide the figure)
#   64 MiB objects x 16 connections: PUT 64 (4 GiB), then GET them back
#   --list-1m: populate a silt bucket with 1,000,000 keys, then walk it with
#              ListObjectsV2 pages of 1,000 keys (silt only; takes minutes)
#
# Each run starts each server afresh in its own temporary directory, so runs
# do not see each other's data, and stops it after. Every server runs under
# `timeout`, every client run under `timeout` and its own --duration-s cap,
# and everything started here is killed on exit. nginx (the Debian package)
# is installed with apt-get if missing; nothing else is.
#
# Environment: SILT (server binary, default build/silt), SILT_ARGS (extra
# `silt server` options), BENCH_BIN (binary providing `bench s3`, default
# $SILT), S3_PORT/KAFKA_PORT/NGINX_PORT (moved to the next free port if
# busy), BENCH_LOG (raw output, default /tmp/silt-bench-s3-<date>.log),
# NGINX_WORKERS (worker_processes, default 2 like silt's two loops),
# NGINX_WRAP (a command prefix for nginx, e.g. "chrt -b 0" to run it under
# the SCHED_BATCH policy silt's network threads use by default).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=3
ONLY=silt,nginx
QUICK=0
LIST1M=0
LARGE=1
ARGS_GIVEN="$*"

usage() {
	sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-2}"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--runs) [ $# -ge 2 ] || usage; RUNS=$2; shift 2 ;;
	--runs=*) RUNS=${1#*=}; shift ;;
	--only) [ $# -ge 2 ] || usage; ONLY=$2; shift 2 ;;
	--only=*) ONLY=${1#*=}; shift ;;
	--quick) QUICK=1; shift ;;
	--list-1m) LIST1M=1; shift ;;
	--no-large) LARGE=0; shift ;;
	-h | --help) usage 0 ;;
	*) echo "bench_s3.sh: unknown argument '$1'" >&2; usage ;;
	esac
done
case "$RUNS" in '' | *[!0-9]*) echo "bench_s3.sh: --runs needs a number" >&2; exit 2 ;; esac
if [ "$RUNS" -lt 1 ] || [ "$RUNS" -gt 9 ]; then echo "bench_s3.sh: --runs must be 1..9" >&2; exit 2; fi
case ",$ONLY," in *,silt,* | *,nginx,*) ;; *) echo "bench_s3.sh: --only takes silt and/or nginx" >&2; exit 2 ;; esac

# Workload sizes. --quick is a smoke run that takes seconds, not a benchmark.
CONC=16
SMALL_SIZE=4096
LARGE_SIZE=$((64 * 1024 * 1024))
if [ "$QUICK" = 1 ]; then
	N_SMALL=2000; N_LARGE=16; N_LIST=20000
else
	N_SMALL=100000; N_LARGE=64; N_LIST=1000000
fi
POP_CONC=64
CAP_S=300                 # --duration-s of every put/get client run
POP_CAP_S=1800            # populating 1M keys
SERVER_LIFETIME=7200      # hard bound on each server process

SILT=${SILT:-$ROOT/build/silt}
BENCH_BIN=${BENCH_BIN:-$SILT}
S3_PORT=${S3_PORT:-29500}
KAFKA_PORT=${KAFKA_PORT:-29592}
NGINX_PORT=${NGINX_PORT:-29580}
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
BENCH_LOG=${BENCH_LOG:-/tmp/silt-bench-s3-$(date -u +%Y%m%dT%H%M%SZ).log}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/silt-bench-s3.XXXXXX")
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

log() { echo "bench_s3.sh: $*" >&2; }

want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# --- prerequisites -----------------------------------------------------------
if want nginx && ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
	log "installing nginx"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ ! -x "$SILT" ] || [ ! -x "$BENCH_BIN" ]; then
	log "building build/silt"
	make -C "$ROOT" -j"$(nproc)" build/silt >/dev/null
fi
if ! "$BENCH_BIN" bench s3 --help >/dev/null 2>&1; then
	echo "bench_s3.sh: '$BENCH_BIN bench s3 --help' failed; is the s3 bench target built in?" >&2
	exit 1
fi






# --- helpers (port handling, start/stop, quiesce: scripts/bench_lib.sh) ----
# shellcheck source=scripts/bench_lib.sh
. "$ROOT/scripts/bench_lib.sh"

# run SYS WORKLOAD RUN CAP ARGS...: one client run. Each RESULT line goes to
# $TMP/SYS.WORKLOAD.MODE ("fail" when that phase failed or is missing),
# the whole output to the log.
run() {
	local sys=$1 wl=$2 i=$3 cap=$4
	shift 4
	local out rc=0 modes m res
	echo "### $sys $wl run $i: bench s3 $* --duration-s $cap" >>"$BENCH_LOG"
	out=$(timeout -s TERM $((cap + 60)) "$BENCH_BIN" bench s3 "$@" --duration-s "$cap" 2>&1) || rc=$?
	echo "$out" >>"$BENCH_LOG"
	case " $* " in
	*" --populate "*) modes=populate ;;
	*" --mode list "*) modes=list ;;
	*) modes="put get" ;;
	esac
	for m in $modes; do
		res=$(printf '%s\n' "$out" | grep "^RESULT .* mode=$m " | tail -n 1 || true)
		if [ -z "$res" ] || [ "$(field complete "$res")" != 1 ] || [ "$(field failures "$res")" != 0 ]; then
			log "$sys $wl $m run $i failed (exit $rc); see $BENCH_LOG"
			printf '%s\n' "$out" | grep -i 'silt bench' | head -n 3 >&2 || true
			echo fail >>"$TMP/$sys.$wl.$m"
		else
			echo "$res" >>"$TMP/$sys.$wl.$m"
			log "$sys $wl $m run $i: $(printf '%s\n' "$res" | cut -d' ' -f4- | cut -c1-150)"
		fi
	done
}


# median FILE KEY: median over the successful runs, "fail" if none.
median() {
	local f=$TMP/$1 vals
	[ -f "$f" ] || { echo "n/a"; return; }
	vals=$(grep -v '^fail$' "$f" | while read -r l; do field "$2" "$l"; done | sort -g)
	[ -n "$vals" ] || { echo "fail"; return; }
	printf '%s\n' "$vals" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Suffix " (k/n ok)" when only k of n runs succeeded.
okruns() {
	local f=$TMP/$1
	[ -f "$f" ] || return 0
	local n k
	n=$(wc -l <"$f")
	k=$(grep -vc '^fail$' "$f" || true)
	[ "$k" = "$n" ] || printf ' (%s/%s ok)' "$k" "$n"
}

start_silt() {
	rm -rf "$TMP/silt-data"
	mkdir -p "$TMP/silt-data"
	# shellcheck disable=SC2086 # SILT_ARGS is a list of words on purpose
	start silt "$S3_PORT" "$SILT" server --data-dir "$TMP/silt-data" --kafka-addr "127.0.0.1:$KAFKA_PORT" \
		--s3-addr "127.0.0.1:$S3_PORT" ${SILT_ARGS:-}
}

# nginx as a plain file server: PUT through the WebDAV module into a root
# on the same filesystem as its body temp files (a rename, no copy), GET
# with sendfile, no access log, keep-alive without a request limit (the
# default closes every 1000 requests; the silt client keeps its
# connections too).
start_nginx() {
	local d=$TMP/nginx
	rm -rf "$d"
	mkdir -p "$d/www" "$d/body" "$d/logs"
	local user=""
	[ "$(id -u)" = 0 ] && user="user root;"
	cat >"$d/nginx.conf" <<EOF
$user
worker_processes ${NGINX_WORKERS:-2};
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	tcp_nodelay on;
	keepalive_requests 100000000;
	keepalive_timeout 300s;
	client_max_body_size 0;
	client_body_temp_path $d/body;
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:$NGINX_PORT;
		root $d/www;
		location / {
			dav_methods PUT;
			create_full_put_path on;
			dav_access user:rw group:r all:r;
		}
	}
}
EOF
	# shellcheck disable=SC2086 # NGINX_WRAP is a command prefix, split on purpose
	start nginx "$NGINX_PORT" ${NGINX_WRAP:-} "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log"
}

# --- workloads ---------------------------------------------------------------
: >"$BENCH_LOG"
log "raw output in $BENCH_LOG"

S3_PORT=$(free_port "$S3_PORT") || { log "no free port near $S3_PORT"; exit 1; }
KAFKA_PORT=$(free_port "$KAFKA_PORT") || { log "no free port near $KAFKA_PORT"; exit 1; }
NGINX_PORT=$(free_port "$NGINX_PORT") || { log "no free port near $NGINX_PORT"; exit 1; }

if [ "$LARGE" = 1 ]; then
	need_kb=$((N_LARGE * LARGE_SIZE * 5 / 4 / 1024))
	have_kb=$(df -Pk "$TMP" | awk 'NR == 2 { print $4 }')
	if [ "$have_kb" -lt "$need_kb" ]; then
		log "only $((have_kb / 1024)) MiB free in $TMP, the large workload needs $((need_kb / 1024)) MiB: skipping it"
		LARGE=0
	fi
fi

SILT_EP=http://127.0.0.1:$S3_PORT
NGINX_EP=http://127.0.0.1:$NGINX_PORT
common=(--concurrency "$CONC")
for i in $(seq "$RUNS"); do
	if want silt; then
		if start_silt; then
			quiesce
			run silt small "$i" "$CAP_S" --endpoint "$SILT_EP" --create-bucket "${common[@]}" \
				--mode both --objects "$N_SMALL" --size "$SMALL_SIZE" --prefix "small/"
			if [ "$LARGE" = 1 ]; then
				quiesce
				run silt large "$i" "$CAP_S" --endpoint "$SILT_EP" "${common[@]}" \
					--mode both --objects "$N_LARGE" --size "$LARGE_SIZE" --prefix "large/"
			fi
			stop silt
		else
			echo fail >>"$TMP/silt.small.put"
		fi
		rm -rf "$TMP/silt-data"
	fi
	if want nginx; then
		if start_nginx; then
			quiesce
			run nginx small "$i" "$CAP_S" --endpoint "$NGINX_EP" --unsigned "${common[@]}" \
				--mode both --objects "$N_SMALL" --size "$SMALL_SIZE" --prefix "small/"
			if [ "$LARGE" = 1 ]; then
				quiesce
				run nginx large "$i" "$CAP_S" --endpoint "$NGINX_EP" --unsigned "${common[@]}" \
					--mode both --objects "$N_LARGE" --size "$LARGE_SIZE" --prefix "large/"
			fi
			stop nginx
		else
			echo fail >>"$TMP/nginx.small.put"
		fi
		rm -rf "$TMP/nginx"
	fi
done

# One bucket of N_LIST keys, listed RUNS times: populating dominates, and
# the listing does not change the bucket.
if [ "$LIST1M" = 1 ] && want silt; then
	if start_silt; then
		run silt list "-" "$POP_CAP_S" --endpoint "$SILT_EP" --create-bucket --populate "$N_LIST" \
			--concurrency "$POP_CONC" --size 16 --prefix "list/"
		quiesce
		for i in $(seq "$RUNS"); do
			run silt list "$i" "$CAP_S" --endpoint "$SILT_EP" --mode list --max-keys 1000 --prefix "list/"
		done
		stop silt
	fi
	rm -rf "$TMP/silt-data"
fi

# --- report ------------------------------------------------------------------
commas() { printf '%.0f' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
isnum() { case "$1" in '' | fail | n/a) return 1 ;; *) return 0 ;; esac; }

# cell FILE KEY FORMAT: the median formatted, with the ok-runs suffix.
cell() {
	local m
	m=$(median "$1" "$2")
	isnum "$m" || { echo "$m"; return; }
	case "$3" in
	int) echo "$(commas "$m")$(okruns "$1")" ;;
	*) printf "%$3%s" "$m" "$(okruns "$1")" ;;
	esac
}

# ratio_row LABEL WL MODE KEY FORMAT TARGET: one comparison row.
ratio_row() {
	local label=$1 wl=$2 mode=$3 key=$4 fmt=$5 target=$6
	local a b ratio verdict
	a=$(median "silt.$wl.$mode" "$key")
	b=$(median "nginx.$wl.$mode" "$key")
	if isnum "$a" && isnum "$b" && awk -v b="$b" 'BEGIN { exit !(b > 0) }'; then
		ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", a / b }')
		verdict=$(awk -v a="$a" -v b="$b" -v t="$target" 'BEGIN { print (a / b >= t) ? "yes" : "**no**" }')
	else
		ratio=n/a
		verdict=n/a
	fi
	echo "| $label | $(cell "silt.$wl.$mode" "$key" "$fmt") | $(cell "nginx.$wl.$mode" "$key" "$fmt") | $ratio | >= ${target}x | $verdict |"
}

lat_cell() { # FILE: p50 / p99 ms medians
	local a b
	a=$(median "$1" p50_ms)
	b=$(median "$1" p99_ms)
	isnum "$b" || { echo "$b"; return; }
	printf '%.2f / %.2f%s' "$a" "$b" "$(okruns "$1")"
}

cpu_cell() { # WL MODE: client CPU medians, silt / nginx
	local a b
	a=$(median "silt.$1.$2" client_cpu_pct)
	b=$(median "nginx.$1.$2" client_cpu_pct)
	echo "$a / $b"
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
ngx_v=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //' || echo '?')
large_mib=$((LARGE_SIZE / 1024 / 1024))
large_total=$(awk -v n="$N_LARGE" -v s="$LARGE_SIZE" 'BEGIN { printf "%.1f GiB", n * s / 1073741824 }')

cat <<EOF

### Object store results ($DATE)

Command: \`scripts/bench_s3.sh${ARGS_GIVEN:+ $ARGS_GIVEN}\`
Machine: $(nproc) cores, $cpu, $(uname -sr). Client (\`silt bench s3\`, one thread,
epoll, keep-alive) and server on the same host over 127.0.0.1. Each cell is the median of
$RUNS runs$([ "$QUICK" = 1 ] && echo ' (QUICK SMOKE RUN, not a benchmark)'); every run starts the server on an empty directory.

| workload | silt (S3 API, SigV4) | ${ngx_v} (WebDAV PUT, sendfile GET) | silt/nginx | target | met |
|---|---:|---:|---:|---:|:---:|
EOF
ratio_row "PUT $(commas "$N_SMALL") x 4 KiB, $CONC conns, ops/s" small put ops_per_s int 1.5
ratio_row "GET $(commas "$N_SMALL") x 4 KiB, $CONC conns, ops/s" small get ops_per_s int 0.9
if [ "$LARGE" = 1 ]; then
	ratio_row "PUT $N_LARGE x $large_mib MiB ($large_total), $CONC conns, MB/s" large put mb_per_s .1f 0.8
	ratio_row "GET $N_LARGE x $large_mib MiB ($large_total), $CONC conns, MB/s" large get mb_per_s .1f 0.9
fi

cat <<EOF

| latency per request, p50 / p99 ms | silt | nginx | client CPU %, silt / nginx |
|---|---:|---:|---:|
| PUT 4 KiB | $(lat_cell silt.small.put) | $(lat_cell nginx.small.put) | $(cpu_cell small put) |
| GET 4 KiB | $(lat_cell silt.small.get) | $(lat_cell nginx.small.get) | $(cpu_cell small get) |
EOF
if [ "$LARGE" = 1 ]; then
	echo "| PUT $large_mib MiB | $(lat_cell silt.large.put) | $(lat_cell nginx.large.put) | $(cpu_cell large put) |"
	echo "| GET $large_mib MiB | $(lat_cell silt.large.get) | $(lat_cell nginx.large.get) | $(cpu_cell large get) |"
fi

if [ "$LIST1M" = 1 ] && want silt; then
	p99=$(median silt.list.list p99_ms)
	verdict=n/a
	if isnum "$p99"; then
		verdict=$(awk -v p="$p99" 'BEGIN { print (p < 20) ? "yes" : "**no**" }')
	fi
	cat <<EOF

| ListObjectsV2, pages of 1,000 keys over $(commas "$N_LIST") keys | silt | target | met |
|---|---:|---:|:---:|
| page latency p50 / p99 ms | $(lat_cell silt.list.list) | p99 < 20 ms | $verdict |
| keys/s (whole walk) | $(cell silt.list.list keys_per_s int) | | |
| populate: PUT x 16 B, $POP_CONC conns, ops/s (one run) | $(cell silt.list.populate ops_per_s int) | | |
EOF
fi

cat <<EOF

Requests: path-style \`/<bucket>/<key>\` for both. silt: SigV4 with
\`x-amz-content-sha256: UNSIGNED-PAYLOAD\` (no body hashing on either side), created objects
under a fresh bucket; nginx: the same requests unsigned, \`dav_methods PUT\`,
\`create_full_put_path on\`, body temp files on the same filesystem, \`sendfile on\`,
\`access_log off\`, 2 workers, \`keepalive_requests\` unlimited. PUT bodies come from one
pre-generated buffer; GET bodies are read and dropped, their length checked. Latency runs from
issuing a request to the last byte of its response; client CPU is the load generator's own
(user + system, % of one core) over the phase. MB = 10^6 bytes. Durability as configured:
silt \`server${SILT_ARGS:+ $SILT_ARGS}\` defaults; nginx writes through the page cache without
fsync. Raw output: $BENCH_LOG.
EOF
