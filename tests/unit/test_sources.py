"""Sources: deterministic listing, globs, hostile entries as failing refs, size guard, JSONL offsets."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from docmill.errors import ConfigError, ResourceLimitExceeded, SourceError
from docmill.sources.base import Source
from docmill.sources.files import DirectorySource, FileListSource
from docmill.sources.jsonl import JsonlSource


def tree(root: Path) -> Path:
    for rel, text in {
        "b.txt": "bee",
        "a.txt": "ay",
        "sub/z.pdf": "%PDF",
        "sub/deeper/c.md": "# c",
        "skip/x.txt": "x",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def ids(source: Source) -> list[str]:
    return [r.id for r in source]


def test_directory_lists_recursively_in_sorted_order(tmp_path: Path) -> None:
    source = DirectorySource(tree(tmp_path))
    assert ids(source) == ["a.txt", "b.txt", "skip/x.txt", "sub/deeper/c.md", "sub/z.pdf"]
    assert source.count() == 5
    assert isinstance(source, Source)


def test_include_and_exclude_globs(tmp_path: Path) -> None:
    tree(tmp_path)
    assert ids(DirectorySource(tmp_path, include=["*.txt"])) == ["a.txt", "b.txt", "skip/x.txt"]
    assert ids(DirectorySource(tmp_path, exclude=["skip/*", "*.pdf"])) == [
        "a.txt",
        "b.txt",
        "sub/deeper/c.md",
    ]


def test_load_reads_content_and_hashes_it(tmp_path: Path) -> None:
    source = DirectorySource(tree(tmp_path))
    ref = next(r for r in source if r.id == "b.txt")
    assert ref.size == 3 and ref.mtime_ns is not None
    doc = source.load(ref)
    assert doc.content == b"bee" and doc.sha256 == hashlib.sha256(b"bee").hexdigest()


def test_refs_stream_lazily(tmp_path: Path) -> None:
    for i in range(50):
        (tmp_path / f"d{i:02d}").mkdir()
        (tmp_path / f"d{i:02d}" / "f.txt").write_text("x")
    iterator = iter(DirectorySource(tmp_path))
    assert next(iterator).id == "d00/f.txt"  # the first ref arrives before the walk is done


def test_sources_pickle(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": 1, "text": "x"}\n')
    for source in (DirectorySource(tree(tmp_path)), JsonlSource(tmp_path / "a.jsonl")):
        clone = pickle.loads(pickle.dumps(source))
        assert ids(clone) == ids(source)


def test_a_fifo_is_listed_but_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    source = DirectorySource(tmp_path)
    (ref,) = list(source)
    done: list[BaseException] = []
    worker = threading.Thread(target=lambda: _capture(source, ref, done), daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "loading a FIFO blocked"
    assert isinstance(done[0], SourceError) and "named pipe" in str(done[0])


def _capture(source: Source, ref: object, done: list[BaseException]) -> None:
    try:
        source.load(ref)  # type: ignore[arg-type]
    except BaseException as exc:
        done.append(exc)


def _dangling(folder: Path) -> None:
    os.symlink("missing.txt", folder / "dangling.txt")


def _loop(folder: Path) -> None:
    os.symlink("l2", folder / "l1")
    os.symlink("l1", folder / "l2")


@pytest.mark.parametrize(("make", "reason"), [(_dangling, "dangling symlink"), (_loop, "symlink loop")])
def test_bad_links_become_failing_refs(tmp_path: Path, make: Callable[[Path], None], reason: str) -> None:
    make(tmp_path)
    source = DirectorySource(tmp_path)
    refs = list(source)
    assert refs
    for ref in refs:
        with pytest.raises(SourceError, match=reason):
            source.load(ref)


def test_a_directory_symlink_loop_is_reported_once(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("x")
    os.symlink("..", tmp_path / "d" / "again")
    source = DirectorySource(tmp_path)
    assert ids(source) == ["d/again", "d/f.txt"]
    loop = next(iter(source))
    with pytest.raises(SourceError, match="loop"):
        source.load(loop)


def test_max_bytes_fails_big_files_without_reading_them(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_bytes(b"x" * 2000)
    (tmp_path / "small.txt").write_bytes(b"x" * 10)
    source = DirectorySource(tmp_path, max_bytes=1000)
    big, small = list(source)
    with pytest.raises(ResourceLimitExceeded, match="2,000 bytes"):
        source.load(big)
    assert source.load(small).content == b"x" * 10


def test_missing_root_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        DirectorySource(tmp_path / "nope")


def test_file_list_source(tmp_path: Path) -> None:
    tree(tmp_path)
    listing = tmp_path / "list.txt"
    listing.write_text(f"# my files\nb.txt\n\nsub/z.pdf\n{tmp_path / 'a.txt'}\nmissing.txt\n")
    source = FileListSource(listing)
    assert ids(source) == ["b.txt", "sub/z.pdf", "a.txt", "missing.txt"]
    assert source.count() == 4
    refs = list(source)
    assert source.load(refs[0]).content == b"bee"
    with pytest.raises(SourceError):
        source.load(refs[3])


def test_jsonl_source_seeks_to_each_line(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"key": "a", "body": "first text"}),
        "",
        "{not json",
        json.dumps({"key": "c", "body": "third ünï"}),
        json.dumps(["a list"]),
        json.dumps({"key": "e"}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = JsonlSource(path, id_field="key", text_field="body")
    refs = list(source)
    assert [r.id for r in refs] == ["a", "line-3", "c", "line-5", "e"]
    assert source.count() == 5
    assert source.load(refs[2]).text == "third ünï"
    assert source.load(refs[0]).sha256 == hashlib.sha256(b"first text").hexdigest()
    for bad, why in ((refs[1], "malformed JSON"), (refs[3], "not an object"), (refs[4], "no string field")):
        with pytest.raises(SourceError, match=why):
            source.load(bad)


def test_folder_links_leaving_the_root_are_not_walked_unless_asked(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("x")
    root = tmp_path / "root"
    (root / "inner").mkdir(parents=True)
    (root / "inner" / "a.txt").write_text("a")
    os.symlink(outside, root / "elsewhere")
    os.symlink(root / "inner", root / "shortcut")
    source = DirectorySource(root)
    assert ids(source) == ["elsewhere", "inner/a.txt", "shortcut/a.txt"]
    with pytest.raises(SourceError, match="outside the source"):
        source.load(next(iter(source)))
    assert "elsewhere/secret.txt" in ids(DirectorySource(root, follow_links=True))


def test_jsonl_load_reads_in_a_forked_child_and_after_pickling(tmp_path: Path) -> None:
    """Each process opens its own descriptor: one inherited across fork or pickled is never used."""
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "text": f"text {i}"}) + "\n" for i in range(3)))
    source = JsonlSource(path)
    refs = list(source)
    assert source.load(refs[1]).text == "text 1"  # the parent opens its descriptor first
    copy = pickle.loads(pickle.dumps(source))
    assert copy.load(refs[2]).text == "text 2"
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read a line, report it through the pipe, leave at once
        os.write(writer, (source.load(refs[0]).text or "").encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(pid, 0)
    assert os.read(reader, 100) == b"text 0"
    os.close(reader)
