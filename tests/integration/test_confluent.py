#!/usr/bin/python3
"""confluent_kafka 1.7 / librdkafka 2.0.2 against silt.

- AdminClient: create_topics (3 partitions), a duplicate create fails with
  TOPIC_ALREADY_EXISTS, create_partitions to 4, describe_configs and
  alter_configs of retention.ms, delete_topics.
- Producer: keys, headers and explicit timestamps for every compression.type
  x {acks=1, acks=all, idempotent}; every delivery report OK; offsets per
  partition dense from 0.
- Consumer: a group subscriber reads everything back; per partition the
  offsets, keys, values, headers and timestamps equal the delivery reports;
  committed offsets come back from the coordinator, and a second consumer in
  the same group starts after them.
- offsets_for_times finds the exact record for a timestamp (last, so a
  failure there does not hide the checks above).
- No librdkafka log line at warning level or worse mentions protocol or API
  version trouble.
"""

import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from silt_harness import Silt, check, eq, log, run_test, wait_until  # noqa: E402

from confluent_kafka import (Consumer, KafkaError, KafkaException, Producer,  # noqa: E402
                             TopicPartition)
from confluent_kafka import TIMESTAMP_CREATE_TIME  # noqa: E402
from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions,  # noqa: E402
                                   NewTopic)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
MODES = {
    "acks1": {"acks": "1"},
    "acksall": {"acks": "all"},
    "idempotent": {"enable.idempotence": True},
}
PER_RUN = 40
BAD_LOG = ("unsupported", "not supported", "apiversion", "protocol", "feature", "broker does not",
           "incompatible", "failed to parse", "malformed", "protoerr", "protoufl")


class LogCapture(logging.Handler):
    """Collects librdkafka log records (delivered through the `logger`
    config) so the test can fail on protocol complaints."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append((record.levelno, record.getMessage()))

    def bad(self):
        return [m for lvl, m in self.records
                if lvl >= logging.WARNING and any(b in m.lower() for b in BAD_LOG)]


CAP = LogCapture()
LOGGER = logging.getLogger("rdkafka")
LOGGER.addHandler(CAP)
LOGGER.setLevel(logging.DEBUG)
ERRORS = []


def error_cb(err):
    ERRORS.append(str(err))


def base_conf(s):
    return {"bootstrap.servers": s.bootstrap, "api.version.request": True, "logger": LOGGER,
            "error_cb": error_cb, "broker.address.family": "v4"}


def admin_tests(s, admin):
    name = "adm-topic"
    fs = admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)],
                             operation_timeout=10)
    fs[name].result(15)
    md = admin.list_topics(name, timeout=10)
    check(name in md.topics, "created topic missing from metadata")
    t = md.topics[name]
    check(t.error is None, "topic metadata error %s" % t.error)
    eq(sorted(t.partitions), [0, 1, 2], "partitions of created topic")
    for p in t.partitions.values():
        eq(p.leader, 0, "leader of partition %d" % p.id)
        eq(list(p.replicas), [0], "replicas of partition %d" % p.id)

    # Creating it again is TOPIC_ALREADY_EXISTS.
    fs = admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    try:
        fs[name].result(15)
        raise AssertionError("duplicate create_topics succeeded")
    except KafkaException as e:
        eq(e.args[0].code(), KafkaError.TOPIC_ALREADY_EXISTS, "duplicate create error")

    # validate_only must not create anything.
    fs = admin.create_topics([NewTopic("adm-validate", 2, 1)], validate_only=True)
    fs["adm-validate"].result(15)
    md = admin.list_topics(timeout=10)
    check("adm-validate" not in md.topics, "validate_only create_topics created the topic")

    # Grow to 4 partitions.
    fs = admin.create_partitions([NewPartitions(name, 4)], operation_timeout=10)
    fs[name].result(15)
    wait_until(lambda: len(admin.list_topics(name, timeout=5).topics[name].partitions) == 4,
               10, "4 partitions in metadata after create_partitions")
    # Shrinking is INVALID_PARTITIONS.
    fs = admin.create_partitions([NewPartitions(name, 2)])
    try:
        fs[name].result(15)
        raise AssertionError("create_partitions to fewer partitions succeeded")
    except KafkaException as e:
        eq(e.args[0].code(), KafkaError.INVALID_PARTITIONS, "shrink partitions error")

    # describe/alter configs: retention.ms.
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    cfg = admin.describe_configs([res])[res].result(15)
    check("retention.ms" in cfg, "retention.ms missing from describe_configs: %s" % sorted(cfg))
    eq(cfg["retention.ms"].value, "604800000", "default retention.ms")
    check(cfg["retention.ms"].is_default, "retention.ms should be reported as default")
    check("segment.bytes" in cfg and "cleanup.policy" in cfg, "segment.bytes/cleanup.policy missing")

    res = ConfigResource(ConfigResource.Type.TOPIC, name, set_config={"retention.ms": "123456"})
    admin.alter_configs([res])[res].result(15)
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    cfg = admin.describe_configs([res])[res].result(15)
    eq(cfg["retention.ms"].value, "123456", "retention.ms after alter_configs")
    check(not cfg["retention.ms"].is_default, "altered retention.ms still reported as default")

    # An invalid value is rejected and leaves the old one.
    res = ConfigResource(ConfigResource.Type.TOPIC, name, set_config={"retention.ms": "soon"})
    try:
        admin.alter_configs([res])[res].result(15)
        raise AssertionError("alter_configs retention.ms=soon succeeded")
    except KafkaException as e:
        eq(e.args[0].code(), KafkaError.INVALID_CONFIG, "invalid config value error")
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    eq(admin.describe_configs([res])[res].result(15)["retention.ms"].value, "123456",
       "retention.ms after rejected alter")

    # Broker config resource lists the node's settings.
    bres = ConfigResource(ConfigResource.Type.BROKER, "0")
    bcfg = admin.describe_configs([bres])[bres].result(15)
    check("log.retention.ms" in bcfg or "log.retention.hours" in bcfg,
          "broker describe_configs lacks log.retention.*: %s" % sorted(bcfg)[:20])

    # Put data in, delete, see it go; recreated under the same name it is empty.
    p = Producer(base_conf(s))
    for i in range(5):
        p.produce(name, value=b"old-%d" % i, partition=1)
    eq(p.flush(10), 0, "produce to %s" % name)
    del p
    admin.delete_topics([name], operation_timeout=10)[name].result(15)
    wait_until(lambda: name not in admin.list_topics(timeout=5).topics, 10,
               "deleted topic to leave metadata")
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])[name].result(15)
    c = Consumer(dict(base_conf(s), **{"group.id": "adm-check"}))
    eq(c.get_watermark_offsets(TopicPartition(name, 1), timeout=10), (0, 0),
       "watermarks of a deleted and recreated topic")
    c.close()
    res = ConfigResource(ConfigResource.Type.TOPIC, name)
    eq(admin.describe_configs([res])[res].result(15)["retention.ms"].value, "604800000",
       "retention.ms of the recreated topic (the old override is gone)")
    admin.delete_topics([name], operation_timeout=10)[name].result(15)
    fs = admin.delete_topics(["no-such-topic"])
    try:
        fs["no-such-topic"].result(15)
        raise AssertionError("deleting a missing topic succeeded")
    except KafkaException as e:
        eq(e.args[0].code(), KafkaError.UNKNOWN_TOPIC_OR_PART, "delete missing topic error")


def produce_all(s, topic):
    """Produces PER_RUN messages per (codec, mode); returns the delivery
    reports as {partition: [(offset, key, value, headers, ts)]}."""
    delivered = {}
    failures = []
    ts_base = int(time.time() * 1000) - 60000
    n = 0
    for codec in CODECS:
        for mode, extra in MODES.items():
            conf = dict(base_conf(s), **extra)
            conf.update({"compression.type": codec, "linger.ms": 20})
            p = Producer(conf)
            sent = {}

            def dr(err, msg, sent=sent):
                if err is not None:
                    failures.append("%s: %s" % (msg.key(), err))
                    return
                want = sent.pop(msg.key(), None)
                if want is None:
                    failures.append("unexpected or duplicate delivery report for %r" % msg.key())
                    return
                if msg.value() != want[0]:
                    failures.append("delivery report value differs for %r" % msg.key())
                delivered.setdefault(msg.partition(), []).append(
                    (msg.offset(), msg.key()) + want)

            for i in range(PER_RUN):
                key = ("%s/%s/%03d" % (codec, mode, i)).encode()
                # Repetitive values so every codec actually compresses.
                value = (("%s-%s-%d;" % (codec, mode, i)) * (1 + i % 9)).encode()
                headers = [("codec", codec.encode()), ("i", str(i).encode()),
                           ("dup", b"1"), ("dup", b"2")]
                if i % 10 == 0:
                    headers.append(("nullhdr", None))
                n += 1
                sent[key] = (value, headers, ts_base + n)
                p.produce(topic, value=value, key=key, headers=headers,
                          timestamp=ts_base + n, on_delivery=dr)
                p.poll(0)
            left = p.flush(20)
            eq(left, 0, "messages still queued after flush (%s/%s)" % (codec, mode))
            check(not sent, "no delivery report for %d messages (%s/%s)" % (len(sent), codec, mode))
    check(not failures, "delivery failures: %s" % failures[:5])
    return delivered, n


def consume_all(s, topic, group, total):
    c = Consumer(dict(base_conf(s), **{
        "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "session.timeout.ms": 10000, "heartbeat.interval.ms": 500}))
    c.subscribe([topic])
    got = {}
    count = 0
    deadline = time.monotonic() + 45
    while count < total and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise AssertionError("consumer error: %s" % m.error())
        got.setdefault(m.partition(), []).append(
            (m.offset(), m.key(), m.value(), m.headers(), m.timestamp()))
        count += 1
    check(count == total, "consumed %d of %d messages within 45s" % (count, total))
    # Nothing extra arrives.
    m = c.poll(1.0)
    check(m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF),
          "unexpected extra message at %s" % (m and (m.partition(), m.offset())))
    return c, got


def logger_self_check():
    """The log capture must see librdkafka's lines, or the protocol-warning
    check below could never fail: a client pointed at a closed port logs a
    connection failure."""
    cap = LogCapture()
    lg = logging.getLogger("rdkafka-selfcheck")
    lg.addHandler(cap)
    lg.setLevel(logging.DEBUG)
    from silt_harness import free_port
    p = Producer({"bootstrap.servers": "127.0.0.1:%d" % free_port(), "logger": lg})
    deadline = time.monotonic() + 5
    while not cap.records and time.monotonic() < deadline:
        p.poll(0.2)
    check(cap.records, "librdkafka log capture saw nothing from a client on a closed port")
    del p


def group_split(s, admin):
    """Two consumers in one group share the partitions: disjoint
    assignments covering all 3, and each receives only its own partitions'
    new messages, each exactly once."""
    topic = "cfk-split"
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(15)
    conf = dict(base_conf(s), **{"group.id": "cfk-split-group", "auto.offset.reset": "latest",
                                 "enable.auto.commit": False, "session.timeout.ms": 10000,
                                 "heartbeat.interval.ms": 300})
    cs = [Consumer(dict(conf)), Consumer(dict(conf))]
    for c in cs:
        c.subscribe([topic])
    stray = []

    def poll_all(t):
        for c in cs:
            m = c.poll(t)
            if m is not None and not m.error():
                stray.append((m.partition(), m.offset()))

    def assignments():
        return [sorted(tp.partition for tp in c.assignment()) for c in cs]

    stable_since, last = None, None
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        poll_all(0.2)
        a = assignments()
        if a != last:
            last, stable_since = a, time.monotonic()
        elif (all(a) and sorted(a[0] + a[1]) == [0, 1, 2]
              and time.monotonic() - stable_since > 2.0):
            break
    log("group split assignments: %s" % last)
    check(all(last), "a consumer of the two-member group has no partitions: %s" % last)
    eq(sorted(last[0] + last[1]), [0, 1, 2], "the two members' partitions (disjoint, all covered)")
    eq(stray, [], "messages before anything was produced")

    p = Producer(base_conf(s))
    for i in range(60):
        p.produce(topic, value=b"split-%d" % i, partition=i % 3)
    eq(p.flush(15), 0, "split produce flushed")
    got = [[], []]
    deadline = time.monotonic() + 20
    while len(got[0]) + len(got[1]) < 60 and time.monotonic() < deadline:
        for i, c in enumerate(cs):
            m = c.poll(0.1)
            if m is not None and not m.error():
                got[i].append((m.partition(), m.value()))
    for i in range(2):
        parts = {p_ for p_, _ in got[i]}
        check(parts <= set(last[i]), "consumer %d got partitions %s but owns %s" % (i, parts, last[i]))
        eq(len(got[i]), 20 * len(last[i]), "messages received by consumer %d" % i)
    vals = sorted(v for g in got for _, v in g)
    eq(vals, sorted(b"split-%d" % i for i in range(60)), "all split messages exactly once")

    # The first member leaves (LeaveGroup): the second takes all partitions.
    cs[0].close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = cs[1].poll(0.2)
        check(m is None or m.error() is not None, "unexpected message after rebalance: %s"
              % (m and (m.partition(), m.offset())))
        if sorted(tp.partition for tp in cs[1].assignment()) == [0, 1, 2]:
            break
    eq(sorted(tp.partition for tp in cs[1].assignment()), [0, 1, 2],
       "partitions of the remaining member after the other left")
    cs[1].close()


def offsets_for_times_check(s, topic, delivered):
    """ListOffsets by timestamp. Timestamps grow with offsets here, so the
    first offset whose record timestamp is >= a message's timestamp is that
    message's own offset (Kafka searches records inside the batch, not just
    batch boundaries)."""
    c = Consumer(dict(base_conf(s), **{"group.id": "cfk-times"}))
    try:
        for p in sorted(delivered):
            want = sorted(delivered[p])
            for k in (0, len(want) // 3, len(want) - 1):
                res = c.offsets_for_times([TopicPartition(topic, p, want[k][4])], timeout=10)
                eq(res[0].offset, want[k][0], "offsets_for_times(timestamp of offset %d) on partition %d"
                   % (want[k][0], p))
            res = c.offsets_for_times([TopicPartition(topic, p, want[-1][4] + 1000)], timeout=10)
            check(res[0].offset in (-1, len(want)),
                  "offsets_for_times after the newest message: %d" % res[0].offset)
    finally:
        c.close()


def main():
    logger_self_check()
    with Silt(config={"num.partitions": 1, "group.initial.rebalance.delay.ms": 0,
                      "auto.create.topics.enable": "false"}) as s:
        admin = AdminClient(base_conf(s))
        admin_tests(s, admin)

        # auto.create.topics.enable=false: metadata for an unknown topic is
        # an error and does not create it.
        md = admin.list_topics("cfk-not-there", timeout=10)
        t = md.topics.get("cfk-not-there")
        check(t is not None and t.error is not None
              and t.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART,
              "metadata of an unknown topic with auto-create off: %s" % (t and t.error))
        check("cfk-not-there" not in admin.list_topics(timeout=10).topics,
              "unknown topic was created although auto.create.topics.enable=false")

        topic = "cfk-data"
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(15)
        delivered, total = produce_all(s, topic)
        log("produced %d messages, partitions %s" % (total, {p: len(v) for p, v in delivered.items()}))
        eq(sum(len(v) for v in delivered.values()), total, "delivery reports")
        check(len(delivered) == 3, "keys should spread over 3 partitions, got %s" % sorted(delivered))
        for p, msgs in delivered.items():
            offs = sorted(m[0] for m in msgs)
            eq(offs, list(range(len(msgs))), "partition %d offsets dense from 0" % p)

        c, got = consume_all(s, topic, "cfk-group", total)
        for p in sorted(delivered):
            want = sorted(delivered[p])
            have = got.get(p, [])
            eq([m[0] for m in have], [m[0] for m in want], "partition %d offsets in order" % p)
            for w, h in zip(want, have):
                eq(h[1], w[1], "key at %d/%d" % (p, w[0]))
                eq(h[2], w[2], "value at %d/%d" % (p, w[0]))
                eq(h[3], w[3], "headers at %d/%d" % (p, w[0]))
                eq(h[4], (TIMESTAMP_CREATE_TIME, w[4]), "timestamp at %d/%d" % (p, w[0]))

        # Commit an offset in the middle of each partition and read it back.
        commit = [TopicPartition(topic, p, len(delivered[p]) // 2) for p in sorted(delivered)]
        c.commit(offsets=commit, asynchronous=False)
        committed = c.committed([TopicPartition(topic, p) for p in sorted(delivered)], timeout=10)
        eq([(tp.partition, tp.offset) for tp in committed],
           [(tp.partition, tp.offset) for tp in commit], "committed offsets")
        c.close()

        # A second member of the same group resumes from the commits.
        c2 = Consumer(dict(base_conf(s), **{
            "group.id": "cfk-group", "auto.offset.reset": "earliest", "enable.auto.commit": False}))
        c2.subscribe([topic])
        first = {}
        want_rest = sum(len(v) - len(v) // 2 for v in delivered.values())
        n = 0
        deadline = time.monotonic() + 30
        while n < want_rest and time.monotonic() < deadline:
            m = c2.poll(0.5)
            if m is None or m.error():
                check(m is None or m.error().code() == KafkaError._PARTITION_EOF,
                      "consumer 2 error %s" % (m and m.error()))
                continue
            first.setdefault(m.partition(), m.offset())
            n += 1
        eq(n, want_rest, "messages after the committed offsets")
        eq(first, {tp.partition: tp.offset for tp in commit}, "first offset per partition for consumer 2")
        c2.close()

        # Another group has no commits: OffsetFetch answers -1 (OFFSET_INVALID).
        c3 = Consumer(dict(base_conf(s), **{"group.id": "cfk-empty-group"}))
        none = c3.committed([TopicPartition(topic, 0)], timeout=10)
        eq(none[0].offset, -1001, "committed offset of a group without commits (OFFSET_INVALID)")
        c3.close()

        # Watermarks agree with what was produced.
        c4 = Consumer(dict(base_conf(s), **{"group.id": "cfk-wm"}))
        for p in sorted(delivered):
            lo, hi = c4.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            eq((lo, hi), (0, len(delivered[p])), "watermarks of partition %d" % p)
        c4.close()

        group_split(s, admin)
        offsets_for_times_check(s, topic, delivered)

        bad = CAP.bad()
        check(not bad, "librdkafka logged protocol warnings: %s" % bad[:5])
        errs = [e for e in ERRORS if "ALL_BROKERS_DOWN" not in e]
        check(not errs, "librdkafka error_cb: %s" % errs[:5])
        log("%d librdkafka log records, none about protocol trouble" % len(CAP.records))


if __name__ == "__main__":
    run_test(main)
