"""load_labels: the one labels format, validated with one-line errors naming the file."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from docmill.errors import ConfigError
from docmill.model.labels import LabelSet, load_labels

GOOD = """\
labels:
  invoice:
    description: "A bill requesting payment for goods or services."
    keywords: [invoice, amount due, payment terms, vat, invoice]
  letter:
    description: A personal or business letter.
  other:
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labels.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_keeps_order_descriptions_and_deduplicated_keywords(tmp_path: Path) -> None:
    labels = load_labels(write(tmp_path, GOOD))
    assert labels.names == ("invoice", "letter", "other")
    assert labels.descriptions["invoice"].startswith("A bill")
    assert labels.keywords["invoice"] == ("invoice", "amount due", "payment terms", "vat")
    assert labels.keywords["other"] == ()
    assert labels.descriptions["other"] == ""
    assert "letter" in labels and len(labels) == 3


def test_fingerprint_follows_content_not_formatting(tmp_path: Path) -> None:
    a = load_labels(write(tmp_path, GOOD))
    reformatted = GOOD.replace(
        "[invoice, amount due, payment terms, vat, invoice]",
        "\n      - invoice\n      - amount due\n      - payment terms\n      - vat\n",
    )
    b = load_labels(write(tmp_path, reformatted))
    c = load_labels(write(tmp_path, GOOD.replace("vat", "tax")))
    assert a == b and a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()


def test_label_set_pickles(tmp_path: Path) -> None:
    labels = load_labels(write(tmp_path, GOOD))
    assert pickle.loads(pickle.dumps(labels)) == labels


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("labels: [a\n", "invalid YAML at line 2"),
        ("- a\n- b\n", "top-level 'labels:'"),
        ("labels: {}\n", "non-empty mapping"),
        ("labels:\n  a: just a string\n", "label 'a': expected a mapping"),
        ("labels:\n  a:\n    keyword: [x]\n", "unknown key(s) keyword"),
        ("labels:\n  a:\n    keywords: x\n", "'keywords' must be a list"),
        ("labels:\n  a:\n    keywords: [x, 3]\n", "keyword 3 is not a non-empty string"),
        ("labels:\n  a:\n    description: [x]\n", "'description' must be a string"),
        ("labels:\n  yes:\n    keywords: [x]\n", "label name True must be a non-empty string"),
        ("", "top-level 'labels:'"),
    ],
)
def test_bad_files_give_one_line_naming_file_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_labels(path)
    message = str(info.value)
    assert message.startswith(f"labels file {path}: ")
    assert problem in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_labels(tmp_path / "nope.yaml")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_bytes(b"labels:\n  \xff\xfe: {}\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_labels(path)


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        LabelSet(())
    with pytest.raises(ConfigError, match="duplicate"):
        LabelSet(("a", "a"))
