"""Generation backends behind one interface (`Backend`), built by name with `make_backend`."""

from virgo.infer.backends.base import Backend, make_backend

__all__ = ["Backend", "make_backend"]
