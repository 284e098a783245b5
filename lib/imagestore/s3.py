"""An S3-compatible bucket (AWS, Ceph RGW, MinIO, ...) through boto3. Uploads are multipart: at
most one part (``part_size`` bytes) is buffered at a time; an abort cancels the multipart upload,
so nothing is left in the bucket."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lib.imagestore.base import StoreError

MIN_PART = 5 * 1024 * 1024  # S3's smallest part (but the last)


class S3Writer:
    def __init__(self, store: S3Store, key: str) -> None:
        self.store = store
        self.key = key
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.done = False

    def _flush_part(self) -> None:
        client = self.store.client
        try:
            if self.upload_id is None:
                self.upload_id = client.create_multipart_upload(Bucket=self.store.bucket, Key=self.key)["UploadId"]
            number = len(self.parts) + 1
            answer = client.upload_part(Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id,
                                        PartNumber=number, Body=bytes(self.buffer))
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"S3 upload of {self.key} failed: {exc}") from exc
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self.buffer.clear()

    def write(self, chunk: bytes) -> None:
        self.buffer += chunk
        if len(self.buffer) >= self.store.part_size:
            self._flush_part()

    def commit(self) -> str:
        client = self.store.client
        try:
            if self.upload_id is None:  # small: one PUT
                client.put_object(Bucket=self.store.bucket, Key=self.key, Body=bytes(self.buffer))
            else:
                if self.buffer:
                    self._flush_part()
                client.complete_multipart_upload(Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id,
                                                 MultipartUpload={"Parts": self.parts})
        except (BotoCoreError, ClientError) as exc:
            self.abort()
            raise StoreError(f"S3 upload of {self.key} failed: {exc}") from exc
        except StoreError:
            self.abort()
            raise
        self.done = True
        self.buffer = bytearray()
        return self.key

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        self.buffer = bytearray()
        if self.upload_id is not None:
            try:
                self.store.client.abort_multipart_upload(Bucket=self.store.bucket, Key=self.key,
                                                         UploadId=self.upload_id)
            except (BotoCoreError, ClientError):
                pass


class S3Store:
    name = "s3"

    def __init__(self, *, bucket: str, endpoint_url: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None, region: str | None = None, prefix: str = "",
                 part_size: int = 8 * 1024 * 1024) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.part_size = max(part_size, MIN_PART)
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            region_name=region or "us-east-1",
            config=Config(signature_version="s3v4", retries={"max_attempts": 3, "mode": "standard"},
                          s3={"addressing_style": "path"}))

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except (BotoCoreError, ClientError) as exc:
                raise StoreError(f"cannot create bucket {self.bucket}: {exc}") from exc

    def writer(self, key: str) -> S3Writer:
        return S3Writer(self, self._key(key))

    def reader(self, location: str, *, offset: int = 0, length: int | None = None,
               chunk_size: int = 1 << 20) -> Iterator[bytes]:
        extra: dict[str, str] = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            extra["Range"] = f"bytes={offset}-{end}"
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=location, **extra)["Body"]
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"cannot read s3://{self.bucket}/{location}: {exc}") from exc

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

        return chunks()

    def delete(self, location: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=location)
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"cannot delete s3://{self.bucket}/{location}: {exc}") from exc

    def exists(self, location: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=location)
        except ClientError:
            return False
        return True

    def describe(self) -> dict[str, str]:
        return {"id": "s3", "description": f"S3 bucket {self.bucket} at {self.endpoint_url or 'AWS'}"}
