"""Media in an S3-compatible bucket: one object per SHA-256, `<prefix>/<sha256>`.

Chosen by `IM_MEDIA_URL=s3://bucket[/prefix][?endpoint=URL&region=NAME&addressing=STYLE]`;
credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
AWS_PROFILE, an instance or container role), never from the URL. boto3 is the AWS SDK
itself: it speaks to AWS and to every S3-compatible server (MinIO, Ceph, R2, moto), and its
transfer manager does multipart uploads from a file with retries and abort on failure.

An upload goes up from its spool file in 8 MB parts, read from disk as they are sent (a
few parts in memory at most, whatever the file's size); S3 makes the object visible only
when the last part is in, so no reader ever sees half an object, and a failed multipart
upload is aborted. Downloads ask for exactly the byte range served and stream it.

Every request has the configured timeouts (`IM_MEDIA_TIMEOUT`) and attempts
(`IM_MEDIA_ATTEMPTS`); a store that fails them is MEDIA_STORE_UNAVAILABLE (503).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import boto3.session
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from im_core import metrics
from im_core.errors import ApiError, Error
from models.stores import CHUNK, SHA256

if TYPE_CHECKING:
    from models.spool import Spool

logger = logging.getLogger(__name__)

MB = 1024 * 1024
# Parts of 8 MB (S3's minimum is 5 MB), four at a time: at most a few parts in memory.
TRANSFER = TransferConfig(
    multipart_threshold=8 * MB, multipart_chunksize=8 * MB, max_concurrency=4, use_threads=True
)
ADDRESSING = ("auto", "path", "virtual")
# S3's bucket naming rules: 3 to 63 lower-case letters, digits, dots and hyphens.
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}


@dataclasses.dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # without leading or trailing slash; may be empty
    endpoint: str | None  # None: AWS itself
    region: str | None  # None: boto3's chain (AWS_DEFAULT_REGION, the profile)
    addressing: str  # auto, path or virtual (bucket in the host name)


def parse_url(url: str) -> S3Location:
    """Read `s3://bucket[/prefix][?endpoint=URL&region=NAME&addressing=STYLE]`.

    Raises ValueError, naming IM_MEDIA_URL, for anything else.
    """
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise _wrong(url, "expected s3://bucket[/prefix]")
    if "@" in parts.netloc:
        raise _wrong(url, "credentials come from AWS_ACCESS_KEY_ID and the like, not the URL")
    if not BUCKET.fullmatch(parts.netloc):
        raise _wrong(url, "not a valid bucket name")
    prefix = parts.path.strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise _wrong(url, "the prefix has an empty, '.' or '..' segment")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"endpoint", "region", "addressing"}
    if unknown or any(len(values) > 1 for values in query.values()):
        raise _wrong(url, "the parameters are endpoint, region and addressing, each once")
    endpoint = query.get("endpoint", [None])[0]
    if endpoint is not None:
        location = urlsplit(endpoint)
        if location.scheme not in ("http", "https") or not location.hostname:
            raise _wrong(url, "endpoint must be an http:// or https:// URL")
    addressing = query.get("addressing", ["auto"])[0]
    if addressing not in ADDRESSING:
        raise _wrong(url, f"addressing must be one of {', '.join(ADDRESSING)}")
    region = query.get("region", [None])[0] or None
    return S3Location(parts.netloc, prefix, endpoint, region, addressing)


def _wrong(url: str, why: str) -> ValueError:
    return ValueError(f"IM_MEDIA_URL {url.split('?', 1)[0]!r}: {why}")


class S3Store:
    def __init__(self, location: S3Location, timeout: float, attempts: int):
        self.location = location
        self.bucket = location.bucket
        self._prefix = f"{location.prefix}/" if location.prefix else ""
        self.client = _client(location, timeout, attempts)

    def describe(self) -> str:
        where = self.location.endpoint or "AWS"
        return f"S3 bucket {self.bucket}, prefix {self._prefix or '(none)'}, at {where}"

    def key(self, sha256: str) -> str:
        return self._prefix + sha256

    def prepare(self, spool: Spool) -> None:
        # Uploaded before the hash's lock is taken (and before the transaction writes
        # anything): a 50 MB upload holds up no one. Under the lock, `place` checks that a
        # deletion did not remove it meanwhile.
        if not self.exists(spool.sha256):
            self._upload(spool)

    def place(self, spool: Spool) -> None:
        if not self.exists(spool.sha256):
            logger.info("Media object %s went while it was uploaded; uploading again", spool.sha256)
            self._upload(spool)

    def delete(self, sha256: str) -> None:
        with _answering("delete", sha256):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(sha256))

    def exists(self, sha256: str) -> bool:
        try:
            with _answering("look up", sha256):
                self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except ApiError as error:
            if error.error is Error.MEDIA_NOT_FOUND:
                return False
            raise
        return True

    def unreachable(self, timeout: float) -> str | None:
        # HEAD of a key no upload makes: any answer but a server error means the store is
        # there. (A 404, or a 403 where the credentials may not list the bucket: what they
        # may do shows in uploads.) One try, the readiness timeout, a client of its own.
        probe = _client(self.location, timeout, 1)
        try:
            probe.head_object(Bucket=self.bucket, Key=self._prefix + ".ready-probe")
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if status >= 500:
                return f"it answered {status}"
        except BotoCoreError:
            return f"it did not answer within {timeout:g} s"
        return None

    def open(self, sha256: str, start: int, length: int) -> S3Chunks | EmptyChunks:
        if length == 0:  # an empty media (a range is never empty): nothing to read
            if not self.exists(sha256):
                raise ApiError(Error.MEDIA_NOT_FOUND)
            return EmptyChunks()
        with _answering("read", sha256):
            answer = self.client.get_object(
                Bucket=self.bucket,
                Key=self.key(sha256),
                Range=f"bytes={start}-{start + length - 1}",
            )
        return S3Chunks(answer["Body"], sha256)

    def objects(self) -> Iterator[tuple[str, float]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._prefix
        )
        with _answering("list", "the objects"):
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"][len(self._prefix) :]
                    if SHA256.fullmatch(name):  # not a hash: not ours
                        yield name, item["LastModified"].timestamp()

    def _upload(self, spool: Spool) -> None:
        # From the file's path, not an open file: the transfer manager then reads each part
        # from disk as it sends it instead of buffering parts in memory.
        with _answering("upload", spool.sha256):
            self.client.upload_file(
                str(spool.path),
                self.bucket,
                self.key(spool.sha256),
                # The store never serves it to a browser itself, but in case a bucket is
                # ever exposed: opaque bytes, never sniffed into a page.
                ExtraArgs={"ContentType": "application/octet-stream"},
                Config=TRANSFER,
            )


class S3Chunks:
    """A ranged GET's body, read a chunk at a time as it is sent to the client."""

    def __init__(self, body, sha256: str):
        self._body = body
        self._sha256 = sha256

    def __iter__(self):
        try:
            yield from self._body.iter_chunks(CHUNK)
        except (BotoCoreError, OSError) as error:
            # The response has started: all that is left is to end it short.
            logger.error("Reading media object %s failed midway: %s", self._sha256, error)
            raise

    def close(self) -> None:
        self._body.close()


class EmptyChunks:
    def __iter__(self):
        return iter(())

    def close(self) -> None:
        pass


@contextlib.contextmanager
def _answering(action: str, sha256: str):
    """boto3's errors as ours: a missing object is MEDIA_NOT_FOUND, any other failure of the
    store (unreachable, timed out, refused, no such bucket) MEDIA_STORE_UNAVAILABLE."""
    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in NOT_FOUND_CODES:
            raise ApiError(Error.MEDIA_NOT_FOUND) from None
        logger.error("The media store refused to %s %s: %s", action, sha256, error)
        raise ApiError(
            Error.MEDIA_STORE_UNAVAILABLE, "The media store refused the request"
        ) from None
    except (BotoCoreError, S3UploadFailedError) as error:
        logger.error("The media store failed to %s %s: %s", action, sha256, error)
        raise ApiError(Error.MEDIA_STORE_UNAVAILABLE) from None


_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def _client(location: S3Location, timeout: float, attempts: int):
    """One boto3 client per endpoint and settings (they are thread-safe; making one costs
    tens of milliseconds). Raises ValueError when boto3 finds no credentials."""
    key = (location.endpoint, location.region, location.addressing, timeout, attempts)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            session = boto3.session.Session()  # its own: boto3's default one is not thread-safe
            if session.get_credentials() is None:
                raise ValueError(
                    "IM_MEDIA_URL names an S3 bucket but boto3 found no credentials: set "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or a role)"
                )
            client = _clients[key] = session.client(
                "s3",
                endpoint_url=location.endpoint,
                region_name=location.region,
                config=Config(
                    connect_timeout=timeout,
                    read_timeout=timeout,
                    retries={"total_max_attempts": attempts, "mode": "standard"},
                    s3={"addressing_style": location.addressing},
                    # Request threads and the transfer manager's part uploads share the pool.
                    max_pool_connections=32,
                ),
            )
            _observed(client)
    return client


def _observed(client) -> None:
    """Each call of `client` in the metrics (`im_core.metrics.s3_call`): its time, retries
    included, from botocore's events before the call and after its answer or its error. A
    404 is an answer (`exists` asks for objects that may not be there), any other error
    status or no answer a failure."""

    def started(context, **_) -> None:
        context["im_started"] = time.perf_counter()

    def answered(event_name, http_response, context, **_) -> None:
        status = http_response.status_code
        _count(event_name, context, failed=status >= 400 and status != 404)

    def failed(event_name, context, **_) -> None:
        _count(event_name, context, failed=True)

    client.meta.events.register("before-call.s3", started)
    client.meta.events.register("after-call.s3", answered)
    client.meta.events.register("after-call-error.s3", failed)


def _count(event_name: str, context: dict, *, failed: bool) -> None:
    seconds = time.perf_counter() - context.get("im_started", time.perf_counter())
    metrics.s3_call(event_name.rpartition(".")[2], seconds, failed)
