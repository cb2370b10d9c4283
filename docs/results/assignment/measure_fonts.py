"""Measure the smallest printed text of an assignment report: `python measure_fonts.py SWEEP_FOLDER`.

1. Typeset text (body, tables, captions, mathematics): every `Tf` font size in report.pdf's content
   streams (typst sets text with a unit text matrix, `1 0 0 -1 x y Tm`, so the Tf size is the printed
   size), counted by size and split into main body and appendix pages.
2. Figure text: figures are PNGs; render.save_png records each figure's smallest font (points, at the
   size it was drawn) and its dpi in the PNG, and doc_typst places it at a known width, so its printed
   size is font x placed width / drawn width.
"""

import collections
import re
import sys
import zlib
from pathlib import Path

from vaezoo.outputs.assignment import assignment_document
from vaezoo.outputs.doc_typst import placed_width, printed_fonts
from vaezoo.outputs.document import MainEnd
from vaezoo.outputs.sweep_files import read_sweep
from vaezoo.outputs.sweep_tables import sweep_tables


def pdf_font_sizes(pdf: bytes) -> collections.Counter:
    sizes: collections.Counter = collections.Counter()
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.DOTALL):
        try:
            content = zlib.decompress(match.group(1))
        except zlib.error:
            continue  # an image or a font, not a content stream
        for size in re.findall(rb"/[\w.+-]+ ([\d.]+) Tf", content):
            sizes[float(size)] += 1
    return sizes


def main(folder: Path) -> None:
    sizes = pdf_font_sizes((folder / "report.pdf").read_bytes())
    print("typeset text, font size (pt): count ->", dict(sorted(sizes.items())))
    doc = assignment_document(folder, sweep_tables(read_sweep(folder), folder))
    end = next(i for i, block in enumerate(doc.blocks) if isinstance(block, MainEnd))
    main_figures = {p.path for b in doc.blocks[:end] if hasattr(b, "panels") for p in b.panels}
    for path, font in printed_fonts(doc).items():
        where = "main body" if path in main_figures else "appendix"
        width = next(placed_width(folder, p) for f in doc.figures for p in f.panels if p.path == path)
        print(f"figure {path} ({where}): placed {width:.2f} in wide, smallest text prints at {font:.2f} pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
