"""Drives duckbank's S3 face with boto3, as a user would (tests/api/s3_api.rs runs it).

Usage: s3_client.py ENDPOINT ACCESS_KEY SECRET BUCKET WORKDIR
Exits non-zero with a message on the first thing that does not work.
"""

import hashlib
import os
import sys
import urllib.error
import urllib.request

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config


def fetch(req):
    """The body of a plain HTTP request, or an AssertionError with the server's answer."""
    try:
        with urllib.request.urlopen(req) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{req.get_method()} {req.full_url}: {e.code} {e.read()!r}")


def main():
    endpoint, access_key, secret, bucket, workdir = sys.argv[1:6]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
        ),
    )

    # PutObject with the SDK's defaults (a trailing CRC checksum, aws-chunked when it wants).
    body = b"hello from boto3\n" * 100
    put = s3.put_object(Bucket=bucket, Key="boto/hello.txt", Body=body, ContentType="text/plain")
    md5 = hashlib.md5(body).hexdigest()
    assert put["ETag"] == f'"{md5}"', put["ETag"]
    got = s3.get_object(Bucket=bucket, Key="boto/hello.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain", got["ContentType"]
    head = s3.head_object(Bucket=bucket, Key="boto/hello.txt")
    assert head["ContentLength"] == len(body)
    ranged = s3.get_object(Bucket=bucket, Key="boto/hello.txt", Range="bytes=6-9")
    assert ranged["Body"].read() == body[6:10]

    # Listing: 23 keys in pages of 5, every key exactly once; a delimiter groups.
    keys = [f"list/{i:03d}" for i in range(20)] + ["list/sub/a", "list/sub/b", "list/zz/c"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    seen = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix="list/", PaginationConfig={"PageSize": 5}
    ):
        seen += [o["Key"] for o in page.get("Contents", [])]
    assert seen == sorted(keys), seen
    grouped = s3.list_objects_v2(Bucket=bucket, Prefix="list/", Delimiter="/")
    prefixes = [p["Prefix"] for p in grouped.get("CommonPrefixes", [])]
    assert prefixes == ["list/sub/", "list/zz/"], prefixes
    assert len(grouped["Contents"]) == 20

    # Multipart through the transfer manager: 12 MiB in 5 MiB parts, and back.
    src = os.path.join(workdir, "big.bin")
    data = os.urandom(12 * 1024 * 1024)
    with open(src, "wb") as f:
        f.write(data)
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(src, bucket, "big/file.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="big/file.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-3"'), head["ETag"]
    dst = os.path.join(workdir, "big.out")
    s3.download_file(bucket, "big/file.bin", dst, Config=config)
    with open(dst, "rb") as f:
        assert f.read() == data

    # CopyObject, then DeleteObjects on a batch.
    s3.copy_object(Bucket=bucket, Key="boto/copy.txt", CopySource={"Bucket": bucket, "Key": "boto/hello.txt"})
    assert s3.get_object(Bucket=bucket, Key="boto/copy.txt")["Body"].read() == body
    deleted = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[:10]] + [{"Key": "absent"}]}
    )
    assert len(deleted["Deleted"]) == 11, deleted
    left = s3.list_objects_v2(Bucket=bucket, Prefix="list/")["KeyCount"]
    assert left == len(keys) - 10, left

    # SDK-presigned URLs (SigV4 query form), used without the SDK.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "boto/hello.txt"}, ExpiresIn=300)
    assert fetch(urllib.request.Request(url)) == body
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "boto/presigned.txt"}, ExpiresIn=300)
    fetch(urllib.request.Request(url, data=b"via a presigned PUT", method="PUT"))
    assert s3.get_object(Bucket=bucket, Key="boto/presigned.txt")["Body"].read() == b"via a presigned PUT"

    # Missing keys are NoSuchKey to the SDK too.
    try:
        s3.get_object(Bucket=bucket, Key="boto/absent")
        raise AssertionError("a missing key was found")
    except s3.exceptions.NoSuchKey:
        pass
    s3.delete_object(Bucket=bucket, Key="boto/absent")
    print("OK")


if __name__ == "__main__":
    main()
