"""gptref.norms against nn.LayerNorm / nn.RMSNorm, gradcheck, and the hand-written backward."""

import pytest
import torch
import torch.nn as nn

from gptref.norms import LayerNorm, RMSNorm, layer_norm, layer_norm_backward, rms_norm

F64 = dict(dtype=torch.float64)


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), **F64) * 3 + 1


@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_module_matches_torch(bias):
    torch.manual_seed(0)
    ref = nn.LayerNorm(10, bias=bias).double()
    with torch.no_grad():
        ref.weight.normal_()
        if bias:
            ref.bias.normal_()
    ours = LayerNorm(10, bias=bias).double()
    ours.load_state_dict(ref.state_dict())
    x = _x(4, 3, 10)
    torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(layer_norm(x), nn.functional.layer_norm(x, (10,)))


def test_rmsnorm_module_matches_torch():
    torch.manual_seed(1)
    ref = nn.RMSNorm(10, eps=1e-6).double()
    with torch.no_grad():
        ref.weight.normal_()
    ours = RMSNorm(10).double()
    ours.load_state_dict(ref.state_dict())
    x = _x(4, 3, 10)
    torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(rms_norm(x), nn.functional.rms_norm(x, (10,), eps=1e-6))


def test_gradcheck():
    x = _x(3, 6).requires_grad_()
    w = _x(6, seed=1).requires_grad_()
    b = _x(6, seed=2).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w, b: layer_norm(x, w, b), (x, w, b))
    assert torch.autograd.gradcheck(lambda x, w: rms_norm(x, w), (x, w))


@pytest.mark.parametrize("with_weight", [True, False])
def test_layer_norm_backward_matches_autograd(with_weight):
    x = _x(2, 5, 8).requires_grad_()
    w = _x(8, seed=1).requires_grad_() if with_weight else None
    b = _x(8, seed=2).requires_grad_()
    g = _x(2, 5, 8, seed=3)
    y = layer_norm(x, w, b, eps=1e-5)
    expected = torch.autograd.grad(y, [x, b] + ([w] if with_weight else []), g)
    dx, dw, db = layer_norm_backward(g, x.detach(), None if w is None else w.detach(), eps=1e-5)
    torch.testing.assert_close(dx, expected[0])
    torch.testing.assert_close(db, expected[1])
    if with_weight:
        torch.testing.assert_close(dw, expected[2])
    else:
        assert dw is None


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="weight"):
        layer_norm(torch.randn(2, 4), torch.ones(3))
    with pytest.raises(ValueError, match="bias"):
        layer_norm(torch.randn(2, 4), None, torch.ones(5))
    with pytest.raises(ValueError, match="grad_out"):
        layer_norm_backward(torch.randn(2, 3), torch.randn(2, 4))
