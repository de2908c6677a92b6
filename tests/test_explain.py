"""gptref.grading.explain: student errors are explained from the error and the student's line; known
mistakes are named only when the answer really equals them."""

from __future__ import annotations

import copy
import importlib

import pytest
import torch

from gptref.grading import exercises
from gptref.grading.explain import Mistake, call, expect, which_mistake


def _message(fn, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        call(fn, *args, **kwargs)
    return str(info.value)


def test_transpose_of_a_batched_tensor_is_named():
    def scores(q, k):
        return q @ k.T

    msg = _message(scores, torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5))
    assert "scores raised RuntimeError" in msg and "q @ k.T" in msg
    assert ".transpose(-2, -1)" in msg


def test_a_shape_error_without_a_known_cause_names_no_cause():
    def add(a, b):
        return a + b

    msg = _message(add, torch.randn(3), torch.randn(4))
    assert "a + b" in msg and ".T" not in msg and "keepdim" not in msg


def test_reduction_without_keepdim_is_named():
    def centre(x):
        return x - x.mean(-1)

    msg = _message(centre, torch.randn(3, 4))
    assert "keepdim=True" in msg


def test_an_optional_argument_used_when_it_is_none_is_named():
    def scale(x, weight=None):
        return x * weight

    assert "if weight is not None" in _message(scale, torch.randn(3))
    assert "is None" not in _message(scale, torch.randn(3), "w")   # a str weight: another error, no None cause


def test_a_weight_stored_out_in_used_untransposed_is_named():
    def project(x, w):
        return x @ w

    msg = _message(project, torch.randn(3, 8), torch.randn(16, 8))
    assert "stored (out, in)" in msg and "x @ w.T" in msg
    square = _message(project, torch.randn(3, 8), torch.randn(5, 6))  # no size matches: no cause guessed
    assert "stored (out, in)" not in square


def test_max_with_dim_used_as_a_tensor_is_named():
    def running_max(m, block):
        return torch.maximum(m, block.max(dim=-1))

    msg = _message(running_max, torch.zeros(2), torch.randn(2, 3))
    assert "returns a pair (values, indices)" in msg and ".values" in msg


def test_a_per_row_vector_without_a_trailing_dimension_is_named():
    def shift(s, lse):
        return s - lse[..., 0:4]

    def shift_with_none(s, lse):
        return s - lse[..., None, 0:4]

    assert "v[..., None]" in _message(shift, torch.randn(2, 4, 3), torch.randn(2, 4))
    assert "v[..., None]" not in _message(shift_with_none, torch.randn(2, 4, 3), torch.randn(2, 4))


def test_tensor_truthiness_is_named():
    def masked(x, mask=None):
        if mask:
            return x.masked_fill(mask, 0)
        return x

    assert "is not None" in _message(masked, torch.randn(3), torch.tensor([True, False, True]))


def test_float32_and_float64_mixed_is_named():
    def project(x):
        return x @ torch.ones(3, 3, dtype=torch.float32)

    assert "float32 and float64" in _message(project, torch.randn(2, 3, dtype=torch.float64))


def test_assertions_and_not_implemented_pass_through():
    def todo(x):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        call(todo, 1)


def test_which_mistake_names_the_matching_mistake_only():
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    mistakes = (Mistake("take the softmax over the first dimension", lambda x: x.softmax(0)),
                Mistake("forget the softmax", lambda x: x))
    assert "first dimension" in which_mistake(x.softmax(0), mistakes, {"x": x}, x.softmax(-1))
    assert "forget the softmax" in which_mistake(x.clone(), mistakes, {"x": x}, x.softmax(-1))
    assert which_mistake(x.exp(), mistakes, {"x": x}, x.softmax(-1)) == ""


def test_a_mistake_that_is_right_on_these_inputs_is_not_blamed():
    x = torch.randn(1, 5)  # one row: a softmax over dim 0 gives all ones, not the right answer, but...
    same = Mistake("use dim=1 instead of dim=-1", lambda x: x.softmax(1))  # ...this one IS right on 2-D input
    assert which_mistake(x.softmax(-1), (same,), {"x": x}, x.softmax(-1)) == ""


def test_expect_adds_the_diagnosis():
    x = torch.randn(3, 4)
    with pytest.raises(AssertionError, match="first dimension"):
        first = Mistake("take the softmax over the first dimension", lambda x: x.softmax(0))
        expect(x.softmax(0), x.softmax(-1), "weights", mistakes=(first,), kwargs={"x": x})


def test_every_exercise_lists_known_mistakes_that_really_are_wrong():
    """Each Mistake attached to an exercise disagrees with the reference on some case of seed 0."""
    for ex in exercises.all_exercises():
        from gptref.grading.mistakes import for_exercise

        for mistake in ex.mistakes or for_exercise(ex.day, ex.name):
            wrong = False
            for case in ex.make_cases(0):
                expected = ex.reference(**ex.arguments(case))
                try:
                    theirs = mistake.answer(**ex.arguments(case))
                except Exception:  # noqa: BLE001 (an error is a wrong answer too)
                    wrong = True
                    break
                if ex.check_answer(theirs, expected, case):
                    wrong = True
                    break
            assert wrong, f"{ex.key}: the mistake {mistake.says!r} agrees with the reference on every case"


def test_transpose_by_positive_dims_on_a_4d_tensor_is_named():
    def scores(q, k):
        return q @ k.transpose(1, 2)

    msg = _message(scores, torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5))
    assert "of a 4-D (B, H, T, d) tensor it swaps H and T" in msg and "`.transpose(-2, -1)`" in msg


def test_batch_size_taken_for_the_length_is_pointed_at():
    def mask_for(y):
        return torch.ones(y.shape[0], y.shape[0]) * y.sum(-1)[:, None, :]

    msg = _message(mask_for, torch.randn(2, 4, 3))
    assert "this line uses .shape[0], the BATCH size" in msg


def test_an_id_above_255_used_as_a_byte_is_named():
    def decode(ids):
        return bytes(ids).decode()

    assert decode([104, 105]) == "hi"
    assert "merged token" in _message(decode, [104, 300])


def test_state_dict_errors_say_which_kind():
    def load(layer, state):
        layer.load_state_dict(state)

    wide = torch.nn.Linear(4, 4)
    narrow = torch.nn.Linear(4, 2).state_dict()
    msg = _message(load, wide, narrow)
    assert "size mismatch for weight" in msg and "input and output sizes" in msg and "bias=bias" not in msg
    msg = _message(load, wide, {"weight": torch.randn(4, 4)})
    assert "Missing key" in msg and "bias=bias" in msg and "input and output sizes" not in msg


def test_heads_of_different_sizes_are_named():
    import gptref.attention as attention

    def attend(q, k):
        return attention.scaled_dot_product_attention(q, k, k)

    msg = _message(attend, torch.randn(1, 4, 3, 4), torch.randn(1, 8, 3, 2))
    assert "heads of different sizes" in msg


def test_an_earlier_reduction_without_keepdim_is_pointed_at():
    def centre(x):
        mean = x.mean(dim=-1)
        return (x - mean) ** 2

    def centre_right(x):
        mean = x.mean(dim=-1, keepdim=True)
        return x - mean.squeeze(-1)

    assert "reduces without `keepdim=True`" in _message(centre, torch.randn(3, 4))
    assert "keepdim" not in _message(centre_right, torch.randn(3, 4))


def test_a_dimension_dropped_on_an_earlier_line_is_pointed_at():
    def top_k(logits, k):
        kth = torch.topk(logits, k, dim=-1).values[..., -1]
        return logits.masked_fill(logits < kth, float("-inf"))

    def shifted(logits, k):
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        return logits + kth.T.expand(3, 4)  # no dimension lost: the earlier line keeps it

    msg = _message(top_k, torch.randn(2, 5), 2)
    assert "which removes a dimension" in msg and "values[..., -1]" in msg
    assert "removes a dimension" not in _message(shifted, torch.randn(2, 5), 2)


@pytest.mark.parametrize("body, cause", [
    ("torch.topk(x, 9)", "more values than the last dimension holds"),
    ("x.gather(-1, torch.full((2, 1), -100))", "-100 is the ignore_index"),
    ("x[:, :1].expand(2, 5).add_(1.0)", "expanded/broadcast view"),
    ("torch.randn(3, 5, 7)[:, :-1].view(-1, 7)", "not contiguous in memory"),
    ("torch.nn.functional.cross_entropy(x.reshape(1, 2, 5), torch.zeros(1, 3, dtype=torch.long))",
     "reads the classes from dim 1"),
    ("x.sum()[0, 1]", "more indices than it has dimensions"),   # a reduction without dim=, then indexed per row
])
def test_torch_errors_with_a_known_cause_are_explained(body, cause):
    namespace = {"torch": torch}
    exec(f"def student(x):\n    return {body}\n", namespace)  # noqa: S102 (a student function with that line)
    assert cause in _message(namespace["student"], torch.randn(2, 5))


def test_a_mask_sized_by_the_block_is_named():
    """A causal mask whose rows come from block_q, applied to a last block that is shorter."""
    def masked(scores, block_q):
        rows = torch.arange(0, block_q)[:, None]
        cols = torch.arange(scores.shape[-1])[None, :]
        return scores.masked_fill(cols > rows, float("-inf"))

    msg = _message(masked, torch.randn(2, 3, 8), 4)
    assert "masked_fill" in msg and "size the mask's rows and columns from the tile itself" in msg
    assert "mask" not in _message(lambda a, b: a + b, torch.randn(3), torch.randn(4)).split("What to change")[-1]


def test_positions_counted_with_the_block_size_are_pointed_at():
    """The mask's rows from torch.arange(i0, i0 + block_q): the error shows up later, when the grown tile is stored."""
    def tiles(scores, block_q):
        out = torch.zeros_like(scores)
        for i0 in range(0, scores.shape[-2], block_q):
            s = scores[..., i0:i0 + block_q, :]
            rows = torch.arange(i0, i0 + block_q)[:, None]
            s = s.masked_fill(torch.arange(s.shape[-1])[None, :] > rows, 0.0)
            out[..., i0:i0 + s.shape[-2], :] = s
        return out

    msg = _message(tiles, torch.randn(2, 5, 3), 4)
    assert "line" in msg and "torch.arange(i0, i0 + block_q)" in msg and "from the tile itself" in msg


def test_a_warmup_divided_by_warmup_steps_minus_one_is_named():
    """step / (warmup_steps - 1) raises ZeroDivisionError for a one-step warmup: the message says so."""
    def cosine_lr(step, warmup_steps):
        return (step + 1) / (warmup_steps - 1)

    with pytest.raises(AssertionError, match="one-step warmup") as raised:
        call(cosine_lr, 0, 1)
    assert "ZeroDivisionError" in str(raised.value)


def test_a_division_by_zero_elsewhere_is_not_blamed_on_the_warmup():
    def mean_of(values, count):
        return sum(values) / count

    with pytest.raises(AssertionError, match="denominator on this line is 0") as raised:
        call(mean_of, [1.0], 0)
    assert "warmup" not in str(raised.value)


def test_a_key_slice_cut_with_the_query_block_size_is_named():
    """p @ v[..., j0:j0 + block_q, :]: a key slice as long as a query block fails when the two sizes differ."""
    def tiles(q, k, v, block_q, block_k):
        out = []
        for i0 in range(0, q.shape[-2], block_q):
            for j0 in range(0, k.shape[-2], block_k):
                p = q[..., i0:i0 + block_q, :] @ k[..., j0:j0 + block_k, :].transpose(-2, -1)
                out.append(p @ v[..., j0:j0 + block_q, :])
        return out

    q = torch.randn(2, 16, 4, dtype=torch.float64)
    msg = _message(tiles, q, q, q, 8, 4)
    assert "j0:j0 + block_q starts at a key position but is as long as a query block" in msg


    def right_slices(p_tile, v, j0, block_k):
        return p_tile @ v[..., j0:j0 + block_k, :]

    msg = _message(right_slices, torch.randn(4, 8), torch.randn(6, 3), 0, 8)  # v too short: no slice to blame
    assert "starts at a" not in msg and "kept per QUERY" in msg


def test_a_per_query_value_sliced_with_the_key_block_is_pointed_at_without_a_cause():
    """lse[..., j0:j0 + block_k, None] against a (block_q, block_k) tile: rows are queries, columns keys."""
    def probabilities(s_tiles, lse, block_q, block_k):
        return [torch.exp(s - lse[..., j0:j0 + block_k, None]) for (i0, j0), s in s_tiles.items()]

    tiles = {(0, 0): torch.randn(4, 8)}
    msg = _message(probabilities, tiles, torch.randn(16), 4, 8)
    assert "a quantity kept per QUERY" in msg and "starts at a" not in msg
    plain = _message(lambda a, b: a + b, torch.randn(3), torch.randn(4))
    assert "kept per QUERY" not in plain


def test_a_reduction_that_is_the_last_step_of_its_line_is_not_blamed_for_keepdim():
    """(a * b).sum(-1) with a and b of other sizes: the sizes clash inside, not because of the reduction."""
    def pair_terms(a, b):
        return (a * b).sum(dim=-1)

    msg = _message(pair_terms, torch.randn(3, 4), torch.randn(2))
    assert "keepdim" not in msg and "print their .shape" in msg


def test_a_float_mask_in_a_bool_operation_is_explained_not_passed_through():
    """torch's NotImplementedError for a dtype is an error of the student's code, unlike `raise NotImplementedError`."""
    def causal(key_is_token):
        T = key_is_token.shape[-1]
        return key_is_token[:, None, :] & torch.ones(T, T).tril()

    msg = _message(causal, torch.ones(2, 3, dtype=torch.bool))
    assert "a mask must be a bool tensor" in msg and "torch.ones(T, T).tril()" in msg


def test_a_row_where_an_outer_product_needs_a_column_is_explained():
    def angles(positions, theta):
        return positions[None, :] * theta

    msg = _message(angles, torch.arange(6.0), torch.ones(4))
    assert "a[:, None] * b[None, :]" in msg


    def add(a, b):
        return a + b

    assert "outer product" not in _message(add, torch.randn(3), torch.randn(4))


def test_a_vocab_size_below_the_reserved_pieces_is_named_with_its_numbers():
    import io

    import sentencepiece as spm

    def train(text, vocab_size):
        out = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(text.split("\n")), model_writer=out,
                                       vocab_size=vocab_size - 259, byte_fallback=True, minloglevel=2)
        return out.getvalue()

    msg = _message(train, "the quick brown fox jumps over the lazy dog\n" * 50, 300)
    assert "vocab_size = 41" in msg and "the WHOLE vocabulary" in msg
    other = _message(lambda: spm.SentencePieceProcessor().LoadFromSerializedProto(b"not a model"))
    assert "WHOLE vocabulary" not in other


def _toy_exercise():
    """f(x) = x + 1 with one known mistake (2x); on the first case ([1, 0]) the answer x*x + x equals the
    mistake's, on the second it does not."""
    from gptref.grading.spec import Exercise

    doubles = Mistake("double x instead of adding 1", lambda x: 2 * x)
    cases = [{"x": torch.tensor([1.0, 0.0])}, {"x": torch.tensor([3.0, 4.0])}]
    return Exercise(day="99_toy", name="f", grade_ids=("t",), make_cases=lambda seed: copy.deepcopy(cases),
                    reference=lambda x: x + 1, mistakes=(doubles,))


def test_hidden_check_and_verdict_name_a_mistake_only_when_it_gives_every_answer(monkeypatch):
    """One input can make two different slips agree: the hidden check and the trusted verdict name a known
    mistake only when it gives the student's answers on the other cases too."""
    from autograder.inside import plaindata
    from autograder.verdict import judge
    check_module = importlib.import_module("gptref.grading.check")

    ex = _toy_exercise()
    monkeypatch.setattr(check_module.exercises, "get", lambda day, name: ex)
    squares = lambda x: x * x + x  # noqa: E731 (equals 2x at x = 1 and x = 0 only)
    doubles = lambda x: 2 * x  # noqa: E731
    for student, named in ((squares, False), (doubles, True)):
        with pytest.raises(AssertionError) as caught:
            check_module.check("99_toy", "f", student)
        assert ("double x" in str(caught.value)) == named, str(caught.value)
        cases = ex.make_cases(0)
        outputs = [{"ok": True, "value": plaindata.encode(student(**case))} for case in cases]
        verdict = judge(ex, cases, {"status": "ran", "outputs": outputs})
        assert verdict["status"] == "fail" and ("double x" in verdict["message"]) == named, verdict


def test_an_earlier_reduction_over_a_leading_dim_is_not_blamed_on_keepdim_alone():
    """x.mean(dim=0) meeting an (N,) vector: keepdim would not fix it (the dimension is the wrong one), so the message
    asks to check the dimension, and keeps the keepdim advice for a reduction over the last dimension."""
    def per_row(x):
        total = x.sum(dim=-1)
        average = x.mean(dim=0)
        return 0.9 * total + 0.1 * average

    msg = _message(per_row, torch.randn(6, 5))
    assert "add keepdim=True there" not in msg and "check that dim 0 is the one you mean" in msg


def test_a_reduction_over_dim_0_before_a_shape_error_is_pointed_at():
    """argmax(dim=0) of (B, V) logits gives V entries, not B: the cat that follows fails, and the message points at
    the line that worked over dim 0; a shape error with no such line says nothing of dim 0."""
    def next_tokens(seq, logits):
        token = logits.argmax(dim=0)
        return torch.cat([seq, token[:, None]], dim=1)

    def too_short(seq, logits):
        token = logits.argmax(dim=-1)[:-1]
        return torch.cat([seq, token[:, None]], dim=1)

    seq, logits = torch.zeros(2, 3, dtype=torch.long), torch.randn(2, 5)
    assert "(token = logits.argmax(dim=0)): it works over dim 0" in _message(next_tokens, seq, logits)
    assert "dim 0" not in _message(too_short, seq, logits)


def test_a_shape_error_with_no_known_cause_shows_the_inputs_it_was_given():
    def pair_scores(q, k, block=8):
        """Reads D from the wrong dimension: its angles have ceil(3 / 2) entries where the pairs have 8 / 2."""
        D = q.shape[0]
        angles = torch.arange(0, D, 2, dtype=q.dtype)
        pairs = q[..., 0::2] * k[..., 0::2]
        return pairs * angles

    generator = torch.Generator().manual_seed(3)
    q, k = torch.randn(3, 8, generator=generator), torch.randn(3, 8, generator=generator)
    with pytest.raises(AssertionError) as raised:
        call(pair_scores, q, k)
    message = str(raised.value)
    assert "shapes do not fit together" in message, message
    assert "It was given: q (3, 8) float32, k (3, 8) float32, block 8" in message, message  # defaults too
    # no arithmetic guess at where a size came from (a size can equal an input's by coincidence)
    assert "q.shape" not in message, message


def test_an_assignment_into_a_slice_that_does_not_fit_is_told_as_one():
    def tiled_sums(q, block=8):
        """Rows summed a block at a time; the output slice is written as if every block were full."""
        out = torch.zeros(q.shape[0])
        for start in range(0, q.shape[0], block):
            out[start:start + block] = q[start:start + block].sum(-1).repeat(2)[:block]
        return out

    generator = torch.Generator().manual_seed(4)
    with pytest.raises(AssertionError) as raised:  # 20 rows, blocks of 8: the last slice holds 4 rows
        call(tiled_sums, torch.randn(20, 3, generator=generator))
    message = str(raised.value)
    assert "the value written into the slice on the left of `=` has another size than that slice" in message, message
    assert "expand only stretches" not in message, message


def test_view_after_transpose_blames_the_transpose_not_a_slice():
    """`.view` on what `.transpose` gave (merge_heads): the message names the transpose of that line (fresh set 8)."""
    import linecache

    source = "def merge(x):\n    return x.transpose(1, 2).view(2, 4, 15)\n"
    linecache.cache["<merge-heads-cell>"] = (len(source), None, source.splitlines(True), "<merge-heads-cell>")
    namespace = {}
    exec(compile(source, "<merge-heads-cell>", "exec"), namespace)  # noqa: S102 (a student cell with its source)
    message = _message(namespace["merge"], torch.randn(2, 3, 4, 5))
    assert "that .transpose/.permute gives on this line" in message and "x[:, :-1]" not in message, message
