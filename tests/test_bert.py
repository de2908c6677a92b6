"""gptref.bert: loading a Hugging Face BertForMaskedLM (same logits) and BERT's 80/10/10 masking statistics."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.nn import functional as F

from gptref.bert import Bert, BertConfig, mask_tokens


@pytest.fixture(autouse=True, scope="module")
def _tiny_tensors_one_thread(one_thread):
    """Tiny tensors: one thread is faster (the shared fixture in conftest.py)."""



@pytest.fixture(scope="module")
def hf_bert(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        max_position_embeddings=40, type_vocab_size=2,
        initializer_range=0.3,  # large weights: GELU variants and norm placement must matter
    )
    model = transformers.BertForMaskedLM(config).eval()
    path = tmp_path_factory.mktemp("bert")
    model.save_pretrained(path)
    return model, path


@pytest.mark.parametrize("source,kernel",
                         [("path", "sdpa"), ("state_dict", "sdpa"), ("model", "sdpa"), ("model", "math")])
def test_from_hf_bert_gives_the_same_logits(hf_bert, source, kernel):
    """With torch's fused attention and norms ("sdpa") and with the course's written-out ones ("math")."""
    hf, path = hf_bert
    model = {"path": lambda: Bert.from_hf_bert(path, kernel=kernel),
             "state_dict": lambda: Bert.from_hf_bert(hf.state_dict(), n_head=2, kernel=kernel),
             "model": lambda: Bert.from_hf_bert(hf, kernel=kernel)}[source]().eval()
    assert (model.config.n_layer, model.config.n_head, model.config.n_inner) == (2, 2, 37)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 99, (3, 40), generator=g)
    token_type_ids = torch.randint(0, 2, (3, 40), generator=g)
    attention_mask = torch.ones(3, 40, dtype=torch.long)
    attention_mask[1, 25:] = 0  # padding
    with torch.no_grad():
        expected = hf(input_ids=ids, token_type_ids=token_type_ids, attention_mask=attention_mask).logits
        logits, _ = model(ids, token_type_ids, attention_mask)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)  # float32; logits of size ~10 here
    hf64, model64 = copy.deepcopy(hf).double(), model.double()
    with torch.no_grad():
        expected = hf64(input_ids=ids, token_type_ids=token_type_ids, attention_mask=attention_mask).logits
        torch.testing.assert_close(model64(ids, token_type_ids, attention_mask)[0], expected, atol=1e-10, rtol=1e-10)


def test_bert_is_bidirectional_and_its_loss_is_masked_cross_entropy():
    torch.manual_seed(2)
    model = Bert(BertConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16)).eval()
    ids = torch.randint(0, 50, (2, 10), generator=torch.Generator().manual_seed(3))
    changed = ids.clone()
    changed[:, -1] = (ids[:, -1] + 1) % 50
    with torch.no_grad():
        a, _ = model(ids)
        b, _ = model(changed)
    assert not torch.allclose(a[:, 0], b[:, 0]), "a later token must change an earlier position's logits"
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    logits, loss = model(ids, labels=labels)
    torch.testing.assert_close(loss, F.cross_entropy(logits[:, 3], ids[:, 3]))


@pytest.mark.parametrize("field,value", [("n_head", 3), ("vocab_size", 0), ("dropout", -0.1), ("n_inner", 0)])
def test_bert_config_rejects_bad_fields(field, value):
    with pytest.raises(ValueError, match=field):
        BertConfig(**{**dict(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=16), field: value})


# ---------------------------------------------------------------- mask_tokens


def within(count: int, n: int, prob: float, sigmas: float = 5.0) -> bool:
    """count is within `sigmas` standard deviations of a Binomial(n, prob) mean."""
    return abs(count - n * prob) <= sigmas * math.sqrt(n * prob * (1 - prob)) + 1


def test_mask_tokens_follows_the_80_10_10_rule():
    vocab, mask_id, special = 1000, 999, (0, 1, 999)
    g = torch.Generator().manual_seed(4)
    ids = torch.randint(0, vocab, (200, 500), generator=g)
    ids[:, 0], ids[:, -1] = 0, 1  # CLS/SEP-like specials at both ends
    inputs, labels = mask_tokens(ids, mask_id, vocab, p=0.15, special_ids=special, generator=g)
    is_special = torch.isin(ids, torch.tensor(special))
    selected = labels != -100
    assert not (selected & is_special).any(), "a special id was selected"
    assert torch.equal(inputs[is_special], ids[is_special])
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(inputs[~selected], ids[~selected]), "an unselected position changed"
    n_free, n_sel = int((~is_special).sum()), int(selected.sum())
    assert within(n_sel, n_free, 0.15)
    to_mask = int((inputs[selected] == mask_id).sum())
    unchanged = int((inputs[selected] == ids[selected]).sum())
    random_other = n_sel - to_mask - unchanged
    # a random replacement equals the mask id or the original token with probability 1/vocab each
    assert within(to_mask, n_sel, 0.8 + 0.1 / vocab)
    assert within(unchanged, n_sel, 0.1 + 0.1 / vocab)
    assert within(random_other, n_sel, 0.1 * (1 - 2 / vocab))
    replaced = inputs[selected & (inputs != mask_id) & (inputs != ids)]
    assert within(int((replaced < vocab // 2).sum()), replaced.numel(), 0.5), "random tokens are not uniform"


def test_mask_tokens_is_pure_and_reproducible():
    ids = torch.randint(0, 30, (4, 50), generator=torch.Generator().manual_seed(5))
    before = ids.clone()
    a = mask_tokens(ids, 29, 30, generator=torch.Generator().manual_seed(6))
    b = mask_tokens(ids, 29, 30, generator=torch.Generator().manual_seed(6))
    assert torch.equal(ids, before)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    inputs, labels = mask_tokens(ids, 29, 30, p=1.0, special_ids=(3,))
    assert torch.equal(labels != -100, ids != 3)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(ids=torch.zeros(3)), "ids"),
        (dict(ids=torch.full((3,), 40)), "ids"),
        (dict(mask_id=30), "mask_id"),
        (dict(vocab_size=0), "vocab_size"),
        (dict(p=1.5), "p"),
    ],
)
def test_mask_tokens_rejects_bad_arguments(kwargs, name):
    args = dict(ids=torch.zeros(3, dtype=torch.long), mask_id=1, vocab_size=30) | kwargs
    with pytest.raises(ValueError, match=name):
        mask_tokens(**args)
