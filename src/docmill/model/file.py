"""The ``.model`` file written by ``docmill train`` and read by the ``model:PATH`` classifier.

Layout (version 2): a magic line, one line of JSON metadata, the compiled model's arrays (an
``.npz`` archive, no pickles inside) and the pickled scikit-learn pipeline::

    DOCMILL-MODEL 2\\n
    {"labels": [...], "compiled": {...}, "arrays_bytes": 812345, "payload_sha256": "...", ...}\\n
    <npz: vocabulary codes, idf, coef_ rows, citation index><pickle>

Workers read the header and the arrays (:func:`read_compiled`): numpy only, no scikit-learn or scipy
import. The pickle serves ``compiled=False`` and pipelines that do not compile (``arrays_bytes`` 0).
Version 1 (header + pickle) is still read; its workers unpickle and compile, which needs scikit-learn.
The payload's sha256 (everything after the header) catches truncated or edited files. A model file
holds a pickle: load only files you trust.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from docmill.errors import ConfigError
from docmill.model.compiled import CompiledModel, compile_model

MAGIC = b"DOCMILL-MODEL"
FORMAT_VERSION = 2
READS = (1, 2)
_MAX_HEADER = 1 << 20


@dataclass(frozen=True, slots=True)
class ModelHeader:
    """What a model file says about itself."""

    labels: tuple[str, ...]
    meta: Mapping[str, Any]
    payload_offset: int


def write_model(path: str | os.PathLike[str], pipeline: Any, meta: Mapping[str, Any]) -> Path:
    """Write ``pipeline`` (and its compiled arrays, if it compiles) with ``meta`` atomically.

    ``meta`` must include ``labels``; returns the path.
    """
    compiled = compile_model(pipeline)
    spec, packed = (None, b"") if compiled is None else _packed(compiled)
    payload = packed + pickle.dumps(pipeline, protocol=pickle.HIGHEST_PROTOCOL)
    header = {**meta, "compiled": spec, "arrays_bytes": len(packed)}
    header["payload_sha256"] = hashlib.sha256(payload).hexdigest()
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
    header, payload = _payload(path)
    return header, _unpickle(path, payload[_arrays_bytes(path, header, payload) :], header)


def read_compiled(path: str | os.PathLike[str]) -> tuple[ModelHeader, CompiledModel | None]:
    """The header and the compiled model, with numpy only; None when the file holds none (version 1)."""
    header, payload = _payload(path)
    size = _arrays_bytes(path, header, payload)
    spec = header.meta.get("compiled")
    if not size or spec is None:
        return header, None
    try:
        with np.load(io.BytesIO(payload[:size]), allow_pickle=False) as archive:
            return header, CompiledModel.from_arrays(spec, {key: archive[key] for key in archive.files})
    except (ValueError, KeyError, TypeError, IndexError, OSError, zipfile.BadZipFile) as exc:
        raise ConfigError(
            f"model file {path}: corrupt compiled model ({type(exc).__name__}: {exc})"
        ) from None


def _payload(path: str | os.PathLike[str]) -> tuple[ModelHeader, bytes]:
    header = read_header(path)
    with _open(path) as handle:
        handle.seek(header.payload_offset)
        payload = handle.read()
    if hashlib.sha256(payload).hexdigest() != header.meta.get("payload_sha256"):
        raise ConfigError(f"model file {path}: corrupt (checksum mismatch; truncated or edited?)")
    return header, payload


def _arrays_bytes(path: str | os.PathLike[str], header: ModelHeader, payload: bytes) -> int:
    size = header.meta.get("arrays_bytes", 0)
    if not isinstance(size, int) or not 0 <= size <= len(payload):
        raise ConfigError(f"model file {path}: corrupt header (arrays_bytes {size!r})")
    return size


def _packed(compiled: CompiledModel) -> tuple[dict[str, Any], bytes]:
    spec, arrays = compiled.to_arrays()
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)  # numeric arrays only
    return spec, buffer.getvalue()


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
    if version not in {str(v).encode() for v in READS}:
        found = version.decode(errors="replace")
        readable = " and ".join(map(str, READS))
        raise ConfigError(
            f"model file {path}: format version {found}, this docmill reads versions {readable}"
        )


# Model files written before the model code moved into ``docmill.model`` name the old modules.
_MOVED = {
    "docmill.features": "docmill.model.features",
    "docmill.text_features": "docmill.model.text_features",
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(_MOVED.get(module, module), name)


def _unpickle(path: str | os.PathLike[str], payload: bytes, header: ModelHeader) -> Any:
    try:
        with warnings.catch_warnings():
            # A different scikit-learn version warns; the check below says it in one line instead.
            warnings.simplefilter("ignore")
            return _Unpickler(io.BytesIO(payload)).load()
    except Exception as exc:
        trained = header.meta.get("sklearn", "?")
        problem = f"{type(exc).__name__}: {exc}"
        raise ConfigError(
            f"model file {path}: cannot load ({problem}); trained with scikit-learn {trained}"
        ) from None
