"""The keel policy pack. Only builds the PolicyPack: the policies live in ``rules/`` as plain objects, so
tests import them without serving a pack."""

from pulumi_policy import EnforcementLevel, PolicyPack
from rules import ALL

PolicyPack(name="keel", policies=ALL, enforcement_level=EnforcementLevel.MANDATORY)
