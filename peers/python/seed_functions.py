"""The seed write-up's three Python Lambda functions, as it describes them.

Kept faithful on purpose, limits included: one ListObjectsV2 page (no pagination), no error
handling, the boto3 client built at import (init), the aioboto3 client built per invocation.
aioboto3 has since replaced its module-level `client()` with `Session().client()`.
"""

import asyncio
import functools
import os

import aioboto3
import boto3

BUCKET_NAME = os.getenv("BUCKET_NAME")

s3 = boto3.client("s3")


def serial():
    bucket_contents = s3.list_objects_v2(Bucket=BUCKET_NAME)
    return [
        s3.get_object_acl(Bucket=BUCKET_NAME, Key=content_entry["Key"])
        for content_entry in bucket_contents["Contents"]
    ]


async def _executor_main():
    loop = asyncio.get_running_loop()
    bucket_contents = s3.list_objects_v2(Bucket=BUCKET_NAME)
    return await asyncio.gather(
        *[
            loop.run_in_executor(
                None, functools.partial(s3.get_object_acl, Bucket=BUCKET_NAME, Key=content_entry["Key"])
            )
            for content_entry in bucket_contents["Contents"]
        ]
    )


def executor():
    return asyncio.run(_executor_main())


async def _aioboto3_main():
    async with aioboto3.Session().client("s3") as client:
        bucket_contents = await client.list_objects_v2(Bucket=BUCKET_NAME)
        return await asyncio.gather(
            *[
                client.get_object_acl(Bucket=BUCKET_NAME, Key=content_entry["Key"])
                for content_entry in bucket_contents["Contents"]
            ]
        )


def aioboto3_gather():
    return asyncio.run(_aioboto3_main())


FUNCTIONS = {
    "python-serial": serial,
    "python-executor": executor,
    "python-aioboto3": aioboto3_gather,
}
