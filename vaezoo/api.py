"""The Python API, for notebooks as much as scripts: run a spec, or load a run folder, and work with
the `Run` you get back.

    >>> import vaezoo
    >>> run = vaezoo.run("experiments/quickstart.yaml", train__epochs=2)   # re-running resumes or reuses
    >>> run.metrics.test_nll_iw, run.metrics.iw_samples
    >>> run.figure("samples")                                              # a matplotlib Figure
    >>> images = run.sample(16, seed=1)
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from vaezoo import runner, saved_runs
from vaezoo.distributions import DiagonalGaussian
from vaezoo.metrics import HistoryRow, RunMetrics, finished_metrics
from vaezoo.model import VAE
from vaezoo.spec import SLOTS, ExperimentSpec, load_spec, validate

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from vaezoo.data import DeviceData


@dataclass
class Run:
    """A finished run: its folder, spec, trained model (in eval mode), typed metrics, history and data."""

    path: Path
    spec: ExperimentSpec
    model: VAE
    metrics: RunMetrics
    history: list[HistoryRow]
    #: the run's dataset on the model's device, test images binarized as for evaluation
    data: DeviceData = field(repr=False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x) of images (B, C, H, W) in [0, 1]: unpacks as (mu, logvar)."""
        return self.model.encode(x.to(self.device))

    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The likelihood's mean image decoded from each image's posterior mean."""
        return self.model.likelihood.mean(self.model.decode(self.encode(x).mu))

    @torch.inference_mode()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """n images decoded from prior draws (the likelihood's mean); the same seed gives the same images."""
        return self.model.sample(n, torch.Generator().manual_seed(seed))

    @torch.inference_mode()
    def interpolate(self, a: torch.Tensor, b: torch.Tensor, steps: int = 10) -> torch.Tensor:
        """Images decoded along the line between the posterior means of images a and b (each (C, H, W))."""
        mu = self.encode(torch.stack([a, b])).mu
        t = torch.linspace(0.0, 1.0, steps, device=mu.device).unsqueeze(1)
        return self.model.likelihood.mean(self.model.decode((1 - t) * mu[0] + t * mu[1]))

    def figure(self, kind: str) -> Figure:
        """One of the run's figures (see `figure_kinds()`) as a matplotlib Figure, drawn from the model now."""
        import matplotlib.image
        import matplotlib.pyplot as plt

        from vaezoo.outputs.figures import FIGURES

        draw = FIGURES.get(kind).draw
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{kind}.png"
            draw(self._figure_inputs(), path)
            image = matplotlib.image.imread(path)
        height, width = image.shape[:2]
        fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))  # an axes, not figimage: IPython shows no figure that has none
        ax.imshow(image)
        ax.axis("off")
        plt.close(fig)  # a notebook shows the returned figure; pyplot keeps no second copy
        return fig

    def figure_kinds(self) -> list[str]:
        """The figures that apply to this run's model."""
        from vaezoo.outputs.figures import applicable_figures

        return applicable_figures(self.model.latent_dim)

    def _figure_inputs(self) -> Any:
        from vaezoo.evaluate import code_moments
        from vaezoo.outputs.figures import RunFigureInputs

        data = self.data
        mu = code_moments(self.model, data.test_images, self.spec.eval.batch_size).mean
        return RunFigureInputs(
            model=self.model,
            test_images=data.test_images,
            test_labels=data.test_labels,
            kl_per_dim=self.metrics.kl_per_dim,
            history=[row.to_json() for row in self.history],
            active_units_mask=self.metrics.active_mask,
            mu_test=mu,
        )


def run(spec: str | Path | ExperimentSpec | dict[str, Any], out: str | Path = "runs", **overrides: Any) -> Run:
    """Train and evaluate a spec (a YAML path, an ExperimentSpec or a plain dict) into out/<name>.

    Keyword overrides use `__` for the dots of a spec path: `train__epochs=2` sets train.epochs.
    Running the same spec again reuses the finished run, or resumes an interrupted one; a different
    spec under the same name is refused (change `name=`).
    """
    resolved = _resolve(spec, overrides)
    runner.run(resolved, Path(out), resume=True)
    return load(Path(out) / resolved.name)


def load(run_dir: str | Path, device: str | None = None) -> Run:
    """A finished run folder as a `Run` (its model on `device`, else the spec's device)."""
    path = Path(run_dir)
    metrics = finished_metrics(path)
    loaded = saved_runs.load_run(path, device)
    loaded.model.eval()
    return Run(path, loaded.spec, loaded.model, metrics, loaded.history, loaded.data)


def list_components() -> dict[str, list[str]]:
    """Every registered component, by the spec slot it fills (the `kind` values a spec may use)."""
    return {slot.path: slot.registry.names() for slot in SLOTS}


def _resolve(spec: str | Path | ExperimentSpec | dict[str, Any], overrides: dict[str, Any]) -> ExperimentSpec:
    dotted = [f"{key.replace('__', '.')}={_yaml(value)}" for key, value in overrides.items()]
    if isinstance(spec, (str, Path)):
        return load_spec(spec, dotted)
    data = spec.model_dump(mode="json") if isinstance(spec, ExperimentSpec) else spec
    from vaezoo.spec import apply_overrides

    return validate(apply_overrides(data, dotted), "spec")


def _yaml(value: Any) -> str:
    """A Python value as the YAML text an override parses back to the same value."""
    import json

    return json.dumps(value)  # JSON is YAML, and keeps strings, numbers, lists and mappings exact
