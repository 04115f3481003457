#!/usr/bin/python3
"""Process lifecycle.

- An unknown config key is ignored with a warning naming it.
- SIGTERM and SIGINT sent the moment the Kafka port accepts a connection are
  a clean shutdown every time: exit status 0, and the next start runs no
  crash recovery. (A supervisor or test harness may stop silt as soon as its
  port answers.)
- A bad config value and a Kafka port already in use make silt exit non-zero
  with a message.
- A second server on a data directory in use refuses to start (Kafka holds a
  lock file; two writers on one log corrupt it), and the first keeps serving.
- SIGTERM while requests are pending on both network loops (JoinGroups
  held by the initial rebalance delay, long-poll Fetches) and while clients
  keep reconnecting is a clean shutdown: they are cancelled, exit status 0.
- silt.debug.request.timing=true logs the produce requests' time in the
  server (one line per burst, and at shutdown); without it nothing is logged.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from silt_harness import Silt, check, eq, free_port, log, run_test, tmpdir  # noqa: E402
import kafka_wire as kw  # noqa: E402

RECOVERY = re.compile(r"unclean|recovered segment", re.I)
TIMING = re.compile(r"loop \d+: (\d+) produce requests in [0-9.]+ s; receive to response sent: "
                    r"p50 \d+ us, p99 \d+ us, p99\.9 \d+ us, max \d+ us; \d+ over 1 ms, \d+ over 2 ms")


def kcat(s, *args, data=None):
    r = subprocess.run(["timeout", "30", "kcat", "-b", s.bootstrap] + list(args), input=data,
                       capture_output=True)
    eq(r.returncode, 0, "kcat %s exit status (%s)" % (" ".join(args), r.stderr[-300:]))
    return r.stdout.decode()


def start_and_signal_at_once(s, sig):
    """Starts s, polls its port every millisecond, and sends sig the moment
    a connection succeeds. Returns the exit status."""
    logf = open(s.log_path, "ab")
    logf.write(b"=== start (signal %d as soon as the port answers)\n" % sig)
    logf.flush()
    s._log_marks.append(os.path.getsize(s.log_path))
    p = subprocess.Popen(s.argv(), stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, cwd=s.workdir)
    logf.close()
    s.proc = p
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and p.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", s.port), timeout=0.05).close()
            break
        except OSError:
            time.sleep(0.001)
    check(p.poll() is None, "silt exited during startup (%r)" % p.returncode)
    p.send_signal(sig)
    try:
        return p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)
        raise AssertionError("silt did not exit within 10s of signal %d" % sig)


def run_second(argv, what):
    """Runs another silt for at most 5 s; it must exit non-zero by itself."""
    out = tmpdir("silt-second-")
    with open(os.path.join(out, "stderr.log"), "wb") as f:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f)
        try:
            rc = p.wait(5)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)
            p.wait(10)
            rc = None
    with open(os.path.join(out, "stderr.log"), "rb") as f:
        text = f.read().decode("utf-8", "replace")
    check(rc not in (None, 0), "%s: the second silt %s\n%s"
          % (what, "kept running for 5s" if rc is None else "exited 0", text[-1500:]))
    return text


def join_group_v0_body(group, member_id=""):
    proto = kw.string("range") + kw.nbytes(kw.i16(0) + kw.array([kw.string("pend")]) + kw.nbytes(b""))
    return kw.string(group) + kw.i32(10000) + kw.string(member_id) + kw.string("consumer") + \
        kw.array([proto])


def sigterm_with_pending_requests(rounds=3):
    """Per round: on a two-loop server, JoinGroups (held by a long initial
    rebalance delay) and long-poll Fetches pending on connections spread
    over both loops, clients reconnecting in a tight loop, then SIGTERM.
    Every round must exit 0 within 10 s."""
    for rnd in range(rounds):
        with Silt(config={"num.network.threads": 2, "num.partitions": 1,
                          "group.initial.rebalance.delay.ms": 60000}) as s:
            with kw.Conn(s.port) as c:
                c.call(kw.API_CREATE_TOPICS, 0, kw.create_topics_v0_body(["pend"]))
            conns = []
            for i in range(4):  # round-robin: two on each loop
                c = kw.Conn(s.port)
                conns.append(c)
                c.send(11, 0, join_group_v0_body("pend-%d" % (i % 2)))
                c.send(kw.API_FETCH, 4, kw.fetch_v4_body("pend", 0, 0, max_wait_ms=60000))
            stop = threading.Event()

            def reconnect():
                while not stop.is_set():
                    try:
                        with kw.Conn(s.port, timeout=1) as c:
                            c.send(kw.API_VERSIONS, 0, b"")
                            c.recv_frame()
                    except (OSError, ValueError):
                        time.sleep(0.001)

            ts = [threading.Thread(target=reconnect) for _ in range(4)]
            for t in ts:
                t.start()
            time.sleep(0.3)
            for c in conns:
                c.sock.setblocking(False)
                try:
                    got = c.sock.recv(1)
                except BlockingIOError:
                    got = None
                eq(got, None, "round %d: an answer to a request that should still be pending" % rnd)
            try:
                rc = s.stop()
            finally:
                stop.set()
                for t in ts:
                    t.join(10)
                for c in conns:
                    c.close()
            eq(rc, 0, "round %d: exit status after SIGTERM with pending requests on both loops" % rnd)


def main():
    sigterm_with_pending_requests()

    with Silt(config={"num.partitions": 1, "no.such.key": 1}) as s:
        check("no.such.key" in s.log_text(), "no warning naming the unknown key no.such.key")
        kcat(s, "-P", "-t", "life", "-K:", data=b"k:v\n")
        s.stop()

        # Signals at the earliest moment: clean exits, no recovery afterwards.
        failures = []
        for i in range(12):
            sig = signal.SIGTERM if i % 3 else signal.SIGINT
            rc = start_and_signal_at_once(s, sig)
            if rc != 0:
                failures.append("attempt %d: %s -> exit status %r" % (i, signal.Signals(sig).name, rc))
        s.start()
        since = s.log_text(since_last_start=True)
        # Collected rather than raised at once, so that the checks below run too.
        problems = []
        if failures:
            problems.append("signal right after the Kafka port opened was not a clean shutdown: %s"
                            % "; ".join(failures))
        elif RECOVERY.search(since):
            problems.append("start after clean shutdowns ran crash recovery:\n%s" % since[-1500:])
        eq(kcat(s, "-C", "-t", "life", "-o", "beginning", "-e", "-q", "-f", "%k:%s\\n"), "k:v\n",
           "data after the restarts")

        s3 = []
        if "--s3-addr" in subprocess.run([s.argv()[0], "server", "--help"], capture_output=True).stdout.decode() + \
                subprocess.run([s.argv()[0], "server", "--help"], capture_output=True).stderr.decode():
            s3 = ["--s3-addr", "127.0.0.1:%d" % free_port()]

        # Same Kafka port, another data dir.
        run_second([s.argv()[0], "server", "--data-dir", tmpdir("silt-d1-"), "--kafka-addr", s.bootstrap] + s3,
                   "Kafka port in use")
        # A bad config value.
        bad = os.path.join(tmpdir("silt-bad-"), "bad.conf")
        with open(bad, "w") as f:
            f.write("num.partitions=lots\n")
        text = run_second([s.argv()[0], "server", "--data-dir", tmpdir("silt-d2-"), "--kafka-addr",
                           "127.0.0.1:%d" % free_port(), "--config", bad] + s3, "num.partitions=lots")
        check("num.partitions" in text, "no message naming num.partitions:\n%s" % text[-500:])
        eq(kcat(s, "-C", "-t", "life", "-o", "beginning", "-e", "-q", "-f", "%k:%s\\n"), "k:v\n",
           "first server still serving")

        # Same data dir, another port: must refuse. Last, because a second
        # writer that does start may damage the first server's log.
        if s3:
            s3 = ["--s3-addr", "127.0.0.1:%d" % free_port()]
        try:
            run_second([s.argv()[0], "server", "--data-dir", s.data_dir, "--kafka-addr",
                        "127.0.0.1:%d" % free_port()] + s3, "data directory in use")
        except AssertionError as e:
            problems.append(str(e))
        eq(kcat(s, "-C", "-t", "life", "-o", "beginning", "-e", "-q", "-f", "%k:%s\\n"), "k:v\n",
           "first server still serving after the refused second one")
        check(not problems, "\n\n".join(problems))
        check(not TIMING.search(s.log_text()), "request timing logged without silt.debug.request.timing")

    # Request timing: every acks=1 message of kcat is a produce request here
    # (one per line with linger 0), and all of them are counted.
    with Silt(config={"num.partitions": 1, "silt.debug.request.timing": "true"}) as s:
        kcat(s, "-P", "-t", "timing", "-X", "linger.ms=0", "-X", "acks=1",
             data=b"".join(b"m%d\n" % i for i in range(20)))
        s.stop()
        counts = [int(m.group(1)) for m in TIMING.finditer(s.log_text())]
        log("request timing counted %r produce requests" % counts)
        check(counts, "no request timing line with silt.debug.request.timing=true:\n%s" % s.log_text()[-1500:])
        check(1 <= sum(counts) <= 20, "request timing counted %r produce requests for 20 messages" % counts)


if __name__ == "__main__":
    run_test(main)
