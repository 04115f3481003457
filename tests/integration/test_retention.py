#!/usr/bin/python3
"""Retention: small segments, size- and time-based deletion.

Broker config: log.segment.bytes=16384, log.retention.bytes=49152 (broker
default), log.retention.check.interval.ms=300.
  ret-bytes: inherits the broker's retention.bytes.
  ret-ms:    per-topic alter_configs retention.ms=1000, retention.bytes=-1
             (the override must beat the broker default).
  ret-keep:  created with retention.bytes=-1 and retention.ms=-1: must keep all.

Each topic gets ~120 KiB in ~2 KiB batches (many segments). Then (bounded
waits) the earliest offset (ListOffsets, get_watermark_offsets) moves
forward and equals the base offset of the oldest remaining segment file;
ret-bytes keeps at most retention.bytes + one segment on disk; ret-ms keeps
only the active segment; ret-keep stays at 0. A consumer with
auto.offset.reset=earliest asking for offset 0 gets the new earliest offset
and every message from there on; with auto.offset.reset=error it gets
_AUTO_OFFSET_RESET; a raw Fetch v4 at offset 0 gets OFFSET_OUT_OF_RANGE (1);
raw ListOffsets agrees. The new start survives a restart.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from silt_harness import Silt, check, eq, log, run_test, segment_files, wait_until  # noqa: E402
import kafka_wire as kw  # noqa: E402

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # noqa: E402

SEG = 16384
RET_BYTES = 49152
N = 300
VALUE_LEN = 400


def produce(s, topic):
    p = Producer({"bootstrap.servers": s.bootstrap, "acks": "all", "linger.ms": 0,
                  "broker.address.family": "v4"})
    acked = {}
    errs = []

    def dr(err, msg):
        if err:
            errs.append(err)
        else:
            acked[msg.offset()] = msg.value()

    for i in range(N):
        v = ("%s-%05d-" % (topic, i)).encode().ljust(VALUE_LEN, b"x")
        p.produce(topic, value=v, key=b"%d" % i, partition=0, on_delivery=dr)
        if i % 5 == 4:
            p.flush(10)  # one small batch per flush, so segments roll often
    eq(p.flush(10), 0, "unflushed messages")
    check(not errs, "produce errors: %s" % errs[:3])
    eq(sorted(acked), list(range(N)), "acknowledged offsets of %s" % topic)
    return acked


def watermarks(s, topic):
    c = Consumer({"bootstrap.servers": s.bootstrap, "group.id": "wm", "broker.address.family": "v4"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=5, cached=False)
    finally:
        c.close()


def seg_info(s, topic):
    files = segment_files(s.data_dir, topic).get(0, [])
    return [(int(os.path.basename(f)[:20]), os.path.getsize(f)) for f in files]


def main():
    conf = {"log.segment.bytes": SEG, "log.retention.bytes": RET_BYTES,
            "log.retention.check.interval.ms": 300, "num.partitions": 1}
    with Silt(config=conf) as s:
        a = AdminClient({"bootstrap.servers": s.bootstrap, "broker.address.family": "v4"})
        fs = a.create_topics([
            NewTopic("ret-bytes", 1, 1),
            NewTopic("ret-ms", 1, 1),
            NewTopic("ret-keep", 1, 1, config={"retention.bytes": "-1", "retention.ms": "-1"}),
        ])
        for f in fs.values():
            f.result(15)

        data = {}
        # ret-ms first gets retention.bytes=-1 so that the broker default does
        # not delete anything before the time-based setting is applied.
        r = ConfigResource(ConfigResource.Type.TOPIC, "ret-ms", set_config={"retention.bytes": "-1"})
        a.alter_configs([r])[r].result(15)
        for t in ("ret-bytes", "ret-ms", "ret-keep"):
            data[t] = produce(s, t)
        for t in ("ret-ms", "ret-keep"):
            segs = seg_info(s, t)
            log("%s: %d segments, %d bytes, low/high %s" % (t, len(segs), sum(x[1] for x in segs),
                                                           watermarks(s, t)))
            check(len(segs) >= 5, "%s: only %d segments with log.segment.bytes=%d" % (t, len(segs), SEG))
            check(all(sz <= SEG for _, sz in segs), "%s: a segment exceeds segment.bytes: %s" % (t, segs))
        eq(watermarks(s, "ret-ms"), (0, N), "ret-ms watermarks before retention.ms is set")

        r = ConfigResource(ConfigResource.Type.TOPIC, "ret-ms",
                           set_config={"retention.bytes": "-1", "retention.ms": "1000"})
        a.alter_configs([r])[r].result(15)

        lows = {}
        for t in ("ret-bytes", "ret-ms"):
            lo, hi = wait_until(lambda t=t: (lambda w: w if w[0] > 0 else None)(watermarks(s, t)),
                                20, "earliest offset of %s to move forward" % t, interval=0.3)
            eq(hi, N, "%s high watermark after retention" % t)
            lows[t] = lo
        # Let retention settle (it may delete in several passes), then compare
        # with what is on disk.
        time.sleep(1.5)
        for t in ("ret-bytes", "ret-ms"):
            lo, hi = watermarks(s, t)
            segs = seg_info(s, t)
            log("%s: low %d high %d, segments %s" % (t, lo, hi, segs))
            check(segs, "%s: no segment files left" % t)
            eq(lo, segs[0][0], "%s: earliest offset = base offset of the oldest segment file" % t)
            lows[t] = lo
        segs = seg_info(s, "ret-bytes")
        total = sum(sz for _, sz in segs)
        check(total <= RET_BYTES + SEG, "ret-bytes keeps %d bytes > retention.bytes + segment" % total)
        check(total >= RET_BYTES - SEG, "ret-bytes deleted too much: %d bytes left" % total)
        segs = seg_info(s, "ret-ms")
        eq(len(segs), 1, "ret-ms segments left (only the active one)")
        eq(watermarks(s, "ret-keep"), (0, N), "ret-keep watermarks (retention disabled)")

        t = "ret-bytes"
        lo = lows[t]
        # earliest reset: asking for 0 gives the new start and everything after.
        c = Consumer({"bootstrap.servers": s.bootstrap, "group.id": "ret-earliest",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "broker.address.family": "v4"})
        c.assign([TopicPartition(t, 0, 0)])
        got = []
        deadline = time.monotonic() + 20
        while len(got) < N - lo and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF):
                continue
            check(not m.error(), "earliest consumer error: %s" % (m and m.error()))
            got.append((m.offset(), m.value()))
        c.close()
        eq([o for o, _ in got], list(range(lo, N)), "offsets read after reset to earliest")
        for o, v in got:
            eq(v, data[t][o], "value at offset %d" % o)

        # error reset: offset 0 is out of range and the client says so.
        c = Consumer({"bootstrap.servers": s.bootstrap, "group.id": "ret-error",
                      "auto.offset.reset": "error", "enable.auto.commit": False,
                      "broker.address.family": "v4"})
        c.assign([TopicPartition(t, 0, 0)])
        err = None
        deadline = time.monotonic() + 15
        while err is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() and m.error().code() != KafkaError._PARTITION_EOF:
                err = m.error()
            elif m is not None and not m.error():
                raise AssertionError("auto.offset.reset=error consumer got a message at %d" % m.offset())
        c.close()
        check(err is not None, "no error for offset 0 below the log start within 15s")
        check(err.code() in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE),
              "error for offset 0: %s" % err)
        log("auto.offset.reset=error: %s" % err)

        # Raw requests.
        with kw.Conn(s.port) as conn:
            res = kw.parse_fetch_v4(conn.call(kw.API_FETCH, 4, kw.fetch_v4_body(t, 0, 0)))
            eq(res[(t, 0)]["error"], 1, "raw Fetch at offset 0: OFFSET_OUT_OF_RANGE")
            res = kw.parse_fetch_v4(conn.call(kw.API_FETCH, 4, kw.fetch_v4_body(t, 0, N + 5)))
            eq(res[(t, 0)]["error"], 1, "raw Fetch past the end: OFFSET_OUT_OF_RANGE")
            res = kw.parse_fetch_v4(conn.call(kw.API_FETCH, 4, kw.fetch_v4_body(t, 0, lo)))
            eq(res[(t, 0)]["error"], 0, "raw Fetch at the new start")
            eq(res[(t, 0)]["high_watermark"], N, "raw Fetch high watermark")
            batches = kw.batch_offsets(res[(t, 0)]["records"])
            check(batches and batches[0][0] == lo, "first batch fetched at the start: %s" % batches[:3])
            res = kw.parse_fetch_v4(conn.call(kw.API_FETCH, 4, kw.fetch_v4_body(t, 0, N)))
            eq((res[(t, 0)]["error"], kw.batch_offsets(res[(t, 0)]["records"])), (0, []),
               "raw Fetch at the end: no error, no records")
            lo_raw = kw.parse_list_offsets_v1(conn.call(kw.API_LIST_OFFSETS, 1,
                                                        kw.list_offsets_v1_body(t, 0, -2)))
            eq(lo_raw[(t, 0)][0::2], (0, lo), "raw ListOffsets earliest (error, offset)")
            hi_raw = kw.parse_list_offsets_v1(conn.call(kw.API_LIST_OFFSETS, 1,
                                                        kw.list_offsets_v1_body(t, 0, -1)))
            eq(hi_raw[(t, 0)][0::2], (0, N), "raw ListOffsets latest (error, offset)")

        # The new start survives a clean restart.
        s.restart()
        for t2 in ("ret-bytes", "ret-ms", "ret-keep"):
            eq(watermarks(s, t2), (lows.get(t2, 0), N), "%s watermarks after restart" % t2)
        # ... and so do the per-topic overrides.
        a = AdminClient({"bootstrap.servers": s.bootstrap, "broker.address.family": "v4"})
        want = {"ret-ms": ("1000", "-1"), "ret-keep": ("-1", "-1"), "ret-bytes": ("604800000", str(RET_BYTES))}
        for t2, (ms, by) in want.items():
            r = ConfigResource(ConfigResource.Type.TOPIC, t2)
            cfg = a.describe_configs([r])[r].result(15)
            eq((cfg["retention.ms"].value, cfg["retention.bytes"].value), (ms, by),
               "%s retention.ms/retention.bytes after restart" % t2)


if __name__ == "__main__":
    run_test(main)
