"""Workloads: ``keel:ingress`` (:class:`IngressConfig`, the ALB and its WAF) and each ``keel:services`` entry
(:class:`ServiceConfig`, with its replicas, scaling trigger, route, build, resources and secrets), and the rules
that keep secrets out of ``env`` (:func:`secret_checks`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from components.config.base import DOMAIN_NAME, HOSTED_ZONE_ID, Section, check_pattern, shown
from components.upstream import OTEL_PROMETHEUS_ENV, OTEL_PROMETHEUS_PORT
from components.vocabulary import SERVICE_VARIABLES, grant_variables, secret_variable

_CERT_ARN = re.compile(r"^arn:aws(-[a-z]+)*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")
#: A service name: a DNS label of at most 40 characters.
SERVICE_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
_IMAGE = re.compile(r"^[a-z0-9.-]+(:\d+)?/[a-z0-9._/-]+(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$")
_QUANTITY_CPU = re.compile(r"^(\d+m|\d+(\.\d{1,3})?)$")  # whole millicores, or cores to 1m precision
_QUANTITY_MEMORY = re.compile(r"^\d+(Mi|Gi)$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
#: A secret's name: upper snake case, so that ``<NAME>_SECRET_ARN`` is an environment variable name.
_SECRET_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_LAMBDA_ARN = re.compile(
    r"^arn:aws(-[a-z]+)*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]{1,128})?$"
)
#: ``env`` keys that say they hold a secret (``*_KEY``, ``*_TOKEN``, ``*_PASSWORD``, ``*_SECRET``, or the bare word).
SECRET_LIKE_ENV = re.compile(r"(^|_)(KEY|TOKEN|PASSWORD|SECRET)$")
#: What a refused secret is told to do instead.
SECRETS_INSTEAD = "(a Secrets Manager secret the service reads with its own role) and set its value out of band"


class WafConfig(Section):
    """``keel:ingress.waf``: the WAFv2 web ACL in front of the ALB."""

    enabled: bool = True
    """Associate a web ACL (AWS common, known-bad-inputs and IP-reputation rules, and a rate limit)."""

    rate_limit_per_5min: int = Field(2000, ge=100, le=2_000_000_000)
    """Requests one client IP may send in 5 minutes before it is blocked."""


#: CloudFront path patterns: at most 255 characters of ``A-Z a-z 0-9 _ - . $ / ~ " ' @ : +``, with ``*`` and ``?``
#: wildcards and ``&`` (CloudFront Developer Guide, "Values that you specify when you create or update a
#: distribution", Cache behavior settings, Path pattern).
_CDN_PATH = re.compile(r"^/[A-Za-z0-9_\-.$/~\"'@:+*?&]{0,254}$")


class CdnConfig(Section):
    """``keel:ingress.cdn``: CloudFront in front of the ALB, one distribution per exposed host."""

    certificate_arn: str | None = None
    """An ACM certificate in us-east-1 (CloudFront reads certificates only there) covering every exposed host.
    None: ``keel:ingress.certificateArn`` when it is in us-east-1, else keel requests one in us-east-1, validated in
    ``keel:ingress.hostedZoneId``."""

    price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"] = "PriceClass_100"
    """Which edge locations serve (CloudFront API reference, DistributionConfig.PriceClass): ``PriceClass_100``
    (North America, Europe, Israel) is the cheapest."""

    restrict_origin: bool = True
    """True: the ALB admits only CloudFront (its origin-facing prefix list, on 443) carrying the secret origin
    header. False, only while a live stack's DNS moves to the distributions (``cdnDomainNames``): the ALB keeps
    admitting the internet, with its own web ACL, so requests that still resolve to it are served; set it back to
    true once DNS points at CloudFront."""

    cached_paths: dict[str, list[str]] = Field(default_factory=dict)
    """Per exposed service, the CloudFront path patterns cached at the edge (its static files, such as
    ``/static/*``). Everything else, and every path of a service not listed (the API), is not cached."""

    @field_validator("certificate_arn")
    @classmethod
    def _cert(cls, value: str | None) -> str | None:
        if value is None:
            return None
        check_pattern(value, _CERT_ARN, "an ACM certificate ARN in us-east-1")
        if value.split(":")[3] != "us-east-1":
            raise ValueError(
                f"got {shown(value)}, a certificate in {value.split(':')[3]}; allowed: a certificate in us-east-1 "
                "(the only region CloudFront reads certificates from)"
            )
        return value

    @field_validator("cached_paths")
    @classmethod
    def _cached(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for service, paths in value.items():
            repeated = sorted({p for p in paths if paths.count(p) > 1})
            if repeated:
                raise ValueError(f"{service}: got {shown(repeated[0])} twice; list each path pattern once")
            for path in paths:
                if not _CDN_PATH.match(path) or path == "/*":
                    raise ValueError(
                        f"{service}: got {shown(path)}; expected CloudFront path patterns of static files such as "
                        "'/static/*' (starting with '/', at most 255 characters, not '/*': caching everything "
                        "would cache the pages too)"
                    )
        return value


class IngressConfig(Section):
    """``keel:ingress``: the internet-facing ALB, and CloudFront in front of it (``cdn``)."""

    certificate_arn: str | None = None
    """An ACM certificate covering every service host. None: keel requests one, validated in ``hostedZoneId``."""

    hosted_zone_id: str | None = None
    """A Route 53 zone: DNS validation of a created certificate and alias records for the service hosts."""

    deletion_protection: bool = True
    """ALB deletion protection."""

    idle_timeout_seconds: int = Field(60, ge=1, le=4000)
    """ALB idle timeout."""

    waf: WafConfig = Field(default_factory=WafConfig)
    """The web ACL: on the ALB, or on the distributions (CloudFront scope, in us-east-1) when ``cdn`` is set."""

    cdn: CdnConfig | None = None
    """None: the ALB faces the internet. Set: CloudFront serves every exposed host, and the ALB admits only
    CloudFront (its origin-facing prefix list) carrying the distributions' secret origin header."""

    @field_validator("certificate_arn")
    @classmethod
    def _cert(cls, value: str | None) -> str | None:
        return (
            None
            if value is None
            else check_pattern(
                value,
                _CERT_ARN,
                "an ACM certificate ARN such as 'arn:aws:acm:us-east-1:111122223333:certificate/<uuid>'",
            )
        )

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return (
            None
            if value is None
            else check_pattern(value, HOSTED_ZONE_ID, "a Route 53 hosted zone id such as 'Z0123456789ABC'")
        )


class ReplicasConfig(Section):
    """``replicas``: the bounds the autoscaler moves between."""

    min: int = Field(1, ge=0, le=100)
    max: int = Field(1, ge=1, le=100)


class QueueTriggerConfig(Section):
    """``scaleOn.queue``: scale on the length of a Redis list."""

    cache: str
    """A ``keel:caches`` name."""

    list: str
    """The Redis list holding waiting jobs (``bull:forecast:wait``)."""

    length: int = Field(ge=1, le=100_000)
    """Target list length per replica."""


class ScaleOnConfig(Section):
    """``scaleOn``: what the autoscaler watches (exactly one, CPU may be combined as a floor)."""

    cpu: int | None = Field(None, ge=1, le=100)
    memory: int | None = Field(None, ge=1, le=100)
    requests_per_minute: int | None = Field(None, ge=1, le=1_000_000)
    queue: QueueTriggerConfig | None = None


class IngressRouteConfig(Section):
    """``ingress``: where the ALB routes to the service."""

    host: str
    """Host header (``app.example.com``)."""

    paths: list[str] = Field(default_factory=lambda: ["/*"])
    """ALB path patterns; ``/*`` is everything."""

    priority: int | None = Field(None, ge=1, le=49000)
    """The first listener rule's priority (each further path takes the next one). None: computed from the
    order of all routes, which shifts when a route is added before this one; pin it in prod."""

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_pattern(value, DOMAIN_NAME, "a lowercase host name such as 'app.example.com'")

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.startswith("/") or len(path) > 128:
                raise ValueError(f"got {shown(path)}; expected ALB path patterns starting with '/' such as '/api/*'")
        return value


class BuildConfig(Section):
    """``build``: build the image from source and push it to the service's ECR repository."""

    context: str
    """Build context, relative to the project."""

    dockerfile: str = "Dockerfile"
    """Dockerfile path inside the context."""


class ResourcesConfig(Section):
    """Container requests; limits equal requests for memory and are twice the request for CPU."""

    cpu: str = "250m"
    memory: str = "512Mi"

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: str) -> str:
        return check_pattern(value, _QUANTITY_CPU, "a CPU quantity such as '250m' or '2'")

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        return check_pattern(value, _QUANTITY_MEMORY, "a memory quantity such as '512Mi' or '2Gi'")


class SecretConfig(Section):
    """One ``keel:services.<name>.secrets.<NAME>`` entry: a Secrets Manager secret of the service's own, whose value
    is set out of band (``aws secretsmanager put-secret-value``); ``{}`` when it is not rotated automatically."""

    rotate_with: str | None = None
    """The ARN of a Lambda function implementing Secrets Manager's rotation steps (``createSecret``, ``setSecret``,
    ``testSecret``, ``finishSecret``). None: rotated by hand, by putting a new value."""

    every_days: int = Field(30, ge=1, le=1000)
    """Days between two rotations by ``rotateWith`` (only with ``rotateWith``)."""

    @field_validator("rotate_with")
    @classmethod
    def _lambda(cls, value: str | None) -> str | None:
        return (
            None
            if value is None
            else check_pattern(
                value,
                _LAMBDA_ARN,
                "a Lambda function ARN such as 'arn:aws:lambda:us-east-1:111122223333:function:rotate-stripe-key'",
            )
        )


class ServiceConfig(Section):
    """One ``keel:services.<name>`` entry: a workload on the cluster."""

    kind: Literal["deployment", "job"] = "deployment"
    """``deployment``: a long-running server. ``job``: a pod template run by KEDA per pending job."""

    image: str | None = None
    """An image reference pinned by digest (``...@sha256:...``) or by an immutable tag; never ``latest``."""

    build: BuildConfig | None = None
    """Build and push instead of ``image``."""

    port: int | None = Field(None, ge=1024, le=65535)
    """The container port (unprivileged: the container runs as non-root)."""

    metrics_port: int | None = Field(OTEL_PROMETHEUS_PORT.value, ge=1024, le=65535)
    """Where the container serves Prometheus metrics: the container port named ``metrics``, which Prometheus
    scrapes and no Service, target group or listener reaches. Default: the OpenTelemetry Prometheus exporter's
    9464 (``components.upstream.OTEL_PROMETHEUS_PORT``). ``null``: the service serves no metrics."""

    replicas: ReplicasConfig = Field(default_factory=ReplicasConfig)
    scale_on: ScaleOnConfig | None = None

    ingress: IngressRouteConfig | None = None
    """None: not exposed through the ALB."""

    health_path: str = "/healthz"
    """HTTP path of the readiness, liveness and startup probes."""

    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)

    gpu: int = Field(0, ge=0, le=8)
    """NVIDIA GPUs per pod; more than zero schedules the pod on the GPU pool."""

    grants: list[str] = Field(default_factory=list)
    """What the service's IAM role may do: ``artifacts:read``, ``uploads:read-write``, ``email:send``,
    ``database:secret``, ``database:connect`` (through ``keel:database.proxy``), ``<cache>:connect``. Nothing else
    is granted."""

    allow_from: list[str] = Field(default_factory=list)
    """Services whose pods may connect to this one (NetworkPolicy); the ALB is allowed when ``ingress`` is set."""

    env: dict[str, str] = Field(default_factory=dict)
    """Plain environment variables. No secrets: no ``secure:`` value and no key named like one (``*_KEY``,
    ``*_TOKEN``, ``*_PASSWORD``, ``*_SECRET``); those go in ``secrets``."""

    secrets: dict[str, SecretConfig] = Field(default_factory=dict)
    """The service's own secrets, by name (``STRIPE_KEY: {}``): one Secrets Manager secret each, which only this
    service's role may read; the pods get its ARN as ``<NAME>_SECRET_ARN``, never its value, which is set out of
    band and never passes through Pulumi."""

    backoff_limit: int = Field(3, ge=0, le=20)
    """``job``: retries of a failed pod (a Spot interruption counts as one)."""

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.endswith(":latest") or ("@" not in value and ":" not in value.rsplit("/", 1)[-1]):
            raise ValueError(
                f"got {shown(value)}; pin the image by digest (@sha256:...) or an immutable tag, not latest"
            )
        return check_pattern(
            value, _IMAGE, "an image reference such as '111122223333.dkr.ecr.us-east-1.amazonaws.com/web:1.4.2'"
        )

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            check_pattern(key, _ENV_NAME, "environment variable names in upper case such as 'LOG_LEVEL'")
        return value

    @field_validator("secrets", mode="before")
    @classmethod
    def _secrets_shape(cls, value: Any) -> Any:
        if isinstance(value, list):
            raise ValueError(
                f"got {shown(value)}; expected a mapping from each secret's name to its options, such as "
                "{STRIPE_KEY: {}} or {STRIPE_KEY: {rotateWith: <Lambda ARN>, everyDays: 30}}"
            )
        return value

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, value: dict[str, SecretConfig]) -> dict[str, SecretConfig]:
        for name in value:
            check_pattern(name, _SECRET_NAME, "secret names in upper snake case such as 'STRIPE_KEY'")
        return value

    @property
    def keel_variables(self) -> set[str]:
        """The environment variables keel sets on the pods itself: the region and the service's name, the
        metrics exporter's, and those each grant brings (``DATABASE_SECRET_ARN``)."""
        metrics = OTEL_PROMETHEUS_ENV.value if self.metrics_port is not None else ()
        return {*SERVICE_VARIABLES, *metrics, *(v for grant in self.grants for v in grant_variables(grant))}


def secret_checks(services: Mapping[str, ServiceConfig]) -> Iterable[str]:
    """Secrets stay out of ``env``, and each name in ``secrets`` gives the pods a variable of its own. Each yields
    one ``keel:services.<name>...`` problem. (A ``secure:`` value in ``keel:services`` is refused before: see
    :func:`components.config.loading.validate`.)"""
    for name, svc in services.items():
        path = f"keel:services.{name}"
        for key in sorted(svc.env):
            if SECRET_LIKE_ENV.search(key):
                yield f"{path}.env.{key}: looks like a secret; put {key} in {path}.secrets {SECRETS_INSTEAD}"
        own = svc.keel_variables
        for secret, options in svc.secrets.items():
            variable = secret_variable(secret)
            if secret in svc.env:
                yield f"{path}.secrets.{secret}: env sets {secret} too; a name is a plain variable or a secret"
            if variable in svc.env:
                yield f"{path}.secrets.{secret}: env sets {variable}, the variable that carries this secret's ARN"
            if variable in own:
                yield f"{path}.secrets.{secret}: keel sets {variable} itself (for a grant); choose another name"
            if options.rotate_with is None and "every_days" in options.model_fields_set:
                yield (
                    f"{path}.secrets.{secret}.everyDays: got {options.every_days} without rotateWith; set rotateWith "
                    "(the rotation Lambda's ARN) or remove everyDays"
                )
