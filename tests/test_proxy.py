"""RDS Proxy (``keel:database.proxy``): config both ways, the proxy and what it needs (its security group, role, log
group, pool and target), the ``database:connect`` grant (the role's ``rds-db:connect``, the pods' variables), the
policies both ways, the cost line, and the upstream facts the config's ranges come from."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pulumi_aws as aws
import pytest

from components import vocabulary
from components.config import ConfigError, DatabaseConfig, NetworkConfig, validate
from components.config.data import RESERVED_DIRECT_CONNECTIONS, ProxyConfig
from components.database import Database, proxy_user_arn, vcpus
from components.network import Network
from keel import cost
from keel.engine import FakeCloud, Preview, Step
from tests.helpers import REGION, physical_id, policy_doc, run, sg_rules, stack_config
from tests.test_policy_pack import DELETE, check_resource, patch, state

ACCOUNT = "123456789012"
CLUSTER = {"nodeGroups": {"general": {"instanceTypes": ["m5.xlarge"], "minSize": 2, "maxSize": 4}}}
IMAGE = "111122223333.dkr.ecr.us-east-1.amazonaws.com/keel-api@sha256:" + "0" * 64
PROXY = "aws:rds/proxy:Proxy"
SG = "aws:ec2/securityGroup:SecurityGroup"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def fake_state(step: Step) -> dict[str, Any]:
    """What the fake cloud reports for a resource (its ARN, endpoint, ...): derived from the URN, as in the preview."""
    return FakeCloud(REGION).resource(step.type, step.name, step.urn, dict(step.inputs))[1]


def raw(database: dict[str, Any] | None = None, grants: list[str] | None = None) -> dict[str, str]:
    """A dev stack with a cluster, ``database`` (when given) and one service ``api`` with ``grants``."""
    sections: dict[str, Any] = {"cluster": CLUSTER}
    if database is not None:
        sections["database"] = database
    if grants is not None:
        sections["services"] = {"api": {"image": IMAGE, "port": 3000, "grants": grants}}
    return stack_config("dev", **sections)


# ------------------------------------------------------------------------------------------ config


def test_a_proxy_takes_the_defaults_and_absent_is_none() -> None:
    cfg = validate("dev", raw({"proxy": {}}, ["database:connect"]))
    assert cfg.database is not None and cfg.database.proxy == ProxyConfig.model_validate({}, by_alias=True)
    proxy = cfg.database.proxy
    assert (
        proxy.max_connections_percent,
        proxy.max_idle_connections_percent,
        proxy.connection_borrow_timeout_seconds,
        proxy.idle_client_timeout_seconds,
    ) == (90, 50, 120, 1800)
    assert proxy.pool(200) == 180  # 20 direct connections left
    no_proxy = validate("dev", raw({}, ["database:secret"])).database
    assert no_proxy is not None and no_proxy.proxy is None


def test_the_bounds_are_accepted() -> None:
    """The API's bounds themselves, and a pool that leaves exactly the reserved direct connections."""
    for proxy in (
        {"maxConnectionsPercent": 99, "maxIdleConnectionsPercent": 99},
        {"connectionBorrowTimeoutSeconds": 0, "idleClientTimeoutSeconds": 1},
        {"connectionBorrowTimeoutSeconds": 300, "idleClientTimeoutSeconds": 28800, "maxIdleConnectionsPercent": 0},
    ):
        validate("dev", raw({"maxConnections": 1000, "proxy": proxy}, ["database:connect"]))
    # 91 x 90% = 81 (rounded down): 10 left, exactly RESERVED_DIRECT_CONNECTIONS
    assert RESERVED_DIRECT_CONNECTIONS == 10
    validate("dev", raw({"maxConnections": 91, "proxy": {}}))


P = "keel:database.proxy"
CASES: list[tuple[str, dict[str, str], list[str]]] = [
    (
        "idle above the pool",
        raw({"proxy": {"maxConnectionsPercent": 80, "maxIdleConnectionsPercent": 81}}),
        [f"{P}.maxIdleConnectionsPercent: got 81; must be at most {P}.maxConnectionsPercent (80)"],
    ),
    (
        "pool leaves too few direct connections",
        raw({"maxConnections": 20, "proxy": {}}),
        [
            f"{P}.maxConnectionsPercent: got 90 with keel:database.maxConnections 20: the proxy's pool of 18 leaves 2 "
            "direct connection(s), fewer than the 10 kept for clients outside the proxy "
            f"(superuser_reserved_connections, migrations, monitoring); allowed: {P}.maxConnectionsPercent at most 54 "
            "or keel:database.maxConnections at least 91"
        ],
    ),
    (
        "one connection short",
        raw({"maxConnections": 90, "proxy": {}}),
        [
            f"{P}.maxConnectionsPercent: got 90 with keel:database.maxConnections 90: the proxy's pool of 81 leaves 9 "
            "direct connection(s), fewer than the 10 kept for clients outside the proxy "
            f"(superuser_reserved_connections, migrations, monitoring); allowed: {P}.maxConnectionsPercent at most 89 "
            "or keel:database.maxConnections at least 91"
        ],
    ),
    (
        "the whole instance pooled",
        raw({"proxy": {"maxConnectionsPercent": 100}}),
        [
            f"{P}.maxConnectionsPercent: got 100 with keel:database.maxConnections 200: the proxy's pool of 200 "
            "leaves 0 direct connection(s), fewer than the 10 kept for clients outside the proxy "
            f"(superuser_reserved_connections, migrations, monitoring); allowed: {P}.maxConnectionsPercent at most 95"
        ],
    ),
    (
        "percent zero",
        raw({"proxy": {"maxConnectionsPercent": 0}}),
        [f"{P}.maxConnectionsPercent: got 0; allowed: 1 to 100"],
    ),
    (
        "negative idle",
        raw({"proxy": {"maxIdleConnectionsPercent": -1}}),
        [f"{P}.maxIdleConnectionsPercent: got -1; allowed: 0 to 100"],
    ),
    (
        "borrow timeout above the API's",
        raw({"proxy": {"connectionBorrowTimeoutSeconds": 301}}),
        [f"{P}.connectionBorrowTimeoutSeconds: got 301; allowed: 0 to 300"],
    ),
    (
        "idle client timeout zero",
        raw({"proxy": {"idleClientTimeoutSeconds": 0}}),
        [f"{P}.idleClientTimeoutSeconds: got 0; allowed: 1 to 28800"],
    ),
    (
        "idle client timeout above eight hours",
        raw({"proxy": {"idleClientTimeoutSeconds": 28801}}),
        [f"{P}.idleClientTimeoutSeconds: got 28801; allowed: 1 to 28800"],
    ),
    (
        "TLS is not an option",
        raw({"proxy": {"requireTls": False}}),
        [
            f"{P}.requireTls: unknown key; allowed keys: connectionBorrowTimeoutSeconds, idleClientTimeoutSeconds, "
            "maxConnectionsPercent, maxIdleConnectionsPercent"
        ],
    ),
    (
        "connect without a proxy",
        raw({}, ["database:connect"]),
        [
            "keel:services.api.grants: got 'database:connect' but keel:database.proxy is not set; set "
            "keel:database.proxy ({} takes the defaults) to connect through RDS Proxy, or grant 'database:secret'"
        ],
    ),
    (
        "connect without a database",
        raw(None, ["database:connect"]),
        [
            "keel:services.api.grants: got 'database:connect' but keel:database.proxy is not set; set "
            "keel:database.proxy ({} takes the defaults) to connect through RDS Proxy"
        ],
    ),
    (
        "both database grants",
        raw({"proxy": {}}, ["database:secret", "database:connect"]),
        [
            "keel:services.api.grants: got both 'database:secret' and 'database:connect'; pick one (DATABASE_HOST is "
            "the instance with the first, the proxy with the second)"
        ],
    ),
]


@pytest.mark.parametrize(("config", "problems"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_proxy_config_errors(config: dict[str, str], problems: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        validate("dev", config)
    assert caught.value.problems == problems


@pytest.mark.parametrize(
    ("database", "proxy", "offered"),
    [(False, False, False), (True, False, False), (False, True, False), (True, True, True)],
)
def test_database_connect_is_offered_only_with_a_proxy(database: bool, proxy: bool, offered: bool) -> None:
    grants = vocabulary.grants(["queue"], email=False, database=database, proxy=proxy)
    assert (vocabulary.DATABASE_CONNECT_GRANT in grants) is offered
    assert (vocabulary.DATABASE_GRANT in grants) is database


def test_the_grant_reserves_its_variables() -> None:
    assert vocabulary.grant_variables("database:connect") == (
        "DATABASE_HOST",
        "DATABASE_PORT",
        "DATABASE_NAME",
        "DATABASE_USER",
        "DATABASE_IAM_LOGIN",
        "DATABASE_SSLMODE",
    )
    svc = validate("dev", raw({"proxy": {}}, ["database:connect"])).services["api"]
    assert {"DATABASE_HOST", "DATABASE_USER", "DATABASE_IAM_LOGIN"} <= svc.keel_variables
    assert "DATABASE_SECRET_ARN" not in svc.keel_variables


def test_the_ranges_are_the_rds_apis() -> None:
    """The bounds and values keel encodes are the ones the installed botocore's RDS model documents (the Amazon RDS
    API Reference's text): ConnectionPoolConfiguration, DBProxy.IdleClientTimeout and the enums the proxy uses."""
    import annotated_types
    import botocore.session

    model = botocore.session.get_session().get_service_model("rds")
    pool = model.shape_for("ConnectionPoolConfiguration").members
    assert "Must be between 1 and 100." in pool["MaxConnectionsPercent"].documentation
    assert "Must be between 0 and the value of <code>MaxConnectionsPercent</code>" in (
        pool["MaxIdleConnectionsPercent"].documentation
    )
    assert "Must be between 0 and 300." in pool["ConnectionBorrowTimeout"].documentation
    assert "Default: <code>120</code>" in pool["ConnectionBorrowTimeout"].documentation
    idle = model.shape_for("DBProxy").members["IdleClientTimeout"].documentation
    assert "1 to 28,800" in idle and "1800" in idle

    def bounds(field: str) -> tuple[Any, Any]:
        meta = ProxyConfig.model_fields[field].metadata
        low = next(m.ge for m in meta if isinstance(m, annotated_types.Ge))
        high = next(m.le for m in meta if isinstance(m, annotated_types.Le))
        return low, high

    assert bounds("max_connections_percent") == (1, 100)
    assert bounds("max_idle_connections_percent") == (0, 100)
    assert bounds("connection_borrow_timeout_seconds") == (0, 300)
    assert bounds("idle_client_timeout_seconds") == (1, 28800)
    auth = model.shape_for("UserAuthConfig").members
    assert "REQUIRED" in auth["IAMAuth"].enum and "SECRETS" in auth["AuthScheme"].enum
    assert "POSTGRES_SCRAM_SHA_256" in auth["ClientPasswordAuthType"].enum
    request = model.shape_for("CreateDBProxyRequest").members
    assert "POSTGRESQL" in request["EngineFamily"].enum and "NONE" in request["DefaultAuthScheme"].enum


@pytest.mark.parametrize(
    ("instance_class", "count"),
    [
        ("db.t4g.micro", 2),
        ("db.t4g.medium", 2),
        ("db.t3.xlarge", 4),
        ("db.t3.2xlarge", 8),
        ("db.m6g.large", 2),
        ("db.r6g.xlarge", 4),
        ("db.r7g.2xlarge", 8),
        ("db.m7i.48xlarge", 192),
    ],
)
def test_vcpus_of_instance_classes(instance_class: str, count: int) -> None:
    assert vcpus(instance_class) == count


def test_proxy_user_arn() -> None:
    arn = f"arn:aws:rds:us-east-1:{ACCOUNT}:db-proxy:prx-0123456789abcdef0"
    assert proxy_user_arn("aws", "us-east-1", ACCOUNT, arn, "keel_admin") == (
        f"arn:aws:rds-db:us-east-1:{ACCOUNT}:dbuser:prx-0123456789abcdef0/keel_admin"
    )
    with pytest.raises(ValueError, match=r":db:keel-prod-db' \(its last part is 'keel-prod-db', not prx-\.\.\.\)$"):
        proxy_user_arn("aws", "us-east-1", ACCOUNT, f"arn:aws:rds:us-east-1:{ACCOUNT}:db:keel-prod-db", "keel_admin")


# ------------------------------------------------------------------------------------------ the component

DB = {"instanceClass": "db.r6g.xlarge", "multiAz": False, "deletionProtection": False, "finalSnapshot": False}


def database_program(database: dict[str, Any], *, grant: bool) -> Callable[[], None]:
    def program() -> None:
        net = Network("n", NetworkConfig.model_validate({"cidr": "10.30.0.0/16", "availabilityZones": 2}))
        nodes = aws.ec2.SecurityGroup("nodes", vpc_id=net.vpc_id, description="nodes")
        db = Database(
            "k",
            DatabaseConfig.model_validate(database, by_alias=True),
            network=net,
            client_security_group=nodes,
            protect=False,
        )
        role = aws.iam.Role("svc", assume_role_policy="{}")
        if grant:
            db.grant_connect(role)
        else:
            with pytest.raises(ValueError, match=r"^k-db has no RDS Proxy \(keel:database.proxy\)"):
                db.grant_connect(role)
            assert (db.proxy, db.proxy_endpoint, db.proxy_arn, db.proxy_security_group) == (None, None, None, None)

    return program


@pytest.fixture(scope="module")
def proxied() -> Preview:
    return run(
        database_program(
            {
                **DB,
                "proxy": {
                    "maxConnectionsPercent": 80,
                    "maxIdleConnectionsPercent": 40,
                    "idleClientTimeoutSeconds": 900,
                },
            },
            grant=True,
        )
    )


def test_the_proxy_admits_only_the_nodes_and_reaches_only_the_database(proxied: Preview) -> None:
    p = proxied
    proxy_sg, db_sg = p.one(SG, "k-db-proxy"), p.one(SG, "k-db")
    assert sg_rules(p, proxy_sg) == [("Egress", "k-db", "tcp", (5432, 5432)), ("Ingress", "nodes", "tcp", (5432, 5432))]
    assert sg_rules(p, db_sg) == [
        ("Ingress", "k-db-proxy", "tcp", (5432, 5432)),
        ("Ingress", "nodes", "tcp", (5432, 5432)),
    ]
    assert "ingress" not in proxy_sg.inputs and "egress" not in proxy_sg.inputs
    assert proxy_sg.inputs["description"] == "k-db-proxy: PostgreSQL through RDS Proxy, from the cluster nodes only"
    rules = {
        r.name: r
        for kind in ("Ingress", "Egress")
        for r in p.of_type(f"aws:vpc/securityGroup{kind}Rule:SecurityGroup{kind}Rule")
    }
    assert sorted(n for n in rules if "proxy" in n) == ["k-db-from-proxy", "k-db-proxy-from-nodes", "k-db-proxy-to-db"]
    assert rules["k-db-proxy-to-db"].inputs["description"] == "RDS Proxy to the database"
    assert rules["k-db-from-proxy"].inputs["description"] == "PostgreSQL from the database's RDS Proxy"


def test_the_proxy_role_reads_only_the_master_secret(proxied: Preview) -> None:
    p = proxied
    role = p.one("aws:iam/role:Role", "k-db-proxy")
    assert policy_doc(role, "assumeRolePolicy") == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "rds.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            }
        ],
    }
    secret = fake_state(p.one("aws:rds/instance:Instance", "k-db"))["masterUserSecrets"][0]["secretArn"]
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{physical_id(p.one('aws:kms/key:Key', 'k-database'))}"
    policy = p.one(ROLE_POLICY, "k-db-proxy")
    assert policy.property_dependencies["role"] == [role.urn]
    assert policy_doc(policy)["Statement"] == [
        {"Sid": "ReadMasterSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret},
        {
            "Sid": "DecryptThroughSecretsManager",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": key,
            "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}},
        },
    ]
    assert [r.name for r in p.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if "proxy" in r.name] == []


def test_the_proxy_requires_tls_and_iam_and_logs_in_with_the_master_secret(proxied: Preview) -> None:
    p = proxied
    proxy = p.one(PROXY, "k-db-proxy")
    i = proxy.inputs
    secret = fake_state(p.one("aws:rds/instance:Instance", "k-db"))["masterUserSecrets"][0]["secretArn"]
    assert (i["name"], i["engineFamily"], i["requireTls"], i["debugLogging"]) == (
        "k-db-proxy",
        "POSTGRESQL",
        True,
        False,
    )
    assert (i["defaultAuthScheme"], i["idleClientTimeout"]) == ("NONE", 900)
    assert i["auths"] == [
        {
            "authScheme": "SECRETS",
            "description": "k-db's master user, through IAM authentication only",
            "secretArn": secret,
            "iamAuth": "REQUIRED",
            "clientPasswordAuthType": "POSTGRES_SCRAM_SHA_256",
        }
    ]
    assert i["tags"] == {"Name": "k-db-proxy", "keel.dev/vcpus": "4"}
    urns = p.by_urn()
    assert sorted(urns[u].name for u in proxy.property_dependencies["vpcSubnetIds"]) == [
        "n-isolated-us-east-1a",
        "n-isolated-us-east-1b",
    ]
    assert proxy.property_dependencies["vpcSecurityGroupIds"] == [p.one(SG, "k-db-proxy").urn]
    assert proxy.property_dependencies["roleArn"] == [p.one("aws:iam/role:Role", "k-db-proxy").urn]
    # the role may read the secret, and the log group exists, before the proxy starts
    log_group = p.one("aws:cloudwatch/logGroup:LogGroup", "k-db-proxy")
    assert {p.one(ROLE_POLICY, "k-db-proxy").urn, log_group.urn} <= set(proxy.dependencies)
    assert proxy.parent == p.one("keel:database:Database", "k").urn
    state_ = fake_state(proxy)
    assert re.fullmatch(rf"arn:aws:rds:us-east-1:{ACCOUNT}:db-proxy:prx-[0-9a-f]{{17}}", state_["arn"])
    assert re.fullmatch(r"k-db-proxy\.proxy-[0-9a-f]{12}\.us-east-1\.rds\.amazonaws\.com", state_["endpoint"])


def test_the_pool_targets_the_primary(proxied: Preview) -> None:
    p = proxied
    proxy = p.one(PROXY, "k-db-proxy")
    pool = p.one("aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup", "k-db-proxy")
    assert pool.inputs == {
        "dbProxyName": "k-db-proxy",
        "connectionPoolConfig": {
            "connectionBorrowTimeout": 120,
            "maxConnectionsPercent": 80,
            "maxIdleConnectionsPercent": 40,
        },
    }
    assert pool.property_dependencies["dbProxyName"] == [proxy.urn]
    target = p.one("aws:rds/proxyTarget:ProxyTarget", "k-db-proxy")
    assert target.inputs == {"dbProxyName": "k-db-proxy", "targetGroupName": "default", "dbInstanceIdentifier": "k-db"}
    assert target.property_dependencies["dbInstanceIdentifier"] == [p.one("aws:rds/instance:Instance", "k-db").urn]
    assert target.property_dependencies["targetGroupName"] == [pool.urn]


def test_the_proxy_log_group_is_encrypted_with_retention(proxied: Preview) -> None:
    p = proxied
    group = p.one("aws:cloudwatch/logGroup:LogGroup", "k-db-proxy")
    key = p.one("aws:kms/key:Key", "k-database")
    assert (group.inputs["name"], group.inputs["retentionInDays"]) == ("/aws/rds/proxy/k-db-proxy", 30)
    assert group.property_dependencies["kmsKeyId"] == [key.urn]
    statements = {s["Sid"]: s for s in policy_doc(key)["Statement"]}
    logs = statements["CloudWatchLogsUsesKeyForItsLogGroups"]["Condition"]["ArnEquals"]
    assert (
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/rds/proxy/k-db-proxy"
        in (logs["kms:EncryptionContext:aws:logs:arn"])
    )


def test_grant_connect_is_exactly_rds_db_connect_on_the_proxy_user(proxied: Preview) -> None:
    p = proxied
    policy = p.one(ROLE_POLICY, "svc-database-connect")
    assert policy.property_dependencies["role"] == [p.one("aws:iam/role:Role", "svc").urn]
    proxy_arn = fake_state(p.one(PROXY, "k-db-proxy"))["arn"]
    resource_id = proxy_arn.rsplit(":", 1)[1]
    assert resource_id.startswith("prx-")
    assert policy_doc(policy) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectThroughProxy",
                "Effect": "Allow",
                "Action": "rds-db:connect",
                "Resource": f"arn:aws:rds-db:us-east-1:{ACCOUNT}:dbuser:{resource_id}/keel_admin",
            }
        ],
    }


def test_no_proxy_without_the_section() -> None:
    p = run(database_program(DB, grant=False))
    assert p.of_type(PROXY) == []
    assert [s.name for s in p.of_type("aws:rds/proxyTarget:ProxyTarget")] == []
    assert sg_rules(p, p.one(SG, "k-db")) == [("Ingress", "nodes", "tcp", (5432, 5432))]
    assert [
        g.inputs["name"] for g in p.of_type("aws:cloudwatch/logGroup:LogGroup") if "proxy" in g.inputs["name"]
    ] == []


# ------------------------------------------------------------------------------------------ the stack


def api_env(p: Preview) -> dict[str, Any]:
    container = p.one("kubernetes:apps/v1:Deployment", "keel-prod-api").inputs["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container[0]["env"]}


def test_the_granted_service_connects_through_the_proxy(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    env = api_env(p)
    endpoint = fake_state(p.one(PROXY, "keel-prod-db-proxy"))["endpoint"]
    assert {k: v for k, v in env.items() if k.startswith("DATABASE_")} == {
        "DATABASE_HOST": endpoint,
        "DATABASE_PORT": "5432",
        "DATABASE_NAME": "app",
        "DATABASE_USER": "keel_admin",
        "DATABASE_IAM_LOGIN": "true",
        "DATABASE_SSLMODE": "verify-full",
    }
    assert endpoint.startswith("keel-prod-db-proxy.proxy-")
    [stack] = [s for s in p.steps if s.type == "pulumi:pulumi:Stack"]
    assert stack.outputs["databaseProxyEndpoint"] == endpoint
    role = p.one("aws:iam/role:Role", "keel-prod-api")
    attached = {r.name: r for r in p.of_type(ROLE_POLICY) if r.property_dependencies.get("role") == [role.urn]}
    assert "keel-prod-api-database-secret" not in attached  # no secret read for database:connect
    prx = fake_state(p.one(PROXY, "keel-prod-db-proxy"))["arn"].rsplit(":", 1)[1]
    assert policy_doc(attached["keel-prod-api-database-connect"])["Statement"] == [
        {
            "Sid": "ConnectThroughProxy",
            "Effect": "Allow",
            "Action": "rds-db:connect",
            "Resource": f"arn:aws:rds-db:us-east-1:{ACCOUNT}:dbuser:{prx}/keel_admin",
        }
    ]
    proxy = p.one(PROXY, "keel-prod-db-proxy")
    assert proxy.inputs["tags"]["keel.dev/vcpus"] == "4"  # db.r6g.xlarge
    assert p.one("aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup", "keel-prod-db-proxy").inputs[
        "connectionPoolConfig"
    ] == {"connectionBorrowTimeout": 120, "maxConnectionsPercent": 90, "maxIdleConnectionsPercent": 50}


# ------------------------------------------------------------------------------------------ policies

POLICY_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "aws-rds-proxy-require-tls",
        {"requireTls": False},
        ["RDS Proxy must require TLS for every client connection (requireTls: true)."],
    ),
    (
        "aws-rds-proxy-require-tls",
        {"requireTls": DELETE},
        ["RDS Proxy must require TLS for every client connection (requireTls: true)."],
    ),
    (
        "aws-rds-proxy-iam-auth-required",
        {"auths.0.iamAuth": "DISABLED"},
        ["RDS Proxy must require IAM authentication on every auth entry (iamAuth: REQUIRED); auths[0] has DISABLED."],
    ),
    (
        "aws-rds-proxy-iam-auth-required",
        {"auths.0.iamAuth": DELETE},
        ["RDS Proxy must require IAM authentication on every auth entry (iamAuth: REQUIRED); auths[0] has unset."],
    ),
    (
        "aws-rds-proxy-iam-auth-required",
        {"auths": []},
        ["RDS Proxy must require IAM authentication: it has no auths entry and defaultAuthScheme is not IAM_AUTH."],
    ),
    ("aws-rds-proxy-iam-auth-required", {"auths": [], "defaultAuthScheme": "IAM_AUTH"}, []),  # end-to-end IAM
]


@pytest.mark.parametrize(("name", "change", "expected"), POLICY_CASES)
def test_proxy_policies_both_ways(
    preview: Callable[[str], Preview], name: str, change: dict[str, Any], expected: list[str]
) -> None:
    baseline = state(preview("prod").to_json(), PROXY, "keel-prod-db-proxy")
    assert check_resource(name, baseline) == []
    assert check_resource(name, {**baseline, "inputs": patch(baseline["inputs"], change)}) == expected


# ------------------------------------------------------------------------------------------ cost

TABLE: dict[str, Any] = {
    "region": "us-east-1",
    "currency": "USD",
    "pricesAsOf": "2026-11-01",
    "hoursPerMonth": 730,
    "assumptions": {"spotDiscount": 0.6, "gpuSpotRange": {}, "natGbPerMonth": 100, "logGbPerMonthPerGroup": 5},
    "hourly": {"rds.proxy.vcpu": 0.015},
    "monthly": {},
}


def proxy_step(name: str, tags: dict[str, str]) -> dict[str, Any]:
    urn = f"urn:pulumi:t::keel::keel:platform:Platform$keel:database:Database${PROXY}::{name}"
    return {"op": "create", "urn": urn, "newState": {"type": PROXY, "urn": urn, "inputs": {"tags": tags}}}


def test_the_proxy_is_priced_per_vcpu_hour_of_its_database() -> None:
    document = {
        "steps": [
            proxy_step("r6g", {"keel.dev/vcpus": "4"}),  # 0.015 x 4 x 730 = 43.80
            proxy_step("one", {"keel.dev/vcpus": "1"}),  # billed at the 2-vCPU minimum: 21.90
            proxy_step("untagged", {"Name": "untagged"}),  # not counted as zero
        ]
    }
    estimate = cost.estimate(document, stack="t", table=TABLE)
    assert [
        (i.urn.rsplit("::", 1)[1], i.component, i.description, round(i.monthly, 2), i.assumption)
        for i in estimate.items
    ] == [
        ("r6g", "keel:database:Database", "RDS Proxy, 4 vCPU(s)", 43.8, "the database's 4 vCPU(s), billed at least 2"),
        ("one", "keel:database:Database", "RDS Proxy, 2 vCPU(s)", 21.9, "the database's 1 vCPU(s), billed at least 2"),
    ]
    assert [(m["urn"].rsplit("::", 1)[1], m["missing"]) for m in estimate.not_estimated] == [
        ("untagged", "RDS Proxy vCPUs (tag keel.dev/vcpus) or the hourly price rds.proxy.vcpu")
    ]
    assert estimate.complete is False


def test_the_shipped_price_table_prices_the_prod_proxy(preview: Callable[[str], Preview]) -> None:
    table = cost.prices("us-east-1")
    assert table["hourly"]["rds.proxy.vcpu"] == 0.015
    estimate = cost.estimate(preview("prod").to_json(), stack="prod", table=table)
    assert [(i.description, round(i.monthly, 2)) for i in estimate.items if i.type == PROXY] == [
        ("RDS Proxy, 4 vCPU(s)", 43.8)
    ]
    assert estimate.complete is True
