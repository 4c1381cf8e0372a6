"""Inference: long generation, thinking-budget control, chat and an OpenAI-compatible server."""
