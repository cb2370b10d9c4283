"""What a run and a sweep leave behind besides their numbers: figures and reports.

- `grids`: image grids as tensors (reconstructions, samples, interpolations, traversals, manifold);
- `render`: the matplotlib helpers every PNG shares;
- `image_figures`, `plots`: one run's PNGs, as grids with named rows and columns, and as plots;
- `figures`: the FIGURES registry, one entry per kind of figure, and `write_run_figures`;
- `sweep_figures`: a sweep's comparison grids, curves of every run and rate-distortion plot;
- `run_tables`, `sweep_files`, `sweep_entries`, `sweep_tables`, `sweep_observations`, `paired`: what a
  report shows, computed from typed records (RunMetrics, HistoryRow, the spec; a sweep folder read as a
  SweepSummary) apart from the writers below, which only format it;
- `report`, `sweep_report`, `html_page`: report.md of a run or a sweep (and a sweep's results.csv and
  results.md), and its self-contained HTML (figures in a printable grid, the mathematics as MathML);
- `run_pdf`, `sweep_pdf`, `pdf`: report.pdf, a two-page paper plus the derivation as an appendix,
  typeset with typst; `typst_markup` and `tex_typst` turn markdown and TeX into typst.
"""

from pathlib import Path

#: The derivation every report includes (package data: a wheel ships it).
DERIVATION = Path(__file__).resolve().parents[1] / "resources" / "elbo.md"
