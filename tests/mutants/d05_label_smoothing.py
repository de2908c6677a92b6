"""Planted mistakes for 05_label_smoothing."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(cell="smoothed_targets", old="+ smoothing / n_classes", new="+ smoothing / (n_classes - 1)",
           fails={"test_smoothed_targets"}, why="spreads eps over C - 1 classes (not torch's convention)"),
    Mutant(cell="smoothed_targets", old=".to(torch.float32)", new=".to(torch.float64)",
           fails={"test_smoothed_targets"}, why="returns float64"),
    Mutant(cell="smoothed_cross_entropy", old="logp = logits.log_softmax(dim=-1)", new="logp = logits.log_softmax(dim=0)",
           fails={"test_smoothed_cross_entropy"}, why="softmax over the wrong dimension"),
    Mutant(cell="smoothed_cross_entropy", old="return per_row.sum() / keep.sum()", new="return per_row.mean()",
           fails={"test_smoothed_cross_entropy"}, why="averages over the ignored rows too"),
    Mutant(cell="smoothed_cross_entropy", old="logp = logits.log_softmax(dim=-1)", new="logp = logits.softmax(dim=-1).log()",
           fails={"test_smoothed_cross_entropy"}, why="log of softmax underflows to -inf for large logits"),
    Mutant(cell="smoothed_kl", old="torch.xlogy(q, q)", new="q * q.log()",
           fails={"test_smoothed_kl"}, why="0 * log 0 gives NaN when smoothing is 0"),
    Mutant(cell="smoothed_kl", old=".sum(dim=-1).mean()", new=".mean()",
           fails={"test_smoothed_kl"}, why="averages over classes as well as rows (not batchmean)"),
]
