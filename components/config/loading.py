"""Loading: :func:`validate` turns a raw config map into a :class:`StackConfig` or a :class:`ConfigError`;
:func:`load` reads this stack's map from the Pulumi runtime (:func:`raw_config`) and validates it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pulumi
from pydantic import ValidationError

from components.config.base import ConfigError
from components.config.checks import cross_checks
from components.config.errors import describe
from components.config.services import SECRETS_INSTEAD
from components.config.stack import NAMESPACE, SECRET_CAPABLE, StackConfig, config_keys


def validate(stack: str, raw: Mapping[str, str], secret_keys: Iterable[str] = ()) -> StackConfig:
    """Validate a stack's raw config map (``{"keel:network": "<json>", "aws:region": "us-east-1"}``, the
    shape Pulumi hands a program) and return the typed config, or raise :class:`ConfigError`. ``secret_keys``:
    the full keys the engine marked secret (``keel:services``)."""
    problems: list[str] = []
    secret = {k.partition(":")[2] for k in secret_keys if k.startswith(f"{NAMESPACE}:")}
    problems += [
        SERVICES_SECURE
        if key == "services"
        else f"keel:{key}: holds a secure value; keel keeps secure values only in "
        f"{', '.join(f'keel:{k}' for k in SECRET_CAPABLE)} (this key's values reach resources in plain text)"
        for key in sorted(secret - set(SECRET_CAPABLE))
        if key in config_keys()
    ]
    data: dict[str, Any] = {"stack": stack, "secretKeys": frozenset(secret)}
    region = raw.get("aws:region")
    if region is None:
        problems.append("aws:region: missing; set it with `pulumi config set aws:region us-east-1`")
    else:
        data["region"] = region
    allowed = config_keys()
    for full_key, text in sorted(raw.items()):
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            continue
        if key not in allowed:
            problems.append(f"{full_key}: unknown key; allowed keys: {', '.join(sorted(allowed))}")
            continue
        data[key] = text if key in _SCALARS else _decode(text)
    if problems:
        raise ConfigError(problems)
    try:
        cfg = StackConfig.model_validate(data, by_alias=True)
    except ValidationError as err:
        raise ConfigError([describe(e) for e in err.errors(include_url=False)]) from None
    problems = list(cross_checks(cfg))
    if problems:
        raise ConfigError(problems)
    return cfg


_SCALARS = {"environment", "accountId"}

#: A ``secure:`` value anywhere in ``keel:services``. The engine lists only the whole key as secret, so no program
#: can say which value it was (an ``env`` value, most likely); and the secret would reach a pod spec.
SERVICES_SECURE = (
    "keel:services: holds a secure value; a service takes no secure config (the engine marks only the whole key "
    "secret, so keel cannot say which value, and every value there reaches resources): list the secret's name in "
    f"keel:services.<name>.secrets {SECRETS_INSTEAD} with `aws secretsmanager put-secret-value`"
)


def _decode(text: str) -> Any:
    """Pulumi passes object and list values as JSON text, scalars as plain text."""
    try:
        return json.loads(text)
    except (TypeError, json.JSONDecodeError):
        return text


def raw_config() -> dict[str, str]:
    """Every config value the Pulumi runtime handed this program (``namespace:key`` -> text).

    ``pulumi.Config`` can only look keys up, and we must also see keys nobody asked for (a typo such as
    ``keel:netwrok`` must fail, not be ignored). The runtime holds config in two places: what was set
    in-process (``set_all_config``, used by mocks and the language host) and the ``PULUMI_CONFIG``
    environment the CLI passes. Both are read through ``pulumi.runtime.config``.
    """
    from pulumi.runtime import config as runtime_config

    merged: dict[str, str] = {}
    merged.update({k: str(v) for k, v in runtime_config.get_config_env().items()})
    merged.update({k: str(v) for k, v in runtime_config.CONFIG.get().items()})
    # Look each key up through pulumi.Config too, so per-key PULUMI_CONFIG_<KEY> overrides win as usual.
    for full_key in list(merged):
        namespace, _, key = full_key.partition(":")
        value = pulumi.Config(namespace).get(key)
        if value is not None:
            merged[full_key] = value
    return merged


def load() -> StackConfig:
    """Read and validate this stack's config. Raises :class:`ConfigError` before anything is registered.

    Secrets: ``pulumi.Config.get`` returns a ``secure:`` value's plaintext unmarked (pulumi 3.272
    ``pulumi/config.py``; the warning is commented out), and the engine lists only whole top-level keys as
    secret. The keys it lists go into :attr:`StackConfig.secret_keys`, so the components can keep those values
    secret (:data:`SECRET_CAPABLE`)."""
    from pulumi.runtime.config import is_config_secret

    raw = raw_config()
    return validate(pulumi.get_stack(), raw, [k for k in raw if is_config_secret(k)])
