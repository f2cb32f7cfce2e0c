"""Named factories of one kind of plug-in (emulator stages, loss models).

A package provides one by name either in process (`registry.register(name, factory)`) or,
without being imported first, through an entry-point group of its distribution
(`name = "module:factory"`). Users name it with options: `"NAME key=value ..."`, and
`factory(options, rng)` builds an instance whose random decisions all come from `rng` (a
generator the caller derives from its seed), so runs repeat.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from importlib.metadata import entry_points

Factory = Callable[[dict[str, str], random.Random], object]


class PluginRegistry:
    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind  # what users call one: "stage", "loss model"
        self.group = group  # the entry-point group packages advertise under
        self._factories: dict[str, Factory] = {}

    def register(self, name: str, factory: Factory) -> None:
        """Make `name` available; `factory(options, rng)` builds one instance."""
        self._factories[name] = factory

    def available(self) -> list[str]:
        """Registered names plus those advertised through entry points."""
        return sorted(set(self._factories) | {point.name for point in entry_points(group=self.group)})

    def require(self, name: str) -> None:
        """LookupError naming `name` unless somebody provides it (nothing is imported)."""
        if name not in self._factories and not entry_points(group=self.group, name=name):
            known = ", ".join(self.available()) or "none registered"
            raise LookupError(f"unknown {self.kind} {shown(name)} (available: {known})")

    def create(self, name: str, options: dict[str, str], rng: random.Random) -> object:
        """Build one; raises LookupError naming it if nobody provides it."""
        self.require(name)
        factory = self._factories.get(name)
        if factory is None:
            factory = next(iter(entry_points(group=self.group, name=name))).load()
        return factory(options, rng)

    def parse_option(self, text: str) -> tuple[str, dict[str, str]]:
        """Split `"NAME key=value ..."` into a name and options. Values stay strings: each
        plug-in parses its own and raises a ValueError naming the bad one. A key given twice
        is an error rather than the last one silently winning."""
        words = text.split()
        if not words:
            raise ValueError(f"empty {self.kind}")
        options: dict[str, str] = {}
        for word in words[1:]:
            key, sep, value = word.partition("=")
            if not sep or not key:
                raise ValueError(f"{self.kind} option {shown(word)} is not key=value")
            if key in options:
                raise ValueError(f"{self.kind} option {shown(key)} given twice")
            options[key] = value
        return words[0], options


def shown(word: str) -> str:
    """`word` quoted for a one-line message, cut short if long."""
    return repr(word) if len(word) <= 40 else f"{word[:40]!r}... ({len(word)} characters)"
