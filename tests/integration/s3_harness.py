"""Harness for silt's S3 integration tests (Python); the shared part
(assertions, ports, server process, run_test) is in harness.py.

Standard library only, so it works under both interpreters on the machine:
`python3` first on PATH (boto3 1.43, aws-cli 1.45) and /usr/bin/python3
(Debian's boto3 1.26, aws-cli 2.9). A test does:

    from s3_harness import SiltS3, run_test, check, eq, log

    def main():
        with SiltS3() as s:
            ... s.endpoint (http://127.0.0.1:PORT), s.port, s.data_dir ...

    run_test(main)

Besides the server, the module has what several tests need: `aws()` runs
one aws-cli command with a private config and JSON output, `sign_v4()`
builds a SigV4-signed raw HTTP request for the socket-level tests, and
`http()` sends one request over a fresh connection and parses the answer.
"""

import datetime
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import time
import urllib.parse
import weakref

from harness import (ROOT, SILT_BIN, Server, Skip, TestFailure, check, eq,  # noqa: F401
                     free_port, log, port_open, run_test, tmpdir, wait_until)

ROOT_USER = "siltadmin"
ROOT_PASSWORD = "siltadmin"
REGION = "us-east-1"


def md5_file(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def multipart_etag(parts):
    """The S3 ETag of a completed multipart upload made of the given part
    bodies: md5 of the concatenated binary part MD5s, dash, part count,
    quoted."""
    d = b"".join(hashlib.md5(p).digest() for p in parts)
    return '"%s-%d"' % (hashlib.md5(d).hexdigest(), len(parts))


class SiltS3(Server):
    """A silt server as the S3 tests use it: start() waits for the S3
    listener, `port` is the S3 port. env: extra environment (e.g.
    SILT_ROOT_USER); config: dict of key=value lines for --config."""

    def __init__(self, config=None, env=None, name="silt"):
        super().__init__(config=config, env=env, name=name, prefix="silt-s3it-")

    @property
    def wait_port(self):
        return self.s3_port

    @property
    def port(self):
        return self.s3_port

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.s3_port

    @property
    def host(self):
        return "127.0.0.1:%d" % self.s3_port

    def user_add(self, access, secret):
        """`silt user add` on this server's data directory; the running
        server is documented to pick the user up within 2 s."""
        r = subprocess.run([SILT_BIN, "user", "--data-dir", self.data_dir, "add", access, secret],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "silt user add %s failed (%d): %s%s"
              % (access, r.returncode, r.stdout, r.stderr))


# ---------------------------------------------------------------- aws-cli

AWS_V1 = "aws"            # first on PATH: aws-cli 1.45 on botocore 1.43
AWS_V2 = "/usr/bin/aws"   # Debian's aws-cli 2.9 on botocore 1.29


class AwsResult:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    @property
    def json(self):
        return json.loads(self.out) if self.out.strip() else {}

    def error_code(self):
        """The S3 error code aws-cli names in 'An error occurred (Code)'."""
        m = re.search(r"An error occurred \(([^)]*)\)", self.err)
        return m.group(1) if m else None


class Aws:
    """Runs one aws-cli binary with a private config directory (no user
    files read), the given credentials and the silt endpoint."""

    def __init__(self, endpoint, binary=AWS_V1, access=ROOT_USER, secret=ROOT_PASSWORD,
                 config_lines=()):
        self.endpoint = endpoint
        self.binary = binary
        d = tmpdir("silt-s3it-aws-")
        self.config = os.path.join(d, "config")
        with open(self.config, "w") as f:
            # One attempt: botocore's legacy mode retries 400 BadDigest with
            # backoff, and retries would hide server faults anyway.
            f.write("[default]\nregion = %s\nmax_attempts = 1\n" % REGION)
            for line in config_lines:
                f.write(line + "\n")
        creds = os.path.join(d, "credentials")
        with open(creds, "w") as f:
            f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                    % (access, secret))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update(AWS_CONFIG_FILE=self.config, AWS_SHARED_CREDENTIALS_FILE=creds,
                        AWS_PAGER="", BOTO_DISABLE_CRT="true", AWS_EC2_METADATA_DISABLED="true")
        if binary == AWS_V2:
            # Debian's aws-cli 2 runs on /usr/bin/python3; keep pyenv's
            # PYTHONPATH-like settings out of its way.
            self.env.pop("PYTHONPATH", None)

    def __call__(self, *args, timeout=120, stdin=None):
        argv = [self.binary, "--endpoint-url", self.endpoint, "--output", "json"] + list(args)
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                               env=self.env, input=stdin)
        except subprocess.TimeoutExpired:
            raise TestFailure("timed out after %ds: %s" % (timeout, " ".join(argv)))
        return AwsResult(r.returncode, r.stdout, r.stderr)

    def ok(self, *args, **kw):
        r = self(*args, **kw)
        check(r.rc == 0, "%s %s failed (rc %d): %s" % (os.path.basename(self.binary),
                                                       " ".join(args), r.rc, r.err.strip()))
        return r

    def api(self, op, **params):
        """aws s3api OP --param value ...; returns the parsed JSON."""
        return self.ok("s3api", op, *_cli_args(params)).json

    def api_err(self, op, **params):
        """Runs an s3api call that must fail; returns the error code."""
        r = self("s3api", op, *_cli_args(params))
        check(r.rc != 0, "s3api %s %r unexpectedly succeeded: %s" % (op, params, r.out[:300]))
        return r.error_code() or r.err.strip()


def _cli_args(params):
    out = []
    for k, v in params.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            out.append(flag)
        elif isinstance(v, (dict, list)):
            out += [flag, json.dumps(v)]
        else:
            out += [flag, str(v)]
    return out


# ------------------------------------------------------- raw HTTP / SigV4

def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _uri_encode(s, keep_slash):
    safe = "-_.~" + ("/" if keep_slash else "")
    return urllib.parse.quote(s, safe=safe)


def sign_v4(method, path, query=None, headers=None, body=b"", host="127.0.0.1",
            access=ROOT_USER, secret=ROOT_PASSWORD, payload_hash=None, when=None):
    """Returns (request_target, headers) for a SigV4 header-signed request.
    query: list of (name, value) pairs (value '' for a bare subresource)."""
    query = list(query or [])
    headers = dict(headers or {})
    t = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = t.strftime("%Y%m%dT%H%M%SZ")
    day = t.strftime("%Y%m%d")
    if payload_hash is None:
        payload_hash = hashlib.sha256(body).hexdigest()
    headers["Host"] = host
    headers["x-amz-date"] = amz_date
    headers["x-amz-content-sha256"] = payload_hash
    canon_path = _uri_encode(path, keep_slash=True)
    canon_query = "&".join("%s=%s" % (_uri_encode(k, False), _uri_encode(v, False))
                           for k, v in sorted(query))
    lower = sorted((k.lower(), " ".join(str(v).strip().split())) for k, v in headers.items())
    signed = ";".join(k for k, _ in lower)
    creq = "\n".join([method, canon_path, canon_query,
                      "".join("%s:%s\n" % kv for kv in lower), signed, payload_hash])
    scope = "%s/%s/s3/aws4_request" % (day, REGION)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = _hmac(("AWS4" + secret).encode(), day)
    k = _hmac(k, REGION)
    k = _hmac(k, "s3")
    k = _hmac(k, "aws4_request")
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                                "Signature=%s" % (access, scope, signed, sig))
    target = canon_path + ("?" + canon_query if query else "")
    return target, headers


def raw_request(method, target, headers, body=b""):
    head = "%s %s HTTP/1.1\r\n" % (method, target)
    head += "".join("%s: %s\r\n" % kv for kv in headers.items())
    return head.encode() + b"\r\n" + body


class Response:
    def __init__(self, status, reason, headers, body, closed):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body
        self.closed = closed  # the server closed the connection after this response

    def header(self, name):
        return self.headers.get(name.lower())

    def error_code(self):
        m = re.search(rb"<Code>([^<]*)</Code>", self.body)
        return m.group(1).decode() if m else None

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.reason, self.body[:200])


# Bytes read past the end of a response (pipelining), per socket.
_pending = weakref.WeakKeyDictionary()


def read_response(sock, head_request=False, timeout=10.0):
    """Reads one HTTP/1.1 response from sock (Content-Length or chunked
    bodies). Returns a Response, or None when the connection closed before
    a status line arrived. Bytes after the response are kept for the next
    call on the same socket."""
    sock.settimeout(timeout)
    buf = _pending.pop(sock, b"")
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        check(time.monotonic() < deadline, "no complete response head within %.0fs" % timeout)
        check(len(buf) < 1 << 20, "response head over 1 MiB")
        try:
            d = sock.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            check(buf == b"", "connection closed inside a response head: %r" % buf[:200])
            return None
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    check(len(parts) >= 2 and parts[0].startswith("HTTP/1."), "bad status line %r" % lines[0])
    status = int(parts[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()

    def more():
        try:
            d = sock.recv(65536)
        except ConnectionResetError:
            d = b""
        check(time.monotonic() < deadline, "response body incomplete after %.0fs" % timeout)
        return d

    body = b""
    if head_request or status in (204, 304) or 100 <= status < 200:
        _pending[sock] = rest
    elif "content-length" in hdrs:
        n = int(hdrs["content-length"])
        body = rest
        while len(body) < n:
            d = more()
            check(d, "connection closed after %d of %d body bytes" % (len(body), n))
            body += d
        _pending[sock] = body[n:]
        body = body[:n]
    elif hdrs.get("transfer-encoding", "").lower() == "chunked":
        data = rest
        while True:
            while b"\r\n" not in data:
                d = more()
                check(d, "connection closed inside a chunk size line")
                data += d
            line, data = data.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            if size == 0:
                # Trailer fields, then the empty line that ends the message.
                while True:
                    while b"\r\n" not in data:
                        d = more()
                        check(d, "connection closed inside the chunked trailer")
                        data += d
                    line, data = data.split(b"\r\n", 1)
                    if line == b"":
                        break
                _pending[sock] = data
                break
            while len(data) < size + 2:
                d = more()
                check(d, "connection closed inside a chunk")
                data += d
            body += data[:size]
            data = data[size + 2:]
    else:
        body = rest
        while True:
            d = more()
            if not d:
                break
            body += d
    closed = hdrs.get("connection", "").lower() == "close"
    return Response(status, parts[2] if len(parts) > 2 else "", hdrs, body, closed)


def connection_closed(sock, timeout=3.0):
    """True when the peer closes sock (EOF or reset) within timeout with no
    further data."""
    sock.settimeout(timeout)
    try:
        d = sock.recv(1)
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
    return d == b""


def http(port, method, path, query=None, headers=None, body=b"", signed=True, **sign_kw):
    """One (by default SigV4-signed) request over a fresh connection."""
    host = "127.0.0.1:%d" % port
    if signed:
        target, hdrs = sign_v4(method, path, query, headers, body, host=host, **sign_kw)
    else:
        target = _uri_encode(path, True)
        if query:
            target += "?" + "&".join("%s=%s" % (k, v) for k, v in query)
        hdrs = dict(headers or {})
        hdrs["Host"] = host
    if body and "Content-Length" not in hdrs:
        hdrs["Content-Length"] = str(len(body))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw_request(method, target, hdrs, body))
        r = read_response(s, head_request=(method == "HEAD"))
        check(r is not None, "%s %s: connection closed without a response" % (method, path))
        return r
