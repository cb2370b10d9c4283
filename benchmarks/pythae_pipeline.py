"""pythae's TrainingPipeline on the classic 784-400-20 Bernoulli VAE, as its users would run it:
the peer whose whole command benchmarks/end_to_end.py times. It needs the `bench` extra.

pythae cannot binarize each epoch, so it trains on a statically binarized copy of vaezoo's 50,000
training images (`--data`, written by end_to_end.py). The trained weights go to `--weights` under
pytorch/examples' layer names (fc1, fc21, fc22, fc3, fc4), for the shared evaluator.

    python -m benchmarks.pythae_pipeline --data train.pt --epochs 3 --out DIR --weights weights.pt
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from pythae.models import VAE, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.pipelines import TrainingPipeline
from pythae.trainers import BaseTrainerConfig
from torch import nn

LATENT, HIDDEN, PIXELS = 20, 400, 784


class Encoder(BaseEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(PIXELS, HIDDEN)
        self.fc21 = nn.Linear(HIDDEN, LATENT)
        self.fc22 = nn.Linear(HIDDEN, LATENT)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = F.relu(self.fc1(x.reshape(len(x), PIXELS)))
        return ModelOutput(embedding=self.fc21(h), log_covariance=self.fc22(h))


class Decoder(BaseDecoder):
    def __init__(self) -> None:
        super().__init__()
        self.fc3 = nn.Linear(LATENT, HIDDEN)
        self.fc4 = nn.Linear(HIDDEN, PIXELS)

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=torch.sigmoid(self.fc4(F.relu(self.fc3(z)))).reshape(len(z), 1, 28, 28))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a .pt file of binary training images, uint8 (N, 1, 28, 28)")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--out", required=True, help="pythae's output folder")
    parser.add_argument("--weights", required=True, help="where to save the trained weights")
    args = parser.parse_args()
    train = torch.load(args.data).float()
    config = VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce")
    model = VAE(model_config=config, encoder=Encoder(), decoder=Decoder())
    training = BaseTrainerConfig(
        output_dir=args.out,
        num_epochs=args.epochs,
        learning_rate=1e-3,
        per_device_train_batch_size=128,
        no_cuda=True,
    )
    TrainingPipeline(training_config=training, model=model)(train_data=train)
    torch.save({**model.encoder.state_dict(), **model.decoder.state_dict()}, args.weights)


if __name__ == "__main__":
    main()
