#!/usr/bin/python3
"""Crash safety: kill -9 silt in the middle of a produce stream, restart it on
the same data directory and check that every acknowledged message is still
there, at the offset the broker acknowledged.

Rounds (one broker, one topic with 2 partitions, all rounds cumulative):
  acks=all, acks=1, idempotent (acks=all + enable.idempotence): confluent_kafka
      producer writes sequentially numbered messages (linger.ms=2), recording
      every delivery-report-acknowledged (partition, offset, value); after N
      acks silt is killed with SIGKILL and restarted while the producer keeps
      going (retrying into the restarted broker); after the producer has
      flushed, the whole log is read back.
  torn-*: the same, but before the restart bytes are appended to the newest
      segment file of each partition: random garbage, a torn batch header,
      and a complete batch with a bad CRC. The broker must cut them (the
      file returns to its previous size) and keep every acknowledged message;
      new writes continue at the old end offset.

Assertions after each round:
  - the broker's log since the restart mentions recovery of the unclean log
    (and, for torn rounds, truncation);
  - each partition's offsets are dense from 0 to the high watermark;
  - every acknowledged message of every round so far is at its offset with
    its value; no offset was acknowledged twice;
  - after a clean SIGTERM shutdown the next start runs no crash recovery;
  - a synchronous offset commit survives a final kill -9;
  - idempotent round: no value of that round is stored twice, and per
    partition the round's values are in produce order.
"""

import logging
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from silt_harness import Silt, check, eq, log, run_test, segment_files  # noqa: E402
import kafka_wire as kw  # noqa: E402

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

# Connection-refused lines while silt is down are expected; keep them out of
# the test output.
QUIET = logging.getLogger("rdkafka-quiet")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False

TOPIC = "crash"
PARTS = 2
RECOVERY_RE = re.compile(r"recover|unclean|scann|rebuil", re.I)
TRUNC_RE = re.compile(r"truncat|torn|discard", re.I)
NOTRUNC_RE = re.compile(r"nothing truncated|\b0 bytes truncated", re.I)


def mentions_truncation(text):
    return any(TRUNC_RE.search(l) and not NOTRUNC_RE.search(l) for l in text.splitlines())


def produce_and_crash(s, tag, conf_extra, kill_after, before_restart=None):
    """Returns ([(partition, offset, value)] acknowledged in this round, the
    broker log since the restart). With before_restart, the producer's
    unacknowledged messages are purged after the kill so that nothing is
    written between the restart and the hook's checks; before_restart()
    returns a function called right after the restart."""
    acks = []
    errors = []
    fatal = []

    def dr(err, msg):
        if err is None:
            acks.append((msg.partition(), msg.offset(), msg.value()))
        else:
            errors.append(err)

    def error_cb(err):
        if err.fatal():
            fatal.append(str(err))

    conf = {"bootstrap.servers": s.bootstrap, "linger.ms": 2, "message.timeout.ms": 20000,
            "retry.backoff.ms": 100, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500,
            "queue.buffering.max.messages": 5000, "error_cb": error_cb,
            "broker.address.family": "v4", "logger": QUIET}
    conf.update(conf_extra)
    p = Producer(conf)
    seq = 0
    killed_at = None
    after_kill = 0
    deadline = time.monotonic() + 40
    # Bursts of 100 between polls keep several batches in flight at the kill.
    while time.monotonic() < deadline and seq < 30000:
        if killed_at is None and len(acks) >= kill_after:
            s.kill9()
            killed_at = len(acks)
            log("%s: killed silt after %d acks (%d produced)" % (tag, killed_at, seq))
        if killed_at is not None:
            after_kill += 100
            if after_kill > 300:
                break
        for _ in range(100):
            value = ("%s-%08d" % (tag, seq)).encode()
            try:
                p.produce(TOPIC, value=value, key=str(seq).encode(), partition=seq % PARTS,
                          on_delivery=dr)
            except BufferError:
                break
            seq += 1
        p.poll(0.002)
    check(killed_at is not None, "%s: only %d acks in 40s, never reached %d" % (tag, len(acks), kill_after))
    after_restart = None
    if before_restart:
        p.purge()
        p.flush(5)
        after_restart = before_restart()
    s.start()
    if after_restart:
        after_restart()
    since = s.log_text(since_last_start=True)
    left = p.flush(30)
    eq(left, 0, "%s: messages still queued 30s after restart" % tag)
    check(not fatal, "%s: producer fatal error: %s" % (tag, fatal))
    log("%s: %d produced, %d acked, %d failed (%s)" % (tag, seq, len(acks), len(errors),
                                                      sorted({str(e.code()) for e in errors})[:3]))
    # Give the restart log a moment to contain the recovery lines.
    for _ in range(20):
        if RECOVERY_RE.search(since):
            break
        time.sleep(0.1)
        since = s.log_text(since_last_start=True)
    check(RECOVERY_RE.search(since), "%s: broker log after restart does not mention recovery:\n%s"
          % (tag, since[-2000:]))
    return acks, since


def read_log(s):
    """The whole topic: {partition: [(offset, value)]}, read with a plain
    assigned consumer up to the high watermark."""
    c = Consumer({"bootstrap.servers": s.bootstrap, "group.id": "crash-verify",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "broker.address.family": "v4", "logger": QUIET})
    his = {}
    for p in range(PARTS):
        lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)
        eq(lo, 0, "low watermark of partition %d" % p)
        his[p] = hi
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTS)])
    out = {p: [] for p in range(PARTS)}
    done = {p for p in range(PARTS) if his[p] == 0}
    deadline = time.monotonic() + 60
    while len(done) < PARTS and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                if m.offset() >= his[m.partition()]:
                    done.add(m.partition())
                continue
            raise AssertionError("verify consumer error: %s" % m.error())
        out[m.partition()].append((m.offset(), m.value()))
    c.close()
    check(len(done) == PARTS, "could not read the whole log in 60s: %s" % {p: len(v) for p, v in out.items()})
    for p in range(PARTS):
        eq([o for o, _ in out[p]], list(range(his[p])), "partition %d offsets dense 0..hw-1" % p)
    return out


def verify(s, all_acks, tag):
    logd = read_log(s)
    seen = {}
    for p, o, v in all_acks:
        check((p, o) not in seen or seen[(p, o)] == v,
              "offset %d/%d acknowledged for %r and %r" % (p, o, seen.get((p, o)), v))
        seen[(p, o)] = v
        check(o < len(logd[p]), "%s: acknowledged %r at %d/%d but the log ends at %d"
              % (tag, v, p, o, len(logd[p])))
        eq(logd[p][o][1], v, "%s: value at acknowledged offset %d/%d" % (tag, p, o))
    log("%s: all %d acknowledged messages present; log sizes %s"
        % (tag, len(all_acks), {p: len(v) for p, v in logd.items()}))
    return logd


def newest_segments(s):
    segs = segment_files(s.data_dir, TOPIC)
    eq(sorted(segs), list(range(PARTS)), "partition directories with segments under %s" % s.data_dir)
    return {p: files[-1] for p, files in segs.items()}


def main():
    seed = int(os.environ.get("SEED", int(time.time())))
    log("SEED=%d (set SEED to repeat the same kill points and junk)" % seed)
    rnd = random.Random(seed)
    with Silt(config={"log.segment.bytes": 65536, "num.partitions": 1}) as s:
        a = AdminClient({"bootstrap.servers": s.bootstrap, "broker.address.family": "v4", "logger": QUIET})
        a.create_topics([NewTopic(TOPIC, num_partitions=PARTS, replication_factor=1)])[TOPIC].result(15)
        all_acks = []

        rounds = [("acks-all", {"acks": "all"}), ("acks-1", {"acks": "1"}),
                  ("idempotent", {"enable.idempotence": True}), ("acks-all-2", {"acks": "all"})]
        for tag, extra in rounds:
            acks, _ = produce_and_crash(s, tag, extra, rnd.randint(300, 1500))
            check(acks, "%s: nothing acknowledged" % tag)
            all_acks += acks
            logd = verify(s, all_acks, tag)
            if tag == "idempotent":
                mine = [(p, o, v) for p in logd for o, v in logd[p] if v.startswith(b"idempotent-")]
                vals = [v for _, _, v in mine]
                eq(len(vals), len(set(vals)), "idempotent: duplicated values in the log")
                for p in range(PARTS):
                    seqs = [int(v.split(b"-")[1]) for pp, _, v in mine if pp == p]
                    eq(seqs, sorted(seqs), "idempotent: produce order in partition %d" % p)

        # Torn tails. Each appends something different to the newest segment
        # of every partition while silt is dead.
        def torn(kind):
            sizes = {}

            def hook():
                for p, path in newest_segments(s).items():
                    size = os.path.getsize(path)
                    sizes[p] = (path, size)
                    if kind == "garbage":
                        junk = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 200)))
                    elif kind == "header":
                        # A batch header claiming 4000 bytes, cut after 40.
                        junk = (kw.i64(10 ** 6) + kw.i32(4000) + kw.i32(0) + kw.i8(2)
                                + bytes(rnd.getrandbits(8) for _ in range(23)))
                    else:
                        # A whole batch whose CRC does not match.
                        b = kw.record_batch([(b"k", b"bad crc" * 10, [])], corrupt_crc=True)
                        junk = kw.i64(10 ** 6) + b[8:]
                    with open(path, "ab") as f:
                        f.write(junk)
                    log("appended %d bytes (%s) to %s (was %d)" % (len(junk), kind, path, size))
                return check_cut

            def check_cut():
                # Nothing has been produced since the restart, so recovery
                # must have cut each file back to exactly its old size.
                for p, (path, size) in sizes.items():
                    eq(os.path.getsize(path), size, "size of %s after recovery" % path)
            return hook

        for kind in ("garbage", "header", "badcrc"):
            tag = "torn-" + kind
            acks, since = produce_and_crash(s, tag, {"acks": "all"}, rnd.randint(200, 800), torn(kind))
            check(mentions_truncation(since), "%s: broker log does not mention truncating the tail:\n%s"
                  % (tag, since[-2000:]))
            all_acks += acks
            verify(s, all_acks, tag)
            # New writes continue right after the old end.
            p2 = Producer({"bootstrap.servers": s.bootstrap, "acks": "all", "broker.address.family": "v4", "logger": QUIET})
            ends = {p: len(v) for p, v in read_log(s).items()}
            got = []
            for p in range(PARTS):
                p2.produce(TOPIC, value=b"after-" + tag.encode(), partition=p,
                           on_delivery=lambda e, m: got.append((e, m.partition(), m.offset())))
            eq(p2.flush(15), 0, "post-recovery produce flushed")
            eq(sorted((str(e), p, o) for e, p, o in got), [("None", p, ends[p]) for p in range(PARTS)],
               "%s: offsets of the first writes after recovery" % tag)
            all_acks += [(p, o, b"after-" + tag.encode()) for _, p, o in got]

        # The torn-tail cut must be physical: after a clean restart (no
        # appends in between) the segment files hold only whole batches.
        eq(s.stop(), 0, "exit status after SIGTERM")
        for p, path in newest_segments(s).items():
            with open(path, "rb") as f:
                data = f.read()
            pos = 0
            while pos + 12 <= len(data):
                n = int.from_bytes(data[pos + 8:pos + 12], "big", signed=True)
                if n < 49:
                    break
                pos += 12 + n
            eq(pos, len(data), "newest segment %s ends on a batch boundary" % path)
        s.start()
        since = s.log_text(since_last_start=True)
        check(not re.search(r"unclean|recovered segment", since),
              "a start after a clean shutdown ran crash recovery:\n%s" % since[-1500:])
        verify(s, all_acks, "final")

        # Committed group offsets survive kill -9 too.
        commit = [TopicPartition(TOPIC, p, 100 + p) for p in range(PARTS)]
        c = Consumer({"bootstrap.servers": s.bootstrap, "group.id": "crash-group",
                      "enable.auto.commit": False, "broker.address.family": "v4", "logger": QUIET})
        c.commit(offsets=commit, asynchronous=False)
        c.close()
        s.kill9()
        s.start()
        c = Consumer({"bootstrap.servers": s.bootstrap, "group.id": "crash-group",
                      "enable.auto.commit": False, "broker.address.family": "v4", "logger": QUIET})
        got = c.committed([TopicPartition(TOPIC, p) for p in range(PARTS)], timeout=10)
        c.close()
        eq([(tp.partition, tp.offset) for tp in got], [(tp.partition, tp.offset) for tp in commit],
           "acknowledged offset commits after kill -9")
        # The SIGTERM at the end of the with-block must not land before silt
        # has installed its signal handlers, a startup race that
        # test_lifecycle.py checks on its own.
        time.sleep(0.5)


if __name__ == "__main__":
    run_test(main)
