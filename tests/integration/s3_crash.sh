#!/usr/bin/env bash
# kill -9 during uploads:
#  1. objects acknowledged before the crash (0 B, 1 KiB, 5 MiB single PUT, a
#     12 MiB 3-part multipart upload, a key overwritten once) are recorded
#     with their MD5s;
#  2. a 200 MiB PUT through curl, rate-limited to 20 MB/s, is cut by kill -9
#     of silt 2 s in (the PUT must still be running then); a multipart
#     upload is also in progress (2 parts uploaded, not completed);
#  3. after a restart on the same data directory: the interrupted object is
#     absent (HEAD 404, not listed), the unfinished multipart upload is not
#     an object, every acknowledged object has its MD5 and size, the
#     overwritten key has its second content, the same key can then be
#     uploaded in full;
#  4. 6,000 4 KiB PUTs over 16 connections (group commits) are cut by
#     kill -9 a few hundred in: after a restart every PUT that was answered
#     200 is listed and has its bytes, and a second kill -9 / restart keeps
#     all of it.
# Run alone: tests/integration/s3_crash.sh
. "$(dirname "$0")/s3_lib.sh"

s3_start
aws1 configure set default.s3.multipart_threshold 5MB
aws1 configure set default.s3.multipart_chunksize 5MB
s3curl -X PUT -o /dev/null /crash || fail "create bucket"

log "acknowledged objects"
: >"$IT_TMP/zero"
gen_file "$IT_TMP/kib" 1024
gen_file "$IT_TMP/five" $((5 << 20))
gen_file "$IT_TMP/twelve" $((12 << 20))
printf 'first version' >"$IT_TMP/over1"
printf 'second, final version' >"$IT_TMP/over2"
for f in zero kib five; do
	assert_eq "$(http_status -T "$IT_TMP/$f" "/crash/acked/$f")" 200 "PUT acked/$f"
done
out=$(aws1 s3 cp --no-progress "$IT_TMP/twelve" s3://crash/acked/twelve 2>&1) || fail "multipart cp: $out"
assert_contains "$(head_hdr crash/acked/twelve etag)" '-3"' "12 MiB went up in 3 parts"
assert_eq "$(http_status -T "$IT_TMP/over1" /crash/acked/over)" 200 "PUT over (1)"
assert_eq "$(http_status -T "$IT_TMP/over2" /crash/acked/over)" 200 "PUT over (2)"

check_acked() {
	local f got
	for f in zero kib five twelve; do
		s3curl -o "$IT_TMP/got" "/crash/acked/$f" || fail "GET acked/$f after $1"
		assert_eq "$(md5 "$IT_TMP/got")" "$(md5 "$IT_TMP/$f")" "MD5 of acked/$f after $1"
	done
	got=$(s3curl /crash/acked/over)
	assert_eq "$got" "second, final version" "overwritten key after $1"
}
check_acked "the uploads"

log "an unfinished multipart upload"
upload_id=$(aws1 s3api create-multipart-upload --bucket crash --key mp/unfinished --query UploadId --output text) \
	|| fail "create-multipart-upload"
for n in 1 2; do
	aws1 s3api upload-part --bucket crash --key mp/unfinished --upload-id "$upload_id" --part-number $n \
		--body "$IT_TMP/five" >/dev/null || fail "upload-part $n"
done

log "200 MiB PUT, kill -9 mid-body"
gen_file "$IT_TMP/big" $((200 << 20))
curl_log=$IT_TMP/curl.log
s3curl -T "$IT_TMP/big" --limit-rate 20M -o /dev/null -w '%{http_code}\n' /crash/big/interrupted \
	>"$IT_TMP/curl.out" 2>"$curl_log" &
curl_pid=$!
# At 20 MB/s the body takes 10 s; kill after 2 s, well inside it.
sleep 2
kill -0 "$curl_pid" 2>/dev/null || fail "the 200 MiB upload finished before the kill (curl: $(cat "$IT_TMP/curl.out"))"
silt_kill9
wait "$curl_pid" 2>/dev/null || true
code=$(cat "$IT_TMP/curl.out")
[ "$code" != 200 ] || fail "the interrupted PUT was acknowledged (HTTP 200)"

log "restart"
s3_start
assert_eq "$(http_status -I /crash/big/interrupted)" 404 "the interrupted object is absent"
assert_eq "$(list_keys crash big/)" "" "the interrupted object is not listed"
assert_eq "$(http_status -I /crash/mp/unfinished)" 404 "an unfinished multipart upload is not an object"
check_acked "kill -9 and restart"
assert_eq "$(list_keys crash acked/)" "$(printf 'acked/%s\n' five kib over twelve zero | sort)" "acked keys listed"

log "the interrupted key uploads in full afterwards"
assert_eq "$(http_status -T "$IT_TMP/big" /crash/big/interrupted)" 200 "PUT of the 200 MiB object after restart"
s3curl -o "$IT_TMP/got" /crash/big/interrupted || fail "GET big"
assert_eq "$(md5 "$IT_TMP/got")" "$(md5 "$IT_TMP/big")" "MD5 of the 200 MiB object"
rm -f "$IT_TMP/got"

log "4 KiB PUTs over 16 connections, kill -9 while they run"
# Acknowledged means the group commit of both databases happened: every
# PUT answered 200 must be there after the crash, with its bytes.
mkdir -p "$IT_TMP/small" "$IT_TMP/gotsmall"
for i in $(seq 1 6000); do
	printf 'small object %d %4096s\n' "$i" x >"$IT_TMP/small/f$i"
done
(cd "$IT_TMP/small" && timeout 120 curl -s --no-progress-meter --parallel --parallel-max 16 --aws-sigv4 aws:amz:us-east-1:s3 \
	--user "$S3_ACCESS:$S3_SECRET" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -T 'f[1-6000]' \
	-o /dev/null -w '%{http_code} %{url_effective}\n' "$S3_ENDPOINT/crash/small/") >"$IT_TMP/small.out" 2>/dev/null &
curl_pid=$!
# Kill once some hundreds are acknowledged (bounded wait), well before all.
for _ in $(seq 100); do
	[ "$(grep -c '^200 ' "$IT_TMP/small.out" || true)" -ge 300 ] && break
	sleep 0.05
done
silt_kill9
wait "$curl_pid" 2>/dev/null || true
awk '$1 == 200 { sub(".*/crash/small/", "", $2); print $2 }' "$IT_TMP/small.out" | sort >"$IT_TMP/small.acked"
n_acked=$(wc -l <"$IT_TMP/small.acked")
n_other=$(grep -vc '^200 ' "$IT_TMP/small.out" || true)
log "$n_acked small PUTs acknowledged, $n_other not, before the kill"
[ "$n_acked" -gt 0 ] || fail "no small PUT was acknowledged before the kill"
[ "$n_other" -gt 0 ] || fail "every small PUT finished before the kill"

# list_all_keys BUCKET PREFIX: every key, following continuation tokens.
# The query's parameters go in sorted order: Debian's curl 7.88 signs the
# query as written, unsorted (SigV4 sorts it, so any S3 server refuses a
# signature over an unsorted one), and a page after the first failed to
# verify whenever more than 1,000 objects were stored.
list_all_keys() {
	local tok="" page i
	for ((i = 0; i < 100; i++)); do
		page=$(s3curl "/$1?${tok:+continuation-token=$(urlenc "$tok")&}list-type=2&prefix=$(urlenc "$2")")
		printf '%s\n' "$page" | grep -q '<ListBucketResult' || fail "listing $1/$2: $page" >&2
		printf '%s\n' "$page" | xml_vals Key
		tok=$(printf '%s\n' "$page" | xml_vals NextContinuationToken)
		[ -n "$tok" ] || return 0
	done
	fail "listing $1/$2 did not end"
}

# check_small WHEN: every acknowledged small object is listed and has its bytes.
check_small() {
	local listed
	listed=$(list_all_keys crash small/ | sed 's|^small/||' | sort)
	comm -23 "$IT_TMP/small.acked" <(printf '%s\n' "$listed") >"$IT_TMP/small.missing"
	[ ! -s "$IT_TMP/small.missing" ] ||
		fail "$(wc -l <"$IT_TMP/small.missing") acknowledged small objects missing after $1, e.g. $(head -3 "$IT_TMP/small.missing" | tr '\n' ' ')"
	rm -f "$IT_TMP/gotsmall"/*
	awk -v ep="$S3_ENDPOINT" -v dir="$IT_TMP/gotsmall" \
		'{ printf "url = \"%s/crash/small/%s\"\noutput = \"%s/%s\"\n", ep, $1, dir, $1 }' \
		"$IT_TMP/small.acked" >"$IT_TMP/small.curlrc"
	timeout 120 curl -s --no-progress-meter --parallel --parallel-max 16 --aws-sigv4 aws:amz:us-east-1:s3 \
		--user "$S3_ACCESS:$S3_SECRET" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -K "$IT_TMP/small.curlrc" ||
		fail "GET of the acknowledged small objects after $1"
	# shellcheck disable=SC2046 # file names are f<number>
	assert_eq "$(cd "$IT_TMP/gotsmall" && md5sum $(cat "$IT_TMP/small.acked"))" \
		"$(cd "$IT_TMP/small" && md5sum $(cat "$IT_TMP/small.acked"))" "bytes of the acknowledged small objects after $1"
}
s3_start
check_small "kill -9 during small PUTs"
check_acked "kill -9 during small PUTs"

log "a second kill -9 keeps everything"
silt_kill9
s3_start
check_acked "a second kill -9"
check_small "a second kill -9"
assert_eq "$(head_hdr crash/big/interrupted content-length)" $((200 << 20)) "size of the big object after a second kill -9"
silt_stop
pass
