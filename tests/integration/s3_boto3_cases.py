"""The boto3 flows, shared by s3_boto3.py (boto3 1.43 on the `python3` first
on PATH) and s3_boto3_debian.py (Debian's boto3 1.26 on /usr/bin/python3).

What is asserted, against one silt server:
  - create_bucket / list_buckets / head_bucket / delete_bucket;
  - a PUT from an empty file, then PUTs on the same keep-alive connection,
    each done in under 3 s (Expect: 100-continue handling);
  - put_object from bytes with ContentType and Metadata, get_object and
    head_object return them, ETag = quoted MD5; get of a missing key raises
    NoSuchKey (404);
  - upload_fileobj from a non-seekable stream; put_object with ChecksumAlgorithm
    CRC32 / SHA256, the checksum returned with ChecksumMode ENABLED;
  - range get (206, Content-Range), conditional get (304 / 412);
  - list_objects_v2 through the paginator with PageSize 3, with Delimiter;
  - copy_object, delete_objects (Deleted list);
  - upload_file / download_file through TransferConfig with a 5 MiB
    threshold (a multipart upload, ETag "-N") and MD5 of the download;
  - the low-level multipart API, list_multipart_uploads, abort;
  - versioning: two versions of one key, get by VersionId, delete marker;
  - generate_presigned_url (SigV4) fetched with urllib: 200 and the body;
    a presigned PUT; an expired URL is 403.
"""

import hashlib
import io
import os
import time
import urllib.error
import urllib.request

import boto3
import botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from s3_harness import (REGION, ROOT_PASSWORD, ROOT_USER, SiltS3, check, eq, log,
                        multipart_etag, tmpdir)

MiB = 1 << 20


def client(endpoint, access=ROOT_USER, secret=ROOT_PASSWORD, read_timeout=20):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access,
                        aws_secret_access_key=secret, region_name=REGION,
                        config=Config(signature_version="s3v4", retries={"max_attempts": 1},
                                      read_timeout=read_timeout, connect_timeout=5,
                                      s3={"addressing_style": "path"}))


def err(fn, *a, **kw):
    """Calls fn, which must raise ClientError; returns (status, code)."""
    try:
        fn(*a, **kw)
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
    raise AssertionError("%s succeeded, want an error" % getattr(fn, "__name__", fn))


class Unseekable(io.RawIOBase):
    """A read-only stream that cannot seek or tell its length."""

    def __init__(self, data):
        self._b = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, buf):
        d = self._b.read(min(len(buf), 7000))
        buf[:len(d)] = d
        return len(d)


def fetch(url, method="GET", data=None):
    req = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def run(tag):
    log("boto3 %s, botocore %s" % (boto3.__version__, botocore.__version__))
    work = tmpdir("silt-s3it-boto-")
    with SiltS3() as s:
        c = client(s.endpoint)

        log("buckets")
        b = "boto-%s" % tag
        c.create_bucket(Bucket=b)
        c.create_bucket(Bucket=b + "-gone")
        names = sorted(x["Name"] for x in c.list_buckets()["Buckets"])
        eq(names, sorted([b, b + "-gone"]), "list_buckets")
        c.head_bucket(Bucket=b)
        c.delete_bucket(Bucket=b + "-gone")
        eq(err(c.head_bucket, Bucket=b + "-gone")[0], 404, "head_bucket after delete")

        log("put/get/head")
        body = b"boto3 body\n" * 50
        r = c.put_object(Bucket=b, Key="o/one", Body=body, ContentType="text/x-boto",
                         Metadata={"k1": "v1", "Mixed-Case": "V2"})
        eq(r["ETag"], '"%s"' % hashlib.md5(body).hexdigest(), "put_object ETag")
        g = c.get_object(Bucket=b, Key="o/one")
        eq(g["Body"].read(), body, "get_object body")
        eq((g["ContentType"], g["Metadata"]), ("text/x-boto", {"k1": "v1", "mixed-case": "V2"}),
           "get_object type and metadata")
        h = c.head_object(Bucket=b, Key="o/one")
        eq((h["ContentLength"], h["ETag"]), (len(body), r["ETag"]), "head_object")
        eq(err(c.get_object, Bucket=b, Key="o/missing"), (404, "NoSuchKey"), "get of a missing key")

        log("a 0-byte file, then another PUT on the same connection")
        # botocore sends Expect: 100-continue for file bodies, also empty
        # ones, and misreads the next response on the keep-alive connection
        # when the 0-byte PUT is answered without a 100 Continue: the next
        # call then waits out its read timeout.
        quick = client(s.endpoint, read_timeout=4)
        late = []
        for i, data in enumerate((b"", b"after empty", b"", b"again")):
            p = os.path.join(work, "seq%d" % i)
            with open(p, "wb") as f:
                f.write(data)
            t0 = time.monotonic()
            with open(p, "rb") as f:
                quick.put_object(Bucket=b, Key="seq/%d" % i, Body=f)
            dt = time.monotonic() - t0
            if dt >= 3:
                # Reported at the end so the other flows still run.
                late.append("put_object of a %d-byte file took %.1fs (after a 0-byte PUT on the same "
                            "connection: a response botocore could not read)" % (len(data), dt))
        for i, data in enumerate((b"", b"after empty", b"", b"again")):
            eq(c.get_object(Bucket=b, Key="seq/%d" % i)["Body"].read(), data, "seq/%d body" % i)

        log("stream body and checksums")
        data = os.urandom(100000)
        # put_object needs a seekable body (botocore hashes it first);
        # upload_fileobj reads a non-seekable one in chunks.
        c.upload_fileobj(Unseekable(data), b, "o/stream")
        eq(c.get_object(Bucket=b, Key="o/stream")["Body"].read(), data, "stream body round trip")
        import base64
        import zlib
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
        r = c.put_object(Bucket=b, Key="o/crc", Body=data, ChecksumAlgorithm="CRC32")
        eq(r.get("ChecksumCRC32"), crc, "put_object CRC32 in the response")
        h = c.head_object(Bucket=b, Key="o/crc", ChecksumMode="ENABLED")
        eq(h.get("ChecksumCRC32"), crc, "head_object ChecksumMode CRC32")
        c.put_object(Bucket=b, Key="o/sha", Body=data, ChecksumAlgorithm="SHA256")
        g = c.get_object(Bucket=b, Key="o/sha", ChecksumMode="ENABLED")
        eq((g["Body"].read() == data, g.get("ChecksumSHA256")), (True, sha), "get_object SHA256")
        st, code = err(c.put_object, Bucket=b, Key="o/bad", Body=data,
                       ChecksumSHA256=base64.b64encode(hashlib.sha256(b"x").digest()).decode())
        eq(code, "BadDigest", "wrong SHA256 checksum")
        eq(err(c.head_object, Bucket=b, Key="o/bad")[0], 404, "no object after BadDigest")

        log("range and conditional")
        g = c.get_object(Bucket=b, Key="o/one", Range="bytes=5-9")
        eq((g["ResponseMetadata"]["HTTPStatusCode"], g["Body"].read(), g["ContentRange"]),
           (206, body[5:10], "bytes 5-9/%d" % len(body)), "range get")
        eq(err(c.get_object, Bucket=b, Key="o/one", Range="bytes=99999-")[0], 416, "range past the end")
        etag = c.head_object(Bucket=b, Key="o/one")["ETag"]
        eq(err(c.get_object, Bucket=b, Key="o/one", IfNoneMatch=etag)[0], 304, "If-None-Match")
        eq(err(c.get_object, Bucket=b, Key="o/one", IfMatch='"abc"'), (412, "PreconditionFailed"), "If-Match")

        log("list_objects_v2 paginator")
        keys = sorted("l/%s/%02d" % (d, i) for d in ("x", "y") for i in range(5))
        for k in keys:
            c.put_object(Bucket=b, Key=k, Body=k.encode())
        pag = c.get_paginator("list_objects_v2")
        pages = list(pag.paginate(Bucket=b, Prefix="l/", PaginationConfig={"PageSize": 3}))
        got = [o["Key"] for p in pages for o in p.get("Contents", [])]
        eq(got, keys, "paginated keys")
        eq(len(pages), 4, "10 keys in pages of 3")
        pages = list(pag.paginate(Bucket=b, Prefix="l/", Delimiter="/", PaginationConfig={"PageSize": 1}))
        eq([p["Prefix"] for pg in pages for p in pg.get("CommonPrefixes", [])], ["l/x/", "l/y/"],
           "paginated common prefixes")

        log("copy and delete_objects")
        r = c.copy_object(Bucket=b, Key="o/copy", CopySource={"Bucket": b, "Key": "o/one"})
        eq(r["CopyObjectResult"]["ETag"], etag, "copy_object ETag")
        eq(c.get_object(Bucket=b, Key="o/copy")["Metadata"], {"k1": "v1", "mixed-case": "V2"},
           "copy keeps metadata")
        r = c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in keys]})
        eq(sorted(d["Key"] for d in r.get("Deleted", [])), keys, "delete_objects Deleted")
        eq(c.list_objects_v2(Bucket=b, Prefix="l/").get("KeyCount"), 0, "keys gone after delete_objects")

        log("upload_file / download_file, multipart through TransferConfig")
        src = os.path.join(work, "src.bin")
        parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(MiB + 17)]
        with open(src, "wb") as f:
            for p in parts:
                f.write(p)
        cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=3)
        c.upload_file(src, b, "big/file.bin", Config=cfg)
        eq(c.head_object(Bucket=b, Key="big/file.bin")["ETag"], multipart_etag(parts),
           "upload_file made a 3-part upload")
        dst = os.path.join(work, "dst.bin")
        c.download_file(b, "big/file.bin", dst, Config=cfg)
        with open(dst, "rb") as f:
            eq(hashlib.md5(f.read()).hexdigest(), hashlib.md5(b"".join(parts)).hexdigest(),
               "download_file MD5")

        log("low-level multipart and abort")
        up = c.create_multipart_upload(Bucket=b, Key="mp/k")
        e1 = c.upload_part(Bucket=b, Key="mp/k", UploadId=up["UploadId"], PartNumber=1, Body=parts[0])["ETag"]
        e2 = c.upload_part(Bucket=b, Key="mp/k", UploadId=up["UploadId"], PartNumber=2, Body=b"end")["ETag"]
        ups = c.list_multipart_uploads(Bucket=b).get("Uploads", [])
        eq([u["UploadId"] for u in ups], [up["UploadId"]], "list_multipart_uploads")
        r = c.complete_multipart_upload(Bucket=b, Key="mp/k", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                                                   {"PartNumber": 2, "ETag": e2}]})
        eq(r["ETag"], multipart_etag([parts[0], b"end"]), "complete ETag")
        up = c.create_multipart_upload(Bucket=b, Key="mp/aborted")
        c.upload_part(Bucket=b, Key="mp/aborted", UploadId=up["UploadId"], PartNumber=1, Body=b"x")
        c.abort_multipart_upload(Bucket=b, Key="mp/aborted", UploadId=up["UploadId"])
        eq(c.list_multipart_uploads(Bucket=b).get("Uploads", []), [], "no uploads after abort")
        eq(err(c.head_object, Bucket=b, Key="mp/aborted")[0], 404, "aborted upload made no object")

        log("versioning")
        vb = b + "-ver"
        c.create_bucket(Bucket=vb)
        c.put_bucket_versioning(Bucket=vb, VersioningConfiguration={"Status": "Enabled"})
        v1 = c.put_object(Bucket=vb, Key="k", Body=b"one")["VersionId"]
        v2 = c.put_object(Bucket=vb, Key="k", Body=b"two")["VersionId"]
        check(v1 != v2, "two versions have distinct ids")
        eq(c.get_object(Bucket=vb, Key="k", VersionId=v1)["Body"].read(), b"one", "get by VersionId")
        r = c.delete_object(Bucket=vb, Key="k")
        eq(r.get("DeleteMarker"), True, "delete makes a delete marker")
        eq(err(c.get_object, Bucket=vb, Key="k")[0], 404, "get after the delete marker")
        vs = c.list_object_versions(Bucket=vb)
        eq(sorted(v["VersionId"] for v in vs.get("Versions", [])), sorted([v1, v2]), "list_object_versions")
        eq(len(vs.get("DeleteMarkers", [])), 1, "one delete marker")

        log("presigned URLs")
        url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "o/one"}, ExpiresIn=300)
        check("X-Amz-Signature" in url, "a SigV4 presigned URL: %s" % url)
        eq(fetch(url), (200, body), "presigned GET")
        url = c.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "o/presigned-put"},
                                       ExpiresIn=300)
        eq(fetch(url, "PUT", b"put via presign")[0], 200, "presigned PUT")
        eq(c.get_object(Bucket=b, Key="o/presigned-put")["Body"].read(), b"put via presign",
           "object written by a presigned PUT")
        url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "o/one"}, ExpiresIn=1)
        time.sleep(2.2)
        eq(fetch(url)[0], 403, "expired presigned GET")
        check(not late, "; ".join(late))
