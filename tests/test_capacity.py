"""Capacity annealing (Burgess et al. 2018): C(t) is exact at its ends and linear between, the same
for a host step and a device-tensor step (what a captured CUDA graph passes); the training loss is
-log p(x|z) + gamma |KL - C(t)| computed directly; its gradient in the KL flips sign where the KL
crosses C; and the step reaches the penalty through the training step itself."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vaezoo.core.errors import SpecError
from vaezoo.parts.kl_weightings import Capacity
from vaezoo.parts.objectives import ELBO
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import validate
from vaezoo.train.progress import RunningLoss
from vaezoo.train.scalars import StepWindow
from vaezoo.train.step import TrainStep


@settings(max_examples=60, deadline=None)
@given(
    c_min=st.floats(0.0, 50.0),
    rise=st.floats(0.0, 100.0),
    steps=st.integers(1, 10**6),
    data=st.data(),
)
def test_capacity_is_exact_at_its_ends_and_linear_between(c_min, rise, steps, data):
    weighting = Capacity(beta=10.0, c_min=c_min, c_max=c_min + rise, steps=steps)
    assert weighting.capacity(0) == c_min
    assert weighting.capacity(steps) == pytest.approx(c_min + rise, abs=1e-9)
    assert weighting.capacity(steps + data.draw(st.integers(1, 10**6))) == weighting.capacity(steps)
    a, b = sorted(data.draw(st.lists(st.integers(0, steps), min_size=2, max_size=2, unique=True)))
    middle = (a + b) / 2
    # linear: the value halfway between two steps is the mean of theirs (at a fractional step too)
    halfway = weighting.capacity(middle)
    assert halfway == pytest.approx((weighting.capacity(a) + weighting.capacity(b)) / 2, abs=1e-9)
    assert weighting.capacity(a) <= weighting.capacity(b)


@pytest.mark.parametrize("step", [0, 1, 250, 999, 1000, 5000])
def test_a_device_tensor_step_gives_the_host_steps_capacity(step):
    weighting = Capacity(beta=10.0, c_min=2.0, c_max=25.0, steps=1000)
    on_device = weighting.capacity(torch.tensor(step))  # a long tensor, as CapturedStep's step_t
    assert isinstance(on_device, torch.Tensor)
    assert on_device.item() == pytest.approx(weighting.capacity(step), rel=1e-6)


def small_model():
    spec = validate({"name": "t", "model": {"latent_dim": 3, "encoder": {"hidden": [16]},
                                            "decoder": {"hidden": [16]}}}, "t")  # fmt: skip
    torch.manual_seed(0)
    return build_model(spec.model, (1, 28, 28))


def batch():
    return torch.bernoulli(torch.full((6, 1, 28, 28), 0.3), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("step", [0, 300, 1000, 4000])
def test_the_elbo_with_capacity_is_recon_plus_gamma_times_the_distance_of_the_kl_from_c(step):
    model, x = small_model(), batch()
    weighting = Capacity(beta=50.0, c_min=1.0, c_max=9.0, steps=2000)
    torch.manual_seed(3)
    terms = ELBO().terms(model, x, weighting.beta(step, 5000), weighting, step=step)
    torch.manual_seed(3)
    plain = model.elbo(x)  # the same draw: recon and KL by the model itself
    c = 1.0 + 8.0 * min(step / 2000, 1.0)
    torch.testing.assert_close(terms.loss, plain.recon_nll + 50.0 * (plain.kl - c).abs())
    torch.testing.assert_close(terms.kl, plain.kl)  # the reported KL is the true one


def test_the_gradient_in_the_kl_flips_sign_where_the_kl_crosses_the_capacity():
    weighting = Capacity(beta=7.0, c_min=0.0, c_max=10.0, steps=100)
    kl = torch.linspace(0.5, 9.5, 10, requires_grad=True)  # C = 5 at step 50
    weighting.penalty(kl, None, 7.0, step=torch.tensor(50)).sum().backward()
    expected = torch.where(kl.detach() < 5.0, -7.0, 7.0)
    torch.testing.assert_close(kl.grad, expected)
    # later the capacity has passed every KL: each is pulled up
    kl.grad = None
    weighting.penalty(kl, None, 7.0, step=100).sum().backward()
    torch.testing.assert_close(kl.grad, torch.full((10,), -7.0))


def test_c_max_below_c_min_is_refused():
    with pytest.raises(SpecError, match="c_max"):
        validate({"name": "t", "kl": {"kind": "capacity", "c_min": 5.0, "c_max": 1.0}}, "t")


@pytest.mark.parametrize("objective", ["iwae", "miwae", "tcvae"])
def test_objectives_that_scale_the_prior_ratio_refuse_a_capacity(objective):
    with pytest.raises(SpecError, match=f"objective {objective} cannot use the KL weighting capacity"):
        validate({"name": "t", "kl": {"kind": "capacity"}, "objective": {"kind": objective}}, "t")


class RecordingCapacity(Capacity):
    def __init__(self, **fields) -> None:
        super().__init__(**fields)
        self.steps_seen: list[int | torch.Tensor] = []

    def penalty(self, kl, kl_per_dim, beta, *, step=0):
        self.steps_seen.append(step)
        return super().penalty(kl, kl_per_dim, beta, step=step)


class FixedImages:
    """The one part of DeviceData a training step reads."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def train_batch(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.images[index]


@pytest.mark.parametrize("step", [7, torch.tensor(7)], ids=["host", "device-tensor"])
def test_the_training_step_hands_its_step_to_the_penalty(step):
    """What TrainStep (and a captured graph of it, whose step is a device tensor) gives the objective
    reaches the KL weighting: the capacity it pulls toward is the step's, not the first one."""
    model = small_model()
    weighting = RecordingCapacity(beta=10.0, c_min=0.0, c_max=20.0, steps=10)
    running = RunningLoss(torch.device("cpu"))
    train_step = TrainStep(
        model, ELBO(), weighting, torch.optim.SGD(model.parameters(), lr=0.0), FixedImages(batch()),
        torch.Generator().manual_seed(0), running, "fp32", StepWindow(torch.device("cpu")),
    )  # fmt: skip
    torch.manual_seed(5)
    train_step(torch.arange(6), step, 10.0)
    assert weighting.steps_seen == [step]
    torch.manual_seed(5)
    plain = model.elbo(batch())
    expected = plain.recon_nll + 10.0 * (plain.kl - 14.0).abs()  # C(7) = 14
    torch.testing.assert_close(running.sums[0], expected.sum())
