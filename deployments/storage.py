"""Task results on the shared object store, so that a run killed on one host resumes on another.

    python -m deployments.storage s3://bucket/results [--block reactor-results]

saves a prefect-aws `S3Bucket` block (`s3-bucket/<block>`) on the Prefect server
(`PREFECT_API_URL`) for that bucket and prefix, checks that the bucket answers, and prints the
line every worker exports: `REACTOR_RESULT_STORAGE=s3-bucket/<block>` (tasks/resume.py). The
block holds no key: its `AwsCredentials` carry only the region and the endpoint of an
S3-compatible server (`AWS_ENDPOINT_URL[_S3]`), and boto3 finds each host's own credentials
(`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, a profile, an instance role) when it runs.
`make deploy` does the same when `REACTOR_RESULT_STORAGE` names an `s3-bucket/…` block that does
not exist yet and `REACTOR_EXPORTS_DIR` is an `s3://` root: the results go to
`<exports root>/_results`.
"""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlsplit

from tasks.errors import ReactorError
from tasks.storage import check_root, endpoint, scheme_of

BLOCK_TYPE = "s3-bucket"
DEFAULT_BLOCK = "reactor-results"
RESULTS_PREFIX = "_results"


def s3_bucket_block(uri: str):
    """An unsaved prefect-aws `S3Bucket` for `s3://bucket/prefix`, with no key in it."""
    from prefect_aws import AwsCredentials, S3Bucket
    from prefect_aws.client_parameters import AwsClientParameters

    if scheme_of(uri) not in ("s3", "s3a"):
        raise ReactorError(f"result storage {uri!r} must be an s3://bucket/prefix URI")
    parts = urlsplit(uri)
    params = {}
    url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if url:
        params["endpoint_url"] = url
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    credentials = AwsCredentials(
        region_name=region, aws_client_parameters=AwsClientParameters(**params)
    )
    return S3Bucket(
        bucket_name=parts.netloc, bucket_folder=parts.path.strip("/"), credentials=credentials
    )


def save_result_storage(uri: str, block: str = DEFAULT_BLOCK) -> str:
    """Check `uri`'s bucket, save the block (overwriting one of that name); its slug."""
    check_root(uri)  # a missing bucket or refused keys fail here, not in the first run
    s3_bucket_block(uri).save(block, overwrite=True)
    return f"{BLOCK_TYPE}/{block}"


def ensure_from_settings() -> str | None:
    """`make deploy`'s hook: create the block `REACTOR_RESULT_STORAGE` names when it is an
    `s3-bucket/…` block that does not exist and the exports root is on S3; a line to print."""
    from prefect_aws import S3Bucket

    from tasks.settings import get_settings

    slug = os.environ.get("REACTOR_RESULT_STORAGE", "")
    kind, _, name = slug.partition("/")
    if kind != BLOCK_TYPE or not name:
        return None
    try:
        S3Bucket.load(name)
        return f"result storage {slug!r} exists"
    except ValueError:
        pass
    root = get_settings().exports_dir
    if scheme_of(root) not in ("s3", "s3a"):
        return (
            f"result storage {slug!r} does not exist: create it with "
            "`python -m deployments.storage s3://bucket/prefix`"
        )
    uri = f"{root}/{RESULTS_PREFIX}"
    save_result_storage(uri, name)
    return f"result storage {slug!r} created: {uri} (endpoint {endpoint()})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri", help="s3://bucket/prefix for the task results")
    parser.add_argument("--block", default=DEFAULT_BLOCK, help="the S3Bucket block's name")
    args = parser.parse_args(argv)
    if not os.environ.get("PREFECT_API_URL"):
        print("error: set PREFECT_API_URL (the Prefect server the workers use)", file=sys.stderr)
        return 2
    try:
        slug = save_result_storage(args.uri, args.block)
    except ReactorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"export REACTOR_RESULT_STORAGE={slug}")
    print(f"task results go to {args.uri} (endpoint {endpoint()})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
