"""Tables 4 and 5: layer by layer shapes and parameter counts."""

import pytest
import torch
from torch import nn

from stvae.nets import Decoder, Encoder

# Table 4 / Table 5 rows: (kind, in, out, stride). Parameters are counted from the tables:
# conv k*k*in*out (no bias: batch norm follows), batch norm 2*out, output layers with bias.
TABLE_4 = [(1, 16, 1), (16, 16, 2), (16, 32, 1), (32, 32, 2), (32, 64, 1), (64, 64, 2),
           (64, 128, 1), (128, 128, 2)]  # fmt: skip
TABLE_5 = [(128, 128, 1), (128, 64, 2), (64, 64, 1), (64, 32, 2), (32, 32, 1), (32, 16, 2),
           (16, 16, 1)]  # fmt: skip


def table_params_encoder(f: int) -> int:
    convs = sum(9 * i * o + 2 * o for i, o, _ in TABLE_4)
    linear5 = 4 * 4 * 128 * 256 + 2 * 256
    heads = 2 * (256 * f + f)
    return convs + linear5 + heads


def table_params_decoder(f: int) -> int:
    linears = (f * 256 + 2 * 256) + (256 * 2048 + 2 * 2048)
    convs = sum(9 * i * o + 2 * o for i, o, _ in TABLE_5)
    out = 9 * 16 * 1 + 1
    return linears + convs + out


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("f", [2, 4, 8])
def test_parameter_counts_match_tables(f):
    assert count(Encoder(f)) == table_params_encoder(f)
    assert count(Decoder(f)) == table_params_decoder(f)


def test_encoder_layers_follow_table_4():
    enc = Encoder(4)
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == TABLE_4
    assert all(c.kernel_size == (3, 3) for c in convs)
    # batch norm then ReLU after every conv and after Linear 5, none on the outputs
    for block in list(enc.convs) + [enc.hidden]:
        assert isinstance(block[1], (nn.BatchNorm1d, nn.BatchNorm2d))
        assert isinstance(block[2], nn.ReLU)
    assert isinstance(enc.mu, nn.Linear) and isinstance(enc.logvar, nn.Linear)


def test_decoder_layers_follow_table_5():
    dec = Decoder(4)
    convs = [m for m in dec.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == TABLE_5 + [(16, 1, 2)]
    assert [m.out_features for m in dec.modules() if isinstance(m, nn.Linear)] == [256, 2048]
    assert not any(isinstance(m, nn.BatchNorm2d) and m.num_features == 1 for m in dec.modules())


def test_shapes_through_the_networks():
    enc, dec = Encoder(6), Decoder(6)
    x = torch.rand(5, 1, 64, 64)
    mu, logvar = enc(x)
    assert mu.shape == logvar.shape == (5, 6)
    logits = dec(mu)
    assert logits.shape == (5, 1, 64, 64)
    # Bernoulli logits: unbounded, both signs occur
    assert (logits < 0).any() and (logits > 0).any()


def test_intermediate_resolutions():
    enc, dec = Encoder(2), Decoder(2)
    sizes = []
    x = torch.rand(2, 1, 64, 64)
    for block in enc.convs:
        x = block(x)
        sizes.append(x.shape[-1])
    assert sizes == [64, 32, 32, 16, 16, 8, 8, 4]
    z = dec.hidden(torch.rand(2, 2)).view(-1, 128, 4, 4)
    sizes = []
    for block in dec.convs:
        z = block(z)
        sizes.append(z.shape[-1])
    assert sizes == [4, 8, 8, 16, 16, 32, 32]
