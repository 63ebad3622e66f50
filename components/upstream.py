"""What upstream projects do that keel depends on, as data with its source.

Usage::

    from components.upstream import KEDA_METRICS_PORT
    KEDA_METRICS_PORT.value      # "metrics"
    KEDA_METRICS_PORT.source     # Source(repo="kedacore/charts", version="keda-2.21.1", path=..., line=...)

keel renders Helm values, pod specs and AWS resources whose effect depends on what a chart, EKS or an AWS service
does with them: a port's name, which monitors a chart turns on, the labels a controller reads, an instance type's
allocatable resources. Each such fact lives here once, with the repository, the version (tag or chart version),
the file and the line it was read from, so a test can assert keel's output against it and a version bump shows
which facts to re-read. Facts that keel cannot read from a file (an AWS API's behaviour) cite the documentation.

Nothing here is computed: change a value only after re-reading its source at the pinned version.
"""

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


# ---------------------------------------------------------------------------------------------------- charts


# ---------------------------------------------------------------------------------------------------- workloads


# ---------------------------------------------------------------------------------------------------- EKS, EC2
