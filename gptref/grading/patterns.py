"""Where a wrong tensor is wrong, and the shape of its error: what a student can look for when no known mistake fits.

`error_pattern(got, expected, close)` looks at a wrong answer the way a teaching assistant would: is it the
expected tensor with its sign flipped, shifted by one position, reversed or transposed; does it differ by one
constant (or one factor) per row; do its wrong entries all lie in a few positions of one dimension, or on one side
of the diagonal? Each finding is an observation about the answer, true by construction, with where to look; none
guesses a cause, so a mistake nobody wrote down is never given somebody else's.
"""

from __future__ import annotations

import torch


def _same(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float) -> bool:
    return a.numel() > 1 and a.shape == b.shape and bool(torch.isclose(a, b, rtol=rtol, atol=atol).all())


def _transformed(got: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> str | None:
    """The expected tensor negated, shifted by one, reversed or transposed."""
    if _same(got, -expected, rtol, atol) and bool((expected.abs() > atol).any()):
        return "every value has the sign opposite to the expected one: look for a flipped sign or swapped operands"
    if got.dim() >= 2 and got.shape[-1] == got.shape[-2] and _same(got, expected.transpose(-2, -1), rtol, atol):
        return ("it equals the expected result with its last two dimensions swapped: "
                "look for a missing or extra transpose")
    for dim in range(got.dim()):
        size = got.shape[dim]
        if size < 3:
            continue
        head, tail = got.narrow(dim, 0, size - 1), got.narrow(dim, 1, size - 1)
        exp_head, exp_tail = expected.narrow(dim, 0, size - 1), expected.narrow(dim, 1, size - 1)
        if _same(tail, exp_head, rtol, atol):
            return (f"it equals the expected result moved one position later along dimension {dim}: "
                    "look for an index or slice that is off by one")
        if _same(head, exp_tail, rtol, atol):
            return (f"it equals the expected result moved one position earlier along dimension {dim}: "
                    "look for an index or slice that is off by one")
        if _same(got, expected.flip(dim), rtol, atol):
            return (f"it equals the expected result in reverse order along dimension {dim}: "
                    "look at the order of a loop or index")
    return _rearranged(got, expected, rtol, atol)


def _rearranged(got: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> str | None:
    """The expected values, all of them, each in another place: entries moved, none computed wrong (a reshape or
    view that regroups the dimensions, a permute of the wrong axes). Only when the values are all distinct, so that
    equal multisets cannot come from a wrong computation by chance."""
    flat_got, flat_expected = got.flatten().sort().values, expected.flatten().sort().values
    if flat_got.numel() < 4 or not _same(flat_got, flat_expected, rtol, atol):
        return None
    if bool((flat_expected[1:] - flat_expected[:-1] <= atol + rtol * flat_expected[1:].abs()).any()):
        return None
    return ("it holds exactly the expected values, but many in other places: nothing is computed wrong, the entries "
            "are moved: look at the order of the dimensions in a view/reshape (it regroups the memory as it lies) "
            "and at which axes a transpose or permute swaps")


def _named_factor(c: float) -> str:
    """' (c is sqrt(n))', ' (c is 1/n)'... when c is a small integer, its root or their inverses, else ''."""
    for value, word in ((c, ""), (1 / c, "1/")):
        for n in range(2, 65):
            if abs(value - n) < 1e-3 * n:
                return f" (1/{n})" if word else ""
            if abs(value - n ** 0.5) < 1e-3 * n ** 0.5:
                return f" ({word}sqrt({n}))"
    return ""


def _rescaled_softmax(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    """Both are probability rows (last dimension) and got = softmax(c * the scores behind expected), c != 1: the
    scores were scaled by the wrong factor before the softmax (a sharper or flatter distribution)."""
    if got.dim() < 1 or got.shape[-1] < 3 or bool((got < 0).any()) or bool((expected < 0).any()):
        return None
    if not (bool(((got.sum(-1) - 1).abs() < 1e-4).all()) and bool(((expected.sum(-1) - 1).abs() < 1e-4).all())):
        return None
    support = expected > 0
    if not torch.equal(support, got > 0):
        return None
    log_got = got.clamp_min(1e-300).log().masked_fill(~support, 0)
    log_expected = expected.clamp_min(1e-300).log().masked_fill(~support, 0)
    count = support.sum(-1, keepdim=True)
    centred_got = (log_got - log_got.sum(-1, keepdim=True) / count).masked_fill(~support, 0)  # per-row log-ratios
    centred_expected = (log_expected - log_expected.sum(-1, keepdim=True) / count).masked_fill(~support, 0)
    energy = float((centred_expected ** 2).sum())
    if energy < 1e-12:
        return None
    factor = float((centred_got * centred_expected).sum()) / energy
    if abs(factor - 1) < 1e-3 or factor <= 0:
        return None
    if not bool(torch.isclose(centred_got, factor * centred_expected, rtol=1e-3, atol=1e-4).all()):
        return None
    shape = "sharper" if factor > 1 else "flatter"
    return (f"every row is the expected distribution made {shape}: the softmax of the expected scores times "
            f"{factor:.4g}{_named_factor(factor)}: look at the factor the scores are scaled by before the softmax")


def _per_row(got: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> str | None:
    """One constant, or one factor, per row of the last dimension (a term or a normalisation of the whole row)."""
    if got.dim() < 1 or got.shape[-1] < 3:
        return None
    offset = got - expected
    if bool(torch.isclose(offset, offset[..., :1].expand_as(offset), rtol=0, atol=max(atol, 1e-6)).all()):
        return ("in every row (along the last dimension) your values differ from the expected ones by one and the "
                "same amount: a term that is the same for the whole row is missing, extra or computed over the wrong "
                "values")
    nonzero = expected.abs() > max(atol, 1e-6)
    rows = got.numel() // got.shape[-1]
    if bool(nonzero.all()) and rows >= 2:  # one row would be one multiple of everything: not a per-row finding
        ratio = got / expected
        factors = ratio[..., :1]
        apart = bool(((factors - 1).abs() > 1e-3).any()) and bool((factors - factors.flatten()[0]).abs().max() > 1e-3)
        if apart and bool(torch.isclose(ratio, factors.expand_as(ratio), rtol=1e-4, atol=0).all()):
            return ("in every row (along the last dimension) your values are one and the same multiple of the "
                    "expected ones, a different multiple per row: the normalisation of each row (the total it is "
                    "divided by) is not the expected one")
    return None


def _where(wrong: torch.Tensor) -> str | None:
    """The indices of one dimension that hold every wrong entry, when they are a small part of it."""
    best = None
    for dim in range(wrong.dim()):
        size = wrong.shape[dim]
        if size < 2:
            continue
        others = [d for d in range(wrong.dim()) if d != dim]
        rows = wrong.any(dim=others) if others else wrong
        hit = rows.nonzero().flatten().tolist()
        if not hit or len(hit) == size:
            continue
        share = len(hit) / size
        if best is None or share < best[0]:
            best = (share, dim, hit, size)
    if best is None:
        return None
    _, dim, hit, size = best
    if len(hit) == 1:
        where = f"only at index {hit[0]} (of {size})"
    elif hit == list(range(hit[0], size)):
        where = f"only at indices {hit[0]} to {size - 1} (the last {len(hit)} of {size})"
    elif hit == list(range(0, hit[-1] + 1)):
        where = f"only at indices 0 to {hit[-1]} (the first {len(hit)} of {size})"
    elif len(hit) <= 6:
        where = f"only at indices {hit} (of {size})"
    else:
        return None
    return (f"the wrong entries lie {where} along dimension {dim}: look at what sets those indices apart (their "
            "input values, such as a larger maximum or position, or a branch, index or bound of your code)")


def _triangle(wrong: torch.Tensor) -> str | None:
    """Every wrong entry above (or below) the diagonal of the last two dimensions: the future (or past) positions."""
    if wrong.dim() < 2 or min(wrong.shape[-2:]) < 2 or int(wrong.sum()) < 3 or wrong.shape[-1] != wrong.shape[-2]:
        return None  # only a square (query, key) grid has a diagonal that means something
    rows, cols = wrong.shape[-2:]
    above = torch.ones(rows, cols, dtype=torch.bool).triu(1)
    below = torch.ones(rows, cols, dtype=torch.bool).tril(-1)
    if not bool((wrong & ~above).any()):
        return ("all wrong entries lie above the diagonal of the last two dimensions (column > row: for attention, "
                "the keys after the query)")
    if not bool((wrong & ~below).any()):
        return ("all wrong entries lie below the diagonal of the last two dimensions (column < row: for attention, "
                "the keys before the query)")
    return None


def _slightly_off(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    """Every error below 0.1% of the tensor's largest value: the right computation up to a small difference."""
    scale, err = float(expected.abs().max()), float((got - expected).abs().max())
    if scale > 0 and err <= 1e-3 * scale:
        return (f"every error is below {err / scale:.1g} of the largest expected value: the computation is the "
                "expected one up to a small difference: look for an approximation, a small constant (an epsilon) or "
                "a lower precision used on the way")
    return None


def error_pattern(got: torch.Tensor, expected: torch.Tensor, close: torch.Tensor, rtol: float, atol: float) -> str:
    """' (observation: where to look)' for a wrong float tensor, or '' when no pattern is clear."""
    got, expected = got.double(), expected.double()
    if not (torch.isfinite(got).all() and torch.isfinite(expected).all()):
        return ""
    for finding in (_transformed(got, expected, rtol, atol), _rescaled_softmax(got, expected), _triangle(~close),
                    _where(~close), _per_row(got, expected, rtol, atol), _slightly_off(got, expected)):
        if finding:
            return f" ({finding})"
    return ""
