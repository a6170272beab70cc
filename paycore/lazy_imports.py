"""Heavy packages the CLI imports only when a command uses them.

`paycore --help` or `paycore balance` touch no bank adapter, yet `gateways` imports them
all at once (httpx, lxml, gmssl, cryptography's RSA, the sandbox servers): on a 2-core
machine under load that was seconds before the first line of output. The command modules
keep their plain `import gateways` (their code and type checking are unchanged); this
module, imported first by `paycore.commands`, puts a stand-in for each such package into
`sys.modules`, so the package runs its `__init__` on the first attribute a command
actually reads. (The standard library's `importlib.util.LazyLoader` cannot do this: every
later `import gateways` statement reads the module's `__spec__`, which loads it.)

Only the CLI does this: the API server and tests import the packages as usual.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

#: packages heavy to import and used by only some commands
DEFERRED = ("gateways",)


class _Deferred(types.ModuleType):
    """Stands in `sys.modules` for a package not imported yet. An `import` statement
    finds it there and binds it (reading nothing from it); the first attribute read
    imports the real package and copies its namespace in, so every module holding the
    stand-in sees the real objects from then on (`isinstance` and all)."""

    def __getattr__(self, attr: str) -> Any:
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


def loaded(name: str) -> bool:
    """Whether the real module `name` has been imported (not merely its stand-in)."""
    return name in sys.modules and not isinstance(sys.modules[name], _Deferred)


def defer(*names: str) -> None:
    """Put a stand-in for each module `name` not imported yet (see `_Deferred`)."""
    for name in names:
        if name not in sys.modules:
            sys.modules[name] = _Deferred(name)


defer(*DEFERRED)
