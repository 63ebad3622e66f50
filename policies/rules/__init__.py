"""Every policy of the pack, grouped by service (one module each)."""

from pulumi_policy import Policy

from . import alb, backup, eks, elasticache, iam, kubernetes, network, rds, s3, security, stack

ALL: list[Policy] = [
    *network.POLICIES,
    *s3.POLICIES,
    *rds.POLICIES,
    *elasticache.POLICIES,
    *eks.POLICIES,
    *iam.POLICIES,
    *alb.POLICIES,
    *security.POLICIES,
    *kubernetes.POLICIES,
    *stack.POLICIES,
    *backup.POLICIES,
]
