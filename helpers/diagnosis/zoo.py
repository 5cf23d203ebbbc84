"""Small architectures the study did not use, each with PyTorch's default initialization: ``07``'s two
(:class:`SmallCNN`, :class:`CharTransformer`) and eight for calibrating the learning-rate diagnosis
(``07_choosing_a_learning_rate``): five on Fashion-MNIST images [B, 1, 28, 28] with class
labels, three on character sequences [B, L] with next-character targets. Every one has second derivatives
everywhere (ReLU, GELU, tanh, sigmoid, normalization, attention in the math kernel)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Two 3×3 convolutions (``channels``, 2·``channels``; ReLU, 2×2 max pool each) and a linear readout, with
    PyTorch's default initialization and biases: a network the study's rules were not written for."""

    def __init__(self, channels: int = 8, in_channels: int = 1, size: int = 28, classes: int = 10) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * channels * (size // 4) ** 2, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class CharTransformer(nn.Module):
    """A causal character-level Transformer: token and learned position embeddings, ``layers`` encoder layers
    (``torch.nn.TransformerEncoderLayer``, no dropout), a linear readout to the next character's logits."""

    def __init__(self, vocab_size: int, length: int, d_model: int = 32, heads: int = 2, layers: int = 2,
                 feedforward: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.position = nn.Parameter(torch.zeros(length, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, feedforward, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.readout = nn.Linear(d_model, vocab_size)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(length), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[-1]
        h = self.embed(tokens) + self.position[:n]
        return self.readout(self.encoder(h, mask=self.mask[:n, :n], is_causal=True))


class ResidualBlock(nn.Module):
    """conv–BN–ReLU–conv–BN plus the input (a 1×1 strided projection when the shape changes), then ReLU."""

    def __init__(self, channels_in: int, channels_out: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False), nn.BatchNorm2d(channels_out), nn.ReLU(),
            nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False), nn.BatchNorm2d(channels_out))
        self.skip = nn.Identity() if stride == 1 and channels_in == channels_out else nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 1, stride, bias=False), nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class MixerBlock(nn.Module):
    """MLP-Mixer's block: LayerNorm and a GELU MLP across tokens, then LayerNorm and one across channels, each
    added to its input."""

    def __init__(self, tokens: int, channels: int, token_hidden: int, channel_hidden: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.tokens = nn.Sequential(nn.Linear(tokens, token_hidden), nn.GELU(), nn.Linear(token_hidden, tokens))
        self.channels = nn.Sequential(nn.Linear(channels, channel_hidden), nn.GELU(),
                                      nn.Linear(channel_hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channels(self.norm2(x))


class Mixer(nn.Module):
    """An MLP-Mixer on 7×7 patches of a 28×28 image (16 tokens), ``blocks`` blocks, mean over tokens, readout."""

    def __init__(self, channels: int = 32, blocks: int = 2, classes: int = 10, patch: int = 7) -> None:
        super().__init__()
        self.patch = nn.Conv2d(1, channels, patch, patch)
        tokens = (28 // patch) ** 2
        self.blocks = nn.Sequential(*[MixerBlock(tokens, channels, 2 * tokens, 2 * channels) for _ in range(blocks)])
        self.norm, self.readout = nn.LayerNorm(channels), nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.patch(x).flatten(2).transpose(1, 2)
        return self.readout(self.norm(self.blocks(h)).mean(dim=1))


class CharRNN(nn.Module):
    """A character-level GRU or LSTM: embedding, one recurrent layer, a linear readout to the next character."""

    def __init__(self, vocab_size: int, cell: str = "gru", embedding: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding)
        self.rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell](embedding, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.readout(self.rnn(self.embed(tokens))[0])


def mlp() -> nn.Module:
    """A ReLU MLP 784–256–256–10."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def bn_cnn(channels: int = 8) -> nn.Module:
    """Two 3×3 convolutions (``channels``, 2·``channels``) with BatchNorm, ReLU and 2×2 max pooling, a linear
    readout."""
    wide = 2 * channels
    return nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(channels, wide, 3, padding=1), nn.BatchNorm2d(wide), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(wide * 7 * 7, 10))


def resnet(channels: int = 8) -> nn.Module:
    """A small ResNet: a strided 3×3 stem (``channels``, 14×14), a residual block of ``channels`` and a strided one
    of 2·``channels``, global average pooling, a linear readout."""
    wide = 2 * channels
    return nn.Sequential(nn.Conv2d(1, channels, 3, 2, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
                         ResidualBlock(channels, channels), ResidualBlock(channels, wide, stride=2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(wide, 10))


def deep_ln_mlp(depth: int = 8, width: int = 128) -> nn.Module:
    """A deep MLP: ``depth`` hidden layers of ``width``, each Linear–LayerNorm–ReLU, a linear readout."""
    layers, size = [nn.Flatten()], 784
    for _ in range(depth):
        layers += [nn.Linear(size, width), nn.LayerNorm(width), nn.ReLU()]
        size = width
    return nn.Sequential(*layers, nn.Linear(size, 10))


IMAGE_MODELS: dict[str, Callable[[], nn.Module]] = {
    "mlp": mlp, "bn_cnn": bn_cnn, "resnet": resnet, "mixer": Mixer, "deep_ln_mlp": deep_ln_mlp}
TEXT_MODELS: dict[str, Callable[[int, int], nn.Module]] = {
    "gru": lambda vocab, length: CharRNN(vocab, "gru"),
    "lstm": lambda vocab, length: CharRNN(vocab, "lstm"),
    "transformer": lambda vocab, length: CharTransformer(vocab, length),
}
ZOO = (*IMAGE_MODELS, *TEXT_MODELS)
FIT = ("mlp", "bn_cnn", "gru", "mixer")
"""The architectures a suggestion rule is fit on; the other four (``resnet``, ``deep_ln_mlp``, ``lstm``,
``transformer``) are held out to score it. Fixed before any result was seen: each half has image and text models,
BatchNorm, LayerNorm and a recurrent network."""
