#!/usr/bin/env bash
# High-level transfers with both aws-cli generations:
#  - `aws s3 cp` up and down of 0 B, 1 B, 1 MiB and 20 MiB files, MD5 of the
#    downloaded copy equal to the original; with multipart_threshold and
#    multipart_chunksize at 5MB (set with `aws configure set` in a private
#    AWS_CONFIG_FILE) the 20 MiB object is a 4-part upload whose ETag is
#    "<md5-of-md5s>-4" and the small ones have ETag = quoted MD5;
#  - one large file ($S3_BIG_MB MiB, default 1024) up with aws-cli 1 and down
#    with aws-cli 2, MD5 compared, size from head-object;
#  - `aws s3 sync` of a directory tree up and down (diff -r clean), a re-sync
#    that transfers nothing, a re-sync after one change that uploads exactly
#    that file, and --delete;
#  - `aws s3 ls` of a prefix (PRE lines and files), of a partial prefix, and
#    --recursive; `aws s3 rm --recursive` of one prefix leaves the others.
. "$(dirname "$0")/s3_lib.sh"

BIG_MB=${S3_BIG_MB:-1024}
s3_start
aws1 configure set default.s3.multipart_threshold 5MB
aws1 configure set default.s3.multipart_chunksize 5MB
assert_contains "$(cat "$AWS_CONFIG_FILE")" "multipart_threshold = 5MB" "aws configure set wrote the config"

aws1 s3 mb s3://xfer >/dev/null || fail "mb xfer"

up=$IT_TMP/up
down=$IT_TMP/down
mkdir -p "$up" "$down"
: >"$up/empty.bin"
printf 'x' >"$up/one.bin"
gen_file "$up/mib.bin" $((1 << 20))
gen_file "$up/twenty.bin" $((20 << 20))

etag_of() { aws1 s3api head-object --bucket xfer --key "$1" --query ETag --output text; }
size_of() { aws1 s3api head-object --bucket xfer --key "$1" --query ContentLength --output text; }

for cli in aws1 aws2; do
	log "$cli s3 cp up and down: 0 B, 1 B, 1 MiB, 20 MiB"
	for f in empty.bin one.bin mib.bin twenty.bin; do
		out=$($cli s3 cp "$up/$f" "s3://xfer/$cli/$f" 2>&1) || fail "$cli cp up $f: $out"
		assert_contains "$out" "upload:" "$cli cp up $f output"
		rm -f "$down/$f"
		out=$($cli s3 cp "s3://xfer/$cli/$f" "$down/$f" 2>&1) || fail "$cli cp down $f: $out"
		[ -f "$down/$f" ] || fail "$cli cp down $f: no file written"
		assert_eq "$(md5 "$down/$f")" "$(md5 "$up/$f")" "$cli: MD5 of $f after a round trip"
	done
done
for f in empty.bin one.bin mib.bin; do
	assert_eq "$(etag_of "aws1/$f")" "\"$(md5 "$up/$f")\"" "ETag of single-part $f is its quoted MD5"
done
assert_eq "$(size_of aws1/empty.bin)" 0 "size of the empty object"
assert_eq "$(size_of aws1/twenty.bin)" $((20 << 20)) "size of the 20 MiB object"
# aws-cli 1 read the 5MB threshold from the config: 20 MiB went up in 4 parts.
want=$(python3 - "$up/twenty.bin" <<'EOF'
import hashlib, sys
d = b""
with open(sys.argv[1], "rb") as f:
    for part in iter(lambda: f.read(5 << 20), b""):
        d += hashlib.md5(part).digest()
print('"%s-%d"' % (hashlib.md5(d).hexdigest(), len(d) // 16))
EOF
)
assert_eq "$(etag_of aws1/twenty.bin)" "$want" "multipart ETag of the 20 MiB upload (md5 of part md5s, -4)"
assert_eq "$(etag_of aws2/twenty.bin)" "$want" "aws2 read the same AWS_CONFIG_FILE: 4 parts"

log "large file: $BIG_MB MiB up with aws1, down with aws2"
gen_file "$up/big.bin" $((BIG_MB << 20))
want_md5=$(md5 "$up/big.bin")
t0=$SECONDS
aws1 configure set default.s3.multipart_chunksize 64MB
out=$(aws1 s3 cp "$up/big.bin" s3://xfer/big/big.bin 2>&1) || fail "cp up big: $out"
log "  up in $((SECONDS - t0)) s"
assert_eq "$(size_of big/big.bin)" $((BIG_MB << 20)) "size of the large object"
t0=$SECONDS
out=$(aws2 s3 cp s3://xfer/big/big.bin "$down/big.bin" 2>&1) || fail "cp down big: $out"
log "  down in $((SECONDS - t0)) s"
assert_eq "$(md5 "$down/big.bin")" "$want_md5" "MD5 of the large object after a round trip"
rm -f "$up/big.bin" "$down/big.bin"
aws1 configure set default.s3.multipart_chunksize 5MB

log "sync a tree up, down, re-sync, change, --delete"
tree=$IT_TMP/tree
mkdir -p "$tree/a/b/c" "$tree/d" "$tree/e f"
printf 'root\n' >"$tree/root.txt"
printf 'one\n' >"$tree/a/1.txt"
printf 'two\n' >"$tree/a/b/2.txt"
printf 'three\n' >"$tree/a/b/c/3.txt"
gen_file "$tree/d/blob.bin" 300000
: >"$tree/d/empty"
printf 'space\n' >"$tree/e f/name with spaces.txt"
printf 'plus\n' >"$tree/e f/a+b=c&d.txt"
nfiles=$(find "$tree" -type f | wc -l)

# A client that misreads a response waits for its read timeout and retries
# (if allowed), which still "works": bound the time so such a stall fails.
t0=$SECONDS
# Seen: botocore sends Expect: 100-continue also for the 0-byte file; a
# server that answers it with a final 200 and no 100 Continue leaves
# botocore misreading the next response on that keep-alive connection: a
# "Read timeout" after 20 s (one attempt), or a 20 s stall with retries.
out=$(aws1 s3 sync --no-progress "$tree" s3://xfer/tree 2>&1) ||
	fail "sync up (a 'Read timeout' here is the unreadable response described above): $out"
[ $((SECONDS - t0)) -le 10 ] || fail "aws1 s3 sync of $nfiles small files took $((SECONDS - t0)) s (see the comment above)"
assert_eq "$(printf '%s\n' "$out" | grep -c '^upload:')" "$nfiles" "sync up uploads every file"
keys=$(aws1 s3api list-objects-v2 --bucket xfer --prefix tree/ --query 'Contents[].Key' --output text | tr '\t' '\n' | sort)
assert_eq "$keys" "$(cd "$tree" && find . -type f | sed 's|^\./|tree/|' | sort)" "keys after sync up"

out=$(aws1 s3 sync --no-progress "$tree" s3://xfer/tree 2>&1) || fail "re-sync: $out"
assert_eq "$out" "" "re-sync with aws1 transfers nothing"
out=$(aws2 s3 sync --no-progress "$tree" s3://xfer/tree 2>&1) || fail "aws2 re-sync: $out"
assert_eq "$out" "" "re-sync with aws2 transfers nothing"

sleep 1 # sync compares sizes and mtimes at 1 s granularity
printf 'two, changed and longer\n' >"$tree/a/b/2.txt"
out=$(aws1 s3 sync --no-progress "$tree" s3://xfer/tree 2>&1) || fail "sync after a change: $out"
assert_eq "$(printf '%s\n' "$out" | grep -c '^upload:')" 1 "sync after one change uploads one file"
assert_contains "$out" "s3://xfer/tree/a/b/2.txt" "sync uploads the changed file"

out=$(aws2 s3 sync --no-progress s3://xfer/tree "$down/tree" 2>&1) || fail "sync down: $out"
diff -r "$tree" "$down/tree" || fail "tree synced down differs from the original"
out=$(aws2 s3 sync --no-progress s3://xfer/tree "$down/tree" 2>&1) || fail "re-sync down: $out"
assert_eq "$out" "" "re-sync down transfers nothing"

rm "$tree/a/1.txt"
out=$(aws1 s3 sync --no-progress --delete "$tree" s3://xfer/tree 2>&1) || fail "sync --delete: $out"
assert_contains "$out" "delete: s3://xfer/tree/a/1.txt" "sync --delete removes the deleted file"
out=$(aws1 s3 ls s3://xfer/tree/a/1.txt 2>&1) && fail "a/1.txt still listed after sync --delete: $out"

log "ls with prefixes and --recursive"
# ls_lines: `aws s3 ls` output as "PRE name/" and "size name" lines, sorted.
ls_lines() { sed -E 's/^ *PRE (.*)$/PRE \1/; t; s/^[^ ]+ +[^ ]+ +([0-9]+) (.*)$/\1 \2/' | sort; }
lines=$(aws1 s3 ls s3://xfer/tree/ | ls_lines)
assert_eq "$lines" "$(printf 'PRE a/\nPRE d/\nPRE e f/\n5 root.txt' | sort)" "aws s3 ls of tree/"
lines=$(aws1 s3 ls s3://xfer/tree/a/b/ | ls_lines)
assert_eq "$lines" "$(printf 'PRE c/\n24 2.txt' | sort)" "aws s3 ls of tree/a/b/ (size and name)"
lines=$(aws1 s3 ls s3://xfer/tre | ls_lines)
assert_eq "$lines" "PRE tree/" "aws s3 ls of a partial prefix"
lines=$(aws2 s3 ls s3://xfer/ | ls_lines)
assert_eq "$lines" "$(printf 'PRE aws1/\nPRE aws2/\nPRE big/\nPRE tree/')" "aws s3 ls of the bucket root"
lines=$(aws2 s3 ls --recursive s3://xfer/tree/ | ls_lines | sed 's/^[0-9]* //' | sort)
assert_eq "$lines" "$(cd "$tree" && find . -type f | sed 's|^\./|tree/|' | sort)" "aws s3 ls --recursive"
out=$(aws1 s3 ls --recursive --summarize s3://xfer/aws1/)
assert_contains "$out" "Total Objects: 4" "--summarize object count"
assert_contains "$out" "Total Size: $((1 + (1 << 20) + (20 << 20)))" "--summarize total size"

log "rm --recursive"
out=$(aws1 s3 rm --recursive s3://xfer/tree/a/ 2>&1 | tr '\r' '\n') || fail "rm --recursive: $out"
assert_eq "$(printf '%s\n' "$out" | grep -c '^delete:')" 2 "rm --recursive of tree/a/ deletes 2 objects"
keys=$(aws1 s3api list-objects-v2 --bucket xfer --prefix tree/ --query 'Contents[].Key' --output text | tr '\t' '\n' | sort)
assert_eq "$keys" "$(cd "$tree" && find . -type f ! -path './a/*' | sed 's|^\./|tree/|' | sort)" "keys left after rm --recursive tree/a/"
out=$(aws2 s3 rm --recursive s3://xfer/ 2>&1) || fail "rm --recursive of the whole bucket: $out"
out=$(aws1 s3 ls --recursive s3://xfer/)
assert_eq "$out" "" "bucket empty after rm --recursive"
aws1 s3 rb s3://xfer >/dev/null || fail "rb of the emptied bucket"

silt_stop
pass
