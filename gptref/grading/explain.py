"""What a student reads when their function is wrong: torch's errors translated, known mistakes recognised.

Two tools, used by the notebooks' visible tests, the hidden `check` and the autograder's verdict alike:

- `call(fn, *args, **kwargs)` runs the student's function; an exception raised inside it becomes an
  AssertionError that names the line of the student's code it came from and, where the cause can be
  told from the error and that line, what to change (`.T` on a batched tensor, `if tensor:`, float32
  mixed with float64, ...). Test code therefore explains first; the raw torch message comes after.
- `Mistake(says, answer)` is a common wrong answer written as a small function with the exercise's
  signature; `which_mistake(got, mistakes, ...)` says which of them a wrong answer equals on the same
  inputs ("your loss equals eps * sum over classes instead of eps / C * sum"), and nothing when none
  does, so a mistake nobody wrote down is never given somebody else's cause.

Mistakes live in `gptref.grading.mistakes` (wrong answers only: no cases, no references), so a
visible test may import them without seeing anything hidden.
"""

from __future__ import annotations

import copy
import inspect
import linecache
import os
import re
import types
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch

from gptref.grading.compare import difference


@dataclass(frozen=True)
class Mistake:
    """A common wrong answer: `answer` has the exercise's signature; `says` names the mistake in the notebook's
    words."""

    says: str
    answer: Callable[..., Any]


# ---------------------------------------------------------------- where in the student's code


_STDLIB_DIR = os.path.dirname(os.path.abspath(os.__file__))
_GPTREF_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PACKAGE_DIRS = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)


def _is_student_frame(filename: str) -> bool:
    """Code the student wrote: notebook cells (ipykernel's temp files, <string>), not torch, gptref or the stdlib."""
    if filename.startswith("<"):
        return not filename.startswith("<frozen")
    path = os.path.abspath(filename)
    if any(d in path for d in _PACKAGE_DIRS):
        return False
    return not path.startswith((_GPTREF_DIR + os.sep, _STDLIB_DIR + os.sep))


def _student_traceback(exc: BaseException | None) -> types.TracebackType | None:
    """The traceback entry of the innermost frame of the student's own code (its frame holds the values there)."""
    entry, found = exc.__traceback__ if exc is not None else None, None
    while entry is not None:
        if _is_student_frame(entry.tb_frame.f_code.co_filename):
            found = entry
        entry = entry.tb_next
    return found


def student_line(exc: BaseException) -> tuple[str, int, str] | None:
    """(function name, line number, source line) of the innermost frame of the student's own code."""
    entry = _student_traceback(exc)
    if entry is None:
        return None
    code = entry.tb_frame.f_code
    return code.co_name, entry.tb_lineno or 0, linecache.getline(code.co_filename, entry.tb_lineno or 0).strip()


# ---------------------------------------------------------------- known errors and their causes


def _reduction_without_keepdim(line: str) -> bool:
    return bool(re.search(r"\.(sum|mean|max|min|amax|logsumexp|std|var|norm)\(", line)) and "keepdim" not in line


def _reduces_a_leading_dim(line: str) -> bool:
    """A reduction told to work on a dimension other than the last (x.mean(dim=0), x.sum(1)): then keepdim is not
    the only suspect, the dimension itself may be the wrong one."""
    found = re.search(r"\.(sum|mean|max|min|amax|logsumexp|std|var|norm)\(\s*(dim\s*=\s*)?(-?\d+)", line.split("#")[0])
    return bool(found) and found[3] != "-1"


def _reduction_is_combined(line: str) -> bool:
    """Whether a reduction's result meets another tensor on this line (x - x.mean(-1)), rather than being the last
    step of it ((a * b).sum(-1)): only then can its dropped dimension be the one that does not fit."""
    code = line.split("#")[0]
    for found in re.finditer(r"\.(sum|mean|max|min|amax|logsumexp|std|var|norm)\(", code):
        depth, close = 0, len(code)
        for index in range(found.end() - 1, len(code)):  # the call's closing parenthesis
            depth += {"(": 1, ")": -1}.get(code[index], 0)
            if depth == 0:
                close = index
                break
        start = found.start()
        if start and code[start - 1] == ")":  # a parenthesised receiver: back to its opening parenthesis
            depth, start = 0, start - 1
            while start >= 0:
                depth += {")": 1, "(": -1}.get(code[start], 0)
                if depth == 0:
                    break
                start -= 1
        while start > 0 and re.match(r"[\w.\[\]]", code[start - 1]):
            start -= 1
        if code[:start].rstrip()[-1:] in ("+", "-", "*", "/", "@") or code[close + 1:].lstrip()[:1] in (
                "+", "-", "*", "/", "@"):
            return True
    return False


def _per_row_without_trailing_dim(line: str) -> bool:
    """A line that slices a tensor and combines tensors entry by entry (+ - * /), adding no trailing dimension."""
    sliced = re.search(r"\w\[[^\]]*:[^\]]*\]", line)
    entrywise = re.search(r"[\w\]\)] *[-+*/] *[\w(]", re.sub(r"\[[^\]]*\]", "[]", line))
    return bool(sliced and entrywise) and not re.search(r"None|unsqueeze|keepdim|\.view|reshape", line)


_MASK_CAUSE = ("the mask has another shape than the tensor it masks (print both .shape): a mask needs that "
               "tensor's sizes, or 1 where it is broadcast; in a loop over blocks the last block can be shorter "
               "than block_q or block_k, so size the mask's rows and columns from the tile itself (s.shape[-2], "
               "s.shape[-1]), not from the block size")


def _masks(line: str) -> bool:
    """A line that applies a mask: masked_fill(_) or torch.where."""
    return bool(re.search(r"\.masked_fill_?\(|\bwhere\(", line))


def _shape_cause(line: str) -> str:
    if re.search(r"\.T\b", line):
        return ("`.T` reverses EVERY dimension of a tensor with more than two (a (B, H, T, d) tensor becomes "
                "(d, T, H, B)): to swap the last two dimensions use `.transpose(-2, -1)`")
    if re.search(r"\.(transpose|swapaxes)\(\s*[0-9]+\s*,\s*[0-9]+\s*\)", line):
        return ("`.transpose(1, 2)` swaps the last two dimensions of a 3-D tensor only; of a 4-D (B, H, T, d) tensor "
                "it swaps H and T: count from the end, `.transpose(-2, -1)`, so the code works for any number of "
                "leading dimensions")
    if re.search(r"\.shape\[0\]|\.size\(0\)", line):
        return ("this line uses .shape[0], the BATCH size of a (B, T, ...) tensor: if you meant the sequence length, "
                "that is .shape[1]; otherwise print the .shape of the tensors that meet here")
    if _reduction_without_keepdim(line) and _reduction_is_combined(line):
        return ("a sum/mean/max without `keepdim=True` drops the reduced dimension, so the result no longer lines up "
                "with the tensor it is combined with: add `keepdim=True`")
    if re.search(r"\.view\(|\.reshape\(", line):
        return "check the sizes you pass to view/reshape against the tensor's .shape"
    if re.search(r"\[\s*None\s*(,\s*:\s*)?\]\s*\*|\*\s*[\w.]+\[\s*None\s*(,\s*:\s*)?\]", line):
        return ("`v[None, :]` makes v a ROW (1, n), which lines up with the LAST dimension of what it meets; to pair "
                "every entry of one vector with every entry of another (an outer product, such as positions times "
                "frequencies), make the first a column and the second a row: `a[:, None] * b[None, :]` has shape "
                "(len(a), len(b))")
    if _per_row_without_trailing_dim(line):
        return ("broadcasting lines up dimensions from the RIGHT: if one of these is a per-row vector (..., rows) "
                "meant for a (..., rows, cols) tensor, give it a trailing dimension, `v[..., None]`; otherwise print "
                "their .shape to see which do not fit")
    return "two tensors whose shapes do not fit together meet on this line: print their .shape to see which"


def _join_cause(line: str) -> str:
    """torch.cat / torch.stack refused the pieces: what each needs, and how to join pieces of any shapes."""
    if "stack(" in line:
        return ("torch.stack needs tensors of equal shapes (it adds a new dimension): to join tensors of different "
                "shapes into one vector, flatten each and use torch.cat: `torch.cat([t.reshape(-1) for t in ts])`")
    if "cat(" in line:
        return ("torch.cat needs the same number of dimensions and equal sizes except in the joined one: print the "
                ".shape of each piece you join (a (B,) vector becomes a (B, 1) column with v[:, None], a (1, B) row "
                "with v[None, :]); to join tensors of any shapes into one vector, flatten each first: "
                "`torch.cat([t.reshape(-1) for t in ts])`")
    return ("torch.cat/torch.stack was given tensors whose shapes do not fit: print the .shape of each piece you join "
            "(a (B,) vector becomes a (B, 1) column with v[:, None], a (1, B) row with v[None, :])")


def _zero_division_cause(line: str) -> str:
    """A Python division by zero: a denominator such as (n - 1) that is 0 for the smallest sizes the tests use."""
    if re.search(r"warmup\w*\s*-\s*1", line):
        return ("dividing by (warmup_steps - 1) fails for a one-step warmup (warmup_steps = 1, which the tests use): "
                "the warmup is max_lr * (step + 1) / warmup_steps, which reaches max_lr at step warmup_steps - 1 "
                "and divides by warmup_steps itself")
    if re.search(r"-\s*1\s*\)", line):
        return ("a denominator (n - 1) on this line is 0 when n = 1, a size the tests use: check the formula's "
                "denominator for the smallest inputs")
    return ("a denominator on this line is 0 for these inputs: print it, and check the formula for the smallest "
            "sizes the tests use (one step, one element)")


_KNOWN: list[tuple[re.Pattern, Callable[[str], str]]] = [
    (re.compile(r"ZeroDivisionError"), _zero_division_cause),
    (re.compile(r"Error\(s\) in loading state_dict[\s\S]*size mismatch"),
     lambda line: ("the weights the test loads do not fit your module: a layer your __init__ makes has another "
                   "shape than the given weight (named above): give each "
                   "nn.Linear the input and output sizes the exercise states")),
    (re.compile(r"Error\(s\) in loading state_dict[\s\S]*(Missing|Unexpected) key"),
     lambda line: ("your layers have a parameter the given weights lack, or lack one they have (named above): "
                   "create each nn.Linear with bias=bias, so it has a bias exactly when asked")),
    (re.compile(r"bytes must be in range\(0, 256\)"),
     lambda line: ("a number above 255 was turned into a byte: an id above 255 is a merged token, whose bytes are "
                   "vocab[id]; join vocab[i] for each id instead of treating the ids as bytes")),
    (re.compile(r"q and k need the same last dim"),
     lambda line: ("the queries and the keys reach the attention with heads of different sizes: each head has "
                   "head_dim = d_model // n_heads channels, so split each projection into the number of heads it "
                   "holds (the queries into n_heads, the keys and values into n_kv_heads)")),
    (re.compile(r"expected target dtype to be Long|expected scalar type Long but found Float"),
     lambda line: ("F.cross_entropy takes class ids as integer (int64) targets: pass the labels as they are, "
                   "without .float()")),
    (re.compile(r"Error\(s\) in loading state_dict"),
     lambda line: ("the weights the test loads do not fit your module: its parts have other names or other "
                   "shapes than the notebook asks for (the line above says which; compare each "
                   "nn.Linear's in and out sizes with the formula)")),
    (re.compile(r"Sizes of tensors must match except in dimension|expects each tensor to be equal size|"
                r"Tensors must have same number of dimensions"),
     _join_cause),
    (re.compile(r"must match the size of tensor b|shapes cannot be multiplied|mat1 and mat2 shapes|"
                r"size mismatch|Expected size .* but got size|The size of tensor a|"
                r"Expected size for first two dimensions of batch2"), _shape_cause),
    (re.compile(r"Boolean value of Tensor with more than one (value|element)"),
     lambda line: ("a tensor was used as a True/False value (`if t:`, `t and u`, `not t`): for an optional "
                   "argument test `if t is not None:`; to test every entry use `.any()`/`.all()`, or `torch.where` "
                   "to choose per entry")),
    (re.compile(r"Float did not match Double|Double did not match Float|expected scalar type (Float|Double) but found "
                r"(Float|Double)|expected m1 and m2 to have the same dtype|to have the same dtype|"
                r"result type Float can't be cast|found dtype Double but expected Float|"
                r"found dtype Float but expected Double|expected both vectors to have same dtype"),
     lambda line: ("float32 and float64 tensors were mixed: make new tensors in the input's dtype "
                   "(`dtype=x.dtype`, `torch.zeros_like(x)`, `x.new_tensor(...)`), and do not call .float()/.double() "
                   "on an input unless the notebook asks for it")),
    (re.compile(r"Expected target size|Expected input batch_size .* to match target batch_size"),
     lambda line: ("F.cross_entropy reads the classes from dim 1: it takes logits (N, C) and targets (N,), classes "
                   "in dimension 1; flatten (B, T, V) logits to (B*T, V) and their (B, T) targets to (B*T,) with "
                   "`logits.reshape(-1, V)` and `targets.reshape(-1)` before calling it")),
    (re.compile(r"optimizer got an empty parameter list"),
     lambda line: ("an optimizer was built over an empty list of parameters on this process: print the list you "
                   "pass to it, and where it comes from (when each rank steps only the parameters it owns, a rank "
                   "that owns none gets an empty list: check how the owners were chosen)")),
    (re.compile(r"is invalid for input of size"),
     lambda line: ("view/reshape/view_as was given a tensor with another number of elements than the shape asks "
                   "for: print the .numel() of what you reshape, the slice bounds it was cut with, and how the tensor "
                   "it was cut from was built (a buffer made from other tensors than the ones it is cut for has "
                   "another size)")),
    (re.compile(r"Dimension out of range"),
     lambda line: ("a dimension index is larger than the tensor has dimensions: count from the end (dim=-1 is the "
                   "last) so the code works for any number of leading dimensions")),
    (re.compile(r"\"(bitwise|logical)_\w+\" not implemented for '(Float|Double|Half|BFloat16)'"),
     lambda line: ("a True/False operation (&, |, ^, ~) met a float tensor: a mask must be a bool tensor, so make it "
                   "bool where it is created (torch.ones(T, T, dtype=torch.bool).tril(), or a comparison such as "
                   "j <= i)")),
    (re.compile(r"not implemented for '(Long|Int|Bool|Byte)'|\"\w+\" not implemented for '(Long|Int|Bool)'"),
     lambda line: ("an integer or bool tensor reached an operation that needs floating point: convert it with "
                   ".to(x.dtype)")),
    (re.compile(r"does not require grad and does not have a grad_fn"),
     lambda line: ("the result was computed without autograd (under torch.no_grad(), after .detach(), or through "
                   ".item()/numpy), so backward() has nothing to follow")),
    (re.compile(r"modified by an inplace operation|a leaf Variable that requires grad"),
     lambda line: ("an in-place operation (`+=`, `x[...] = `, a method ending in `_`) changed a tensor autograd "
                   "needs: write `x = x + ...` instead")),
    (re.compile(r"The expanded size of the tensor"),
     lambda line: _MASK_CAUSE if _masks(line) else _SLICE_ASSIGNED if _assigns_into_a_slice(line) else (
         "expand only stretches dimensions of size 1 (it cannot move or add sizes): check the .shape of the "
         "tensor you expand, and put its new axes (None) where the size-1 dimensions of the result go")),
    (re.compile(r"only supports boolean masks"),
     lambda line: ("masked_fill/where need a bool mask: make it bool (torch.zeros(n, dtype=torch.bool), a "
                   "comparison like x == y) rather than a float or integer tensor")),
    (re.compile(r"index -100 is out of bounds"),
     lambda line: ("-100 is the ignore_index: those rows have no class to pick, so index them with any valid id "
                   "(e.g. `target.masked_fill(ignored, 0)`) and then give their loss weight 0")),
    (re.compile(r"selected index k out of range"),
     lambda line: ("torch.topk was asked for more values than the last dimension holds (k > V): when k >= V every "
                   "logit is kept, so handle that case before calling topk")),
    (re.compile(r"more than one element of the written-to tensor refers to a single memory location"),
     lambda line: ("an in-place operation (`&=`, `+=`, `x[...] =`, a method ending in `_`) wrote into an "
                   "expanded/broadcast view, whose entries share memory: write `x = x & ...` (a new tensor), or "
                   "`.clone()` the expanded tensor first")),
    (re.compile(r"view size is not compatible with input tensor's size and stride"),
     lambda line: ("the tensor that .transpose/.permute gives on this line keeps the old memory layout, so it is not "
                   "contiguous and `.view` cannot merge its dimensions: use `.reshape` (it copies when it must)"
                   if re.search(r"\.(transpose|permute|mT|T)\b", line) else
                   "a slice such as `x[:, :-1]` is not contiguous in memory, so `.view` cannot flatten it: use "
                   "`.reshape` (it copies when it must)")),
    (re.compile(r"too many indices for tensor of dimension (\d+)"),
     lambda line: ("a tensor was indexed with more indices than it has dimensions (the error says how many it has): "
                   "for example a reduction without dim= (`.sum()`, `.mean()`, `.max()`) returns one number, a 0-d "
                   "tensor, where a tensor with a value per row was meant; print the .shape of what is indexed on this "
                   "line, and reduce over the dimension you mean (dim=-1)")),
    (re.compile(r"is out of bounds for dimension \d+ with size"),
     lambda line: ("scatter/gather read an index value along the dimension their `dim` argument names, and that "
                   "dimension is shorter than the value: the values of the index count along `dim`, so a class id "
                   "goes along the class dimension, the last one (dim=-1)")
     if re.search(r"\b(scatter_?|scatter_add_?|gather|take_along_dim)\(", line) else None),
    (re.compile(r"out of bounds|index out of range|IndexError"),
     lambda line: ("an index reached past the end of a tensor or list: check the loop bounds and the sizes you "
                   "index with")),
    (re.compile(r"Vocabulary size too high"),
     lambda line: ("the trainer found fewer pieces in this text than vocab_size asks for: compare the options you pass "
                   "with the notebook's table (byte_fallback=True adds the 256 byte pieces; model_type='bpe' builds "
                   "pieces by merges)")),
    (re.compile(r"can't convert|Can't call numpy\(\) on Tensor that requires grad"),
     lambda line: ("keep the computation in torch (no numpy or .item() inside it), so shapes, dtype and gradients "
                   "follow")),
    (re.compile(r"unsupported operand type\(s\) for .*'NoneType'|'NoneType' object is not subscriptable|"
                r"'NoneType' object has no attribute"),
     lambda line: ("a collective (dist.all_reduce, dist.broadcast, dist.reduce, ...) changes the tensor you pass it IN "
                   "PLACE and returns None (a handle to wait on only with async_op=True): call it on a line of its "
                   "own, `dist.all_reduce(p.grad)`, then use that tensor, `p.grad /= world_size`")
     if re.search(r"dist\.\w+\([^)]*\)\s*[-+*/@.\[]|=\s*dist\.(all_reduce|broadcast|reduce|all_gather|"
                  r"reduce_scatter\w*|all_to_all\w*)\(", line) else None),
    (re.compile(r"unsupported operand type\(s\) for .*'NoneType'|'NoneType' object is not subscriptable"),
     lambda line: ("a value on this line is None: an optional argument that was not given (such as weight=None or "
                   "bias=None) must be used only when it is given, `if weight is not None:`; otherwise a function "
                   "that returns nothing (a missing `return`, or a call such as dist.all_reduce that works in place "
                   "and returns None)")),
    (re.compile(r"'NoneType' object has no attribute 'wait'"),
     lambda line: ("the handle you wait on is None: a collective returns a handle to wait on only when it is started "
                   "with async_op=True (dist.all_reduce(flat, async_op=True)); without it, it blocks and returns "
                   "None")),
    (re.compile(r"KeyError: tensor\("),
     lambda line: ("the key is a tensor that is not in the dict: a dict keyed by tensors finds only the very same "
                   "tensor object (not an equal one), so look up the object you stored; in a gradient hook, "
                   "register_post_accumulate_grad_hook calls hook(param) with the parameter, while register_hook "
                   "calls hook(grad) with the gradient, a different tensor")),
]


def _weight_not_transposed(text: str) -> str | None:
    """`x @ w` with w stored (out, in) like nn.Linear's weight: x's last size equals w's LAST size, not its first."""
    sizes = re.search(r"shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)", text)
    if sizes and sizes[2] == sizes[4] and sizes[2] != sizes[3]:
        return (f"the input's last size ({sizes[2]}) matches the LAST size of the {sizes[3]}x{sizes[4]} matrix, so "
                "that matrix is stored (out, in) like an nn.Linear weight: multiply by its transpose, `x @ w.T` "
                "(or `F.linear(x, w)`)")
    return None


def _values_of_max(text: str) -> str | None:
    """`t.max(dim=...)` used as a tensor: it returns the pair (values, indices)."""
    kind = re.search(r"torch\.return_types\.(max|min|sort|topk|kthvalue|median|mode)", text)
    if kind:
        return (f"`.{kind[1]}(dim=...)` returns a pair (values, indices), not a tensor: take its `.values`"
                + (f" (or use `.a{kind[1]}(dim=...)`)" if kind[1] in ("max", "min") else ""))
    return None


def _vocabulary_below_required(text: str) -> str | None:
    """SentencePiece refused a vocab_size smaller than the pieces it must hold before learning any merge."""
    sizes = re.search(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)", text)
    if sizes:
        return (f"the trainer was given vocab_size = {sizes[1]}, fewer than the {sizes[2]} pieces it must hold before "
                "learning any merge (the special pieces, the 256 byte pieces and the characters it covers): vocab_size "
                "is the size of the WHOLE vocabulary, those pieces included, so pass the vocab_size your function "
                "receives as it is")
    return None


_FROM_THE_MESSAGE: list[Callable[[str], str | None]] = [_weight_not_transposed, _values_of_max,
                                                        _vocabulary_below_required]


def _code_point_key(exc: BaseException, line: str) -> str | None:
    """A byte-level vocabulary looked up with a character's code point (ord(c) > 255) where a byte belongs."""
    key = exc.args[0] if isinstance(exc, KeyError) and exc.args else None
    if not isinstance(key, int) or isinstance(key, bool) or key <= 255 or "vocab" not in line:
        return None
    return (f"{key} is not an id of the vocabulary here; it is the code point of the character {chr(key)!r} "
            f"(ord({chr(key)!r}) == {key}): ids 0..255 are BYTES, so start from the text's UTF-8 bytes, "
            f"text.encode('utf-8'), where a character outside ASCII is 2 to 4 bytes")


def cause_of(exc: BaseException, line: str = "") -> str | None:
    """What to change, where the error and the line it came from say it; None when the cause is not known."""
    text = f"{type(exc).__name__}: {exc}"
    code_point = _code_point_key(exc, line)
    if code_point:
        return code_point
    for from_message in _FROM_THE_MESSAGE:
        cause = from_message(text)
        if cause:
            return cause
    for pattern, explain in _KNOWN:
        cause = explain(line) if pattern.search(text) else None
        if cause:  # an entry that needs the line to say more gives None, and the next entry that fits speaks
            return cause
    return None


_GENERIC_SHAPE = "two tensors whose shapes do not fit together"
_DROPS_A_DIM = re.compile(r"\[\s*\.\.\.\s*,\s*-?\d+\s*\]")  # x[..., -1]: an integer index removes the last dim


def _nearest_student_line(exc: BaseException, matches: Callable[[str], bool],
                          from_failing_line: bool = True) -> tuple[int, str] | None:
    """(line number, source) of the nearest line of the failing student function, from the failing line (or the one
    above it) up to its `def`, whose code matches; None if none does. A lambda is its own one line."""
    entry = _student_traceback(exc)
    if entry is None or not entry.tb_lineno:
        return None
    code = entry.tb_frame.f_code
    lines = linecache.getlines(code.co_filename)
    last = entry.tb_lineno if from_failing_line else entry.tb_lineno - 1
    first = entry.tb_lineno if code.co_name == "<lambda>" else 1
    for number in range(last, first - 1, -1):
        text = lines[number - 1].strip() if number <= len(lines) else ""
        if text.startswith("def "):
            return None
        if matches(text.split("#")[0]):
            return number, text
    return None


def earlier_dropped_dim(exc: BaseException) -> tuple[int, str] | None:
    """(line number, source) of an earlier line of the failing student function that removes a dimension
    (an integer index like `[..., -1]`, or a reduction without keepdim), the nearest one first; None if none."""
    return _nearest_student_line(
        exc, lambda code: "=" in code and bool(_DROPS_A_DIM.search(code) or _reduction_without_keepdim(code)),
        from_failing_line=False)


_FROM_DIM_0 = re.compile(r"\b([A-Za-z_]\w*)\.(?:shape\[0\]|size\(0\))")


def size_from_dim_0(exc: BaseException) -> tuple[int, str, int] | None:
    """(line number, source, size) of an earlier line of the failing student function that takes a size from dim 0 of
    a tensor with more than two dimensions (`T = x.shape[0]`), when that size is one of the sizes the shape error
    names; None otherwise (a batch size taken from dim 0 on purpose does not show in the error)."""
    found = _nearest_student_line(exc, lambda code: "=" in code and bool(_FROM_DIM_0.search(code)),
                                  from_failing_line=False)
    entry = _student_traceback(exc)
    if found is None or entry is None:
        return None
    tensor = entry.tb_frame.f_locals.get(_FROM_DIM_0.search(found[1].split("#")[0]).group(1))  # not a comment's
    if not isinstance(tensor, torch.Tensor) or tensor.dim() < 3:
        return None
    sizes = {int(n) for n in re.findall(r"\((\d+)\)", str(exc))}
    return (*found, int(tensor.shape[0])) if int(tensor.shape[0]) in sizes and len(sizes) > 1 else None


_OVER_DIM_0 = re.compile(r"\.(argmax|argmin|sum|mean|max|min|amax|amin|softmax|log_softmax)\(\s*(dim\s*=\s*)?0\s*[,)]")


def earlier_reduction_over_dim_0(exc: BaseException) -> tuple[int, str] | None:
    """(line number, source) of the failing line or an earlier one of the same student function that reduces over dim
    0 (argmax(dim=0), sum(0)...), the nearest first; None if none."""
    return _nearest_student_line(exc, lambda code: bool(_OVER_DIM_0.search(code)))


_TILE_SLICE = re.compile(r"\b([ij])0\s*:\s*\1\s*0?\s*\+\s*(block_[qk])\b")  # i0:i0 + block_q, j0:j0 + block_k
_SLICED = re.compile(r"\b([A-Za-z_]\w*)\s*\[([^\[\]]*\b[ij]0\s*:[^\[\]]*)\]")  # name[..., i0:i0 + block_q, None]
_PER_KEY = {"k", "v", "dk", "dv", "key", "keys", "value", "values"}  # the other tiled tensors are kept per query


def _sliced_axis(index: str, start: str) -> int | None:
    """The dimension that `index` (the text inside [...]) cuts with the {start}0 slice, counted from the end when it
    holds `...`, else from the front; None when it cannot tell."""
    parts = [part.strip() for part in index.split(",")]
    at = next((n for n, part in enumerate(parts) if re.match(rf"{start}0\s*:", part)), None)
    if at is None:
        return None
    real = [n for n, part in enumerate(parts) if part != "None"]  # None adds a dimension, not one of the tensor's
    if "..." in parts:
        return -len([n for n in real if n > at]) - 1
    return len([n for n in real if n < at])


def _built_with_the_wrong_length(sliced: list[tuple[str, str]], exc: BaseException | None) -> str | None:
    """A tensor sliced with i0 (j0) on the failing line (`sliced`: its (name, index text) pairs) whose length there is
    not the number of queries (keys), from the failing frame's values: it was built with the wrong shape earlier (a sum
    over another dim, say)."""
    entry = _student_traceback(exc)
    student = entry.tb_frame if entry is not None else None
    values = student.f_locals if student is not None else {}
    arguments = student.f_code.co_varnames[:student.f_code.co_argcount] if student is not None else ()
    lengths = {}
    for start, name in (("i", "q"), ("j", "k")):
        tensor = values.get(name)
        if name in arguments and getattr(tensor, "dim", lambda: 0)() >= 2:  # the function's own q and k
            lengths[start] = tensor.shape[-2]
    for name, index in sliced:
        tensor = values.get(name)
        for start in ("i", "j"):
            axis = _sliced_axis(index, start)
            if axis is None or start not in lengths or not hasattr(tensor, "shape"):
                continue
            if -tensor.dim() <= axis < tensor.dim() and tensor.shape[axis] != lengths[start]:
                who, of = ("query", "q") if start == "i" else ("key", "k")
                built = _nearest_student_line(exc, lambda code, n=name: bool(re.match(rf"{n}\s*=[^=]", code)),
                                              from_failing_line=False)
                pointer = f"line {built[0]} ({built[1]})" if built else f"where {name} is computed"
                return (f"{name} has shape {tuple(tensor.shape)}: it is sliced with {start}0 along dim {axis}, where "
                        f"it should hold one entry per {who} ({of}.shape[-2] = {lengths[start]}), but it holds "
                        f"{tensor.shape[axis]}: the slices on this line are right, {name} itself was built with "
                        f"another shape: look at {pointer} (which dimension it reduces or keeps)")
    return None


def tile_slice_cause(line: str, exc: BaseException | None = None) -> str | None:
    """For a shape error on a line that cuts tiles (x[..., i0:i0 + block_q, :]): a slice whose start and length belong
    to different axes, a sliced tensor built with the wrong length, or else how a tile's rows and columns are indexed;
    None on other lines."""
    code = line.split("#")[0]
    slices = _TILE_SLICE.findall(code)
    if not slices:
        return None
    sliced_names = _SLICED.findall(code)  # (name, index text) of each tensor sliced on the line
    for start, block in slices:
        if (start, block) in (("i", "block_k"), ("j", "block_q")):
            sliced = next((name for name, index in sliced_names
                           if re.search(rf"\b{start}0\s*:\s*{start}0\s*\+\s*{block}\b", index)), None)
            mixed = (f"the slice {start}0:{start}0 + {block} starts at a {'query' if start == 'i' else 'key'} "
                     f"position but is as long as a {'key' if start == 'i' else 'query'} block")
            if sliced:
                per_key = sliced in _PER_KEY
                kind, right = ("key", "j0:j0 + block_k") if per_key else ("query", "i0:i0 + block_q")
                if (start == "j") != per_key:  # the start is the wrong one: the tensor is kept along the other axis
                    return (f"{sliced} holds one entry per {kind.upper()}, so its slice is {right}; this one starts "
                            f"at {start}0, the block's first {'key' if start == 'j' else 'query'} position (the "
                            "two block sizes differ in the tests)")
                return f"{mixed}: {sliced} holds one entry per {kind}, so its slice is {right} (the two block sizes " \
                       "differ in the tests)"
            return (f"{mixed}: a tensor kept per query (q, the output, lse, m, l, D) is sliced with i0:i0 + block_q, "
                    "one kept per key (k, v, dk, dv) with j0:j0 + block_k (the two block sizes differ in the tests)")
    built = _built_with_the_wrong_length(sliced_names, exc)
    if built:
        return built
    return ("a tile of scores has one row per query of the block (i0:i0 + block_q) and one column per key "
            "(j0:j0 + block_k): a quantity kept per QUERY (q, the output, lse, m, l, D) is sliced with i0 and enters "
            "the tile as a column, [..., None]; one kept per KEY (k, v, dk, dv) is sliced with j0: check which each "
            "slice on this line is, and print the .shape of the tensors that meet here")


_SLICE_ASSIGNED = ("the value written into the slice on the left of `=` has another size than that slice (the error "
                   "gives both: the slice's, then the value's): check the slice's bounds, which a tensor cuts short "
                   "at its end (the last block of a length that is not a multiple of the block is shorter), and "
                   "the size of the value you compute for it")


def _assigns_into_a_slice(line: str) -> bool:
    """`out[..., a:b, :] = value` or `x[i] += value`: torch expands the value to the slice's shape."""
    return bool(re.search(r"\]\s*([-+*/]?=)(?!=)", line))


_SIZES_DIFFER = re.compile(r"The expanded size of the tensor|The size of tensor a")
_BLOCK_RANGE = re.compile(r"arange\([^)]*\bblock_\w+")  # positions counted with a block size


def range_of_a_block(exc: BaseException) -> tuple[int, str] | None:
    """(line number, source) of the failing line, or an earlier line of the same student function, that counts
    positions with a block size (torch.arange(i0, i0 + block_q)); None if none."""
    return _nearest_student_line(exc, lambda code: bool(_BLOCK_RANGE.search(code)))


def explain_error(exc: BaseException, name: str) -> str:
    """The message a student reads for an exception raised inside their function `name`."""
    where = student_line(exc)
    text_lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    first = text_lines[0] if text_lines else ""
    if first.startswith("Error(s) in loading state_dict") and len(text_lines) > 1:
        first += " " + text_lines[1]   # which part: "size mismatch for mlp.c_fc.weight: ..."
    raw = f"{type(exc).__name__}: {first[:300]}"
    cause = cause_of(exc, where[2] if where else "")
    block = range_of_a_block(exc) if _SIZES_DIFFER.search(str(exc)) else None
    if block:
        cause = (f"line {block[0]} ({block[1]}) counts positions with the block size, but the last block is "
                 "shorter when the length is not a multiple of the block, so the mask built from it no longer fits "
                 "the tile: size the mask's rows and columns from the tile itself (s.shape[-2], s.shape[-1]), not "
                 "from block_q or block_k")
    tile = tile_slice_cause(where[2], exc) if where and cause and cause.startswith(_GENERIC_SHAPE) else None
    if tile:
        cause = tile
    dropped = earlier_dropped_dim(exc) if cause and cause.startswith(_GENERIC_SHAPE) else None
    if dropped and _reduction_without_keepdim(dropped[1].split("#")[0]) and not _reduces_a_leading_dim(dropped[1]):
        cause = (f"line {dropped[0]} ({dropped[1]}) reduces without `keepdim=True`, which removes a dimension (the "
                 "reduced one), so its result no longer lines up with the tensor it meets here: add keepdim=True "
                 "there; otherwise print the .shape of the tensors that meet on this line")
    elif dropped:
        cause += (f"; look at line {dropped[0]}, which removes a dimension: {dropped[1]} (an integer index such as "
                  "[..., -1], or a reduction without keepdim=True): check that it works on the dimension you mean "
                  "(dim=-1 is the last one) and, if its result is combined with a tensor that still has that "
                  "dimension, keep it ([..., -1:], keepdim=True)")
    elif cause and cause.startswith(_GENERIC_SHAPE) and where and _masks(where[2]):
        cause = _MASK_CAUSE  # no earlier line removed a dimension: the mask was built with other sizes
    first_dim = size_from_dim_0(exc) if not dropped and cause and cause.startswith(_GENERIC_SHAPE) else None
    if first_dim:
        cause = (f"line {first_dim[0]} ({first_dim[1]}) takes a size from dim 0, the FIRST dimension, which is "
                 f"{first_dim[2]} here, one of the two sizes that do not fit: with leading dimensions in front (a "
                 "batch, heads) dim 0 is not the sequence or the channels; count from the end (x.shape[-2], "
                 "x.shape[-1]) so the code works for any number of leading dimensions")
    over_rows = earlier_reduction_over_dim_0(exc) if cause and re.search(
        r"must match|Sizes of tensors|shapes cannot be multiplied|expanded size", str(exc)) else None
    if over_rows:
        pointer = (f"look at line {over_rows[0]} ({over_rows[1]}): it works over dim 0, the FIRST dimension (for a "
                   "(B, V) tensor, across the batch), so its result has one entry per column, not one per row: check "
                   "that dim 0 is the one you mean (a result per row works over the LAST dimension, dim=-1)")
        joined = re.search(r"Sizes of tensors must match except", str(exc))  # torch.cat's advice would mislead here
        cause = f"tensors whose sizes do not fit meet here; {pointer}" if joined else f"{cause}; {pointer}"
    split = _nearest_student_line(exc, lambda code: "divmod(" in code) if isinstance(exc, IndexError) else None
    if split:
        cause = (f"{cause}; " if cause else "") + (
            f"look at line {split[0]} ({split[1]}): divmod(n, V) returns (n // V, n % V), the quotient FIRST, so for "
            "a flat index into a (rows, V) table, divided by V (the length of a row, not the number of rows), it gives "
            "(row, column): check the divisor and the order you unpack them in")
    head = f"{name} raised {raw}"
    if where:
        head += f"\n  at line {where[1]} of {where[0]}: {where[2]}"
    return head + (f"\n  What to change: {cause}" if cause else "")


_TRANSPORT = re.compile(r"Connection closed by peer|Connection reset|Broken pipe|Timed out|timed out|"
                        r"Socket Timeout|no error \(from the remote")


def secondhand(trace: str) -> bool:
    """Whether a traceback text from another process is only the echo of a peer that failed first (gloo's closed
    connection, a timeout waiting for it), not the error that started it."""
    lines = trace.strip().splitlines()
    return not lines or bool(_TRANSPORT.search(lines[-1]))  # no traceback: it was stopped, it did not fail first


def explain_trace(trace: str, name: str) -> str:
    """The message for an error raised in another process (a rank), given its formatted traceback as text: the
    error, the line of the student's code it came from, and what to change where the cause is known."""
    lines = trace.strip().splitlines()
    raw = lines[-1].strip() if lines else "(no traceback)"
    where = None
    for index, text in enumerate(lines):
        found = re.match(r'\s*File "([^"]+)", line (\d+), in (\S+)', text)
        if found and _is_student_frame(found.group(1)):
            source = lines[index + 1].strip() if index + 1 < len(lines) else ""
            where = (found.group(3), int(found.group(2)), source)
    kind, _, message = raw.partition(": ")
    cause = cause_of(RuntimeError(raw), where[2] if where else "")
    if secondhand(trace):  # every rank only lost its peer: the ranks did not make the same collective calls
        cause = ("the ranks lost each other in the middle of a collective call: one rank called a collective "
                 "(broadcast, all_reduce, barrier) that another did not, or called it a different number of times; "
                 "every rank must make the same collective calls in the same order (look for one under "
                 "`if rank == ...`, or in a loop whose length differs between the ranks), with the same src or dst "
                 "on every rank (every rank calls broadcast(p, src=owner) with the same owner, the sender and the "
                 "receivers alike: with src=rank each rank sends and none receives)")
    head = f"{name} raised {raw[:300]}" if message else f"{name} failed: {raw[:300]}"
    if where:
        head += f"\n  at line {where[1]} of {where[0]}: {where[2]}"
    return head + (f"\n  What to change: {cause}" if cause else "")


def call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """fn(*args, **kwargs); an exception inside it becomes an AssertionError that explains it.

    AssertionError (a test's own), NotImplementedError (an exercise not written yet) and KeyboardInterrupt
    pass through unchanged; torch's NotImplementedError for a dtype ("... not implemented for 'Float'") is explained.
    """
    name = getattr(fn, "__name__", "your function")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        if "not implemented for '" not in str(exc):  # torch's missing kernel for a dtype is an error of the code
            raise
        raise AssertionError(explain_error(exc, name)) from None
    except (AssertionError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 (every error of student code is explained, none is hidden)
        message = explain_error(exc, name)
        if _GENERIC_SHAPE in message:  # no cause is known: the shapes it was given, to compare with the error's
            message += _given(fn, args, kwargs)
        raise AssertionError(message) from None


def _arguments(fn: Callable, args: tuple, kwargs: dict) -> dict:
    """Every argument of the call by name, defaults included (a size may come from a default such as block_q)."""
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)
    except (TypeError, ValueError):
        return {**{f"argument {i + 1}": a for i, a in enumerate(args)}, **kwargs}


def _given(fn: Callable, args: tuple, kwargs: dict) -> str:
    """'\n  It was given: x (2, 6, 8) float64, positions None' : the shapes behind the sizes in a shape error."""
    bound = _arguments(fn, args, kwargs)
    parts = []
    for key, value in bound.items():
        if isinstance(value, torch.Tensor):
            parts.append(f"{key} {tuple(value.shape)} {str(value.dtype).replace('torch.', '')}")
        elif value is None or isinstance(value, (bool, int, float)):
            parts.append(f"{key} {value!r}")
    if not parts:
        return ""
    return "\n  It was given: " + ", ".join(parts[:8])


# ---------------------------------------------------------------- which known mistake it is


def _quiet(answer: Callable, kwargs: dict) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return answer(**copy.deepcopy(kwargs))


NAMED = "\n  Your answer is exactly what you get when you "  # what precedes a named mistake in every message


def which_mistake(got: Any, mistakes: tuple[Mistake, ...] | list[Mistake], kwargs: dict,
                  expected: Any = None, compare: Callable[[Any, Any], str | None] | None = None) -> str:
    """' (this is what happens when <says>)' for the first mistake whose answer on `kwargs` equals `got`
    and differs from `expected`; '' when none does (then no cause is named)."""
    same = compare or (lambda a, b: difference(a, b))
    for mistake in mistakes:
        try:
            theirs = _quiet(mistake.answer, kwargs)
        except Exception:  # noqa: BLE001 (a mistake that cannot run on these inputs says nothing)
            continue
        try:
            if expected is not None and same(theirs, expected) is None:
                continue  # on these inputs the mistake gives the right answer: it explains nothing
            if same(got, theirs) is None:
                return f"{NAMED}{mistake.says}"
        except Exception:  # noqa: BLE001
            continue
    return ""


def expect(got: Any, expected: Any, what: str = "output", *, mistakes: tuple[Mistake, ...] = (),
           kwargs: dict | None = None, rtol: float | None = None, atol: float | None = None) -> None:
    """Raise an AssertionError saying what is wrong (and which known mistake it is) unless got matches expected."""
    message = difference(got, expected, what, rtol, atol)
    if message:
        if mistakes and kwargs is not None:
            message += which_mistake(got, mistakes, kwargs, expected,
                                     lambda a, b: difference(a, b, what, rtol, atol))
        raise AssertionError(message)


__all__ = ["Mistake", "call", "cause_of", "explain_error", "explain_trace", "expect", "secondhand", "student_line",
           "which_mistake"]
