"""The words keel's components and its policy pack must agree on, each defined once.

Usage::

    from components.vocabulary import GPU_TOLERATION, pool_selector

    spec["nodeSelector"] = pool_selector(GPU_POOL)
    spec["tolerations"] = [GPU_TOLERATION]

Node pools, the GPU taint (in the EKS API's shape for the node group and Kubernetes' shape for the pods that
tolerate it), the GPU resource name, the Kubernetes versions keel supports, and the intent grants a service may
ask for. Imported by the config model, the cluster, its add-ons, the services, observability and the policy pack
(which runs in its own process, so this module imports nothing but the standard library).
"""

from __future__ import annotations

from collections.abc import Iterable

#: The node label every managed node group carries: the pool it belongs to. Pods select a pool with it.
POOL_LABEL = "keel.dev/pool"
GENERAL_POOL = "general"
"""Runs everything that does not ask for a GPU, add-ons included."""
GPU_POOL = "gpu"
"""The optional Spot GPU pool, tainted with :data:`GPU_TAINT`."""
POOLS = (GENERAL_POOL, GPU_POOL)

#: The extended resource the NVIDIA device plugin advertises, and the label the GPU nodes carry for it.
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"

#: GPU instance families the NVIDIA AMI (``AL2023_x86_64_NVIDIA``) supports: x86_64 with NVIDIA GPUs.
GPU_FAMILIES = ("g4dn", "g5", "g6", "g6e", "gr6", "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en")

#: The GPU pool's taint, in the EKS API's shape (``aws.eks.NodeGroup`` ``taints``: effect ``NO_SCHEDULE``).
GPU_TAINT = {"key": GPU_RESOURCE, "value": "true", "effect": "NO_SCHEDULE"}
#: The same taint as Kubernetes writes it on the node (and the cluster autoscaler's node-template tag).
GPU_TAINT_EFFECT = "NoSchedule"
#: What a pod that may run on GPU nodes tolerates (GPU jobs, the device plugin, node exporter).
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": GPU_TAINT_EFFECT}

#: The container port name keel's services serve ``/metrics`` on: a port of its own, which no Service, target group
#: or listener reaches; Prometheus scrapes it and the scrape NetworkPolicy admits it, nothing else.
METRICS_PORT = "metrics"

#: Kubernetes minor versions EKS offers in standard support that keel is tested with; the cluster autoscaler's
#: image follows the minor version (``components/addons.py``). ``keel preflight`` checks the region offers it.
KUBERNETES_VERSIONS = ("1.33", "1.34")
DEFAULT_KUBERNETES_VERSION = "1.34"

#: Intent grants a service may list in ``grants``: on the buckets, the email identity, the database's master
#: secret, IAM authentication through the database's RDS Proxy, and ``<cache>:connect`` per configured cache.
BUCKET_GRANTS = ("artifacts:read", "artifacts:read-write", "uploads:read", "uploads:read-write")
EMAIL_GRANT = "email:send"
DATABASE_GRANT = "database:secret"
DATABASE_CONNECT_GRANT = "database:connect"
"""``rds-db:connect`` through the database's RDS Proxy (``keel:database.proxy``): an IAM token, no secret read."""


def pool_selector(pool: str) -> dict[str, str]:
    """The node selector that places a pod on a pool."""
    return {POOL_LABEL: pool}


def cache_grant(cache: str) -> str:
    """The grant that lets a service connect to the cache named ``cache`` (``queue:connect``)."""
    return f"{cache}:connect"


def grants(caches: Iterable[str], *, email: bool, database: bool, proxy: bool) -> set[str]:
    """Every grant a stack with these caches (and an email identity, a database, the database's RDS Proxy) offers
    its services: ``database:connect`` only with a proxy, which is what it connects through."""
    out = {*BUCKET_GRANTS, *(cache_grant(name) for name in caches)}
    if email:
        out.add(EMAIL_GRANT)
    if database:
        out.add(DATABASE_GRANT)
    if database and proxy:
        out.add(DATABASE_CONNECT_GRANT)
    return out


#: Suffixes of the environment variables keel sets for the database and the caches (``components.platform``).
DATABASE_VARIABLES = ("HOST", "PORT", "NAME", "SECRET_ARN", "SSLMODE")
#: ``database:connect``: the proxy's endpoint, the user to request an IAM token for and ``IAM_LOGIN=true`` (log in
#: with that token); no secret.
DATABASE_CONNECT_VARIABLES = ("HOST", "PORT", "NAME", "USER", "IAM_LOGIN", "SSLMODE")
CACHE_VARIABLES = ("HOST", "PORT", "TLS", "CLUSTER_MODE", "AUTH_SECRET_ARN")
#: What every service's pods get, whatever their grants (the OpenTelemetry exporter's come with ``metricsPort``).
SERVICE_VARIABLES = ("AWS_REGION", "SERVICE_NAME")


def grant_variables(grant: str) -> tuple[str, ...]:
    """The environment variables a grant gives a service's pods: where the granted resource is, never a secret
    value (``components.platform`` sets them; ``uploads:read`` -> ``BUCKET_UPLOADS``)."""
    target, _, _access = grant.partition(":")
    if grant in BUCKET_GRANTS:
        return (f"BUCKET_{target.upper()}",)
    if grant == EMAIL_GRANT:
        return ("SES_CONFIGURATION_SET", "SES_IDENTITY")
    if grant == DATABASE_GRANT:
        return tuple(f"DATABASE_{v}" for v in DATABASE_VARIABLES)
    if grant == DATABASE_CONNECT_GRANT:
        return tuple(f"DATABASE_{v}" for v in DATABASE_CONNECT_VARIABLES)
    return tuple(f"{cache_prefix(target)}_{v}" for v in CACHE_VARIABLES)


def cache_prefix(cache: str) -> str:
    """The prefix of a cache's environment variables (``forecast-queue`` -> ``REDIS_FORECAST_QUEUE``)."""
    return f"REDIS_{cache.upper().replace('-', '_')}"


def secret_variable(name: str) -> str:
    """The environment variable holding the ARN of a service's own secret ``name`` (``keel:services.<s>.secrets``):
    ``STRIPE_KEY`` -> ``STRIPE_KEY_SECRET_ARN``. The value itself never reaches the pod spec."""
    return f"{name}_SECRET_ARN"
