#!/usr/bin/python3
"""ApiVersions compatibility with every client.

- Raw: ApiVersions v0, v1, v2 and v3 (flexible request header v2 and body;
  response header v0, compact array body) list the same ranges; every API
  has MinVersion 0 (librdkafka turns features on only for ranges that
  include old versions); the required APIs are present with the versions the
  clients need (Produce 7 and Fetch 10 for zstd, ...).
- librdkafka (kcat -L -d feature,protocol,broker): ApiVersions v3 answered,
  every expected feature enabled (MsgVer1/2, ApiVersion, ThrottleTime,
  BrokerGroupCoordinator, BrokerBalancedConsumer, LZ4, OffsetTime,
  IdempotentProducer, ZSTD), and no log line about unsupported versions or
  protocol errors.
- kafka-python: check_version infers >= 2.1 (within its 2 s pipelined
  ApiVersions + Metadata probe) and logs no warning at all.
- kafkajs: ApiVersions v2 answered directly (no fallback), admin/produce/
  consume work, no ERROR and no WARN line.
"""

import json
import logging
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from silt_harness import Silt, check, eq, log, run_test  # noqa: E402
import kafka_wire as kw  # noqa: E402

# API key -> minimum MaxVersion silt must advertise for the clients.
REQUIRED = {0: 7, 1: 10, 2: 1, 3: 1, 8: 2, 9: 1, 10: 0, 11: 2, 12: 1, 13: 1, 14: 1, 15: 0, 16: 0,
            18: 3, 19: 0, 20: 0, 22: 0, 32: 0, 33: 0, 37: 0, 44: 0}
FEATURES = ["MsgVer1", "MsgVer2", "ApiVersion", "ThrottleTime", "BrokerGroupCoordinator",
            "BrokerBalancedConsumer", "LZ4", "OffsetTime", "IdempotentProducer", "ZSTD"]
RDK_BAD = re.compile(r"unsupported|not supported|ApiVersionRequest failed|parse failure|PROTOUFLOW|"
                     r"PROTOERR|Disabling feature (?:%s)\b" % "|".join(FEATURES), re.I)
KP_BAD = re.compile(r"version|unsupported|not supported|protocol|corrupt|decode|correlation|"
                    r"unrecognized|unknown", re.I)


def uvarint(n):
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def read_uvarint(r):
    shift = 0
    v = 0
    for _ in range(5):
        b = r.take(1)[0]
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v
        shift += 7
    raise ValueError("uvarint too long")


def skip_tags(r):
    for _ in range(read_uvarint(r)):
        read_uvarint(r)
        r.take(read_uvarint(r))


def api_versions_v3(conn):
    conn.corr += 1
    hdr = kw.i16(18) + kw.i16(3) + kw.i32(conn.corr) + kw.string("silt-itest") + uvarint(0)
    body = uvarint(len(b"silt-itest") + 1) + b"silt-itest" + uvarint(len(b"1.0") + 1) + b"1.0" + uvarint(0)
    conn.send_raw(kw.i32(len(hdr) + len(body)) + hdr + body)
    corr, r = conn.recv_frame()  # response header v0: no tagged fields
    eq(corr, conn.corr, "ApiVersions v3 correlation id")
    err = r.i16()
    n = read_uvarint(r) - 1
    check(0 <= n < 1000, "ApiVersions v3 array length %d" % n)
    apis = {}
    for _ in range(n):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        skip_tags(r)
        apis[k] = (lo, hi)
    r.i32()  # throttle_time_ms
    skip_tags(r)
    eq(r.remaining(), 0, "bytes after the ApiVersions v3 body")
    return err, apis


def raw_checks(s):
    with kw.Conn(s.port) as c:
        err, v0 = kw.parse_api_versions_v0(c.call(18, 0, b""))
        eq(err, 0, "ApiVersions v0 error")
        for ver in (1, 2):
            r = c.call(18, ver, b"")
            err, apis = kw.parse_api_versions_v0(r)
            eq(err, 0, "ApiVersions v%d error" % ver)
            eq(apis, v0, "ApiVersions v%d ranges" % ver)
            r.i32()  # throttle_time_ms
            eq(r.remaining(), 0, "bytes after the ApiVersions v%d body" % ver)
        err, v3 = api_versions_v3(c)
        eq(err, 0, "ApiVersions v3 error")
        eq(v3, v0, "ApiVersions v3 ranges")
    log("advertised: %s" % " ".join("%d:%d-%d" % (k, lo, hi) for k, (lo, hi) in sorted(v0.items())))
    nonzero = {k: r for k, r in v0.items() if r[0] != 0}
    eq(nonzero, {}, "APIs advertised with MinVersion > 0")
    missing = {k: (need, v0.get(k)) for k, need in REQUIRED.items() if k not in v0 or v0[k][1] < need}
    eq(missing, {}, "APIs missing or below the needed MaxVersion {key: (need, advertised)}")
    return v0


def librdkafka_checks(s):
    out = subprocess.run(["timeout", "30", "kcat", "-b", s.bootstrap, "-L", "-d", "feature,protocol,broker"],
                         capture_output=True)
    eq(out.returncode, 0, "kcat -L exit status")
    text = out.stderr.decode("utf-8", "replace")
    # silt has no SASL, so librdkafka's SASL features are expectedly off.
    bad = [l for l in text.splitlines() if RDK_BAD.search(l)
           and not re.search(r"[Ff]eature Sasl\w*\b", l)]
    check(not bad, "librdkafka complains:\n%s" % "\n".join(bad[:10]))
    check(re.search(r"Received ApiVersionResponse \(v3", text),
          "librdkafka did not get an ApiVersionResponse v3:\n%s" %
          "\n".join(l for l in text.splitlines() if "ApiVersion" in l)[:2000])
    enabled = set(re.findall(r"Enabling feature (\w+)", text))
    missing = [f for f in FEATURES if f not in enabled]
    eq(missing, [], "librdkafka features not enabled")
    log("librdkafka features: %s" % ",".join(sorted(enabled)))


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append((record.levelno, record.getMessage()))


def kafka_python_checks(s):
    import kafka
    cap = Capture()
    lg = logging.getLogger("kafka")
    lg.addHandler(cap)
    lg.setLevel(logging.DEBUG)
    try:
        client = kafka.KafkaClient(bootstrap_servers=s.bootstrap, client_id="kp-versions")
        v = client.check_version(timeout=5)
        client.close()
        log("kafka-python check_version: %s" % (v,))
        check(v >= (2, 1, 0), "kafka-python inferred broker version %s < 2.1" % (v,))
        p = kafka.KafkaProducer(bootstrap_servers=s.bootstrap, acks="all")
        md = p.send("kp-versions", b"hello").get(timeout=10)
        p.close(5)
        c = kafka.KafkaConsumer(bootstrap_servers=s.bootstrap, auto_offset_reset="earliest",
                                consumer_timeout_ms=5000, enable_auto_commit=False)
        c.assign([kafka.TopicPartition("kp-versions", md.partition)])
        vals = [m.value for m in c]
        c.close()
        eq(vals, [b"hello"], "kafka-python produce/consume")
    finally:
        lg.removeHandler(cap)
    warn = [m for lvl, m in cap.records if lvl >= logging.WARNING]
    bad = [m for m in warn if KP_BAD.search(m)]
    check(not bad, "kafka-python warnings: %s" % bad[:5])
    if warn:
        log("kafka-python warnings not about the protocol: %s" % warn[:5])
    sent = sorted({m.split("Sending request ")[1].split("(")[0]
                   for _, m in cap.records if "Sending request " in m})
    log("kafka-python requests: %s" % " ".join(sent))


def kafkajs_checks(s):
    out = subprocess.run(["timeout", "90", "node", os.path.join(HERE, "kafkajs_versions.js"), s.bootstrap],
                         capture_output=True, cwd=HERE)
    eq(out.returncode, 0, "kafkajs_versions.js exit status (%s)" % out.stderr[-500:])
    res = json.loads(out.stdout.decode().strip().splitlines()[-1])
    logs = res["logs"]
    check(res["ok"], "kafkajs failed: %s\nlast logs: %s" % (res["error"], logs[-5:]))
    eq(res["consumed"], "k=v", "kafkajs consumed message")
    bad = [l for l in logs if l["level"] <= 2]  # ERROR=1, WARN=2
    check(not bad, "kafkajs ERROR/WARN lines: %s" % bad[:5])
    msgs = [l["message"] for l in logs]
    check(any(m.startswith("Response ApiVersions(key: 18, version: 2)") for m in msgs),
          "kafkajs did not get ApiVersions v2 answered: %s" % [m for m in msgs if "ApiVersions" in m][:5])
    check(not any(m.startswith("Request ApiVersions(key: 18, version: 1)") for m in msgs),
          "kafkajs fell back to ApiVersions v1")
    used = sorted({m.split("Request ")[1] for m in msgs if m.startswith("Request ")})
    log("kafkajs requests: %s" % "; ".join(used))


def main():
    with Silt(config={"num.partitions": 1}) as s:
        raw_checks(s)
        librdkafka_checks(s)
        kafka_python_checks(s)
        kafkajs_checks(s)


if __name__ == "__main__":
    run_test(main)
