"""Where steps put their full reports: the orchestrator's reports bucket (central account, SSE-KMS by the
bucket's default). The state machine only ever carries the keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from upgrader.gateways.aws import aws_errors

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ReportStore(Protocol):
    @property
    def bucket(self) -> str: ...

    def put(self, key: str, body: bytes, content_type: str) -> None: ...


class S3ReportStore:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        return self._bucket

    def put(self, key: str, body: bytes, content_type: str) -> None:
        # Keys are deterministic per execution and cluster: a retried step overwrites its own report
        # (the bucket is versioned, so nothing is lost).
        with aws_errors("s3:PutObject"):
            self._client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)
