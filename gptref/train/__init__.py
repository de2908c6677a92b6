"""gptref.train: the nanoGPT-style homework loop (config, token files, schedule, loop, checkpoints, SFT, report)."""

from gptref.train.config import TrainConfig, load_config
from gptref.train.loop import TrainingError, train

__all__ = ["TrainConfig", "load_config", "train", "TrainingError"]
