"""Every policy of the pack, grouped by service (one module each)."""

from pulumi_policy import Policy

from . import alb, backup, cloudfront, ecr, eks, elasticache, iam, kubernetes, network, rds, s3, security, stack, waf

ALL: list[Policy] = [
    *network.POLICIES,
    *s3.POLICIES,
    *rds.POLICIES,
    *elasticache.POLICIES,
    *eks.POLICIES,
    *iam.POLICIES,
    *alb.POLICIES,
    *waf.POLICIES,
    *cloudfront.POLICIES,
    *security.POLICIES,
    *ecr.POLICIES,
    *kubernetes.POLICIES,
    *stack.POLICIES,
    *backup.POLICIES,
]
