"""``S3Source``: the objects under ``s3://bucket/prefix`` on S3 or an S3-compatible server (MinIO, Ceph…).

Through boto3 (docs/storage.md says why not fsspec/s3fs). Credentials, region and endpoint come from
where every AWS tool finds them (``AWS_ACCESS_KEY_ID``…, ``AWS_PROFILE``, ``~/.aws/*``,
``AWS_ENDPOINT_URL``), so docmill never holds a secret: nothing of them reaches the journal, the
logs or an export. The parent lists one page (1,000 keys) at a time, so memory stays flat for 10⁶
keys; each ref carries the object's size and a number derived from its ETag (in ``mtime_ns``, which
resume compares as it compares a file's mtime). Workers fetch the bytes themselves with a client of
their own process, so no worker needs a shared filesystem.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

from docmill.document import Document, DocumentRef, sha256_bytes
from docmill.errors import ConfigError, MissingDependencyError, ResourceLimitExceeded, SourceError
from docmill.sources.jsonl import check_record_size, lines_of, record_document, record_refs

SCHEME = "s3://"
PAGE_SIZE = 1000  # keys per ListObjectsV2 page: the most S3 returns, and all the parent holds at once
JSONL = (".jsonl", ".ndjson")  # objects holding one document per line
STREAM_CHUNK = 1 << 20  # bytes of a JSONL object the parent holds at once while splitting it
# botocore's "standard" retry mode retries 503 SlowDown, 500/502/504, RequestTimeout and broken
# connections with capped exponential backoff; it is the one retry owner for a request.
_RETRIES = {"mode": "standard", "max_attempts": 8}
_TIMEOUTS = {"connect_timeout": 10, "read_timeout": 60}
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled"})
_BAD_CREDENTIALS = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"})
_PERMANENT = _DENIED | _BAD_CREDENTIALS  # the same answer next time; anything else may pass on a later run

_client_cache: tuple[int, Any] | None = None


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → ``("bucket", "a/b")``; a ConfigError when there is no bucket."""
    if not url.startswith(SCHEME):
        raise ConfigError(f"not an s3:// URL: {url}")
    bucket, _, key = url[len(SCHEME) :].partition("/")
    if not bucket:
        raise ConfigError(f"no bucket in {url!r}: expected s3://BUCKET/PREFIX")
    return bucket, key


def etag_version(etag: str) -> int:
    """A 60-bit number standing for an ETag, stored where a file's mtime goes (a signed 64-bit column).

    Hashed, not parsed: a multipart ETag (``"…-12"``) and a non-MD5 ETag of other servers are not hex.
    """
    return int(hashlib.sha256(etag.strip('"').encode()).hexdigest()[:15], 16)


def client() -> Any:
    """This process's S3 client, made on first use; a forked worker makes its own (not fork-safe)."""
    global _client_cache
    if _client_cache is None or _client_cache[0] != os.getpid():
        _client_cache = (os.getpid(), _new_client())
    return _client_cache[1]


def _new_client() -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise MissingDependencyError("boto3", "s3") from exc
    own_retries = not ({"AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"} & os.environ.keys())
    config = Config(retries=dict(_RETRIES) if own_retries else None, **_TIMEOUTS)
    return boto3.session.Session().client("s3", config=config)


def check_bucket(bucket: str) -> None:
    """Fail before any work, with one line, when the bucket is wrong or the credentials are refused."""
    try:
        client().head_bucket(Bucket=bucket)
    except Exception as exc:
        raise ConfigError(f"s3://{bucket}: {_reason(exc, what='bucket')}") from exc


def load_object(ref: DocumentRef, max_bytes: int | None) -> Document:
    """Fetch ``ref.uri`` into a Document; the size cap is checked before the body is read."""
    _check_size(ref.id, ref.size, max_bytes)
    bucket, key = split_url(ref.uri)
    try:
        content = _fetch(bucket, key, ref.id, max_bytes)
    except (SourceError, ResourceLimitExceeded):
        raise
    except Exception as exc:
        raise load_error(ref.uri, exc) from exc
    return Document(ref=ref, sha256=sha256_bytes(content), content=content)


def load_error(uri: str, exc: Exception) -> SourceError:
    """The failed document's one-line reason; retryable unless access is refused (a vanished object,
    a connection that failed after its retries: the next run tries again instead of quarantining)."""
    code = _error_code(exc)
    return SourceError(f"{uri}: {_reason(exc, what='object')}", uri=uri, retryable=code not in _PERMANENT)


def load_record(ref: DocumentRef, max_bytes: int | None, text_field: str) -> Document:
    """One line of a JSONL object: its ``size`` bytes at ``offset``, fetched with a ranged GET."""
    check_record_size(ref, max_bytes)
    object_uri = ref.uri.rpartition("#L")[0]
    bucket, key = split_url(object_uri)
    first = ref.offset or 0
    try:
        reply = client().get_object(
            Bucket=bucket, Key=key, Range=f"bytes={first}-{first + (ref.size or 1) - 1}"
        )
        line = _read_all(reply["Body"])
    except Exception as exc:
        raise load_error(object_uri, exc) from exc
    return record_document(ref, line, text_field)


def _read_all(body: Any) -> bytes:
    try:
        content: bytes = body.read()
    finally:
        body.close()
    return content


def stream_lines(bucket: str, key: str) -> Iterator[bytes]:
    """The lines of an object, streamed (one chunk held at a time)."""
    body = client().get_object(Bucket=bucket, Key=key)["Body"]
    try:
        yield from lines_of(body.iter_chunks(STREAM_CHUNK))
    finally:
        body.close()


def is_jsonl(key: str) -> bool:
    return key.lower().endswith(JSONL)


def _fetch(bucket: str, key: str, name: str, max_bytes: int | None) -> bytes:
    reply = client().get_object(Bucket=bucket, Key=key)
    body = reply["Body"]
    try:
        _check_size(name, reply.get("ContentLength"), max_bytes)  # the object may have grown since listed
        content: bytes = body.read() if max_bytes is None else body.read(max_bytes + 1)
    finally:
        body.close()
    _check_size(name, len(content), max_bytes)
    return content


def _check_size(name: str, size: int | None, max_bytes: int | None) -> None:
    if max_bytes is not None and size is not None and size > max_bytes:
        raise ResourceLimitExceeded(f"{name}: {size:,} bytes exceeds max_bytes={max_bytes:,}")


def _reason(exc: Exception, *, what: str) -> str:
    """One line saying what went wrong, in the user's terms; never a traceback, never a secret."""
    code = _error_code(exc)
    if code in _MISSING:
        return f"no such {what}"
    if code in _DENIED:
        return "access denied (check the credentials and the bucket policy)"
    if code in _BAD_CREDENTIALS or code == "NoSuchBucket":
        return "no such bucket" if code == "NoSuchBucket" else f"credentials refused ({code})"
    name = type(exc).__name__
    if name in {"NoCredentialsError", "PartialCredentialsError"}:
        return "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)"
    if code is not None:
        return f"{code}: {_first_line(exc)}"
    return f"connection failed after retries ({name}: {_first_line(exc)})"


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class S3Source:
    """Every object under ``s3://bucket/prefix``, in key order (S3 lists keys sorted).

    A document's id is its key relative to the prefix (``batch-a/x.pdf``), so a local copy of the same
    tree gets the same ids. ``include``/``exclude`` globs match that id and the last part of it, as for
    a folder. Keys ending in ``/`` (folder markers) are skipped.

    A ``.jsonl``/``.ndjson`` object holds one document per line, split as a local JSONL file is: the
    parent streams it once to hand out refs (byte offset and length of each line, no ETag, so appending
    lines does not make earlier ones look changed) and a worker fetches its line with a ranged GET.
    A record's id is ``<key relative to the prefix>#<record id>``; a URL naming one JSONL object
    (``s3://bucket/data.jsonl``) gives the bare record ids, as the local file does.
    """

    def __init__(
        self,
        url: str,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        max_bytes: int | None = None,
    ) -> None:
        self.bucket, key = split_url(url)
        self.single = is_jsonl(key)  # one JSONL object, not a prefix
        self.prefix = key if not key or key.endswith("/") or self.single else key + "/"
        self.root = f"{SCHEME}{self.bucket}/{self.prefix}".rstrip("/")
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.max_bytes = max_bytes
        self.id_field = "id"
        self.text_field = "text"

    def check(self) -> None:
        """The bucket exists and the credentials may read it (``docmill run`` calls this before any work)."""
        check_bucket(self.bucket)

    def __iter__(self) -> Iterator[DocumentRef]:
        for rel, item in self._listed():
            if is_jsonl(item["Key"]):
                yield from self._records(rel, item["Key"])
            else:
                yield self._ref(rel, item)

    def _listed(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(id, listed object) of every selected object."""
        for item in self._objects():
            if self.single:
                if item["Key"] == self.prefix:
                    yield "", item
                continue
            rel = item["Key"][len(self.prefix) :]
            if rel and not rel.endswith("/") and self._selected(rel):
                yield rel, item

    def _records(self, rel: str, key: str) -> Iterator[DocumentRef]:
        """The refs of a JSONL object's lines; an object that cannot be read becomes one failed ref."""
        uri = f"{SCHEME}{self.bucket}/{key}"
        prefix = rel + "#" if rel else ""
        try:
            yield from record_refs(
                stream_lines(self.bucket, key), uri=uri, id_field=self.id_field, prefix=prefix
            )
        except Exception:
            yield DocumentRef(id=rel or key, uri=uri)  # no offset: load() says why

    def _ref(self, rel: str, item: dict[str, Any]) -> DocumentRef:
        uri = f"{SCHEME}{self.bucket}/{item['Key']}"
        return DocumentRef(id=rel, uri=uri, size=item.get("Size"), mtime_ns=etag_version(item["ETag"]))

    def _objects(self) -> Iterator[dict[str, Any]]:
        """Listed objects, one page held at a time; a listing that fails after retries ends the run."""
        pages = (
            client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=self.prefix, PaginationConfig={"PageSize": PAGE_SIZE})
        )
        try:
            for page in pages:
                yield from page.get("Contents", ())
        except Exception as exc:
            raise SourceError(f"listing {self.root}: {_reason(exc, what='bucket')}", uri=self.root) from exc

    def count(self) -> int | None:
        """A second listing for the progress total, beside the work (one LIST request per 1,000 keys);
        unknown (None) when there are JSONL objects: counting their lines would download them twice."""
        total = 0
        for _, item in self._listed():
            if is_jsonl(item["Key"]):
                return None
            total += 1
        return total

    def load(self, ref: DocumentRef) -> Document:
        if ref.offset is not None:
            return load_record(ref, self.max_bytes, self.text_field)
        if is_jsonl(ref.uri):
            raise self._unlisted(ref)
        return load_object(ref, self.max_bytes)

    def _unlisted(self, ref: DocumentRef) -> SourceError:
        """Why the lines of a JSONL object could not be listed, asked again now."""
        bucket, key = split_url(ref.uri)
        try:  # its first byte, with the permission the listing needed (HEAD may be allowed when GET is not)
            _read_all(client().get_object(Bucket=bucket, Key=key, Range="bytes=0-0")["Body"])
        except Exception as exc:
            return load_error(ref.uri, exc)
        return SourceError(
            f"{ref.uri}: its lines could not be read; the next run lists them", uri=ref.uri, retryable=True
        )

    def _selected(self, rel: str) -> bool:
        from docmill.sources.files import selected

        return selected(rel, self.include, self.exclude)

    def __repr__(self) -> str:
        return f"S3Source({self.root!r})"
