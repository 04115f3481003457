#!/usr/bin/env bash
# s3cmd 2.3 and rclone 1.60 against silt.
#  s3cmd (own config file: host_base/host_bucket on 127.0.0.1:PORT, so path
#  style; signature_v2 = False; use_https = False): mb, ls of buckets, put
#  with a content type, get (MD5 equal), info (MD5 and type), ls of a
#  prefix, put of a 12 MiB file (s3cmd's multipart, chunk 5 MiB), sync of a
#  tree up and down (diff -r), a re-sync that uploads nothing, del, rb.
#  rclone (RCLONE_S3_* env, AWS_CA_BUNDLE unset): sync of a tree into a
#  bucket it creates, `rclone check` passes, lsf lists every file, a changed
#  file is synced again and `check` passes, sync down compares equal,
#  delete of a remote file is seen by check as a difference.
# Run alone: tests/integration/s3_s3cmd_rclone.sh
. "$(dirname "$0")/s3_lib.sh"

command -v s3cmd >/dev/null || fail "s3cmd missing (scripts/deps.sh test installs it)"
command -v rclone >/dev/null || fail "rclone missing (scripts/deps.sh test installs it)"
s3_start

tree=$IT_TMP/tree
mkdir -p "$tree/a/b" "$tree/c" "$tree/sp ace"
printf 'alpha\n' >"$tree/a/1.txt"
printf 'beta\n' >"$tree/a/b/2.txt"
gen_file "$tree/c/blob.bin" 700000
printf 'x\n' >"$tree/sp ace/file name.txt"
printf 'top\n' >"$tree/top.txt"
nfiles=$(find "$tree" -type f | wc -l)

# ---------------------------------------------------------------- s3cmd
cfg=$IT_TMP/s3cfg
cat >"$cfg" <<EOF
[default]
access_key = $S3_ACCESS
secret_key = $S3_SECRET
host_base = 127.0.0.1:$S3_PORT
host_bucket = 127.0.0.1:$S3_PORT
bucket_location = us-east-1
signature_v2 = False
use_https = False
check_ssl_certificate = False
multipart_chunk_size_mb = 5
socket_timeout = 20
EOF
sc() { timeout 120 s3cmd -c "$cfg" --no-progress "$@"; }

log "s3cmd mb / ls"
out=$(sc mb s3://cmd-bucket 2>&1) || fail "s3cmd mb: $out"
assert_contains "$out" "Bucket 's3://cmd-bucket/' created" "s3cmd mb output"
out=$(sc ls 2>&1) || fail "s3cmd ls: $out"
assert_contains "$out" "s3://cmd-bucket" "s3cmd ls lists the bucket"

log "s3cmd put / get / info"
out=$(sc put --mime-type=text/x-s3cmd "$tree/a/1.txt" s3://cmd-bucket/docs/1.txt 2>&1) || fail "s3cmd put: $out"
rm -f "$IT_TMP/got.txt"
out=$(sc get s3://cmd-bucket/docs/1.txt "$IT_TMP/got.txt" 2>&1) || fail "s3cmd get: $out"
assert_eq "$(md5 "$IT_TMP/got.txt")" "$(md5 "$tree/a/1.txt")" "s3cmd get MD5"
out=$(sc info s3://cmd-bucket/docs/1.txt 2>&1) || fail "s3cmd info: $out"
assert_contains "$out" "$(md5 "$tree/a/1.txt")" "s3cmd info MD5"
assert_contains "$out" "text/x-s3cmd" "s3cmd info MIME type"
assert_eq "$(head_hdr cmd-bucket/docs/1.txt content-type)" "text/x-s3cmd" "Content-Type stored by s3cmd"

log "s3cmd multipart put (12 MiB in 5 MiB chunks)"
gen_file "$IT_TMP/twelve.bin" $((12 << 20))
out=$(sc put "$IT_TMP/twelve.bin" s3://cmd-bucket/big/twelve.bin 2>&1) || fail "s3cmd multipart put: $out"
etag=$(head_hdr cmd-bucket/big/twelve.bin etag)
assert_contains "$etag" "-3\"" "s3cmd 12 MiB upload is a 3-part multipart object (ETag $etag)"
rm -f "$IT_TMP/twelve.got"
sc get s3://cmd-bucket/big/twelve.bin "$IT_TMP/twelve.got" >/dev/null 2>&1 || fail "s3cmd get of the multipart object"
assert_eq "$(md5 "$IT_TMP/twelve.got")" "$(md5 "$IT_TMP/twelve.bin")" "s3cmd multipart round trip MD5"

log "s3cmd sync up, ls, re-sync, sync down"
out=$(sc sync "$tree/" s3://cmd-bucket/tree/ 2>&1) || fail "s3cmd sync up: $out"
assert_eq "$(list_keys cmd-bucket tree/)" "$(cd "$tree" && find . -type f | sed 's|^\./|tree/|' | sort)" "keys after s3cmd sync"
out=$(sc ls s3://cmd-bucket/tree/ 2>&1) || fail "s3cmd ls of a prefix: $out"
assert_contains "$out" "DIR  s3://cmd-bucket/tree/a/" "s3cmd ls shows a directory"
assert_contains "$out" "s3://cmd-bucket/tree/top.txt" "s3cmd ls shows a file"
out=$(sc sync "$tree/" s3://cmd-bucket/tree/ 2>&1) || fail "s3cmd re-sync: $out"
assert_not_contains "$out" "upload:" "s3cmd re-sync uploads nothing"
mkdir -p "$IT_TMP/cmd-down"
out=$(sc sync s3://cmd-bucket/tree/ "$IT_TMP/cmd-down/" 2>&1) || fail "s3cmd sync down: $out"
diff -r "$tree" "$IT_TMP/cmd-down" || fail "s3cmd sync down differs"

log "s3cmd del / rb"
out=$(sc del s3://cmd-bucket/docs/1.txt 2>&1) || fail "s3cmd del: $out"
assert_eq "$(http_status -I /cmd-bucket/docs/1.txt)" 404 "object gone after s3cmd del"
out=$(sc rb s3://cmd-bucket 2>&1) && fail "s3cmd rb of a non-empty bucket succeeded: $out"
assert_contains "$out" "BucketNotEmpty" "s3cmd rb of a non-empty bucket"
out=$(sc del --recursive --force s3://cmd-bucket/ 2>&1) || fail "s3cmd del --recursive: $out"
out=$(sc rb s3://cmd-bucket 2>&1) || fail "s3cmd rb: $out"
assert_eq "$(http_status -I /cmd-bucket)" 404 "bucket gone after s3cmd rb"

# ---------------------------------------------------------------- rclone
log "rclone sync / check"
rc() {
	timeout 120 env -u AWS_CA_BUNDLE RCLONE_CONFIG=/dev/null RCLONE_S3_PROVIDER=Other \
		RCLONE_S3_ENDPOINT="$S3_ENDPOINT" RCLONE_S3_ACCESS_KEY_ID="$S3_ACCESS" \
		RCLONE_S3_SECRET_ACCESS_KEY="$S3_SECRET" RCLONE_S3_REGION=us-east-1 \
		RCLONE_S3_FORCE_PATH_STYLE=true rclone --retries 1 --low-level-retries 2 --timeout 20s "$@"
}
out=$(rc sync "$tree" :s3:rclone-bucket/tree 2>&1) || fail "rclone sync up: $out"
assert_eq "$(list_keys rclone-bucket tree/)" "$(cd "$tree" && find . -type f | sed 's|^\./|tree/|' | sort)" "keys after rclone sync"
out=$(rc check "$tree" :s3:rclone-bucket/tree 2>&1) || fail "rclone check after sync: $out"
assert_contains "$out" "0 differences found" "rclone check"
assert_contains "$out" "$nfiles matching files" "rclone check counts every file"
out=$(rc lsf -R :s3:rclone-bucket/tree 2>&1 | grep -v '/$' | sort) || fail "rclone lsf: $out"
assert_eq "$out" "$(cd "$tree" && find . -type f | sed 's|^\./||' | sort)" "rclone lsf -R"

printf 'beta, changed\n' >"$tree/a/b/2.txt"
out=$(rc sync -v "$tree" :s3:rclone-bucket/tree 2>&1) || fail "rclone sync of a change: $out"
assert_eq "$(printf '%s\n' "$out" | grep -c 'Copied (')" 1 "rclone re-sync copies exactly the changed file"
out=$(rc check "$tree" :s3:rclone-bucket/tree 2>&1) || fail "rclone check after a change: $out"
assert_contains "$out" "0 differences found" "rclone check after a change"
out=$(rc sync "$tree" :s3:rclone-bucket/tree -v 2>&1) || fail "rclone idempotent sync: $out"
assert_eq "$(printf '%s\n' "$out" | grep -c 'Copied (')" 0 "rclone sync with nothing changed copies nothing"

mkdir -p "$IT_TMP/rc-down"
out=$(rc sync :s3:rclone-bucket/tree "$IT_TMP/rc-down" 2>&1) || fail "rclone sync down: $out"
diff -r "$tree" "$IT_TMP/rc-down" || fail "rclone sync down differs"

s3curl -X DELETE -o /dev/null /rclone-bucket/tree/top.txt
out=$(rc check "$tree" :s3:rclone-bucket/tree 2>&1) && fail "rclone check passed with a file missing remotely: $out"
assert_contains "$out" "1 differences found" "rclone check sees the deleted file"

silt_stop
pass
