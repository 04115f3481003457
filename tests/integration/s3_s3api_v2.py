#!/usr/bin/env python3
"""The s3_s3api.py cases with Debian's aws-cli 2.9 (/usr/bin/aws, botocore
1.29, which sends Content-MD5 rather than CRC32): objects,
checksums, multipart and presign by default, every case with
S3_API_V2=full. Run alone: tests/integration/s3_s3api_v2.py"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3_s3api  # noqa: E402
from s3_harness import run_test  # noqa: E402

run_test(lambda: s3_s3api.main("v2"))
