# s3_lib.sh - harness for silt's bash S3 integration tests (the shared part
# is common.sh). Source it:
#
#   . "$(dirname "$0")/s3_lib.sh"
#   s3_start
#   aws1 s3 mb s3://bucket        # aws-cli 1.45 (first on PATH)
#   aws2 s3 ls                    # Debian's aws-cli 2.9 (/usr/bin/aws)
#   ... $S3_ENDPOINT (http://127.0.0.1:PORT), $S3_PORT, $SILT_DATA, $IT_TMP ...
#   pass
#
# s3_start starts build/silt with Kafka and S3 on free 127.0.0.1 ports and
# a fresh data directory, and waits until the S3 port accepts connections;
# a later call restarts on the same ports and data. The aws wrappers use a
# private AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE with the root
# credentials, so nothing from the user's ~/.aws is read.

IT_TMP_PREFIX=silt-s3it
# shellcheck source=tests/integration/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

S3_PORT=
S3_ENDPOINT=
KAFKA_PORT=
S3_ACCESS=siltadmin
S3_SECRET=siltadmin

# Clients must not read the invoking user's AWS settings; they get ours.
for v in $(env | sed -n 's/^\(AWS_[A-Z0-9_]*\)=.*/\1/p'); do unset "$v"; done
mkdir -p "$IT_TMP/aws"
export AWS_CONFIG_FILE=$IT_TMP/aws/config
export AWS_SHARED_CREDENTIALS_FILE=$IT_TMP/aws/credentials
export AWS_PAGER="" AWS_EC2_METADATA_DISABLED=true BOTO_DISABLE_CRT=true
# One attempt: retries (botocore even retries 400 BadDigest) hide faults.
printf '[default]\nregion = us-east-1\nmax_attempts = 1\n' >"$AWS_CONFIG_FILE"
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
	"$S3_ACCESS" "$S3_SECRET" >"$AWS_SHARED_CREDENTIALS_FILE"

# s3_start [ARGS...]: first start picks ports; later calls restart on the
# same ports and data directory. Extra arguments are passed to `silt server`.
s3_start() {
	if [ -z "$S3_PORT" ]; then
		S3_PORT=$(free_port)
		KAFKA_PORT=$(free_port)
		S3_ENDPOINT=http://127.0.0.1:$S3_PORT
	fi
	silt_launch "$S3_PORT" server --data-dir "$SILT_DATA" --kafka-addr "127.0.0.1:$KAFKA_PORT" \
		--s3-addr "127.0.0.1:$S3_PORT" "$@"
}

# aws1 / aws2 ARGS...: the two aws-cli generations against silt, bounded in
# time. aws-cli 2 is Debian's, on /usr/bin/python3. The socket read timeout
# is 20 s instead of 60 so that a response the client cannot parse (it then
# waits for more and retries) costs less; tests bound small operations'
# wall time to catch such stalls.
aws1() { timeout 300 aws --endpoint-url "$S3_ENDPOINT" --cli-read-timeout 20 "$@"; }
aws2() { timeout 300 /usr/bin/aws --endpoint-url "$S3_ENDPOINT" --cli-read-timeout 20 "$@"; }

# expect_fail CODE WHAT CMD...: CMD must fail and name the S3 error CODE.
expect_fail() {
	local code=$1 what=$2 out rc=0
	shift 2
	out=$("$@" 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "$what: succeeded, want error $code; output: $out"
	assert_contains "$out" "$code" "$what"
}

md5() { md5sum "$1" | cut -d' ' -f1; }

# gen_file PATH BYTES: deterministic pseudo-random content (AES-CTR keystream
# of zeros keyed by the path's name), fast enough for a GiB.
gen_file() {
	local seed
	seed=$(basename "$1")
	# openssl dies of SIGPIPE when head has enough; that is expected.
	{ openssl enc -aes-128-ctr -nosalt -pass "pass:$seed" -pbkdf2 -iter 1 </dev/zero 2>/dev/null || true; } \
		| head -c "$2" >"$1"
	[ "$(stat -c %s "$1")" = "$2" ] || fail "gen_file $1: wrong size"
}

# s3curl ARGS... URL-PATH: curl with SigV4 (root credentials unless
# S3CURL_USER=access:secret) against $S3_ENDPOINT; for fast checks between
# client commands (an aws-cli start costs ~0.8 s, curl ~10 ms). The payload
# is sent UNSIGNED-PAYLOAD. Example: s3curl -X PUT --data-binary @f /b/k
s3curl() {
	local path=${*: -1}
	local args=("${@:1:$#-1}")
	timeout 60 curl -s --aws-sigv4 aws:amz:us-east-1:s3 --user "${S3CURL_USER:-$S3_ACCESS:$S3_SECRET}" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "${args[@]}" "$S3_ENDPOINT$path"
}

# xml_vals TAG: the text of every <TAG>...</TAG> on stdin, one per line,
# with XML entities decoded.
xml_vals() {
	grep -o "<$1>[^<]*</$1>" | sed -e "s|^<$1>||" -e "s|</$1>\$||" \
		-e 's/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&apos;/'"'"'/g; s/&#39;/'"'"'/g; s/&amp;/\&/g' || true
}

# bucket_names: the root user's buckets, sorted, one per line.
bucket_names() { s3curl / | xml_vals Name | sort; }

# urlenc STRING: S3's URI encoding of a query value (curl 7.88's SigV4 signs
# the query as given, so it must already be canonical).
urlenc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="-_.~"))' "$1"; }

# list_keys BUCKET [PREFIX]: every key (ListObjectsV2, up to 1000), sorted.
list_keys() { s3curl "/$1?list-type=2&prefix=$(urlenc "${2:-}")" | xml_vals Key | sort; }

# head_hdr BUCKET/KEY HEADER: one response header of a HEAD (empty if none).
head_hdr() {
	s3curl -I "/$1" | tr -d '\r' | awk -v h="$(echo "$2" | tr 'A-Z' 'a-z')" \
		'{ n = tolower($1); sub(/:$/, "", n); if (n == h) { sub(/^[^:]*: */, ""); print; exit } }'
}

# http_status ARGS... PATH: the status code of a signed request.
http_status() { s3curl -o /dev/null -w '%{http_code}' "$@"; }
