"""One config system for every stage: a dataclass per stage -> its CLI flags, YAML keys, checks and
``--print-config``.

* ``virgo.config.fields``: ``opt`` and ``section``, how a config declares its fields.
* ``virgo.config.tree``: the key index (dotted paths, flat names, aliases, deprecated names, suggestions).
* ``virgo.config.values``: YAML / command-line text -> typed values; declared bounds and choices.
* ``virgo.config.load``: defaults < YAML < command line; ``to_dict`` / ``dump_yaml``.
* ``virgo.config.cli``: the click command of a stage.

This module imports neither torch nor transformers, so ``virgo --help`` stays fast.
"""

from virgo.config.fields import opt, section
from virgo.config.load import ConfigDeprecationWarning, check, dump_yaml, load, parse_override, read_yaml, to_dict
from virgo.config.tree import ConfigError, leaves

__all__ = ["ConfigDeprecationWarning", "ConfigError", "check", "dump_yaml", "leaves", "load", "opt",
           "parse_override", "read_yaml", "section", "to_dict"]
