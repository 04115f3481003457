"""Harness for silt's Kafka integration tests (Python); the shared part
(assertions, ports, server process, run_test) is in harness.py.

Run tests with /usr/bin/python3: the Debian client packages (confluent_kafka,
kafka-python and the codec modules) are installed for the system interpreter
only, not for whatever `python3` comes first on PATH.

A test does:

    from silt_harness import Silt, run_test, check, eq, wait_until

    def main():
        with Silt(config={"num.partitions": 3}) as s:
            ... s.bootstrap, s.port (the Kafka listener), s.data_dir ...

    run_test(main)
"""

import os

from harness import (ROOT, SILT_BIN, Server, Skip, TestFailure, check, eq,  # noqa: F401
                     free_port, log, port_open, run_test, tmpdir, wait_until)


class Silt(Server):
    """A silt server as the Kafka tests use it: start() waits for the Kafka
    listener, `port` is the Kafka port."""

    @property
    def port(self):
        return self.kafka_port

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.kafka_port


def segment_files(data_dir, topic, partition=None):
    """The .log segment files under data_dir that belong to topic
    (optionally one partition), found by name pattern rather than by
    assuming a layout: a directory whose name is `topic-N` or a directory
    `N` inside a directory named `topic`. Returns {partition: [paths sorted
    by base offset]}."""
    import glob
    import re
    out = {}
    for path in glob.glob(os.path.join(data_dir, "**", "*.log"), recursive=True):
        base = os.path.basename(path)
        if not re.fullmatch(r"\d{20}\.log", base):
            continue
        d = os.path.dirname(path)
        leaf = os.path.basename(d)
        parent = os.path.basename(os.path.dirname(d))
        m = re.fullmatch(re.escape(topic) + r"-(\d+)", leaf)
        if m:
            p = int(m.group(1))
        elif parent == topic and leaf.isdigit():
            p = int(leaf)
        else:
            continue
        if partition is not None and p != partition:
            continue
        out.setdefault(p, []).append(path)
    for p in out:
        out[p].sort()
    return out
