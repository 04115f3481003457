#!/usr/bin/python3
"""Bad input over raw sockets; the broker must answer with the right Kafka
error or close the connection, and keep serving everyone else.

- ApiVersions v0 works (baseline, also validates this file's encoder).
- Pipelined requests are answered in request order; Produce acks=0 gets no
  response (the next response on the connection is the next request's).
- Truncated frame then close; zero, negative and oversized (above
  socket.request.max.bytes) size prefixes -> connection closed without a
  response.
- Unknown API key -> connection closed (or an error response), broker alive.
- ApiVersions v99 -> v0-format response, error 35 UNSUPPORTED_VERSION,
  listing ApiVersions' own range.
- Produce v3 of a valid batch -> offset 0, then Fetch returns the same bytes;
  bad CRC -> CORRUPT_MESSAGE (2); record count != lastOffsetDelta+1 and a
  client-sent control batch -> CORRUPT_MESSAGE (2) or INVALID_RECORD (87);
  nothing of them is appended.
- Idempotent batches over the wire: retries are answered with the original
  offsets and stored once; a sequence gap gets 45.
- IncrementalAlterConfigs SET/DELETE/validate_only/bad value/unknown
  name/unknown topic, seen through DescribeConfigs v0 and Produce.
- KIP-74: Fetch with max_bytes below the first batch returns it whole.
- A long-polling Fetch then ApiVersions in one write: answered in order.
- A batch over message.max.bytes -> MESSAGE_TOO_LARGE (10).
- CreateTopics with an invalid name -> INVALID_TOPIC_EXCEPTION (17);
  Produce to an invalid name -> 17 (or UNKNOWN_TOPIC_OR_PARTITION 3).
- A garbage body for a known API -> connection closed or an error, and the
  broker keeps serving.
- Finally kcat produce/consume still works.
"""

import os
import random
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from silt_harness import Silt, check, eq, log, run_test  # noqa: E402
import kafka_wire as kw  # noqa: E402

MAX_REQ = 1048576


def api_versions_ok(s):
    with kw.Conn(s.port) as c:
        err, apis = kw.parse_api_versions_v0(c.call(kw.API_VERSIONS, 0, b""))
        eq(err, 0, "ApiVersions v0 error")
        check(0 in apis and 1 in apis and 18 in apis, "ApiVersions lacks Produce/Fetch/ApiVersions: %s" % apis)
        return apis


def expect_closed(c, what):
    r = c.closed_by_peer(5.0)
    check(r is True, "%s: connection not closed by the broker within 5s (%r)" % (what, r))


def main():
    rnd = random.Random(7)
    with Silt(config={"socket.request.max.bytes": MAX_REQ, "auto.create.topics.enable": "true",
                      "message.max.bytes": 100000,
                      "num.partitions": 1}) as s:
        apis = api_versions_ok(s)
        log("ApiVersions: %s" % sorted(apis.items()))
        eq(apis[18][0], 0, "ApiVersions min version")
        check(apis[18][1] >= 3, "ApiVersions max version %d < 3" % apis[18][1])

        # Pipelining: 5 requests in one write, answers in order.
        with kw.Conn(s.port) as c:
            frames = b""
            ids = []
            for i in range(5):
                c.corr += 1
                ids.append(c.corr)
                if i == 2:
                    frames += kw.request(kw.API_METADATA, 1, c.corr, kw.metadata_v1_body([]))
                else:
                    frames += kw.request(kw.API_VERSIONS, i % 2, c.corr, b"")
            c.send_raw(frames)
            got = [c.recv_frame()[0] for _ in ids]
            eq(got, ids, "correlation ids of pipelined responses")

        # Produce acks=0 has no response; the next response is ApiVersions'.
        topic = "raw-topic"
        with kw.Conn(s.port) as c:
            c.call(kw.API_METADATA, 1, kw.metadata_v1_body([topic]))  # auto-creates
        time.sleep(0.3)
        with kw.Conn(s.port) as c:
            b0 = kw.record_batch([(b"k0", b"acks0", [])])
            c.send(kw.API_PRODUCE, 3, kw.produce_v3_body(topic, 0, b0, acks=0))
            corr = c.send(kw.API_VERSIONS, 0, b"")
            got, _ = c.recv_frame()
            eq(got, corr, "first response after an acks=0 produce")

        # A good Produce v3, then read it back byte for byte.
        with kw.Conn(s.port) as c:
            good = kw.record_batch([(b"key-1", b"value-1", [("h", b"v")]), (None, b"value-2", [])])
            res = kw.parse_produce_v3(c.call(kw.API_PRODUCE, 3, kw.produce_v3_body(topic, 0, good)))
            err, base, _ = res[(topic, 0)]
            eq(err, 0, "Produce v3 of a valid batch")
            eq(base, 1, "base offset of the second batch (the acks=0 batch took offset 0)")
            f = kw.parse_fetch_v4(c.call(kw.API_FETCH, 4, kw.fetch_v4_body(topic, 0, 1)))[(topic, 0)]
            eq((f["error"], f["high_watermark"], f["last_stable"]), (0, 3, 3), "Fetch v4 error/hw/lso")
            recs = f["records"]
            eq(kw.batch_offsets(recs)[0], (1, 2), "fetched batch offsets")
            first = recs[:12 + struct.unpack(">i", recs[8:12])[0]]
            eq(first[0:8], kw.i64(1), "fetched baseOffset")
            # Everything after baseOffset/length/leaderEpoch is what we sent.
            eq(first[16:], good[16:], "fetched batch bytes from magic on")
            eq(kw.crc32c(first[21:]), struct.unpack(">I", first[17:21])[0], "CRC of the fetched batch")

            # Bad CRC.
            bad = kw.record_batch([(b"k", b"corrupt me", [])], corrupt_crc=True)
            res = kw.parse_produce_v3(c.call(kw.API_PRODUCE, 3, kw.produce_v3_body(topic, 0, bad)))
            eq(res[(topic, 0)][0], 2, "Produce with a bad CRC: CORRUPT_MESSAGE")
            # Count mismatch (valid CRC).
            bad = kw.record_batch([(b"k", b"a", []), (b"k", b"b", [])], count=3)
            res = kw.parse_produce_v3(c.call(kw.API_PRODUCE, 3, kw.produce_v3_body(topic, 0, bad)))
            check(res[(topic, 0)][0] in (2, 87), "records count != lastOffsetDelta+1: error %d"
                  % res[(topic, 0)][0])
            bad = kw.record_batch([(b"k", b"a", []), (b"k", b"b", [])], last_offset_delta=5)
            res = kw.parse_produce_v3(c.call(kw.API_PRODUCE, 3, kw.produce_v3_body(topic, 0, bad)))
            check(res[(topic, 0)][0] in (2, 87), "lastOffsetDelta 5 with 2 records: error %d"
                  % res[(topic, 0)][0])
            # A control batch from a client.
            bad = kw.record_batch([(b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00", [])],
                                  attributes=0x20)
            res = kw.parse_produce_v3(c.call(kw.API_PRODUCE, 3, kw.produce_v3_body(topic, 0, bad)))
            check(res[(topic, 0)][0] in (2, 87), "client control batch: error %d" % res[(topic, 0)][0])
            # producerId set but baseSequence negative.
            bad = kw.record_batch([(b"k", b"v", [])], producer_id=1234, producer_epoch=0, base_seq=-1)
            res = kw.parse_produce_v3(c.call(kw.API_PRODUCE, 3, kw.produce_v3_body(topic, 0, bad)))
            check(res[(topic, 0)][0] != 0, "producerId with baseSequence -1 accepted")
            # Truncated batch (length field says more than present).
            bad = kw.record_batch([(b"k", b"v" * 50, [])])[:-10]
            res = kw.parse_produce_v3(c.call(kw.API_PRODUCE, 3, kw.produce_v3_body(topic, 0, bad)))
            check(res[(topic, 0)][0] in (2, 87), "truncated batch: error %d" % res[(topic, 0)][0])
            # Bigger than message.max.bytes (100000): MESSAGE_TOO_LARGE.
            big = kw.record_batch([(b"k", os.urandom(150000), [])])
            res = kw.parse_produce_v3(c.call(kw.API_PRODUCE, 3, kw.produce_v3_body(topic, 0, big)))
            eq(res[(topic, 0)][0], 10, "batch over message.max.bytes: MESSAGE_TOO_LARGE")
            # None of these reached the log.
            f = kw.parse_fetch_v4(c.call(kw.API_FETCH, 4, kw.fetch_v4_body(topic, 0, 0)))[(topic, 0)]
            eq(f["high_watermark"], 3, "high watermark after rejected batches")
            eq(kw.batch_offsets(f["records"]), [(0, 0), (1, 2)], "batches in the log")

        # Idempotence over the wire: a retried batch (same producer id,
        # epoch and sequence) is answered with success and its original
        # offset and not appended again; a gap in the sequence is
        # OUT_OF_ORDER_SEQUENCE_NUMBER (45); an older epoch is rejected.
        itopic = "raw-idem"
        with kw.Conn(s.port) as c:
            c.call(kw.API_METADATA, 1, kw.metadata_v1_body([itopic]))
            err, pid, epoch = kw.parse_init_producer_id_v0(
                c.call(kw.API_INIT_PRODUCER_ID, 0, kw.init_producer_id_v0_body()))
            eq(err, 0, "InitProducerId error")
            check(pid >= 0 and epoch >= 0, "InitProducerId gave pid %d epoch %d" % (pid, epoch))

            def idem(seq, n=2, ep=None):
                b = kw.record_batch([(b"k%d" % (seq + i), b"v%d" % (seq + i), []) for i in range(n)],
                                    producer_id=pid, producer_epoch=epoch if ep is None else ep,
                                    base_seq=seq)
                r = kw.parse_produce_v3(c.call(kw.API_PRODUCE, 3, kw.produce_v3_body(itopic, 0, b)))
                return r[(itopic, 0)][:2]

            eq(idem(0), (0, 0), "first idempotent batch (error, base offset)")
            eq(idem(2), (0, 2), "second idempotent batch")
            eq(idem(2), (0, 2), "retry of the second batch: success with its original offset")
            eq(idem(0), (0, 0), "retry of the first batch: success with its original offset")
            eq(idem(9)[0], 45, "sequence gap: OUT_OF_ORDER_SEQUENCE_NUMBER")
            eq(idem(4), (0, 4), "next in-sequence batch after the rejected gap")
            if epoch > 0:
                check(idem(6, ep=epoch - 1)[0] in (47, 45), "stale epoch accepted")
            f = kw.parse_fetch_v4(c.call(kw.API_FETCH, 4, kw.fetch_v4_body(itopic, 0, 0)))[(itopic, 0)]
            eq(kw.batch_offsets(f["records"]), [(0, 1), (2, 3), (4, 5)], "batches stored once each")
            # A second InitProducerId gives a different producer (or a bumped epoch).
            err, pid2, epoch2 = kw.parse_init_producer_id_v0(
                c.call(kw.API_INIT_PRODUCER_ID, 0, kw.init_producer_id_v0_body()))
            eq(err, 0, "second InitProducerId error")
            check((pid2, epoch2) != (pid, epoch), "InitProducerId handed out the same id and epoch twice")

        # IncrementalAlterConfigs (no client here has it): SET, DELETE back to
        # the default, validate_only, bad values and names, unknown topic.
        T = kw.RESOURCE_TOPIC
        with kw.Conn(s.port) as c:
            def iac(configs, name=topic, validate_only=False):
                body = kw.incremental_alter_configs_v0_body([(T, name, configs)], validate_only)
                return kw.parse_incremental_alter_configs_v0(
                    c.call(kw.API_INCREMENTAL_ALTER_CONFIGS, 0, body))[(T, name)]

            def describe(names):
                body = kw.describe_configs_v0_body([(T, topic, names)])
                err, entries = kw.parse_describe_configs_v0(c.call(kw.API_DESCRIBE_CONFIGS, 0, body))[(T, topic)]
                eq(err, 0, "DescribeConfigs v0 error")
                return entries

            eq(iac([("retention.ms", 0, "5000"), ("max.message.bytes", 0, "50000")]), 0,
               "IncrementalAlterConfigs SET")
            d = describe(["retention.ms", "max.message.bytes", "segment.bytes"])
            eq((d["retention.ms"], d["max.message.bytes"][0]), (("5000", False), "50000"),
               "configs after SET")
            eq(d["segment.bytes"][1], True, "segment.bytes still the default")
            # The per-topic max.message.bytes now applies to Produce.
            mid = kw.record_batch([(b"k", os.urandom(70000), [])])
            res = kw.parse_produce_v3(c.call(kw.API_PRODUCE, 3, kw.produce_v3_body(topic, 0, mid)))
            eq(res[(topic, 0)][0], 10, "70 kB batch over the topic's max.message.bytes=50000")
            eq(iac([("retention.ms", 1, None), ("max.message.bytes", 1, None)]), 0,
               "IncrementalAlterConfigs DELETE")
            d = describe(["retention.ms"])
            eq(d["retention.ms"], ("604800000", True), "retention.ms after DELETE")
            eq(iac([("retention.ms", 0, "77")], validate_only=True), 0, "validate_only SET")
            eq(describe(["retention.ms"])["retention.ms"][0], "604800000",
               "validate_only must not change retention.ms")
            eq(iac([("retention.ms", 0, "soon")]), 40, "SET retention.ms=soon: INVALID_CONFIG")
            eq(iac([("no.such.config", 0, "1")]), 40, "SET of an unknown config: INVALID_CONFIG")
            eq(iac([("retention.ms", 0, "1")], name="no-such-topic"), 3,
               "IncrementalAlterConfigs on an unknown topic: UNKNOWN_TOPIC_OR_PARTITION")

        # KIP-74: a Fetch whose max_bytes is smaller than the first batch still
        # returns that whole batch.
        with kw.Conn(s.port) as c:
            big = kw.record_batch([(b"big", os.urandom(60000), [])])
            res = kw.parse_produce_v3(c.call(kw.API_PRODUCE, 3, kw.produce_v3_body(topic, 0, big)))
            eq(res[(topic, 0)][:2], (0, 3), "Produce of a 60 kB batch (error, base offset)")
            f = kw.parse_fetch_v4(c.call(kw.API_FETCH, 4, kw.fetch_v4_body(topic, 0, 3, max_bytes=1000)))
            f = f[(topic, 0)]
            eq((f["error"], kw.batch_offsets(f["records"])), (0, [(3, 3)]),
               "Fetch with max_bytes 1000 returns the whole 60 kB batch")
            eq(f["records"][16:len(big)], big[16:], "bytes of the big batch")

        # Order across APIs: a long-polling Fetch at the end of the log, then
        # ApiVersions, in one write: the Fetch answer must come first.
        with kw.Conn(s.port) as c:
            frames = kw.request(kw.API_FETCH, 4, 101, kw.fetch_v4_body(topic, 0, 4, max_wait_ms=500))
            frames += kw.request(kw.API_VERSIONS, 0, 102, b"")
            t0 = time.monotonic()
            c.send_raw(frames)
            first, r1 = c.recv_frame()
            second, _ = c.recv_frame()
            eq((first, second), (101, 102), "correlation ids after a long-polling Fetch")
            f = kw.parse_fetch_v4(r1)[(topic, 0)]
            eq((f["error"], kw.batch_offsets(f["records"])), (0, []), "long poll at the end: no records")
            log("long-poll Fetch answered after %.2fs" % (time.monotonic() - t0))

        # Invalid topic names.
        with kw.Conn(s.port) as c:
            names = ["bad topic", "bad/topic", "x" * 250, "..", "."]
            res = kw.parse_create_topics_v0(c.call(kw.API_CREATE_TOPICS, 0, kw.create_topics_v0_body(names)))
            for n in names:
                eq(res.get(n), 17, "CreateTopics %r: INVALID_TOPIC_EXCEPTION" % n[:20])
            b1 = kw.record_batch([(b"k", b"v", [])])
            res = kw.parse_produce_v3(c.call(kw.API_PRODUCE, 3, kw.produce_v3_body("bad topic!", 0, b1)))
            check(res[("bad topic!", 0)][0] in (17, 3), "Produce to 'bad topic!': error %d"
                  % res[("bad topic!", 0)][0])
            _, _, topics = kw.parse_metadata_v1(c.call(kw.API_METADATA, 1, kw.metadata_v1_body(["bad topic!"])))
            check(topics[0]["error"] in (17, 3), "Metadata for 'bad topic!': error %d" % topics[0]["error"])
            # Produce to a partition that does not exist.
            res = kw.parse_produce_v3(c.call(kw.API_PRODUCE, 3, kw.produce_v3_body(topic, 7, b1)))
            eq(res[(topic, 7)][0], 3, "Produce to partition 7 of a 1-partition topic")

        # ApiVersions v99: v0 format, error 35, ApiVersions' own range.
        # A future client sends it as a flexible request (header v2 with
        # tagged fields, compact-string body), as for v3.
        with kw.Conn(s.port) as c:
            c.corr += 1
            hdr = kw.i16(18) + kw.i16(99) + kw.i32(c.corr) + kw.string("future") + b"\x00"
            body = b"\x07future" + b"\x049.9" + b"\x00"
            c.send_raw(kw.i32(len(hdr) + len(body)) + hdr + body)
            corr, r = c.recv_frame()
            eq(corr, c.corr, "ApiVersions v99 correlation id")
            err, apis99 = kw.parse_api_versions_v0(r)
            eq(err, 35, "ApiVersions v99 error code")
            check(18 in apis99, "ApiVersions v99 response does not list ApiVersions: %s" % apis99)
            eq(apis99[18], apis[18], "ApiVersions range in the v99 response")
            eq(r.remaining(), 0, "bytes after the v0 body of the v99 response")
            # The connection stays usable.
            err, _ = kw.parse_api_versions_v0(c.call(kw.API_VERSIONS, 0, b""))
            eq(err, 0, "ApiVersions v0 after v99 on the same connection")

        # Truncated frame, then close.
        c = kw.Conn(s.port)
        c.send_raw(kw.i32(100) + b"\x00\x12\x00\x00" + b"\x00" * 10)
        c.close()
        # Truncated frame, then wait: nothing must come back.
        with kw.Conn(s.port) as c:
            c.send_raw(kw.i32(100) + b"\x00\x12\x00\x00")
            r = c.closed_by_peer(1.0)
            check(r is False or r is True, "response to an incomplete frame: %r" % (r,))

        # Oversized, zero, negative sizes: closed without a response.
        for what, prefix in [("size over socket.request.max.bytes", kw.i32(MAX_REQ + 1)),
                             ("size 2 GiB-1", kw.i32(0x7FFFFFFF)), ("size 0", kw.i32(0)),
                             ("negative size", kw.i32(-5))]:
            with kw.Conn(s.port) as c:
                c.send_raw(prefix + b"\x00\x12\x00\x00\x00\x00\x00\x01")
                expect_closed(c, what)
        api_versions_ok(s)

        # Unknown API key: closed or an error response; broker alive.
        with kw.Conn(s.port) as c:
            c.send(1234, 0, b"\x00" * 16)
            r = c.closed_by_peer(5.0)
            if r is not True:
                check(isinstance(r, tuple), "unknown API key: connection neither closed nor answered")
                log("unknown API key answered with %d bytes" % len(r[1]))
        api_versions_ok(s)

        # Garbage bodies for known APIs (short, random): closed or an error.
        for api, ver in [(0, 3), (1, 4), (3, 1), (19, 0), (11, 2), (8, 2)]:
            for _ in range(5):
                body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 40)))
                with kw.Conn(s.port) as c:
                    c.send(api, ver, body)
                    try:
                        c.closed_by_peer(0.5)
                    except OSError:
                        pass
        api_versions_ok(s)

        # A client_id with a huge length and a short frame.
        with kw.Conn(s.port) as c:
            c.send_raw(kw.i32(10) + kw.i16(18) + kw.i16(0) + kw.i32(1) + kw.i16(30000))
            expect_closed(c, "client_id longer than the frame")
        # Many connections opened and dropped at once.
        socks = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(50)]
        for sk in socks:
            sk.close()
        api_versions_ok(s)
        check(s.alive(), "silt died")

        # kcat still works end to end.
        kc = ["timeout", "30", "kcat", "-b", s.bootstrap]
        out = subprocess.run(kc + ["-P", "-t", "after-bad", "-K:"], input=b"a:1\nb:2\nc:3\n",
                             capture_output=True)
        eq(out.returncode, 0, "kcat produce exit status (%s)" % out.stderr[-300:])
        out = subprocess.run(kc + ["-C", "-t", "after-bad", "-o", "beginning", "-e", "-q",
                                   "-f", "%o %k %s\\n"], capture_output=True)
        eq(out.returncode, 0, "kcat consume exit status (%s)" % out.stderr[-300:])
        eq(out.stdout.decode(), "0 a 1\n1 b 2\n2 c 3\n", "kcat consume output")


if __name__ == "__main__":
    run_test(main)
