"""Where a component is deployed: region, account and partition, looked up once per component.

Usage::

    ctx = lookup(pulumi.InvokeOptions(parent=self))
    ctx.arn("eks", f"cluster/{name}")      # arn:aws:eks:us-east-1:111122223333:cluster/<name>

The lookups are data-source invokes on the component's provider (``aws.get_region`` and friends), so they
answer for the account and region the stack's provider really targets. They are blocking invokes, and each one
makes the program wait for everything already in flight, so the answer is remembered per provider: every
component under the platform's provider asks once between them.
"""

from __future__ import annotations

import weakref
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


_BY_PROVIDER: weakref.WeakKeyDictionary[pulumi.ProviderResource, AwsContext] = weakref.WeakKeyDictionary()


def lookup(opts: pulumi.InvokeOptions) -> AwsContext:
    provider = opts.provider
    if provider is None and isinstance(opts.parent, pulumi.Resource):
        provider = opts.parent.get_provider("aws::")
    if provider is not None and provider in _BY_PROVIDER:
        return _BY_PROVIDER[provider]
    ctx = AwsContext(
        region=aws.get_region(opts=opts).region,
        account=aws.get_caller_identity(opts=opts).account_id,
        partition=aws.get_partition(opts=opts).partition,
    )
    if provider is not None:
        _BY_PROVIDER[provider] = ctx
    return ctx
