"""Day 10's ladders: what every correct SwiGLU, ALiBi bias, NormHead and max-z loss has, checked before values.

swiglu: x's shape and dtype, finite; a zero input row gives a zero output row (no biases anywhere).
alibi_bias: float32 (H, t_q, t_k), finite; 0 for the query's own key and every later key; <= 0 elsewhere; within
a head each step further back costs the same slope; the first H' slopes (H' the largest power of two <= H) are
2^(-8/H'), 2^(-16/H'), ...
norm_head_logits: a zero hidden state gets zero logits (linear in x); x's leading shape with V logits, x's dtype,
finite; |logit| <= ||x|| (unit rows).
max_z_loss: a 0-dim tensor in the logits' dtype, finite, >= 0.
train_baichuan_tokenizer: bytes that load as a SentencePiece model; vocab_size pieces, 3 specials then the 256 byte
pieces; trained with every option of the notebook's table (read back from the model); every probe text (accents,
CJK, full-width letters, runs of spaces, tabs) decodes back to itself with no unknown token; digits one by one.
"""

from __future__ import annotations

import torch

from gptref.grading.ladders import tensor_form

# ---------------------------------------------------------------- swiglu


def swiglu_form(got, case) -> str | None:
    x = case["x"]
    return tensor_form(got, x.shape, x.dtype, "swiglu's output (x's shape and dtype)")


def swiglu_zero_in_zero_out(got, case) -> str | None:
    zero_rows = (case["x"] == 0).all(dim=-1)  # (...,)
    if zero_rows.any() and not (got[zero_rows] == 0).all():
        return ("a zero input row must give a zero output row: silu(0) = 0 and there are no biases, but yours gives "
                f"values up to {got[zero_rows].abs().max().item():.4g} there (an extra bias, or an activation with "
                "f(0) != 0 such as sigmoid?)")
    return None


# ---------------------------------------------------------------- alibi_bias


def _query_positions(case) -> tuple[torch.Tensor, torch.Tensor]:
    t_q = case["t_q"]
    t_k = case.get("t_k") or t_q
    return torch.arange(t_k - t_q, t_k)[:, None], torch.arange(t_k)[None, :]  # (t_q, 1), (1, t_k)


def alibi_form(got, case) -> str | None:
    t_k = case.get("t_k") or case["t_q"]
    return tensor_form(got, (case["n_heads"], case["t_q"], t_k), torch.float32, "the bias (n_heads, t_q, t_k), float32")


def alibi_zero_from_the_diagonal_on(got, case) -> str | None:
    i, j = _query_positions(case)
    later = (j >= i).expand(got.shape[1:])  # (t_q, t_k): the query's own key and every later one
    if not (got[:, later] == 0).all():
        h, r, c = (int(v) for v in ((got != 0) & later).nonzero()[0])
        return (f"the query's own key and the keys after it get bias 0 (the causal mask handles later keys), but "
                f"head {h}, query row {r} (position {int(i[r])}) has {got[h, r, c].item():.4g} at key {c}"
                + (" (with t_k > t_q the queries are the last t_q positions)" if got.shape[1] != got.shape[2] else ""))
    return None


def alibi_penalty_linear(got, case) -> str | None:
    i, j = _query_positions(case)
    distance = (i - j).clamp(min=0).to(torch.float64)  # (t_q, t_k)
    if distance.max() == 0:
        return None
    if (got > 0).any():
        return "ALiBi subtracts slope * (i - j) from the scores: the bias is never positive (a sign flipped?)"
    r, c = (int(v) for v in (distance == distance.max()).nonzero()[0])
    slopes = -got[:, r, c].double() / distance[r, c]  # (H,) read off the farthest key
    if not torch.allclose(got.double(), -slopes[:, None, None] * distance, rtol=1e-5, atol=1e-6):
        return ("within a head, each step further back must cost the same slope m_h: the bias is -m_h * (i - j), "
                "a straight line in the distance i - j")
    return None


def alibi_power_of_two_slopes(got, case) -> str | None:
    n = case["n_heads"]
    p = 2 ** (n.bit_length() - 1)  # the largest power of two <= n
    i, j = _query_positions(case)
    distance = (i - j).clamp(min=0)
    if distance.max() == 0:
        return None
    r, c = (int(v) for v in (distance == distance.max()).nonzero()[0])
    slopes = -got[:p, r, c].double() / int(distance[r, c])
    want = torch.tensor([2 ** (-8 * (h + 1) / p) for h in range(p)], dtype=torch.float64)
    if not torch.allclose(slopes, want, rtol=1e-5):
        which = (f"for {n} heads (a power of two) the slopes are" if p == n else
                 f"for {n} heads the first {p} slopes ({p} is the largest power of two <= {n}) are those of {p} heads,")
        return (f"{which} m_h = 2^(-8h/{p}) for h = 1..{p}, from {want[0].item():.4g} down to {want[-1].item():.4g}; "
                f"yours are {[round(v, 5) for v in slopes[:6].tolist()]}{' ...' if p > 6 else ''}")
    return None


# ---------------------------------------------------------------- norm_head_logits


def norm_head_form(got, case) -> str | None:
    x, weight = case["x"], case["weight"]
    return tensor_form(got, (*x.shape[:-1], weight.shape[0]), x.dtype, "the logits (..., V) in x's dtype")


def norm_head_zero_hidden_state(got, case) -> str | None:
    """Where x is the zero vector its logits are 0: a logit x . w_v / ||w_v|| is linear in x (only weight's rows are
    divided by their length)."""
    x = case["x"]
    zero = (x == 0).all(dim=-1)  # (...) the zero hidden states
    if not isinstance(got, torch.Tensor) or tuple(got.shape[:-1]) != tuple(x.shape[:-1]) or not zero.any():
        return None
    wrong = zero & ~(got == 0).all(dim=-1)
    if wrong.any():
        index = tuple(int(v) for v in wrong.nonzero()[0])
        return (f"x{list(index)} is the zero vector, so its logits must all be 0 (each logit x . w_v / ||w_v|| is "
                f"linear in x); yours are {got[index][:4].tolist()}: only weight's rows are divided by their "
                "length, x enters as it is")
    return None


def norm_head_bounded(got, case) -> str | None:
    bound = case["x"].double().norm(dim=-1, keepdim=True)  # (..., 1)
    bad = got.double().abs() > bound * (1 + 1e-6) + 1e-9
    if bad.any():
        index = tuple(int(v) for v in bad.nonzero()[0])
        return (f"every row of the normalised weight has length 1, so each logit x . (w_v / ||w_v||) is at most "
                f"||x|| in size; at index {index} yours is {got[index].item():.4g} while ||x|| = "
                f"{bound[index[:-1]].item():.4g}")
    return None


# ---------------------------------------------------------------- max_z_loss


def max_z_form(got, case) -> str | None:
    logits = case["logits"]
    return tensor_form(got, (), logits.dtype, "the loss (a 0-dim tensor, the logits' dtype)")


def max_z_not_negative(got, case) -> str | None:
    if got.item() < 0:
        return f"weight * z^2 averaged over positions is never negative; yours is {got.item():.4g}"
    return None


# ---------------------------------------------------------------- train_baichuan_tokenizer

# the notebook's table: option -> (value, what it is for, in the notebook's words)
TOKENIZER_OPTIONS = {
    "model_type": ("bpe", "BPE"),
    "byte_fallback": (True, "no unknown tokens: unseen characters fall back to their UTF-8 bytes"),
    "split_digits": (True, "numbers split into single digits: digits must be split one by one"),
    "normalization_rule_name": ("identity", "no normalisation of the input"),
    "remove_extra_whitespaces": (False, "no normalisation of the input: runs of spaces are kept"),
    "add_dummy_prefix": (False, "no dummy prefix: no space added before the text"),
    "allow_whitespace_only_pieces": (True, "whitespace-only tokens (indentation in code)"),
    "max_sentencepiece_length": (32, "long pieces allowed"),
    "character_coverage": (0.9999, "all but the rarest 0.01% of characters covered (those fall back to bytes)"),
}
# texts every model trained with those options encodes and decodes back unchanged, with no unknown token
ROUND_TRIP_PROBES = ("naïve café ☃ 世界", "ＦＵＬＬ  width", "a   b\ttab", "  two leading spaces", "x" * 40)


def _processor(got):
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor()
    processor.LoadFromSerializedProto(bytes(got))
    return processor


def tokenizer_form(got, case) -> str | None:
    if not isinstance(got, (bytes, bytearray)) or not got:
        empty = " (empty)" if isinstance(got, (bytes, bytearray)) else ""
        return (f"return the model as bytes (the getvalue() of a BytesIO model_writer, or "
                f"serialized_model_proto()), got {type(got).__name__}{empty}")
    try:
        _processor(got)
    except Exception as error:  # noqa: BLE001 (any failure to load is the answer's)
        return f"the bytes you returned do not load as a SentencePiece model ({type(error).__name__}: {error})"
    return None


def tokenizer_vocabulary(got, case) -> str | None:
    processor = _processor(got)
    size = processor.get_piece_size()
    if size != case["vocab_size"]:
        return f"the vocabulary must have vocab_size = {case['vocab_size']} pieces; yours has {size}"
    specials = [i for i in range(3) if processor.IsControl(i) or processor.IsUnknown(i)]
    if len(specials) != 3:
        return ("the first 3 ids must be the special tokens <unk>, <s>, </s>; yours are "
                f"{[processor.IdToPiece(i) for i in range(3)]}")
    byte_ids = [i for i in range(size) if processor.IsByte(i)]
    if byte_ids != list(range(3, 259)):
        return (f"the 256 byte tokens <0x00>..<0xFF> must follow the 3 specials (ids 3 to 258); yours has "
                f"{len(byte_ids)} byte tokens: turn on byte_fallback")
    return None


def tokenizer_options(got, case) -> str | None:
    from gptref.tokenizers.spm_options import DEFAULTS, options

    trained = options(got)
    for name, (want, purpose) in TOKENIZER_OPTIONS.items():
        if trained[name] != want:
            default = ", the trainer's default" if trained[name] == DEFAULTS[name] else ""
            return (f"your model was trained with {name}={trained[name]!r}{default}; the notebook's table asks "
                    f"{name}={want!r} ({purpose}): pass it to SentencePieceTrainer.train")
    return None


def tokenizer_round_trip(got, case) -> str | None:
    processor = _processor(got)
    for probe in ROUND_TRIP_PROBES:
        ids = processor.EncodeAsIds(probe)
        if processor.unk_id() in ids:
            return f"{probe!r} encodes with an unknown token; with byte_fallback every character has ids"
        decoded = processor.DecodeIds(ids)
        if decoded != probe and " " in probe and decoded == probe.replace(" ", "\u2581"):
            return (f"{probe!r} decodes back as {decoded!r}: every space comes back as \u2581, SentencePiece's mark "
                    "for a space, because no piece of your model holds that mark, so byte fallback stores it as its "
                    "three UTF-8 bytes, which decode to the character itself: the model never saw a space inside a "
                    "training sentence, as when it is trained on single words (text.split() cuts at every space) "
                    "instead of the text's lines (text.split('\\n'))")
        if decoded != probe:
            return (f"{probe!r} decodes back as {decoded!r}; a model trained on the lines of the text "
                    "with the table's options gives every text back unchanged: look at what you train on and at the "
                    "options")
    digits = processor.EncodeAsIds("2024")
    if len(digits) != 4:  # a digit missing from the vocabulary is one byte token, still one per digit
        return (f"numbers must be split into single digits: '2024' becomes "
                f"{processor.EncodeAsPieces('2024')}")
    return None


def same_tokenization(got, expected, probes) -> str | None:
    """The comparison after the ladder: the answer's model cuts each probe text into the same pieces as the
    reference's."""
    mine, theirs = _processor(got), _processor(expected)
    for probe in probes:
        if mine.EncodeAsPieces(probe) != theirs.EncodeAsPieces(probe):
            return (f"{probe!r} splits as {mine.EncodeAsPieces(probe)} but Baichuan 2's options on the same lines "
                    f"give {theirs.EncodeAsPieces(probe)}: train on the non-empty lines of text, with exactly the "
                    "table's options")
    return None


LADDERS = {
    "swiglu": (swiglu_form, swiglu_zero_in_zero_out),
    "alibi_bias": (alibi_form, alibi_zero_from_the_diagonal_on, alibi_penalty_linear, alibi_power_of_two_slopes),
    "norm_head_logits": (norm_head_zero_hidden_state, norm_head_form, norm_head_bounded),
    "max_z_loss": (max_z_form, max_z_not_negative),
    "train_baichuan_tokenizer": (tokenizer_form, tokenizer_vocabulary, tokenizer_options, tokenizer_round_trip),
}
