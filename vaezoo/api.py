"""The Python API, for notebooks as much as scripts: run a spec, or load a run folder, and work with
the `Run` you get back.

    >>> import vaezoo
    >>> run = vaezoo.run("quickstart", train__epochs=2)   # a shipped spec by name; re-running resumes or reuses
    >>> run                                               # in Jupyter: its numbers and figures (HTML)
    >>> run.metrics.test_nll_iw, run.metrics.iw_samples
    >>> run.figure("samples")                             # a matplotlib Figure
    >>> images = run.sample(16, seed=1)
    >>> run.train_more(3)                                 # three more epochs, from the checkpoint
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from vaezoo.core.errors import ArgumentError, VaezooError
from vaezoo.evaluate.console import make_console, print_metrics
from vaezoo.evaluate.records import HistoryRow, RunMetrics, finished_metrics
from vaezoo.model.distributions import DiagonalGaussian
from vaezoo.model.vae import VAE
from vaezoo.runs import runner, saved_runs
from vaezoo.runs.arguments import MAX_IMAGES, MAX_STEPS, count_argument, label_argument, shape_text, tensor_argument
from vaezoo.spec.experiment import SLOTS, ExperimentSpec, load_spec, validate
from vaezoo.spec.shipped import spec_path

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

    def train_more(self, epochs: int, progress: bool = True) -> Run:
        """Train this finished run `epochs` more epochs from its checkpoint, then evaluate it again and rewrite
        its metrics, figures and report; this Run is updated in place (and returned). The result equals a run
        trained for the whole length from the start with the same seed. `vaezoo.run(spec, train__epochs=N)`
        does the same where N is more than the run has."""
        more = count_argument(epochs, "epochs", 1, 100000)
        spec = self.spec.model_dump(mode="json") | {"name": self.path.name}
        longer = run(spec, out=self.path.parent, progress=progress, train__epochs=len(self.history) + more)
        for name in ("spec", "model", "metrics", "history", "data"):
            setattr(self, name, getattr(longer, name))
        return self

    def __repr__(self) -> str:
        """One line for a console or a log: the run, its length and its headline number, with K and the split
        (the dataclass's repr would print every weight's shape and every history row)."""
        m = self.metrics
        nll = f"test NLL of {m.likelihood_of} {m.test_nll_iw:.2f} ± {m.test_nll_iw_stderr:.2f} nats (K = {m.iw_samples}"
        nll += ", a bound at the encoder's codes)" if m.nll_note is not None else ")"
        return f"Run({self.spec.name!r}, path={str(self.path)!r}, {len(self.history)} epochs, {nll}, split {m.split})"

    def _repr_html_(self) -> str:
        """What a notebook shows for a Run: its name, key numbers (per image, nats, split, K) and figures."""
        from vaezoo.runs.run_html import run_html

        return run_html(self.spec.name, self.path, self.metrics)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the run's images: what encode, reconstruct and interpolate take."""
        return tuple(self.data.test_images.shape[1:])  # type: ignore[return-value]

    @torch.inference_mode()
    def encode(self, x: torch.Tensor, labels: Any = None) -> DiagonalGaussian:
        """q(z|x) of images (B, C, H, W) in [0, 1] (a tensor or numpy array; uint8 is read as 0..255):
        unpacks as (mu, logvar). A conditional run reads each image's label (`labels`: one per image, or
        an int for all), q(z|x, y). Anything else is an ArgumentError."""
        images = self._images(x, "x", batch=True)
        return self.model.encode(images, self._labels(labels, len(images)))

    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """The likelihood's mean image decoded from each image's posterior mean (x, labels as for `encode`)."""
        images = self._images(x, "x", batch=True)
        y = self._labels(labels, len(images))
        return self.model.likelihood.mean(self.model.decode(self.model.encode(images, y).mu, y))

    @torch.inference_mode()
    def sample(self, n: int, seed: int = 0, label: int | None = None) -> torch.Tensor:
        """n images decoded from prior draws (the likelihood's mean); the same seed gives the same images.

        A conditional run (`model.classes`) draws images of the class `label` (`run.sample(8, label=3)`:
        eight 3s), or, without one, of the classes in turn; an unconditional run takes no label."""
        n, seed = count_argument(n, "n", 1, MAX_IMAGES), count_argument(seed, "seed", 0, 2**63 - 1)
        labels = None if label is None else self._labels(label, n, "label")  # none: the classes in turn
        return self.model.sample(n, torch.Generator().manual_seed(seed), labels)

    @torch.inference_mode()
    def interpolate(self, a: torch.Tensor, b: torch.Tensor, steps: int = 10, label: int | None = None) -> torch.Tensor:
        """Images decoded along the line between the posterior means of images a and b (each (C, H, W)); a
        conditional run encodes and decodes the whole path with the one class `label`."""
        from vaezoo.outputs.figures import real_code

        if not real_code(self.model):
            raise ArgumentError(
                f"interpolate: this run's code is {self.model.posterior.space}, not real vectors; a path between "
                "two codes decodes points the model never saw"
            )
        pair = torch.stack([self._images(a, "a", batch=False), self._images(b, "b", batch=False)])
        steps = count_argument(steps, "steps", 2, MAX_STEPS)
        y = self._labels(label, 2, "label")
        mu = self.model.encode(pair, y).mu
        t = torch.linspace(0.0, 1.0, steps, device=mu.device).unsqueeze(1)
        path_labels = None if y is None else y[:1].expand(steps)
        return self.model.likelihood.mean(self.model.decode((1 - t) * mu[0] + t * mu[1], path_labels))

    def _labels(self, labels: Any, n: int, name: str = "labels") -> torch.Tensor | None:
        y = label_argument(labels, n, self.model.classes, name)
        return None if y is None else y.to(self.device)

    def _images(self, x: Any, name: str, batch: bool) -> torch.Tensor:
        """`x` as float images in [0, 1] on the model's device, checked: a batch (B, C, H, W) or one image."""
        x = tensor_argument(x, name)
        shape = ("B", *self.image_shape) if batch else self.image_shape
        if x.dim() != len(shape) or tuple(x.shape[-3:]) != self.image_shape:
            raise ArgumentError(f"{name} has shape {tuple(x.shape)}; this run takes {shape_text(shape)}")
        if batch and not 1 <= x.shape[0] <= MAX_IMAGES:
            raise ArgumentError(f"{name} holds {x.shape[0]} images; give 1 to {MAX_IMAGES} at a time")
        if not bool(torch.isfinite(x).all()) or bool((x < 0).any() | (x > 1).any()):
            raise ArgumentError(f"{name} has values outside [0, 1] (or NaN); images are intensities in [0, 1]")
        return x.to(self.device)

    def figure(self, kind: str) -> Figure:
        """One of the run's figures (see `figure_kinds()`) as a matplotlib Figure, drawn from the model now."""
        import matplotlib.image
        import matplotlib.pyplot as plt

        from vaezoo.outputs.figures import FIGURES

        if not isinstance(kind, str) or kind not in self.figure_kinds():
            raise ArgumentError(f"no figure {kind!r} for this run; one of: {', '.join(self.figure_kinds())}")
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

        return applicable_figures(self.model)

    def _figure_inputs(self) -> Any:
        from vaezoo.evaluate.latents import code_moments
        from vaezoo.outputs.figures import RunFigureInputs

        data = self.data
        mu = code_moments(self.model, data.test_images, self.spec.eval.batch_size).mean
        return RunFigureInputs(
            model=self.model,
            test_images=data.test_images,
            test_labels=data.test_labels,
            kl_per_dim=self.metrics.kl_per_dim,
            history=list(self.history),
            active_units_mask=self.metrics.active_mask,
            mu_test=mu,
        )


def run(
    spec: str | Path | ExperimentSpec | dict[str, Any],
    out: str | Path = "runs",
    progress: bool = True,
    **overrides: Any,
) -> Run:
    """Train and evaluate a spec into out/<name>: a YAML path, the name of a shipped spec ("quickstart"; a
    path that exists wins), an ExperimentSpec or a plain dict.

    Keyword overrides use `__` for the dots of a spec path: `train__epochs=2` sets train.epochs.
    Running the same spec again reuses the finished run, or resumes an interrupted one; asking a finished
    run for more epochs (`train__epochs=N`) trains it on from its checkpoint and evaluates it again. A
    different spec under the same name is refused (change `name=`). `progress` shows the training progress
    and the final table (in Jupyter as cell output, elsewhere on stderr).
    """
    resolved = _resolve(spec, overrides)
    out_dir = _path(out, "out")
    console = make_console(stderr=True) if progress else None
    with _python_words():
        metrics = runner.run(resolved, out_dir, resume=True, console=console)
        if console is not None:
            print_metrics(console, resolved.name, metrics, out_dir / resolved.name)
        return load(out_dir / resolved.name)


def load(run_dir: str | Path, device: str | None = None) -> Run:
    """A finished run folder as a `Run` (its model on `device`, else the spec's device)."""
    path = _path(run_dir, "run_dir")
    if device not in (None, "auto", "cpu", "cuda"):
        raise ArgumentError(f"device must be None, 'auto', 'cpu' or 'cuda', not {device!r}")
    with _python_words():
        metrics = finished_metrics(path)
        loaded = saved_runs.load_run(path, device)
    loaded.model.eval()
    return Run(path, loaded.spec, loaded.model, metrics, loaded.history, loaded.data)


def list_components() -> dict[str, list[str]]:
    """Every registered component, by the spec slot it fills (the `kind` values a spec may use)."""
    return {slot.path: slot.registry.names() for slot in SLOTS}


def _path(value: Any, name: str) -> Path:
    if not isinstance(value, (str, Path)) or not str(value) or "\0" in str(value):
        raise ArgumentError(f"{name} must be a folder path (str or Path), not {value!r:.60}")
    return Path(value)


def _resolve(spec: str | Path | ExperimentSpec | dict[str, Any], overrides: dict[str, Any]) -> ExperimentSpec:
    if not isinstance(spec, (str, Path, ExperimentSpec, dict)):
        raise ArgumentError(f"spec must be a YAML path, an ExperimentSpec or a dict, not a {type(spec).__name__}")
    dotted = [f"{key.replace('__', '.')}={_yaml(value)}" for key, value in overrides.items()]
    if isinstance(spec, (str, Path)):
        with _python_words():
            return load_spec(spec_path(spec), dotted)
    data = spec.model_dump(mode="json") if isinstance(spec, ExperimentSpec) else spec
    from vaezoo.spec.experiment import apply_overrides

    with _python_words():
        return validate(apply_overrides(data, dotted), "spec")


def _yaml(value: Any) -> str:
    """A Python value as the YAML text an override parses back to the same value."""
    import json

    try:
        return json.dumps(value, allow_nan=False)  # JSON is YAML, and keeps strings, numbers, lists and mappings exact
    except (TypeError, ValueError):
        raise ArgumentError(
            f"an override's value must be plain data (str, number, list, dict), not {value!r:.60}"
        ) from None


#: the command line's options, as the Python API names them: messages from the layers below speak of both
_CLI_WORDS = (
    (re.compile(r"--set ([A-Za-z_][\w.]*)="), lambda m: m.group(1).replace(".", "__") + "="),
    (re.compile(r"pass --resume to continue it"), lambda m: "call vaezoo.run to resume it"),
    (re.compile(r"--resume it"), lambda m: "resume it with vaezoo.run"),
    (re.compile(r"--out\b"), lambda m: "out="),
    (re.compile(r"--iw-samples\b"), lambda m: "iw_samples="),
    (re.compile(r"--device\b"), lambda m: "device="),
)


@contextlib.contextmanager
def _python_words() -> Iterator[None]:
    """A VaezooError raised inside says the keyword names of this API, not the command line's options."""
    try:
        yield
    except VaezooError as error:
        message = str(error)
        for pattern, words in _CLI_WORDS:
            message = pattern.sub(words, message)
        if message != str(error):
            error.args = (message,)
        raise
