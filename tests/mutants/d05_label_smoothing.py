"""Planted mistakes for 05_label_smoothing."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(cell="smoothed_targets", old="+ smoothing / n_classes", new="+ smoothing / (n_classes - 1)",
           fails={"test_smoothed_targets"}, why="spreads eps over C - 1 classes (not torch's convention)", hint="you spread eps over the C - 1 wrong classes"),
    Mutant(cell="smoothed_targets", old=".to(torch.float32)", new=".to(torch.float64)",
           fails={"test_smoothed_targets"}, why="returns float64", hint="return float32"),
    Mutant(cell="smoothed_cross_entropy", old="logp = logits.log_softmax(dim=-1)", new="logp = logits.log_softmax(dim=0)",
           fails={"test_smoothed_cross_entropy"}, why="softmax over the wrong dimension", hint="your softmax is over the wrong dimension"),
    Mutant(cell="smoothed_cross_entropy", old="return per_row.sum() / keep.sum()", new="return per_row.mean()",
           fails={"test_smoothed_cross_entropy"}, why="averages over the ignored rows too", hint="average over the rows that are NOT ignored"),
    Mutant(cell="smoothed_cross_entropy", old="logp = logits.log_softmax(dim=-1)", new="logp = logits.softmax(dim=-1).log()",
           fails={"test_smoothed_cross_entropy"}, why="log of softmax underflows to -inf for large logits", hint="use log_softmax, not softmax(...).log()"),
    Mutant(cell="smoothed_kl", old="torch.xlogy(q, q)", new="q * q.log()",
           fails={"test_smoothed_kl"}, why="0 * log 0 gives NaN when smoothing is 0", hint="0 * log 0 must count as 0"),
    Mutant(cell="smoothed_kl", old=".sum(dim=-1).mean()", new=".mean()",
           fails={"test_smoothed_kl"}, why="averages over classes as well as rows (not batchmean)", hint="you averaged over the classes too"),
    Mutant(cell="smoothed_cross_entropy", old="to_uniform = -logp.mean(dim=-1)",
           new="to_uniform = (-logp.sum(dim=-1) - nll) / (logits.shape[-1] - 1)",
           fails={"test_smoothed_cross_entropy"}, why="spreads eps over the C - 1 other classes (eps / (C - 1))",
           hint="you spread eps over the C - 1 other classes"),
]
