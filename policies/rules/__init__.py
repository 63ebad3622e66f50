"""Every policy of the pack, grouped by service (one module each)."""

from pulumi_policy import Policy

from . import network

ALL: list[Policy] = [*network.POLICIES]
