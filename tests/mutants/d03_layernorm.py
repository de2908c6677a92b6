"""Planted mistakes for 03_layernorm."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(cell="layer_norm", old="var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)",
           new="var = x.var(dim=-1, keepdim=True)",
           fails={"test_layer_norm"}, why="unbiased variance (divides by d - 1)", hint="your variance is unbiased"),
    Mutant(cell="layer_norm", old="torch.sqrt(var + eps)", new="torch.sqrt(var)",
           fails={"test_layer_norm"}, why="forgot eps", hint="you forgot eps"),
    Mutant(cell="layer_norm", old="mean = x.mean(dim=-1, keepdim=True)", new="mean = x.mean(dim=0, keepdim=True)",
           fails={"test_layer_norm"}, why="takes the mean over the batch dimension", hint="normalize over the last dimension"),
    Mutant(cell="layer_norm_backward", old="h - h.mean(dim=-1, keepdim=True) - x_hat", new="h - x_hat",
           fails={"test_layer_norm_backward"}, why="drops the gradient that flows through the mean", hint="the term that comes through the mean"),
    Mutant(cell="layer_norm_backward", old="x_hat * (h * x_hat).mean(dim=-1, keepdim=True)",
           new="x_hat * h.mean(dim=-1, keepdim=True)",
           fails={"test_layer_norm_backward"}, why="wrong term through the variance", hint="check the term through the variance"),
    Mutant(cell="layer_norm_backward", old="grad_weight = (grad_out * x_hat).sum(dim=leading)",
           new="grad_weight = (grad_out * x_hat).sum(dim=0)",
           fails={"test_layer_norm_backward"}, why="sums grad_weight over the first dimension only", hint="sum over all leading dimensions"),
    Mutant(cell="rms_norm", old="(x ** 2).mean(dim=-1, keepdim=True) + eps", new="(x ** 2).mean(dim=-1, keepdim=True)",
           fails={"test_rms_norm"}, why="forgot eps", hint="you forgot eps"),
    Mutant(cell="rms_norm", old="y = x / torch.sqrt(", new="y = (x - x.mean(dim=-1, keepdim=True)) / torch.sqrt(",
           fails={"test_rms_norm"}, why="centres x as layer norm does", hint="divide by sqrt(mean(x**2))"),
    Mutant(cell="layer_norm", old="torch.sqrt(var + eps)", new="(torch.sqrt(var) + eps)",
           fails={"test_layer_norm"}, why="eps outside the square root", hint="eps goes inside the square root"),
    Mutant(cell="layer_norm_backward", old="h = grad_out * weight", new="h = grad_out",
           fails={"test_layer_norm_backward"}, why="forgets gamma in the gradient through x_hat",
           hint="grad_x ignores weight"),
]
