"""gptref.tokenizers.spm_options reads back, from a model's bytes, the options it was trained with."""

from __future__ import annotations

import io

import pytest

spm = pytest.importorskip("sentencepiece")

from gptref.tokenizers.spm_options import DEFAULTS, options  # noqa: E402

_TEXT = ("Shall I compare thee to a summer's day? Thou art more lovely and more temperate.\n"
         "    if total > 1000:\n        total = total - 2024\n") * 30


def _train(**chosen) -> bytes:
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter([line for line in _TEXT.split("\n") if line]),
                                   model_writer=out, vocab_size=chosen.pop("vocab_size", 40), minloglevel=2,
                                   num_threads=1, **chosen)
    return out.getvalue()


def test_defaults_are_read_when_nothing_is_chosen():
    assert options(_train()) == {**DEFAULTS, "vocab_size": 40}


def test_every_chosen_option_is_read_back():
    chosen = dict(model_type="bpe", byte_fallback=True, split_digits=True, normalization_rule_name="identity",
                  remove_extra_whitespaces=False, add_dummy_prefix=False, allow_whitespace_only_pieces=True,
                  max_sentencepiece_length=32, character_coverage=0.9999)
    assert options(_train(vocab_size=300, **chosen)) == {**chosen, "vocab_size": 300}
