"""Where a component is deployed: region, account and partition, looked up once per component.

Usage::

    ctx = lookup(pulumi.InvokeOptions(parent=self))
    ctx.arn("eks", f"cluster/{name}")      # arn:aws:eks:us-east-1:111122223333:cluster/<name>

The lookups are data-source invokes on the component's provider (``aws.get_region`` and friends), so they
answer for the account and region the stack's provider really targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class AwsContext:
    region: str
    account: str
    partition: str

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:{self.partition}:{service}:{region}:{self.account}:{resource}"


def lookup(opts: pulumi.InvokeOptions) -> AwsContext:
    return AwsContext(
        region=aws.get_region(opts=opts).region,
        account=aws.get_caller_identity(opts=opts).account_id,
        partition=aws.get_partition(opts=opts).partition,
    )
