"""gptref.tokenizers' one interface (encode, decode, vocab_size, spec) for char, BPE and SentencePiece, each
against an independent implementation: an alphabet index written here, tiktoken with gptref's BPE merges, and
the sentencepiece library on the same model; and each tokenizer rebuilt from a checkpoint encodes the same."""

from __future__ import annotations

import json
import random

import pytest

from gptref.tokenizers import BPETokenizer, CharTokenizer, SentencePieceTokenizer, tokenizer_from_spec
from gptref.train.checkpoint import load_checkpoint, save_checkpoint

WORDS = ("the king hath spoken , and we obey ; 1066 1415 thou art more lovely than a summer's day "
         "O Romeo wherefore art thou ? naïve café 世界 ☃").split()
KINDS = ("char", "bpe", "spm")


def seeded_text(seed: int, n_words: int) -> str:
    """Words of WORDS joined by spaces, newlines and tabs, drawn from a seeded generator."""
    rng = random.Random(seed)
    return "".join(rng.choice(WORDS) + rng.choice("  \n\t") for _ in range(n_words))


TRAIN_TEXT = seeded_text(0, 6000)


def _alphabet_ids(text: str, chars: str) -> list[int]:
    """Character ids written independently of CharTokenizer: each character's position in the alphabet."""
    return [chars.find(c) for c in text]


def _tiktoken_ids(tok: BPETokenizer):
    pytest.importorskip("tiktoken")
    from test_bpe import tiktoken_twin  # tiktoken's Encoding over gptref's merges (token rank = id)

    twin = tiktoken_twin(tok)
    return lambda text: twin.encode(text, disallowed_special=())


def _sentencepiece_ids(tok: SentencePieceTokenizer):
    spm = pytest.importorskip("sentencepiece")
    library = spm.SentencePieceProcessor(model_proto=tok.model_proto)
    return lambda text: library.encode(text)


@pytest.fixture(scope="module", params=KINDS)
def trained(request):
    """(tokenizer, independent encoder) of each kind, trained on TRAIN_TEXT where training applies."""
    if request.param == "char":
        chars = "".join(sorted(set(TRAIN_TEXT)))
        return CharTokenizer(chars), lambda text: _alphabet_ids(text, chars)
    if request.param == "bpe":
        tok = BPETokenizer.train(TRAIN_TEXT, 320)
        return tok, _tiktoken_ids(tok)
    pytest.importorskip("sentencepiece")
    tok = SentencePieceTokenizer.train(TRAIN_TEXT, 300)
    return tok, _sentencepiece_ids(tok)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_encode_matches_the_independent_implementation_and_round_trips(trained, seed):
    tok, independent = trained
    text = seeded_text(seed, 200)
    ids = tok.encode(text)
    assert ids == independent(text), f"{type(tok).__name__}.encode differs from its independent twin"
    assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids), "ids must be ints in [0, vocab_size)"
    assert tok.decode(ids) == text, f"{type(tok).__name__}: decode(encode(text)) must give the text back"
    assert tok.vocab_size == len(tok), "vocab_size and len() must agree"


def test_a_checkpoint_carries_the_tokenizer(trained, tmp_path):
    """spec() is JSON-ready and survives a weights_only checkpoint; the rebuilt tokenizer encodes the same."""
    tok, _ = trained
    spec = tok.spec()
    assert json.loads(json.dumps(spec)) == spec, "a tokenizer's spec must be plain JSON data"
    save_checkpoint({"tokenizer": spec}, tmp_path / "ckpt.pt")
    again = tokenizer_from_spec(load_checkpoint(tmp_path / "ckpt.pt")["tokenizer"])
    text = seeded_text(4, 300)
    assert type(again) is type(tok) and again.vocab_size == tok.vocab_size
    assert again.encode(text) == tok.encode(text) and again.decode(tok.encode(text)) == text
    assert again.spec() == spec


def test_a_spec_of_another_kind_is_refused_with_its_name():
    with pytest.raises(ValueError, match="kind='wordpiece'"):
        tokenizer_from_spec({"kind": "wordpiece"})
    for cls, other in ((CharTokenizer, "bpe"), (BPETokenizer, "char"), (SentencePieceTokenizer, "char")):
        with pytest.raises(ValueError, match="spec"):
            cls.from_spec({"kind": other})
