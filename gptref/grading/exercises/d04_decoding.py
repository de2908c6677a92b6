"""Day 4, decoding: temperature, top-k, top-p filters, greedy decoding and beam search.

A "model" in these exercises is a logits table (plain data) turned into a callable by `wrap`:
`TableModel(table)` with table (L, V, V) gives, at position t after token x, the logits table[min(t, L-1), x].
It is a position-dependent bigram model: small, deterministic, and rich enough that greedy and beam
search disagree.
"""

from __future__ import annotations

import torch

import gptref.decoding as decoding
from gptref.grading.ladders.d04_decoding import LADDERS
from gptref.grading.models import TableModel
from gptref.grading.spec import Exercise

DAY = "04_decoding"


def _wrap_model(case: dict) -> dict:
    args = dict(case)
    args["model"] = TableModel(args.pop("table"))
    return args


# ---------------------------------------------------------------- filters on logits


def _logits_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(10,), (3, 7), (2, 4, 50), (1, 1000)]
    out = []
    for i, shape in enumerate(shapes):
        dtype = torch.float64 if i % 2 else torch.float32
        out.append(torch.randn(shape, generator=g, dtype=dtype) * (1 + 2 * i))
    return out


def _edge_rows(g: torch.Generator, V: int) -> torch.Tensor:
    """(3, V) float64: a row whose maximum is negative, an all-equal row, a row of spread-out values."""
    return torch.stack([torch.randn(V, generator=g, dtype=torch.float64) - 10.0,
                        torch.full((V,), 2.5, dtype=torch.float64),
                        torch.randn(V, generator=g, dtype=torch.float64) * 4])


def _temperature_cases(seed: int) -> list[dict]:
    temps = [0.5, 1.0, 2.0, 0.1]
    cases = [{"logits": x, "temperature": t} for x, t in zip(_logits_cases(seed), temps)]
    g = torch.Generator().manual_seed(seed + 30)
    cases.append({"logits": _edge_rows(g, 6), "temperature": 0.7})  # negative maximum, all-equal row, float64
    cases.append({"logits": torch.randn(5, generator=g), "temperature": 1.0})  # T = 1 leaves the logits alone
    return cases


def _tied_rows(g: torch.Generator) -> torch.Tensor:
    """(2, 6) float64 rows with three logits tied at the 2nd largest value (k=2 keeps 4 of them)."""
    rows = []
    for shift in (0.0, -20.0):  # the second row's maximum is negative
        top, tied = 3.0 + torch.rand(1, generator=g).item(), 1.0 + torch.rand(1, generator=g).item()
        row = torch.tensor([tied, top, tied, -1.0, tied, 0.0], dtype=torch.float64) + shift
        rows.append(row[torch.randperm(6, generator=g)])
    return torch.stack(rows)


def _top_k_cases(seed: int) -> list[dict]:
    ks = [3, 1, 10, 1000]
    cases = [{"logits": x, "k": k} for x, k in zip(_logits_cases(seed + 1), ks)]
    cases.append({"logits": _logits_cases(seed + 2)[1], "k": 50})  # k > V keeps everything
    g = torch.Generator().manual_seed(seed + 31)
    cases.append({"logits": _tied_rows(g), "k": 2})  # ties with the k-th largest are kept
    cases.append({"logits": _edge_rows(g, 7), "k": 1})  # k = 1; negative maximum; all-equal row keeps all 7
    cases.append({"logits": torch.randn(4, 5, generator=g), "k": 5})  # k = V exactly
    return cases


def _cycled_row(g: torch.Generator) -> torch.Tensor:
    """(1, 3) float64 logits whose sort order is a 3-cycle: undoing the sort with gather gives the wrong order."""
    probs = torch.tensor([0.1, 0.6, 0.3], dtype=torch.float64) + torch.rand(3, generator=g, dtype=torch.float64) * 0.02
    return torch.log(probs / probs.sum())[None]


def _top_p_cases(seed: int) -> list[dict]:
    ps = [0.9, 0.5, 0.95, 0.3]
    cases = [{"logits": x, "p": p} for x, p in zip(_logits_cases(seed + 3), ps)]
    cases.append({"logits": _logits_cases(seed + 4)[1], "p": 1.0})
    cases.append({"logits": _logits_cases(seed + 5)[2], "p": 0.05})  # tiny p: only the top token survives
    g = torch.Generator().manual_seed(seed + 32)
    cases.append({"logits": _cycled_row(g), "p": 0.8})  # keeps the 0.6 and the 0.3, in vocabulary order
    confident = torch.log(torch.tensor([[0.03, 0.9, 0.07]], dtype=torch.float64)) - 30.0  # negative maximum
    cases.append({"logits": confident, "p": 0.6})  # the top token alone reaches p
    dyadic = torch.log(torch.tensor([[0.125, 0.5, 0.125, 0.25]], dtype=[torch.float32, torch.float64][seed % 2]))
    cases.append({"logits": dyadic, "p": 0.75})  # the third token's mass above is exactly p: it is removed
    return cases


def _compare_filtered(got, expected, case) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"return a tensor, got {type(got).__name__}"
    if tuple(got.shape) != tuple(expected.shape):
        return f"output has shape {tuple(got.shape)}, expected the input's shape {tuple(expected.shape)}"
    if got.dtype != expected.dtype:
        return f"output has dtype {got.dtype}, expected the input's dtype {expected.dtype}"
    kept_got, kept_exp = torch.isfinite(got), torch.isfinite(expected)
    if not torch.equal(kept_got, kept_exp):
        n_got, n_exp = int(kept_got.sum()), int(kept_exp.sum())
        if n_got != n_exp:
            return f"you kept {n_got} logits in all, expected {n_exp} (the others must be -inf)"
        return "you kept the right number of logits but not the right ones"
    if (got[~kept_got] != float("-inf")).any():
        return "removed logits must be -inf (not NaN or +inf)"
    if not torch.allclose(got[kept_got], expected[kept_exp], rtol=1e-6, atol=1e-6):
        return "the logits you kept must be left unchanged"
    return None


def _compare_temperature(got, expected, case) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"return a tensor, got {type(got).__name__}"
    if tuple(got.shape) != tuple(expected.shape):
        return f"output has shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    if not torch.allclose(got.to(expected.dtype), expected, rtol=1e-5, atol=1e-6):
        if torch.allclose(got.to(expected.dtype), case["logits"] * case["temperature"], rtol=1e-5, atol=1e-6):
            return "temperature must divide the logits, not multiply"
        err = (got.to(expected.dtype) - expected).abs().max().item()
        return f"with temperature={case['temperature']}: max abs error {err:.3g} against logits / temperature"
    return None


# ---------------------------------------------------------------- greedy and beam search


def _table(g: torch.Generator, L: int, V: int, scale: float = 2.5) -> torch.Tensor:
    return torch.randn(L, V, V, generator=g) * scale


def _greedy_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed + 10)
    cases = []
    for B, T0, V, n in [(1, 1, 5, 6), (3, 2, 7, 5), (2, 4, 11, 8), (4, 1, 3, 4)]:
        cases.append({
            "table": _table(g, T0 + n, V),
            "idx": torch.randint(0, V, (B, T0), generator=g),
            "max_new_tokens": n,
        })
    # with an end-of-sequence token that some rows reach early: rows must be padded with it
    V, n = 6, 7
    table = _table(g, 1 + n, V)
    table[2, :, 0] += 8.0  # at position 2 token 0 (the eos) wins after every token...
    table[2, 3, 0] -= 30.0  # ...except after token 3,
    for prompt, first in ((1, 1), (4, 2), (2, 2), (5, 5)):
        table[0, prompt, first] += 30.0  # the first new token of each row is fixed: 1, 2, 2, 5
    table[1, :, 3] -= 30.0
    table[1, 2, 3] += 60.0  # then only after 2 comes 3: rows 1 and 2 go on past position 2, rows 0 and 3 end there
    table[:, 0, 0] -= 30.0  # after eos the model never picks eos again, so a finished row must be padded
    cases.append({"table": table, "idx": torch.tensor([[1], [4], [2], [5]]), "max_new_tokens": n, "eos_id": 0})
    table = _table(g, 1 + n, V)
    table[3, :, 5] += 10.0  # every row ends at position 3: generation stops early
    cases.append({"table": table, "idx": torch.tensor([[0], [1]]), "max_new_tokens": n, "eos_id": 5})
    cases.append({"table": _table(g, 5, 4), "idx": torch.tensor([[1, 2]]), "max_new_tokens": 0})
    return cases


def _compare_greedy(got, expected, case) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"return a tensor of ids, got {type(got).__name__}"
    B, T0 = case["idx"].shape
    if tuple(got.shape) != tuple(expected.shape):
        if got.dim() == 2 and got.shape[1] == expected.shape[1] - T0:
            return "return the prompt followed by the new tokens, not only the new tokens"
        if "eos_id" in case and got.dim() == 2 and got.shape[1] > expected.shape[1]:
            return "stop early once every row has produced eos_id"
        return f"output has shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    if not torch.equal(got.long(), expected):
        rows = [b for b in range(B) if not torch.equal(got[b].long(), expected[b])]
        return (f"row {rows[0]}: got {got[rows[0]].tolist()}, expected {expected[rows[0]].tolist()}"
                + (" (after eos_id a row is padded with eos_id)" if "eos_id" in case else ""))
    return None


def _constructed_beam_cases(g: torch.Generator) -> list[dict]:
    """Tables where a known slip changes the answer, on every seed (a little seeded noise on fixed shapes)."""
    noise = lambda *shape: torch.rand(*shape, generator=g) * 0.05  # noqa: E731
    # 1. the third-best first token leads to a sure second token: a K^2 beam keeps it and finds a better sequence
    wide = torch.zeros(2, 4, 4) + noise(2, 4, 4)
    wide[0, 0] = torch.tensor([-10.0, 1.0, 0.9, 0.8])  # after the prompt: 1, 2, then 3
    wide[1, 3] = torch.tensor([10.0, -10.0, -10.0, -10.0])  # after 3, token 0 is sure; after 1 or 2 all are equal
    cases = [{"table": wide, "idx": torch.tensor([[0]]), "max_new_tokens": 2, "beam_size": 2, "length_penalty": 1.0}]
    # 2. eos is the second-best first token and finishes at once; the live beams go on with sure tokens
    early = torch.full((3, 5, 5), -5.0) + noise(3, 5, 5)
    early[0, 3] = torch.tensor([2.0, 1.0, -5.0, -5.0, 1.5])  # after the prompt 3: 0, then eos (4), then 1
    early[1:, :, 2] = 8.0  # then token 2, surely
    for alpha in (1.0, 0.0):  # alpha 1: the eos hypothesis ranks below the long ones; alpha 0: above them
        cases.append({"table": early, "idx": torch.tensor([[3]]), "max_new_tokens": 3, "beam_size": 2,
                      "length_penalty": alpha, "eos_id": 4})
    return cases


def _beam_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed + 20)
    cases = []
    settings = [  # (T0, V, n, beam_size, length_penalty, eos_id)
        (1, 5, 4, 2, 1.0, None),
        (2, 6, 5, 3, 0.0, None),
        (1, 8, 6, 4, 1.0, 0),
        (3, 5, 5, 1, 1.0, None),
        (1, 7, 6, 3, 0.6, 2),
        (1, 6, 7, 4, 2.0, 1),
    ]
    cases += _constructed_beam_cases(g)
    for T0, V, n, k, lp, eos in settings:
        table = _table(g, T0 + n, V, scale=1.5)
        if eos is not None:
            table[:, :, eos] += 1.0  # make ending plausible
        case = {"table": table, "idx": torch.randint(0, V, (1, T0), generator=g), "max_new_tokens": n,
                "beam_size": k, "length_penalty": lp}
        if eos is not None:
            case["eos_id"] = eos
        cases.append(case)
    return cases


def _true_score(case: dict, tokens: list[int]) -> float | None:
    """The length-normalized log-probability of a generated continuation under the case's table model."""
    table, idx, eos = case["table"], case["idx"], case.get("eos_id")
    V = table.shape[-1]
    if not tokens or any(not 0 <= t < V for t in tokens) or (eos is not None and eos in tokens[:-1]):
        return None
    seq = torch.cat([idx.long(), torch.tensor([tokens])], dim=1)  # (1, T0 + n)
    logits = TableModel(table)(seq[:, :-1])[0, idx.shape[1] - 1 :].float()  # (n, V) the steps that chose tokens
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    total = float(log_probs[torch.arange(len(tokens)), torch.tensor(tokens)].sum())
    return total / len(tokens) ** case.get("length_penalty", 1.0)


def _compare_beams(got, expected, case) -> str | None:
    if not isinstance(got, (list, tuple)):
        return f"return a list of (tokens, score) pairs, got {type(got).__name__}"
    k = case["beam_size"]
    if len(got) > k:
        return f"you returned {len(got)} hypotheses; return at most beam_size={k}, best first"
    try:
        got = [([int(t) for t in tokens], float(score)) for tokens, score in got]
    except (TypeError, ValueError):
        return "each hypothesis must be a pair (list of token ids, float score)"
    scores = [s for _, s in got]
    if scores != sorted(scores, reverse=True):
        return "sort the hypotheses best first (highest score first)"
    for tokens, score in got:
        true = _true_score(case, tokens)
        if true is None:
            return f"hypothesis {tokens} is not a valid continuation (ids out of range, or tokens after eos_id)"
        if abs(true - score) > 1e-4:
            return (f"hypothesis {tokens}: score {score:.5f}, but sum of log-probs / len ** length_penalty = "
                    f"{true:.5f} (len counts the generated tokens, the eos included)")
    if got and expected and got[0][1] > expected[0][1] + 1e-4:
        return (f"your best hypothesis {got[0][0]} scores {got[0][1]:.4f}, better than a {k}-beam search can find "
                f"({expected[0][1]:.4f}): your beam keeps K^2 candidates: keep only the best K")
    if len(got) != len(expected):
        return f"you returned {len(got)} hypotheses, expected {len(expected)}"
    for i, ((gt, gs), (et, es)) in enumerate(zip(got, expected)):
        if gt != et:
            return f"hypothesis {i}: tokens {gt}, expected {et} (score {es:.4f})"
        if abs(gs - es) > 1e-4:
            return (f"hypothesis {i} {gt}: score {gs:.5f}, expected {es:.5f} = sum of log-probs / "
                    f"len ** length_penalty (len counts the eos)")
    return None


EXERCISES = [
    Exercise(
        day=DAY, name="apply_temperature", grade_ids=("test_apply_temperature",),
        make_cases=_temperature_cases, reference=decoding.apply_temperature, compare=_compare_temperature,
        forbidden=(decoding.apply_temperature,),
        description="logits / temperature",
        properties=LADDERS["apply_temperature"],  # logits' shape and dtype; every gap between logits / temperature
        edge_cases=("a row whose maximum is negative", "an all-equal row", "temperature 1", "temperature 0.1",
                    "float32 and float64", "1-D and 3-D logits"),
    ),
    Exercise(
        day=DAY, name="top_k_filter", grade_ids=("test_top_k_filter",),
        make_cases=_top_k_cases, reference=decoding.top_k_filter, compare=_compare_filtered,
        forbidden=(decoding.top_k_filter,),
        description="keep the k largest logits of each row, -inf the rest",
        # logits' shape and dtype; each entry unchanged or -inf; kept >= removed per row; k kept plus ties
        properties=LADDERS["top_k_filter"],
        edge_cases=("ties with the k-th largest", "k = 1", "k = V", "k > V", "a row whose maximum is negative",
                    "an all-equal row", "float32 and float64", "1-D and 3-D logits"),
    ),
    Exercise(
        day=DAY, name="top_p_filter", grade_ids=("test_top_p_filter",),
        make_cases=_top_p_cases, reference=decoding.top_p_filter, compare=_compare_filtered,
        forbidden=(decoding.top_p_filter,),
        description="nucleus: keep the smallest top set whose probability reaches p",
        # logits' shape and dtype; each entry unchanged or -inf; the top token kept; a top set; smallest reaching p
        properties=LADDERS["top_p_filter"],
        edge_cases=("p = 1", "tiny p", "the top token alone reaches p", "a sort order that is a 3-cycle",
                    "a token whose mass ranked above it is exactly p (probabilities 1/2, 1/4, 1/8, 1/8)",
                    "a row whose maximum is negative", "float32 and float64", "1-D and 3-D logits"),
    ),
    Exercise(
        day=DAY, name="greedy", grade_ids=("test_greedy",),
        make_cases=_greedy_cases, reference=decoding.greedy, compare=_compare_greedy, wrap=_wrap_model,
        forbidden=(decoding.greedy, decoding.sample, decoding.beam_search),
        description="argmax decoding with eos padding and early stop",
        # integer (B, T + n) ids starting with the prompt; each new token the last position's argmax or eos padding;
        # stops when every row has finished
        properties=LADDERS["greedy"],
        edge_cases=("a row that finishes early and must be padded (the model would not repeat eos)",
                    "rows that finish at different steps", "every row finishes before max_new_tokens",
                    "max_new_tokens = 0", "T = 1 prompts", "B = 1"),
    ),
    Exercise(
        day=DAY, name="beam_search", grade_ids=("test_beam_search",),
        make_cases=_beam_cases, reference=decoding.beam_search, compare=_compare_beams, wrap=_wrap_model,
        forbidden=(decoding.beam_search, decoding.greedy, decoding.sample),
        description="beam search with length penalty and eos, best hypotheses first",
        # at most K (generated ids, float) pairs, best first, at least one; each score = the model's summed
        # log-probability / len ** alpha; then the hypotheses of the reference's procedure
        properties=LADDERS["beam_search"],
        edge_cases=("a table where K^2 live beams find a strictly better sequence than K",
                    "an eos hypothesis that finishes first and ranks last (alpha 1) or first (alpha 0)",
                    "K = 1", "alpha 0, 0.6, 1 and 2", "prompts of 1 to 3 tokens"),
    ),
]
