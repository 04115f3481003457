"""What every Python integration test of silt shares: assertions, waiting,
ports, temporary directories, one `silt server` process, and run_test.

Standard library only, so it works under both interpreters on the machine:
/usr/bin/python3 (Debian's confluent_kafka, kafka-python, boto3 1.26,
aws-cli 2.9) and the `python3` first on PATH (boto3 1.43, aws-cli 1.45).
Tests import the flavour they need, which re-exports all of this:
silt_harness (Kafka: Silt, port = the Kafka listener) or s3_harness
(S3: SiltS3, port = the S3 listener, plus aws-cli and SigV4 helpers).

A server gets its own free 127.0.0.1 ports for both listeners and a fresh
temporary data directory, is waited for (bounded) until the listener the
test uses accepts connections, and has its stderr captured to a file.
run_test prints the traceback and the tail of every server log on failure
and exits 1; every server still running at exit is killed by PID. The
temporary directories are removed on success, kept (and named) on failure
unless SILT_KEEP=0.
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SILT_BIN = os.environ.get("SILT_BIN", os.path.join(ROOT, "build", "silt"))
START_TIMEOUT = float(os.environ.get("SILT_START_TIMEOUT", "10"))

_servers = []
_tmpdirs = []


class TestFailure(AssertionError):
    pass


class Skip(Exception):
    """Raised to end a test early as skipped (printed, exit 0)."""


def check(cond, msg):
    """Fails the test with msg unless cond holds."""
    if not cond:
        raise TestFailure(msg)


def eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


def log(msg):
    sys.stdout.write("  [%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stdout.flush()


def wait_until(pred, timeout, what, interval=0.1):
    """Polls pred() until it returns a truthy value (returned) or timeout
    seconds pass (the test fails naming `what`)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - reported below if we time out
            last_exc = e
        if time.monotonic() >= deadline:
            extra = (" (last error: %r)" % (last_exc,)) if last_exc else ""
            raise TestFailure("timed out after %.1fs waiting for %s%s" % (timeout, what, extra))
        time.sleep(interval)


def free_port():
    """A port that was free a moment ago on 127.0.0.1. There is a small race
    with other processes, which is acceptable for tests."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_open(port, host="127.0.0.1", timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tmpdir(prefix="silt-it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


class Server:
    """One `silt server` process with Kafka and S3 listeners on ports of its
    own. config: dict or list of "key=value" lines written to a file passed
    with --config; env: extra environment (e.g. SILT_ROOT_USER). Subclasses
    say which listener start() waits for (`wait_port`)."""

    def __init__(self, config=None, env=None, data_dir=None, name="silt", prefix="silt-it-"):
        self.name = name
        self.workdir = tmpdir(prefix + "run-")
        self.data_dir = data_dir or os.path.join(self.workdir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.kafka_port = free_port()
        self.s3_port = free_port()
        self.log_path = os.path.join(self.workdir, "%s.stderr.log" % name)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.config_path = None
        self.proc = None
        self.starts = 0
        self._log_marks = []
        if config:
            if isinstance(config, dict):
                lines = ["%s=%s" % (k, v) for k, v in config.items()]
            else:
                lines = list(config)
            self.config_path = os.path.join(self.workdir, "silt.conf")
            with open(self.config_path, "w") as f:
                f.write("\n".join(lines) + "\n")
        _servers.append(self)

    @property
    def wait_port(self):
        return self.kafka_port

    def argv(self):
        a = [SILT_BIN, "server", "--data-dir", self.data_dir,
             "--kafka-addr", "127.0.0.1:%d" % self.kafka_port,
             "--s3-addr", "127.0.0.1:%d" % self.s3_port]
        if self.config_path:
            a += ["--config", self.config_path]
        return a

    def start(self):
        check(os.access(SILT_BIN, os.X_OK), "no executable %s (run make build/silt)" % SILT_BIN)
        check(not self.alive(), "%s already running" % self.name)
        self._log_marks.append(self._log_size())
        with open(self.log_path, "ab") as logf:
            logf.write(b"=== start %d: %s\n" % (self.starts + 1, " ".join(self.argv()).encode()))
            logf.flush()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf, cwd=self.workdir, env=self.env)
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise TestFailure("%s exited with status %d during startup" % (self.name, rc))
            if port_open(self.wait_port):
                return self
            if time.monotonic() >= deadline:
                raise TestFailure("%s did not accept connections on 127.0.0.1:%d within %.0fs"
                                  % (self.name, self.wait_port, START_TIMEOUT))
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM and wait; returns the exit status. Fails the test if the
        server does not exit in time (it is then killed)."""
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
        """Crash the server: SIGKILL, then wait for it to be gone."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def restart(self):
        self.stop()
        return self.start()

    def _log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, since_last_start=False):
        try:
            with open(self.log_path, "rb") as f:
                if since_last_start and self._log_marks:
                    f.seek(self._log_marks[-1])
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def dump_log(self, tail=80):
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


def _on_term(signum, frame):
    # run_all.sh's timeout sends SIGTERM; Python would exit without atexit
    # handlers and leave silt running.
    sys.stdout.write("killed by signal %d\n" % signum)
    for srv in _servers:
        srv.dump_log(40)
    _cleanup()
    os._exit(128 + signum)


signal.signal(signal.SIGTERM, _on_term)


def _remove_tmpdirs():
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


def run_test(main):
    """Runs main(); on any exception prints it and the server logs, exits 1.
    Skip ends the test as skipped (exit 0)."""
    t0 = time.monotonic()
    try:
        main()
    except Skip as e:
        _cleanup()
        _remove_tmpdirs()
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
        if os.environ.get("SILT_KEEP", "1") != "0":
            sys.stdout.write("kept for inspection: %s\n" % " ".join(_tmpdirs))
        else:
            _remove_tmpdirs()
        sys.stdout.write("FAILED after %.1fs\n" % (time.monotonic() - t0))
        sys.stdout.flush()
        os._exit(1)
    _cleanup()
    _remove_tmpdirs()
    sys.stdout.write("ok (%.1fs)\n" % (time.monotonic() - t0))
    sys.stdout.flush()
    # Client libraries (librdkafka threads) can make interpreter shutdown slow.
    os._exit(0)
