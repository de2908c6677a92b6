"""The parameter counts docs/homework.md gives for the homework's two models are the models' own.

Each model is built the way `./run homework` builds it (its CPU config, its architecture preset, the character
tokenizer); a weight shared by the embedding and the head is counted once.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gptref.commands.homework import arch_pretrain_file
from gptref.gpt import ARCH_OPTIONS
from gptref.train.config import load_config
from gptref.train.loop import _model_and_tokenizer

HOMEWORK_DOC = Path(__file__).resolve().parent.parent / "docs" / "homework.md"
PARAMETER_ROW = re.compile(r"^\| parameters[^|]*\| ([\d,]+) \| ([\d,]+) \|$", re.MULTILINE)


def distinct_parameter_count(model) -> int:
    """Elements of the model's parameters, a tensor shared by two modules counted once."""
    return sum({id(param): param.numel() for param in model.parameters()}.values())


@pytest.mark.parametrize("column, arch", [(0, "gpt2"), (1, "baichuan2")])
def test_documented_parameter_count_is_the_models(column, arch):
    rows = PARAMETER_ROW.findall(HOMEWORK_DOC.read_text())
    assert len(rows) == 1, "docs/homework.md should hold one '| parameters | gpt2 | baichuan2 |' row"
    documented = int(rows[0][column].replace(",", ""))
    config = load_config(arch_pretrain_file(arch, "cpu"), **ARCH_OPTIONS[arch])
    model, _, _ = _model_and_tokenizer(config, None, None)
    assert documented == distinct_parameter_count(model) == model.num_params()
