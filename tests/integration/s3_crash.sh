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
#     uploaded in full, and a second kill -9 / restart keeps all of it.
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

log "a second kill -9 keeps everything"
silt_kill9
s3_start
check_acked "a second kill -9"
assert_eq "$(head_hdr crash/big/interrupted content-length)" $((200 << 20)) "size of the big object after a second kill -9"
silt_stop
pass
