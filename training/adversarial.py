"""Adversarial training on the word vectors (Miyato, Dai & Goodfellow, 2017).

Each batch is learnt twice: as it is, and with every review's word vectors moved by the small
step that raises its loss the most. To first order that step is the loss's gradient with respect
to the word vectors, scaled to an L2 norm of ``epsilon`` over the whole review. Words cannot be
perturbed (they are discrete), their vectors can; the network learns to keep its answer when a
review's strongest words are nudged. Miyato et al. found it lowered the test error of their
language-model-pretrained LSTM on IMDB; with its virtual-adversarial variant they reached 94.1 %.

Virtual adversarial training (``vat_epsilon``) needs no target: it moves a review's word vectors
by the step of norm ``vat_epsilon`` that changes the network's own prediction the most (the KL
divergence from the clean prediction), found by one power iteration from a random direction,
and penalises that change. It needs no label, so it regularises every review in the training
batches alike (the unlabelled ones too, when teachers label them); it costs one more forward
and backward pass for the direction and one for the loss. Its passes replay the clean pass's
dropout masks: with fresh masks the prediction would differ at a zero step already, and the
power iteration would find the masks' difference instead of the most sensitive direction.

``epsilon`` is in the units of the word vectors, which are not normalised here (Miyato et al.
normalise them) and not weight-decayed, so it means more for small vectors than for large ones.
The dropout on the word vectors sits after the perturbation, inside the network, and draws a
new mask for the adversarial pass. With two backward passes, gradient clipping applies to the
sum of both gradients. The perturbation exists only while training: the network, its export and
the service are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor
from torch.nn import functional

from model.network import SentimentClassifier


def perturbation(gradient: Tensor, epsilon: float) -> Tensor:
    """``epsilon`` times each review's ``gradient`` ``[batch, time, embed]`` over its L2 norm.

    The norm runs over the whole review (all its positions and dimensions), as in Miyato et al.;
    a review whose gradient is zero gets no perturbation.
    """
    norms = gradient.flatten(1).norm(dim=1).clamp_min(1e-12)  # [B]
    return epsilon * gradient / norms.view(-1, 1, 1)


def summed_kl(reference_logits: Tensor, logits: Tensor) -> Tensor:
    """Summed KL(p || q) over the batch, p from ``reference_logits`` (held fixed), q from ``logits``."""
    reference = functional.log_softmax(reference_logits.detach(), dim=1)
    return functional.kl_div(
        functional.log_softmax(logits, dim=1), reference, log_target=True, reduction="sum"
    )


def generator_states(device: torch.device) -> tuple[Tensor, Tensor | None]:
    """Where the next dropout masks come from: the CPU generator's state, and the GPU's on a GPU."""
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


@contextmanager
def replaying(states: tuple[Tensor, Tensor | None], device: torch.device) -> Iterator[None]:
    """Run the block with the generators at ``states``, so it draws the dropout masks of the pass
    that started there, and give the generators their place back afterwards."""
    cpu, gpu = states
    with torch.random.fork_rng(devices=[device] if gpu is not None else []):
        torch.set_rng_state(cpu)
        if gpu is not None:
            torch.cuda.set_rng_state(gpu, device)
        yield


def virtual_step(
    classify: Callable[[Tensor], Tensor],
    embedded: Tensor,
    lengths: Tensor,
    logits: Tensor,
    epsilon: float,
    xi: float,
) -> Tensor:
    """The step of norm ``epsilon`` per review that moves the prediction away from ``logits`` the
    most, approximated by one power iteration (Miyato et al., 2017): the KL divergence's gradient
    after a random step of norm ``xi`` is nearly its Hessian times that step, which leans towards
    the Hessian's top eigenvector. ``classify`` maps word vectors to logits (with the masks that
    made ``logits``). Padding positions stay unmoved; no gradient reaches the parameters."""
    real = (torch.arange(embedded.shape[1], device=embedded.device) < lengths.unsqueeze(1)).unsqueeze(2)
    probe = perturbation(torch.randn_like(embedded) * real, xi).requires_grad_(True)
    divergence = summed_kl(logits, classify(embedded.detach() + probe))
    (direction,) = torch.autograd.grad(divergence, probe)
    return perturbation(direction * real, epsilon)


def backward(
    model: SentimentClassifier,
    token_ids: Tensor,
    lengths: Tensor,
    loss_of: Callable[[Tensor], Tensor],
    epsilon: float,
    scale: float = 1.0,
    vat_epsilon: float = 0.0,
    vat_xi: float = 0.1,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Backpropagate ``scale`` times the loss on the batch, on its adversarial twin (when
    ``epsilon`` > 0) and the virtual adversarial KL divergence (when ``vat_epsilon`` > 0).

    ``loss_of`` maps logits to the loss. Gradients accumulate into the parameters. Returns the
    clean logits, the clean loss, the adversarial loss and the virtual adversarial divergence
    (detached, unscaled; zero for a term that is off). The adversarial twin costs one forward and
    backward pass through the network after its lookup; the virtual one two.

    The lookup runs once, so all passes see the same dropped words (``word_dropout``); the
    adversarial pass draws new dropout masks, the virtual ones replay the clean pass's; the
    network after it runs on detached copies of the word vectors, whose gradients go back into
    the embedding together, and only when it is trained (a frozen embedding has no graph to go
    back to).
    """
    embedded = model.embed(token_ids)  # [B, T, E]
    clean_input = embedded.detach().requires_grad_(True)
    masks = generator_states(token_ids.device)  # where the clean pass's dropout masks come from
    logits = model.classify(clean_input, lengths)
    clean = loss_of(logits)
    (clean * scale).backward()
    gradient = clean_input.grad.clone()
    adversarial = virtual = torch.zeros(())
    if epsilon > 0:
        step = perturbation(clean_input.grad, epsilon)  # a constant: no gradient flows through it
        adversarial_input = (embedded.detach() + step).requires_grad_(True)
        adversarial = loss_of(model.classify(adversarial_input, lengths))
        (adversarial * scale).backward()
        gradient += adversarial_input.grad
    if vat_epsilon > 0:

        def with_clean_masks(vectors: Tensor) -> Tensor:
            with replaying(masks, token_ids.device):
                return model.classify(vectors, lengths)

        step = virtual_step(with_clean_masks, embedded, lengths, logits, vat_epsilon, vat_xi)
        virtual_input = (embedded.detach() + step).requires_grad_(True)
        virtual = summed_kl(logits, with_clean_masks(virtual_input))
        (virtual * scale).backward()
        gradient += virtual_input.grad
    if embedded.requires_grad:
        embedded.backward(gradient)
    return logits.detach(), clean.detach(), adversarial.detach(), virtual.detach()
