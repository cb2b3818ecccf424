"""How the public modules present the names they re-export from private ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["fixup_module_metadata"]


def fixup_module_metadata(
    module_name: str, namespace: Mapping[str, object], names: Iterable[str]
) -> None:
    """Make each public class and function in *names* report *module_name* as its module.

    So that ``repr``, tracebacks, pickling and the API reference say
    ``coalesce.TaskError`` rather than ``coalesce._errors.TaskError``: the
    private module a name lives in is not part of the interface (trio does
    the same with its ``fixup_module_metadata``). Only objects defined in a
    private ``coalesce._*`` module are touched.
    """
    for name in names:
        obj = namespace.get(name)
        if not (isinstance(obj, type) or callable(obj)):
            continue
        module = getattr(obj, "__module__", None)
        if isinstance(module, str) and module.startswith("coalesce._"):
            obj.__module__ = module_name
