"""Adversarial training on the word vectors (Miyato, Dai & Goodfellow, 2017).

Each batch is learnt twice: as it is, and with every review's word vectors moved by the small
step that raises its loss the most. To first order that step is the loss's gradient with respect
to the word vectors, scaled to an L2 norm of ``epsilon`` over the whole review. Words cannot be
perturbed (they are discrete), their vectors can; the network learns to keep its answer when a
review's strongest words are nudged towards their neighbours, a regulariser that made Miyato et
al.'s LSTM the best on IMDB at the time.

The perturbation exists only while training: the network, its export and the service are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from model.network import SentimentClassifier


def perturbation(gradient: Tensor, epsilon: float) -> Tensor:
    """``epsilon`` times each review's ``gradient`` ``[batch, time, embed]`` over its L2 norm.

    The norm runs over the whole review (all its positions and dimensions), as in Miyato et al.;
    a review whose gradient is zero gets no perturbation.
    """
    norms = gradient.flatten(1).norm(dim=1).clamp_min(1e-12)  # [B]
    return epsilon * gradient / norms.view(-1, 1, 1)


def backward(
    model: SentimentClassifier,
    token_ids: Tensor,
    lengths: Tensor,
    loss_of: Callable[[Tensor], Tensor],
    epsilon: float,
    scale: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Backpropagate ``scale`` times the loss on the batch and on its adversarial twin.

    ``loss_of`` maps logits to the loss. Gradients accumulate into the parameters. Returns the
    clean logits, the clean loss and the adversarial loss (detached, unscaled). Costs two forward
    and two backward passes: the first backward gives the parameters' gradients and the
    perturbation's direction at once.
    """
    embedded = model.embed(token_ids)  # [B, T, E]
    embedded.retain_grad()
    logits = model.classify(embedded, lengths)
    clean = loss_of(logits)
    (clean * scale).backward()
    step = perturbation(embedded.grad, epsilon)  # a constant: no gradient flows through it
    adversarial = loss_of(model.classify(model.embed(token_ids) + step, lengths))
    (adversarial * scale).backward()
    return logits.detach(), clean.detach(), adversarial.detach()
