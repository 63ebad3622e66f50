"""The keel policy pack. Only builds the PolicyPack (after ``memo.install()``: one conversion of a resource's
properties per request, not per policy): the policies live in ``rules/`` as plain objects, so tests import them
without serving a pack."""

import memo
from pulumi_policy import EnforcementLevel, PolicyPack
from rules import ALL

memo.install()  # each resource's properties deserialized once per request, not once per policy (memo.py)

PolicyPack(name="keel", policies=ALL, enforcement_level=EnforcementLevel.MANDATORY)
