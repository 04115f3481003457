#!/usr/bin/python3
"""fsync-before-acknowledge (silt.fsync.before.ack=true, group commit).

Four producers (acks=all and acks=1) write concurrently to a 2-partition
topic; every produce waits for the flusher's fsync before it is answered, so
this checks that the waiting requests are all completed (none hangs to its
timeout), that group commit keeps the order and offsets, and that every
acknowledged message is there, at its offset, after a kill -9 and restart.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from silt_harness import Silt, check, eq, log, run_test  # noqa: E402

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

TOPIC = "durable"
PER_PRODUCER = 1500


def main():
    s = Silt(config={"silt.fsync.before.ack": "true"})
    s.start()
    admin = AdminClient({"bootstrap.servers": s.bootstrap})
    for f in admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)]).values():
        f.result(10)

    acked = {}
    errors = []
    lock = threading.Lock()

    def producer(idx):
        p = Producer({"bootstrap.servers": s.bootstrap, "acks": "all" if idx % 2 == 0 else "1",
                      "linger.ms": 1, "message.timeout.ms": 20000})

        def dr(err, msg):
            with lock:
                if err:
                    errors.append(str(err))
                else:
                    acked[(msg.partition(), msg.offset())] = msg.value()

        for i in range(PER_PRODUCER):
            p.produce(TOPIC, value=b"p%d-%05d" % (idx, i), partition=i % 2, on_delivery=dr)
            if i % 100 == 99:
                p.poll(0)
        left = p.flush(30)
        with lock:
            if left:
                errors.append("producer %d: %d unflushed" % (idx, left))

    t0 = time.monotonic()
    threads = [threading.Thread(target=producer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    took = time.monotonic() - t0
    check(not errors, "produce errors: %s" % errors[:3])
    eq(len(acked), 4 * PER_PRODUCER, "acknowledged messages")
    log("%d fsync-acknowledged messages in %.1fs" % (len(acked), took))

    s.kill9()
    s.start()
    c = Consumer({"bootstrap.servers": s.bootstrap, "group.id": "fsync-check", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(2)])
    seen = {}
    deadline = time.monotonic() + 30
    while len(seen) < len(acked) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        seen[(m.partition(), m.offset())] = m.value()
    c.close()
    missing = [k for k in acked if seen.get(k) != acked[k]]
    check(not missing, "%d acknowledged messages missing or moved after kill -9, e.g. %s" %
          (len(missing), missing[:3]))
    for part in range(2):
        offs = sorted(o for (p, o) in seen if p == part)
        eq(offs, list(range(len(offs))), "offsets of partition %d are dense" % part)


if __name__ == "__main__":
    run_test(main)
