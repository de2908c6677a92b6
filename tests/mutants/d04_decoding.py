"""Planted mistakes for 04_decoding."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(cell="apply_temperature", old="return logits / temperature", new="return logits * temperature",
           fails={"test_apply_temperature"}, why="multiplies the logits by the temperature", hint="temperature must divide the logits, not multiply"),
    Mutant(cell="top_k_filter", old="logits < kth", new="logits <= kth",
           fails={"test_top_k_filter"}, why="removes the k-th largest logit too (keeps k - 1)", hint="is the k-th largest itself kept?"),
    Mutant(cell="top_p_filter", old="mass_above = torch.cumsum(probs, dim=-1) - probs",
           new="mass_above = torch.cumsum(probs, dim=-1)",
           fails={"test_top_p_filter"}, why="counts a token's own probability: drops the token that crosses p", hint="the top token alone (0.9) reaches p=0.6, so only it is kept"),
    Mutant(cell="greedy", old="logits = model(seq)[:, -1, :]", new="logits = model(seq)[:, 0, :]",
           fails={"test_greedy"}, why="reads the logits of the first position instead of the last", hint="use the logits of the LAST position"),
    Mutant(cell="greedy", old="token = token.masked_fill(done, eos_id)", new="pass",
           fails={"test_greedy"}, why="keeps generating after eos instead of padding finished rows", hint="pad it with eos_id"),
    Mutant(cell="beam_search", old="if len(rows) == beam_size:", new="if len(rows) == beam_size * beam_size:",
           fails={"test_beam_search"}, why="keeps K^2 live hypotheses instead of the best K", hint="your beam keeps K^2 candidates"),
    Mutant(cell="beam_search", old="return total / n ** length_penalty", new="return total / n",
           fails={"test_beam_search"}, why="ignores the length penalty exponent", hint="divide the summed log-probs by length ** length_penalty"),
    Mutant(cell="beam_search", old="generated = seqs[row, prompt_len:].tolist() + [token]",
           new="generated = seqs[row, prompt_len:].tolist()",
           fails={"test_beam_search"}, why="drops the eos token from finished hypotheses (and from their length)", hint="a hypothesis that produced eos_id is finished"),
]
