"""The Python API checks its arguments: wrong types, dtypes and shapes, numpy arrays (converted), NaN,
negative or huge counts. Each refusal is an ArgumentError (a VaezooError and a ValueError) with one line;
what is accepted gives the same images as the equivalent tensor."""

import numpy as np
import pytest
import torch

import vaezoo
from vaezoo.core.errors import ArgumentError, VaezooError


@pytest.fixture(scope="module")
def loaded(trained):
    return vaezoo.load(trained / "runs" / "tiny")


def _one_line(error: pytest.ExceptionInfo) -> None:
    assert isinstance(error.value, VaezooError) and isinstance(error.value, ValueError)
    assert "\n" not in str(error.value) and str(error.value)


BAD_IMAGES = {
    "a list": [[0.0] * 28] * 28,
    "a string": "image.png",
    "None": None,
    "no batch axis": torch.rand(1, 28, 28),
    "wrong size": torch.rand(2, 1, 27, 28),
    "wrong channels": torch.rand(2, 3, 28, 28),
    "five axes": torch.rand(1, 2, 1, 28, 28),
    "empty batch": torch.rand(0, 1, 28, 28),
    "int64": torch.ones(2, 1, 28, 28, dtype=torch.int64),
    "complex": torch.ones(2, 1, 28, 28, dtype=torch.complex64),
    "NaN": torch.full((2, 1, 28, 28), float("nan")),
    "above 1": torch.full((2, 1, 28, 28), 255.0),
    "negative": torch.full((2, 1, 28, 28), -0.5),
    "numpy of objects": np.array([[object()]]),
    "numpy int32": np.ones((2, 1, 28, 28), dtype=np.int32),
}


@pytest.mark.parametrize("case", BAD_IMAGES)
@pytest.mark.parametrize("method", ["encode", "reconstruct"])
def test_bad_images_are_refused(loaded, method, case):
    with pytest.raises(ArgumentError) as error:
        getattr(loaded, method)(BAD_IMAGES[case])
    _one_line(error)


def test_numpy_uint8_and_bool_images_are_accepted_as_their_tensors(loaded):
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(loaded.reconstruct(x.numpy()), loaded.reconstruct(x))
    as_bytes = (x * 255).to(torch.uint8)
    assert torch.equal(loaded.encode(as_bytes.numpy()).mu, loaded.encode(as_bytes.float() / 255).mu)
    assert loaded.encode(x > 0.5).mu.shape == (3, 4)
    assert loaded.interpolate(x[0].numpy(), x[1], steps=3).shape == (3, 1, 28, 28)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"n": -1}, "out of range"),
        ({"n": 0}, "out of range"),
        ({"n": 10**9}, "out of range"),
        ({"n": 2.5}, "whole number"),
        ({"n": True}, "whole number"),
        ({"n": "4"}, "whole number"),
        ({"n": 2, "seed": -1}, "out of range"),
        ({"n": 2, "seed": 2**70}, "out of range"),
        ({"n": 2, "seed": None}, "whole number"),
    ],
)
def test_bad_sample_counts_and_seeds_are_refused(loaded, kwargs, text):
    with pytest.raises(ArgumentError, match=text) as error:
        loaded.sample(**kwargs)
    _one_line(error)


def test_numpy_integers_count(loaded):
    assert torch.equal(loaded.sample(np.int64(3), seed=np.int32(1)), loaded.sample(3, seed=1))


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((torch.rand(1, 28, 28), torch.rand(1, 28, 28)), {"steps": 1}),
        ((torch.rand(1, 28, 28), torch.rand(1, 28, 28)), {"steps": -3}),
        ((torch.rand(1, 28, 28), torch.rand(1, 28, 28)), {"steps": 10**7}),
        ((torch.rand(2, 1, 28, 28), torch.rand(1, 28, 28)), {}),
        ((torch.rand(1, 28, 28), "b"), {}),
        ((torch.rand(1, 28, 28), torch.full((1, 28, 28), float("inf"))), {}),
    ],
)
def test_bad_interpolations_are_refused(loaded, args, kwargs):
    with pytest.raises(ArgumentError) as error:
        loaded.interpolate(*args, **kwargs)
    _one_line(error)


@pytest.mark.parametrize("kind", ["nope", "", None, 3, "../../etc/passwd"])
def test_an_unknown_figure_is_refused(loaded, kind):
    with pytest.raises(ArgumentError, match="one of") as error:
        loaded.figure(kind)
    _one_line(error)


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (lambda root, t: vaezoo.load(None), "run_dir"),
        (lambda root, t: vaezoo.load(t / "runs" / "tiny", device="tpu"), "device"),
        (lambda root, t: vaezoo.load(""), "run_dir"),
        (lambda root, t: vaezoo.run(42), "spec must be"),
        (lambda root, t: vaezoo.run(t / "spec.yaml", out=3), "out must be"),
        (lambda root, t: vaezoo.run(t / "spec.yaml", out=t / "o", train__epochs=object()), "plain data"),
        (lambda root, t: vaezoo.run(t / "spec.yaml", out=t / "o", train__lr=float("nan")), "plain data"),
    ],
)
def test_bad_run_and_load_arguments_are_refused(trained, call, text):
    with pytest.raises(ArgumentError, match=text) as error:
        call(None, trained)
    _one_line(error)
    assert not (trained / "o").exists()
