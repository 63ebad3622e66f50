"""The two shapes every upstream fact takes: :class:`Source` (where it was read) and :class:`Fact`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Source:
    """Where a fact was read: ``repo`` (GitHub owner/name, or a documentation site), ``version`` (a tag, a chart
    version or a document's date), ``path`` (a file in the repository, or a page) and ``line`` (None: a page)."""

    repo: str
    version: str
    path: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{self.repo}@{self.version} {where}"


@dataclass(frozen=True)
class Fact(Generic[T]):
    """One upstream fact and where it comes from."""

    value: T
    source: Source
    note: str = ""
