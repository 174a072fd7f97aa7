"""Gradient of the Grad-CAM target with respect to the layer's activations, PyTorch."""

import torch


def target_gradient(head, inputs, activations, score_fn):
    """Return ``d sum(score_fn(head([*inputs, activations]))) / d activations``."""
    activations = activations.detach().requires_grad_(True)
    with torch.enable_grad():
        score = torch.sum(score_fn(head([*inputs, activations], training=False)))
        if not score.requires_grad:  # the output does not depend on this layer at all
            return torch.zeros_like(activations)
        (gradient,) = torch.autograd.grad(score, activations, allow_unused=True)
    return torch.zeros_like(activations) if gradient is None else gradient
