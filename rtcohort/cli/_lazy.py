"""Deferred imports for the fast commands (``rtcohort dvh`` and ``rtcohort phantom``).

pydicom imports, at its own import, modules that reading an RT object never uses:
``requests`` and ``urllib.request`` (for downloading its test data; they pull in
urllib3, charset_normalizer, http.client and ssl), ``PIL.ImageCms`` (colour
management) and ``pydicom.examples`` (which searches pydicom's test-file folder 13
times): together about 0.05 s of CPU. :func:`defer_imports` installs a finder that
gives such modules an :class:`importlib.util.LazyLoader`: the import statement succeeds
at once and the module runs on first attribute access, so a compressed RTDOSE that
needs Pillow still decodes.
Only pure-Python modules are listed (a lazy extension module is not supported).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterable, Sequence
from types import ModuleType

__all__ = ["DEFERRED_MODULES", "LazyFinder", "defer_imports"]

#: Modules imported by pydicom that ``rtcohort dvh`` does not use on its usual path.
DEFERRED_MODULES: tuple[str, ...] = (
    "requests",
    "urllib.request",
    "PIL.ImageCms",
    "pydicom.examples",
)
#: Modules whose import makes another one an attribute of its package: pydicom calls
#: ``PIL.Image.fromarray`` having imported only ``PIL.ImageCms`` (which imports
#: ``PIL.Image``), so a deferred ``PIL.ImageCms`` imports ``PIL.Image`` (pydicom's
#: Pillow decoder imports it anyway, to check the codecs).
_TOGETHER: dict[str, tuple[str, ...]] = {"PIL.ImageCms": ("PIL.Image",)}
_PYTHON_LOADERS = (
    importlib.machinery.SourceFileLoader,
    importlib.machinery.SourcelessFileLoader,
)


class LazyFinder(importlib.abc.MetaPathFinder):
    """Find the listed modules with the other finders and make their loaders lazy.

    Parameters
    ----------
    names
        Full module names to defer; other modules are left to the next finders.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """Return a lazy spec for a listed module, None for any other."""
        if fullname not in self.names:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if not isinstance(loader, _PYTHON_LOADERS):
            return spec  # not a plain Python file: load it as usual
        spec.loader = importlib.util.LazyLoader(loader)
        for other in _TOGETHER.get(fullname, ()):
            importlib.import_module(other)
        return spec


def defer_imports(names: Iterable[str] = DEFERRED_MODULES) -> LazyFinder | None:
    """Install a :class:`LazyFinder` first on ``sys.meta_path`` (once).

    Modules already imported are not affected. Returns the installed finder, or None
    when one is already installed.
    """
    if any(isinstance(f, LazyFinder) for f in sys.meta_path):
        return None
    finder = LazyFinder(names)
    sys.meta_path.insert(0, finder)
    return finder
