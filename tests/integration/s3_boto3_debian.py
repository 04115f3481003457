#!/usr/bin/python3
"""Debian's boto3 1.26 / botocore 1.29 (apt python3-boto3, for
/usr/bin/python3) against silt: the flows listed in s3_boto3_cases.py.
BOTO_DISABLE_CRT=true keeps botocore's own signer (awscrt refuses some
presign expiries). Run alone: tests/integration/s3_boto3_debian.py"""
import os
import sys

os.environ["BOTO_DISABLE_CRT"] = "true"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s3_harness import run_test  # noqa: E402


def main():
    import s3_boto3_cases
    s3_boto3_cases.run("deb")


run_test(main)
