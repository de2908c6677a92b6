"""Planted mistakes for 03_layernorm."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(cell="layer_norm", old="var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)",
           new="var = x.var(dim=-1, keepdim=True)",
           fails={"test_layer_norm"}, why="unbiased variance (divides by d - 1)"),
    Mutant(cell="layer_norm", old="torch.sqrt(var + eps)", new="torch.sqrt(var)",
           fails={"test_layer_norm"}, why="forgot eps"),
    Mutant(cell="layer_norm", old="mean = x.mean(dim=-1, keepdim=True)", new="mean = x.mean(dim=0, keepdim=True)",
           fails={"test_layer_norm"}, why="takes the mean over the batch dimension"),
    Mutant(cell="layer_norm_backward", old="h - h.mean(dim=-1, keepdim=True) - x_hat", new="h - x_hat",
           fails={"test_layer_norm_backward"}, why="drops the gradient that flows through the mean"),
    Mutant(cell="layer_norm_backward", old="x_hat * (h * x_hat).mean(dim=-1, keepdim=True)",
           new="x_hat * h.mean(dim=-1, keepdim=True)",
           fails={"test_layer_norm_backward"}, why="wrong term through the variance"),
    Mutant(cell="layer_norm_backward", old="grad_weight = (grad_out * x_hat).sum(dim=leading)",
           new="grad_weight = (grad_out * x_hat).sum(dim=0)",
           fails={"test_layer_norm_backward"}, why="sums grad_weight over the first dimension only"),
    Mutant(cell="rms_norm", old="(x ** 2).mean(dim=-1, keepdim=True) + eps", new="(x ** 2).mean(dim=-1, keepdim=True)",
           fails={"test_rms_norm"}, why="forgot eps"),
    Mutant(cell="rms_norm", old="y = x / torch.sqrt(", new="y = (x - x.mean(dim=-1, keepdim=True)) / torch.sqrt(",
           fails={"test_rms_norm"}, why="centres x as layer norm does"),
]
