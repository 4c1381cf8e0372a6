"""Training: SFT of Qwen2-VL-family models on long-thought data.

``load_config(recipe, overrides) -> TrainConfig`` and ``train(cfg) -> Path`` (single process; ``virgo train``
launches several). ``train`` is imported lazily so that ``virgo --help`` does not load transformers.
"""

from virgo.train.config import TrainConfig, load_config

__all__ = ["TrainConfig", "load_config", "train"]


def __getattr__(name: str):
    if name == "train":
        from virgo.train.sft import train

        return train
    raise AttributeError(f"module 'virgo.train' has no attribute {name!r}")
