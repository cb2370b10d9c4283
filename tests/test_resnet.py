"""The ResNet parts: the decoder retraces the encoder's sides, its blocks are residual, the model learns."""

import pytest
import torch

from vaezoo.core.errors import SpecError
from vaezoo.parts.resnet import ResidualBlock, ResNetDecoder, ResNetEncoder
from vaezoo.spec.build import build_model
from vaezoo.spec.experiment import validate

IMAGE = (1, 28, 28)
TINY = {"kind": "resnet", "channels": [4, 8], "blocks": 1}


def resnet_spec(layers: dict, latent_dim: int = 3, likelihood: dict | None = None, binarize: str = "dynamic"):
    return validate(
        {
            "name": "t",
            "data": {"binarize": binarize},
            "model": {
                "latent_dim": latent_dim,
                "encoder": layers,
                "decoder": layers,
                "likelihood": likelihood or {"kind": "bernoulli"},
            },
        },
        "test",
    )


@pytest.mark.parametrize("channels", [[4], [4, 8], [4, 8, 8]], ids=lambda c: f"{len(c)}-stages")
def test_decoder_output_is_the_image_shape_with_or_without_importance_samples(channels):
    spec = resnet_spec({"kind": "resnet", "channels": channels, "blocks": 1}, latent_dim=2)
    model = build_model(spec.model, IMAGE)
    assert model.decode(torch.zeros(6, 2)).shape == (6, *IMAGE)
    assert model.decode(torch.zeros(3, 6, 2)).shape == (3, 6, *IMAGE)


def test_decoder_stacks_several_parameters_per_pixel_on_the_channel_axis():
    # the discretized logistic with one component reads 3 values per pixel
    spec = resnet_spec(TINY, likelihood={"kind": "discretized_logistic", "mixtures": 1}, binarize="none")
    model = build_model(spec.model, IMAGE)
    assert model.decode(torch.zeros(3, 6, 3)).shape == (3, 6, 3, 28, 28)
    decoder = ResNetDecoder(
        image_shape=IMAGE, latent_dim=5, params_per_pixel=2, channels=[4, 8], blocks=1, activation="elu"
    )
    assert decoder(torch.zeros(6, 5)).shape == (6, 2, 28, 28)
    assert decoder(torch.zeros(3, 6, 5)).shape == (3, 6, 2, 28, 28)


@pytest.mark.parametrize(("side", "stages"), [(28, 3), (13, 3), (7, 4), (5, 2)])
def test_encoder_features_and_decoder_sides_follow_any_image_side(side, stages):
    image = (3, side, side)
    channels = [4] * stages
    encoder = ResNetEncoder(image_shape=image, channels=channels, blocks=1, activation="relu")
    features = encoder(torch.zeros(2, *image))
    assert features.shape == (2, encoder.out_features)
    decoder = ResNetDecoder(
        image_shape=image, latent_dim=2, params_per_pixel=1, channels=channels, blocks=1, activation="relu"
    )
    assert decoder(torch.zeros(2, 2)).shape == (2, *image)


@pytest.mark.parametrize("activation", ["elu", "gelu", "relu"])
def test_a_block_whose_last_convolution_is_zero_is_the_identity(activation):
    torch.manual_seed(0)
    block = ResidualBlock(6, activation)
    x = torch.randn(2, 6, 7, 7)
    body = block.body(x)
    assert body.abs().max() > 1e-3  # the block does something...
    assert torch.allclose(block(x), x + body)  # ...and adds it to its input
    last = block.body[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    assert torch.equal(block(x), x)


def test_every_block_of_both_networks_is_a_residual_one():
    spec = resnet_spec({"kind": "resnet", "channels": [4, 8, 8], "blocks": 3})
    model = build_model(spec.model, IMAGE)
    for network in (model.encoder, model.decoder):
        blocks = [m for m in network.modules() if isinstance(m, ResidualBlock)]
        assert len(blocks) == 3 * 3


def test_a_few_adam_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model(resnet_spec(TINY).model, IMAGE)
    x = torch.bernoulli(torch.full((16, *IMAGE), 0.3), generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        # one noise draw for every step, so the losses differ only by the weights
        loss = model.elbo(x, torch.Generator().manual_seed(1)).loss.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"blocks": 0}, "model.encoder.blocks: Input should be greater than or equal to 1"),
        ({"blocks": 9}, "model.encoder.blocks: Input should be less than or equal to 8"),
        ({"channels": []}, "model.encoder.channels: List should have at least 1 item"),
        ({"activation": "tanh"}, "model.encoder.activation: Input should be"),
        ({"kernel": 3}, "model.encoder.kernel: unknown key"),
    ],
)
def test_spec_bounds_are_enforced(change, message):
    with pytest.raises(SpecError, match=message):
        resnet_spec({**TINY, **change})
