"""The ``.model`` file written by ``docmill train`` and read by the ``model:PATH`` classifier.

Layout: a magic line, one line of JSON metadata, then the pickled scikit-learn pipeline::

    DOCMILL-MODEL 1\\n
    {"labels": [...], "payload_sha256": "...", "sklearn": "1.5.2", "created": "...", ...}\\n
    <pickle>

The header can be read without unpickling (cheap validation, ``docmill eval`` of the labels); the
payload's sha256 catches truncated or edited files. A model file is a pickle: load only files you trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docmill.errors import ConfigError

MAGIC = b"DOCMILL-MODEL"
FORMAT_VERSION = 1
_MAX_HEADER = 1 << 20


@dataclass(frozen=True, slots=True)
class ModelHeader:
    """What a model file says about itself."""

    labels: tuple[str, ...]
    meta: Mapping[str, Any]
    payload_offset: int


def write_model(path: str | os.PathLike[str], pipeline: Any, meta: Mapping[str, Any]) -> Path:
    """Write ``pipeline`` with ``meta`` (must include ``labels``) atomically; returns the path."""
    payload = pickle.dumps(pipeline, protocol=pickle.HIGHEST_PROTOCOL)
    header = {**meta, "payload_sha256": hashlib.sha256(payload).hexdigest()}
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    with open(partial, "wb") as out:
        out.write(MAGIC + b" %d\n" % FORMAT_VERSION)
        out.write(json.dumps(header, sort_keys=True).encode() + b"\n")
        out.write(payload)
    os.replace(partial, target)
    return target


def read_header(path: str | os.PathLike[str]) -> ModelHeader:
    """Validate the magic line and metadata; ConfigError (one line) for anything else."""
    with _open(path) as handle:
        first = handle.readline(64)
        _check_magic(path, first)
        line = handle.readline(_MAX_HEADER)
        offset = handle.tell()
    try:
        meta = json.loads(line)
        labels = tuple(str(label) for label in meta["labels"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"model file {path}: corrupt header") from None
    return ModelHeader(labels, meta, offset)


def read_model(path: str | os.PathLike[str]) -> tuple[ModelHeader, Any]:
    """The header and the unpickled pipeline; ConfigError if the file is damaged or incompatible."""
    header = read_header(path)
    with _open(path) as handle:
        handle.seek(header.payload_offset)
        payload = handle.read()
    if hashlib.sha256(payload).hexdigest() != header.meta.get("payload_sha256"):
        raise ConfigError(f"model file {path}: corrupt (checksum mismatch; truncated or edited?)")
    return header, _unpickle(path, payload, header)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of the whole file (the classifier's identity in the journal)."""
    digest = hashlib.sha256()
    with _open(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _open(path: str | os.PathLike[str]) -> Any:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ConfigError(f"model file {path}: not found") from None
    except OSError as exc:
        raise ConfigError(f"model file {path}: cannot read: {exc.strerror or exc}") from None


def _check_magic(path: str | os.PathLike[str], first: bytes) -> None:
    magic, _, version = first.strip().partition(b" ")
    if magic != MAGIC:
        raise ConfigError(f"model file {path}: not a docmill model (write one with `docmill train`)")
    if version != str(FORMAT_VERSION).encode():
        found = version.decode(errors="replace")
        raise ConfigError(f"model file {path}: format version {found}, this docmill reads {FORMAT_VERSION}")


def _unpickle(path: str | os.PathLike[str], payload: bytes, header: ModelHeader) -> Any:
    try:
        with warnings.catch_warnings():
            # A different scikit-learn version warns; the check below says it in one line instead.
            warnings.simplefilter("ignore")
            return pickle.loads(payload)
    except Exception as exc:
        trained = header.meta.get("sklearn", "?")
        problem = f"{type(exc).__name__}: {exc}"
        raise ConfigError(
            f"model file {path}: cannot load ({problem}); trained with scikit-learn {trained}"
        ) from None
