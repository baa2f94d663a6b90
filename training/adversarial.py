"""Adversarial training on the word vectors (Miyato, Dai & Goodfellow, 2017).

Each batch is learnt twice: as it is, and with every review's word vectors moved by the small
step that raises its loss the most. To first order that step is the loss's gradient with respect
to the word vectors, scaled to an L2 norm of ``epsilon`` over the whole review. Words cannot be
perturbed (they are discrete), their vectors can; the network learns to keep its answer when a
review's strongest words are nudged. Miyato et al. found it lowered the test error of their
language-model-pretrained LSTM on IMDB; with its virtual-adversarial variant (not built here,
it needs a second forward pass per unlabelled review) they reached 94.1 %.

``epsilon`` is in the units of the word vectors, which are not normalised here (Miyato et al.
normalise them) and not weight-decayed, so it means more for small vectors than for large ones.
The dropout on the word vectors sits after the perturbation, inside the network, and draws a
new mask for the adversarial pass. With two backward passes, gradient clipping applies to the
sum of both gradients. The perturbation exists only while training: the network, its export and
the service are unchanged.
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
    and two backward passes through the network after its lookup.

    The lookup runs once, so both passes see the same dropped words (``word_dropout``); the
    network after it runs on detached copies of the word vectors, whose gradients (the step's
    direction, then the adversarial one) go back into the embedding together, and only when it
    is trained (a frozen embedding has no graph to go back to).
    """
    embedded = model.embed(token_ids)  # [B, T, E]
    clean_input = embedded.detach().requires_grad_(True)
    logits = model.classify(clean_input, lengths)
    clean = loss_of(logits)
    (clean * scale).backward()
    step = perturbation(clean_input.grad, epsilon)  # a constant: no gradient flows through it
    adversarial_input = (embedded.detach() + step).requires_grad_(True)
    adversarial = loss_of(model.classify(adversarial_input, lengths))
    (adversarial * scale).backward()
    if embedded.requires_grad:
        embedded.backward(clean_input.grad + adversarial_input.grad)
    return logits.detach(), clean.detach(), adversarial.detach()
