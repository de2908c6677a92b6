"""Flash attention: a plain-torch tiled version (any device) and a Triton kernel (CUDA only).

Importing this package never imports triton; flash_attention_triton imports it when called.
"""

from __future__ import annotations

from torch import Tensor

from gptref.flash.tiled import flash_attention, online_softmax, online_softmax_stats

__all__ = ["flash_attention", "flash_attention_triton", "online_softmax", "online_softmax_stats"]


def flash_attention_triton(q: Tensor, k: Tensor, v: Tensor, causal: bool = False) -> Tensor:
    """The Triton kernel of gptref/flash/triton_kernel.py on (B, H, T, D) CUDA tensors (fp16/bf16, D in 16..128)."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("flash_attention_triton needs a CUDA GPU, and torch.cuda.is_available() is False here; "
                           "use gptref.flash.flash_attention (plain torch) on this machine")
    try:
        import triton  # noqa: F401
    except ImportError:
        raise RuntimeError("flash_attention_triton needs the 'triton' package, which is not installed "
                           "(pip install triton; it ships with the CUDA builds of torch)") from None
    from gptref.flash.triton_kernel import triton_flash_attention

    return triton_flash_attention(q, k, v, causal)
