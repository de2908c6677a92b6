"""gptref.grading.ladders' shared helpers: the first rung (tensor_form) and calls that must leave inputs alone."""

from __future__ import annotations

import pytest
import torch

from gptref.grading.ladders import call_unchanged, tensor_form


def test_tensor_form_names_what_is_wrong_and_passes_a_right_tensor():
    assert tensor_form(torch.zeros(2, 3), (2, 3), torch.float32, "x") is None
    assert "return just the tensor" in tensor_form((torch.zeros(2, 3),), (2, 3), torch.float32, "x")
    assert "transposed" in tensor_form(torch.zeros(3, 2), (2, 3), torch.float32, "x")
    assert "dtype torch.float64" in tensor_form(torch.zeros(2, 3, dtype=torch.float64), (2, 3), torch.float32, "x")
    assert "NaN or inf" in tensor_form(torch.full((2, 3), float("nan")), (2, 3), torch.float32, "x")


def test_call_unchanged_fails_an_in_place_change_and_keeps_the_callers_tensor():
    def halve_in_place(x):
        x /= 2
        return x

    case = {"x": torch.ones(3)}
    with pytest.raises(AssertionError, match="changed its argument 'x' in place"):
        call_unchanged(halve_in_place, case)
    assert torch.equal(case["x"], torch.ones(3))
    assert torch.equal(call_unchanged(lambda x: x / 2, case), torch.full((3,), 0.5))
