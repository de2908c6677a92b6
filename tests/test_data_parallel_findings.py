"""gptref.grading.data_parallel: what one wrong data-parallel step shows, on seeded random problems. The wrong
steps are simulated here with torch (two ranks' gradients on the two halves of the batch), independently of the
module's own step."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptref.grading.data_parallel import one_step_finding


def _problem(seed):
    g = torch.Generator().manual_seed(seed)
    n_in, hidden, n_out = 5, 7, 3
    shapes = {"0.weight": (hidden, n_in), "0.bias": (hidden,), "2.weight": (n_out, hidden), "2.bias": (n_out,)}
    state = {k: torch.randn(*s, generator=g, dtype=torch.float64) / s[-1] ** 0.5 for k, s in shapes.items()}
    return state, torch.randn(8, n_in, generator=g, dtype=torch.float64), torch.randint(0, n_out, (8,), generator=g)


def _grads(state, x, y):
    """{name: gradient} of the mean cross-entropy of Linear -> Tanh -> Linear on (x, y), by autograd."""
    params = {k: v.clone().requires_grad_() for k, v in state.items()}
    h = torch.tanh(F.linear(x, params["0.weight"], params["0.bias"]))
    F.cross_entropy(F.linear(h, params["2.weight"], params["2.bias"]), y).backward()
    return {k: p.grad for k, p in params.items()}


def _step(state, grads, lr=0.5):
    return {k: state[k] - lr * grads[k] for k in state}


def _rank_grads(state, x, y):
    return _grads(state, x[:4], y[:4]), _grads(state, x[4:], y[4:])


def test_the_right_step_has_no_finding_and_a_summed_gradient_is_twice_the_mean():
    for seed in range(5):
        state, x, y = _problem(seed)
        g0, g1 = _rank_grads(state, x, y)
        mean = {k: (g0[k] + g1[k]) / 2 for k in state}
        assert one_step_finding(_step(state, mean), state, x, y, 0.5) is None
        summed = one_step_finding(_step(state, {k: g0[k] + g1[k] for k in state}), state, x, y, 0.5)
        assert "is 2 times the right step" in summed and "2 times the mean of the ranks' gradients" in summed


def test_a_rank_that_steps_on_its_own_half_is_told_so():
    for seed in range(5):
        state, x, y = _problem(seed)
        g0, _ = _rank_grads(state, x, y)
        assert "OWN half of the batch" in one_step_finding(_step(state, g0), state, x, y, 0.5)
        halved = one_step_finding(_step(state, {k: g0[k] / 2 for k in state}), state, x, y, 0.5)
        assert "0.5 times the step of its OWN half" in halved


def test_parameters_added_over_the_ranks_and_a_wrong_parameter_are_told_apart():
    for seed in range(5):
        state, x, y = _problem(seed)
        g0, g1 = _rank_grads(state, x, y)
        doubled = {k: 2 * state[k] - 0.5 * g0[k] / 2 for k in state}  # all_reduce(p.data), then a local step
        assert "2 (world_size) times their starting values" in one_step_finding(doubled, state, x, y, 0.5)
        mean = {k: (g0[k] + g1[k]) / 2 for k in state}
        one_wrong = _step(state, dict(mean, **{"2.bias": g0["2.bias"]}))
        finding = one_step_finding(one_wrong, state, x, y, 0.5)
        assert "are right but ['2.bias'] are not" in finding and "world_size" not in finding


def test_a_gradient_cut_from_the_flat_buffer_at_the_wrong_offset_is_told_which_entries_it_got():
    """Flat DDP whose offset is set to the last gradient's size instead of advanced: simulated with torch (the
    mean gradient joined, then cut at offsets 0, n0, n1, n2); 0.weight and 0.bias are cut at their own offsets."""
    for seed in range(5):
        state, x, y = _problem(seed)
        g0, g1 = _rank_grads(state, x, y)
        flat = torch.cat([((g0[k] + g1[k]) / 2).reshape(-1) for k in state])  # (all gradients' elements,)
        cut, offset = {}, 0
        for k in state:
            cut[k] = flat[offset:offset + state[k].numel()].view_as(state[k])
            offset = state[k].numel()
        finding = one_step_finding(_step(state, cut), state, x, y, 0.5)
        assert finding.startswith("2.weight stepped with entries [7:28]"), finding
        assert "its own gradient is entries [42:63]" in finding and "wrong offset" in finding


def test_an_unchanged_model_and_an_unrelated_step_name_no_cause():
    for seed in range(5):
        state, x, y = _problem(seed)
        assert "did not change" in one_step_finding(dict(state), state, x, y, 0.5)
        noise = {k: v + 0.01 * torch.randn(v.shape, dtype=v.dtype, generator=torch.Generator().manual_seed(seed))
                 for k, v in state.items()}
        finding = one_step_finding(noise, state, x, y, 0.5)
        assert finding.startswith("already after one step") and "all_reduce" not in finding


def test_clipping_is_part_of_the_right_step_when_max_norm_is_given():
    state, x, y = _problem(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()
    model.load_state_dict(state)
    F.cross_entropy(model(x), y).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)
    clipped = {k: state[k] - 0.5 * p.grad for k, p in zip(state, model.parameters())}
    assert one_step_finding(clipped, state, x, y, 0.5, max_norm=0.05) is None
    assert one_step_finding(clipped, state, x, y, 0.5) is not None
    twice = {k: 2 * clipped[k] - state[k] for k in state}
    finding = one_step_finding(twice, state, x, y, 0.5, max_norm=0.05)
    assert "2 times the right step" in finding and "clipped to max_norm = 0.05" in finding
    assert "all_reduce" not in finding


def test_unmoved_finding_names_the_parameters_that_kept_their_start():
    """ZeRO-1 with the broadcast before the step: on rank 0 the parameters rank 1 owns keep their starting values
    (simulated with torch's AdamW stepping only rank 0's shard); a step that moves all, or none, has no finding."""
    from gptref.grading.data_parallel import unmoved_finding

    for seed in range(3):
        state, x, y = _problem(seed)
        params = {k: v.clone().requires_grad_() for k, v in state.items()}
        owned = [params["0.weight"], params["2.bias"]]          # rank 0's shard
        h = torch.tanh(F.linear(x, params["0.weight"], params["0.bias"]))
        F.cross_entropy(F.linear(h, params["2.weight"], params["2.bias"]), y).backward()
        torch.optim.AdamW(owned, lr=0.05).step()
        after = {k: p.detach() for k, p in params.items()}
        message = unmoved_finding(after, state)
        assert "moved but ['0.bias', '2.weight'] still hold their starting values" in message
        assert unmoved_finding(state, state) is None
        assert unmoved_finding({k: v + 1 for k, v in state.items()}, state) is None
