"""``s3://`` sources against a real S3 protocol server on loopback (moto server mode: tests/s3_server.py)."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from test_run_manpages import write_labels

from docmill.config import RunConfig
from docmill.errors import ConfigError, ResourceLimitExceeded, SourceError
from docmill.journal.base import Query
from docmill.journal.sqlite import SqliteJournal
from docmill.runner import RunResult, run_config
from docmill.sources.files import FileListSource
from docmill.sources.s3 import S3Source
from s3_server import S3, SECRET, free_port


def run(source: str, folder: Path, name: str, **settings: object) -> RunResult:
    config = RunConfig.from_mapping(
        {
            "source": source, "strategy": "processes", "workers": 2, "progress": "none",
            "labels": str(write_labels(folder)), "db": str(folder / f"{name}.db"), **settings,
        }
    )  # fmt: skip
    return run_config(config)


def labels_of(db: Path) -> dict[str, tuple[str, str | None]]:
    with SqliteJournal(db) as journal:
        return {r.path: (r.status, r.label) for r in journal.iter_documents(Query())}


def put(s3: S3, key: str, body: bytes) -> None:
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=body)


def test_a_prefix_gives_the_labels_of_the_local_copy_and_resumes_without_reading(
    s3: S3, manpages: Path, tmp_path: Path
) -> None:
    local = tmp_path / "local"
    for path in sorted(p for p in manpages.rglob("*") if p.is_file())[:60]:
        target = local / path.relative_to(manpages)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    assert s3.upload_tree(local, "man") == 60
    first = run(s3.url("man"), tmp_path, "s3")
    assert first.stats.done == 60 and first.stats.skipped == 0
    run(str(local), tmp_path, "local")
    assert labels_of(tmp_path / "s3.db") == labels_of(tmp_path / "local.db")
    again = run(s3.url("man/"), tmp_path, "s3")
    assert again.stats.done == 0 and again.stats.skipped == 60  # already done: no object fetched


def test_an_object_rewritten_is_processed_again_and_only_it(s3: S3, tmp_path: Path) -> None:
    for i in range(3):
        put(s3, f"p/doc{i}.txt", f"manual page number {i}".encode())
    assert run(s3.url("p"), tmp_path, "j").stats.done == 3
    put(s3, "p/doc1.txt", b"manual page, edited")  # same key, new ETag
    put(s3, "p/doc2.txt", b"manual page number 2")  # same bytes: same ETag, nothing to do
    again = run(s3.url("p"), tmp_path, "j")
    assert (again.stats.done, again.stats.skipped) == (1, 2)


def test_refs_carry_size_and_etag_and_the_listing_pages(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    import docmill.sources.s3 as s3_module

    monkeypatch.setattr(s3_module, "PAGE_SIZE", 2)  # 5 keys: three pages
    for i in range(5):
        put(s3, f"a/{i}.txt", b"x" * (i + 1))
    put(s3, "a/folder/", b"")  # a folder marker: not a document
    put(s3, "b/other.txt", b"elsewhere")
    refs = list(S3Source(s3.url("a"), exclude=["3.txt"]))
    assert [(r.id, r.size) for r in refs] == [("0.txt", 1), ("1.txt", 2), ("2.txt", 3), ("4.txt", 5)]
    assert len({r.mtime_ns for r in refs}) == 4 and all(r.mtime_ns for r in refs)


def test_per_document_failures_have_one_line_reasons(s3: S3) -> None:
    put(s3, "d/big.txt", b"y" * 5000)
    put(s3, "d/gone.txt", b"soon deleted")
    source = S3Source(s3.url("d"), max_bytes=1000)
    big, gone = list(source)
    s3.client.delete_object(Bucket=s3.bucket, Key="d/gone.txt")
    with pytest.raises(SourceError, match=r"gone.txt: no such object$"):
        source.load(gone)
    with pytest.raises(ResourceLimitExceeded, match="5,000 bytes exceeds max_bytes=1,000"):
        source.load(big)


def test_a_broken_connection_fails_the_document_not_the_worker(
    s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    import docmill.sources.s3 as s3_module

    put(s3, "c/one.txt", b"one")
    (ref,) = list(S3Source(s3.url("c")))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nobody listens
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setattr(s3_module, "_client_cache", None)
    with pytest.raises(SourceError, match="connection failed after retries") as info:
        S3Source(s3.url("c")).load(ref)
    assert "\n" not in str(info.value) and info.value.retryable  # failed, tried again next run


def test_a_list_file_of_s3_urls(s3: S3, tmp_path: Path) -> None:
    put(s3, "l/a.txt", b"alpha")
    put(s3, "l/b.txt", b"beta")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# objects\n{s3.url('l/a.txt')}\n{s3.url('l/b.txt')}\n{s3.url('l/none.txt')}\n")
    result = run(f"@{listing}", tmp_path, "j")
    assert result.stats.done == 3
    got = labels_of(tmp_path / "j.db")
    assert {got[s3.url(k)][0] for k in ("l/a.txt", "l/b.txt")} <= {"ok", "empty"}
    with SqliteJournal(tmp_path / "j.db") as journal:
        (missing,) = journal.iter_documents(Query(status=["failed", "quarantined"]))
    assert missing.path == s3.url("l/none.txt")
    assert missing.error_message == f"{s3.url('l/none.txt')}: no such object"
    assert missing.status == "failed"  # not quarantined: it may be there next time
    assert FileListSource(listing).count() == 3
    put(s3, "l/none.txt", b"gamma, uploaded since")
    again = run(f"@{listing}", tmp_path, "j")
    assert (again.stats.done, again.stats.skipped) == (1, 2)
    assert labels_of(tmp_path / "j.db")[s3.url("l/none.txt")][0] in {"ok", "empty"}


def test_wrong_bucket_stops_before_any_work_with_one_line(s3: S3, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^s3://no-such-bucket-x: no such bucket$"):
        run("s3://no-such-bucket-x/p", tmp_path, "j")
    assert not (tmp_path / "j.db").exists()
    argv = [sys.executable, "-m", "docmill", "run", "s3://no-such-bucket-x/p", "--db", str(tmp_path / "c.db")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert "no such bucket" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_credentials_never_reach_the_journal_or_an_export(s3: S3, tmp_path: Path) -> None:
    put(s3, "s/a.txt", b"a manual page")
    run(s3.url("s"), tmp_path, "j")
    export = tmp_path / "out.jsonl"
    argv = [
        sys.executable,
        "-m",
        "docmill",
        "export",
        "--db",
        str(tmp_path / "j.db"),
        "-o",
        str(export),
        "-f",
        "jsonl",
    ]
    subprocess.run(argv, capture_output=True, timeout=60, check=True)
    for path in [*tmp_path.glob("j.db*"), export]:
        assert SECRET.encode() not in path.read_bytes(), path


class _Throttling(http.server.BaseHTTPRequestHandler):
    """Answers the first ``refusals`` requests 503 SlowDown, as S3 does under load; forwards the rest."""

    upstream = ""
    refusals = 0

    def do_GET(self) -> None:
        if type(self).refusals > 0:
            type(self).refusals -= 1
            body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            self._reply(503, {"Content-Type": "application/xml"}, body)
            return
        request = urllib.request.Request(self.upstream + self.path, headers=dict(self.headers))
        with urllib.request.urlopen(request, timeout=10) as answer:
            self._reply(answer.status, dict(answer.headers), answer.read())

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in {"content-length", "transfer-encoding", "connection", "date", "server"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_slowdown_503_is_retried_with_backoff(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    import docmill.sources.s3 as s3_module

    put(s3, "t/a.txt", b"throttled but read")
    (ref,) = list(S3Source(s3.url("t")))
    _Throttling.upstream, _Throttling.refusals = s3.endpoint, 2
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.setattr(s3_module, "_client_cache", None)
        assert S3Source(s3.url("t")).load(ref).content == b"throttled but read"
        assert _Throttling.refusals == 0  # both 503s were met, and retried
    finally:
        proxy.shutdown()
        proxy.server_close()


@pytest.mark.slow
def test_the_whole_man_page_corpus_from_s3_equals_the_local_run(
    s3: S3, manpages: Path, tmp_path: Path
) -> None:
    count = s3.upload_tree(manpages, "man")
    assert run(s3.url("man"), tmp_path, "s3").stats.done == count
    run(str(manpages), tmp_path, "local")
    assert labels_of(tmp_path / "s3.db") == labels_of(tmp_path / "local.db")
    again = run(s3.url("man"), tmp_path, "s3")
    assert (again.stats.done, again.stats.skipped) == (0, count)
