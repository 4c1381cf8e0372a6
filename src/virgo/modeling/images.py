"""Images for every stage: opening them safely, and what each costs in tokens.

`open_image` takes a path, bytes, a data URL or a PIL image and refuses more than ``max_pixels`` from the header,
before any pixel is decoded (a decompression bomb never reaches memory); `image_size` reads only the header.
`image_tokens_for_size` and `image_token_count` give the tokens an image costs in the language model under the
processor's resize (``smart_resize`` into [min_pixels, max_pixels], then patches merged ``merge_size`` x
``merge_size``), from its size alone: training plans every sample's exact length and inference sorts requests by
length without decoding pixels.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virgo.modeling.family import IMAGE_TOKEN

__all__ = ["DEFAULT_MAX_PIXELS", "IMAGE_TOKEN", "ImageError", "ImageLimits", "decode_data_url", "image_size",
           "image_token_count", "image_tokens_for_size", "open_image"]

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


@dataclass
class ImageLimits:
    """Pixel limits applied to every image (the Qwen-VL processors' smart resize keeps the aspect ratio)."""

    min_pixels: int
    max_pixels: int

    @classmethod
    def for_processor(cls, processor, min_pixels: int | None = None, max_pixels: int | None = None) -> ImageLimits:
        """The given limits, or the processor's own where one is None."""
        size = dict(processor.image_processor.size)
        return cls(min_pixels=min_pixels or size["shortest_edge"], max_pixels=max_pixels or size["longest_edge"])

    def size(self) -> dict[str, int]:
        return {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels}


def image_tokens_for_size(processor, width: int, height: int, limits: ImageLimits) -> int:
    """Tokens an image of this size costs in the language model once resized into ``limits``."""
    ip = processor.image_processor
    patches = ip.get_number_of_image_patches(height, width, {"min_pixels": limits.min_pixels,
                                                             "max_pixels": limits.max_pixels})
    return patches // (ip.merge_size ** 2)


def image_token_count(processor, src: Any, limits: ImageLimits, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> int:
    """Tokens an image (path, bytes, data URL or PIL image) costs in the language model, from its header."""
    return image_tokens_for_size(processor, *image_size(src, max_pixels=max_pixels), limits)
