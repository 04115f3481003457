"""Shared harness for silt's S3 integration tests (Python).

Standard library only, so it works under both interpreters on the machine:
`python3` first on PATH (boto3 1.43, aws-cli 1.45) and /usr/bin/python3
(Debian's boto3 1.26, aws-cli 2.9). A test does:

    from s3_harness import SiltS3, run_test, check, eq, log

    def main():
        with SiltS3() as s:
            ... s.endpoint (http://127.0.0.1:PORT), s.port, s.data_dir ...

    run_test(main)

SiltS3 starts build/silt (or $SILT_BIN) with the Kafka and S3 listeners on
free 127.0.0.1 ports and a fresh temporary data directory, waits (bounded)
until the S3 port accepts connections, and captures stderr to a file.
run_test prints the traceback and the tail of every server log on failure
and exits 1; every server still running at exit is killed by its PID. The
temporary directories are removed on success, kept (and named) on failure.

Besides the server, the module has what several tests need: `aws()` runs
one aws-cli command with a private config and JSON output, `sign_v4()`
builds a SigV4-signed raw HTTP request for the socket-level tests, and
`http()` sends one request over a fresh connection and parses the answer.
"""

import atexit
import datetime
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import weakref

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SILT_BIN = os.environ.get("SILT_BIN", os.path.join(ROOT, "build", "silt"))
START_TIMEOUT = float(os.environ.get("SILT_START_TIMEOUT", "10"))
ROOT_USER = "siltadmin"
ROOT_PASSWORD = "siltadmin"
REGION = "us-east-1"

_servers = []
_tmpdirs = []


class TestFailure(AssertionError):
    pass


class Skip(Exception):
    """Raised to end a test early as skipped (printed, exit 0)."""


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


def log(msg):
    sys.stdout.write("  [%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stdout.flush()


def wait_until(pred, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - reported below on timeout
            last_exc = e
        if time.monotonic() >= deadline:
            extra = (" (last error: %r)" % (last_exc,)) if last_exc else ""
            raise TestFailure("timed out after %.1fs waiting for %s%s" % (timeout, what, extra))
        time.sleep(interval)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_open(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def tmpdir(prefix="silt-s3it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


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


class SiltS3:
    """One silt server process with the S3 listener. env: extra environment
    (e.g. SILT_ROOT_USER); config: dict of key=value lines for --config."""

    def __init__(self, config=None, env=None, name="silt"):
        self.name = name
        self.workdir = tmpdir("silt-s3it-run-")
        self.data_dir = os.path.join(self.workdir, "data")
        os.makedirs(self.data_dir)
        self.port = free_port()
        self.kafka_port = free_port()
        self.log_path = os.path.join(self.workdir, "%s.stderr.log" % name)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.config_path = None
        self.proc = None
        if config:
            self.config_path = os.path.join(self.workdir, "silt.conf")
            with open(self.config_path, "w") as f:
                f.write("".join("%s=%s\n" % kv for kv in config.items()))
        _servers.append(self)

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def argv(self):
        a = [SILT_BIN, "server", "--data-dir", self.data_dir,
             "--kafka-addr", "127.0.0.1:%d" % self.kafka_port,
             "--s3-addr", "127.0.0.1:%d" % self.port]
        if self.config_path:
            a += ["--config", self.config_path]
        return a

    def start(self):
        check(os.access(SILT_BIN, os.X_OK), "no executable %s (run make build/silt)" % SILT_BIN)
        check(not self.alive(), "%s already running" % self.name)
        with open(self.log_path, "ab") as logf:
            logf.write(b"=== start: %s\n" % " ".join(self.argv()).encode())
            logf.flush()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf, cwd=self.workdir, env=self.env)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise TestFailure("%s exited with status %d during startup" % (self.name, rc))
            if port_open(self.port):
                return self
            if time.monotonic() >= deadline:
                raise TestFailure("%s did not accept S3 connections on %s within %.0fs"
                                  % (self.name, self.host, START_TIMEOUT))
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise TestFailure("%s did not exit within %.0fs of SIGTERM" % (self.name, timeout))

    def kill9(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def user_add(self, access, secret):
        """`silt user add` on this server's data directory; the running
        server is documented to pick the user up within 2 s."""
        r = subprocess.run([SILT_BIN, "user", "--data-dir", self.data_dir, "add", access, secret],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "silt user add %s failed (%d): %s%s"
              % (access, r.returncode, r.stdout, r.stderr))

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def dump_log(self, tail=60):
        lines = self.log_text().splitlines()
        sys.stdout.write("----- %s stderr (%s), last %d of %d lines -----\n"
                         % (self.name, self.log_path, min(tail, len(lines)), len(lines)))
        for line in lines[-tail:]:
            sys.stdout.write("  | %s\n" % line)
        sys.stdout.flush()

    def __enter__(self):
        return self.start()

    def __exit__(self, et, ev, tb):
        if et is None:
            rc = self.stop()
            check(rc == 0, "%s exited with status %r after SIGTERM" % (self.name, rc))
        else:
            self.kill9()
        return False


def _cleanup():
    for s in _servers:
        try:
            s.kill9()
        except Exception:  # noqa: BLE001
            pass


atexit.register(_cleanup)


def run_test(main):
    """Runs main(); on failure prints the exception and server logs, exits 1."""
    t0 = time.monotonic()
    try:
        main()
    except Skip as e:
        _cleanup()
        for d in _tmpdirs:
            shutil.rmtree(d, ignore_errors=True)
        sys.stdout.write("SKIPPED: %s\n" % e)
        sys.stdout.flush()
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - includes KeyboardInterrupt/SystemExit
        if isinstance(e, SystemExit) and e.code in (0, None):
            raise
        traceback.print_exc(file=sys.stdout)
        for s in _servers:
            s.dump_log()
        _cleanup()
        sys.stdout.write("kept for inspection: %s\n" % " ".join(_tmpdirs))
        sys.stdout.write("FAILED after %.1fs\n" % (time.monotonic() - t0))
        sys.stdout.flush()
        os._exit(1)
    _cleanup()
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
    sys.stdout.write("ok (%.1fs)\n" % (time.monotonic() - t0))
    sys.stdout.flush()
    os._exit(0)


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
