"""The sentiment network: embedding -> recurrent encoder -> masked pooling -> linear classifier.

(Or a Transformer encoder in place of the recurrent one: :mod:`model.transformer`.)

Batches are padded at the end and run *without* ``pack_padded_sequence`` (5-10x slower on CPU),
yet every review gets exactly the result it would get alone at its own length:

* a forward direction never reads the padding before a review's last token, so its outputs at
  real positions are exact as they are;
* a backward direction runs a forward recurrence over each review reversed *within its own
  length* (padding stays at the end), so it starts at the review's last real token;
* pooling masks padding out.

This is also what the ONNX recurrent ops compute when given ``sequence_lens``, which is how the
exported graph stays equal to this module.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from model.config import ModelConfig
from model.transformer import TransformerEncoder


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence of ``x`` ``[batch, time, features]`` within its own length.

    Padding positions stay in place, so applying this twice is the identity.
    """
    batch_size, time_steps, _ = x.shape
    steps = torch.arange(time_steps, device=x.device).expand(batch_size, time_steps)
    last = (lengths - 1).unsqueeze(1)  # [batch, 1]
    index = torch.where(steps <= last, last - steps, steps)  # [batch, time]
    return x.gather(1, index.unsqueeze(2).expand_as(x))


class PeepholeLSTM(nn.Module):
    """One-direction LSTM whose gates also see the cell state (Gers & Schmidhuber, 2000).

    Follows the ONNX ``LSTM`` operator's definition of its ``P`` input: the input and forget
    gates see the previous cell state, the output gate sees the new one. Parameter names and
    gate order (i, f, g, o) match ``nn.LSTM`` so export treats both alike; ``peephole`` holds
    the (i, f, o) peephole weights.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size))
        self.peephole = nn.Parameter(torch.empty(3 * hidden_size))
        bound = hidden_size**-0.5  # nn.LSTM's initialisation
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        """Run over ``x`` ``[batch, time, input]``; returns (outputs ``[batch, time, hidden]``, None)."""
        batch_size, time_steps, _ = x.shape
        peep_input, peep_forget, peep_output = self.peephole.chunk(3)
        projected = x @ self.weight_ih_l0.T + self.bias_ih_l0 + self.bias_hh_l0  # [B, T, 4H]
        hidden = x.new_zeros(batch_size, self.hidden_size)
        cell = x.new_zeros(batch_size, self.hidden_size)
        outputs = []
        for step in range(time_steps):
            gates = projected[:, step] + hidden @ self.weight_hh_l0.T  # [B, 4H]
            gate_i, gate_f, gate_g, gate_o = gates.chunk(4, dim=1)
            input_gate = torch.sigmoid(gate_i + peep_input * cell)
            forget_gate = torch.sigmoid(gate_f + peep_forget * cell)
            cell = forget_gate * cell + input_gate * torch.tanh(gate_g)
            hidden = torch.sigmoid(gate_o + peep_output * cell) * torch.tanh(cell)
            outputs.append(hidden)
        return torch.stack(outputs, dim=1), None


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence, shared by all its time steps (variational dropout,
    Gal & Ghahramani 2016): a unit that is dropped stays dropped for the whole review, so the
    recurrence cannot average the noise away step by step."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``[batch, time, features]``; the identity when not training."""
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask


def make_dropout(p: float, locked: bool) -> nn.Module:
    """Dropout over ``[batch, time, features]``: locked (one mask per review) or per element."""
    return LockedDropout(p) if locked else nn.Dropout(p)


def make_direction(cell: str, input_size: int, hidden_size: int) -> nn.Module:
    """One layer, one direction of the chosen recurrent cell, batch-first."""
    if cell == "peephole":
        return PeepholeLSTM(input_size, hidden_size)
    recurrent = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
    return recurrent(input_size, hidden_size, num_layers=1, batch_first=True)


class RecurrentEncoder(nn.Module):
    """Stacked, optionally bidirectional recurrent layers over padded batches."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for layer in range(config.num_layers):
            input_size = config.embed_dim if layer == 0 else config.encoder_dim
            directions = [
                make_direction(config.cell, input_size, config.hidden_size)
                for _ in range(config.num_directions)
            ]
            self.layers.append(nn.ModuleList(directions))
        self.between_layers = make_dropout(config.dropout, config.locked_dropout)
        if config.cell in ("lstm", "peephole"):
            self._init_forget_bias(config.hidden_size)

    def _init_forget_bias(self, hidden_size: int) -> None:
        # A forget-gate bias of 1 lets gradients flow through time early in training
        # (Jozefowicz et al., 2015); split over the two bias vectors that are summed.
        with torch.no_grad():
            for directions in self.layers:
                for direction in directions:
                    direction.bias_ih_l0[hidden_size : 2 * hidden_size].fill_(0.5)
                    direction.bias_hh_l0[hidden_size : 2 * hidden_size].fill_(0.5)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``x`` ``[batch, time, embed]`` -> top-layer outputs ``[batch, time, directions*hidden]``."""
        for index, directions in enumerate(self.layers):
            if index > 0:
                x = self.between_layers(x)
            forward_out, _ = directions[0](x)  # [B, T, H]
            outputs = [forward_out]
            if len(directions) == 2:
                backward_out, _ = directions[1](reverse_padded(x, lengths))
                outputs.append(reverse_padded(backward_out, lengths))  # back to reading order
            x = torch.cat(outputs, dim=2)  # [B, T, D*H]
        return x


def pool(outputs: Tensor, lengths: Tensor, pooling: str, hidden_size: int) -> Tensor:
    """Masked pooling of ``outputs`` ``[batch, time, D*hidden]`` over time -> ``[batch, ...]``.

    ``last`` is each direction's final state: the forward one at the review's last token, the
    backward one at its first token (where the backward pass ends).
    """
    batch_size, time_steps, width = outputs.shape
    mask = (torch.arange(time_steps, device=outputs.device) < lengths.unsqueeze(1)).unsqueeze(2)
    rows = torch.arange(batch_size, device=outputs.device)
    last = outputs[rows, lengths - 1, :hidden_size]  # [B, H]
    if width > hidden_size:
        last = torch.cat([last, outputs[:, 0, hidden_size:]], dim=1)  # [B, 2H]
    maximum = outputs.masked_fill(~mask, float("-inf")).max(dim=1).values  # [B, D*H]
    mean = outputs.masked_fill(~mask, 0.0).sum(dim=1) / lengths.unsqueeze(1).to(outputs.dtype)
    pooled = {
        "last": [last],
        "max": [maximum],
        "mean": [mean],
        "concat": [last, maximum, mean],
    }
    return torch.cat(pooled[pooling], dim=1)


class SentimentClassifier(nn.Module):
    """Review token ids -> class logits (index 0 negative, 1 positive)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=config.pad_id)
        self.embed_dropout = make_dropout(config.embed_dropout, config.locked_dropout)
        self.encoder = RecurrentEncoder(config) if config.recurrent else TransformerEncoder(config)
        self.head_dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.pooled_dim, config.num_classes)

    def forward(self, token_ids: Tensor, lengths: Tensor) -> Tensor:
        """``token_ids`` ``[batch, time]`` padded at the end, ``lengths`` ``[batch]`` (all >= 1)."""
        return self.classify(self.embed(token_ids), lengths)

    def embed(self, token_ids: Tensor) -> Tensor:
        """Word vectors ``[batch, time, embed]``. While training, ``word_dropout`` zeroes whole
        rows of the embedding for the batch (Merity et al., 2018): every occurrence of a dropped
        word vanishes, and the others are scaled up to keep the expected vector."""
        p = self.config.word_dropout
        if not self.training or p == 0:
            return self.embedding(token_ids)
        weight = self.embedding.weight
        keep = weight.new_empty(weight.shape[0], 1).bernoulli_(1 - p) / (1 - p)
        return nn.functional.embedding(token_ids, weight * keep, padding_idx=self.config.pad_id)

    def classify(self, embedded: Tensor, lengths: Tensor) -> Tensor:
        """Class logits from word vectors ``[batch, time, embed]``: the network after its lookup.

        Adversarial training perturbs the word vectors here (:mod:`training.adversarial`).
        """
        x = self.embed_dropout(embedded)  # [B, T, E]
        outputs = self.encoder(x, lengths)  # [B, T, D*H]
        pooled = pool(outputs, lengths, self.config.pooling, self.config.direction_dim)
        return self.head(self.head_dropout(pooled))  # [B, classes]
