"""gptref.tokenizers.bpe: byte-level BPE as GPT-2 does it (train, encode, decode, save, load).

Layered like minbpe: pretokenize.py (the split regex), train.py (learning merges),
tokenizer.py (applying them).
"""

from gptref.tokenizers.bpe.pretokenize import GPT2_SPLIT_PATTERN
from gptref.tokenizers.bpe.tokenizer import Tokenizer
from gptref.tokenizers.bpe.train import train_bpe

__all__ = ["GPT2_SPLIT_PATTERN", "Tokenizer", "train_bpe"]
