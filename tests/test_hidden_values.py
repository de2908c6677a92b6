"""The trusted check's message as a student reads it keeps what broke and where, and no value of a hidden case."""

from __future__ import annotations

import re

import torch

from autograder.feedback_safety.hidden_values import WITHHELD, withhold_values
from gptref.grading.compare import difference


def test_values_of_a_hidden_case_are_withheld_and_positions_stay():
    generator = torch.Generator().manual_seed(0)
    expected = torch.randn(3, 5, generator=generator, dtype=torch.float64)
    got = expected.clone()
    got[1, 2] += 0.5
    message = difference(got, expected)
    shown = withhold_values(f"case 2: {message}")
    assert re.search(r"got -?\d\.\d+, expected -?\d\.\d+", message), message
    assert not re.search(r"\d\.\d", shown), shown
    assert "case 2" in shown and "(1, 2)" in shown and "1 of 15 entries" in shown and WITHHELD in shown


def test_integer_strings_and_lists_are_withheld_and_shapes_are_not():
    assert withhold_values("first at index (2,): got 3, expected 17") == "first at index (2,): got …, expected …"
    assert withhold_values("text: got 'abc', expected 'abd'") == "text: got …, expected …"
    assert withhold_values("ids should be [1, 2, 3], got [1, 2]") == "ids should be …, got …"
    shape = "output has shape (2, 3) but should have shape (3, 2)"
    assert withhold_values(shape) == shape
    words = "it equals the expected result with its last two dimensions swapped"
    assert withhold_values(words) == words
