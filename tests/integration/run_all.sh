#!/usr/bin/env bash
# Runs silt's integration tests in order against build/silt (or $SILT_BIN).
# Prints PASS/FAIL per test with its time and exits non-zero if any failed.
# Each test is bounded by $IT_TEST_TIMEOUT seconds (default 180).
#
#   tests/integration/run_all.sh                 # all
#   tests/integration/run_all.sh kcat crash      # only tests whose name contains a word
#   tests/integration/run_all.sh s3_             # only the S3 suite
#   tests/integration/test_crash.py              # one test directly (from anywhere)
set -uo pipefail
cd "$(dirname "$0")"

TESTS=(
	test_kcat.sh
	test_apiversions.py
	test_confluent.py
	test_kafka_python.py
	kafkajs_test.js
	test_bad_input.py
	test_retention.py
	test_crash.py
	test_lifecycle.py
	test_fsync_acks.py
	s3_buckets.sh
	s3_transfer.sh
	s3_s3api.py
	s3_s3api_v2.py
	s3_boto3.py
	s3_boto3_debian.py
	s3_s3cmd_rclone.sh
	s3_jssdk.js
	s3_auth.py
	s3_bad_input.py
	s3_copy_stall.py
	s3_crash.sh
)
limit=${IT_TEST_TIMEOUT:-180}
logdir=${IT_LOG_DIR:-$(mktemp -d /tmp/silt-it-logs-XXXXXX)}
mkdir -p "$logdir"

[ -x ../../build/silt ] || [ -n "${SILT_BIN:-}" ] || { echo "build/silt missing: run make build/silt" >&2; exit 2; }

selected=()
for t in "${TESTS[@]}"; do
	if [ $# -eq 0 ]; then
		selected+=("$t")
	else
		for w in "$@"; do
			case "$t" in *"$w"*) selected+=("$t"); break ;; esac
		done
	fi
done

failed=()
t_all=$(date +%s)
for t in "${selected[@]}"; do
	t0=$(date +%s.%N)
	log=$logdir/${t%.*}.log
	timeout -k 5 "$limit" "./$t" >"$log" 2>&1
	rc=$?
	dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	if [ $rc -eq 0 ]; then
		printf 'PASS  %-24s %6ss\n' "$t" "$dt"
	else
		[ $rc -eq 124 ] && echo "(timed out after ${limit}s)" >>"$log"
		printf 'FAIL  %-24s %6ss  (exit %d, log %s)\n' "$t" "$dt" "$rc" "$log"
		tail -n 60 "$log" | sed 's/^/      /'
		failed+=("$t")
	fi
done
echo "integration: $((${#selected[@]} - ${#failed[@]})) passed, ${#failed[@]} failed ($(($(date +%s) - t_all))s)"
[ ${#failed[@]} -eq 0 ]
