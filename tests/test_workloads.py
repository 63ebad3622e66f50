"""Edge and workloads: the ALB, images, the four services, their IAM, pods, bindings and network policies."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from components import upstream, vocabulary
from components.config import ConfigError, validate
from components.vocabulary import KUBERNETES_VERSIONS
from keel import stackfiles
from keel.engine import Preview
from keel.fake import digest
from tests.helpers import (
    PROD_OPERATIONS,
    ROOT,
    crd_schema,
    k8s_object,
    physical_id,
    policy_doc,
    sg_rules,
    stack_file,
)

ACCOUNT = "123456789012"
IMAGE = "111122223333.dkr.ecr.us-east-1.amazonaws.com/web@sha256:" + "a" * 64
K8S_VERSION = "1.34.0"  # the clusters' version (keel:cluster.version in both stacks; asserted below)

# ------------------------------------------------------------------------------------------ config rules

TWO = {"min": 2, "max": 2}  # what a prod deployment keeps at least
BASE_SERVICES: dict[str, Any] = {
    "web": {"image": IMAGE, "port": 3000, "replicas": TWO, "ingress": {"host": "app.example.com"}},
    "trainer": {
        "kind": "job",
        "image": IMAGE,
        "gpu": 1,
        "replicas": {"min": 0, "max": 1},
        "scaleOn": {"queue": {"cache": "queue", "list": "jobs", "length": 1}},
    },
}
CLUSTER = {
    "nodeGroups": {
        "general": {"instanceTypes": ["m5.xlarge"], "minSize": 2, "maxSize": 4},
        "gpu": {"instanceTypes": ["g4dn.xlarge"], "capacityType": "SPOT", "minSize": 0, "maxSize": 1, "gpu": True},
    }
}
CERT = "arn:aws:acm:us-east-1:111122223333:certificate/0f6e2c1a-7b7d-4a57-9d55-1f0a3c9e8b21"
ROTATOR = "arn:aws:lambda:us-east-1:111122223333:function:keel-rotate-stripe-key"


def services_stack(services: dict[str, Any], ingress: dict[str, Any] | None = None) -> dict[str, str]:
    return {
        "aws:region": "us-east-1",
        "keel:environment": "prod",
        "keel:cluster": json.dumps(CLUSTER),
        "keel:ingress": json.dumps(ingress if ingress is not None else {"certificateArn": CERT}),
        # a prod queue survives the region: a Global Datastore copy (crossRegion) on a node type that takes one
        "keel:caches": json.dumps(
            {"queue": {"replicasPerShard": 1, "nodeType": "cache.m6g.large", "crossRegion": True}}
        ),
        "keel:services": json.dumps(services),
        **PROD_OPERATIONS,
    }


def with_web(**changes: Any) -> dict[str, Any]:
    return {**BASE_SERVICES, "web": {**BASE_SERVICES["web"], **changes}}


CASES: list[tuple[str, dict[str, str], str]] = [
    (
        "fractional millicores",  # Kubernetes' precision is 1m; the capacity check counts whole millicores
        services_stack(with_web(resources={"cpu": "1500.5m", "memory": "512Mi"})),
        "keel:services.web.resources.cpu: got '1500.5m'; expected a CPU quantity such as '250m' or '2'",
    ),
    (
        "unknown grant",
        services_stack(with_web(grants=["uploads:admin"])),
        "keel:services.web.grants: got 'uploads:admin'; allowed: artifacts:read, artifacts:read-write, queue:connect, "
        "uploads:read, uploads:read-write",
    ),
    (
        "ingress on a job",
        services_stack(
            {**BASE_SERVICES, "trainer": {**BASE_SERVICES["trainer"], "ingress": {"host": "t.example.com"}}}
        ),
        "keel:services.trainer.ingress: got an ingress on a job; allowed only on kind: deployment",
    ),
    (
        "latest tag",
        services_stack(with_web(image="111122223333.dkr.ecr.us-east-1.amazonaws.com/web:latest")),
        "keel:services.web.image: got '111122223333.dkr.ecr.us-east-1.amazonaws.com/web:latest'; pin the image by "
        "digest (@sha256:...) or an immutable tag, not latest",
    ),
    (
        "untagged image",
        services_stack(with_web(image="111122223333.dkr.ecr.us-east-1.amazonaws.com/web")),
        "keel:services.web.image: got '111122223333.dkr.ecr.us-east-1.amazonaws.com/web'; pin the image by digest "
        "(@sha256:...) or an immutable tag, not latest",
    ),
    ("privileged port", services_stack(with_web(port=80)), "keel:services.web.port: got 80; allowed: 1024 to 65535"),
    (
        "port out of range",
        services_stack(with_web(port=70000)),
        "keel:services.web.port: got 70000; allowed: 1024 to 65535",
    ),
    (
        "neither image nor build",
        services_stack({"web": {"port": 3000, "replicas": TWO}}),
        "keel:services.web: got neither image nor build; set exactly one",
    ),
    (
        "both image and build",
        services_stack(with_web(build={"context": "web"})),
        "keel:services.web: got both image and build; set exactly one",
    ),
    (
        "duplicate host and path",
        services_stack(
            {
                **BASE_SERVICES,
                "api": {"image": IMAGE, "port": 3001, "replicas": TWO, "ingress": {"host": "app.example.com"}},
            }
        ),
        "keel:services.api.ingress: got app.example.com/*, already routed to service 'web'; each host and path goes to "
        "one service",
    ),
    (
        "unknown allowFrom",
        services_stack(with_web(allowFrom=["worker"])),
        "keel:services.web.allowFrom: got 'worker'; allowed: trainer",
    ),
    (
        "deployment without a port",
        services_stack({"web": {"image": IMAGE, "replicas": TWO}}),
        "keel:services.web.port: required key is missing (a deployment serves on a port)",
    ),
    (
        "bad service name",
        services_stack({"Web_1": {"image": IMAGE, "port": 3000, "replicas": TWO}}),
        "keel:services.Web_1: got the name 'Web_1'; service names are DNS labels: lowercase letters, digits, dashes",
    ),
    (
        "no certificate",
        services_stack(BASE_SERVICES, ingress={}),
        "keel:ingress.certificateArn: missing; set certificateArn, or hostedZoneId so keel requests a DNS-validated "
        "certificate",
    ),
    (
        "prod without WAF",
        services_stack(BASE_SERVICES, ingress={"certificateArn": CERT, "waf": {"enabled": False}}),
        "keel:ingress.waf.enabled: got false in a prod stack; allowed: true",
    ),
    (
        "replicas inverted",
        services_stack(with_web(replicas={"min": 3, "max": 2})),
        "keel:services.web.replicas.min: got 3; must be at most replicas.max (2)",
    ),
    (
        "privileged metrics port",
        services_stack(with_web(metricsPort=80)),
        "keel:services.web.metricsPort: got 80; allowed: 1024 to 65535",
    ),
    (
        "metrics port out of range",
        services_stack(with_web(metricsPort=70000)),
        "keel:services.web.metricsPort: got 70000; allowed: 1024 to 65535",
    ),
    (
        "metrics port not a number",
        services_stack(with_web(metricsPort="9464")),
        "keel:services.web.metricsPort: got '9464'; expected a whole number",
    ),
    (
        "metrics on the port the ALB forwards to",
        services_stack(with_web(metricsPort=3000)),
        "keel:services.web.metricsPort: got 3000, the service's port; allowed: any other port from 1024 to 65535, "
        "or null (no metrics): the ALB forwards to port, so metrics there would be public",
    ),
    (
        "exporter port set by hand",
        services_stack(with_web(env={"OTEL_EXPORTER_PROMETHEUS_PORT": "9000"})),
        "keel:services.web.env: got 'OTEL_EXPORTER_PROMETHEUS_PORT', which keel sets from metricsPort; set "
        "metricsPort instead",
    ),
    (
        "secret in env name",
        services_stack(with_web(env={"db-password": "x"})),
        "keel:services.web.env: got 'db-password'; expected environment variable names in upper case such as "
        "'LOG_LEVEL'",
    ),
    *[
        (
            f"env key named like a secret: {key}",
            services_stack(with_web(env={"LOG_LEVEL": "info", key: "x"})),
            f"keel:services.web.env.{key}: looks like a secret; put {key} in keel:services.web.secrets (a Secrets "
            "Manager secret the service reads with its own role) and set its value out of band",
        )
        for key in ("PARTNER_TOKEN", "STRIPE_KEY", "DB_PASSWORD", "CLIENT_SECRET", "TOKEN")
    ],
    (
        "secrets as a list",
        services_stack(with_web(secrets=["STRIPE_KEY"])),
        'keel:services.web.secrets: got ["STRIPE_KEY"]; expected a mapping from each secret\'s name to its options, '
        "such as {STRIPE_KEY: {}} or {STRIPE_KEY: {rotateWith: <Lambda ARN>, everyDays: 30}}",
    ),
    (
        "secret name in lower case",
        services_stack(with_web(secrets={"stripe-key": {}})),
        "keel:services.web.secrets: got 'stripe-key'; expected secret names in upper snake case such as 'STRIPE_KEY'",
    ),
    (
        "secret without options",
        services_stack(with_web(secrets={"STRIPE_KEY": None})),
        "keel:services.web.secrets.STRIPE_KEY: got null; expected a mapping",
    ),
    (
        "secret option unknown",
        services_stack(with_web(secrets={"STRIPE_KEY": {"rotateEvery": 30}})),
        "keel:services.web.secrets.STRIPE_KEY.rotateEvery: unknown key; allowed keys: everyDays, rotateWith",
    ),
    (
        "rotation by something else than a Lambda",
        services_stack(with_web(secrets={"STRIPE_KEY": {"rotateWith": "arn:aws:sns:us-east-1:111122223333:t"}})),
        "keel:services.web.secrets.STRIPE_KEY.rotateWith: got 'arn:aws:sns:us-east-1:111122223333:t'; expected a "
        "Lambda function ARN such as 'arn:aws:lambda:us-east-1:111122223333:function:rotate-stripe-key'",
    ),
    (
        "rotation period out of range",
        services_stack(with_web(secrets={"STRIPE_KEY": {"rotateWith": ROTATOR, "everyDays": 0}})),
        "keel:services.web.secrets.STRIPE_KEY.everyDays: got 0; allowed: 1 to 1000",
    ),
    (
        "rotation period without a rotator",
        services_stack(with_web(secrets={"STRIPE_KEY": {"everyDays": 30}})),
        "keel:services.web.secrets.STRIPE_KEY.everyDays: got 30 without rotateWith; set rotateWith (the rotation "
        "Lambda's ARN) or remove everyDays",
    ),
    (
        "secret also in env",
        services_stack(with_web(env={"DSN": "x"}, secrets={"DSN": {}})),
        "keel:services.web.secrets.DSN: env sets DSN too; a name is a plain variable or a secret",
    ),
    (
        "secret whose ARN variable env sets",
        services_stack(with_web(env={"DSN_SECRET_ARN": "x"}, secrets={"DSN": {}})),
        "keel:services.web.secrets.DSN: env sets DSN_SECRET_ARN, the variable that carries this secret's ARN",
    ),
    (
        "secret whose ARN variable keel sets for a grant",
        services_stack(with_web(grants=["queue:connect"], secrets={"REDIS_QUEUE_AUTH": {}})),
        "keel:services.web.secrets.REDIS_QUEUE_AUTH: keel sets REDIS_QUEUE_AUTH_SECRET_ARN itself (for a grant); "
        "choose another name",
    ),
]


@pytest.mark.parametrize(("raw", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_service_config_rules(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate("prod", raw)
    assert caught.value.problems == [message]


# ------------------------------------------------------------------------------------------ load balancer


def test_alb_security_group_is_the_only_open_door(preview: Callable[[str], Preview]) -> None:
    """Without a CDN (dev) the ALB admits the internet on 80 and 443, and nothing else does; prod's ALB, behind
    CloudFront, admits only CloudFront's prefix list (tests/test_cdn.py)."""
    p = preview("dev")
    sg = p.one("aws:ec2/securityGroup:SecurityGroup", "keel-dev-alb")
    ports = sorted({r.inputs["port"] for r in p.of_type("aws:lb/targetGroup:TargetGroup")})
    assert sg_rules(p, sg) == sorted(
        [
            ("Ingress", "0.0.0.0/0", "tcp", (80, 80)),
            ("Ingress", "0.0.0.0/0", "tcp", (443, 443)),
            *[("Egress", "keel-dev-nodes", "tcp", (port, port)) for port in ports],
        ],
        key=str,
    )
    nodes = p.one("aws:ec2/securityGroup:SecurityGroup", "keel-dev-nodes")
    from_alb = [r for r in sg_rules(p, nodes) if r[1] == "keel-dev-alb"]
    assert from_alb == [("Ingress", "keel-dev-alb", "tcp", (port, port)) for port in ports]
    for stack in ("dev", "prod"):
        open_rules = [
            r
            for r in preview(stack).of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
            if r.inputs.get("cidrIpv4") == "0.0.0.0/0"
        ]
        assert sorted(r.name for r in open_rules) == (
            [] if stack == "prod" else ["keel-dev-alb-443", "keel-dev-alb-80"]
        )


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_alb_and_listeners(preview: Callable[[str], Preview], env: str) -> None:
    p = preview(env)
    prod = env == "prod"
    alb = p.one("aws:lb/loadBalancer:LoadBalancer", f"keel-{env}")
    i = alb.inputs
    assert (i["loadBalancerType"], i["internal"]) == ("application", False)
    assert i["dropInvalidHeaderFields"] is True
    assert i["desyncMitigationMode"] == "strictest"
    assert i["enableDeletionProtection"] is prod
    logs = p.one("aws:s3/bucket:Bucket", f"keel-{env}-logs")
    assert i["accessLogs"] == {"bucket": physical_id(logs), "prefix": "alb", "enabled": True}
    assert p.one("aws:s3/bucketPolicy:BucketPolicy", f"keel-{env}-logs").urn in alb.dependencies
    assert sorted(p.by_urn()[u].name for u in alb.property_dependencies["subnets"]) == sorted(
        s.name for s in p.of_type("aws:ec2/subnet:Subnet") if "-public-" in s.name and "-standby-" not in s.name
    )
    https = p.one("aws:lb/listener:Listener", f"keel-{env}-https").inputs
    assert (https["port"], https["protocol"], https["sslPolicy"]) == (
        443,
        "HTTPS",
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
    )
    assert https["defaultActions"][0]["type"] == "fixed-response"
    if prod:  # behind CloudFront, which redirects viewers to HTTPS: nothing reaches port 80
        assert [listener.name for listener in p.of_type("aws:lb/listener:Listener")] == ["keel-prod-https"]
    else:
        http = p.one("aws:lb/listener:Listener", f"keel-{env}-http").inputs
        assert (http["port"], http["protocol"]) == (80, "HTTP")
        assert http["defaultActions"] == [
            {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
        ]
    if prod:
        assert (
            https["certificateArn"]
            == "arn:aws:acm:us-east-1:111122223333:certificate/0f6e2c1a-7b7d-4a57-9d55-1f0a3c9e8b21"
        )
        assert not p.of_type("aws:acm/certificate:Certificate")
    else:
        cert = p.one("aws:acm/certificate:Certificate", "keel-dev")
        assert cert.inputs["domainName"] == "api.dev.example.com"
        assert cert.inputs["subjectAlternativeNames"] == ["app.dev.example.com"]
        assert cert.inputs["validationMethod"] == "DNS"
        aliases = sorted(r.inputs["name"] for r in p.of_type("aws:route53/record:Record") if r.inputs["type"] == "A")
        assert aliases == ["api.dev.example.com", "app.dev.example.com"]


@pytest.mark.parametrize(
    ("service", "host", "port"), [("web", "app.example.com", 3000), ("api", "api.example.com", 3001)]
)
def test_target_groups_and_rules(preview: Callable[[str], Preview], service: str, host: str, port: int) -> None:
    p = preview("prod")
    group = p.one("aws:lb/targetGroup:TargetGroup", f"keel-prod-{service}")
    assert (group.inputs["targetType"], group.inputs["port"], group.inputs["protocol"]) == ("ip", port, "HTTP")
    assert group.inputs["healthCheck"]["path"] == "/healthz"
    rule = p.one("aws:lb/listenerRule:ListenerRule", f"keel-prod-{service}-0")
    assert rule.inputs["conditions"] == [
        {"hostHeader": {"values": [host]}},
        {"pathPattern": {"values": ["/*"]}},
        # behind CloudFront: only requests carrying the distributions' secret header (masked: a secret output)
        {"httpHeader": {"httpHeaderName": "X-Origin-Verify", "values": ["[secret]"]}},
    ]
    assert rule.property_dependencies["actions"] == [group.urn]
    assert rule.inputs["actions"][0]["type"] == "forward"


def test_waf_in_prod_only(preview: Callable[[str], Preview]) -> None:
    """prod's web ACL filters at CloudFront (scope CLOUDFRONT, in us-east-1) on every distribution; the ALB behind
    it has no web ACL of its own."""
    acl = preview("prod").one("aws:wafv2/webAcl:WebAcl", "keel-prod-cdn")
    rules = acl.inputs["rules"]
    managed = [
        r["statement"]["managedRuleGroupStatement"]["name"]
        for r in rules
        if "managedRuleGroupStatement" in r["statement"]
    ]
    assert managed == [
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    ]
    rate = rules[-1]
    assert rate["statement"]["rateBasedStatement"] == {
        "limit": 2000,
        "aggregateKeyType": "IP",
        "evaluationWindowSec": 300,
    }
    assert rate["action"] == {"block": {}}
    assert (acl.inputs["scope"], acl.inputs["region"]) == ("CLOUDFRONT", "us-east-1")
    assert not preview("prod").of_type("aws:wafv2/webAclAssociation:WebAclAssociation")
    distributions = preview("prod").of_type("aws:cloudfront/distribution:Distribution")
    assert len(distributions) == 2
    assert all(d.property_dependencies["webAclId"] == [acl.urn] for d in distributions)
    assert not preview("dev").of_type("aws:wafv2/webAcl:WebAcl")


# ------------------------------------------------------------------------------------------ images


def test_ecr_repositories(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    repos = p.of_type("aws:ecr/repository:Repository")
    assert sorted(r.name for r in repos) == [
        f"keel-prod-{s}" for s in ("api", "forecast-engine", "forecast-trainer", "web")
    ]
    for repo in repos:
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS"}]
        assert repo.inputs["forceDelete"] is False
        lifecycle = json.loads(p.one("aws:ecr/lifecyclePolicy:LifecyclePolicy", repo.name).inputs["policy"])
        assert lifecycle["rules"][0]["selection"] == {
            "tagStatus": "any",
            "countType": "imageCountMoreThan",
            "countNumber": 30,
        }


def test_build_pushes_to_the_service_repository_and_pods_run_the_digest() -> None:
    raw = services_stack({"web": {"build": {"context": "apps/web"}, "port": 3000, "replicas": {"min": 2, "max": 2}}})
    raw["keel:caches"] = "{}"
    from components.platform import Platform
    from tests.helpers import run

    cfg = validate("prod", raw)
    p = run(lambda: Platform("keel-prod", cfg), stack="prod")
    image = p.one("docker:index/image:Image", "keel-prod-web")
    assert image.inputs["build"]["context"] == "./apps/web"
    assert image.inputs["build"]["platform"] == "linux/amd64"
    assert image.inputs["registry"]["password"] == "[secret]"
    assert image.inputs["registry"]["username"] == "AWS"
    repo = p.one("aws:ecr/repository:Repository", "keel-prod-web")
    assert image.property_dependencies["registry"] == [repo.urn]
    deployment = p.one("kubernetes:apps/v1:Deployment", "keel-prod-web")
    container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
    assert "@sha256:" in container["image"]
    assert container["image"].startswith(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/keel-prod-web")
    assert image.urn in deployment.dependencies


# ------------------------------------------------------------------------------------------ identity

EXPECTED_POLICIES = {
    "web": [],
    "api": [
        "keel-prod-api-cache-cache",
        "keel-prod-api-cache-queue",
        "keel-prod-api-database-connect",
        "keel-prod-api-email-send",
        "keel-prod-api-secrets",
        "keel-prod-api-uploads-read-write",
    ],
    "forecast-engine": ["keel-prod-forecast-engine-artifacts-read", "keel-prod-forecast-engine-cache-queue"],
    "forecast-trainer": ["keel-prod-forecast-trainer-artifacts-read-write", "keel-prod-forecast-trainer-cache-queue"],
}


@pytest.mark.parametrize("service", list(EXPECTED_POLICIES))
def test_service_roles_hold_only_their_grants(preview: Callable[[str], Preview], service: str) -> None:
    p = preview("prod")
    role = p.one("aws:iam/role:Role", f"keel-prod-{service}")
    attached = sorted(
        r.name for r in p.of_type("aws:iam/rolePolicy:RolePolicy") if r.property_dependencies.get("role") == [role.urn]
    )
    assert attached == EXPECTED_POLICIES[service]
    assert not [
        a
        for a in p.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.property_dependencies.get("role") == [role.urn]
    ]
    trust = policy_doc(role, "assumeRolePolicy")["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    association = p.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", f"keel-prod-{service}")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == ("apps", service)


def test_api_policy_documents_exactly(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    docs = {
        r.name: policy_doc(r)["Statement"]
        for r in p.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.name.startswith("keel-prod-api-")
    }
    uploads = f"arn:aws:s3:::{physical_id(p.one('aws:s3/bucket:Bucket', 'keel-prod-uploads'))}"
    storage_key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{physical_id(p.one('aws:kms/key:Key', 'keel-prod-storage'))}"
    assert docs["keel-prod-api-uploads-read-write"] == [
        {"Sid": "ListBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": uploads},
        {
            "Sid": "ReadWriteObjects",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
            ],
            "Resource": f"{uploads}/*",
        },
        {
            "Sid": "UseKeyThroughS3",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": storage_key,
            "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
        },
    ]
    # database:connect: an IAM token for the master user at the proxy (prx-<id>), no secret (tests/test_proxy.py)
    [connect] = docs["keel-prod-api-database-connect"]
    assert (connect["Action"], connect["Resource"].rsplit(":", 1)[1].split("/")) == (
        "rds-db:connect",
        [f"prx-{digest(p.one('aws:rds/proxy:Proxy', 'keel-prod-db-proxy').urn)[:17]}", "keel_admin"],
    )
    assert docs["keel-prod-api-email-send"] == [
        {
            "Sid": "SendAsIdentity",
            "Effect": "Allow",
            "Action": ["ses:SendEmail", "ses:SendRawEmail"],
            "Resource": [
                f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/example.com",
                f"arn:aws:ses:us-east-1:{ACCOUNT}:configuration-set/keel-prod-mail",
            ],
        }
    ]
    for statements in docs.values():
        for statement in statements:
            assert statement["Resource"] != "*"
            assert "*" not in str(statement["Action"])


# ------------------------------------------------------------------------------------------ pods


def deployment(p: Preview, service: str) -> dict[str, Any]:
    return dict(p.one("kubernetes:apps/v1:Deployment", f"keel-prod-{service}").inputs)


@pytest.mark.parametrize(("service", "port"), [("web", 3000), ("api", 3001), ("forecast-engine", 8000)])
def test_deployments_are_hardened(preview: Callable[[str], Preview], service: str, port: int) -> None:
    p = preview("prod")
    step = p.one("kubernetes:apps/v1:Deployment", f"keel-prod-{service}")
    d = step.inputs
    assert d["metadata"]["namespace"] == "apps"
    assert "replicas" not in d["spec"]  # the autoscaler owns it
    assert step.ignore_changes == ["spec.replicas"]
    pod = d["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == service
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["nodeSelector"] == {"keel.dev/pool": "general"}
    assert [c["topologyKey"] for c in pod["topologySpreadConstraints"]] == [
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    ]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
    [container] = pod["containers"]
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert container["ports"] == [
        {"name": "http", "containerPort": port, "protocol": "TCP"},
        {"name": "metrics", "containerPort": upstream.OTEL_PROMETHEUS_PORT.value, "protocol": "TCP"},
    ]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["resources"]["limits"]["memory"] == container["resources"]["requests"]["memory"]
    assert "@sha256:" in container["image"]
    pdb = p.one("kubernetes:policy/v1:PodDisruptionBudget", f"keel-prod-{service}").inputs["spec"]
    assert pdb == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": service, "app.kubernetes.io/part-of": "keel"}},
    }
    svc = p.one("kubernetes:core/v1:Service", f"keel-prod-{service}").inputs["spec"]
    assert svc["type"] == "ClusterIP"
    assert svc["ports"] == [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}]


def test_connection_settings_are_references_not_secrets(preview: Callable[[str], Preview]) -> None:
    env = {
        e["name"]: e["value"]
        for e in deployment(preview("prod"), "api")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["DATABASE_HOST"].startswith("keel-prod-db-proxy.proxy-")  # database:connect, through RDS Proxy
    assert env["DATABASE_PORT"] == "5432"
    assert (env["DATABASE_USER"], env["DATABASE_IAM_LOGIN"]) == ("keel_admin", "true")
    assert "DATABASE_SECRET_ARN" not in env
    assert env["REDIS_QUEUE_TLS"] == "true"
    assert env["REDIS_CACHE_CLUSTER_MODE"] == "true"
    assert env["REDIS_QUEUE_AUTH_SECRET_ARN"].startswith(f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:")
    assert env["SES_CONFIGURATION_SET"] == "keel-prod-mail"
    assert env["STRIPE_KEY_SECRET_ARN"].startswith(
        f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:keel-prod-api-secret-stripe-key-"
    )
    assert not [k for k in env if "PASSWORD" in k or k.endswith("TOKEN")]
    web = {e["name"] for e in deployment(preview("prod"), "web")["spec"]["template"]["spec"]["containers"][0]["env"]}
    # nothing granted, nothing described: the region, the name and where to serve metrics
    assert web == {"AWS_REGION", "SERVICE_NAME", *upstream.OTEL_PROMETHEUS_ENV.value}


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_pods_get_exactly_the_variables_config_validation_reserves(preview: Callable[[str], Preview], env: str) -> None:
    """What the config rules call keel's own variables (a secret's ARN variable may not be one) is what the pods
    get: the region, the name, the exporter's and each grant's; then the config's env and a variable per secret."""
    raw, _ = stackfiles.load_config(ROOT, env, stackfiles.load_project(ROOT), stack_file(env))
    p = preview(env)
    for name, svc in validate(env, raw).services.items():
        if svc.kind != "deployment":
            continue
        spec = p.one("kubernetes:apps/v1:Deployment", f"keel-{env}-{name}").inputs["spec"]["template"]["spec"]
        names = {e["name"] for e in spec["containers"][0]["env"]}
        assert names == svc.keel_variables | set(svc.env) | {vocabulary.secret_variable(s) for s in svc.secrets}


def test_target_group_bindings(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    schema = crd_schema("targetgroupbindings.elbv2.k8s.aws", "v1beta1")
    controller = p.one("kubernetes:helm.sh/v3:Release", "keel-prod-aws-load-balancer-controller")
    bindings = p.of_type("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")
    assert sorted(b.name for b in bindings) == ["keel-prod-api", "keel-prod-web"]
    for binding in bindings:
        service = binding.name.removeprefix("keel-prod-")
        spec = binding.inputs["spec"]
        assert spec["serviceRef"] == {"name": service, "port": 3000 if service == "web" else 3001}
        assert spec["targetType"] == "ip"
        assert binding.property_dependencies["spec"] == [p.one("aws:lb/targetGroup:TargetGroup", binding.name).urn]
        assert controller.urn in binding.dependencies
        jsonschema.validate(k8s_object(binding), schema)


def test_network_policies(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    policies = {
        s.inputs["metadata"]["name"]: s.inputs["spec"]
        for s in p.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": []}
    public = ["10.20.192.0/22", "10.20.196.0/22", "10.20.200.0/22"]
    assert policies["web-ingress"]["ingress"] == [
        {"from": [{"ipBlock": {"cidr": c}} for c in public], "ports": [{"protocol": "TCP", "port": 3000}]}
    ]
    api_sources = policies["api-ingress"]["ingress"][0]["from"]
    assert api_sources[-1] == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "keel"}}
    }
    assert policies["forecast-engine-ingress"]["ingress"] == [
        {
            "from": [
                {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "api", "app.kubernetes.io/part-of": "keel"}}}
            ],
            "ports": [{"protocol": "TCP", "port": 8000}],
        }
    ]
    assert "forecast-trainer-ingress" not in policies  # a job: default deny
    namespace = p.one("kubernetes:core/v1:Namespace", "keel-prod-apps").inputs["metadata"]
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# ------------------------------------------------------------------------------------------ rollouts and metrics

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_rollouts_wait_for_the_alb_through_readiness_gates(preview: Callable[[str], Preview]) -> None:
    """The apps namespace carries the label the load balancer controller's pod webhook selects; each binding is of
    the target type the webhook injects a gate for and names a Service that selects the pods; the chart's
    defaults (injection on, a webhook that never blocks pod creation) are left alone. A new pod is then Ready only
    when its target is healthy, and a rollout (maxUnavailable: 0) never empties a target group."""
    p = preview("prod")
    key, value = upstream.LB_READINESS_GATE_LABEL.value
    labels = p.one("kubernetes:core/v1:Namespace", "keel-prod-apps").inputs["metadata"]["labels"]
    assert labels[key] == value
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    values = p.one("kubernetes:helm.sh/v3:Release", "keel-prod-aws-load-balancer-controller").inputs["values"]
    assert upstream.LB_READINESS_GATE_INJECT_DEFAULT.value is True
    assert not {"enablePodReadinessGateInject", "webhookNamespaceSelectors", "podMutatorWebhookConfig"} & set(values)
    bindings = p.of_type(BINDING)
    assert sorted(b.name for b in bindings) == ["keel-prod-api", "keel-prod-web"]
    for binding in bindings:
        spec = binding.inputs["spec"]
        assert spec["targetType"] == upstream.LB_READINESS_GATE_TARGET_TYPE.value
        service = p.one("kubernetes:core/v1:Service", binding.name).inputs
        assert service["metadata"]["name"] == spec["serviceRef"]["name"]
        template = p.one(DEPLOYMENT, binding.name).inputs["spec"]
        assert service["spec"]["selector"].items() <= template["template"]["metadata"]["labels"].items()
        assert template["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_exposed_pods_sleep_through_deregistration_before_sigterm(preview: Callable[[str], Preview], env: str) -> None:
    """An exposed pod sleeps (the kubelet's sleep handler: no shell in the image) for the controller's
    deregistration plus its target group's deregistration delay, then gets its shutdown time, all inside a grace
    period that counts from before the hook. A deployment the ALB does not reach keeps the default."""
    from components.service import APP_SHUTDOWN_SECONDS

    p = preview(env)
    for service in ("web", "api"):
        delay = p.one("aws:lb/targetGroup:TargetGroup", f"keel-{env}-{service}").inputs["deregistrationDelay"]
        sleep = delay + upstream.ENDPOINT_PROPAGATION_SECONDS.value
        pod = p.one(DEPLOYMENT, f"keel-{env}-{service}").inputs["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["lifecycle"] == {"preStop": {upstream.PRESTOP_SLEEP_HANDLER.value: {"seconds": sleep}}}
        assert upstream.GRACE_PERIOD_INCLUDES_PRESTOP.value is True
        assert pod["terminationGracePeriodSeconds"] > sleep + APP_SHUTDOWN_SECONDS
    assert delay == 30
    engine = p.one(DEPLOYMENT, f"keel-{env}-forecast-engine").inputs["spec"]["template"]["spec"]
    assert "lifecycle" not in engine["containers"][0]
    assert engine["terminationGracePeriodSeconds"] == 30


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_sleep_handler_is_on_in_every_supported_version(preview: Callable[[str], Preview], version: str) -> None:
    assert _version(version) >= _version(upstream.SLEEP_ACTION_ON_BY_DEFAULT_SINCE.value)
    manifest = k8s_object(preview("prod").one(DEPLOYMENT, "keel-prod-web"))
    kubernetes_validate.validate(manifest, f"{version}.0", strict=True)


def test_metrics_port_is_on_no_service_target_group_or_listener(preview: Callable[[str], Preview]) -> None:
    """web and api serve metrics on their own named port, which the app is told (the exporter's host and port
    variables); the Service, the binding, the target group, the ALB's listeners and security group and the
    service's NetworkPolicy know only the http port."""
    p = preview("prod")
    metrics = upstream.OTEL_PROMETHEUS_PORT.value
    host_var, port_var = upstream.OTEL_PROMETHEUS_ENV.value
    for service, port in (("web", 3000), ("api", 3001)):
        [container] = p.one(DEPLOYMENT, f"keel-prod-{service}").inputs["spec"]["template"]["spec"]["containers"]
        assert {c["name"]: c["containerPort"] for c in container["ports"]} == {"http": port, "metrics": metrics}
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env[port_var] == str(metrics)
        assert env[host_var] == "0.0.0.0" != upstream.OTEL_PROMETHEUS_HOST_DEFAULT.value
        svc = p.one("kubernetes:core/v1:Service", f"keel-prod-{service}").inputs["spec"]
        assert svc["ports"] == [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}]
        assert p.one(BINDING, f"keel-prod-{service}").inputs["spec"]["serviceRef"] == {"name": service, "port": port}
        assert p.one("aws:lb/targetGroup:TargetGroup", f"keel-prod-{service}").inputs["port"] == port
        policy = next(
            s.inputs["spec"]
            for s in p.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
            if s.inputs["metadata"]["name"] == f"{service}-ingress"
        )
        assert [rule["ports"] for rule in policy["ingress"]] == [[{"protocol": "TCP", "port": port}]]
    assert metrics not in {g.inputs["port"] for g in p.of_type("aws:lb/targetGroup:TargetGroup")}
    assert sorted(listener.inputs["port"] for listener in p.of_type("aws:lb/listener:Listener")) == [443]
    alb = p.one("aws:ec2/securityGroup:SecurityGroup", "keel-prod-alb")
    assert all(metrics not in ports for *_, ports in sg_rules(p, alb))
    for svc_step in p.of_type("kubernetes:core/v1:Service"):
        for svc_port in svc_step.inputs["spec"]["ports"]:
            assert (
                metrics not in (svc_port["port"], svc_port.get("targetPort"))
                and svc_port.get("targetPort") != "metrics"
            )


def test_a_service_without_metrics_serves_only_http() -> None:
    from components.service import metrics_env, pod_spec

    raw = services_stack(with_web(metricsPort=None))
    cfg = validate("prod", raw).services["web"]
    assert cfg.metrics_port is None
    [container] = pod_spec("web", cfg, IMAGE, metrics_env(cfg))["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    assert container["env"] == []
    custom = validate("prod", services_stack(with_web(metricsPort=9100))).services["web"]
    assert metrics_env(custom) == {"OTEL_EXPORTER_PROMETHEUS_HOST": "0.0.0.0", "OTEL_EXPORTER_PROMETHEUS_PORT": "9100"}


def test_one_replica_in_dev_never_blocks_a_drain(preview: Callable[[str], Preview]) -> None:
    """dev's forecast-engine runs one replica; its budget allows one disruption (maxUnavailable, no
    minAvailable), so a node drain evicts it instead of waiting forever. prod keeps two (config checks)."""
    p = preview("dev")
    scaled = p.one("kubernetes:keda.sh/v1alpha1:ScaledObject", "keel-dev-forecast-engine").inputs["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (1, 1)
    budget = p.one("kubernetes:policy/v1:PodDisruptionBudget", "keel-dev-forecast-engine").inputs["spec"]
    assert budget["maxUnavailable"] == 1 and "minAvailable" not in budget


def test_trainer_pod_template(preview: Callable[[str], Preview]) -> None:
    from components.service import pod_spec

    cfg = validate("prod", {**services_stack(BASE_SERVICES)}).services["trainer"]
    spec = pod_spec("trainer", cfg, IMAGE, {})
    assert spec["restartPolicy"] == "Never"
    assert spec["terminationGracePeriodSeconds"] == 120
    assert spec["nodeSelector"] == {"keel.dev/pool": "gpu"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # a job serves nothing but its metrics, and gets no preStop sleep (no load balancer drains it)
    assert spec["containers"][0]["ports"] == [
        {"name": "metrics", "containerPort": upstream.OTEL_PROMETHEUS_PORT.value, "protocol": "TCP"}
    ]
    assert "lifecycle" not in spec["containers"][0]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trainer", "namespace": "apps"}, "spec": spec}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    p = preview("prod")
    assert not p.of_type("kubernetes:batch/v1:Job")  # KEDA's ScaledJob runs it (scaling)
    assert p.one("kubernetes:core/v1:ServiceAccount", "keel-prod-forecast-trainer")


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_every_core_object_passes_strict_schema_validation(preview: Callable[[str], Preview], env: str) -> None:
    p = preview(env)
    core = [
        s
        for s in p.steps
        if s.type.startswith("kubernetes:")
        and s.custom
        and not any(
            group in s.type for group in ("helm.sh", "elbv2.k8s.aws", "keda.sh", "monitoring.coreos.com")
        )  # custom resources
    ]
    # namespace, default deny, 4 service accounts, 3 x (deployment, PDB, service, policy), web's HPA; prod's
    # Prometheus adds its namespace, Grafana's admin Secret, the gp3 StorageClass and the scrape NetworkPolicy
    assert len(core) == (23 if env == "prod" else 19)
    for step in core:
        manifest = k8s_object(step)
        if manifest["kind"] == "Secret":
            assert manifest.pop("stringData") == "[secret]"  # Grafana's password never shows in a preview
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_bindings_are_replaced_not_updated_and_routes_keep_their_priority(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    for binding in p.of_type("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"):
        # the controller's webhook refuses to change spec.targetGroupARN in place
        assert binding.replace_on_changes == ["spec.targetGroupARN"]
        assert binding.delete_before_replace is True
    assert p.one("aws:lb/listenerRule:ListenerRule", "keel-prod-web-0").inputs["priority"] == 100
    assert p.one("aws:lb/listenerRule:ListenerRule", "keel-prod-api-0").inputs["priority"] == 200
    dev = preview("dev")  # not pinned: computed above every pinnable number
    assert dev.one("aws:lb/listenerRule:ListenerRule", "keel-dev-api-0").inputs["priority"] == 49010
    assert dev.one("aws:lb/listenerRule:ListenerRule", "keel-dev-web-0").inputs["priority"] == 49020


def test_each_build_context_gets_its_own_tag(tmp_path: Path) -> None:
    from components.service import context_digest

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    first = context_digest(tmp_path)
    assert context_digest(tmp_path) == first
    (tmp_path / "app.py").write_text("print('hi')\n")
    assert context_digest(tmp_path) != first


def test_objects_are_validated_against_the_clusters_version(preview: Callable[[str], Preview]) -> None:
    for stack in ("prod", "dev"):
        assert preview(stack).one("eks:index:Cluster", f"keel-{stack}-eks").inputs["version"] + ".0" == K8S_VERSION
