"""gptref.attention.broadcast_shape: torch.broadcast_shapes' answer (and its refusals) without importing sympy."""

import subprocess
import sys

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptref.attention import broadcast_shape

shapes = st.lists(st.lists(st.sampled_from([0, 1, 2, 3]), max_size=4), min_size=1, max_size=3)


@settings(max_examples=300, deadline=None)
@given(shapes)
def test_broadcast_shape_agrees_with_torch(shape_list):
    try:
        expected = torch.broadcast_shapes(*shape_list)
    except RuntimeError:
        expected = None
    try:
        got = broadcast_shape(*shape_list)
    except RuntimeError:
        got = None
    assert got == expected, shape_list


def test_masked_attention_imports_no_sympy():
    code = ("import sys, torch\nfrom gptref.attention import causal_mask, scaled_dot_product_attention\n"
            "q = torch.randn(1, 2, 4, 8)\nscaled_dot_product_attention(q, q, q, causal_mask(4))\n"
            "print('sympy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "False", done.stdout + done.stderr
