"""The problems' images for the page: downscaled thumbnails, embedded as data URLs or written beside the page.

Every image is decoded with Pillow and re-encoded (PNG when that stays small, else JPEG), so the page only ever
carries raster images it made itself: an SVG or a file that is not an image never reaches the browser. An image
that cannot be read is reported and shown as missing; the rest of the page is unaffected.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from virgo.config.cli import warn
from virgo.records.paths import is_remote, path_problem

MAX_SIDE = 800  # pixels: enough to read a benchmark figure, small enough for thousands of them
MAX_BYTES = 300_000  # per image, after encoding; larger ones are scaled down further


def _encode(im: Image.Image) -> tuple[bytes, str]:
    """PNG (crisp for the line drawings benchmarks are made of) unless JPEG is much smaller (photographs)."""
    if im.mode not in ("RGB", "RGBA", "L", "LA", "P", "1"):
        im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    png = io.BytesIO()
    im.save(png, "PNG", optimize=True)
    flat = im
    if im.mode in ("RGBA", "LA", "P"):  # JPEG has no transparency: put the image on white
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", im.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
    jpg = io.BytesIO()
    flat.convert("RGB").save(jpg, "JPEG", quality=85, optimize=True)
    if png.tell() <= max(1.5 * jpg.tell(), 24_000) and png.tell() <= MAX_BYTES:
        return png.getvalue(), "image/png"
    return jpg.getvalue(), "image/jpeg"


def thumbnail(path: str, max_side: int = MAX_SIDE) -> tuple[bytes, str] | None:
    """(bytes, MIME type) of a downscaled copy of the image at ``path``; None (with a warning) if unreadable."""
    if is_remote(path):
        warn(f"image {path}: remote images are not fetched (the page works offline)")
        return None
    problem = path_problem(path)
    if problem:
        warn(f"image {problem}")
        return None
    try:
        with Image.open(path) as src:
            src.seek(0)  # the first frame of an animation
            im = src.copy()
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        warn(f"image {path}: cannot be read ({e})")
        return None
    side = max_side
    while True:
        im.thumbnail((side, side))
        data, mime = _encode(im)
        if len(data) <= MAX_BYTES or side <= 64:
            return data, mime
        side //= 2


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def write_images(thumbs: list[tuple[bytes, str] | None], folder: Path, rel: str) -> list[str | None]:
    """Write each thumbnail into ``folder``; returns its path as the page refers to it (``rel``/name), or None."""
    out: list[str | None] = []
    for i, t in enumerate(thumbs):
        if t is None:
            out.append(None)
            continue
        name = f"img-{i}.{'png' if t[1] == 'image/png' else 'jpg'}"
        (folder / name).write_bytes(t[0])
        out.append(f"{rel}/{name}")
    return out
