"""Every hostile input through ExtractText: the expected outcome, no hang, bounded memory.

The stored files come from ``bad_inputs`` and ``bad-inputs.csv``; the big ones are written into a
temporary folder by the corpus's own ``make-big-inputs.py`` (regular files only: symlinks, FIFOs and
unreadable files are the source's business, not extraction's). Memory is measured in a fresh
interpreter so that the figure is this extraction's and nobody else's.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from docmill.document import Document, DocumentRef, sha256_bytes
from docmill.errors import PermanentError
from docmill.processors.extract import ExtractText

MiB = 1024 * 1024
W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _outcome(path: Path, name: str, extract: ExtractText | None = None) -> tuple[str, str]:
    """('ok' | 'ok-empty' | 'error', text or message)."""
    data = path.read_bytes()
    doc = Document(DocumentRef(name, path.as_uri(), len(data)), sha256_bytes(data), content=data)
    try:
        out = (extract or ExtractText()).process(doc)
    except PermanentError as exc:
        return "error", f"{type(exc).__name__}: {exc}"
    return ("ok-empty" if out.is_empty else "ok"), out.text or ""


@pytest.mark.timeout(60)
def test_every_stored_bad_input_gives_its_expected_outcome(bad_inputs: Path) -> None:
    with (bad_inputs.parent / "bad-inputs.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["path"] for row in rows} == {p.name for p in bad_inputs.iterdir()}, "CSV and folder differ"
    wrong = []
    for row in rows:
        got, detail = _outcome(bad_inputs / row["path"], row["path"])
        if got != row["expected"]:
            wrong.append(f"{row['path']}: expected {row['expected']}, got {got} ({detail[:80]!r})")
        if got == "error":
            assert "\n" not in detail and len(detail) < 200, detail  # one clear line
    assert wrong == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("name", "expected", "words"),
    [
        ("latin1.txt", "ok", "Café naïve résumé über Straße"),
        ("utf16-bom.txt", "ok", "naïve café"),
        ("nul-bytes.txt", "ok", "textwithNULbytes"),
        ("no-extension", "ok", "without any file extension"),
        ("UPPER-CASE.PDF", "ok", "uuid_generate"),
        ("deeply-nested.html", "ok", "deep text"),
        ("unclosed-tags.html", "ok", "unclosed bold italic cell"),
        ("huge-line-count.txt", "ok", "needle"),
        ("encrypted.pdf", "error", "CorruptDocument: encrypted PDF: needs a password"),
        ("truncated.pdf", "error", "CorruptDocument: corrupt PDF"),
        ("elf-binary.txt", "error", "UnsupportedDocument: binary data (an ELF executable)"),
        ("gzip-named.html", "error", "UnsupportedDocument: binary data (gzip"),
        ("plain-text-named.docx", "error", "CorruptDocument: corrupt DOCX: not a zip archive"),
        ("zip-missing-parts.docx", "error", "CorruptDocument: a zip archive without word/document.xml"),
    ],
)
def test_bad_input_text_and_reasons(bad_inputs: Path, name: str, expected: str, words: str) -> None:
    got, detail = _outcome(bad_inputs / name, name)
    assert got == expected
    assert words in detail


def test_hidden_prompt_injection_is_not_extracted(bad_inputs: Path) -> None:
    got, text = _outcome(bad_inputs / "prompt-injection.html", "prompt-injection.html")
    assert (got, text) == ("ok", "Invoice 2041")


# ------------------------------------------------------------------------------------- big inputs


@pytest.fixture(scope="module")
def big_inputs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("big-inputs")
    script = shared_data / "make-big-inputs.py"
    subprocess.run([sys.executable, str(script), str(out)], check=True, timeout=120)
    return out


_MEASURE = """
import json, resource, sys
from pathlib import Path
from docmill.document import Document, DocumentRef
from docmill.errors import PermanentError
from docmill.processors.extract import ExtractText
path, options = Path(sys.argv[1]), json.loads(sys.argv[2])
data = path.read_bytes()
extract = ExtractText(**options)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    out = extract.process(Document(DocumentRef(path.name, str(path)), "0" * 64, content=data))
    result = {"status": "ok-empty" if out.is_empty else "ok", "chars": len(out.text), **out.metadata}
except PermanentError as exc:
    result = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({**result, "peak_growth_mib": (after - before) / 1024}))
"""


def _measure(path: Path, **options: object) -> dict[str, object]:
    """Extract ``path`` in a fresh interpreter; the result plus its peak-RSS growth in MiB."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.timeout(120)
def test_50mb_single_line_is_capped_in_bounded_memory(big_inputs: Path) -> None:
    result = _measure(big_inputs / "single-line-50mb.txt")
    assert result["status"] == "ok"
    assert result["truncated"] is True and result["chars"] == 1_000_000
    assert float(str(result["peak_growth_mib"])) < 40  # the file itself is 50 MiB; decoding 1 M chars


@pytest.mark.timeout(120)
def test_decompression_bomb_is_refused_by_its_declared_size(big_inputs: Path) -> None:
    result = _measure(big_inputs / "decompression-bomb.docx")
    assert result["status"] == "error"
    assert "ResourceLimitExceeded: DOCX declares 1,07" in str(result["message"])
    assert float(str(result["peak_growth_mib"])) < 20


@pytest.mark.timeout(120)
def test_the_stored_bomb_is_not_even_well_formed(big_inputs: Path) -> None:
    result = _measure(big_inputs / "decompression-bomb.docx", max_inflated_bytes=2**31)
    assert result["status"] == "error"
    assert "CorruptDocument: corrupt DOCX: word/document.xml is not well-formed XML" in str(result["message"])
    assert float(str(result["peak_growth_mib"])) < 20


@pytest.fixture(scope="module")
def valid_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A well-formed DOCX whose document.xml inflates to 256 MiB (about 300 KiB on disk)."""
    path = tmp_path_factory.mktemp("bomb") / "valid-bomb.docx"
    block = b"<w:p><w:r><w:t>" + b"A" * (MiB - 40) + b"</w:t></w:r></w:p>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(f"<w:document {W}><w:body>".encode())
            for _ in range(256):
                member.write(block)
            member.write(b"</w:body></w:document>")
    return path


@pytest.mark.timeout(120)
def test_well_formed_bomb_streams_in_bounded_memory_when_allowed(valid_bomb: Path) -> None:
    # Limit raised past the bomb's size: inflation is counted and parsing stops at max_chars.
    result = _measure(valid_bomb, max_inflated_bytes=2**31, max_chars=100_000)
    assert result["status"] == "ok", result
    assert result["truncated"] is True and result["chars"] == 100_000
    assert float(str(result["peak_growth_mib"])) < 40


@pytest.mark.timeout(120)
def test_well_formed_bomb_under_the_default_limit(valid_bomb: Path) -> None:
    result = _measure(valid_bomb, max_inflated_bytes=64 * MiB)
    assert result["status"] == "error"
    assert "ResourceLimitExceeded: DOCX declares 268,4" in str(result["message"])


@pytest.mark.timeout(120)
def test_bomb_that_lies_in_its_headers(valid_bomb: Path, tmp_path: Path) -> None:
    data = valid_bomb.read_bytes()
    size = zipfile.ZipFile(io.BytesIO(data)).getinfo("word/document.xml").file_size
    liar = tmp_path / "liar.docx"
    liar.write_bytes(data.replace(size.to_bytes(4, "little"), (4096).to_bytes(4, "little")))
    assert zipfile.ZipFile(liar).getinfo("word/document.xml").file_size == 4096
    result = _measure(liar, max_inflated_bytes=64 * MiB)
    assert result["status"] == "error", result
    assert "corrupt DOCX" in str(result["message"])
    assert float(str(result["peak_growth_mib"])) < 40


@pytest.mark.timeout(120)
def test_pdf_with_absurd_stream_length(big_inputs: Path) -> None:
    result = _measure(big_inputs / "huge-declared-length.pdf")
    assert result["status"] in ("ok-empty", "error"), result
    assert float(str(result["peak_growth_mib"])) < 40


# ------------------------------------------------------------------------------------- through a Job


@pytest.mark.timeout(120)
def test_bad_inputs_through_a_job_end_as_recorded_outcomes(bad_inputs: Path) -> None:
    from docmill.executors import get_executor
    from docmill.job import Job
    from docmill.outcome import Status
    from docmill.sources.files import DirectorySource

    with (bad_inputs.parent / "bad-inputs.csv").open(newline="") as handle:
        expected = {row["path"]: row["expected"] for row in csv.DictReader(handle)}
    status = {"ok": Status.OK, "ok-empty": Status.EMPTY, "error": Status.FAILED}
    job = Job(DirectorySource(bad_inputs), ExtractText())
    with get_executor("threads", workers=2) as executor:  # PDFs from two threads at once
        outcomes = {o.ref.id: o for o in executor.map_unordered(job, DirectorySource(bad_inputs))}
    assert {path: o.status for path, o in outcomes.items()} == {p: status[e] for p, e in expected.items()}
    for outcome in outcomes.values():
        if outcome.status is Status.FAILED:
            assert outcome.error is not None and outcome.error.type in (
                "UnsupportedDocument",
                "CorruptDocument",
            )
            assert not outcome.error.retryable
        else:
            assert outcome.result is not None and outcome.result["format"] in (
                "txt",
                "md",
                "html",
                "pdf",
                "docx",
            )
