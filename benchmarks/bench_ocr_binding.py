"""tesserocr vs pytesseract on the same rendered pages: seconds per page and characters read.

usage: python benchmarks/bench_ocr_binding.py SCANS_DIR [--dpi 150] [--lang eng]

Renders every page of the PDFs in SCANS_DIR (image-only scans from ../shared/data/make-scans.py) once,
then OCRs them with one reused tesserocr engine and with pytesseract (a process per page).
"""

from __future__ import annotations

import argparse
import glob
import os
import time

import pypdfium2 as pdfium
import pytesseract
import tesserocr

from docmill.processors.formats.ocr import tessdata_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scans")
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--lang", default="eng")
    args = parser.parse_args()
    images = []
    for path in sorted(glob.glob(os.path.join(args.scans, "**", "*.pdf"), recursive=True)):
        pdf = pdfium.PdfDocument(path)
        images += [page.render(scale=args.dpi / 72).to_pil().convert("L") for page in pdf]
    started = time.perf_counter()
    with tesserocr.PyTessBaseAPI(path=tessdata_dir() or "", lang=args.lang) as api:
        ours = []
        for image in images:
            api.SetImage(image)
            ours.append(api.GetUTF8Text())
    middle = time.perf_counter()
    theirs = [pytesseract.image_to_string(image, lang=args.lang) for image in images]
    ended = time.perf_counter()
    pages = len(images)
    print(
        f"{pages} pages: tesserocr {(middle - started) / pages:.2f} s/page ({sum(map(len, ours))} chars), "
        f"pytesseract {(ended - middle) / pages:.2f} s/page ({sum(map(len, theirs))} chars)"
    )


if __name__ == "__main__":
    main()
