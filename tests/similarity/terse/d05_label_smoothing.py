"""Day 5 written by hand, terse style."""
import torch
import torch.nn.functional as F


def smoothed_targets(target, n_classes, smoothing=0.1):
    eye = torch.eye(n_classes, dtype=torch.float32)[target]
    return eye * (1 - smoothing) + torch.ones_like(eye) * (smoothing / n_classes)


def smoothed_cross_entropy(logits, target, smoothing=0.1, ignore_index=-100):
    keep = (target != ignore_index).to(logits.dtype)
    lp = F.log_softmax(logits, -1)
    picked = torch.take_along_dim(lp, target.clamp(min=0).unsqueeze(1), 1).squeeze(1)
    loss = -((1 - smoothing) * picked + smoothing * lp.mean(-1))
    return (loss * keep).sum() / keep.sum()
