"""Opening images for generation, with a pixel limit checked from the header before any pixels are decoded."""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Far above any benchmark figure (Qwen2-VL resizes to at most ~12.8 M pixels anyway), far below a decompression bomb.
DEFAULT_MAX_PIXELS = 50_000_000


class ImageError(ValueError):
    """An image that cannot be used: unreadable, not an image, too large, or not allowed."""


def decode_data_url(url: str) -> bytes:
    """The bytes of a ``data:image/...;base64,...`` URL."""
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:"):
        raise ImageError("not a data URL (expected data:image/<type>;base64,<data>)")
    if not head.endswith(";base64"):
        raise ImageError("only base64 data URLs are supported")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("the data URL's base64 payload is invalid") from None


def _source(src: Any) -> tuple[Any, str]:
    """What ``Image.open`` reads for a path, bytes or a data URL, and the name errors give it."""
    if isinstance(src, (bytes, bytearray)):
        return io.BytesIO(src), "image"
    if isinstance(src, str) and src.startswith("data:"):
        return io.BytesIO(decode_data_url(src)), "image"
    if isinstance(src, (str, Path)):
        if "://" in str(src):
            raise ImageError(f"{src}: remote image URLs are not fetched; pass a local file or a data URL")
        return str(src), str(src)
    raise ImageError(f"unsupported image source of type {type(src).__name__}")


@contextlib.contextmanager
def _reading(name: str) -> Iterator[None]:
    """PIL's errors (and its decompression-bomb warning) as `ImageError`s naming the image."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: too many pixels ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{name}: not a readable image ({e})") from None


def _open_header(src: Any, max_pixels: int | None):
    """(PIL image with only its header read, name); refuses more than ``max_pixels`` before any decoding."""
    from PIL import Image

    fp, name = _source(src)
    with _reading(name):
        im = Image.open(fp)
        _check_size(im.size, max_pixels, name)
    return im, name


def open_image(src: Any, *, max_pixels: int | None = DEFAULT_MAX_PIXELS):
    """An RGB PIL image from a path, bytes, a data URL or a PIL image; refuses more than ``max_pixels``."""
    from PIL import Image

    if isinstance(src, Image.Image):
        _check_size(src.size, max_pixels, "image")
        return src if src.mode == "RGB" else src.convert("RGB")
    im, name = _open_header(src, max_pixels)
    with _reading(name):
        im.load()
    return im if im.mode == "RGB" else im.convert("RGB")


def image_size(src: Any, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) of what `open_image` would return, from the header alone, with the same checks."""
    from PIL import Image

    if isinstance(src, Image.Image):
        _check_size(src.size, max_pixels, "image")
        return src.size
    im, _ = _open_header(src, max_pixels)
    im.close()
    return im.size


def _check_size(size: tuple[int, int], max_pixels: int | None, name: str) -> None:
    w, h = size
    if max_pixels is not None and w * h > max_pixels:
        raise ImageError(f"{name}: {w}x{h} = {w * h} pixels is over the limit of {max_pixels}")
