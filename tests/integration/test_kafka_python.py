#!/usr/bin/python3
"""kafka-python 2.0.2 against silt.

- The client's ApiVersions-based broker version guess is at least 2.1
  (zstd needs it; silt advertises Produce 7 and Fetch 10+).
- KafkaAdminClient: create_topics (2 partitions), duplicate create ->
  TopicAlreadyExistsError, describe_configs, delete_topics.
- KafkaProducer for every compression_type (None, gzip, snappy, lz4, zstd),
  acks=1 and acks='all': keys, headers, timestamps; RecordMetadata offsets
  dense from 0 per partition.
- KafkaConsumer with group_id and auto_offset_reset='earliest' reads every
  message back with the same key, value, headers and timestamp, in offset
  order per partition; commit, then committed() returns the commit.
- No kafka-python log record at WARNING or above about versions/protocol.
"""

import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from silt_harness import Silt, check, eq, log, run_test, wait_until  # noqa: E402

import kafka  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic  # noqa: E402
from kafka.codec import has_gzip, has_lz4, has_snappy, has_zstd  # noqa: E402
from kafka.errors import TopicAlreadyExistsError  # noqa: E402

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]
PER_RUN = 30
BAD = ("version", "unsupported", "not supported", "protocol", "corrupt", "unable to decode",
       "unrecognized", "correlation")


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append((record.levelno, record.name, record.getMessage()))

    def warnings(self):
        return [(n, m) for lvl, n, m in self.records if lvl >= logging.WARNING]


CAP = Capture()
logging.getLogger("kafka").addHandler(CAP)
logging.getLogger("kafka").setLevel(logging.INFO)


def main():
    eq(kafka.__version__, "2.0.2", "kafka-python version under test")
    check(has_gzip() and has_snappy() and has_lz4() and has_zstd(),
          "kafka-python codecs missing (need python3-snappy, python3-lz4, python3-zstandard): "
          "gzip=%s snappy=%s lz4=%s zstd=%s" % (has_gzip(), has_snappy(), has_lz4(), has_zstd()))
    with Silt(config={"num.partitions": 1, "group.initial.rebalance.delay.ms": 0}) as s:
        admin = KafkaAdminClient(bootstrap_servers=s.bootstrap, client_id="itest-admin",
                                 request_timeout_ms=10000)
        topic = "kp-data"
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)],
                            timeout_ms=10000)
        try:
            admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)],
                                timeout_ms=10000)
            raise AssertionError("duplicate create_topics succeeded")
        except TopicAlreadyExistsError:
            pass
        admin.create_topics([NewTopic("kp-doomed", num_partitions=1, replication_factor=1)])
        check("kp-doomed" in admin.list_topics(), "kp-doomed not listed after create")
        admin.delete_topics(["kp-doomed"], timeout_ms=10000)
        wait_until(lambda: "kp-doomed" not in admin.list_topics(), 10, "kp-doomed to be deleted")

        cr = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        entries = {}
        for resp in cr:
            for res in resp.resources:
                eq(res[0], 0, "describe_configs resource error")
                for e in res[4]:
                    entries[e[0]] = e[1]
        eq(entries.get("retention.ms"), "604800000", "retention.ms via kafka-python describe_configs")

        ts0 = int(time.time() * 1000) - 30000
        sent = {}  # (partition, offset) -> (key, value, headers, ts)
        n = 0
        version = None
        for codec in CODECS:
            for acks in (1, "all"):
                p = KafkaProducer(bootstrap_servers=s.bootstrap, compression_type=codec, acks=acks,
                                  linger_ms=10, request_timeout_ms=10000, retries=0)
                version = p.config["api_version"]
                futs = []
                for i in range(PER_RUN):
                    n += 1
                    key = ("%s/%s/%02d" % (codec, acks, i)).encode()
                    value = (("%s|%s|%d " % (codec, acks, i)) * (1 + i % 7)).encode()
                    headers = [("codec", str(codec).encode()), ("n", str(n).encode())]
                    ts = ts0 + n
                    f = p.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts)
                    futs.append((f, key, value, headers, ts))
                p.flush(20)
                for f, key, value, headers, ts in futs:
                    md = f.get(timeout=10)
                    check((md.partition, md.offset) not in sent,
                          "offset %d/%d acknowledged twice" % (md.partition, md.offset))
                    sent[(md.partition, md.offset)] = (key, value, headers, ts)
                p.close(10)
        log("broker version guessed by kafka-python: %s" % (version,))
        check(tuple(version) >= (2, 1, 0), "kafka-python guessed broker version %s < 2.1" % (version,))
        parts = sorted({k[0] for k in sent})
        eq(parts, [0, 1], "partitions written")
        for part in parts:
            offs = sorted(o for p_, o in sent if p_ == part)
            eq(offs, list(range(len(offs))), "offsets of partition %d dense from 0" % part)

        c = KafkaConsumer(topic, bootstrap_servers=s.bootstrap, group_id="kp-group",
                          auto_offset_reset="earliest", enable_auto_commit=False,
                          session_timeout_ms=10000, heartbeat_interval_ms=1000,
                          consumer_timeout_ms=1000, fetch_max_wait_ms=200)
        got = {}
        deadline = time.monotonic() + 45
        while len(got) < len(sent) and time.monotonic() < deadline:
            batch = c.poll(timeout_ms=500)
            for tp, msgs in batch.items():
                for m in msgs:
                    k = (m.partition, m.offset)
                    check(k not in got, "message %s delivered twice" % (k,))
                    last = max([o for p_, o in got if p_ == m.partition], default=-1)
                    check(m.offset > last, "partition %d went back from %d to %d"
                          % (m.partition, last, m.offset))
                    got[k] = (m.key, m.value, [(h[0], h[1]) for h in m.headers], m.timestamp)
                    eq(m.timestamp_type, 0, "timestamp type (CreateTime) at %s" % (k,))
        eq(len(got), len(sent), "messages consumed")
        for k in sorted(sent):
            eq(got.get(k), sent[k], "message at partition/offset %s" % (k,))

        ends = {p_: 1 + max(o for q, o in sent if q == p_) for p_ in parts}
        c.commit({TopicPartition(topic, p_): kafka.OffsetAndMetadata(ends[p_], "done") for p_ in parts})
        for p_ in parts:
            eq(c.committed(TopicPartition(topic, p_)), ends[p_], "committed offset of partition %d" % p_)
        c.close()

        # A new consumer in the same group has nothing left to read.
        c2 = KafkaConsumer(topic, bootstrap_servers=s.bootstrap, group_id="kp-group",
                           auto_offset_reset="earliest", enable_auto_commit=False,
                           session_timeout_ms=10000, fetch_max_wait_ms=200)
        extra = []
        deadline = time.monotonic() + 20
        while not c2.assignment() and time.monotonic() < deadline:
            for msgs in c2.poll(timeout_ms=500).values():
                extra += msgs
        check(c2.assignment(), "second consumer got no assignment within 20s")
        for _ in range(4):
            for msgs in c2.poll(timeout_ms=500).values():
                extra += msgs
        eq([(m.partition, m.offset) for m in extra], [], "messages after the committed end")
        for p_ in parts:
            eq(c2.position(TopicPartition(topic, p_)), ends[p_], "position of consumer 2")
        c2.close()
        admin.close()

        # Committed offsets and topics survive a clean restart.
        s.restart()
        c3 = KafkaConsumer(bootstrap_servers=s.bootstrap, group_id="kp-group", enable_auto_commit=False)
        for p_ in parts:
            eq(c3.committed(TopicPartition(topic, p_)), ends[p_], "committed offset after restart, partition %d" % p_)
        eq(c3.partitions_for_topic(topic), set(parts), "partitions after restart")
        c3.close()

        bad = [w for w in CAP.warnings() if any(b in w[1].lower() for b in BAD)]
        check(not bad, "kafka-python logged protocol warnings: %s" % bad[:5])
        log("%d warnings from kafka-python (none about protocol): %s"
            % (len(CAP.warnings()), CAP.warnings()[:3]))


if __name__ == "__main__":
    run_test(main)
