#!/usr/bin/env bash
# Bucket operations with both aws-cli generations (1.45 on PATH, Debian's
# 2.9): mb / ls / rb; CreateBucket naming rules (400 InvalidBucketName for
# every rule, nothing created) and the valid boundary names; creating an
# owned bucket again keeps its contents; rb of a bucket with an object is
# BucketNotEmpty and leaves it; head-bucket 404 on a missing bucket and 200
# on an existing one; rb of a missing bucket is NoSuchBucket; ListBuckets
# (owner, creation dates) after each step and after a restart; virtual-host
# style requests (curl to <bucket>.localhost:PORT).
# Run alone: tests/integration/s3_buckets.sh
. "$(dirname "$0")/s3_lib.sh"

s3_start

log "mb / ls with aws-cli 1 and 2"
out=$(aws1 s3 mb s3://alpha-1 2>&1) || fail "aws1 s3 mb s3://alpha-1: $out"
assert_contains "$out" "make_bucket: alpha-1" "aws1 mb output"
out=$(aws2 s3 mb s3://beta.2 2>&1) || fail "aws2 s3 mb s3://beta.2: $out"
assert_contains "$out" "make_bucket: beta.2" "aws2 mb output"
s3curl -X PUT -o /dev/null /gamma3 || fail "create gamma3"
assert_eq "$(bucket_names)" "$(printf 'alpha-1\nbeta.2\ngamma3')" "ListBuckets after three creates"
names=$(aws1 s3 ls | awk '{print $3}' | sort)
assert_eq "$names" "$(printf 'alpha-1\nbeta.2\ngamma3')" "aws1 s3 ls"
names=$(aws2 s3api list-buckets --query 'Buckets[].Name' --output text | tr '\t' '\n' | sort)
assert_eq "$names" "$(printf 'alpha-1\nbeta.2\ngamma3')" "aws2 s3api list-buckets"
xml=$(s3curl /)
[ -n "$(printf '%s' "$xml" | xml_vals ID)" ] || fail "ListBuckets has no Owner ID: $xml"
# Every bucket has a creation date close to now (within 10 minutes).
printf '%s' "$xml" | xml_vals CreationDate | python3 -c '
import sys, datetime
now = datetime.datetime.now(datetime.timezone.utc)
n = 0
for line in sys.stdin:
    t = datetime.datetime.fromisoformat(line.strip().replace("Z", "+00:00"))
    if abs((now - t).total_seconds()) > 600:
        sys.exit("creation date %s is not close to now %s" % (t, now))
    n += 1
if n != 3:
    sys.exit("%d creation dates, want 3" % n)
' || fail "bucket creation dates"

log "head-bucket"
aws1 s3api head-bucket --bucket alpha-1 >/dev/null || fail "head-bucket on an existing bucket"
out=$(aws1 s3api head-bucket --bucket no-such-bucket-x 2>&1) && fail "head-bucket on a missing bucket succeeded"
assert_contains "$out" "404" "head-bucket on a missing bucket (aws1)"
out=$(aws2 s3api head-bucket --bucket no-such-bucket-x 2>&1) && fail "aws2 head-bucket on a missing bucket succeeded"
assert_contains "$out" "404" "head-bucket on a missing bucket (aws2)"
assert_eq "$(http_status -I /no-such-bucket-x)" 404 "raw HEAD of a missing bucket"
assert_eq "$(http_status /no-such-bucket-x)" 404 "GET (ListObjects) of a missing bucket"
assert_contains "$(s3curl /no-such-bucket-x)" "<Code>NoSuchBucket</Code>" "NoSuchBucket XML"

log "bucket naming rules"
bad_names=(
	ab                                    # shorter than 3
	"$(printf 'a%.0s' $(seq 1 64))"       # longer than 63
	UpperCase                             # upper case
	under_score                           # underscore
	-leading-dash                         # must start with a letter or digit
	trailing-dash-                        # must end with a letter or digit
	.leading-dot
	trailing-dot.
	a..b                                  # adjacent periods
	192.168.5.4                           # formatted as an IPv4 address
	xn--punycode                          # reserved prefix
	sthree-bucket                         # reserved prefix
	name-s3alias                          # reserved suffix
	name--ol-s3                           # reserved suffix
)
for n in "${bad_names[@]}"; do
	xml=$(s3curl -X PUT -w '\n%{http_code}' "/$n")
	assert_eq "$(printf '%s' "$xml" | tail -1) $(printf '%s' "$xml" | xml_vals Code)" \
		"400 InvalidBucketName" "CreateBucket '$n'"
done
expect_fail InvalidBucketName "aws1 create-bucket UpperCase" aws1 s3api create-bucket --bucket=UpperCase
expect_fail InvalidBucketName "aws2 mb s3://a..b" aws2 s3 mb s3://a..b
# The boundary lengths are valid.
good63=$(printf 'b%.0s' $(seq 1 63))
for n in abc "$good63" 0-digits.and-dots9; do
	assert_eq "$(http_status -X PUT "/$n")" 200 "CreateBucket of valid name '$n'"
done
assert_eq "$(bucket_names)" "$(printf '0-digits.and-dots9\nabc\nalpha-1\n%s\nbeta.2\ngamma3' "$good63" | sort)" \
	"ListBuckets: invalid names created nothing"

log "BucketNotEmpty"
printf 'hello' >"$IT_TMP/hello.txt"
aws1 s3 cp "$IT_TMP/hello.txt" s3://alpha-1/dir/hello.txt >/dev/null || fail "cp into alpha-1"
expect_fail BucketNotEmpty "rb of a non-empty bucket (aws1)" aws1 s3 rb s3://alpha-1
expect_fail BucketNotEmpty "delete-bucket of a non-empty bucket (aws2)" aws2 s3api delete-bucket --bucket alpha-1
assert_eq "$(http_status -X DELETE /alpha-1)" 409 "raw DELETE of a non-empty bucket"
assert_eq "$(s3curl /alpha-1/dir/hello.txt)" hello "object survives a refused rb"

log "creating an owned bucket again keeps it"
out=$(aws1 s3api create-bucket --bucket alpha-1 2>&1) || assert_contains "$out" BucketAlreadyOwnedByYou \
	"create-bucket of an owned bucket: success (us-east-1) or BucketAlreadyOwnedByYou"
assert_eq "$(s3curl /alpha-1/dir/hello.txt)" hello "object survives create-bucket of an existing bucket"

log "rb"
out=$(aws1 s3 rb s3://alpha-1 --force 2>&1) || fail "rb --force: $out"
aws1 s3 rb s3://beta.2 >/dev/null || fail "aws1 rb beta.2"
aws2 s3 rb s3://gamma3 >/dev/null || fail "aws2 rb gamma3"
expect_fail NoSuchBucket "rb of a missing bucket" aws1 s3api delete-bucket --bucket gamma3
assert_eq "$(http_status -I /alpha-1)" 404 "HEAD bucket after rb"
assert_eq "$(bucket_names)" "$(printf '0-digits.and-dots9\nabc\n%s' "$good63" | sort)" "ListBuckets after rb"
expect_fail NoSuchBucket "ls of a removed bucket" aws2 s3 ls s3://beta.2

# A removed name can be created again, empty.
aws2 s3 mb s3://alpha-1 >/dev/null || fail "re-create alpha-1"
assert_eq "$(list_keys alpha-1)" "" "a re-created bucket is empty"

log "virtual-host style through curl (<bucket>.localhost)"
# curl resolves *.localhost to the loopback itself; silt's s3.domain
# defaults to localhost.
vh() { timeout 60 curl -s --aws-sigv4 aws:amz:us-east-1:s3 --user "$S3_ACCESS:$S3_SECRET" \
	-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"; }
assert_eq "$(vh -o /dev/null -w '%{http_code}' -X PUT "http://vhost-bucket.localhost:$S3_PORT/")" 200 "vhost CreateBucket"
assert_eq "$(vh -o /dev/null -w '%{http_code}' -X PUT --data-binary 'via vhost' \
	"http://vhost-bucket.localhost:$S3_PORT/dir/obj")" 200 "vhost PutObject"
assert_eq "$(s3curl /vhost-bucket/dir/obj)" "via vhost" "path-style GET of an object put by vhost"
assert_eq "$(vh "http://vhost-bucket.localhost:$S3_PORT/?list-type=2" | xml_vals Key)" "dir/obj" "vhost ListObjectsV2"
assert_eq "$(vh -o /dev/null -w '%{http_code}' -X DELETE "http://vhost-bucket.localhost:$S3_PORT/dir/obj")" 204 "vhost DeleteObject"
assert_eq "$(vh -o /dev/null -w '%{http_code}' -X DELETE "http://vhost-bucket.localhost:$S3_PORT/")" 204 "vhost DeleteBucket"
assert_eq "$(http_status -I /vhost-bucket)" 404 "vhost-deleted bucket is gone"

log "buckets survive a restart"
silt_stop
s3_start
assert_eq "$(bucket_names)" "$(printf '0-digits.and-dots9\nabc\nalpha-1\n%s' "$good63" | sort)" "ListBuckets after restart"
silt_stop
pass
