"""What upstream projects do that keel depends on, as data with its source.

Usage::

    from components.upstream import KEDA_METRICS_PORT
    KEDA_METRICS_PORT.value      # "metrics"
    KEDA_METRICS_PORT.source     # Source(repo="kedacore/charts", version="v2.20.2", path=..., line=...)

keel renders Helm values, pod specs and AWS resources whose effect depends on what a chart, EKS or an AWS service
does with them: a port's name, which monitors a chart turns on, the labels a controller reads, an instance type's
allocatable resources. Each such fact lives here once, with the repository, the version (tag or chart version),
the file and the line it was read from, so a test can assert keel's output against it and a version bump shows
which facts to re-read. Facts that keel cannot read from a file (an AWS API's behaviour) cite the documentation.

Nothing here is computed: change a value only after re-reading its source at the pinned version.
"""

from components.upstream.base import Fact as Fact
from components.upstream.base import Source as Source
from components.upstream.charts import *  # noqa: F403 (the facts by name, as keel imports them)
from components.upstream.edge import *  # noqa: F403
from components.upstream.eks import *  # noqa: F403
from components.upstream.workloads import *  # noqa: F403
