"""The whole experiment spec: pydantic models, YAML loading and dotted overrides (`--set a.b=1`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from vaezoo.core.errors import SpecError
from vaezoo.core.schema import StrictModel
from vaezoo.data import DATASETS, DataSpec
from vaezoo.model.kl_estimate import KLChoice, kl_estimate
from vaezoo.model.latent import LatentLayout
from vaezoo.parts import LIKELIHOODS, POSTERIORS, PRIORS
from vaezoo.parts.kl_weightings import KL_WEIGHTINGS
from vaezoo.parts.lr_schedules import LR_SCHEDULES
from vaezoo.parts.objectives import OBJECTIVES, Objective
from vaezoo.parts.priors import Prior
from vaezoo.spec.slots import (  # noqa: F401 (SLOTS, SLOT, Slot and the slot types are the spec's public names)
    NAME,
    SLOT,
    SLOTS,
    DecoderSpec,
    EncoderSpec,
    KLSpec,
    LikelihoodSpec,
    ObjectiveSpec,
    PosteriorSpec,
    PriorSpec,
    Slot,
    default_kinds,
    slot_field,
)
from vaezoo.spec.yaml_io import MAX_SPEC_BYTES, MAX_YAML_DEPTH, MAX_YAML_VALUES, dump_yaml, parse_yaml, read_mapping  # noqa: F401 (re-exported)


class ModelSpec(StrictModel):
    latent_dim: int = Field(default=20, ge=1, le=4096)
    encoder: EncoderSpec = slot_field("model.encoder")
    posterior: PosteriorSpec = slot_field("model.posterior")
    prior: PriorSpec = slot_field("model.prior")
    decoder: DecoderSpec = slot_field("model.decoder")
    likelihood: LikelihoodSpec = slot_field("model.likelihood")
    output_init: Literal["data", "zero"] = Field(
        default="data",
        description="where the decoder's output starts: the likelihood's parameters for the training data's "
        "mean image (data; the papers' code), or zero (logits 0: p = 0.5 at every pixel)",
    )
    classes: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="a conditional VAE (Sohn et al. 2015): the encoder and decoder read a one-hot label of this "
        "many classes (the dataset's) beside x and z, and the test NLL is -log p(x|y); 0: unconditional",
    )
    classifier: EncoderSpec | None = Field(
        default=None,
        description="M2 (Kingma et al. 2014): a classifier q(y|x) of the model.classes labels, an encoder's body "
        "(any encoder kind, e.g. {kind: mlp, hidden: [500]}) and a linear layer to the classes' logits, owned and "
        "checkpointed with the model. The label is then latent (the m2 objective trains it from a labelled "
        "subset) and the test bounds are of p(x), y summed out; none: no classifier",
    )
    kl_estimator: KLChoice = Field(
        default="analytic",
        description="the ELBO's KL: closed form wherever the parts give one, per layer in a hierarchy "
        "(analytic), or one sample's log q - log p for every model (monte-carlo)",
    )

    @model_validator(mode="before")
    @classmethod
    def _kinds(cls, data: Any) -> Any:
        return default_kinds(data, "model")


class TrainSpec(StrictModel):
    epochs: int = Field(default=10, ge=1, le=100000)
    batch_size: int = Field(default=128, ge=1, le=65536)
    lr: float = Field(default=1e-3, gt=0.0, le=10.0)
    lr_schedule: str = Field(
        default="constant", description="learning-rate schedule, set per epoch: " + ", ".join(LR_SCHEDULES.names())
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16"] = Field(default="fp32", description="bf16: autocast the training step's matmuls")
    cuda_graphs: bool = Field(default=True, description="on a GPU, replay the training step as a captured CUDA graph")
    checkpoint_every: int = Field(default=1, ge=1, le=100000, description="epochs between checkpoints (and the last)")
    log_every: int = Field(
        default=50, ge=1, le=10**6, description="steps per row of scalars.csv (rows also end epochs)"
    )
    tensorboard: bool = Field(default=False, description="also log to <run>/tensorboard (the tensorboard extra)")
    grad_clip: float | None = Field(
        default=None, gt=0.0, le=1e6, description="clip the gradients' global L2 norm to this (none: no clipping)"
    )
    ema: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="decay per step of an average of the weights that validation and evaluation use (none: off)",
    )

    @field_validator("lr_schedule")
    @classmethod
    def _known_schedule(cls, name: str) -> str:
        return LR_SCHEDULES.require(name)


class EvalSpec(StrictModel):
    iw_samples: int = Field(default=5000, ge=1, le=10**6, description="K of the importance-weighted test NLL")
    batch_size: int = Field(default=1000, ge=1, le=65536, description="images per evaluation batch")
    family_metrics: bool = Field(
        default=False,
        description="the total correlation of q(z) (diagonal Gaussian codes) and the MMD between q(z) and p(z), "
        "on the test set: what the disentangling families are judged by (about 30 s on one CPU core, as long as "
        "the quick start's training, so on where a spec asks: the family specs and their ablation)",
    )
    fid_samples: int = Field(
        default=10000,
        ge=0,
        le=10**6,
        description="samples for the classifier FID against the test set (0: none); the classifier is trained "
        "once per dataset and cached",
    )


class ExperimentSpec(StrictModel):
    """Everything a run needs: validated as a whole before anything trains."""

    name: str = Field(pattern=NAME, max_length=120, description="run folder name")
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    kl: KLSpec = slot_field("kl")
    objective: ObjectiveSpec = slot_field("objective")
    train: TrainSpec = Field(default_factory=TrainSpec)
    eval: EvalSpec = Field(default_factory=EvalSpec)

    @model_validator(mode="before")
    @classmethod
    def _kinds(cls, data: Any) -> Any:
        return default_kinds(data, "")

    @model_validator(mode="after")
    def _compatible(self) -> ExperimentSpec:
        weighting = KL_WEIGHTINGS.get(self.kl.kind)
        if not OBJECTIVES.get(self.objective.kind).accepts(weighting):
            raise ValueError(f"objective {self.objective.kind} cannot use the KL weighting {self.kl.kind}")
        prior, posterior = PRIORS.get(self.model.prior.kind), POSTERIORS.get(self.model.posterior.kind)
        refused = OBJECTIVES.get(self.objective.kind).refuses(prior, posterior)
        if refused is not None:
            raise ValueError(f"objective {self.objective.kind}: {refused}")
        if posterior.penalized and not OBJECTIVES.get(self.objective.kind).adds_penalty:
            adding = ", ".join(name for name in OBJECTIVES.names() if OBJECTIVES.get(name).adds_penalty)
            raise ValueError(
                f"objective {self.objective.kind} does not add the posterior {self.model.posterior.kind}'s training "
                f"penalty (its commitment loss); train it with {adding}"
            )
        if LatentLayout.of(self.model.prior, self.model.latent_dim).hierarchical != posterior.hierarchical:
            raise ValueError(
                f"the prior {self.model.prior.kind} and the posterior {self.model.posterior.kind} must both be "
                "hierarchical (over a stack of latent layers) or both flat"
            )
        estimate = kl_estimate(prior, posterior, self.model.kl_estimator)
        if weighting.needs_kl_per_dim and not estimate.per_dimension:
            raise ValueError(
                f"the KL weighting {self.kl.kind} needs the KL per dimension, which the prior {self.model.prior.kind} "
                f"with the posterior {self.model.posterior.kind} and kl_estimator {self.model.kl_estimator} do not give"
            )
        self._conditional_fits(prior)
        needs = LIKELIHOODS.get(self.model.likelihood.kind).needs_binarize
        if needs is not None and self.data.binarize != needs:
            raise ValueError(
                f"the likelihood {self.model.likelihood.kind} models data binarized as {needs!r}; set data.binarize: {needs}"
            )
        return self

    def _conditional_fits(self, prior: type[Prior]) -> None:
        """A conditional model's labels are the dataset's classes, and its objective must read them."""
        classes, objective = self.model.classes, OBJECTIVES.get(self.objective.kind)
        self._semi_supervised_fits(objective)
        if not classes:
            return
        dataset_classes = DATASETS.get(self.data.dataset).classes
        if classes != dataset_classes:
            raise ValueError(f"model.classes {classes}: the dataset {self.data.dataset} has {dataset_classes} classes")
        if not (objective.conditional or objective.semi_supervised):
            raise ValueError(
                f"objective {self.objective.kind} does not read labels; a conditional model needs one that does"
            )
        refused = objective.refuses_classes(self.objective, classes)
        if refused is not None:
            raise ValueError(f"objective {self.objective.kind}: {refused}")
        if prior.through_posterior:
            raise ValueError(f"the prior {self.model.prior.kind} encodes pseudo-inputs, which have no label")

    def _semi_supervised_fits(self, objective: type[Objective]) -> None:
        """A classifier q(y|x) (M2) and an objective that trains one come together, with the classes."""
        kind = self.objective.kind
        if self.model.classifier is not None and not objective.semi_supervised:
            raise ValueError(f"model.classifier: objective {kind} does not train a classifier q(y|x) (m2 does)")
        if objective.semi_supervised and self.model.classifier is None:
            raise ValueError(f"objective {kind} trains a classifier q(y|x): set model.classifier, e.g. {{kind: mlp}}")
        if objective.semi_supervised and not self.model.classes:
            raise ValueError(f"objective {kind} infers a label: set model.classes to the dataset's classes")

    def to_yaml(self) -> str:
        """The resolved spec (every default filled in) as YAML that loads back to an equal spec."""
        return dump_yaml(self.model_dump(mode="json"))


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of `data` with each `a.b.c=value` set (value parsed as YAML); SpecError if malformed."""
    result = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise SpecError(f"override {item!r} is not KEY=VALUE with a dotted KEY such as model.latent_dim=2")
        set_dotted(result, key, parse_yaml(text, f"override {key}"))
    return result


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set data[a][b][c] = value for key 'a.b.c', creating missing mappings on the way."""
    *parents, last = key.split(".")
    node: Any = data
    for depth, part in enumerate(parents):
        child = node.get(part) if isinstance(node, dict) else None
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            prefix = ".".join(parents[: depth + 1])
            raise SpecError(f"override {key}: {prefix} is a {type(child).__name__}, not a mapping")
        node = child
    node[last] = value


def yaml_path(data: Any, loc: tuple[Any, ...]) -> str:
    """The dotted YAML path of a pydantic error location (slots add no union tags: see slots.SlotType)."""
    return ".".join(str(item) for item in loc) or "spec"


def describe(error: ValidationError, data: Any) -> str:
    """One line: the first problem as `yaml.path: message`, and how many more there are."""
    errors = error.errors(include_url=False)
    first = errors[0]
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{yaml_path(data, tuple(first['loc']))}: {message}{more}"


def validate(data: dict[str, Any], source: str) -> ExperimentSpec:
    """An ExperimentSpec from plain data; SpecError naming the YAML path of the first problem."""
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(f"{source}: {describe(error, data)}") from None


def check_option(section: type[StrictModel], key: str, value: Any, option: str) -> Any:
    """A command-line value for a spec field (`--iw-samples` for eval.iw_samples), validated exactly as
    that field in a spec file is; SpecError naming the option otherwise."""
    try:
        return getattr(section.model_validate({key: value}), key)
    except ValidationError as error:
        raise SpecError(f"{option} {value}: {describe(error, {key: value}).partition(': ')[2]}") from None


def load_spec(path: str | Path, overrides: list[str] | None = None) -> ExperimentSpec:
    """Read, override and validate a spec file (a full spec, or a base spec plus changes)."""
    path = Path(path)
    data = apply_overrides(read_spec_data(path), overrides or [])
    return validate(data, str(path))


def read_spec_data(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A spec file's data with its `base` resolved: the base spec (a file beside this one, itself
    possibly based on another), then `set` (dotted key -> value), then this file's other keys."""
    data = read_mapping(path)
    if "base" not in data:
        return data
    if path.resolve() in seen:
        raise SpecError(f"{path}: its base chain comes back to itself")
    base, changes = data.pop("base"), data.pop("set", {})
    if not isinstance(base, str) or not isinstance(changes, dict):
        raise SpecError(f"{path}: base must be a spec file's name and set a mapping of dotted keys to values")
    result = read_spec_data(path.parent / base, (*seen, path.resolve()))
    for key, value in changes.items():
        set_dotted(result, str(key), value)
    return result | data
