"""A Transformer encoder (Vaswani et al., 2017) in place of the recurrent layers, for the
comparison the course ends on: same embedding, pooling and head, self-attention between them.

Every position attends to every real position at once, so a layer is a few matrix products over
the whole review rather than one step per token. Padding is masked out of the attention's keys,
so a review in a padded batch gets exactly the result it gets alone, as with the recurrent
encoder. Positions are the fixed sinusoids of the paper, computed for any length (nothing to
learn, no maximum length). Layers normalise before each block (pre-norm, Xiong et al., 2020),
which trains without a long warm-up; a last layer norm closes the stack.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from model.config import ModelConfig

POSITION_BASE = 10000.0  # the paper's wavelength base


def inverse_frequencies(width: int) -> Tensor:
    """``1 / base^(2i / width)`` for ``i < width / 2``: one frequency per (sin, cos) pair."""
    return torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(POSITION_BASE) / width))


def sinusoidal_positions(time_steps: int, width: int) -> Tensor:
    """Position encodings ``[time, width]``: sin at even dimensions, cos at odd ones."""
    positions = torch.arange(time_steps, dtype=torch.float32).unsqueeze(1)  # [T, 1]
    angles = positions * inverse_frequencies(width)  # [T, W/2]
    return torch.stack([angles.sin(), angles.cos()], dim=2).reshape(time_steps, width)  # interleaved


class TransformerEncoder(nn.Module):
    """``num_layers`` self-attention encoder layers over padded batches."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model=config.embed_dim,
            nhead=config.num_heads,
            dim_feedforward=config.hidden_size,
            dropout=config.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.stack = nn.TransformerEncoder(
            layer,
            config.num_layers,
            norm=nn.LayerNorm(config.embed_dim),
            enable_nested_tensor=False,  # keeps padded positions, which pooling masks itself
        )

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``x`` ``[batch, time, embed]`` -> outputs ``[batch, time, embed]``."""
        _, time_steps, width = x.shape
        padding = torch.arange(time_steps, device=x.device) >= lengths.unsqueeze(1)  # [B, T]
        x = x + sinusoidal_positions(time_steps, width).to(x.device, x.dtype)  # [B, T, E]
        return self.stack(x, src_key_padding_mask=padding)
