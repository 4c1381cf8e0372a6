"""Write the page: HTML that works from disk (file://), with a strict Content-Security-Policy.

The template, stylesheet and script are files in ``static/`` (a vanilla JS viewer: no framework, nothing fetched
from a network). Script and style are inlined and allowed by their SHA-256 hashes in the CSP, so nothing else can
run: no other inline script, no event-handler attribute, no ``javascript:`` URL, no connection. The page renders all
model text and dataset fields with ``textContent`` / text nodes, never as HTML.

Two layouts:

- **file**: one self-contained HTML file. The data sits in ``<script type="application/json">`` blocks, which
  browsers never execute; every ``<``, ``>`` and ``&`` in them is written as a JSON ``\\u`` escape, so a
  ``</script>`` or ``<!--`` inside model text cannot end or alter a block. Images are data URLs.
- **folder**: the HTML holds only the index (what the list shows); the thoughts, in chunks, and the images are files
  in ``<page>_files/`` beside it, loaded when an item in them is opened. The browser then parses a few MB at
  open however long the thoughts are (the full MathVision test with several samples is hundreds of MB of text).
  A chunk file is one statement handing its JSON (escaped as above) to the element that loaded it; the CSP adds
  ``'self'`` for these files.

"auto" writes one file up to ``FILE_LIMIT`` bytes of thoughts and images, a folder beyond.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote

from virgo.view.data import ViewData, build_view_data
from virgo.view.images import MAX_SIDE, data_url, thumbnail, write_images
from virgo.view.sources import RunData, is_demo, load_sources

FILE_LIMIT = 25_000_000  # bytes of thoughts and images one file carries ("auto" writes a folder beyond)
IMAGE_CHUNK = 50  # embedded images per JSON block (parsed when an item showing one of them is opened)
PAGE_NAME = "view.html"
SCRIPTS = ("core.js", "list.js", "item.js", "main.js")  # one script, in this order, in its own scope
LAYOUTS = ("auto", "file", "folder")
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")
_CHUNK_FILE = re.compile(r"(t-\d+\.js|img-\d+\.(png|jpg))")


def _static(name: str) -> str:
    return (resources.files("virgo.view") / "static" / name).read_text(encoding="utf-8")


def page_script() -> str:
    """The viewer's script: the static files joined inside one function, so none of its names become globals."""
    return '"use strict";\n(() => {\n' + "\n".join(_static(n) for n in SCRIPTS) + "})();\n"


def script_json(obj: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: no character that HTML's script parser reacts to."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def csp(script: str, style: str, folder: bool) -> str:
    """The page's Content-Security-Policy: only its own script and style, images from data: URLs, and (folder
    layout) the chunk and image files beside it; nothing else."""
    own = " 'self'" if folder else ""
    return (f"default-src 'none'; script-src {_sha256(script)}{own}; style-src {_sha256(style)}; "
            f"img-src data:{own}; base-uri 'none'; form-action 'none'; object-src 'none'")


def _block(block_id: str, text: str) -> str:
    return f'<script type="application/json" id="{block_id}">{text}</script>\n'


def _html_text(s: str) -> str:
    return s.replace("\0", "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def render_page(index: dict[str, Any], chunks: list[str] | None, images: list[str | None] | None,
                folder: bool) -> list[str]:
    """The page's HTML as pieces to write one after another: the index block, then (file layout) the text chunks
    and embedded images."""
    script, style = page_script(), _static("view.css")
    head, _, tail = Template(_static("view.html")).substitute(
        title=_html_text(index["meta"]["title"]), csp=csp(script, style, folder), style=style, script=script,
        data="\0").partition("\0")
    pieces = [head, _block("virgo-index", script_json(index))]
    pieces += [_block(f"virgo-t-{i}", c) for i, c in enumerate(chunks or [])]
    groups = [images[i:i + IMAGE_CHUNK] for i in range(0, len(images or []), IMAGE_CHUNK)]
    pieces += [_block(f"virgo-i-{i}", script_json(g)) for i, g in enumerate(groups)]
    return [*pieces, tail]


def _clear_folder(folder: Path, keep: bool) -> None:
    """Remove what an earlier page left in ``<page>_files`` (only files of the kinds this module writes); the
    folder itself is kept for a folder layout, removed for a file layout when nothing else is in it."""
    if folder.is_dir():
        for p in folder.iterdir():
            if p.is_file() and _CHUNK_FILE.fullmatch(p.name):
                p.unlink()
        if not keep and not any(folder.iterdir()):
            folder.rmdir()
    if keep:
        folder.mkdir(parents=True, exist_ok=True)


def write_page(view: ViewData, out: Path, *, layout: str = "auto", images: bool = True,
               max_side: int = MAX_SIDE) -> Path:
    """Write ``view`` to ``out`` (the HTML last and atomically: a reader never sees half a page)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = out.with_name(out.stem + "_files")
    thumbs = [thumbnail(p, max_side) if images else None for p in view.images]
    chunks = [script_json(c) for c in view.chunks]
    size = sum(len(c) for c in chunks) + sum(len(t[0]) * 4 // 3 for t in thumbs if t is not None)
    if layout == "auto":
        layout = "file" if size <= FILE_LIMIT else "folder"
    index = {**view.index, "meta": {**view.index["meta"], "layout": layout, "img_chunk": IMAGE_CHUNK,
                                     "files": quote(folder.name), "images": images}}
    if not images:
        thumbs = []
    _clear_folder(folder, keep=layout == "folder")
    if layout == "folder":
        for i, c in enumerate(chunks):
            (folder / f"t-{i}.js").write_text(
                'document.currentScript.dispatchEvent(new CustomEvent("virgo-data", {detail: ' + c + "}));\n",
                encoding="utf-8", errors="replace")
        index["imgsrc"] = write_images(thumbs, folder, quote(folder.name))
        pieces = render_page(index, None, None, folder=True)
    else:
        pieces = render_page(index, chunks, [data_url(*t) if t else None for t in thumbs], folder=False)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", errors="replace", newline="\n") as f:
        f.writelines(pieces)
    os.replace(tmp, out)
    return out


def default_out(runs: list[RunData], first: Path) -> Path:
    """Beside the run's report.md: ``RUN/view.html``; two runs: ``RUN/view-vs-<second>.html`` in the first one's
    folder (a demo folder: ``DEMO/view.html``)."""
    base = first if first.is_dir() else first.parent
    if len(runs) == 1 or is_demo(first):
        return base / PAGE_NAME
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "-", runs[1].label).strip("-") or "run2"
    return base / f"view-vs-{slug}.html"


def write_view(run_dir: str | Path, run2: str | Path | None = None, out: str | Path | None = None, *,
               layout: str = "auto", images: bool = True, title: str | None = None, labels: list[str] | None = None,
               variants: list[str] | None = None, grades: list[str] | None = None,
               problems: list[str] | None = None, max_side: int = MAX_SIDE) -> Path:
    """Write the viewer page for one run (or two, side by side) and return its path.

    ``run_dir``: a `virgo eval` run folder, a demo folder (base vs Virgo-T unless ``variants``), a folder of eval
    runs, or a generations JSONL (with ``grades`` / ``problems`` files). Without ``out`` the page goes beside the
    run's report.md (see `default_out`). `virgo eval` and `virgo demo` call this after their report.
    """
    paths = [Path(run_dir)] + ([Path(run2)] if run2 is not None else [])
    runs = load_sources(paths, grades=grades, problems=problems, labels=labels, variants=variants)
    target = Path(out) if out is not None else default_out(runs, paths[0])
    return write_page(build_view_data(runs, title), target, layout=layout, images=images, max_side=max_side)
