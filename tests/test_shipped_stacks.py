"""The shipped stacks, by invariants only: every ``Pulumi.<stack>.yaml`` at the project's root (found, never listed)
has a valid config and its own policy config, previews, passes the policy pack at that config with no mandatory
violation, and every Kubernetes object it registers is schema-valid.

Nothing here counts resources or names them: exact counts and names are asserted on the tests' own stacks
(tests/stacks), so adding a service or a stack to the shipped files breaks no test."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from components.config import StackConfig, validate
from keel import cli, policy, stackfiles
from keel.engine import Preview
from tests.helpers import ROOT, kubernetes_schema_problems

SHIPPED = stackfiles.stacks(ROOT)


def test_the_project_ships_stacks() -> None:
    assert SHIPPED, "no Pulumi.<stack>.yaml at the project's root"


@pytest.mark.parametrize("stack", SHIPPED)
def test_config_is_valid_and_has_its_policy_config(stack: str) -> None:
    raw, secret_keys = stackfiles.load_config(ROOT, stack, stackfiles.load_project(ROOT))
    assert isinstance(validate(stack, raw, secret_keys=secret_keys), StackConfig)
    assert policy.config_file(stack).is_file()  # policies/config.<stack>.json, which the workflows pass


@pytest.mark.parametrize("stack", SHIPPED)
def test_previews_passes_its_policy_config_and_is_schema_valid(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`keel preview STACK --json` as the pull-request workflow runs it: exit 0 (no program failure, no secret leak,
    no mandatory violation at policies/config.<stack>.json) and nothing on stderr; then every Kubernetes object
    against its schema, at the version of the stack's cluster."""
    code = cli.main(["preview", stack, "--json"])
    out, err = capsys.readouterr()
    assert err == ""
    document = json.loads(out)
    mandatory = [
        (v["policyName"], v["urn"].rsplit("::", 1)[-1], v["message"])
        for v in document["policyViolations"]
        if v["enforcementLevel"] == "mandatory"
    ]
    assert mandatory == []
    assert code == 0
    steps = document["steps"]
    assert steps and document["changeSummary"] == {"create": len(steps)}
    versions = {s["newState"]["inputs"]["version"] for s in steps if s["newState"]["type"] == "eks:index:Cluster"}
    if not versions:  # no cluster, no Kubernetes objects
        assert not [s for s in steps if s["newState"]["type"].startswith("kubernetes:")]
        return
    [version] = versions
    assert kubernetes_schema_problems(steps, f"{version}.0") == []


def test_the_schema_check_catches_a_broken_object(preview: Callable[[str], Preview]) -> None:
    """The invariant above is no formality: on the tests' prod stack, one bad field in a core object and one in a
    custom resource are each reported, naming the resource."""
    steps = copy.deepcopy(preview("prod").to_json()["steps"])
    assert kubernetes_schema_problems(steps, "1.34.0") == []
    broken = []
    for step in steps:
        state = step["newState"]
        if state["urn"].endswith("Deployment::keel-prod-web"):
            state["inputs"]["spec"]["replicas"] = "two"
            broken.append(step)
        if state["urn"].endswith("TargetGroupBinding::keel-prod-api"):
            state["inputs"]["spec"]["targetType"] = "pod"
            broken.append(step)
    assert kubernetes_schema_problems(broken, "1.34.0") == [
        "keel-prod-web (kubernetes:apps/v1:Deployment): 'two' is not of type 'integer', 'null'",
        "keel-prod-api (kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding): 'pod' is not one of ['instance', 'ip']",
    ]
