"""The paper's frame encoder and decoder (Tables 4 and 5), for 64x64 frames of C channels.

All convolutions are 3x3 with padding 1; the stride-2 layers halve (encoder) or double
(decoder) the spatial size, 64 -> 4 -> 64. Batch norm sits between every layer and its
ReLU except at the outputs (section 4.2). Layers followed by batch norm carry no bias:
the norm's shift replaces it exactly, so the function class is the table's.

The paper's frames are grey (C = 1). Colour (C = 3) changes only the first layer of
Table 4 (3x3xC -> 16, no bias: 144 weights grey, 432 colour) and the last of Table 5
(3x3, 16 -> C, with C biases: 145 parameters grey, 435 colour); every other layer is the
same, so a colour model has 288 + 290 = 578 parameters more than its grey twin.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Encoder", "Decoder", "FRAME_SIZE", "HIDDEN"]

FRAME_SIZE = 64
# (out channels, stride) of the conv layers of Table 4; Table 5 mirrors them.
ENCODER_CONVS = ((16, 1), (16, 2), (32, 1), (32, 2), (64, 1), (64, 2), (128, 1), (128, 2))
DECODER_CONVS = ((128, 1), (64, 2), (64, 1), (32, 2), (32, 1), (16, 2), (16, 1), (1, 2))
HIDDEN = 256
BOTTLENECK = (128, 4, 4)  # the decoder's "4x4x128 tensor"


def _conv_block(c_in: int, c_out: int, stride: int, transpose: bool) -> nn.Sequential:
    if transpose:
        # output_padding makes stride 2 exactly double the size: 4 -> 8 -> ... -> 64.
        conv = nn.ConvTranspose2d(
            c_in, c_out, 3, stride=stride, padding=1, output_padding=stride - 1, bias=False
        )
    else:
        conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def _linear_block(f_in: int, f_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(f_in, f_out, bias=False), nn.BatchNorm1d(f_out), nn.ReLU(True))


class Encoder(nn.Module):
    """Table 4: frames [M, C, 64, 64] -> (mu, logvar), each [M, features].

    M is any number of frames (the model passes B*N); logvar is log sigma^2 of eq 12.
    """

    def __init__(self, features: int, heads: bool = True, channels: int = 1):
        super().__init__()
        layers, c_in = [], channels
        for c_out, stride in ENCODER_CONVS:
            layers.append(_conv_block(c_in, c_out, stride, transpose=False))
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.hidden = _linear_block(c_in * 4 * 4, HIDDEN)  # Linear 5
        if heads:  # out mu, out sigma; a model with posteriors of its own leaves them out
            self.mu = nn.Linear(HIDDEN, features)
            self.logvar = nn.Linear(HIDDEN, features)

    def trunk(self, x: Tensor) -> Tensor:
        """Table 4 up to its last hidden layer: [M, C, 64, 64] -> [M, 256]."""
        h = self.convs(x)  # [M, 128, 4, 4]
        return self.hidden(h.flatten(1))  # [M, 256]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)  # [M, 256]
        return self.mu(h), self.logvar(h)  # [M, F] each


class Decoder(nn.Module):
    """Table 5: latents [M, features] -> Bernoulli logits [M, C, 64, 64]."""

    def __init__(self, features: int, channels: int = 1):
        super().__init__()
        n_bottleneck = BOTTLENECK[0] * BOTTLENECK[1] * BOTTLENECK[2]
        self.hidden = nn.Sequential(
            _linear_block(features, HIDDEN), _linear_block(HIDDEN, n_bottleneck)
        )
        layers, c_in = [], BOTTLENECK[0]
        for c_out, stride in DECODER_CONVS[:-1]:
            layers.append(_conv_block(c_in, c_out, stride, transpose=True))
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        stride = DECODER_CONVS[-1][1]
        c_out = channels
        # Output layer: no batch norm and no ReLU; its values are the Bernoulli logits.
        self.out = nn.ConvTranspose2d(c_in, c_out, 3, stride=stride, padding=1, output_padding=1)

    def forward(self, h: Tensor) -> Tensor:
        z = self.hidden(h)  # [M, 2048]
        z = z.view(-1, *BOTTLENECK)  # [M, 128, 4, 4]
        z = self.convs(z)  # [M, 16, 32, 32]
        return self.out(z)  # [M, C, 64, 64]


def to_channels_last(module: nn.Module) -> nn.Module:
    """Moves conv weights to NHWC, the faster layout for CPU (oneDNN) and CUDA (cuDNN) convs."""
    return module.to(memory_format=torch.channels_last)
