"""Generation backends behind one interface (`base.Backend`), built by name with `registry.make_backend`.

Import from the submodules (``from virgo.infer.backends.registry import make_backend``); this package module
imports nothing, so a backend importing `base` never loads the factory that imports the backends.
"""
