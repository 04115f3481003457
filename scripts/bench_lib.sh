# bench_lib.sh - helpers shared by scripts/bench.sh and scripts/bench_s3.sh:
# ports, starting and stopping servers under timeout, RESULT fields, and the
# quiesce step before every run. Sourced; expects TMP, PIDS, BENCH_LOG,
# SERVER_LIFETIME and a log() function from the caller.

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT PID: up to 15 s for PORT to accept connections while PID lives.
wait_port() {
	for _ in $(seq 150); do
		port_busy "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# free_port PORT: PORT, or the first of the next 50 ports nobody listens on.
free_port() {
	local p
	for p in $(seq "$1" $(($1 + 50))); do
		port_busy "$p" || { echo "$p"; return 0; }
	done
	return 1
}

# start NAME PORT CMD...: starts a server in the background under timeout.
start() {
	local name=$1 port=$2
	shift 2
	if port_busy "$port"; then
		log "port $port is in use; not starting $name"
		return 1
	fi
	timeout -s TERM "$SERVER_LIFETIME" "$@" >"$TMP/$name.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	echo "$pid" >"$TMP/$name.pid"
	if ! wait_port "$port" "$pid"; then
		log "$name did not come up on $port; last log lines:"
		tail -n 20 "$TMP/$name.log" >&2 || true
		stop "$name"
		return 1
	fi
	log "$name up on 127.0.0.1:$port (pid $pid)"
}

stop() {
	local pid
	pid=$(cat "$TMP/$1.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -f "$TMP/$1.pid"
	cat "$TMP/$1.log" >>"$BENCH_LOG" 2>/dev/null || true
}

# field KEY LINE: the value of KEY=... in a RESULT line.
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# Before every run: flush dirty pages, and touch WARM_MB of memory through
# tmpfs. This VM hands freed guest memory back to its host (DAMON pageout),
# so the first write into a page the guest has not touched lately costs a
# host fault: without this, whichever system runs after a quiet spell pays
# it (fresh page-cache writes measured 350 MB/s cold vs 1.9 GB/s warm here).
# Every system gets the same treatment. WARM_MB=0 turns it off.
WARM_MB=${WARM_MB:-4096}
quiesce() {
	sync
	if [ "$WARM_MB" -gt 0 ] && [ -d /dev/shm ]; then
		dd if=/dev/zero of=/dev/shm/silt-bench-warm bs=1M count="$WARM_MB" status=none 2>/dev/null || true
		rm -f /dev/shm/silt-bench-warm
	fi
	sleep 1
}
