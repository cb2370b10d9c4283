"""What a run and a sweep leave behind besides their numbers: figures and reports.

- `grids`: image grids as tensors (reconstructions, samples, interpolations, traversals, manifold);
- `render`: the matplotlib helpers every PNG shares;
- `image_figures`, `plots`: one run's PNGs, as grids with named rows and columns, and as plots;
- `figures`: the FIGURES registry, one entry per kind of figure, and `write_run_figures`;
- `sweep_figures`: a sweep's comparison grids, curves of every run and rate-distortion plot;
- `report`, `sweep_report`, `html_page`: report.md of a run or a sweep, and its self-contained HTML
  (figures in a printable grid, the mathematics as MathML);
- `run_pdf`, `sweep_pdf`, `pdf`: report.pdf, a two-page paper plus the derivation as an appendix,
  typeset with typst; `typst_markup` and `tex_typst` turn markdown and TeX into typst.
"""

from pathlib import Path

#: The derivation every report includes (package data: a wheel ships it).
DERIVATION = Path(__file__).resolve().parents[1] / "resources" / "elbo.md"
