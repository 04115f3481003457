"""Hand-written Kafka wire encoding for tests that need to send exact bytes
(bad input, raw Fetch/ListOffsets). Only non-flexible request versions, so
every request uses request header v1 and every response header v0.

Written from the Kafka protocol guide; deliberately independent of silt's C
codec so that a shared misunderstanding does not hide a bug.
"""

import socket
import struct
import time

# ---------------------------------------------------------------- CRC-32C

_CRC32C_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    t = _CRC32C_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value

# ---------------------------------------------------------------- primitives


def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def string(s):
    if s is None:
        return i16(-1)
    if isinstance(s, str):
        s = s.encode()
    return i16(len(s)) + s


def nbytes(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items):
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(items)


def zigzag_varint(v):
    z = (v << 1) ^ (v >> 63)
    z &= (1 << 64) - 1
    out = bytearray()
    while True:
        if z < 0x80:
            out.append(z)
            return bytes(out)
        out.append((z & 0x7F) | 0x80)
        z >>= 7


class Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def take(self, n):
        if n < 0 or self.p + n > len(self.d):
            raise ValueError("short response: need %d bytes at %d of %d" % (n, self.p, len(self.d)))
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def nbytes(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, fn):
        n = self.i32()
        if n < 0:
            return None
        if n > 100000:
            raise ValueError("absurd array count %d" % n)
        return [fn(self) for _ in range(n)]

    def remaining(self):
        return len(self.d) - self.p


# ---------------------------------------------------------------- framing

API_PRODUCE, API_FETCH, API_LIST_OFFSETS, API_METADATA = 0, 1, 2, 3
API_VERSIONS, API_CREATE_TOPICS, API_INIT_PRODUCER_ID = 18, 19, 22
API_DESCRIBE_CONFIGS, API_INCREMENTAL_ALTER_CONFIGS = 32, 44
RESOURCE_TOPIC = 2


def request(api_key, api_version, corr_id, body, client_id="silt-itest"):
    """A whole frame: size prefix, request header v1, body."""
    hdr = i16(api_key) + i16(api_version) + i32(corr_id) + string(client_id)
    payload = hdr + body
    return i32(len(payload)) + payload


class Conn:
    """A blocking connection with a per-operation timeout."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.corr = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, api_key, api_version, body):
        self.corr += 1
        self.sock.sendall(request(api_key, api_version, self.corr, body))
        return self.corr

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv_frame(self):
        """Returns (correlation_id, Reader over the body after it)."""
        (size,) = struct.unpack(">i", self.recv_exact(4))
        if size < 4 or size > 64 * 1024 * 1024:
            raise ValueError("bad response size %d" % size)
        data = self.recv_exact(size)
        r = Reader(data)
        return r.i32(), r

    def call(self, api_key, api_version, body):
        corr = self.send(api_key, api_version, body)
        got, r = self.recv_frame()
        if got != corr:
            raise ValueError("correlation id %d, expected %d" % (got, corr))
        return r

    def closed_by_peer(self, timeout=5.0):
        """True if the peer closes the connection (EOF or reset) within
        timeout without sending anything; False if it stays open; raises if
        it sends data instead."""
        self.sock.settimeout(0.25)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    b = self.sock.recv(4096)
                except socket.timeout:
                    continue
                if not b:
                    return True
                return ("data", b)
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(5.0)


# ---------------------------------------------------------------- requests


def api_versions_body(version):
    return b""  # v0-v2 have an empty body; v3 is flexible and not used here


def parse_api_versions_v0(r):
    err = r.i16()
    apis = r.array(lambda rr: (rr.i16(), rr.i16(), rr.i16()))
    return err, {k: (lo, hi) for k, lo, hi in (apis or [])}


def metadata_v1_body(topics):
    return array([string(t) for t in topics]) if topics is not None else i32(-1)


def parse_metadata_v1(r):
    brokers = r.array(lambda rr: (rr.i32(), rr.string(), rr.i32(), rr.string()))
    controller = r.i32()

    def part(rr):
        return {"error": rr.i16(), "partition": rr.i32(), "leader": rr.i32(),
                "replicas": rr.array(lambda x: x.i32()), "isr": rr.array(lambda x: x.i32())}

    def topic(rr):
        return {"error": rr.i16(), "name": rr.string(), "internal": rr.i8(),
                "partitions": rr.array(part)}

    topics = r.array(topic)
    return brokers, controller, topics


def record(offset_delta, ts_delta, key, value, headers=()):
    body = i8(0) + zigzag_varint(ts_delta) + zigzag_varint(offset_delta)
    body += zigzag_varint(-1) if key is None else zigzag_varint(len(key)) + key
    body += zigzag_varint(-1) if value is None else zigzag_varint(len(value)) + value
    body += zigzag_varint(len(headers))
    for hk, hv in headers:
        hk = hk.encode() if isinstance(hk, str) else hk
        body += zigzag_varint(len(hk)) + hk
        body += zigzag_varint(-1) if hv is None else zigzag_varint(len(hv)) + hv
    return zigzag_varint(len(body)) + body


def record_batch(records, base_ts=None, producer_id=-1, producer_epoch=-1, base_seq=-1,
                 attributes=0, last_offset_delta=None, count=None, corrupt_crc=False):
    """records: list of (key, value, headers). Returns a RecordBatch v2 with
    baseOffset 0 and a correct CRC-32C unless corrupt_crc."""
    if base_ts is None:
        base_ts = int(time.time() * 1000)
    recs = b"".join(record(i, 0, k, v, h) for i, (k, v, h) in enumerate(records))
    n = len(records)
    if last_offset_delta is None:
        last_offset_delta = n - 1
    if count is None:
        count = n
    after_crc = (i16(attributes) + i32(last_offset_delta) + i64(base_ts) + i64(base_ts)
                 + i64(producer_id) + i16(producer_epoch) + i32(base_seq) + i32(count) + recs)
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0x5A5A5A5A
    after_len = i32(0) + i8(2) + struct.pack(">I", crc) + after_crc  # leader epoch, magic, crc
    return i64(0) + i32(len(after_len)) + after_len


def produce_v3_body(topic, partition, batch, acks=-1, timeout_ms=5000):
    part = i32(partition) + nbytes(batch)
    t = string(topic) + array([part])
    return string(None) + i16(acks) + i32(timeout_ms) + array([t])


def parse_produce_v3(r):
    """Returns {(topic, partition): (error, base_offset, log_append_time)}."""
    out = {}

    def topic(rr):
        name = rr.string()

        def part(x):
            p, err, base, lat = x.i32(), x.i16(), x.i64(), x.i64()
            out[(name, p)] = (err, base, lat)

        rr.array(part)

    r.array(topic)
    r.i32()  # throttle_time_ms
    return out


def create_topics_v0_body(names, partitions=1, replication=1, timeout_ms=5000):
    def t(name):
        return string(name) + i32(partitions) + i16(replication) + array([]) + array([])
    return array([t(n) for n in names]) + i32(timeout_ms)


def parse_create_topics_v0(r):
    return dict(r.array(lambda rr: (rr.string(), rr.i16())))


def fetch_v4_body(topic, partition, offset, max_bytes=1 << 20, max_wait_ms=100):
    p = i32(partition) + i64(offset) + i32(max_bytes)
    t = string(topic) + array([p])
    # replica_id, max_wait_ms, min_bytes, max_bytes, isolation_level, topics
    return i32(-1) + i32(max_wait_ms) + i32(1) + i32(max_bytes) + i8(0) + array([t])


def parse_fetch_v4(r):
    """Returns {(topic, partition): dict(error, high_watermark, last_stable, records)}."""
    r.i32()  # throttle
    out = {}

    def topic(rr):
        name = rr.string()

        def part(x):
            p, err, hw, lso = x.i32(), x.i16(), x.i64(), x.i64()
            x.array(lambda y: (y.i64(), y.i64()))  # aborted transactions
            recs = x.nbytes()
            out[(name, p)] = {"error": err, "high_watermark": hw, "last_stable": lso,
                              "records": recs}

        rr.array(part)

    r.array(topic)
    return out


def list_offsets_v1_body(topic, partition, timestamp):
    p = i32(partition) + i64(timestamp)
    return i32(-1) + array([string(topic) + array([p])])


def parse_list_offsets_v1(r):
    out = {}

    def topic(rr):
        name = rr.string()

        def part(x):
            p, err, ts, off = x.i32(), x.i16(), x.i64(), x.i64()
            out[(name, p)] = (err, ts, off)

        rr.array(part)

    r.array(topic)
    return out


def batch_offsets(records_bytes):
    """Walks RecordBatch v2 headers in a Fetch records blob and returns
    [(base_offset, last_offset)] of the whole batches in it."""
    out = []
    p = 0
    b = records_bytes or b""
    while p + 61 <= len(b):
        base, length = struct.unpack(">qi", b[p:p + 12])
        if p + 12 + length > len(b):
            break  # partial batch at the end is allowed
        (last_delta,) = struct.unpack(">i", b[p + 23:p + 27])
        out.append((base, base + last_delta))
        p += 12 + length
    return out


def init_producer_id_v0_body(transactional_id=None, timeout_ms=60000):
    return string(transactional_id) + i32(timeout_ms)


def parse_init_producer_id_v0(r):
    """Returns (error, producer_id, producer_epoch)."""
    r.i32()  # throttle_time_ms
    return r.i16(), r.i64(), r.i16()


def incremental_alter_configs_v0_body(resources, validate_only=False):
    """resources: [(resource_type, name, [(config_name, op, value)])];
    op 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT."""
    def res(rt, name, configs):
        return (i8(rt) + string(name)
                + array([string(k) + i8(op) + string(v) for k, op, v in configs]))
    return array([res(*r) for r in resources]) + i8(1 if validate_only else 0)


def parse_incremental_alter_configs_v0(r):
    """Returns {(resource_type, name): error_code}."""
    r.i32()  # throttle
    out = {}

    def one(x):
        err, _msg, rt, name = x.i16(), x.string(), x.i8(), x.string()
        out[(rt, name)] = err

    r.array(one)
    return out


def describe_configs_v0_body(resources):
    """resources: [(resource_type, name, [config names] or None)]."""
    return array([i8(rt) + string(n) + (array([string(c) for c in cs]) if cs is not None else i32(-1))
                  for rt, n, cs in resources])


def parse_describe_configs_v0(r):
    """Returns {(resource_type, name): (error, {config: (value, is_default)})}."""
    r.i32()  # throttle
    out = {}

    def one(x):
        err, _msg, rt, name = x.i16(), x.string(), x.i8(), x.string()
        entries = {}

        def entry(y):
            k, v, _ro, dflt, _sens = y.string(), y.string(), y.i8(), y.i8(), y.i8()
            entries[k] = (v, bool(dflt))

        x.array(entry)
        out[(rt, name)] = (err, entries)

    r.array(one)
    return out
