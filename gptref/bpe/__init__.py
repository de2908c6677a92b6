"""Old import path of gptref.tokenizers.bpe, kept until notebooks/ and gptref/grading/ import the new one.

The submodules are the same module objects (`gptref.bpe.train is gptref.tokenizers.bpe.train`), so
functions compared by identity (an exercise's forbidden list) are the same either way.
"""

import sys

from gptref.tokenizers.bpe import GPT2_SPLIT_PATTERN, Tokenizer, pretokenize, tokenizer, train, train_bpe

for _module in (pretokenize, tokenizer, train):
    sys.modules[f"{__name__}.{_module.__name__.rsplit('.', 1)[1]}"] = _module

__all__ = ["GPT2_SPLIT_PATTERN", "Tokenizer", "train_bpe"]
