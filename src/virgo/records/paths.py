"""Image paths named by records: resolved relative to the file naming them, and checked without ever raising.

``Path.resolve`` raises RuntimeError on a symlink loop (and ValueError on a NUL byte); one such path used to
end a whole run from inside the reader. Here resolving never fails, and ``path_problem`` says in words what is
wrong with a path (missing, a directory, a loop, unreadable, ...) so the record naming it is reported alone.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def is_remote(p: str) -> bool:
    """URLs and data: URIs are left to the backend that fetches or decodes them."""
    return "://" in p or p.startswith("data:")


def show(p: str) -> str:
    """A path as it goes into a one-line error message (a repr when it holds control characters)."""
    return p if p.isprintable() else repr(p)


def resolve_path(base: str | Path, p: str) -> str:
    """``p`` relative to ``base``, absolute with symlinks resolved; never raises.

    Remote and absolute paths are returned as they are. A loop or a NUL byte cannot be resolved: the path is
    then only made absolute, and ``path_problem`` reports it.
    """
    if is_remote(p) or os.path.isabs(p):
        return p
    joined = os.path.join(base, p)
    try:
        return os.path.realpath(joined)  # non-strict: a loop or a missing part is left as it is
    except (OSError, ValueError):
        return os.path.abspath(joined)


_ERRNO_WORDS = {
    errno.ENOENT: "image not found",
    errno.ENOTDIR: "image not found (a parent is not a directory)",
    errno.ELOOP: "symlink loop",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENAMETOOLONG: "path too long",
}


def path_problem(p: str) -> str | None:
    """Why the local file ``p`` cannot be read as an image, or None when it is a readable regular file.

    Only metadata is looked at (stat and access), never the content: cheap enough for every record of a
    training set. Remote paths are not checked.
    """
    if is_remote(p):
        return None
    if "\x00" in p:
        return f"not a usable path (it holds a NUL character): {show(p)}"
    try:
        st = os.stat(p)
    except OSError as e:
        return f"{_ERRNO_WORDS.get(e.errno, f'cannot open ({e.strerror})')}: {show(p)}"
    if stat.S_ISDIR(st.st_mode):
        return f"not a file (a directory): {show(p)}"
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or a device would block or never end when opened.
        return f"not a regular file: {show(p)}"
    if not os.access(p, os.R_OK):
        return f"permission denied: {show(p)}"
    return None
