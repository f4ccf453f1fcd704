"""What two container images the stage Jobs use do, run as a process by the fake kubelet.

- ``storage-init SRC_URI DEST_DIR``: KServe's storage initializer (``kserve/storage/storage.py``,
  ``_download_s3``): every object under the ``s3://`` prefix is written below ``DEST_DIR``
  keeping its path relative to the prefix; a URI naming one object writes it under its base
  name; nothing found is an error ("Failed to fetch model. No model found in ..."). The endpoint
  is ``AWS_ENDPOINT_URL``, the credentials ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``.
- ``aws s3 cp --recursive [--only-show-errors] DIR s3://BUCKET/PREFIX/``: the AWS CLI v2
  (``aws s3 cp`` reference): every file under ``DIR`` to ``PREFIX/<relative path>``; it prints
  ``upload: ...`` lines unless ``--only-show-errors``.

Both refuse to run without ``AWS_ENDPOINT_URL``: in the fake cluster there is no AWS to reach.
They run in the fake kubelet's thread (``run``) with the container's environment and log, not
as processes: starting Python and boto3 per container would cost seconds per stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any


class Exit(Exception):
    """The container's process ends with status 1 and this on its log."""


def _s3(env: Mapping[str, str]) -> Any:
    import boto3

    endpoint = env.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise Exit("fake image: AWS_ENDPOINT_URL is not set; the fake cluster has no AWS")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if not env.get(var):
            raise Exit(f"Unable to locate credentials: {var} is not set")
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise Exit(f"Cannot recognize storage type for {uri}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    return bucket, prefix.strip("/")


def storage_init(args: list[str], env: Mapping[str, str], log: IO[str]) -> None:
    if len(args) != 2:
        raise Exit(f"usage: initializer-entrypoint SRC_URI DEST_PATH, not {args}")
    src, dest = args
    print(f"Initializing, args: src_uri [{src}] dest_path[ [{dest}]", file=log, flush=True)
    bucket, prefix = _split(src)
    s3 = _s3(env)
    found = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            key = o["Key"]
            if key == prefix:
                rel = key.rsplit("/", 1)[-1]
            elif key.startswith(prefix + "/"):
                rel = key[len(prefix) + 1 :]
            else:
                continue
            target = Path(dest) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            print(f"Downloaded object {key} to {target}", file=log, flush=True)
            found += 1
    if not found:
        raise Exit(f"RuntimeError: Failed to fetch model. No model found in {src}.")
    print(f"Successfully copied {src} to {dest}", file=log, flush=True)


def aws(args: list[str], env: Mapping[str, str], log: IO[str]) -> None:
    if args[:2] != ["s3", "cp"] or "--recursive" not in args:
        raise Exit(f"fake aws-cli: only `s3 cp --recursive` is emulated, not {args}")
    quiet = "--only-show-errors" in args
    paths = [a for a in args[2:] if not a.startswith("--")]
    if len(paths) != 2:
        raise Exit("usage: aws s3 cp --recursive SRC DST")
    src, dst = Path(paths[0]), paths[1]
    bucket, prefix = _split(dst)
    s3 = _s3(env)
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        key = f"{prefix}/{f.relative_to(src).as_posix()}" if prefix else f.name
        s3.upload_file(str(f), bucket, key)
        if not quiet:
            print(f"upload: {f} to s3://{bucket}/{key}", file=log, flush=True)


def run(image: str, args: list[str], env: Mapping[str, str], log_path: Path) -> int:
    """Run one emulated image; its exit status."""
    with open(log_path, "a") as log:
        try:
            (storage_init if image == "storage-init" else aws)(args, env, log)
        except Exit as e:
            print(e, file=log, flush=True)
            return 1
        except Exception as e:  # noqa: BLE001 - what the real tool prints before exiting 1
            print(f"{type(e).__name__}: {e}", file=log, flush=True)
            return 1
    return 0
