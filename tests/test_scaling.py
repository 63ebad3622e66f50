"""Autoscaling: one HPA, ScaledObject or ScaledJob per service, exactly as the architecture asks, per stack."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from components import upstream
from components.config import ConfigError, validate
from components.scaling import hpa_behavior
from keel.engine import Preview, Step
from tests.helpers import PROD_OPERATIONS, crd_schema, k8s_object, physical_id

ACCOUNT = "123456789012"
IMAGE = "111122223333.dkr.ecr.us-east-1.amazonaws.com/web@sha256:" + "a" * 64
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
SCALED_JOB = "kubernetes:keda.sh/v1alpha1:ScaledJob"
TRIGGER_AUTH = "kubernetes:keda.sh/v1alpha1:TriggerAuthentication"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"

# ------------------------------------------------------------------------------------------ config rules

CLUSTER = {
    "nodeGroups": {
        "general": {"instanceTypes": ["m5.xlarge"], "minSize": 2, "maxSize": 4},
        "gpu": {"instanceTypes": ["g4dn.xlarge"], "capacityType": "SPOT", "minSize": 0, "maxSize": 1, "gpu": True},
    }
}
CERT = "arn:aws:acm:us-east-1:111122223333:certificate/0f6e2c1a-7b7d-4a57-9d55-1f0a3c9e8b21"
WEB = {"image": IMAGE, "port": 3000, "replicas": {"min": 2, "max": 4}, "ingress": {"host": "app.example.com"}}
WORKER = {"image": IMAGE, "port": 8000, "replicas": {"min": 2, "max": 2}}
QUEUE = {"cache": "queue", "list": "jobs", "length": 5}
JOB = {
    "kind": "job",
    "image": IMAGE,
    "gpu": 1,
    "replicas": {"min": 0, "max": 1},
    "scaleOn": {"queue": {"cache": "queue", "list": "jobs", "length": 1}},
}


def stack(environment: str = "prod", **services: Any) -> dict[str, str]:
    return {
        "aws:region": "us-east-1",
        "keel:environment": environment,
        "keel:cluster": json.dumps(CLUSTER),
        # a prod queue survives the region: a Global Datastore copy (crossRegion) on a node type that takes one
        "keel:caches": json.dumps(
            {"queue": {"replicasPerShard": 1, "nodeType": "cache.m6g.large", "crossRegion": environment == "prod"}}
        ),
        "keel:ingress": json.dumps({"certificateArn": CERT}),
        "keel:services": json.dumps(services),
        **(PROD_OPERATIONS if environment == "prod" else {}),
    }


CASES: list[tuple[str, dict[str, str], str]] = [
    (
        "cpu and memory",
        stack(web={**WEB, "scaleOn": {"cpu": 70, "memory": 80}}),
        "keel:services.web.scaleOn: got both cpu and memory; an HPA scales on one resource, pick one",
    ),
    (
        "two KEDA triggers",
        stack(
            web={**WEB, "scaleOn": {"requestsPerMinute": 100, "queue": {"cache": "queue", "list": "l", "length": 5}}}
        ),
        "keel:services.web.scaleOn: got requestsPerMinute and queue; one KEDA trigger per service "
        "(cpu may be added as a floor)",
    ),
    (
        "memory floor with KEDA",
        stack(web={**WEB, "scaleOn": {"requestsPerMinute": 100, "memory": 80}}),
        "keel:services.web.scaleOn.memory: got a memory floor with requestsPerMinute; only cpu can be combined with a "
        "KEDA trigger",
    ),
    (
        "no trigger",
        stack(web={**WEB, "scaleOn": {}}),
        "keel:services.web.scaleOn: got no trigger; set one of cpu, memory, requestsPerMinute or queue",
    ),
    (
        "requests without ingress",
        stack(worker={**WORKER, "scaleOn": {"requestsPerMinute": 100}}),
        "keel:services.worker.scaleOn.requestsPerMinute: got 100 but the service has no ingress to count",
    ),
    (
        "unknown cache",
        stack(worker={**WORKER, "scaleOn": {"queue": {"cache": "jobs", "list": "l", "length": 5}}}),
        "keel:services.worker.scaleOn.queue.cache: got 'jobs'; allowed: queue",
    ),
    (
        "job on cpu",
        stack(trainer={**JOB, "scaleOn": {"cpu": 50}}),
        "keel:services.trainer.scaleOn: got cpu for a job; a job scales on queue only",
    ),
    (
        "job without scaleOn",
        stack(trainer={k: v for k, v in JOB.items() if k != "scaleOn"}),
        "keel:services.trainer.scaleOn: required key is missing; a job runs when its queue has work (scaleOn.queue)",
    ),
    (
        "exposed below two in prod",
        stack(web={**WEB, "replicas": {"min": 1, "max": 4}, "scaleOn": {"cpu": 70}}),
        "keel:services.web.replicas.min: got 1 for a deployment in a prod stack; allowed: 2 or more (a node drain or "
        "a zone failure takes one pod; its disruption budget allows one at a time)",
    ),
    (
        "queue worker below two in prod",
        stack(worker={**WORKER, "replicas": {"min": 1, "max": 2}}),
        "keel:services.worker.replicas.min: got 1 for a deployment in a prod stack; allowed: 2 or more (a node drain "
        "or a zone failure takes one pod; its disruption budget allows one at a time)",
    ),
    (
        "scale to zero in prod",
        stack(worker={**WORKER, "replicas": {"min": 0, "max": 2}, "scaleOn": {"queue": QUEUE}}),
        "keel:services.worker.replicas.min: got 0 for a deployment in a prod stack; allowed: 2 or more (a node drain "
        "or a zone failure takes one pod; its disruption budget allows one at a time)",
    ),
    (
        "min above max",
        stack(web={**WEB, "replicas": {"min": 5, "max": 4}, "scaleOn": {"cpu": 70}}),
        "keel:services.web.replicas.min: got 5; must be at most replicas.max (4)",
    ),
    (
        "cpu trigger without a request",
        stack(web={**WEB, "scaleOn": {"cpu": 70}, "resources": {"cpu": "0"}}),
        "keel:services.web.resources.cpu: got '0'; a CPU trigger needs a CPU request",
    ),
    (
        "utilization out of range",
        stack(web={**WEB, "scaleOn": {"cpu": 170}}),
        "keel:services.web.scaleOn.cpu: got 170; allowed: 1 to 100",
    ),
]


@pytest.mark.parametrize(("raw", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_scaling_config_rules(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(raw["keel:environment"], raw)
    assert caught.value.problems == [message]


def test_prod_deployments_keep_two_replicas_dev_and_jobs_may_run_fewer() -> None:
    """The other side of the rule: prod accepts two, dev accepts one, and a job (no disruption budget; KEDA starts one
    per waiting item) idles at zero in prod too."""
    prod = validate("prod", stack(worker={**WORKER, "scaleOn": {"queue": QUEUE}}, trainer=JOB))
    assert (prod.services["worker"].replicas.min, prod.services["trainer"].replicas.min) == (2, 0)
    dev = validate("dev", stack("dev", worker={**WORKER, "replicas": {"min": 1, "max": 1}}))
    assert dev.services["worker"].replicas.min == 1


# ------------------------------------------------------------------------------------------ per service

BOUNDS = {
    "prod": {"web": (2, 4), "api": (2, 4), "forecast-engine": (2, 3), "forecast-trainer": (0, 1)},
    "dev": {"web": (1, 2), "api": (1, 2), "forecast-engine": (1, 1), "forecast-trainer": (0, 1)},
}


def scaling_objects(p: Preview) -> dict[str, Step]:
    out: dict[str, Step] = {}
    for kind in (HPA, SCALED_OBJECT, SCALED_JOB):
        for step in p.of_type(kind):
            service = step.inputs["metadata"]["name"]
            assert service not in out, f"{service} has two scaling objects"
            out[service] = step
    return out


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_one_scaling_object_per_service(preview: Callable[[str], Preview], env: str) -> None:
    p = preview(env)
    objects = scaling_objects(p)
    assert {s: o.type for s, o in objects.items()} == {
        "web": HPA,
        "api": SCALED_OBJECT,
        "forecast-engine": SCALED_OBJECT,
        "forecast-trainer": SCALED_JOB,
    }
    keda = p.one("kubernetes:helm.sh/v3:Release", f"keel-{env}-keda")
    for service, step in objects.items():
        spec = step.inputs["spec"]
        low, high = BOUNDS[env][service]
        if step.type == HPA:
            assert (spec["minReplicas"], spec["maxReplicas"]) == (low, high)
        else:
            assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (low, high)
            assert keda.urn in step.dependencies  # KEDA's CRDs exist first
        if service != "forecast-trainer":
            assert p.one("kubernetes:apps/v1:Deployment", f"keel-{env}-{service}").urn in step.dependencies


def test_web_scales_on_cpu(preview: Callable[[str], Preview]) -> None:
    hpa = scaling_objects(preview("prod"))["web"]
    assert hpa.inputs["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2,
        "maxReplicas": 4,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
            }
        ],
        "behavior": hpa_behavior(),
    }
    assert hpa_behavior()["scaleDown"]["stabilizationWindowSeconds"] == 300
    kubernetes_validate.validate(k8s_object(hpa), "1.34.0", strict=True)


def test_api_scales_on_requests_per_target(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    spec = scaling_objects(p)["api"].inputs["spec"]
    group = p.one("aws:lb/targetGroup:TargetGroup", "keel-prod-api")
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    assert spec["triggers"] == [
        {
            "type": "aws-cloudwatch",
            "name": "requests-per-target",
            "metricType": "Value",  # the metric is per target already: replicas x metric / target
            "authenticationRef": {"name": "api-aws"},
            "metadata": {
                "namespace": "AWS/ApplicationELB",
                "metricName": "RequestCountPerTarget",
                "dimensionName": "TargetGroup",
                "dimensionValue": f"targetgroup/{physical_id(group)}/{group_hash(group)}",
                "metricStat": "Sum",
                "metricStatPeriod": "60",
                "metricCollectionTime": "120",
                "metricEndTimeOffset": "60",
                "targetMetricValue": "1000",
                "minMetricValue": "0",
                "awsRegion": "us-east-1",
            },
        }
    ]
    auth = p.one(TRIGGER_AUTH, "keel-prod-api-aws")
    assert auth.inputs["spec"] == {"podIdentity": {"provider": "aws"}}


def test_cloudwatch_window_skips_the_minute_cloudwatch_is_still_filling(preview: Callable[[str], Preview]) -> None:
    """KEDA ends the query window at now - metricEndTimeOffset, truncated to the period, and takes the newest
    datapoint: with its default offset (0) that is the minute that has just ended, which CloudWatch may still be
    filling in. One period of offset reads the minute before; the window still holds two periods, a multiple of the
    period as KEDA requires. No window setting is left to KEDA's defaults (5-minute periods)."""
    [trigger] = scaling_objects(preview("prod"))["api"].inputs["spec"]["triggers"]
    window = {k: int(v) for k, v in trigger["metadata"].items() if k.startswith("metric") and v.isdigit()}
    defaults = upstream.KEDA_CLOUDWATCH_DEFAULTS.value
    assert set(window) == set(defaults)
    assert defaults["metricEndTimeOffset"] == 0 < window["metricEndTimeOffset"]
    assert window["metricEndTimeOffset"] >= window["metricStatPeriod"] == 60
    assert upstream.KEDA_CLOUDWATCH_COLLECTION_IS_A_MULTIPLE.value is True
    assert window["metricCollectionTime"] % window["metricStatPeriod"] == 0
    assert window["metricCollectionTime"] >= 2 * window["metricStatPeriod"]


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_no_cooldown_period_where_keda_ignores_it(preview: Callable[[str], Preview], env: str) -> None:
    """KEDA uses a ScaledObject's cooldownPeriod only to scale to zero; the stacks' ScaledObjects keep at least one
    replica, so they set none. A ScaledJob has no such field (its CRD)."""
    objects = scaling_objects(preview(env))
    at_zero = upstream.KEDA_COOLDOWN_ONLY_AT_MIN_REPLICAS.value
    for service in ("api", "forecast-engine"):
        spec = objects[service].inputs["spec"]
        assert spec["minReplicaCount"] != at_zero
        assert "cooldownPeriod" not in spec
    job_fields = crd_schema("scaledjobs.keda.sh", "v1alpha1")["properties"]["spec"]["properties"]
    object_fields = crd_schema("scaledobjects.keda.sh", "v1alpha1")["properties"]["spec"]["properties"]
    assert "cooldownPeriod" in object_fields and "cooldownPeriod" not in job_fields
    assert "cooldownPeriod" not in objects["forecast-trainer"].inputs["spec"]


def test_a_scaled_object_that_scales_to_zero_keeps_its_cooldown() -> None:
    from components.platform import Platform
    from tests.helpers import run

    raw = stack("dev", worker={**WORKER, "replicas": {"min": 0, "max": 2}, "scaleOn": {"queue": QUEUE}})
    cfg = validate("dev", raw)
    p = run(lambda: Platform("keel-dev", cfg), stack="dev", config=raw)
    step = p.one(SCALED_OBJECT, "keel-dev-worker")
    assert step.inputs["spec"]["minReplicaCount"] == upstream.KEDA_COOLDOWN_ONLY_AT_MIN_REPLICAS.value
    assert step.inputs["spec"]["cooldownPeriod"] == 300
    jsonschema.validate(k8s_object(step), crd_schema("scaledobjects.keda.sh", "v1alpha1"))


def group_hash(group: Step) -> str:
    from keel.fake import digest

    return digest(group.urn)[:16]


def test_engine_scales_on_queue_depth_over_tls(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    spec = scaling_objects(p)["forecast-engine"].inputs["spec"]
    [trigger] = spec["triggers"]
    assert trigger["type"] == "redis"  # the queue cache is not in cluster mode
    assert trigger["metadata"]["listName"] == "bull:forecast:wait"
    assert trigger["metadata"]["listLength"] == "10"
    assert trigger["metadata"]["enableTLS"] == "true"
    assert trigger["metadata"]["address"].startswith("master.") and trigger["metadata"]["address"].endswith(":6379")
    assert trigger["authenticationRef"] == {"name": "forecast-engine-redis"}
    assert "password" not in json.dumps(trigger)
    auth = p.one(TRIGGER_AUTH, "keel-prod-forecast-engine-redis").inputs["spec"]
    secret = p.one("aws:secretsmanager/secret:Secret", "keel-prod-queue-auth")
    assert auth == {
        "awsSecretManager": {
            "podIdentity": {"provider": "aws"},
            "region": "us-east-1",
            "secrets": [
                {
                    "parameter": "password",
                    "name": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:"
                    f"{physical_id(secret)}-{group_hash(secret)[:6]}",
                    "secretKey": "authToken",
                }
            ],
        }
    }
    # KEDA's role may read that secret (and only the caches it watches)
    keda_role = p.one("aws:iam/role:Role", "keel-prod-keda")
    granted = sorted(
        r.name
        for r in p.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.property_dependencies.get("role") == [keda_role.urn]
    )
    assert granted == ["keel-prod-keda", "keel-prod-keda-cache-queue"]


def test_trainer_is_a_scaled_job_from_zero_on_spot_gpus(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    spec = scaling_objects(p)["forecast-trainer"].inputs["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 1)
    assert spec["scalingStrategy"] == {"strategy": "accurate"}
    assert spec["rollout"] == {"strategy": "gradual"}
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 5)
    job = spec["jobTargetRef"]
    assert job["backoffLimit"] == 3
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["terminationGracePeriodSeconds"] == 120
    assert pod["nodeSelector"] == {"keel.dev/pool": "gpu"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    [trigger] = spec["triggers"]
    assert (trigger["type"], trigger["metadata"]["listName"], trigger["metadata"]["listLength"]) == (
        "redis",
        "bull:training:wait",
        "1",
    )


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_keda_objects_match_the_crd_schemas(preview: Callable[[str], Preview], env: str) -> None:
    p = preview(env)
    checked = 0
    for kind, plural in (
        (SCALED_OBJECT, "scaledobjects"),
        (SCALED_JOB, "scaledjobs"),
        (TRIGGER_AUTH, "triggerauthentications"),
    ):
        schema = crd_schema(f"{plural}.keda.sh", "v1alpha1")
        for step in p.of_type(kind):
            obj = k8s_object(step)
            jsonschema.validate(obj, schema)
            for trigger in obj["spec"].get("triggers", []):
                assert all(isinstance(v, str) for v in trigger["metadata"].values()), trigger
            checked += 1
    assert checked == 6  # 2 scaled objects, 1 scaled job, 3 trigger authentications


def test_a_cluster_mode_queue_uses_the_redis_cluster_scaler() -> None:
    from components.scaling import redis_trigger

    trigger = redis_trigger("clustercfg.example", 6379, True, "jobs", 5, "auth")
    assert trigger["type"] == "redis-cluster"
    assert trigger["metadata"] == {
        "addresses": "clustercfg.example:6379",
        "listName": "jobs",
        "listLength": "5",
        "enableTLS": "true",
    }
