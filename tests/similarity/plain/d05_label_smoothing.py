"""Day 5 written by hand, plain style."""
import torch


def smoothed_targets(target, n_classes, smoothing=0.1):
    off_value = smoothing / n_classes
    on_value = 1.0 - smoothing + off_value
    dist = torch.full((*target.shape, n_classes), off_value, dtype=torch.float32)
    dist.scatter_(-1, target.unsqueeze(-1), on_value)
    return dist


def smoothed_cross_entropy(logits, target, smoothing=0.1, ignore_index=-100):
    n_classes = logits.shape[-1]
    log_probs = torch.log_softmax(logits, dim=-1)
    valid = target != ignore_index
    log_probs = log_probs[valid]
    labels = target[valid]
    q = torch.full_like(log_probs, smoothing / n_classes)
    q[torch.arange(labels.shape[0]), labels] += 1.0 - smoothing
    losses = -(q * log_probs).sum(dim=-1)
    return losses.mean()
