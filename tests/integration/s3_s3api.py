#!/usr/bin/env python3
"""`aws s3api` against silt, with aws-cli 1.45 (first on PATH; sends CRC32
checksums) for every case; s3_s3api_v2.py runs the core ones (objects,
checksums, multipart, presign; S3_API_V2=full for all) with
Debian's aws-cli 2.9 (/usr/bin/aws):

  objects     put-object with Content-Type, Cache-Control, Content-
              Disposition, Content-Encoding and user metadata; get-object and
              head-object return them; ETag = quoted MD5; NoSuchKey
  ranges      get-object --range: 206 with Content-Range for first-last,
              open-ended, suffix and past-the-end ranges; 416 InvalidRange
              for an unsatisfiable one (status checked on the wire too)
  conditional If-Match / If-None-Match / If-Modified-Since /
              If-Unmodified-Since: 200, 304, 412 as S3 specifies
  copy        copy-object COPY keeps metadata and type, REPLACE sets new
              ones, copy onto itself with REPLACE, copy-source-if-match
  delete      delete-objects returns Deleted for each key (missing ones too),
              --quiet returns none; the objects are gone
  checksums   --checksum-algorithm CRC32, CRC32C, SHA1, SHA256: the response
              and head-object/get-object --checksum-mode ENABLED return the
              right value; a wrong x-amz-checksum-* value and a wrong
              Content-MD5 are BadDigest and store nothing
  listing     list-objects-v2 and list-objects with prefix, delimiter,
              max-keys pagination (tokens / markers, KeyCount, IsTruncated,
              nothing repeated or lost), start-after, encoding-type url
  versioning  Enabled: distinct version ids, get/head/delete by id, delete
              markers, list-object-versions; Suspended: the null version
  multipart   create / upload-part / list-parts / list-multipart-uploads /
              complete (ETag md5-of-md5s-N) / abort (NoSuchUpload after);
              EntityTooSmall, InvalidPart, InvalidPartOrder
  presign     aws s3 presign fetched with curl: 200 and the body; an expired
              URL and a tampered one are 403

Run alone: tests/integration/s3_s3api.py  (S3_API_ONLY=listing,copy to pick
cases)
"""

import base64
import hashlib
import os
import subprocess
import sys
import time
import urllib.parse
import zlib
from email.utils import formatdate

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s3_harness import (AWS_V1, AWS_V2, Aws, SiltS3, check, eq, http, log,  # noqa: E402
                        multipart_etag, run_test, tmpdir)

MiB = 1 << 20


def crc32c(data):
    poly = 0x82F63B78
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def b64(b):
    return base64.b64encode(b).decode()


def checksums(data):
    return {
        "CRC32": b64(zlib.crc32(data).to_bytes(4, "big")),
        "CRC32C": b64(crc32c(data).to_bytes(4, "big")),
        "SHA1": b64(hashlib.sha1(data).digest()),
        "SHA256": b64(hashlib.sha256(data).digest()),
    }


def qmd5(data):
    return '"%s"' % hashlib.md5(data).hexdigest()


class Case:
    def __init__(self, s, aws, tag):
        self.s = s
        self.aws = aws
        self.tag = tag
        self.dir = tmpdir("silt-s3it-api-")

    def file(self, name, data):
        p = os.path.join(self.dir, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def bucket(self, name):
        b = "%s-%s" % (self.tag, name)
        self.aws.api("create-bucket", bucket=b)
        return b

    def put(self, bucket, key, data, **params):
        return self.aws.api("put-object", bucket=bucket, key=key,
                            body=self.file("put.bin", data), **params)

    def get(self, bucket, key, **params):
        """get-object into a file: (response JSON, body bytes)."""
        out = os.path.join(self.dir, "get.out")
        if os.path.exists(out):
            os.unlink(out)
        r = self.aws("s3api", "get-object", "--bucket", bucket, "--key", key,
                     *_args(params), out)
        check(r.rc == 0, "get-object %s/%s %r failed: %s" % (bucket, key, params, r.err.strip()))
        with open(out, "rb") as f:
            return r.json, f.read()

    def get_err(self, bucket, key, **params):
        out = os.path.join(self.dir, "get.out")
        r = self.aws("s3api", "get-object", "--bucket", bucket, "--key", key,
                     *_args(params), out)
        check(r.rc != 0, "get-object %s/%s %r unexpectedly succeeded: %s"
              % (bucket, key, params, r.out[:300]))
        return r.error_code() or r.err.strip()

    def rput(self, bucket, key, data):
        """Setup PUT over raw signed HTTP (an aws-cli call costs ~0.8 s)."""
        w = self.wire("PUT", "/%s/%s" % (bucket, key), body=data)
        eq(w.status, 200, "raw PUT %s/%s (%s)" % (bucket, key, w.body[:200]))
        return w

    def rget(self, bucket, key, version_id=None):
        """Verification GET over raw signed HTTP: the body (status 200 required)."""
        q = [("versionId", version_id)] if version_id else None
        w = self.wire("GET", "/%s/%s" % (bucket, key), query=q)
        eq(w.status, 200, "raw GET %s/%s%s (%s)" % (bucket, key, " v " + version_id if version_id else "",
                                                  w.body[:200]))
        return w.body

    def head_status(self, bucket, key, **params):
        if not params:
            return self.wire("HEAD", "/%s/%s" % (bucket, key)).status
        r = self.aws("s3api", "head-object", "--bucket", bucket, "--key", key, *_args(params))
        if r.rc == 0:
            return 200
        return int(r.error_code()) if (r.error_code() or "").isdigit() else r.error_code()

    def wire(self, method, path, **kw):
        return http(self.s.port, method, path, **kw)


def _args(params):
    out = []
    for k, v in params.items():
        flag = "--" + k.replace("_", "-")
        out += [flag] if v is True else [flag, str(v)]
    return out


# ----------------------------------------------------------------- cases

def case_objects(c):
    b = c.bucket("obj")
    body = b"hello, silt\n" * 100
    r = c.put(b, "docs/readme.txt", body, content_type="text/plain; charset=utf-8",
              cache_control="max-age=60, public", content_disposition='attachment; filename="r.txt"',
              content_encoding="identity", metadata="color=blue,Owner=Ana")
    eq(r.get("ETag"), qmd5(body), "put-object ETag is the quoted MD5")
    for how in ("get", "head"):
        if how == "get":
            meta, got = c.get(b, "docs/readme.txt")
            eq(got, body, "get-object body")
        else:
            meta = c.aws.api("head-object", bucket=b, key="docs/readme.txt")
        eq(meta.get("ContentType"), "text/plain; charset=utf-8", "%s ContentType" % how)
        eq(meta.get("CacheControl"), "max-age=60, public", "%s CacheControl" % how)
        eq(meta.get("ContentDisposition"), 'attachment; filename="r.txt"', "%s ContentDisposition" % how)
        eq(meta.get("ContentEncoding"), "identity", "%s ContentEncoding" % how)
        # User metadata names are case-insensitive and come back lower-cased.
        eq(meta.get("Metadata"), {"color": "blue", "owner": "Ana"}, "%s user metadata" % how)
        eq(meta.get("ETag"), qmd5(body), "%s ETag" % how)
        eq(meta.get("ContentLength"), len(body), "%s ContentLength" % how)
        check(meta.get("LastModified"), "%s has no LastModified" % how)
    # Default content type, empty object, overwrite.
    r = c.put(b, "empty", b"")
    eq(r.get("ETag"), qmd5(b""), "ETag of an empty object")
    meta, got = c.get(b, "empty")
    eq(got, b"", "empty object body")
    eq(meta.get("ContentLength"), 0, "empty object length")
    c.put(b, "empty", b"now not empty")
    eq(c.rget(b, "empty"), b"now not empty", "overwritten object body")
    # Keys with characters that need encoding.
    for key in ("a b/c+d=e&f", "unicod\u00e9/\u6587\u4ef6.txt", "x/./y/../z", "trailing/"):
        c.put(b, key, key.encode())
        eq(c.rget(b, key), key.encode(), "key %r put by aws-cli, read raw" % key)
    eq(c.get_err(b, "no/such/key"), "NoSuchKey", "get of a missing key")
    eq(c.head_status(b, "no/such/key"), 404, "head of a missing key")
    eq(c.get_err(c.tag + "-no-such-bucket", "k"), "NoSuchBucket", "get from a missing bucket")
    # The wire: error XML with code, and HEAD errors have no body.
    w = c.wire("GET", "/%s/no/such/key" % b)
    eq(w.status, 404, "GET missing key status")
    eq(w.error_code(), "NoSuchKey", "GET missing key XML code")
    check(b"<Key>no/such/key</Key>" in w.body or b"<Resource>" in w.body,
          "NoSuchKey XML names the key or resource: %r" % w.body[:300])
    w = c.wire("HEAD", "/%s/no/such/key" % b)
    eq(w.status, 404, "HEAD missing key status")
    c.aws.api("delete-object", bucket=b, key="docs/readme.txt")
    eq(c.head_status(b, "docs/readme.txt"), 404, "head after delete-object")
    # Deleting a missing key succeeds (204) in an unversioned bucket.
    c.aws.api("delete-object", bucket=b, key="docs/readme.txt")


def case_ranges(c):
    b = c.bucket("rng")
    body = bytes(range(256)) * 40  # 10240 bytes
    n = len(body)
    c.put(b, "r", body)
    for rng, lo, hi in (("bytes=0-0", 0, 0), ("bytes=2-5", 2, 5), ("bytes=100-", 100, n - 1),
                        ("bytes=-3", n - 3, n - 1), ("bytes=10000-20000", 10000, n - 1),
                        ("bytes=-99999", 0, n - 1)):
        meta, got = c.get(b, "r", range=rng)
        eq(got, body[lo:hi + 1], "body of %s" % rng)
        eq(meta.get("ContentRange"), "bytes %d-%d/%d" % (lo, hi, n), "Content-Range of %s" % rng)
        eq(meta.get("ContentLength"), hi - lo + 1, "Content-Length of %s" % rng)
    eq(c.get_err(b, "r", range="bytes=%d-" % n), "InvalidRange", "range starting at the size")
    eq(c.get_err(b, "r", range="bytes=20000-20010"), "InvalidRange", "range past the end")
    w = c.wire("GET", "/%s/r" % b, headers={"Range": "bytes=2-5"})
    eq(w.status, 206, "status of a satisfiable range")
    eq(w.body, body[2:6], "wire body of bytes=2-5")
    eq(w.header("content-range"), "bytes 2-5/%d" % n, "wire Content-Range")
    w = c.wire("GET", "/%s/r" % b, headers={"Range": "bytes=%d-" % (n + 5)})
    eq(w.status, 416, "status of an unsatisfiable range")
    eq(w.error_code(), "InvalidRange", "XML code of an unsatisfiable range")
    # Empty objects have no satisfiable byte range.
    c.put(b, "e", b"")
    w = c.wire("GET", "/%s/e" % b, headers={"Range": "bytes=0-"})
    eq(w.status, 416, "status of bytes=0- on an empty object")


def case_conditional(c):
    b = c.bucket("cond")
    body = b"conditional body"
    etag = c.put(b, "k", body)["ETag"]
    head = c.aws.api("head-object", bucket=b, key="k")
    lm = head["LastModified"]
    past = formatdate(time.time() - 86400, usegmt=True)
    future = formatdate(time.time() + 86400, usegmt=True)
    eq(c.get(b, "k", if_match=etag)[1], body, "If-Match with the ETag")
    eq(c.get_err(b, "k", if_match='"0123456789abcdef0123456789abcdef"'), "PreconditionFailed",
       "If-Match with another ETag")
    eq(c.get_err(b, "k", if_none_match=etag), "304", "If-None-Match with the ETag")
    eq(c.get(b, "k", if_none_match='"0123456789abcdef0123456789abcdef"')[1], body,
       "If-None-Match with another ETag")
    eq(c.get_err(b, "k", if_modified_since=future), "304", "If-Modified-Since in the future")
    eq(c.get(b, "k", if_modified_since=past)[1], body, "If-Modified-Since in the past")
    eq(c.get_err(b, "k", if_unmodified_since=past), "PreconditionFailed", "If-Unmodified-Since in the past")
    eq(c.get(b, "k", if_unmodified_since=future)[1], body, "If-Unmodified-Since in the future")
    check(lm, "LastModified present")
    # On the wire: statuses, 304 without a body, ETag on the 304.
    w = c.wire("GET", "/%s/k" % b, headers={"If-None-Match": etag})
    eq(w.status, 304, "wire If-None-Match status")
    eq(w.body, b"", "a 304 has no body")
    eq(w.header("etag"), etag, "a 304 carries the ETag")
    w = c.wire("GET", "/%s/k" % b, headers={"If-Match": '"nope"'})
    eq(w.status, 412, "wire If-Match mismatch status")
    eq(w.error_code(), "PreconditionFailed", "wire If-Match mismatch XML code")
    # RFC 7232 precedence as S3 documents it: If-Match true + If-Unmodified-
    # Since false -> 200; If-None-Match false + If-Modified-Since true -> 304.
    w = c.wire("GET", "/%s/k" % b, headers={"If-Match": etag, "If-Unmodified-Since": past})
    eq(w.status, 200, "If-Match true wins over If-Unmodified-Since false")
    w = c.wire("GET", "/%s/k" % b, headers={"If-None-Match": etag, "If-Modified-Since": past})
    eq(w.status, 304, "If-None-Match false wins over If-Modified-Since true")
    eq(c.head_status(b, "k", if_none_match=etag), 304, "head-object If-None-Match")
    eq(c.head_status(b, "k", if_match='"nope"'), 412, "head-object If-Match mismatch")


def case_copy(c):
    b = c.bucket("copy")
    b2 = c.bucket("copy2")
    body = b"copy me " * 1000
    etag = c.put(b, "src", body, content_type="application/x-src", metadata="a=1,b=2",
                 cache_control="no-cache")["ETag"]
    r = c.aws.api("copy-object", bucket=b2, key="dst-copy", copy_source="%s/src" % b)
    eq(r["CopyObjectResult"]["ETag"], etag, "COPY result ETag")
    meta, got = c.get(b2, "dst-copy")
    eq(got, body, "COPY body")
    eq(meta.get("ContentType"), "application/x-src", "COPY keeps Content-Type")
    eq(meta.get("Metadata"), {"a": "1", "b": "2"}, "COPY keeps metadata")
    eq(meta.get("CacheControl"), "no-cache", "COPY keeps Cache-Control")
    r = c.aws.api("copy-object", bucket=b, key="dst-replace", copy_source="%s/src" % b,
                  metadata_directive="REPLACE", content_type="text/x-new", metadata="c=3")
    eq(r["CopyObjectResult"]["ETag"], etag, "REPLACE result ETag")
    meta, got = c.get(b, "dst-replace")
    eq(got, body, "REPLACE body")
    eq(meta.get("ContentType"), "text/x-new", "REPLACE sets Content-Type")
    eq(meta.get("Metadata"), {"c": "3"}, "REPLACE sets metadata (old keys gone)")
    # COPY with a metadata argument ignores the argument.
    c.aws.api("copy-object", bucket=b, key="dst-copy2", copy_source="%s/src" % b,
              metadata_directive="COPY", metadata="ignored=1")
    eq(c.get(b, "dst-copy2")[0].get("Metadata"), {"a": "1", "b": "2"}, "COPY ignores new metadata")
    # Onto itself: only allowed with REPLACE.
    code = c.aws.api_err("copy-object", bucket=b, key="src", copy_source="%s/src" % b)
    eq(code, "InvalidRequest", "copy onto itself without REPLACE")
    c.aws.api("copy-object", bucket=b, key="src", copy_source="%s/src" % b,
              metadata_directive="REPLACE", metadata="fresh=yes", content_type="text/plain")
    meta, got = c.get(b, "src")
    eq((got, meta.get("Metadata"), meta.get("ContentType")), (body, {"fresh": "yes"}, "text/plain"),
       "copy onto itself with REPLACE")
    # Conditional copy and a missing source.
    code = c.aws.api_err("copy-object", bucket=b, key="x", copy_source="%s/src" % b,
                         copy_source_if_match='"0123456789abcdef0123456789abcdef"')
    eq(code, "PreconditionFailed", "copy-source-if-match mismatch")
    c.aws.api("copy-object", bucket=b, key="x", copy_source="%s/src" % b, copy_source_if_match=etag)
    eq(c.get(b, "x")[1], body, "copy-source-if-match match")
    code = c.aws.api_err("copy-object", bucket=b, key="y", copy_source="%s/missing" % b)
    eq(code, "NoSuchKey", "copy from a missing key")
    # A key that needs URL encoding in x-amz-copy-source.
    c.put(b, "sp ace/\u00fc+1", b"enc")
    c.aws.api("copy-object", bucket=b, key="enc-copy", copy_source="%s/sp ace/\u00fc+1" % b)
    eq(c.get(b, "enc-copy")[1], b"enc", "copy of a key with space, + and UTF-8")


def case_delete(c):
    b = c.bucket("del")
    keys = ["d/%02d" % i for i in range(6)]
    for k in keys:
        c.rput(b, k, k.encode())
    r = c.aws.api("delete-objects", bucket=b,
                  delete={"Objects": [{"Key": k} for k in keys[:3] + ["d/missing"]]})
    eq(sorted(d["Key"] for d in r.get("Deleted", [])), sorted(keys[:3] + ["d/missing"]),
       "delete-objects Deleted list (missing keys count as deleted)")
    eq(r.get("Errors", []), [], "delete-objects Errors")
    r = c.aws.api("delete-objects", bucket=b,
                  delete={"Objects": [{"Key": k} for k in keys[3:5]], "Quiet": True})
    eq(r.get("Deleted", []), [], "quiet delete-objects reports nothing")
    eq(r.get("Errors", []), [], "quiet delete-objects Errors")
    left = c.aws.api("list-objects-v2", bucket=b).get("Contents", [])
    eq([o["Key"] for o in left], keys[5:], "objects left after delete-objects")
    # Both aws-cli generations send DeleteObjects with their own integrity
    # header (Content-MD5 or x-amz-checksum-crc32); both were accepted above.


def _cflag(algo):
    """aws-cli's flag for an explicit checksum value (CRC32C is crc32-c)."""
    return "--checksum-" + {"CRC32C": "crc32-c"}.get(algo, algo.lower())


def case_checksums(c):
    b = c.bucket("sum")
    data = b"checksum payload \x00\xff" * 333
    want = checksums(data)
    for algo in ("CRC32", "CRC32C", "SHA1", "SHA256"):
        key = "c/" + algo
        r = c.aws("s3api", "put-object", "--bucket", b, "--key", key, "--body",
                  c.file("put.bin", data), "--checksum-algorithm", algo)
        if r.rc != 0 and "Missing Dependency" in r.err:
            # botocore computes CRC32C only with awscrt; send the value we
            # computed instead, which exercises the same server path.
            r = c.aws("s3api", "put-object", "--bucket", b, "--key", key, "--body",
                      c.file("put.bin", data), _cflag(algo), want[algo])
        check(r.rc == 0, "put-object --checksum-algorithm %s: %s" % (algo, r.err.strip()))
        r = r.json
        eq(r.get("Checksum" + algo), want[algo], "put-object %s checksum in the response" % algo)
        h = c.aws.api("head-object", bucket=b, key=key, checksum_mode="ENABLED")
        eq(h.get("Checksum" + algo), want[algo], "head-object --checksum-mode %s" % algo)
        meta, got = c.get(b, key, checksum_mode="ENABLED")
        eq(got, data, "body of the %s object" % algo)
        eq(meta.get("Checksum" + algo), want[algo], "get-object --checksum-mode %s" % algo)
    # Explicit checksum values: right is stored, wrong is BadDigest and
    # stores nothing.
    r = c.put(b, "c/explicit", data, checksum_sha256=want["SHA256"])
    eq(r.get("ChecksumSHA256"), want["SHA256"], "explicit right SHA256")
    bad = checksums(b"other")
    for algo in ("CRC32", "CRC32C", "SHA1", "SHA256"):
        r = c.aws("s3api", "put-object", "--bucket", b, "--key", "c/bad-" + algo,
                  "--body", c.file("bad.bin", data), _cflag(algo), bad[algo])
        check(r.rc != 0, "put-object with a wrong %s succeeded" % algo)
        eq(r.error_code(), "BadDigest", "wrong %s checksum (%s)" % (algo, r.err.strip()[-300:]))
        eq(c.head_status(b, "c/bad-" + algo), 404, "no object after a wrong %s" % algo)
    # Wrong Content-MD5.
    wrong_md5 = b64(hashlib.md5(b"something else").digest())
    r = c.aws("s3api", "put-object", "--bucket", b, "--key", "c/badmd5",
              "--body", c.file("bad.bin", data), "--content-md5", wrong_md5)
    check(r.rc != 0, "put-object with a wrong Content-MD5 succeeded")
    eq(r.error_code(), "BadDigest", "wrong Content-MD5")
    eq(c.head_status(b, "c/badmd5"), 404, "no object after a wrong Content-MD5")
    r = c.put(b, "c/goodmd5", data, content_md5=b64(hashlib.md5(data).digest()))
    eq(r.get("ETag"), qmd5(data), "right Content-MD5 accepted")
    # Raw: malformed Content-MD5 is InvalidDigest; a wrong one is BadDigest.
    w = c.wire("PUT", "/%s/c/raw" % b, body=data, headers={"Content-MD5": "not-base64!"})
    eq((w.status, w.error_code()), (400, "InvalidDigest"), "malformed Content-MD5")
    w = c.wire("PUT", "/%s/c/raw" % b, body=data, headers={"Content-MD5": wrong_md5})
    eq((w.status, w.error_code()), (400, "BadDigest"), "wrong Content-MD5 on the wire")
    eq(c.wire("HEAD", "/%s/c/raw" % b).status, 404, "no object after raw BadDigest")


def _raw_list(c, b, **q):
    """One ListObjects(V2) request over raw signed HTTP (aws-cli costs ~0.8 s
    a call; exhaustive paging makes dozens). Returns the parsed page."""
    import xml.etree.ElementTree as ET
    w = c.wire("GET", "/" + b, query=sorted((k.replace("_", "-"), str(v)) for k, v in q.items()))
    eq(w.status, 200, "ListObjects %r status (%s)" % (q, w.body[:200]))
    root = ET.fromstring(w.body)
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"

    def t(e, name):
        x = e.find(ns + name)
        return x.text if x is not None and x.text is not None else ("" if x is not None else None)
    return {
        "keys": [t(o, "Key") for o in root.findall(ns + "Contents")],
        "prefixes": [t(p, "Prefix") for p in root.findall(ns + "CommonPrefixes")],
        "truncated": t(root, "IsTruncated") == "true",
        "token": t(root, "NextContinuationToken"),
        "next_marker": t(root, "NextMarker"),
        "key_count": t(root, "KeyCount"),
        "max_keys": t(root, "MaxKeys"),
    }


def _list_all(c, b, max_keys, v2=True, **params):
    """Pages through a listing by hand; returns (keys, prefixes, pages)."""
    keys, prefixes, pages = [], [], 0
    cont = None
    for _ in range(200):
        q = dict(params, max_keys=max_keys)
        if v2:
            q["list_type"] = 2
            if cont:
                q["continuation_token"] = cont
        elif cont:
            q["marker"] = cont
        r = _raw_list(c, b, **q)
        pages += 1
        n = len(r["keys"]) + len(r["prefixes"])
        check(n <= max_keys, "page %d has %d entries, max-keys %d" % (pages, n, max_keys))
        eq(r["max_keys"], str(max_keys), "MaxKeys echoed")
        if v2:
            eq(r["key_count"], str(n), "KeyCount on page %d" % pages)
        keys += r["keys"]
        prefixes += r["prefixes"]
        if not r["truncated"]:
            if v2:
                check(not r["token"], "NextContinuationToken on the last page")
            return keys, prefixes, pages
        check(n > 0, "an empty truncated page")
        if v2:
            cont = r["token"]
            check(cont, "IsTruncated without NextContinuationToken")
        elif "delimiter" in params:
            # v1 sends NextMarker only with a delimiter.
            cont = r["next_marker"]
            check(cont, "v1 truncated page with a delimiter has no NextMarker")
        else:
            cont = r["next_marker"] or r["keys"][-1]
    raise AssertionError("listing did not finish in 200 pages")


def case_listing(c):
    b = c.bucket("list")
    keys = sorted(["a/1", "a/2", "a/b/3", "a/b/4", "b/5", "c", "d/e/f/6", "z9", "a-x", "a/c/7",
                   "sp ace/k", "\u00e9t\u00e9/k", "plus+sign"], key=lambda k: k.encode())
    for k in keys:
        c.rput(b, k, b"x")
    want_keys = ["a-x", "c", "plus+sign", "z9"]
    want_pre = ["a/", "b/", "d/", "sp ace/", "\u00e9t\u00e9/"]
    # Exhaustive paging on the wire, v2 and v1, with and without delimiters.
    for v2 in (True, False):
        api = "v2" if v2 else "v1"
        for mk in (1, 2, 5, 1000):
            got, pre, pages = _list_all(c, b, mk, v2)
            eq(got, keys, "%s keys with max-keys %d" % (api, mk))
            eq(pre, [], "%s no prefixes without a delimiter" % api)
            eq(pages, -(-len(keys) // mk), "%s page count with max-keys %d" % (api, mk))
            got, pre, _ = _list_all(c, b, mk, v2, delimiter="/")
            eq((got, pre), (want_keys, want_pre), "%s delimiter /, max-keys %d" % (api, mk))
        got, pre, _ = _list_all(c, b, 1, v2, prefix="a/", delimiter="/")
        eq((got, pre), (["a/1", "a/2"], ["a/b/", "a/c/"]), "%s prefix a/ delimiter /" % api)
        got, pre, _ = _list_all(c, b, 1, v2, delimiter="b")
        eq((got, pre), ([k for k in keys if "b" not in k], ["a/b", "b"]), "%s delimiter 'b'" % api)
        got, pre, _ = _list_all(c, b, 2, v2, prefix="a")
        eq(got, [k for k in keys if k.startswith("a")], "%s prefix a" % api)
    r = _raw_list(c, b, list_type=2, max_keys=0)
    eq((r["keys"], r["truncated"]), ([], False), "max-keys 0: an empty, untruncated page")
    r = _raw_list(c, b, list_type=2, max_keys=5000)
    eq((len(r["keys"]), r["max_keys"]), (len(keys), "1000"), "max-keys above 1000 is 1000")

    # The same through aws-cli (which sends encoding-type=url and decodes).
    r = c.aws.api("list-objects-v2", bucket=b, prefix="a/", delimiter="/", no_paginate=True)
    eq(([o["Key"] for o in r.get("Contents", [])], [p["Prefix"] for p in r.get("CommonPrefixes", [])],
        r.get("KeyCount")), (["a/1", "a/2"], ["a/b/", "a/c/"], 4), "aws list-objects-v2 prefix/delimiter")
    r = c.aws.api("list-objects-v2", bucket=b, max_keys=5, no_paginate=True)
    eq(([o["Key"] for o in r.get("Contents", [])], r.get("IsTruncated")), (keys[:5], True),
       "aws list-objects-v2 first page")
    r = c.aws.api("list-objects-v2", bucket=b, max_keys=100, no_paginate=True,
                  continuation_token=r["NextContinuationToken"])
    eq([o["Key"] for o in r.get("Contents", [])], keys[5:], "aws list-objects-v2 second page")
    r = c.aws.api("list-objects-v2", bucket=b, start_after="a/b/4", no_paginate=True)
    eq([o["Key"] for o in r.get("Contents", [])], [k for k in keys if k.encode() > b"a/b/4"], "start-after")
    r = c.aws.api("list-objects-v2", bucket=b, start_after=keys[-1], no_paginate=True)
    eq((r.get("Contents", []), r.get("KeyCount")), ([], 0), "start-after the last key")
    r = c.aws.api("list-objects", bucket=b, marker="c", no_paginate=True)
    eq([o["Key"] for o in r.get("Contents", [])], [k for k in keys if k.encode() > b"c"], "v1 marker")
    r = c.aws.api("list-objects-v2", bucket=b, prefix="z9", fetch_owner=True, no_paginate=True)
    o = r["Contents"][0]
    eq((o["Key"], o["Size"], o["ETag"], o.get("StorageClass")), ("z9", 1, qmd5(b"x"), "STANDARD"),
       "list entry fields")
    check("Owner" in o, "fetch-owner returns an Owner")
    # encoding-type url given by the caller: aws-cli leaves the keys encoded.
    for op in ("list-objects-v2", "list-objects"):
        r = c.aws.api(op, bucket=b, encoding_type="url", no_paginate=True)
        eq(r.get("EncodingType"), "url", "%s EncodingType echoed" % op)
        raw = [o["Key"] for o in r.get("Contents", [])]
        for k in raw:
            check(" " not in k and all(ord(ch) < 128 for ch in k),
                  "%s encoding-type url left %r unencoded" % (op, k))
        eq(sorted((urllib.parse.unquote_plus(k) for k in raw), key=lambda k: k.encode()), keys,
           "%s url-decoded keys" % op)
        r = c.aws.api(op, bucket=b, encoding_type="url", delimiter="/", no_paginate=True)
        pre = [urllib.parse.unquote_plus(x["Prefix"]) for x in r.get("CommonPrefixes", [])]
        eq(pre, want_pre, "%s url-decoded prefixes" % op)
    e = c.bucket("empty")
    r = c.aws.api("list-objects-v2", bucket=e, no_paginate=True)
    eq((r.get("Contents", []), r.get("KeyCount"), r.get("IsTruncated")), ([], 0, False), "empty bucket")
    eq(c.aws.api_err("list-objects-v2", bucket=c.tag + "-nope"), "NoSuchBucket", "list of a missing bucket")


def case_versioning(c):
    b = c.bucket("ver")
    eq(c.aws.api("get-bucket-versioning", bucket=b).get("Status"), None, "new bucket is unversioned")
    c.aws.api("put-bucket-versioning", bucket=b, versioning_configuration={"Status": "Enabled"})
    eq(c.aws.api("get-bucket-versioning", bucket=b).get("Status"), "Enabled", "versioning Enabled")
    bodies = [b"version one", b"version two!", b"version three!!"]
    vids = []
    for body in bodies:
        r = c.put(b, "k", body)
        check(r.get("VersionId") and r["VersionId"] != "null", "put in an Enabled bucket has a version id: %r" % r)
        vids.append(r["VersionId"])
    eq(len(set(vids)), 3, "three distinct version ids")
    eq(c.rget(b, "k"), bodies[2], "get without a version id returns the latest")
    for vid, body in zip(vids, bodies):
        eq(c.rget(b, "k", vid), body, "raw get by version id %s" % vid)
    meta, got = c.get(b, "k", version_id=vids[0])
    eq((got, meta.get("VersionId")), (bodies[0], vids[0]), "get-object --version-id")
    h = c.aws.api("head-object", bucket=b, key="k", version_id=vids[1])
    eq((h.get("ContentLength"), h.get("VersionId")), (len(bodies[1]), vids[1]), "head-object --version-id")
    code = c.get_err(b, "k", version_id="no-such-version-id")
    check(code in ("NoSuchVersion", "InvalidArgument"), "get of a bogus version id: %s" % code)
    r = c.aws.api("list-object-versions", bucket=b)
    vs = r.get("Versions", [])
    eq([v["VersionId"] for v in vs], vids[::-1], "list-object-versions newest first")
    eq([v["IsLatest"] for v in vs], [True, False, False], "IsLatest flags")
    eq([v["Size"] for v in vs], [len(x) for x in bodies[::-1]], "version sizes")
    # Delete without a version id: a delete marker.
    r = c.aws.api("delete-object", bucket=b, key="k")
    eq(r.get("DeleteMarker"), True, "delete in a versioned bucket makes a delete marker")
    marker = r.get("VersionId")
    check(marker and marker not in vids, "delete marker has its own version id")
    eq(c.get_err(b, "k"), "NoSuchKey", "get after a delete marker")
    eq(c.head_status(b, "k"), 404, "head after a delete marker")
    eq(c.rget(b, "k", vids[0]), bodies[0], "old versions readable behind a delete marker")
    r = c.aws.api("list-object-versions", bucket=b)
    eq([(d["VersionId"], d["IsLatest"]) for d in r.get("DeleteMarkers", [])], [(marker, True)],
       "list-object-versions shows the delete marker as latest")
    eq([v["IsLatest"] for v in r.get("Versions", [])], [False, False, False], "no version is latest")
    eq(c.aws.api("list-objects-v2", bucket=b).get("Contents", []), [], "a deleted key is not listed")
    # Deleting the delete marker brings the object back.
    r = c.aws.api("delete-object", bucket=b, key="k", version_id=marker)
    eq(r.get("DeleteMarker"), True, "deleting a delete marker says DeleteMarker")
    eq(c.rget(b, "k"), bodies[2], "object back after its delete marker is deleted")
    # Deleting a specific version removes it for good.
    r = c.aws.api("delete-object", bucket=b, key="k", version_id=vids[2])
    eq(r.get("VersionId"), vids[2], "delete by version id echoes it")
    eq(c.rget(b, "k"), bodies[1], "previous version becomes the latest")
    eq(c.get_err(b, "k", version_id=vids[2]), "NoSuchVersion", "a deleted version is gone")
    # Suspended: puts write the null version, replacing it each time.
    c.aws.api("put-bucket-versioning", bucket=b, versioning_configuration={"Status": "Suspended"})
    eq(c.aws.api("get-bucket-versioning", bucket=b).get("Status"), "Suspended", "versioning Suspended")
    c.rput(b, "k", b"null one")
    c.put(b, "k", b"null two")
    meta, got = c.get(b, "k")
    eq((got, meta.get("VersionId")), (b"null two", "null"), "latest is the null version")
    eq(c.rget(b, "k", "null"), b"null two", "get by version id null")
    r = c.aws.api("list-object-versions", bucket=b, prefix="k")
    vs = [(v["VersionId"], v["IsLatest"], v["Size"]) for v in r.get("Versions", [])]
    eq(vs, [("null", True, 8), (vids[1], False, len(bodies[1])), (vids[0], False, len(bodies[0]))],
       "versions after two suspended puts: one null version on top")
    r = c.aws.api("delete-object", bucket=b, key="k")
    eq((r.get("DeleteMarker"), r.get("VersionId")), (True, "null"),
       "delete in a suspended bucket makes a null delete marker")
    eq(c.rget(b, "k", vids[1]), bodies[1], "enabled-era versions survive")
    r = c.aws.api("list-object-versions", bucket=b, prefix="k")
    eq([v["VersionId"] for v in r.get("Versions", [])], vids[1::-1],
       "the null version was replaced by the null delete marker")
    # Version listing pagination.
    for i in range(3):
        c.rput(b, "p/%d" % i, b"x")
    c.aws.api("put-bucket-versioning", bucket=b, versioning_configuration={"Status": "Enabled"})
    for i in range(3):
        c.rput(b, "p/%d" % i, b"xy")
    seen = []
    km = vm = None
    for _ in range(20):
        p = dict(prefix="p/", max_keys=2, no_paginate=True)
        if km:
            p["key_marker"] = km
            if vm:
                p["version_id_marker"] = vm
        r = c.aws.api("list-object-versions", bucket=b, **p)
        page = [(v["Key"], v["VersionId"]) for v in r.get("Versions", [])]
        check(len(page) <= 2, "list-object-versions page over max-keys")
        seen += page
        if not r.get("IsTruncated"):
            break
        km, vm = r.get("NextKeyMarker"), r.get("NextVersionIdMarker")
        check(km, "truncated list-object-versions without NextKeyMarker")
    eq(len(seen), 6, "paged list-object-versions sees all 6 versions")
    eq(len(set(seen)), 6, "paged list-object-versions repeats nothing")


def case_multipart(c):
    b = c.bucket("mpu")
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail part"]
    up = c.aws.api("create-multipart-upload", bucket=b, key="big", content_type="application/x-mp",
                   metadata="m=1")
    uid = up["UploadId"]
    eq((up.get("Bucket"), up.get("Key")), (b, "big"), "create-multipart-upload echoes bucket/key")
    etags = []
    for i, p in enumerate(parts, 1):
        r = c.aws.api("upload-part", bucket=b, key="big", upload_id=uid, part_number=i,
                      body=c.file("part", p))
        eq(r.get("ETag"), qmd5(p), "upload-part %d ETag" % i)
        etags.append(r["ETag"])
    # Re-uploading a part number replaces it.
    r = c.aws.api("upload-part", bucket=b, key="big", upload_id=uid, part_number=3,
                  body=c.file("part", parts[2]))
    eq(r.get("ETag"), etags[2], "re-uploaded part ETag")
    r = c.aws.api("list-parts", bucket=b, key="big", upload_id=uid)
    eq([(p["PartNumber"], p["ETag"], p["Size"]) for p in r.get("Parts", [])],
       [(i + 1, etags[i], len(parts[i])) for i in range(3)], "list-parts")
    r = c.aws.api("list-parts", bucket=b, key="big", upload_id=uid, max_parts=1, no_paginate=True)
    eq(([p["PartNumber"] for p in r.get("Parts", [])], r.get("IsTruncated")), ([1], True),
       "list-parts max-parts 1")
    eq(r.get("NextPartNumberMarker"), 1, "list-parts NextPartNumberMarker")
    r = c.aws.api("list-multipart-uploads", bucket=b)
    eq([(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])], [("big", uid)], "list-multipart-uploads")
    eq(c.head_status(b, "big"), 404, "an incomplete upload is not an object")
    # Completion errors leave the upload in place.
    code = c.aws.api_err("complete-multipart-upload", bucket=b, key="big", upload_id=uid,
                         multipart_upload={"Parts": [{"PartNumber": 1, "ETag": etags[0]},
                                                     {"PartNumber": 2, "ETag": qmd5(b"wrong")}]})
    eq(code, "InvalidPart", "complete with a wrong part ETag")
    code = c.aws.api_err("complete-multipart-upload", bucket=b, key="big", upload_id=uid,
                         multipart_upload={"Parts": [{"PartNumber": 2, "ETag": etags[1]},
                                                     {"PartNumber": 1, "ETag": etags[0]}]})
    eq(code, "InvalidPartOrder", "complete with parts out of order")
    r = c.aws.api("complete-multipart-upload", bucket=b, key="big", upload_id=uid,
                  multipart_upload={"Parts": [{"PartNumber": i + 1, "ETag": etags[i]} for i in range(3)]})
    eq(r.get("ETag"), multipart_etag(parts), "complete-multipart-upload ETag (md5 of md5s, -3)")
    meta, got = c.get(b, "big")
    check(got == b"".join(parts), "multipart object body differs (len %d)" % len(got))
    eq(meta.get("ETag"), multipart_etag(parts), "get ETag of the multipart object")
    eq(meta.get("ContentType"), "application/x-mp", "multipart object keeps Content-Type")
    eq(meta.get("Metadata"), {"m": "1"}, "multipart object keeps metadata")
    meta, got = c.get(b, "big", range="bytes=%d-%d" % (5 * MiB - 3, 5 * MiB + 2))
    eq(got, parts[0][-3:] + parts[1][:3], "range across a part boundary")
    eq(c.aws.api("list-multipart-uploads", bucket=b).get("Uploads", []), [], "no uploads after complete")
    eq(c.aws.api_err("list-parts", bucket=b, key="big", upload_id=uid), "NoSuchUpload",
       "list-parts of a completed upload")
    # A non-last part under 5 MiB is EntityTooSmall.
    uid2 = c.aws.api("create-multipart-upload", bucket=b, key="small")["UploadId"]
    e1 = c.aws.api("upload-part", bucket=b, key="small", upload_id=uid2, part_number=1,
                   body=c.file("part", b"tiny"))["ETag"]
    e2 = c.aws.api("upload-part", bucket=b, key="small", upload_id=uid2, part_number=2,
                   body=c.file("part", b"tiny2"))["ETag"]
    code = c.aws.api_err("complete-multipart-upload", bucket=b, key="small", upload_id=uid2,
                         multipart_upload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                                     {"PartNumber": 2, "ETag": e2}]})
    eq(code, "EntityTooSmall", "complete with a small non-last part")
    # Abort.
    c.aws.api("abort-multipart-upload", bucket=b, key="small", upload_id=uid2)
    eq(c.aws.api("list-multipart-uploads", bucket=b).get("Uploads", []), [], "no uploads after abort")
    code = c.aws.api_err("upload-part", bucket=b, key="small", upload_id=uid2, part_number=3,
                         body=c.file("part", b"late"))
    eq(code, "NoSuchUpload", "upload-part after abort")
    eq(c.head_status(b, "small"), 404, "aborted upload made no object")
    # A single-part multipart upload of 0 bytes is allowed.
    uid3 = c.aws.api("create-multipart-upload", bucket=b, key="zero")["UploadId"]
    e = c.aws.api("upload-part", bucket=b, key="zero", upload_id=uid3, part_number=1,
                  body=c.file("part", b""))["ETag"]
    r = c.aws.api("complete-multipart-upload", bucket=b, key="zero", upload_id=uid3,
                  multipart_upload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    eq(r.get("ETag"), multipart_etag([b""]), "ETag of a one-part empty multipart upload")


def case_presign(c):
    b = c.bucket("pre")
    body = b"presigned body"
    c.put(b, "p/obj.txt", body)

    def curl(url):
        r = subprocess.run(["curl", "-s", "-o", os.path.join(c.dir, "curl.out"), "-w", "%{http_code}",
                            "--max-time", "20", url], capture_output=True, text=True, timeout=30)
        with open(os.path.join(c.dir, "curl.out"), "rb") as f:
            return int(r.stdout or 0), f.read()

    url = c.aws.ok("s3", "presign", "s3://%s/p/obj.txt" % b, "--expires-in", "300").out.strip()
    check("X-Amz-Signature=" in url, "presign made a SigV4 URL: %s" % url)
    status, got = curl(url)
    eq((status, got), (200, body), "GET of a presigned URL")
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    status, got = curl(tampered[:len(url)])
    eq(status, 403, "presigned URL with a tampered signature")
    check(b"SignatureDoesNotMatch" in got, "tampered presign error code: %r" % got[:200])
    other = url.replace("/p/obj.txt", "/p/other.txt")
    eq(curl(other)[0], 403, "presigned URL used for another key")
    url = c.aws.ok("s3", "presign", "s3://%s/p/obj.txt" % b, "--expires-in", "1").out.strip()
    time.sleep(2.2)
    status, got = curl(url)
    eq(status, 403, "expired presigned URL")
    check(b"AccessDenied" in got and b"expired" in got.lower(), "expired presign error: %r" % got[:300])


CASES = [("objects", case_objects), ("ranges", case_ranges), ("conditional", case_conditional),
         ("copy", case_copy), ("delete", case_delete), ("checksums", case_checksums),
         ("listing", case_listing), ("versioning", case_versioning), ("multipart", case_multipart),
         ("presign", case_presign)]
V2_CORE = {"objects", "checksums", "multipart", "presign"}


def main(cli=None):
    """cli: "v1" (aws-cli 1.45, every case) or "v2" (aws-cli 2.9, the V2_CORE
    cases unless S3_API_V2=full); s3_s3api_v2.py runs the latter."""
    cli = cli or "v1"
    only = set(filter(None, os.environ.get("S3_API_ONLY", "").split(",")))
    full = os.environ.get("S3_API_V2", "core") == "full"
    failures = []
    with SiltS3() as s:
        binary = AWS_V1 if cli == "v1" else AWS_V2
        # aws-cli 1 presigns with SigV2 unless told s3v4; silt speaks SigV4 only.
        aws = Aws(s.endpoint, binary, config_lines=["s3 =", "    signature_version = s3v4"])
        ver = aws("--version")
        ver = (ver.out.strip() or ver.err.strip() or binary).split()[0]
        log("%s: %s" % (cli, ver))
        for name, fn in CASES:
            if only and name not in only:
                continue
            if cli == "v2" and not full and name not in V2_CORE:
                continue
            t0 = time.monotonic()
            try:
                fn(Case(s, aws, cli))
                log("  ok    %-12s %5.1fs" % (name, time.monotonic() - t0))
            except AssertionError as e:
                # Keep going so one run reports every broken area.
                log("  FAIL  %-12s %5.1fs  %s" % (name, time.monotonic() - t0, e))
                failures.append("%s/%s: %s" % (cli, name, e))
    check(not failures, "%d case(s) failed:\n  %s" % (len(failures), "\n  ".join(failures)))


if __name__ == "__main__":
    run_test(main)
