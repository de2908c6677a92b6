"""gptref.grading.ladders' shared helpers: the first rung (tensor_form) and calls that must leave inputs alone."""

from __future__ import annotations

import pytest
import torch

from gptref.grading.ladders import call_unchanged, tensor_form


def test_tensor_form_names_what_is_wrong_and_passes_a_right_tensor():
    assert tensor_form(torch.zeros(2, 3), (2, 3), torch.float32, "x") is None
    assert "return just the tensor" in tensor_form((torch.zeros(2, 3),), (2, 3), torch.float32, "x")
    assert "which dimensions you transpose or permute" in tensor_form(torch.zeros(3, 2), (2, 3), torch.float32, "x")
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


def test_climb_with_labels_says_on_which_cases_the_answers_are_right_and_wrong():
    """A mean that forgets to skip the masked entries is right exactly on the cases without masked entries."""
    from gptref.grading.ladders import climb

    def masked_mean(x, keep):
        return x[keep].mean()

    def forgets_the_mask(x, keep):
        return x.mean()

    generator = torch.Generator().manual_seed(0)
    cases = [dict(x=torch.randn(5, generator=generator, dtype=torch.float64), keep=torch.ones(5, dtype=torch.bool)),
             dict(x=torch.randn(5, generator=generator, dtype=torch.float64),
                  keep=torch.tensor([True, False, True, True, False]))]
    labels = ["nothing masked", "two entries masked"]
    with pytest.raises(AssertionError) as info:
        climb(forgets_the_mask, cases, (), masked_mean, labels=labels)
    assert "right on: nothing masked\n  and wrong on: two entries masked" in str(info.value)
    with pytest.raises(AssertionError) as info:
        climb(lambda x, keep: -masked_mean(x, keep), cases, (), masked_mean, labels=labels)
    assert "wrong on every case that ran: nothing masked; two entries masked" in str(info.value)
    with pytest.raises(AssertionError) as info:
        climb(forgets_the_mask, cases, (), masked_mean)
    assert "right on" not in str(info.value)  # without labels the message is as before
    assert len(climb(masked_mean, cases, (), masked_mean, labels=labels)) == 2


def test_backward_balance_rung_holds_for_autograd_and_fails_a_wrong_dq_or_dk():
    """sum(dQ * Q) = sum(dK * K) for autograd's gradients of attention; a dQ summed over too few key blocks, or a dK
    without its 1/sqrt(D), breaks it (the second with the sqrt(D) factor named)."""
    from gptref.grading.ladders.d08_flash_attention import backward_q_k_balance

    generator = torch.Generator().manual_seed(3)
    for causal in (False, True):
        q, k, v, dout = (torch.randn(2, 12, 8, generator=generator, dtype=torch.float64) for _ in range(4))
        leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
        scores = leaves[0] @ leaves[1].transpose(-2, -1) / 8 ** 0.5
        if causal:
            scores = scores.masked_fill(torch.ones(12, 12, dtype=torch.bool).triu(1), float("-inf"))
        (scores.softmax(-1) @ leaves[2]).backward(dout)
        dq, dk, dv = (t.grad for t in leaves)
        case = {"q": q, "k": k, "v": v, "dout": dout, "causal": causal}
        assert backward_q_k_balance((dq, dk, dv), case) is None
        half_dq = dq.clone()
        half_dq[..., :6, :] = 0
        assert "both with +=" in backward_q_k_balance((half_dq, dk, dv), case)
        assert "sqrt(D) = 2.828 times your dK side" in backward_q_k_balance((dq, dk / 8 ** 0.5, dv), case)


def test_mask_id_rung_names_a_constant_replacement_other_than_mask_id():
    from gptref.grading.ladders.d06_bert_vs_gpt import masks_use_mask_id

    generator = torch.Generator().manual_seed(4)
    ids = torch.randint(3, 400, (20, 50), generator=generator)
    selected = torch.rand(ids.shape, generator=generator) < 0.3
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    case = {"ids": ids, "mask_id": 103, "vocab_size": 500}
    right = torch.where(selected, torch.full_like(ids, 103), ids)
    assert masks_use_mask_id((right, labels), case) is None
    wrong = torch.where(selected, torch.full_like(ids, 499), ids)
    assert "became id 499, but the [MASK] id is the mask_id argument, 103" in masks_use_mask_id((wrong, labels), case)
    random = torch.where(selected, torch.randint(0, 500, ids.shape, generator=generator), ids)
    assert masks_use_mask_id((random, labels), case) is None  # random replacements have no single id


def test_rope_position_zero_rung_says_when_the_channels_were_only_reordered():
    from gptref.grading.ladders.d07_rope import rope_position_zero_fixed

    x = torch.randn(3, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    case = {"x": x}
    assert rope_position_zero_fixed(x.clone(), case) is None
    swapped = x.clone()
    swapped[..., 0::2], swapped[..., 1::2] = x[..., 1::2], x[..., 0::2]
    assert "two channels of every pair swapped" in rope_position_zero_fixed(swapped, case)
    halves = torch.cat([x[..., 0::2], x[..., 1::2]], dim=-1)
    message = rope_position_zero_fixed(halves, case)
    assert "another channel order" in message and "swapped" not in message
    assert "order" not in rope_position_zero_fixed(x * 2, case)  # other numbers: no reordering is claimed


def test_targets_form_says_when_the_targets_were_flattened():
    from gptref.grading.ladders.d05_label_smoothing import targets_form

    case = {"target": torch.tensor([[1, 0], [4, 4]]), "n_classes": 5}
    assert "flattened" in targets_form(torch.zeros(4, 5), case)
    assert "flattened" not in targets_form(torch.zeros(2, 5), case)
    assert targets_form(torch.zeros(2, 2, 5), case) is None


def test_drift_with_position_names_angles_short_of_digits_and_nothing_else():
    """A table whose frequencies were rounded to float32 is right at first and drifts with the position; a table
    with one wrong pair everywhere, or a short table, gets no such remark."""
    from gptref.grading.ladders.d07_rope import drift_with_position
    from gptref.positions import sinusoidal_positions

    n, d = 10000, 6
    positions = torch.arange(n, dtype=torch.float64)[:, None]
    for omega, drifts in ((10000.0 ** (-torch.arange(0, d, 2) / d), True),  # float32 frequencies
                          (10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d) * 1.001, False)):
        table = torch.zeros(n, d, dtype=torch.float64)
        table[:, 0::2], table[:, 1::2] = (positions * omega).sin(), (positions * omega).cos()
        remark = drift_with_position(table.float(), sinusoidal_positions(n, d))
        assert ("too few digits" in remark) == drifts
    assert drift_with_position(sinusoidal_positions(20, 6) + 1e-5, sinusoidal_positions(20, 6)) == ""


def test_unlabelled_changed_inputs_are_not_blamed_on_the_replacement_alone():
    """Labels kept only on the [MASK]ed positions: the randomly replaced ones lost their label, and the message says
    says what the changed positions show (none holds mask_id) and both rules, not a replacement outside the
    selection alone."""
    from gptref.grading.ladders.d06_bert_vs_gpt import only_selected_inputs_change

    generator = torch.Generator().manual_seed(5)
    ids = torch.randint(3, 400, (20, 50), generator=generator)
    selected = torch.rand(ids.shape, generator=generator) < 0.3
    choice = torch.rand(ids.shape, generator=generator)
    inputs = torch.where(selected & (choice < 0.8), torch.full_like(ids, 103), ids)
    inputs = torch.where(selected & (choice >= 0.8), (ids + 1) % 500, inputs)       # random ids, all changed
    case = {"ids": ids, "mask_id": 103, "vocab_size": 500}
    assert only_selected_inputs_change((inputs, torch.where(selected, ids, -100)), case) is None
    message = only_selected_inputs_change((inputs, torch.where(selected & (choice < 0.8), ids, -100)), case)
    assert "changed in inputs, none of them to mask_id" in message and "the labels of the positions" in message
    assert "positions that were not selected keep their id" not in message  # the replacement is not blamed alone


def test_norm_head_zero_rung_says_x_enters_as_it_is():
    """Dividing x by its own length too gives NaN logits for a zero hidden state: the rung says x enters as it is;
    the reference (torch's F.normalize of the rows) passes."""
    from gptref.grading.ladders.d10_baichuan2 import LADDERS

    generator = torch.Generator().manual_seed(6)
    x, weight = torch.randn(3, 4, 8, generator=generator, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    x[1, 2] = 0.0
    case = {"x": x, "weight": weight}
    right = x @ torch.nn.functional.normalize(weight, dim=1).T
    assert all(rung(right, case) is None for rung in LADDERS["norm_head_logits"])
    cosine = (x / x.norm(dim=-1, keepdim=True)) @ torch.nn.functional.normalize(weight, dim=1).T
    message = LADDERS["norm_head_logits"][0](cosine, case)
    assert "x[1, 2] is the zero vector" in message and "x enters as it is" in message


def test_sft_rung_says_by_what_the_sum_was_divided():
    """A loss divided by the batch size instead of the number of response tokens: the rung gives the divisor."""
    from gptref.grading.ladders.d09_nanogpt_finetune import sft_between_token_losses

    generator = torch.Generator().manual_seed(7)
    logits, targets = torch.randn(2, 6, 9, generator=generator, dtype=torch.float64), torch.randint(0, 9, (2, 6))
    mask = torch.tensor([[False, True, True, True, True, False], [True] * 6])
    case = {"logits": logits, "targets": targets, "loss_mask": mask}
    per_token = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    total = per_token[mask.flatten()].sum()
    assert sft_between_token_losses(total / mask.sum(), case) is None
    message = sft_between_token_losses(total / 2, case)
    assert "divided by 2 instead of by their number, 10" in message
    assert "divided by" not in (sft_between_token_losses(total / 2 + 0.37, case) or "")


def test_rope_digits_suffix_names_float32_angles_only():
    """RoPE with theta in float32 is off by a little at the large positions only: the suffix says the angles lack
    digits; a rotation by the wrong angle (errors everywhere, large) gets no suffix."""
    from gptref.grading.ladders.d07_rope import rope_short_of_digits
    from gptref.positions import rope

    generator = torch.Generator().manual_seed(8)
    x, positions = torch.randn(4, 6, generator=generator, dtype=torch.float64), torch.tensor([3999, 0, 1234, 7])
    want = rope(x, positions)
    theta = 10000.0 ** (-torch.arange(0, 6, 2) / 6)                    # float32: too few digits
    angles = positions.double()[:, None] * theta                        # (T, D/2)
    even, odd = x[..., 0::2], x[..., 1::2]
    short = torch.stack([even * angles.cos() - odd * angles.sin(), even * angles.sin() + odd * angles.cos()],
                        dim=-1).reshape(x.shape)                         # (T, D/2, 2) -> (T, D)
    assert "only the vectors at the largest positions [1234, 3999] are off" in rope_short_of_digits(short, want,
                                                                                                  positions)
    assert rope_short_of_digits(rope(x, -positions), want, positions) == ""
    assert rope_short_of_digits(want, want, positions) == ""


def test_climb_says_when_the_answers_are_right_exactly_for_one_value_of_an_argument():
    """A function that writes in scale=2.0 is right on the cases with scale 2.0 only, and is told to look at scale;
    one right case alone, or none, says nothing about the arguments."""
    from gptref.grading.ladders import climb

    def scaled(x, scale):
        return x * scale

    generator = torch.Generator().manual_seed(0)
    cases = [dict(x=torch.randn(4, generator=generator, dtype=torch.float64), scale=s) for s in (2.0, 3.0, 2.0, 0.5)]
    with pytest.raises(AssertionError) as info:
        climb(lambda x, scale: x * 2.0, cases, (), scaled)
    assert "right exactly on the cases where scale = 2.0, and wrong where it is 0.5, 3.0" in str(info.value)
    with pytest.raises(AssertionError) as info:
        climb(lambda x, scale: x * 3.0, cases, (), scaled)   # right on one case only
    assert "right exactly" not in str(info.value)
    with pytest.raises(AssertionError) as info:
        climb(lambda x, scale: -x * scale, cases, (), scaled)   # wrong everywhere
    assert "right exactly" not in str(info.value)
    neutral = [dict(case, scale=1.0 if case["scale"] == 2.0 else case["scale"]) for case in cases]
    with pytest.raises(AssertionError) as info:
        climb(lambda x, scale: x * scale ** 2, neutral, (), scaled)   # right where scale = 1 switches the slip off
    assert "right exactly" not in str(info.value)
