"""Planted mistakes for 03_layernorm."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(
        cell="layer_norm",
        old="var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)",
        new="var = x.var(dim=-1, keepdim=True)",
        fails={"test_layer_norm"},
        why="unbiased variance (divides by d - 1)",
        hint="your variance is unbiased",
    ),
    Mutant(
        cell="layer_norm",
        old="torch.sqrt(var + eps)",
        new="torch.sqrt(var)",
        fails={"test_layer_norm"},
        why="forgot eps",
        hint="you forgot eps",
    ),
    Mutant(
        cell="layer_norm",
        old="mean = x.mean(dim=-1, keepdim=True)",
        new="mean = x.mean(dim=0, keepdim=True)",
        fails={"test_layer_norm"},
        why="takes the mean over the batch dimension",
        hint="normalize over the last dimension",
    ),
    Mutant(
        cell="layer_norm_backward",
        old="h - h.mean(dim=-1, keepdim=True) - x_hat",
        new="h - x_hat",
        fails={"test_layer_norm_backward"},
        why="drops the gradient that flows through the mean",
        hint="the term that comes through the mean",
    ),
    Mutant(
        cell="layer_norm_backward",
        old="x_hat * (h * x_hat).mean(dim=-1, keepdim=True)",
        new="x_hat * h.mean(dim=-1, keepdim=True)",
        fails={"test_layer_norm_backward"},
        why="wrong term through the variance",
        hint="check the term through the variance",
    ),
    Mutant(
        cell="layer_norm_backward",
        old="grad_weight = (grad_out * x_hat).sum(dim=leading)",
        new="grad_weight = (grad_out * x_hat).sum(dim=0)",
        fails={"test_layer_norm_backward"},
        why="sums grad_weight over the first dimension only",
        hint="sum over all leading dimensions",
    ),
    Mutant(
        cell="rms_norm",
        old="(x ** 2).mean(dim=-1, keepdim=True) + eps",
        new="(x ** 2).mean(dim=-1, keepdim=True)",
        fails={"test_rms_norm"},
        why="forgot eps",
        hint="you forgot eps",
    ),
    Mutant(
        cell="rms_norm",
        old="y = x / torch.sqrt(",
        new="y = (x - x.mean(dim=-1, keepdim=True)) / torch.sqrt(",
        fails={"test_rms_norm"},
        why="centres x as layer norm does",
        hint="divide by sqrt(mean(x**2))",
    ),
    Mutant(
        cell="layer_norm",
        old="torch.sqrt(var + eps)",
        new="(torch.sqrt(var) + eps)",
        fails={"test_layer_norm"},
        why="eps outside the square root",
        hint="eps goes inside the square root",
    ),
    Mutant(
        cell="layer_norm_backward",
        old="h = grad_out * weight",
        new="h = grad_out",
        fails={"test_layer_norm_backward"},
        why="forgets gamma in the gradient through x_hat",
        hint="grad_x ignores weight",
    ),
    # mistakes students make that the ladder must name (gptref/grading/mistakes/d03_layernorm.py)
    Mutant(
        cell="layer_norm",
        old="y = (x - mean) / torch.sqrt(var + eps)",
        new="y = x / torch.sqrt(var + eps)",
        fails={"test_layer_norm"},
        why="divides by the standard deviation without centring",
        hint="without subtracting the row's mean",
    ),
    Mutant(
        cell="layer_norm",
        old="    if weight is not None:\n        y = y * weight\n    if bias is not None:\n        y = y + bias\n",
        new="    if bias is not None:\n        y = y + bias\n    if weight is not None:\n        y = y * weight\n",
        fails={"test_layer_norm"},
        why="adds bias before multiplying by weight",
        hint="add bias before multiplying by weight",
    ),
    Mutant(
        cell="layer_norm_backward",
        old="grad_x = r * (h",
        new="grad_x = (h",
        fails={"test_layer_norm_backward"},
        why="forgets the factor r = 1/sqrt(var + eps) in grad_x",
        hint="leave out the factor r",
    ),
    Mutant(
        cell="layer_norm_backward",
        old="grad_weight = (grad_out * x_hat)",
        new="grad_weight = (grad_out * x)",
        fails={"test_layer_norm_backward"},
        why="grad_weight from x instead of x_hat",
        hint="multiply grad_out by x instead of x_hat",
    ),
    Mutant(
        cell="rms_norm",
        old="y = x / torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps)",
        new="y = x / ((x ** 2).mean(dim=-1, keepdim=True) + eps)",
        fails={"test_rms_norm"},
        why="divides by the mean square without its square root",
        hint="divide by the mean square itself",
    ),
    Mutant(
        cell="rms_norm",
        old="(x ** 2).mean(dim=-1, keepdim=True) + eps)",
        new="x.var(dim=-1, keepdim=True, unbiased=False) + eps)",
        fails={"test_rms_norm"},
        why="divides by the standard deviation instead of the root mean square",
        hint="divide by the standard deviation",
    ),
    # issue 23: wrong answers written as a new student, before reading the mistakes (each names its mistake)
    Mutant(
        cell="layer_norm",
        old="if weight is not None:",
        new="if weight:",
        fails={"test_layer_norm"},
        why="tests the weight tensor's truth value",
        hint="test `if t is not None:`",
    ),
    Mutant(
        cell="layer_norm",
        old="y = (x - mean) / torch.sqrt(var + eps)",
        new="y = x.sub_(mean).div_(torch.sqrt(var + eps))",
        fails={"test_layer_norm"},
        why="normalizes x in place",
        hint="changed its argument 'x' in place",
    ),
    Mutant(
        cell="layer_norm",
        old="mean = x.mean(dim=-1, keepdim=True)                   # (..., 1)\n"
        "    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)",
        new="mean = x.mean()\n    var = ((x - mean) ** 2).mean()",
        fails={"test_layer_norm"},
        why="one mean and variance over the whole tensor",
        hint="one mean and one variance over the whole tensor",
    ),
    Mutant(
        cell="layer_norm",
        old="mean = x.mean(dim=-1, keepdim=True)                   # (..., 1)",
        new="x = x.double()\n    mean = x.mean(dim=-1, keepdim=True)",
        fails={"test_layer_norm"},
        why="computes and returns float64 for a float32 input",
        hint="keep x's dtype",
    ),
    Mutant(
        cell="layer_norm_backward",
        old="+ eps)",
        new=")",
        fails={"test_layer_norm_backward"},
        why="leaves eps out of r in the backward pass",
        hint="leave eps out of r in the backward pass",
    ),
    Mutant(
        cell="layer_norm_backward",
        old="((x - mean) ** 2).mean(dim=-1, keepdim=True)",
        new="x.var(dim=-1, keepdim=True)",
        fails={"test_layer_norm_backward"},
        why="unbiased variance in the backward pass",
        hint="(torch.var's default) in the backward pass",
    ),
    Mutant(
        cell="layer_norm_backward",
        old="- x_hat * (h * x_hat)",
        new="+ x_hat * (h * x_hat)",
        fails={"test_layer_norm_backward"},
        why="adds the term through the variance",
        hint="ADD the term through the variance",
    ),
    Mutant(
        cell="rms_norm",
        old="(x ** 2).mean(dim=-1, keepdim=True)",
        new="(x ** 2).sum(dim=-1, keepdim=True)",
        fails={"test_rms_norm"},
        why="the sum of squares instead of their mean",
        hint="divide by the root of the SUM of squares",
    ),
    Mutant(
        cell="rms_norm",
        old="(x ** 2).mean(dim=-1, keepdim=True)",
        new="(x ** 2).mean()",
        fails={"test_rms_norm"},
        why="one mean square for the whole tensor",
        hint="take one mean square over the whole tensor",
    ),
    # issue 23, second set (written after the fixes, then each fixed to name its mistake)
    Mutant(
        cell="layer_norm",
        old="    if weight is not None:\n        y = y * weight\n    if bias is not None:\n        y = y + bias\n",
        new="    if weight is not None and bias is not None:\n        y = y * weight + bias\n",
        fails={"test_layer_norm"},
        why="applies weight and bias only when both are given",
        hint="apply each one that is given",
    ),
    Mutant(
        cell="layer_norm_backward",
        old="h - h.mean(dim=-1, keepdim=True)",
        new="h - h.sum(dim=-1, keepdim=True)",
        fails={"test_layer_norm_backward"},
        why="h.sum where the formula has h.mean",
        hint="subtract h.sum(-1)",
    ),
    Mutant(
        cell="rms_norm",
        old="    y = x / torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps)  # (..., d)\n"
        "    return y if weight is None else y * weight",
        new="    if weight is not None:\n        x = x * weight\n"
        "    return x / torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps)",
        fails={"test_rms_norm"},
        why="multiplies by weight before normalizing",
        hint="multiply x by weight before normalizing",
    ),
    Mutant(
        cell="layer_norm",
        old="mean = x.mean(dim=-1, keepdim=True) ",
        new="mean = x.mean(dim=-1) ",
        fails={"test_layer_norm"},
        why="the mean without keepdim",
        hint="reduces without `keepdim=True`",
    ),
    Mutant(cell="rms_norm", old="return y if weight is None else y * weight",
           new="return y if weight is None else y + weight", fails={"test_rms_norm"},
           why="issue 23 fresh set 3: weight added, not multiplied (unnamed before)",
           hint="add weight to the normalized x"),
]

# Issue 23, fresh set 6: a one-pass variance (cancels on float32 rows far from 0), grad_bias averaged, and RMSNorm's
# eps outside the root.
MUTANTS += [
    Mutant("layer_norm", old="var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)",
           new="var = (x ** 2).mean(dim=-1, keepdim=True) - mean ** 2",
           fails={"test_layer_norm"}, why="one-pass variance E[x^2] - E[x]^2",
           hint="compute the variance in one pass"),
    Mutant("layer_norm_backward", old="grad_bias = grad_out.sum(dim=leading)",
           new="grad_bias = grad_out.mean(dim=leading)",
           fails={"test_layer_norm_backward"}, why="grad_bias averaged over the rows",
           hint="average grad_bias over the rows"),
    Mutant("rms_norm", old="torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps)",
           new="(torch.sqrt((x ** 2).mean(dim=-1, keepdim=True)) + eps)",
           fails={"test_rms_norm"}, why="eps outside the root in RMSNorm",
           hint="put eps outside the square root, sqrt(mean(x**2)) + eps"),
]

# Issue 23, fresh set 7: RMSNorm through x.norm.
MUTANTS += [
    Mutant("rms_norm", old="torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps)",
           new="(x.norm(dim=-1, keepdim=True) + eps)",
           fails={"test_rms_norm"}, why="x.norm (the root of the sum of squares) plus eps",
           hint="divide by x.norm(dim=-1) + eps"),
]

# Issue 23, fresh set 9: the term through the variance left out, weight inside grad_weight, RMSNorm's weight unused.
MUTANTS += [
    Mutant("layer_norm_backward", old=" - x_hat * (h * x_hat).mean(dim=-1, keepdim=True))", new=")",
           fails={"test_layer_norm_backward"}, why="grad_x without the term through the variance (A-03-11)",
           hint="leave out the term that comes through the variance"),
    Mutant("layer_norm_backward", old="grad_weight = (grad_out * x_hat).sum(dim=leading)",
           new="grad_weight = (h * x_hat).sum(dim=leading)",
           fails={"test_layer_norm_backward"}, why="weight inside its own gradient (A-03-12)",
           hint="use h = grad_out * weight in grad_weight"),
    Mutant("rms_norm", old="return y if weight is None else y * weight", new="return y",
           fails={"test_rms_norm"}, why="weight never applied (A-03-22)",
           hint="leave weight out: when weight is given"),
]

# Issue 23, fresh set 10: the bias skipped when a weight is given (an elif).
MUTANTS += [
    Mutant("layer_norm", old="    if bias is not None:", new="    elif bias is not None:",
           fails={"test_layer_norm"}, why="bias skipped when weight is given (C-03-5)",
           hint="skip the bias when a weight is given"),
]
