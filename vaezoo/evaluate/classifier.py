"""A classifier-based FID for samples: the Frechet distance between Gaussians fitted to the penultimate
features, under a small digit classifier that vaezoo trains itself, of real test images and of a
model's samples (Heusel et al. 2017's FID, with an MNIST classifier in place of Inception).

The classifier (two strided convolutions and a 128-unit layer) trains on the dataset's training split,
as grey levels in [0, 1], for 3 epochs from a fixed seed: on MNIST 20-35 s on one CPU core, to 98.9 %
test accuracy. It is cached in a file keyed by the dataset, its files' checksums, the architecture's
version, the seed and the epochs, written atomically and verified on load (a fingerprint of its
weights), so a stale or damaged cache is never used: it is trained again.

A run's metrics hold it (evaluate/family.py, eval.fid_samples) with the classifier's test accuracy beside it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.core import io
from vaezoo.core.errors import OutputError
from vaezoo.data.datasets import DatasetInfo, DataSpec, expand_home
from vaezoo.data.device import check_files
from vaezoo.model.vae import VAE

#: bumped whenever the network or its training changes, so that no older cache is read as current
VERSION = 1
FEATURES = 128
FORMAT = "vaezoo-classifier"


class DigitClassifier(nn.Module):
    """conv 5x5 stride 2 (16) -> conv 5x5 stride 2 (32) -> 128 features -> class logits, on (N, 1, 28, 28)."""

    def __init__(self, classes: int = 10, channels: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(16, 32, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, FEATURES),
            nn.ReLU(),
        )
        self.head = nn.Linear(FEATURES, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.inference_mode()
    def features(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """The penultimate layer's activations, (N, 128) float64, for images in [0, 1], (N, C, 28, 28)."""
        device = self.head.weight.device
        chunks = [self.body(chunk.to(device, torch.float32)).double() for chunk in images.split(batch_size)]
        return torch.cat(chunks)

    @torch.inference_mode()
    def accuracy(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
        device = self.head.weight.device
        hits = sum(
            (self(x.to(device, torch.float32)).argmax(1) == y.to(device)).sum().item()
            for x, y in zip(images.split(batch_size), labels.split(batch_size), strict=True)
        )
        return hits / len(labels)


def train_classifier(
    images: torch.Tensor, labels: torch.Tensor, classes: int, *, seed: int = 0, epochs: int = 3, batch_size: int = 128
) -> DigitClassifier:
    """A DigitClassifier fitted to `images` (N, C, 28, 28) in [0, 1]: Adam with a one-cycle learning rate,
    its weights and batch order from `seed` alone (the global random state is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = DigitClassifier(classes, images.shape[1]).to(images.device)
    generator = torch.Generator().manual_seed(seed)
    steps = epochs * math.ceil(len(images) / batch_size)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    network.train()
    for _ in range(epochs):
        for index in torch.randperm(len(images), generator=generator).to(images.device).split(batch_size):
            loss = F.cross_entropy(network(images[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return network.eval()


@dataclass(frozen=True)
class TrainedClassifier:
    """The classifier, the test accuracy it reached, and the seconds its training took (0 if cached)."""

    network: DigitClassifier
    test_accuracy: float
    train_seconds: float
    dataset: str


def cache_key(info: DatasetInfo, seed: int, epochs: int) -> str:
    """What the cached weights depend on: the dataset, its files' checksums, the architecture's version
    and the training's seed and epochs."""
    files = hashlib.sha256(json.dumps(info.md5, sort_keys=True).encode()).hexdigest()[:12]
    return f"{info.name}-{files}-v{VERSION}-seed{seed}-epochs{epochs}"


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/vaezoo/classifiers, else ~/.cache/vaezoo/classifiers: apart from the data, whose
    folder may be shared or read-only; the key names the data, so every root holding it shares one."""
    cache = os.environ.get("XDG_CACHE_HOME") or expand_home("~", "the user cache folder") / ".cache"
    return Path(cache) / "vaezoo" / "classifiers"


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_classifier(path: Path, trained: TrainedClassifier, key: str) -> None:
    """Write the classifier and its record atomically, with a fingerprint of its weights."""
    state = {name: value.cpu() for name, value in trained.network.state_dict().items()}
    record = {"format": FORMAT, "key": key, "dataset": trained.dataset, "test_accuracy": trained.test_accuracy}
    record |= {"train_seconds": trained.train_seconds, "classes": trained.network.head.out_features}
    record |= {"channels": trained.network.body[0].in_channels, "digest": weights_digest(state)}
    io.save_torch(path, {"record": record, "state": state})


def load_classifier(path: Path, key: str, device: torch.device | str = "cpu") -> TrainedClassifier:
    """The classifier cached at `path`; OutputError naming it unless it is one for `key`, whole."""
    saved = io.load_torch(path, torch.device("cpu"))
    with io.reading(path):
        record, state = saved["record"], saved["state"]
        if record["format"] != FORMAT or record["key"] != key:
            raise ValueError(f"it holds {record['key']!r}, not {key!r}")
        if weights_digest(state) != record["digest"]:
            raise ValueError("its weights do not match their fingerprint")
        network = DigitClassifier(int(record["classes"]), int(record["channels"]))
        network.load_state_dict(state)
        accuracy, dataset = float(record["test_accuracy"]), str(record["dataset"])
    return TrainedClassifier(network.to(device).eval(), accuracy, 0.0, dataset)


def classifier_for(
    data: DataSpec, *, cache_dir: Path | None = None, seed: int = 0, epochs: int = 3, device: str = "cpu"
) -> TrainedClassifier:
    """The dataset's classifier: from the cache when it holds a sound one for this dataset, architecture,
    seed and epochs; else trained on the training split (grey levels), scored on the test split and cached."""
    info = check_files(data)
    key = cache_key(info, seed, epochs)
    path = (cache_dir or default_cache_dir()) / f"{key}.pt"
    if path.exists():
        try:
            return load_classifier(path, key, device)
        except OutputError as error:
            warnings.warn(f"retraining the classifier: {error}", stacklevel=2)
    root = data.resolved_root()
    train_images, train_labels = info.read_split(root, train=True)
    test_images, test_labels = info.read_split(root, train=False)
    start = time.perf_counter()
    network = train_classifier(
        grey(train_images, device), train_labels.to(device), info.classes, seed=seed, epochs=epochs
    )
    seconds = time.perf_counter() - start
    trained = TrainedClassifier(network, network.accuracy(grey(test_images, device), test_labels), seconds, info.name)
    save_classifier(io.ensure_folder(path.parent) / path.name, trained, key)
    return trained


def grey(images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 images (N, H, W) or (N, C, H, W) as floats in [0, 1], (N, C, H, W)."""
    images = images.unsqueeze(1) if images.dim() == 3 else images
    return images.to(device, torch.float32) / 255


def gaussian_fit(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (D,), unbiased covariance (D, D)) of the rows of `features`, float64."""
    features = features.double()
    centered = features - features.mean(0)
    return features.mean(0), centered.T @ centered / max(len(features) - 1, 1)


def psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix, by eigendecomposition
    (rounding's negative eigenvalues clamped to 0)."""
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(mean_a: torch.Tensor, cov_a: torch.Tensor, mean_b: torch.Tensor, cov_b: torch.Tensor) -> float:
    """|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between N(mu_a, S_a) and N(mu_b, S_b).

    tr (S_a S_b)^(1/2) is the sum of the square roots of the eigenvalues of the symmetric
    S_a^(1/2) S_b S_a^(1/2) (similar to S_a S_b), so no non-symmetric matrix root is taken.
    """
    mean_a, cov_a, mean_b, cov_b = (t.double() for t in (mean_a, cov_a, mean_b, cov_b))
    root_a = psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    distance = (mean_a - mean_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross
    return max(distance.item(), 0.0)


def classifier_fid(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """The Frechet distance between Gaussians fitted to two sets of features, (N, D) and (M, D)."""
    return frechet_distance(*gaussian_fit(features_a), *gaussian_fit(features_b))


def sample_fid(
    model: VAE,
    classifier: DigitClassifier,
    real_images: torch.Tensor,
    samples: int = 10000,
    seed: int = 0,
    batch_size: int = 1000,
) -> float:
    """The classifier FID between `real_images` (floats in [0, 1], the test split) and `samples` of the
    model's samples (the likelihood's mean at prior draws, clamped to [0, 1]), drawn from `seed`."""
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the same draws whatever the device
    counts = [min(batch_size, samples - start) for start in range(0, samples, batch_size)]
    drawn = torch.cat([model.sample(n, generator).clamp(0, 1).cpu() for n in counts])
    return classifier_fid(classifier.features(real_images), classifier.features(drawn))
