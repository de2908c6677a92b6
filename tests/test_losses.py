"""gptref.losses: value and gradient equal to F.cross_entropy(label_smoothing=...)."""

import pytest
import torch
import torch.nn.functional as F

from gptref.losses import label_smoothing_cross_entropy, label_smoothing_kl, smoothed_targets


def _case(shape=(12, 7), seed=0, n_ignored=3):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(*shape, generator=g, dtype=torch.float64) * 2).requires_grad_()
    target_shape = (shape[0], *shape[2:])
    target = torch.randint(0, shape[1], target_shape, generator=g)
    flat = target.view(-1)
    flat[torch.randperm(flat.numel(), generator=g)[:n_ignored]] = -100
    return logits, target


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.7])
@pytest.mark.parametrize("shape", [(12, 7), (3, 5, 4)])
def test_matches_torch_value_and_grad(reduction, smoothing, shape):
    logits, target = _case(shape)
    ours = label_smoothing_cross_entropy(logits, target, smoothing, reduction=reduction)
    ref = F.cross_entropy(logits, target, label_smoothing=smoothing, reduction=reduction)
    torch.testing.assert_close(ours, ref)
    w = torch.randn(ref.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    g_ours, = torch.autograd.grad((ours * w).sum(), logits)
    g_ref, = torch.autograd.grad((ref * w).sum(), logits)
    torch.testing.assert_close(g_ours, g_ref)


def test_other_ignore_index():
    logits, target = _case()
    target[target == -100] = 3
    torch.testing.assert_close(label_smoothing_cross_entropy(logits, target, 0.2, ignore_index=3),
                               F.cross_entropy(logits, target, label_smoothing=0.2, ignore_index=3))


def test_smoothed_targets_distribution():
    t = torch.tensor([0, 2, 1])
    q = smoothed_targets(t, 4, 0.2, dtype=torch.float64)
    expected = torch.full((3, 4), 0.05, dtype=torch.float64)
    expected[torch.arange(3), t] = 0.85
    torch.testing.assert_close(q, expected)
    # soft-target cross-entropy in torch with this distribution equals label smoothing
    logits = torch.randn(3, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(F.cross_entropy(logits, q), F.cross_entropy(logits, t, label_smoothing=0.2))


def test_kl_form():
    logits, target = _case(n_ignored=0)
    q = smoothed_targets(target, 7, 0.1, dtype=torch.float64)
    ref = F.kl_div(logits.log_softmax(-1), q, reduction="batchmean")
    ours = label_smoothing_kl(logits, target, 0.1)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, logits)[0], torch.autograd.grad(ref, logits)[0])
    # at p = q the KL is zero
    assert label_smoothing_kl(q.log(), target, 0.1).abs().item() < 1e-12


def test_bad_arguments():
    logits, target = _case()
    with pytest.raises(ValueError, match="reduction"):
        label_smoothing_cross_entropy(logits, target, reduction="avg")
    with pytest.raises(ValueError, match="smoothing"):
        label_smoothing_cross_entropy(logits, target, smoothing=1.5)
    with pytest.raises(ValueError, match="target"):
        label_smoothing_cross_entropy(logits, target[:5])
    with pytest.raises(ValueError, match="outside"):
        label_smoothing_cross_entropy(logits, torch.full((12,), 7))
