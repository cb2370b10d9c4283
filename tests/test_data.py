"""The device-resident dataset: splits, binarization and checks."""

import pytest
import torch

from tests.conftest import needs_mnist
from vaezoo import data
from vaezoo.core.errors import DataError


def load(root, binarize="dynamic", val_size=40):
    spec = data.DataSpec(dataset="synthetic", root=str(root), binarize=binarize, val_size=val_size)
    return data.load(spec, torch.device("cpu"))


def test_splits_and_dtypes(synthetic_root):
    d = load(synthetic_root)
    assert d.train_images.dtype == torch.uint8 and d.train_images.shape == (200, 1, 28, 28)
    assert d.val_images.shape == (40, 1, 28, 28) and d.test_images.shape == (60, 1, 28, 28)
    assert d.train_labels.shape == (200,) and d.test_labels.shape == (60,)


@pytest.mark.parametrize("binarize", ["dynamic", "static"])
def test_evaluation_sets_are_binary_and_the_same_every_time(synthetic_root, binarize):
    a, b = load(synthetic_root, binarize), load(synthetic_root, "dynamic" if binarize == "static" else "static")
    assert set(a.test_images.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(a.test_images, b.test_images) and torch.equal(a.val_images, b.val_images)


def test_dynamic_draws_afresh_static_once_none_keeps_grey(synthetic_root):
    index = torch.arange(64)
    g = torch.Generator().manual_seed(0)
    dynamic = load(synthetic_root, "dynamic")
    first, second = dynamic.train_batch(index, g), dynamic.train_batch(index, g)
    assert not torch.equal(first, second) and set(first.unique().tolist()) == {0.0, 1.0}
    grey = dynamic.train_images[index].float() / 255
    mean_of_draws = torch.stack([dynamic.train_batch(index, g) for _ in range(400)]).mean(0)
    assert (mean_of_draws - grey).abs().max() < 0.12  # 400 Bernoulli draws: sd <= 0.025

    static = load(synthetic_root, "static")
    assert torch.equal(static.train_batch(index, g), static.train_batch(index, g))
    assert set(static.train_batch(index, g).unique().tolist()) == {0.0, 1.0}

    none = load(synthetic_root, "none")
    assert torch.equal(none.train_batch(index, g), grey)
    assert torch.equal(none.test_images, none.test_images.clamp(0, 1)) and len(none.test_images.unique()) > 2


def test_val_size_too_large_is_a_data_error(synthetic_root):
    with pytest.raises(DataError, match="leaves no training images"):
        load(synthetic_root, val_size=240)


def test_default_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VAEZOO_DATA", str(tmp_path))
    assert data.default_root() == tmp_path
    monkeypatch.delenv("VAEZOO_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.default_root() == tmp_path / "cache" / "vaezoo" / "data"


@needs_mnist
def test_real_mnist_loads():
    d = data.load(data.DataSpec(val_size=10000), torch.device("cpu"))
    assert d.n_train == 50000 and d.val_images.shape[0] == 10000 and d.test_images.shape[0] == 10000
    assert d.test_labels.bincount().tolist()[:3] == [980, 1135, 1032]


@pytest.mark.parametrize("train", [True, False])
def test_idx_reading_gives_what_torchvision_reads(synthetic_root, train):
    """vaezoo reads the IDX files itself (torchvision costs a second of start-up); torchvision's reader
    over the same files is the reference."""
    from tests.synthetic import SyntheticMNIST

    images, labels = data.DATASETS.get("synthetic").read_split(synthetic_root, train)
    reference = SyntheticMNIST(root=str(synthetic_root), train=train, download=False)
    assert images.dtype == reference.data.dtype and labels.dtype == reference.targets.dtype
    assert torch.equal(images, reference.data) and torch.equal(labels, reference.targets)
