#!/usr/bin/env python3
"""Render the example corpus from ``corpus-texts.yaml`` into ``corpus/`` and write ``corpus-labels.csv``.

Usage: python examples/make_corpus.py [--out DIR]

Each entry becomes a file in the format its extension names: plain text, Markdown, HTML (with the
page chrome real pages have: head, navigation, scripts, a hidden block), PDF (a small PDF writer
below: standard Helvetica fonts, a real text layer, no dependencies) and DOCX (WordprocessingML
written with zipfile). Two extra files exercise the pipeline: an exact duplicate of one invoice and
a PDF cut in half. Output is deterministic: re-running it gives the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import html
import re
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DUPLICATE = ("archive/2024/invoice-2024-0117.pdf", "downloads/invoice-2024-0117 (1).pdf")
BROKEN = ("archive/2024/lease-agreement-apt-4b.pdf", "inbox/scanned-lease-truncated.pdf")

Block = tuple[str, Any]  # ("h", text) | ("p", text) | ("ul", [items]) | ("ol", [items]) | ("table", rows)


# ------------------------------------------------------------------------------------------ blocks


def blocks(body: str) -> Iterator[Block]:
    """The body's paragraphs, headings, lists and tables."""
    for chunk in re.split(r"\n\s*\n", body.strip()):
        lines = [line.strip() for line in chunk.splitlines() if line.strip()]
        if lines[0].startswith("## "):
            yield "h", lines[0][3:]
            lines = lines[1:]
        if not lines:
            continue
        if all(line.startswith("|") for line in lines):
            yield "table", [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
        elif all(line.startswith("- ") for line in lines):
            yield "ul", [line[2:] for line in lines]
        elif all(re.match(r"\d+\. ", line) for line in lines):
            yield "ol", [line.split(". ", 1)[1] for line in lines]
        elif lines[-1].startswith("- ") and lines[0].endswith(":"):
            yield "p", lines[0]
            yield "ul", [line[2:] for line in lines[1:]]
        else:
            yield "p", " ".join(lines)


def plain(text: str) -> str:
    """Inline Markdown emphasis removed."""
    return re.sub(r"(\*\*|\*)(.+?)\1", r"\2", text)


# ------------------------------------------------------------------------------------------ text, md


def render_txt(title: str, body: str) -> bytes:
    out = [title, "=" * len(title), ""]
    for kind, value in blocks(body):
        if kind == "h":
            out += [value.upper(), ""]
        elif kind == "table":
            widths = [max(len(row[i]) for row in value if i < len(row)) for i in range(len(value[0]))]
            out += [
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
                for row in value
            ]
            out.append("")
        elif kind in ("ul", "ol"):
            marks = [f"{i}." if kind == "ol" else "-" for i in range(1, len(value) + 1)]
            out += [f"  {mark} {plain(item)}" for mark, item in zip(marks, value, strict=True)] + [""]
        else:
            out += [*textwrap.wrap(plain(value), 78), ""]
    return "\n".join(out).encode()


def render_md(title: str, body: str) -> bytes:
    out = [f"# {title}", ""]
    for kind, value in blocks(body):
        if kind == "h":
            out += [f"## {value}", ""]
        elif kind == "table":
            header, *rows = value
            out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            out += ["| " + " | ".join(row) + " |" for row in rows] + [""]
        elif kind == "ul":
            out += [f"- {item}" for item in value] + [""]
        elif kind == "ol":
            out += [f"{i}. {item}" for i, item in enumerate(value, 1)] + [""]
        else:
            out += [value, ""]
    return "\n".join(out).encode()


# ------------------------------------------------------------------------------------------ HTML

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body {{ font-family: serif; max-width: 42rem; margin: auto; }} td {{ padding: 0 1em; }}</style>
<script>window.dataLayer = window.dataLayer || []; function track(e) {{ dataLayer.push(e); }}</script>
</head>
<body>
<nav><a href="/">Home</a> | <a href="/archive">Archive</a> | <a href="/contact">Contact</a></nav>
<main>
<h1>{title}</h1>
{content}
</main>
<div class="promo" style="display: none">Popular searches: invoice template, contract template,
recipe ideas, breaking news, research paper, support ticket.</div>
<footer><p>Printed from the document archive.</p></footer>
<script>track({{"event": "page_view"}});</script>
</body>
</html>
"""


def _inline(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text, quote=False))


def render_html(title: str, body: str) -> bytes:
    parts = []
    for kind, value in blocks(body):
        if kind == "h":
            parts.append(f"<h2>{_inline(value)}</h2>")
        elif kind == "table":
            header, *rows = value
            head = "".join(f"<th>{_inline(c)}</th>" for c in header)
            cells = ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows]
            parts.append(f"<table>\n<tr>{head}</tr>\n" + "\n".join(cells) + "\n</table>")
        elif kind in ("ul", "ol"):
            items = "\n".join(f"<li>{_inline(item)}</li>" for item in value)
            parts.append(f"<{kind}>\n{items}\n</{kind}>")
        else:
            parts.append(f"<p>{_inline(value)}</p>")
    return _PAGE.format(title=html.escape(title), content="\n".join(parts)).encode()


# ------------------------------------------------------------------------------------------ PDF

PAGE_W, PAGE_H, MARGIN, LEADING, WRAP = 595, 842, 64, 14, 92


def _pdf_lines(title: str, body: str) -> list[tuple[str, str]]:
    """(font, text) lines: F2 bold for the title and headings, F1 for the rest, "" for a gap."""
    lines: list[tuple[str, str]] = [("F2", part) for part in textwrap.wrap(title, 60)] + [("", "")]
    for kind, value in blocks(body):
        if kind == "h":
            lines += [("F2", value)]
        elif kind == "table":
            lines += [("F1", "    ".join(row)) for row in value]
        elif kind in ("ul", "ol"):
            for i, item in enumerate(value, 1):
                mark = f"{i}." if kind == "ol" else "\u2022"
                wrapped = textwrap.wrap(plain(item), WRAP - 4)
                lines += [("F1", f"{mark} {wrapped[0]}")] + [("F1", f"   {rest}") for rest in wrapped[1:]]
        else:
            lines += [("F1", line) for line in textwrap.wrap(plain(value), WRAP)]
        lines.append(("", ""))
    return lines


def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _page_stream(lines: list[tuple[str, str]]) -> bytes:
    out = [b"BT", b"%d TL" % LEADING, b"%d %d Td" % (MARGIN, PAGE_H - MARGIN)]
    for font, text in lines:
        if font:
            size = 15 if font == "F2" and text == lines[0][1] else 10.5
            out += [f"/{font} {size:g} Tf".encode(), _pdf_string(text) + b" Tj"]
        out.append(b"T*")
    return b"\n".join([*out, b"ET"])


def render_pdf(title: str, body: str) -> bytes:
    lines = _pdf_lines(title, body)
    per_page = (PAGE_H - 2 * MARGIN) // LEADING
    pages = [lines[i : i + per_page] for i in range(0, len(lines), per_page)]
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    for i, page in enumerate(pages):
        stream = _page_stream(page)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] /Contents {6 + 2 * i} 0 R "
            "/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    return _pdf_file(objects, title)


def _pdf_file(objects: list[bytes], title: str) -> bytes:
    objects = [*objects, b"<< /Title " + _pdf_string(title) + b" /Producer (docmill example corpus) >>"]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
    return bytes(out) + trailer.encode() + b"startxref\n%d\n%%%%EOF\n" % xref


# ------------------------------------------------------------------------------------------ DOCX

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="word/document.xml" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>'
    "</Relationships>"
)


def _run(text: str, *, bold: bool = False, size: int | None = None) -> str:
    props = ("<w:b/>" if bold else "") + (f'<w:sz w:val="{size}"/>' if size else "")
    rpr = f"<w:rPr>{props}</w:rPr>" if props else ""
    return f'<w:r>{rpr}<w:t xml:space="preserve">{html.escape(text, quote=False)}</w:t></w:r>'


def _para(text: str, **style: Any) -> str:
    runs = []
    for i, piece in enumerate(re.split(r"\*\*(.+?)\*\*", text)):
        if piece:
            runs.append(_run(piece, bold=style.get("bold", False) or i % 2 == 1, size=style.get("size")))
    return "<w:p>" + "".join(runs) + "</w:p>"


def _table(rows: list[list[str]]) -> str:
    cells = ["<w:tr>" + "".join(f"<w:tc>{_para(cell)}</w:tc>" for cell in row) + "</w:tr>" for row in rows]
    return '<w:tbl><w:tblPr><w:tblW w:w="0" w:type="auto"/></w:tblPr>' + "".join(cells) + "</w:tbl>"


def render_docx(title: str, body: str) -> bytes:
    parts = [_para(title, bold=True, size=32)]
    for kind, value in blocks(body):
        if kind == "h":
            parts.append(_para(value, bold=True, size=26))
        elif kind == "table":
            parts.append(_table(value))
        elif kind in ("ul", "ol"):
            marks = [f"{i}." if kind == "ol" else "\u2022" for i in range(1, len(value) + 1)]
            parts += [_para(f"{mark} {item}") for mark, item in zip(marks, value, strict=True)]
        else:
            parts.append(_para(value))
    document = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="{_W}"><w:body>'
        + "".join(parts)
        + '<w:sectPr><w:pgSz w:w="11906" w:h="16838"/></w:sectPr></w:body></w:document>'
    )
    return _zip({"[Content_Types].xml": _CONTENT_TYPES, "_rels/.rels": _RELS, "word/document.xml": document})


def _zip(members: dict[str, str]) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))  # fixed: reproducible bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ corpus

RENDERERS = {
    ".txt": render_txt,
    ".md": render_md,
    ".html": render_html,
    ".pdf": render_pdf,
    ".docx": render_docx,
}


def make_corpus(out: Path, labels_csv: Path) -> list[tuple[str, str]]:
    """Write every document under ``out`` and the truth file; return the (path, label) rows."""
    entries = yaml.safe_load((HERE / "corpus-texts.yaml").read_text(encoding="utf-8"))["documents"]
    truth = {}
    for entry in entries:
        target = out / entry["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(RENDERERS[target.suffix](entry["title"], entry["body"]))
        truth[entry["path"]] = entry["label"]
    for source, copy in (DUPLICATE, BROKEN):
        data = (out / source).read_bytes()
        (out / copy).write_bytes(data if copy == DUPLICATE[1] else data[: len(data) // 2])
        truth[copy] = truth[source]
    rows = sorted(truth.items())
    with labels_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HERE / "corpus", help="corpus folder (default: examples/corpus)"
    )
    parser.add_argument("--labels-csv", type=Path, default=None, help="truth file (default: beside --out)")
    args = parser.parse_args()
    labels_csv = args.labels_csv or args.out.parent / f"{args.out.name}-labels.csv"
    rows = make_corpus(args.out, labels_csv)
    print(f"wrote {len(rows)} documents under {args.out} and {labels_csv}")  # noqa: T201


if __name__ == "__main__":
    main()
