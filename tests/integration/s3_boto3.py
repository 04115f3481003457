#!/usr/bin/env python3
"""boto3 1.43 (the `python3` first on PATH, which sends CRC32 checksums)
against silt: the flows listed in s3_boto3_cases.py.
Run alone: tests/integration/s3_boto3.py"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s3_harness import run_test  # noqa: E402


def main():
    import s3_boto3_cases
    s3_boto3_cases.run("new")


run_test(main)
