from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

import docmill
from docmill import errors
from docmill.executors import EXECUTORS, get_executor
from docmill.outcome import ErrorInfo


def test_public_api_is_sorted_and_complete() -> None:
    public = sorted(name for name in dir(docmill) if not name.startswith("_") and name[0].isupper())
    assert docmill.__all__ == sorted(docmill.__all__)
    assert set(public) <= set(docmill.__all__)


def test_every_public_name_resolves_and_the_api_loads_lazily() -> None:
    for name in docmill.__all__:
        assert getattr(docmill, name) is not None, name
    assert {"run", "open_journal", "RunResult", "JournalReader", "RunConfig"} <= set(docmill.__all__)
    assert docmill.run.__module__ == "docmill.api" and docmill.RunResult.__module__ == "docmill.runner"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = docmill.nope
    code = "import sys, docmill; print(sorted(m for m in sys.modules if m in LAZY))".replace(
        "LAZY", repr({"docmill.api", "docmill.runner", "docmill.executors", "docmill.reader", "pandas"})
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"  # `import docmill` stays cheap


def test_every_error_is_a_docmill_error_and_documented_in_the_tree() -> None:
    tree = errors.__doc__ or ""
    for name in dir(errors):
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, errors.DocmillError):
            assert name in tree, f"{name} is missing from the tree in errors.py's docstring"


def test_config_errors_exit_with_two_and_others_with_one() -> None:
    assert errors.ConfigError.exit_code == 2
    assert errors.UnknownExecutorError("x", ["a"]).exit_code == 2
    assert errors.JournalError.exit_code == 1


def test_retryable_classification_follows_the_tree() -> None:
    assert errors.RateLimitedError("x").retryable and errors.ProcessingTimeout("x").retryable
    assert not errors.CorruptDocument("x").retryable and not errors.InvalidModelOutput("x").retryable


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(errors.UnknownExecutorError, match="sequential"):
        get_executor("warp-drive")
    assert "sequential" in EXECUTORS


def test_error_info_is_one_line_and_picklable() -> None:
    try:
        raise errors.CorruptDocument("truncated\nPDF   stream")
    except errors.CorruptDocument as exc:
        info = ErrorInfo.from_exception(exc)
    assert info.message == "truncated PDF stream"
    assert "Traceback" in info.traceback
    assert pickle.loads(pickle.dumps(info)) == info


def test_missing_dependency_names_the_extra() -> None:
    err = errors.MissingDependencyError("pyarrow", "parquet")
    assert "pip install 'docmill[parquet]'" in str(err)
    assert isinstance(err, ImportError)
