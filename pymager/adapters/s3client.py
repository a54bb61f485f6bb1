"""The S3 client pymager makes, and what a bucket's failures mean: one place that reads botocore's
errors, so that no botocore exception reaches the service."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pymager.errors import StorageFailed, StorageFull, storage_failure

S3Client = Any  # botocore's clients are made at run time; boto3 ships no type hints

# A bucket that does not answer comes back by itself more often than a failing disk: retry soon.
BUCKET_RETRY_AFTER = 5
_NO_OBJECT = frozenset({"NoSuchKey", "404", "NotFound"})
_FULL = frozenset({"EntityTooLarge", "QuotaExceeded", "InsufficientStorage", "XMinioStorageFull"})


def split_storage_url(url: str) -> tuple[str, str]:
    """``s3://<bucket>/<prefix>`` → (bucket, prefix ending in ``/`` or empty)."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def make_client(endpoint_url: str | None, region: str, pool: int = 32) -> S3Client:
    """An S3 client on the standard AWS credential chain (environment, shared files, instance role):
    pymager never reads or logs a secret itself. Short timeouts: an unreachable bucket fails a
    request in seconds (503) instead of holding a server thread."""
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=region,
        connect_timeout=3,
        read_timeout=30,
        retries={"max_attempts": 2, "mode": "standard"},
        max_pool_connections=pool,
        s3={"addressing_style": "path"} if endpoint_url else {},
        # Checksums pymager asks for (SHA-256) only, not botocore's default CRC on every request.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client: S3Client = boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, config=config)
    return client


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    code = str(error.get("Code", "")) if isinstance(error, dict) else ""
    return code or str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


@contextlib.contextmanager
def bucket_errors(doing: str) -> Iterator[None]:
    """Raise a failure of the bucket as ``StorageFull`` or ``StorageFailed`` (never botocore's)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        if code in _FULL:
            raise StorageFull(f"the bucket refused {doing}: {code}") from exc
        raise StorageFailed(f"the bucket failed while {doing}: {code}", BUCKET_RETRY_AFTER) from exc
    except NoCredentialsError as exc:
        raise StorageFailed(
            f"no credentials for the bucket while {doing} (AWS_ACCESS_KEY_ID or a shared credentials file)",
            BUCKET_RETRY_AFTER,
        ) from exc
    except (BotoCoreError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
            raise storage_failure(exc, doing) from exc  # the local disk, not the bucket
        raise StorageFailed(f"the bucket is unreachable while {doing}", BUCKET_RETRY_AFTER) from exc


def missing(exc: BaseException) -> bool:
    """Whether a botocore error says there is no such object."""
    return error_code(exc) in _NO_OBJECT
