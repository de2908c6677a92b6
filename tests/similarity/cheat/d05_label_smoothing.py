"""Cheat: gptref.losses.smoothed_targets copied with new names and no checks."""
import torch


def smoothed_targets(labels, n_classes, smoothing=0.1):
    dist = torch.full((*labels.shape, n_classes), smoothing / n_classes, dtype=torch.float32, device=labels.device)
    # put the rest of the mass on the label
    return dist.scatter_add_(-1, labels[..., None], torch.full_like(dist[..., :1], 1.0 - smoothing))
