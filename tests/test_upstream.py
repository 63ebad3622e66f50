"""components.upstream: every fact keel relies on names where it was read, and is used."""

from __future__ import annotations

import re
from pathlib import Path

from components import upstream
from components.upstream import Fact, Source

ROOT = Path(__file__).resolve().parent.parent


def facts() -> dict[str, Fact[object]]:
    return {name: value for name, value in vars(upstream).items() if isinstance(value, Fact)}


def test_every_fact_names_its_repository_version_and_file() -> None:
    assert len(facts()) > 40
    for name, fact in facts().items():
        source = fact.source
        assert isinstance(source, Source), name
        assert re.fullmatch(r"[\w.-]+/[\w.-]+|[\w.-]+\.[a-z]{2,}(/\S*)?", source.repo), (name, source.repo)
        assert source.version.strip() and source.path.strip(), name
        assert source.line is None or source.line > 0, name


def code_of(path: Path) -> str:
    """A module's names as code uses them: comments and docstrings are not a use."""
    import ast

    tree = ast.parse(path.read_text())
    return "\n".join(
        node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Name | ast.Attribute | ast.alias)
    )


def test_every_fact_is_read_by_code_or_a_test() -> None:
    """A fact nobody reads is a claim nobody checks: each is used outside the module that defines it, or grouped
    there (``CHART_FACTS``, which a test checks against the pinned chart versions)."""
    text = "\n".join(
        code_of(p)
        for folder in ("components", "policies", "keel", "tests")
        for p in (ROOT / folder).rglob("*.py")
        if p.parent.name != "upstream"
    )
    own = "\n".join(p.read_text() for p in (ROOT / "components" / "upstream").glob("*.py"))
    unused = [
        name for name in facts() if not re.search(rf"\b{name}\b", text) and len(re.findall(rf"\b{name}\b", own)) < 2
    ]
    assert unused == []


def test_the_creators_admin_access_is_set_once_at_creation() -> None:
    """Why keel turns it off at creation: the provider forces a new cluster when it changes (keel diff's data)."""
    import json

    replacements = json.loads((ROOT / "keel" / "data" / "replacements.json").read_text())
    forces = replacements["types"]["aws:eks/cluster:Cluster"]["forceNew"]
    assert upstream.EKS_CREATOR_ADMIN_CREATION_ONLY.value is True
    assert "accessConfig.bootstrapClusterCreatorAdminPermissions" in forces


def test_keel_leaves_the_pod_webhook_failure_policy_at_the_charts_default() -> None:
    """Pods still start when the load balancer controller is down (without the readiness gate), because keel keeps
    the chart's ``Ignore``: it sets no ``podMutatorWebhookConfig``."""
    from components.addons import values

    lbc = values("keel-prod", "us-east-1", "vpc-1", "1.34")["aws-load-balancer-controller"]
    assert upstream.LB_POD_WEBHOOK_FAILURE_POLICY.value == "Ignore"
    assert "podMutatorWebhookConfig" not in lbc
