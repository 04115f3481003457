#!/usr/bin/env bash
# Bucket operations with both aws-cli generations (1.45 on PATH, Debian's
# 2.9): mb / ls / rb; CreateBucket naming rules (InvalidBucketName for every
# rule); creating an owned bucket again keeps its contents; rb of a bucket
# with an object is BucketNotEmpty and leaves it; head-bucket 404 on a
# missing bucket and 200 on an existing one; rb of a missing bucket is
# NoSuchBucket; ListBuckets after each step.
. "$(dirname "$0")/s3_lib.sh"

s3_start

log "mb / ls / rb with aws-cli 1"
out=$(aws1 s3 mb s3://alpha-1) || fail "aws1 s3 mb s3://alpha-1: $out"
assert_contains "$out" "make_bucket: alpha-1" "aws1 mb output"
out=$(aws2 s3 mb s3://beta.2) || fail "aws2 s3 mb s3://beta.2: $out"
assert_contains "$out" "make_bucket: beta.2" "aws2 mb output"
aws1 s3api create-bucket --bucket gamma3 >/dev/null || fail "s3api create-bucket gamma3"

names=$(aws1 s3api list-buckets --query 'Buckets[].Name' --output text | tr '\t' '\n' | sort)
assert_eq "$names" "$(printf 'alpha-1\nbeta.2\ngamma3')" "ListBuckets (aws1) after three creates"
names=$(aws2 s3 ls | awk '{print $3}' | sort)
assert_eq "$names" "$(printf 'alpha-1\nbeta.2\ngamma3')" "aws2 s3 ls after three creates"
owner=$(aws1 s3api list-buckets --query 'Owner.ID' --output text)
[ -n "$owner" ] && [ "$owner" != None ] || fail "ListBuckets has no Owner.ID"
# Every bucket has a creation date close to now (within 10 minutes).
aws1 s3api list-buckets --query 'Buckets[].CreationDate' --output text | tr '\t' '\n' | python3 -c '
import sys, datetime
now = datetime.datetime.now(datetime.timezone.utc)
for line in sys.stdin:
    t = datetime.datetime.fromisoformat(line.strip().replace("Z", "+00:00"))
    if abs((now - t).total_seconds()) > 600:
        sys.exit("creation date %s is not close to now %s" % (t, now))
' || fail "bucket creation dates"

log "head-bucket"
aws1 s3api head-bucket --bucket alpha-1 >/dev/null || fail "head-bucket on an existing bucket"
out=$(aws1 s3api head-bucket --bucket no-such-bucket-x 2>&1) && fail "head-bucket on a missing bucket succeeded"
assert_contains "$out" "404" "head-bucket on a missing bucket (aws1)"
out=$(aws2 s3api head-bucket --bucket no-such-bucket-x 2>&1) && fail "aws2 head-bucket on a missing bucket succeeded"
assert_contains "$out" "404" "head-bucket on a missing bucket (aws2)"
# HEAD errors carry no body; check the raw status with curl too (unsigned
# HEAD may be 403 or 404, but a body must not follow).
code=$(curl -s -o "$IT_TMP/headbody" -w '%{http_code}' -I "$S3_ENDPOINT/no-such-bucket-x")
case "$code" in 403 | 404) ;; *) fail "unsigned HEAD of a missing bucket: HTTP $code" ;; esac

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
# One boto3 process for the whole list (an aws-cli start costs ~0.8 s).
python3 - "$S3_ENDPOINT" "${bad_names[@]}" <<'EOF' || fail "bucket naming rules"
import sys, boto3, botocore.config, botocore.exceptions
c = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="siltadmin",
                 aws_secret_access_key="siltadmin", region_name="us-east-1",
                 config=botocore.config.Config(retries={"max_attempts": 1}))
bad = []
for name in sys.argv[2:]:
    try:
        c.create_bucket(Bucket=name)
        bad.append("%s: created" % name)
    except botocore.exceptions.ClientError as e:
        code = e.response["Error"]["Code"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        if code != "InvalidBucketName" or status != 400:
            bad.append("%s: %s %s" % (name, status, code))
if bad:
    sys.exit("want 400 InvalidBucketName for:\n  " + "\n  ".join(bad))
EOF
expect_fail InvalidBucketName "aws2 create-bucket UpperCase" aws2 s3api create-bucket --bucket=UpperCase
# The boundary lengths are valid.
good3=abc
good63=$(printf 'b%.0s' $(seq 1 63))
aws1 s3api create-bucket --bucket "$good3" >/dev/null || fail "3-character bucket name rejected"
aws1 s3api create-bucket --bucket "$good63" >/dev/null || fail "63-character bucket name rejected"
aws1 s3api create-bucket --bucket 0-digits.and-dots9 >/dev/null || fail "digits/dots/dashes name rejected"
names=$(aws1 s3api list-buckets --query 'Buckets[].Name' --output text | tr '\t' '\n' | sort)
assert_eq "$names" "$(printf '0-digits.and-dots9\nabc\nalpha-1\n%s\nbeta.2\ngamma3' "$good63" | sort)" \
	"ListBuckets: invalid names created nothing"

log "BucketNotEmpty"
printf 'hello' >"$IT_TMP/hello.txt"
aws1 s3 cp "$IT_TMP/hello.txt" s3://alpha-1/dir/hello.txt >/dev/null || fail "cp into alpha-1"
expect_fail BucketNotEmpty "rb of a non-empty bucket (aws1)" aws1 s3 rb s3://alpha-1
expect_fail BucketNotEmpty "delete-bucket of a non-empty bucket (aws2)" aws2 s3api delete-bucket --bucket alpha-1
got=$(aws1 s3 cp s3://alpha-1/dir/hello.txt - 2>&1) || fail "object after a refused rb: $got"
assert_eq "$got" hello "object survives a refused rb"

log "creating an owned bucket again keeps it"
out=$(aws1 s3api create-bucket --bucket alpha-1 2>&1) || assert_contains "$out" BucketAlreadyOwnedByYou \
	"create-bucket of an owned bucket: success (us-east-1) or BucketAlreadyOwnedByYou"
got=$(aws1 s3 cp s3://alpha-1/dir/hello.txt - 2>&1) || fail "object after re-create: $got"
assert_eq "$got" hello "object survives create-bucket of an existing bucket"

log "rb"
out=$(aws1 s3 rb s3://alpha-1 --force 2>&1) || fail "rb --force: $out"
aws1 s3 rb s3://beta.2 >/dev/null || fail "aws1 rb beta.2"
aws2 s3 rb s3://gamma3 >/dev/null || fail "aws2 rb gamma3"
expect_fail NoSuchBucket "rb of a missing bucket" aws1 s3api delete-bucket --bucket gamma3
out=$(aws1 s3api head-bucket --bucket alpha-1 2>&1) && fail "head-bucket after rb succeeded"
assert_contains "$out" "404" "head-bucket after rb"
names=$(aws1 s3api list-buckets --query 'Buckets[].Name' --output text | tr '\t' '\n' | sort)
assert_eq "$names" "$(printf '0-digits.and-dots9\nabc\n%s' "$good63" | sort)" "ListBuckets after rb"
expect_fail NoSuchBucket "ls of a removed bucket" aws1 s3 ls s3://beta.2

# A removed name can be created again, empty.
aws1 s3 mb s3://alpha-1 >/dev/null || fail "re-create alpha-1"
out=$(aws1 s3 ls s3://alpha-1 --recursive)
assert_eq "$out" "" "a re-created bucket is empty"

log "buckets survive a restart"
silt_stop
s3_start
names=$(aws1 s3api list-buckets --query 'Buckets[].Name' --output text | tr '\t' '\n' | sort)
assert_eq "$names" "$(printf '0-digits.and-dots9\nabc\nalpha-1\n%s' "$good63" | sort)" "ListBuckets after restart"
silt_stop
pass
