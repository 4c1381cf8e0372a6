"""Training: SFT of Qwen2-VL-family models on long-thought data."""
