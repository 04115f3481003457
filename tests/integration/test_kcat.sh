#!/usr/bin/env bash
# kcat (librdkafka 2.0.2): keyed produce with headers into an auto-created
# topic, consume from the beginning and check key, value, headers, partition
# and offset of every message in order; metadata (-L); explicit partition and
# offset; every compression codec; acks=all; the data survives a clean
# restart.
. "$(dirname "$0")/lib.sh"

silt_start 'num.partitions=2' 'auto.create.topics.enable=true'

# --- metadata of an empty broker
md=$(kc -L)
assert_contains "$md" "broker 0 at 127.0.0.1:$SILT_PORT" "kcat -L broker list"

# --- keyed produce with headers; topic auto-created with num.partitions=2
input=$(for i in $(seq 1 40); do printf 'key%02d:value-%d-%s\n' $((i % 7)) "$i" "$(printf 'x%.0s' $(seq 1 $((i % 5))))"; done)
printf '%s\n' "$input" | kc -P -t orders -K: -H trace=abc -H empty= -X acks=all \
	|| fail "kcat produce failed"

md=$(kc -L -t orders)
assert_contains "$md" 'topic "orders" with 2 partitions' "auto-created topic has num.partitions"
assert_contains "$md" "partition 0, leader 0" "partition 0 led by node 0"
assert_contains "$md" "partition 1, leader 0" "partition 1 led by node 0"

# Consume everything; with -e kcat exits at the end of every partition.
out=$(kc -C -t orders -o beginning -e -q -f '%p|%o|%k|%s|%h\n') || fail "kcat consume failed"
n=$(printf '%s\n' "$out" | grep -c . || true)
assert_eq "$n" 40 "number of messages consumed"

# The same key always lands on the same partition, every message carries both
# headers, and within each partition offsets are 0,1,2,... in produce order.
$PY - "$out" "$input" <<'EOF' || fail "consumed messages do not match what was produced"
import sys
out, inp = sys.argv[1], sys.argv[2]
produced = [l.split(":", 1) for l in inp.splitlines()]
by_part = {}
key_part = {}
for line in out.splitlines():
    p, o, k, v, h = line.split("|", 4)
    if h != "trace=abc,empty=":
        sys.exit("message %s: headers %r, want 'trace=abc,empty='" % (line, h))
    if key_part.setdefault(k, p) != p:
        sys.exit("key %s on partitions %s and %s" % (k, key_part[k], p))
    by_part.setdefault(p, []).append((int(o), k, v))
if set(by_part) != {"0", "1"}:
    sys.exit("partitions used: %s (7 keys over 2 partitions should use both)" % sorted(by_part))
for p, msgs in by_part.items():
    offs = [m[0] for m in msgs]
    if offs != list(range(len(msgs))):
        sys.exit("partition %s offsets %s, want 0..%d" % (p, offs, len(msgs) - 1))
    want = [(k, v) for k, v in produced if key_part.get(k) == p]
    got = [(k, v) for _, k, v in msgs]
    if got != want:
        sys.exit("partition %s order differs:\n got  %s\n want %s" % (p, got, want))
EOF

# --- explicit partition and offset: the third message of partition 0
p0=$(printf '%s\n' "$out" | awk -F'|' '$1 == 0')
want=$(printf '%s\n' "$p0" | sed -n 3p | cut -d'|' -f3,4)
got=$(kc -C -t orders -p 0 -o 2 -c 1 -e -q -f '%k|%s\n')
assert_eq "$got" "$want" "kcat -p 0 -o 2 -c 1"

# Relative from the end: the last message of partition 1.
want=$(printf '%s\n' "$out" | awk -F'|' '$1 == 1' | tail -n 1 | cut -d'|' -f3,4)
got=$(kc -C -t orders -p 1 -o -1 -c 1 -e -q -f '%k|%s\n')
assert_eq "$got" "$want" "kcat -p 1 -o -1 -c 1"

# --- every compression codec, each to its own single-partition topic, acks=1
# and acks=all, values long and repetitive enough that compression matters.
for codec in none gzip snappy lz4 zstd; do
	t=codec-$codec
	vals=$(for i in $(seq 1 30); do printf 'k%d:%s-%04d-%s\n' "$i" "$codec" "$i" "$(printf 'abcdefgh%.0s' $(seq 1 20))"; done)
	printf '%s\n' "$vals" | kc -P -t "$t" -p 0 -K: -z "$codec" -X acks=1 -X linger.ms=50 \
		|| fail "kcat produce -z $codec failed"
	printf 'tail:%s-end\n' "$codec" | kc -P -t "$t" -p 0 -K: -z "$codec" -X acks=all \
		|| fail "kcat produce -z $codec acks=all failed"
	got=$(kc -C -t "$t" -o beginning -e -q -f '%o %k:%s\n')
	want=$(printf '%s\ntail:%s-end\n' "$vals" "$codec" | awk '{ print NR - 1 " " $0 }')
	assert_eq "$got" "$want" "codec $codec round trip (offset key:value)"
done

# --- null key and empty value (-Z sends empty as NULL)
printf 'nokey\n' | kc -P -t nulls -p 0 || fail "produce without key"
got=$(kc -C -t nulls -o beginning -e -q -f '%o|%K|%k|%s|%S\n')
assert_eq "$got" "0|-1||nokey|5" "message without key: key length -1"

# --- JSON output carries the same data
js=$(kc -C -t orders -p 0 -o 0 -c 1 -e -q -J)
$PY - "$js" <<'EOF' || fail "kcat -J output"
import json, sys
m = json.loads(sys.argv[1])
assert m["topic"] == "orders" and m["partition"] == 0 and m["offset"] == 0, m
assert m["headers"] == ["trace", "abc", "empty", ""], m["headers"]
assert m["key"].startswith("key") and m["payload"].startswith("value-"), m
assert m["tstype"] == "create" and m["ts"] > 1600000000000, m
EOF

# --- acks=0 (no produce response at all) still delivers, in order
seq 1 50 | sed 's/^/n/' | kc -P -t acks0 -p 0 -X acks=0 || fail "kcat produce acks=0"
got=$(kc -C -t acks0 -o beginning -e -q -f '%o:%s\n' | tr '\n' ' ')
want=$(seq 1 50 | awk '{ printf "%d:n%d ", NR - 1, $1 }')
assert_eq "$got" "$want" "acks=0 messages"

# --- a 700 kB message (a whole file is one message) round trips intact
big=$IT_TMP/big.txt
$PY -c 'import random, sys; r = random.Random(5); sys.stdout.write("".join(r.choice("abcdefghij") for _ in range(700000)))' >"$big"
kc -P -t bigmsg -p 0 -z lz4 -X message.max.bytes=2000000 "$big" || fail "produce of a 700 kB message"
got=$(kc -C -t bigmsg -o beginning -e -q -c 1 -X fetch.message.max.bytes=2000000 -f '%s\n' | sha256sum | cut -d' ' -f1)
assert_eq "$got" "$( (cat "$big"; echo) | sha256sum | cut -d' ' -f1)" "sha256 of the 700 kB message read back"

# --- an empty partition: consuming to the end returns nothing, cleanly
printf '' | kc -P -t empty-topic -p 0 || true
kc -L -t empty-topic >/dev/null
got=$(kc -C -t empty-topic -o beginning -e -q -f '%o %s\n') || fail "consume of an empty topic failed"
assert_eq "$got" "" "messages in an empty topic"
got=$(kc -Q -t empty-topic:0:0) || fail "kcat -Q on an empty topic failed"
assert_contains "$got" "empty-topic [0] offset" "kcat -Q answers for an empty partition"

# --- clean restart keeps everything
silt_stop
silt_start
out2=$(kc -C -t orders -o beginning -e -q -f '%p|%o|%k|%s|%h\n')
assert_eq "$(printf '%s\n' "$out2" | sort)" "$(printf '%s\n' "$out" | sort)" "messages after a clean restart"
md=$(kc -L -t orders)
assert_contains "$md" 'topic "orders" with 2 partitions' "partition count after restart"

# Produce after the restart continues the offsets.
printf 'key01:after-restart\n' | kc -P -t orders -K: -p 1 || fail "produce after restart"
n1=$(printf '%s\n' "$out" | awk -F'|' '$1 == 1' | wc -l)
got=$(kc -C -t orders -p 1 -o -1 -c 1 -e -q -f '%o|%s\n')
assert_eq "$got" "$n1|after-restart" "offset continues after restart"

silt_stop
pass
