#!/usr/bin/env python3
"""A large CopyObject does not stall its HTTP loop (raw sockets, one loop:
num.network.threads=1, so the copy and the other requests share a thread):
  - a 512 MiB object is copied while another connection GETs a 1 KiB
    object in a loop; every such GET must finish in a small fraction of the
    copy's time (the copy moves a few MiB per loop turn; a copy done in one
    go made the first GET wait for all of it);
  - the copy's ETag is the source's and its bytes read back the same
    (sampled ranges), so the stepping lost nothing;
  - an UploadPartCopy of the same source behaves the same way;
  - a CopyObject whose source is deleted while it copies still completes
    with the source's bytes (the copy holds its source's data: freeing it
    waits for the last reader).
The margins are wide for a noisy 2-core machine: a GET waits for about one
copy step (8 MiB, some tens of ms), the limit is a third of the copy's time.
Run alone: tests/integration/s3_copy_stall.py
"""
import hashlib
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s3_harness import (SiltS3, check, eq, http, log, raw_request, read_response,  # noqa: E402
                        run_test, sign_v4)

SIZE_MIB = int(os.environ.get("S3_STALL_MB", "512"))
PIECE = os.urandom(1 << 20)


def put_big(port, path):
    """PUT SIZE_MIB MiB (PIECE repeated) without holding it in memory."""
    size = SIZE_MIB << 20
    target, hdrs = sign_v4("PUT", path, headers={"Content-Length": str(size)}, host="127.0.0.1:%d" % port,
                           payload_hash="UNSIGNED-PAYLOAD")
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(raw_request("PUT", target, hdrs))
        for _ in range(SIZE_MIB):
            s.sendall(PIECE)
        r = read_response(s, timeout=300)
    eq(r.status, 200, "PUT of %d MiB" % SIZE_MIB)
    md5 = hashlib.md5()
    for _ in range(SIZE_MIB):
        md5.update(PIECE)
    eq(r.header("etag"), '"%s"' % md5.hexdigest(), "ETag of the big object")
    return r.header("etag")


def slow(port, method, path, query=None, headers=None):
    """A signed request whose answer may take long (a copy: the answer
    comes when every byte is copied and committed)."""
    target, hdrs = sign_v4(method, path, query, headers, host="127.0.0.1:%d" % port)
    with socket.create_connection(("127.0.0.1", port), timeout=300) as s:
        s.sendall(raw_request(method, target, hdrs))
        r = read_response(s, timeout=300)
    check(r is not None, "%s %s: connection closed without a response" % (method, path))
    return r


def timed(fn):
    """Runs fn in a thread; returns (thread, result dict with t0, t1, r)."""
    res = {}

    def run():
        res["t0"] = time.monotonic()
        res["r"] = fn()
        res["t1"] = time.monotonic()
    th = threading.Thread(target=run)
    th.start()
    return th, res


def gets_during(port, th):
    """GETs the small object until th ends (bounded); their latencies."""
    lat = []
    deadline = time.monotonic() + 180
    while th.is_alive() and time.monotonic() < deadline:
        t = time.monotonic()
        r = http(port, "GET", "/stall/small")
        lat.append(time.monotonic() - t)
        eq(r.status, 200, "GET during the copy")
    th.join(60)
    check(not th.is_alive(), "copy still running after the GET loop's bound")
    return lat


def judge(what, res, lat):
    dur = res["t1"] - res["t0"]
    worst = max(lat) if lat else 0.0
    log("%s of %d MiB: %.2f s; %d GETs meanwhile, worst %.0f ms" % (what, SIZE_MIB, dur, len(lat), worst * 1000))
    if dur < 0.3:
        log("%s too fast to tell a stall (%.2f s); not judged" % (what, dur))
        return
    check(len(lat) >= 2, "%s: only %d GETs finished during a %.2f s copy" % (what, len(lat), dur))
    check(worst < dur / 3, "%s: a GET waited %.0f ms during a %.0f ms copy (the loop stalled)"
          % (what, worst * 1000, dur * 1000))


def check_sampled(port, path, what):
    """A few 64 KiB ranges of the copy match the source's bytes."""
    size = SIZE_MIB << 20
    for off in (0, (1 << 20) - 100, (8 << 20) - 7, size // 2 + 12345, size - 65536):
        r = http(port, "GET", path, headers={"Range": "bytes=%d-%d" % (off, off + 65535)})
        eq(r.status, 206, "%s range at %d" % (what, off))
        o = off % len(PIECE)
        want = (PIECE + PIECE)[o:o + 65536]
        check(r.body == want, "%s bytes at %d differ from the source" % (what, off))


def main():
    with SiltS3(config={"num.network.threads": 1}) as s:
        port = s.port
        eq(http(port, "PUT", "/stall").status, 200, "create bucket")
        eq(http(port, "PUT", "/stall/small", body=b"s" * 1024).status, 200, "PUT small")
        log("PUT %d MiB" % SIZE_MIB)
        etag = put_big(port, "/stall/big")

        log("CopyObject while GETs run on the same loop")
        th, res = timed(lambda: slow(port, "PUT", "/stall/copy", headers={"x-amz-copy-source": "/stall/big"}))
        time.sleep(0.05)
        lat = gets_during(port, th)
        r = res["r"]
        eq(r.status, 200, "CopyObject: %r" % r)
        m = re.search(rb"<ETag>([^<]*)</ETag>", r.body)
        check(m is not None, "CopyObjectResult without ETag: %r" % r.body)
        eq(m.group(1).decode().replace("&quot;", '"'), etag, "copy's ETag")
        judge("CopyObject", res, lat)
        h = http(port, "HEAD", "/stall/copy")
        eq(h.header("content-length"), str(SIZE_MIB << 20), "copy's size")
        eq(h.header("etag"), etag, "copy's stored ETag")
        check_sampled(port, "/stall/copy", "copy")

        log("UploadPartCopy while GETs run on the same loop")
        r = http(port, "POST", "/stall/mp", query=[("uploads", "")])
        eq(r.status, 200, "CreateMultipartUpload")
        uid = re.search(rb"<UploadId>([^<]+)</UploadId>", r.body).group(1).decode()
        th, res = timed(lambda: slow(port, "PUT", "/stall/mp", query=[("partNumber", "1"), ("uploadId", uid)],
                                     headers={"x-amz-copy-source": "/stall/big"}))
        time.sleep(0.05)
        lat = gets_during(port, th)
        eq(res["r"].status, 200, "UploadPartCopy: %r" % res["r"])
        judge("UploadPartCopy", res, lat)
        eq(http(port, "DELETE", "/stall/mp", query=[("uploadId", uid)]).status, 204, "AbortMultipartUpload")

        log("CopyObject while its source is deleted")
        th, res = timed(lambda: slow(port, "PUT", "/stall/copy2", headers={"x-amz-copy-source": "/stall/big"}))
        time.sleep(0.2)
        check(th.is_alive(), "the copy ended within 0.2 s; the delete would not race it")
        eq(http(port, "DELETE", "/stall/big").status, 204, "DELETE the source during the copy")
        eq(http(port, "HEAD", "/stall/big").status, 404, "the source is gone for new requests")
        th.join(300)
        check(not th.is_alive(), "copy still running after 300 s")
        eq(res["r"].status, 200, "CopyObject whose source was deleted meanwhile: %r" % res["r"])
        eq(http(port, "HEAD", "/stall/copy2").header("etag"), etag, "that copy's ETag")
        check_sampled(port, "/stall/copy2", "copy of a deleted source")
        for k in ("big", "copy", "copy2", "small"):
            eq(http(port, "DELETE", "/stall/" + k).status, 204, "DELETE " + k)


run_test(main)
