#!/usr/bin/env python3
"""Authentication and ownership with boto3 (1.43, the `python3` on PATH):
  - a wrong secret is 403 SignatureDoesNotMatch and stores nothing;
  - an unknown access key is 403 InvalidAccessKeyId;
  - unsigned requests are 403 AccessDenied;
  - a request signed 20 minutes ago is 403 RequestTimeTooSkewed;
  - a user added with `silt user add` while the server runs works within a
    few seconds, lists only its own buckets, gets AccessDenied for every
    read, write, list and delete on the root user's bucket (and the root's
    objects are untouched), and cannot create a bucket under a name the root
    owns (BucketAlreadyExists); the root does not see the user's bucket;
  - `silt user delete` is refused while the user owns a bucket; after it
    the user's key is InvalidAccessKeyId;
  - root credentials from SILT_ROOT_USER / SILT_ROOT_PASSWORD replace the
    defaults; a password under 8 characters is not accepted.
Run alone: tests/integration/s3_auth.py
"""
import datetime
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s3_harness import SILT_BIN, SiltS3, check, eq, http, log, run_test, wait_until  # noqa: E402

from botocore.exceptions import ClientError  # noqa: E402

from s3_boto3_cases import client  # noqa: E402


def err(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
    raise AssertionError("%s(%r) succeeded, want an error" % (fn.__name__, kw))


def main():
    with SiltS3() as s:
        root = client(s.endpoint)
        root.create_bucket(Bucket="root-bucket")
        root.put_object(Bucket="root-bucket", Key="secret.txt", Body=b"root data")

        log("wrong secret, unknown key, unsigned, skewed clock")
        bad = client(s.endpoint, secret="not-the-secret")
        eq(err(bad.put_object, Bucket="root-bucket", Key="forged", Body=b"x"), (403, "SignatureDoesNotMatch"),
           "PUT with a wrong secret")
        eq(err(bad.list_buckets), (403, "SignatureDoesNotMatch"), "ListBuckets with a wrong secret")
        eq(err(root.head_object, Bucket="root-bucket", Key="forged")[0], 404, "no object after a bad signature")
        unknown = client(s.endpoint, access="nobody-here", secret="whatever-secret")
        eq(err(unknown.get_object, Bucket="root-bucket", Key="secret.txt"), (403, "InvalidAccessKeyId"),
           "GET with an unknown access key")
        w = http(s.port, "GET", "/root-bucket/secret.txt", signed=False)
        eq((w.status, w.error_code()), (403, "AccessDenied"), "unsigned GET")
        w = http(s.port, "PUT", "/root-bucket/anon", body=b"x", signed=False)
        eq(w.status, 403, "unsigned PUT")
        eq(err(root.head_object, Bucket="root-bucket", Key="anon")[0], 404, "no object after an unsigned PUT")
        past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
        w = http(s.port, "GET", "/root-bucket/secret.txt", when=past)
        eq((w.status, w.error_code()), (403, "RequestTimeTooSkewed"), "request signed 20 minutes ago")

        log("a second user added while the server runs")
        s.user_add("alice-key", "alice-secret-1")
        alice = client(s.endpoint, access="alice-key", secret="alice-secret-1")
        buckets = wait_until(lambda: alice.list_buckets(), 6, "the new user to be accepted (documented: 2 s)")
        eq(buckets.get("Buckets", []), [], "a new user sees no buckets")
        eq(err(alice.get_object, Bucket="root-bucket", Key="secret.txt"), (403, "AccessDenied"),
           "user GET on root's bucket")
        eq(err(alice.head_object, Bucket="root-bucket", Key="secret.txt")[0], 403, "user HEAD on root's object")
        eq(err(alice.list_objects_v2, Bucket="root-bucket"), (403, "AccessDenied"), "user list of root's bucket")
        eq(err(alice.head_bucket, Bucket="root-bucket")[0], 403, "user head-bucket on root's bucket")
        eq(err(alice.put_object, Bucket="root-bucket", Key="intruder", Body=b"x"), (403, "AccessDenied"),
           "user PUT into root's bucket")
        eq(err(alice.delete_object, Bucket="root-bucket", Key="secret.txt"), (403, "AccessDenied"),
           "user DELETE in root's bucket")
        eq(err(alice.delete_bucket, Bucket="root-bucket"), (403, "AccessDenied"), "user delete of root's bucket")
        eq(err(alice.copy_object, Bucket="root-bucket", Key="c", CopySource="root-bucket/secret.txt")[0], 403,
           "user copy inside root's bucket")
        eq(err(alice.create_bucket, Bucket="root-bucket"), (409, "BucketAlreadyExists"),
           "user create of a name the root owns")
        alice.create_bucket(Bucket="alice-bucket")
        alice.put_object(Bucket="alice-bucket", Key="mine", Body=b"alice data")
        eq([b["Name"] for b in alice.list_buckets()["Buckets"]], ["alice-bucket"], "the user lists only its bucket")
        eq([b["Name"] for b in root.list_buckets()["Buckets"]], ["root-bucket"], "the root lists only its bucket")
        # Copying from the root's bucket into the user's own is a read of the root's data.
        eq(err(alice.copy_object, Bucket="alice-bucket", Key="stolen", CopySource="root-bucket/secret.txt")[0],
           403, "user copy from root's bucket")
        eq(err(alice.head_object, Bucket="alice-bucket", Key="stolen")[0], 404, "nothing copied")
        eq(root.get_object(Bucket="root-bucket", Key="secret.txt")["Body"].read(), b"root data",
           "root's object untouched")
        eq(err(root.head_object, Bucket="root-bucket", Key="intruder")[0], 404, "no intruder object")
        eq(alice.get_object(Bucket="alice-bucket", Key="mine")["Body"].read(), b"alice data",
           "the user reads its own object")

        log("silt user delete")
        argv = [SILT_BIN, "user", "--data-dir", s.data_dir, "delete", "alice-key"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        check(r.returncode != 0, "silt user delete of a user who owns a bucket succeeded")
        alice.delete_object(Bucket="alice-bucket", Key="mine")
        alice.delete_bucket(Bucket="alice-bucket")
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        eq(r.returncode, 0, "silt user delete exit status (%s)" % r.stderr.strip())

        def gone():
            try:
                alice.list_buckets()
                return False
            except ClientError as e:
                return e.response["Error"]["Code"] == "InvalidAccessKeyId"
        wait_until(gone, 6, "the deleted user's key to be refused")

    log("root credentials from the environment")
    with SiltS3(env={"SILT_ROOT_USER": "envroot", "SILT_ROOT_PASSWORD": "env-password-9"}) as s:
        c = client(s.endpoint, access="envroot", secret="env-password-9")
        c.create_bucket(Bucket="env-bucket")
        eq([b["Name"] for b in c.list_buckets()["Buckets"]], ["env-bucket"], "env root lists its bucket")
        eq(err(client(s.endpoint).list_buckets), (403, "InvalidAccessKeyId"),
           "the default credentials no longer work")

    log("a short root password is refused")
    s = SiltS3(env={"SILT_ROOT_USER": "shortpw", "SILT_ROOT_PASSWORD": "short"})
    try:
        s.start()
        started = True
    except AssertionError:
        started = False
    if started:
        c = client(s.endpoint, access="shortpw", secret="short")
        check(err(c.list_buckets)[0] == 403, "a 5-character root password was accepted")
        s.kill9()
    else:
        log("  the server refused to start (ok)")
        check(s.proc.returncode != 0, "refused start exits non-zero")


run_test(main)
