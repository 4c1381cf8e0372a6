"""Kept for existing imports (the server, the CLI): images live in `virgo.modeling.images`."""

from virgo.modeling.images import DEFAULT_MAX_PIXELS, ImageError, decode_data_url, image_size, open_image

__all__ = ["DEFAULT_MAX_PIXELS", "ImageError", "decode_data_url", "image_size", "open_image"]
