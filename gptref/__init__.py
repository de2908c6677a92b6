"""gptref: clean, tested reference implementations of every piece of a GPT.

Submodules (import the one you need): data, tokenizers (char, bpe, sentencepiece), attention, norms, positions,
losses, mlp, heads, decoding, flash, gpt, bert, train, grading. See docs/api.md for the contract.
"""

__version__ = "0.1.0"
