"""Format readers on small documents built in the test: text encodings, Markdown, HTML, DOCX, PDF."""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from pathlib import Path

import pytest

from docmill.errors import CorruptDocument, ProcessingTimeout, ResourceLimitExceeded, UnsupportedDocument
from docmill.processors.formats import Limits
from docmill.processors.formats.docx import _Collector, _parse, read_docx
from docmill.processors.formats.html import read_html
from docmill.processors.formats.nesting import cap_nesting
from docmill.processors.formats.pdf import read_pdf
from docmill.processors.formats.sniff import sniff
from docmill.processors.formats.text import decode, read_markdown, read_text, strip_markdown

LIMITS = Limits(max_pages=100, max_inflated_bytes=10_000_000, max_chars=100_000)
W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


class SteppingClock:
    """Each reading of the clock moves it forward by ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += self.step
        return self.now

    def wall(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.now += seconds


# ------------------------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("data", "suffix", "expected"),
    [
        (b"%PDF-1.7\n...", ".txt", "pdf"),  # magic beats the extension
        (b"  \n%PDF-1.4", "", "pdf"),
        (b"PK\x03\x04rest", ".bin", "docx"),
        (b"hello", ".PDF", "pdf"),  # extension decides for unknown bytes, any case
        (b"hello", ".DocX", "docx"),
        (b"<!DOCTYPE html><p>x", "", "html"),
        (b"<!-- generator -->\n<html><body>x", "", "html"),
        (b"<p>a fragment</p>", ".htm", "html"),
        (b"# Title\n\ntext", ".MD", "md"),
        (b"just words", "", "txt"),
        (b"just words", ".log", "txt"),
        (b"<p>a fragment in a text file</p>", ".txt", "txt"),
    ],
)
def test_sniff_magic_first_then_extension(data: bytes, suffix: str, expected: str) -> None:
    assert sniff(data, suffix) == expected


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"\x7fELF\x02\x01\x01", "ELF"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"\x89PNG\r\n\x1a\n....", "PNG"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE2"),
        (b"\x00\x00\x00\x20ftypisom", "MP4"),
        (b"{\\rtf1\\ansi hello}", "RTF"),
        (b"%!PS-Adobe-3.0", "PostScript"),
    ],
)
def test_sniff_refuses_binary_magic_whatever_the_extension(data: bytes, what: str) -> None:
    with pytest.raises(UnsupportedDocument, match=what):
        sniff(data, ".txt")


# ------------------------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("naïve café".encode(), "utf-8"),
        (codecs.BOM_UTF8 + "naïve café".encode(), "utf-8"),
        ("naïve café".encode("utf-16"), "utf-16-le"),
        (codecs.BOM_UTF16_BE + "naïve café".encode("utf-16-be"), "utf-16-be"),
        (codecs.BOM_UTF32_LE + "naïve café".encode("utf-32-le"), "utf-32-le"),
        ("naïve café".encode("latin-1"), "cp1252"),
        ("naïve café – “quoted”".encode("cp1252"), "cp1252"),
    ],
)
def test_decodes_boms_utf8_and_legacy_text(data: bytes, encoding: str) -> None:
    text, used, truncated = decode(data, 1000)
    assert text.startswith("naïve café")
    assert (used, truncated) == (encoding, False)


def test_legacy_detection_finds_non_western_encodings() -> None:
    russian = "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 5
    text, encoding, _ = decode(russian.encode("cp1251"), 10_000)
    assert text == russian.strip() or text == russian
    assert encoding == "cp1251"


def test_mostly_utf8_with_broken_bytes_keeps_utf8_and_replaces() -> None:
    data = "déjà vu — ".encode() * 20 + b"\xff\xfe broken"
    text, encoding, _ = decode(data, 10_000)
    assert encoding == "utf-8"
    assert "déjà vu" in text
    assert "\ufffd" in text


def test_nul_bytes_are_removed_and_overstrike_undone() -> None:
    assert read_text(b"te\x00xt\x00", LIMITS).text == "text"
    assert read_text(b"N\bNA\bAM\bME\bE", LIMITS).text == "NAME"


def test_random_control_bytes_are_binary_not_text() -> None:
    data = bytes(range(1, 32)) * 40
    with pytest.raises(UnsupportedDocument, match="binary data, not text"):
        read_text(data, LIMITS)


def test_text_is_capped_without_decoding_the_whole_file() -> None:
    data = "é".encode() * 1_000_000
    text, _, truncated = decode(data, 10)
    assert (text, truncated) == ("é" * 10, True)


def test_cap_never_splits_a_character_at_the_byte_limit() -> None:
    data = "€".encode() * 50  # 3 bytes each; the byte limit (4 × 10 + 4) falls inside one
    text, _, truncated = decode(data, 10)
    assert text == "€" * 10
    assert truncated


def test_whitespace_is_tidied() -> None:
    assert read_text(b"a  \t b\r\n\r\n\r\n\r\nc\n", LIMITS).text == "a b\n\nc"


def test_markdown_markup_is_stripped_and_words_kept() -> None:
    source = (
        "# Invoice **2041**\n\n> quoted *note*\n\n- item one\n1. item two\n\n"
        "See [the terms](https://example.com/terms) and ![logo](logo.png).\n\n"
        "```python\nx = 1\n```\n---\n`code`"
    )
    text = strip_markdown(source)
    for gone in ("#", "**", "](", "```", "---", ">", "`"):
        assert gone not in text
    for kept in ("Invoice 2041", "quoted note", "item one", "item two", "the terms", "logo", "x = 1", "code"):
        assert kept in text
    assert read_markdown(b"## Heading\n\nbody", LIMITS).text == "Heading\n\nbody"


def test_markdown_keeps_snake_case_and_arithmetic() -> None:
    assert strip_markdown("use max_chars and 2 * 3 * 4") == "use max_chars and 2 * 3 * 4"


# ------------------------------------------------------------------------------------------- HTML


def test_html_keeps_visible_text_only() -> None:
    page = b"""<html><head><title>Title</title><meta name="description" content="meta words">
    <style>p { color: red }</style><script>var secret = 1;</script></head>
    <body><h1>Heading</h1><p>Visible <b>bold</b> text.</p>
    <div style="color: red; display : none">hidden by style</div>
    <p hidden>hidden by attribute</p><span style="visibility:hidden">invisible</span>
    <noscript>enable javascript</noscript><template><p>template</p></template>
    <p aria-hidden="true">decoration</p><p style="display:block">shown</p></body></html>"""
    text = read_html(page, LIMITS).text
    assert "Heading" in text and "Visible bold text." in text and "shown" in text
    gone = ("Title", "meta words", "color", "secret", "hidden by", "invisible", "javascript", "template")
    assert [word for word in (*gone, "decoration") if word in text] == []


def test_html_meta_charset_is_honoured_when_not_utf8() -> None:
    page = '<html><head><meta charset="iso-8859-1"></head><body>Café naïve</body></html>'.encode("latin-1")
    result = read_html(page, LIMITS)
    assert result.text == "Café naïve"
    assert result.encoding == "cp1252"


def test_html_utf8_wins_over_a_wrong_declaration() -> None:
    page = '<meta http-equiv="Content-Type" content="text/html; charset=US-ASCII"><p>Café</p>'.encode()
    assert read_html(page, LIMITS).text == "Café"


def test_html_fragment_and_unclosed_tags() -> None:
    assert read_html(b"<p>one<p>two <b>three", LIMITS).text == "one two three"


def test_html_text_is_capped() -> None:
    result = read_html(b"<p>" + b"word " * 10_000, Limits(1, 1, 100))
    assert len(result.text) == 100
    assert result.truncated


# ------------------------------------------------------------------------------------------- DOCX


def _docx(body: str, *, extra: dict[str, str] | None = None, prolog: str = "") -> bytes:
    xml = f'<?xml version="1.0"?>{prolog}<w:document {W}><w:body>{body}</w:body></w:document>'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", xml)
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _p(*runs: str) -> str:
    return "<w:p>" + "".join(f"<w:r><w:t xml:space='preserve'>{r}</w:t></w:r>" for r in runs) + "</w:p>"


def test_docx_paragraphs_tabs_breaks_and_tables() -> None:
    body = (
        _p("Invoice ", "2041")
        + "<w:p><w:r><w:t>Due</w:t><w:tab/><w:t>30 days</w:t><w:br/><w:t>net</w:t></w:r></w:p>"
        + "<w:tbl><w:tr><w:tc>"
        + _p("cell A")
        + "</w:tc><w:tc>"
        + _p("cell B")
        + "</w:tc></w:tr></w:tbl>"
        + "<w:p><w:r><w:delText>deleted</w:delText><w:instrText>PAGE</w:instrText></w:r></w:p>"
        + _p("Total &amp; VAT")
    )
    text = read_docx(_docx(body), LIMITS).text
    assert text.split("\n") == ["Invoice 2041", "Due 30 days", "net", "cell A", "cell B", "", "Total & VAT"]


def test_docx_without_text_is_empty() -> None:
    assert read_docx(_docx("<w:p/><w:sectPr/>"), LIMITS).text == ""


def test_docx_with_a_dtd_is_refused() -> None:
    prolog = '<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    with pytest.raises(CorruptDocument, match="DTD"):
        read_docx(_docx(_p("&b;"), prolog=prolog), LIMITS)


def test_docx_broken_xml_is_corrupt() -> None:
    with pytest.raises(CorruptDocument, match="not well-formed"):
        read_docx(_docx("<w:p><w:r>"), LIMITS)


def test_docx_declared_size_over_the_limit_is_refused_before_reading() -> None:
    data = _docx(_p("x" * 5000))
    with pytest.raises(ResourceLimitExceeded, match=r"declares 5,\d+ bytes .*\(max_inflated_bytes\)"):
        read_docx(data, Limits(100, 1000, 100_000))


def test_docx_inflated_bytes_are_counted_while_streaming() -> None:
    # A member that yields more than its (lying) header said: the count, not the header, stops it.
    member = io.BytesIO(f"<w:document {W}><w:body>".encode() + b"<w:p/>" * 200_000)
    with pytest.raises(ResourceLimitExceeded, match="inflates to over"):
        _parse(member, _Collector(10**9), Limits(1, 300_000, 1000), Limits(1, 1, 1).timer())


def test_docx_header_that_lies_about_its_size_is_caught() -> None:
    data = bytearray(_docx(_p("y" * 50_000)))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("word/document.xml")
    real = info.file_size.to_bytes(4, "little")
    data[:] = data.replace(real, (100).to_bytes(4, "little"))  # local header and central directory
    with pytest.raises(CorruptDocument, match="corrupt DOCX"):
        read_docx(bytes(data), LIMITS)


def test_docx_stops_parsing_at_max_chars() -> None:
    result = read_docx(_docx(_p("z" * 10_000) * 50), Limits(1, 10_000_000, 1234))
    assert len(result.text) == 1234
    assert result.truncated


def test_zip_that_is_not_a_docx() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hello")
    with pytest.raises(CorruptDocument, match="without word/document.xml"):
        read_docx(buffer.getvalue(), LIMITS)
    with pytest.raises(UnsupportedDocument, match="without word/document.xml"):
        read_docx(buffer.getvalue(), LIMITS, named_docx=False)


# ------------------------------------------------------------------------------------------- PDF


def _blank_pdf(pages: int) -> bytes:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(200, 200).close()
    buffer = io.BytesIO()
    pdf.save(buffer)
    pdf.close()
    return buffer.getvalue()


def test_pdf_page_guard() -> None:
    data = _blank_pdf(3)
    assert read_pdf(data, Limits(3, 1, 10)).pages == 3
    with pytest.raises(ResourceLimitExceeded, match="3 pages; the limit is 2"):
        read_pdf(data, Limits(2, 1, 10))


def test_pdf_blank_pages_give_empty_text() -> None:
    result = read_pdf(_blank_pdf(2), LIMITS)
    assert result.text.strip() == ""
    assert result.pages == 2


def test_pdf_deadline_is_checked_between_pages() -> None:
    limits = Limits(100, 1, 100, deadline=2.5, clock=SteppingClock(1.0))
    with pytest.raises(ProcessingTimeout, match="over 2.5 s"):
        read_pdf(_blank_pdf(5), limits)


@pytest.mark.parametrize("data", [b"%PDF-1.4\n", b"%PDF-1.7\n1 0 obj<<>>endobj\n" * 3, b"%PDF-" + bytes(300)])
def test_pdf_garbage_is_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptDocument, match="corrupt PDF"):
        read_pdf(data, LIMITS)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("piece", ["**a ", "[a](", "![", "``a `", "*a "])
def test_hostile_markdown_lines_cost_linear_time(piece: str) -> None:
    # Unbounded emphasis or link patterns scan to the end of the line from every opener:
    # 50,000 openers on one line would take minutes.
    text = read_markdown((piece * 50_000).encode(), Limits(1, 1, 1_000_000)).text
    assert text


# ------------------------------------------------------------------------------------------- nesting


def test_nesting_within_the_limit_is_left_alone(manpages: Path, manpage_labels: Path) -> None:
    pages = [row["path"] for row in csv.DictReader(manpage_labels.open()) if row["format"] == "html"]
    for path in pages[:20]:
        markup = (manpages / path).read_text()
        assert cap_nesting(markup) is markup


def test_nesting_past_the_limit_is_flattened_and_text_kept() -> None:
    assert cap_nesting("<div>" * 5 + "a" + "</div>" * 5, 3) == "<div>" * 3 + "a" + "</div>" * 3
    assert cap_nesting("<span><div>" * 3 + "a", 4) == "<span><div>" * 2 + "a"


def test_hidden_element_past_the_limit_goes_with_its_content() -> None:
    markup = "<div>" * 3 + "<div hidden>" + "<div>" * 3 + "secret" + "</div>" * 4 + "shown" + "</div>" * 3
    assert cap_nesting(markup, 3) == "<div>" * 3 + "shown" + "</div>" * 3
    unclosed = "<div>" * 3 + "<p>kept</p><span style='display : none'>" + "<div>secret" * 5
    assert cap_nesting(unclosed, 3) == "<div>" * 3 + "<p>kept</p>"


@pytest.mark.timeout(30)
def test_a_megabyte_of_nested_divs_parses_in_linear_time() -> None:
    # Unflattened, 200,000 nested divs would take lexbor minutes (cost grows with depth squared).
    data = (
        b"<div>" * 200_000 + b"<p>deep text</p><div style='display:none'>hidden</div>" + b"</div>" * 200_000
    )
    assert read_html(data, Limits(1, 1, 1_000_000)).text == "deep text"


@pytest.mark.timeout(60)
def test_a_process_forked_while_a_thread_reads_a_pdf_can_read_pdfs() -> None:
    import multiprocessing

    from docmill.processors.formats import pdf as pdf_module

    data = _blank_pdf(1)
    with pdf_module._PDFIUM:  # as if another thread were inside PDFium at fork time
        child = multiprocessing.get_context("fork").Process(target=read_pdf, args=(data, LIMITS))
        child.start()
    child.join(30)
    if child.is_alive():
        child.kill()
        child.join()
    assert child.exitcode == 0


def test_a_docx_whose_directory_points_before_the_file_is_corrupt_not_a_crash() -> None:
    """Found by fuzzing: the end record's directory offset past its place makes every member's
    offset negative, and zipfile raises ``ValueError: negative seek value`` when opening one."""
    import struct

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    data = bytearray(buf.getvalue())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<I", data, end + 16, struct.unpack_from("<I", data, end + 16)[0] + 1000)
    with pytest.raises(CorruptDocument, match="corrupt DOCX"):
        read_docx(bytes(data), LIMITS)
