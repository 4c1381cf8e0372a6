"""Model loading and the tiny-model factory (Qwen2-VL family)."""
