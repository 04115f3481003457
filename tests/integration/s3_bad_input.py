#!/usr/bin/env python3
"""Bad input on raw sockets against silt's S3 listener:
  - malformed request lines (garbage, missing target, bad version, a bare
    LF line, binary) are 400 and the connection is closed;
  - a huge header (1 MiB value) is 431 and the connection closed;
  - an unknown subresource (?acl, ?policy on a bucket, ?tagging on an
    object), signed, is 501 with the NotImplemented XML code;
  - a PUT whose body is shorter than its Content-Length, then a close (and
    a half-close) stores nothing;
  - a body that does not match the signed x-amz-content-sha256 is
    XAmzContentSHA256Mismatch and stores nothing;
  - a bad chunk size in Transfer-Encoding: chunked is 400;
  - HEAD of a missing key answers without a body: the next request on the
    same keep-alive connection gets its own, correct response;
  - pipelined requests are answered in order;
  - 200 idle connections that send nothing do not stop service, and after
    everything a normal PUT/GET works and the process is alive.
Run alone: tests/integration/s3_bad_input.py
"""
import hashlib
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s3_harness import (SiltS3, check, connection_closed, eq, http, log, raw_request,  # noqa: E402
                        read_response, run_test, sign_v4, wait_until)


def conn(s):
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    return c


def main():
    with SiltS3() as s:
        eq(http(s.port, "PUT", "/bad").status, 200, "create bucket")

        log("malformed request lines")
        for line in (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/1.1 extra words\r\n\r\n",
                     b"GET / FTP/1.0\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                     b" / HTTP/1.1\r\nHost: x\r\n\r\n"):
            c = conn(s)
            c.sendall(line)
            r = read_response(c)
            check(r is not None, "no response to %r" % line)
            eq(r.status, 400, "status for request line %r" % line)
            check(connection_closed(c), "connection left open after a malformed request line %r" % line)
            c.close()

        log("huge header")
        c = conn(s)
        c.sendall(b"GET /bad/k HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
        r = read_response(c)
        check(r is not None, "no response to a 1 MiB header")
        eq(r.status, 431, "status for a 1 MiB header")
        check(connection_closed(c), "connection left open after 431")
        c.close()
        c = conn(s)
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
        c.sendall(b"GET /bad/k HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many + b"\r\n")
        r = read_response(c)
        check(r is not None and r.status in (400, 431), "5000 headers: %r" % (r,))
        c.close()

        log("unknown subresources")
        for method, path, sub in (("GET", "/bad", "acl"), ("PUT", "/bad", "policy"), ("GET", "/bad/k", "tagging"),
                                  ("GET", "/bad", "lifecycle")):
            r = http(s.port, method, path, query=[(sub, "")])
            eq((r.status, r.error_code()), (501, "NotImplemented"), "%s %s?%s" % (method, path, sub))
            check(r.body.startswith(b"<?xml") and b"<Error>" in r.body, "NotImplemented is an XML error: %r" % r.body[:200])

        log("short body, then close")
        body = b"0123456789" * 100
        for how in ("close", "shutdown"):
            key = "/bad/short-" + how
            target, hdrs = sign_v4("PUT", key, body=body, host=s.host)
            hdrs["Content-Length"] = str(len(body))
            c = conn(s)
            c.sendall(raw_request("PUT", target, hdrs, body[:10]))
            time.sleep(0.2)
            if how == "close":
                c.close()
            else:
                c.shutdown(socket.SHUT_WR)
                r = read_response(c, timeout=5) if not connection_closed(c, 0.5) else None
                check(r is None or r.status >= 400, "a short body was acknowledged: %r" % (r,))
                c.close()
            wait_until(lambda: http(s.port, "HEAD", key).status == 404, 3, "HEAD %s to be 404" % key)
            time.sleep(0.3)
            eq(http(s.port, "HEAD", key).status, 404, "no object after a short body (%s)" % how)

        log("body not matching the signed SHA-256")
        target, hdrs = sign_v4("PUT", "/bad/mismatch", body=b"the signed body", host=s.host)
        hdrs["Content-Length"] = "17"
        c = conn(s)
        c.sendall(raw_request("PUT", target, hdrs, b"a different body!"))
        r = read_response(c)
        eq((r.status, r.error_code()), (400, "XAmzContentSHA256Mismatch"), "payload hash mismatch")
        c.close()
        eq(http(s.port, "HEAD", "/bad/mismatch").status, 404, "no object after a payload hash mismatch")

        log("bad chunked framing")
        target, hdrs = sign_v4("PUT", "/bad/chunked", host=s.host, payload_hash="UNSIGNED-PAYLOAD")
        hdrs["Transfer-Encoding"] = "chunked"
        c = conn(s)
        c.sendall(raw_request("PUT", target, hdrs, b"zz\r\nhello\r\n0\r\n\r\n"))
        r = read_response(c)
        check(r is not None and r.status == 400, "bad chunk size: %r" % (r,))
        c.close()
        eq(http(s.port, "HEAD", "/bad/chunked").status, 404, "no object after bad chunked framing")

        log("HEAD error without a body, then more requests on the connection")
        eq(http(s.port, "PUT", "/bad/exists", body=b"here").status, 200, "PUT exists")
        c = conn(s)
        t1, h1 = sign_v4("HEAD", "/bad/missing", host=s.host)
        c.sendall(raw_request("HEAD", t1, h1))
        r = read_response(c, head_request=True)
        eq(r.status, 404, "HEAD missing key")
        t2, h2 = sign_v4("GET", "/bad/exists", host=s.host)
        c.sendall(raw_request("GET", t2, h2))
        r = read_response(c)
        eq((r.status, r.body), (200, b"here"), "GET after a HEAD 404 on the same connection")

        log("pipelined requests")
        reqs = b""
        for i in range(5):
            t, h = sign_v4("PUT", "/bad/pipe%d" % i, body=b"p%d" % i, host=s.host)
            h["Content-Length"] = "2"
            reqs += raw_request("PUT", t, h, b"p%d" % i)
        for i in range(5):
            t, h = sign_v4("GET", "/bad/pipe%d" % i, host=s.host)
            reqs += raw_request("GET", t, h)
        c.sendall(reqs)
        for i in range(5):
            eq(read_response(c).status, 200, "pipelined PUT %d" % i)
        for i in range(5):
            r = read_response(c)
            eq((r.status, r.body), (200, b"p%d" % i), "pipelined GET %d in order" % i)
        c.close()

        log("idle connections do not block service")
        idle = [conn(s) for _ in range(200)]
        t0 = time.monotonic()
        data = os.urandom(300000)
        eq(http(s.port, "PUT", "/bad/after", body=data).status, 200, "PUT with 200 idle connections open")
        r = http(s.port, "GET", "/bad/after")
        eq((r.status, hashlib.md5(r.body).hexdigest()), (200, hashlib.md5(data).hexdigest()), "GET after")
        check(time.monotonic() - t0 < 5, "service slowed by idle connections")
        for c in idle:
            c.close()
        check(s.alive(), "silt died")


run_test(main)
