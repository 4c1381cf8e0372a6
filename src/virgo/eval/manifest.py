"""The reproducibility manifest written into every run folder (``manifest.json``).

What produced the numbers: package versions, a hash of the model files, the decoding settings, a
hash of the chat template and prompt prefix, the git commit of the code, and hashes of the data
files and images read.

A run can be resumed or re-scored later by other code: the top-level fields describe the first start,
and ``sessions`` lists every start (eval, resumed eval, rescore) with its time, command, git commit and
virgo version, so generations made or grades written by a later commit can be told apart.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PACKAGES = ("virgo", "torch", "transformers", "accelerate", "peft", "datasets", "tokenizers", "safetensors",
            "math-verify", "sympy", "openai", "numpy", "pillow", "pyarrow")
# Files that define a checkpoint's behaviour; optimizer states and logs are left out.
MODEL_SUFFIXES = (".safetensors", ".json", ".jinja", ".model", ".txt", ".bin")
_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(start: str | Path | None = None) -> dict[str, Any]:
    """The commit of the repository holding the virgo source (and whether the tree had edits)."""
    here = Path(start) if start else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10,
                                check=False)
        if commit.returncode != 0:
            return {"commit": None}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=False)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None}


def model_fingerprint(model: Any) -> dict[str, Any]:
    """sha256 per model file plus one combined digest; a URL or a served model name is recorded as is."""
    if not isinstance(model, (str, Path)) or not Path(model).is_dir():
        return {"model": str(model), "files": None, "sha256": None}
    root = Path(model)
    files = {str(p.relative_to(root)): sha256_file(p)
             for p in sorted(root.rglob("*")) if p.is_file() and p.suffix in MODEL_SUFFIXES}
    combined = hashlib.sha256("".join(f"{k}:{v}\n" for k, v in files.items()).encode()).hexdigest()
    return {"model": str(root.resolve()), "files": files, "sha256": combined}


def template_fingerprint(prompt: str, chat_template: str | None = None, model: Any = None) -> dict[str, Any]:
    """Name and sha256 of the prompt prefix and the chat template; ``auto`` is resolved from the model's family (a
    served model's template is the server's: recorded as unknown)."""
    from virgo.prompts import DEFAULT_CHAT_TEMPLATE, load_chat_template, load_prompt

    chat = chat_template or DEFAULT_CHAT_TEMPLATE
    if chat == "auto":
        from virgo.modeling.family import resolve_chat_template

        try:
            chat = resolve_chat_template(chat, model)
        except Exception:  # noqa: BLE001 - a served model name, or a model we cannot inspect: no local template
            return {"chat_template": "auto", "chat_template_sha256": None, "prompt": prompt,
                    "prompt_sha256": hashlib.sha256(load_prompt(prompt).encode()).hexdigest()}
    return {"chat_template": chat,
            "chat_template_sha256": hashlib.sha256(load_chat_template(chat).encode()).hexdigest(),
            "prompt": prompt, "prompt_sha256": hashlib.sha256(load_prompt(prompt).encode()).hexdigest()}


def data_fingerprint(files: Iterable[str | Path], images: Iterable[str]) -> dict[str, Any]:
    """sha256 of each data file, and one digest over every image (path name + content) the problems use."""
    h = hashlib.sha256()
    n = 0
    for img in sorted(set(images)):
        p = Path(img)
        if not p.is_file():
            continue
        h.update(p.name.encode() + b"\0" + sha256_file(p).encode() + b"\n")
        n += 1
    return {"files": {str(Path(f).resolve()): sha256_file(f) for f in files},
            "images": {"count": n, "sha256": h.hexdigest() if n else None}}


def session(kind: str) -> dict[str, Any]:
    """One start of a run: what it did (eval, rescore), when, by which command, code commit and virgo version."""
    return {"kind": kind, "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": sys.argv, "git": git_commit(), "virgo": package_versions()["virgo"]}


def add_session(manifest: dict[str, Any], kind: str) -> dict[str, Any]:
    """``manifest`` with one more session appended (a manifest from before sessions existed gets a list)."""
    return {**manifest, "sessions": [*manifest.get("sessions", []), session(kind)]}


def build_manifest(*, model: Any, gen_settings: dict[str, Any], prompt: str, data_files: Iterable[str | Path],
                   images: Iterable[str], chat_template: str | None = None,
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    first = session("eval")
    return {
        "command": first["command"],
        "packages": package_versions(),
        "platform": platform.platform(),
        "git": first["git"],
        "model": model_fingerprint(model),
        "decoding": gen_settings,
        "template": template_fingerprint(prompt, chat_template, model),
        "data": data_fingerprint(data_files, images),
        **(extra or {}),
        "sessions": [first],
    }
