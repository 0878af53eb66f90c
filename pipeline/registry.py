"""Name -> factory registries for datasets, teachers, students and objectives."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from comodo.stores.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A typed mapping from names to factories; unknown names fail with the known list."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str, doc: str | None = None) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            text = doc or (getattr(obj, "__doc__", None) or "").strip().splitlines()
            self._docs[name] = text if isinstance(text, str) else (text[0] if text else "")
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(sorted(self._items))}"
            ) from None

    def describe(self) -> dict[str, str]:
        return {name: self._docs[name] for name in sorted(self._items)}

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)


DATASETS: Registry = Registry("dataset")
TEACHERS: Registry = Registry("teacher")
STUDENTS: Registry = Registry("student")
OBJECTIVES: Registry = Registry("objective")

REGISTRIES: dict[str, Registry] = {
    "datasets": DATASETS,
    "teachers": TEACHERS,
    "students": STUDENTS,
    "objectives": OBJECTIVES,
}


PLUGIN_MODULES = {
    "datasets": "comodo.pipeline.datasets.builtin",
    "teachers": "comodo.pipeline.teachers",
    "students": "comodo.pipeline.students",
    "objectives": "comodo.pipeline.objectives",
}


def load_plugins(*kinds: str) -> None:
    """Import the modules whose import registers the built-in entries (all kinds by default)."""
    import importlib

    for kind in kinds or tuple(PLUGIN_MODULES):
        module = PLUGIN_MODULES[kind]
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
