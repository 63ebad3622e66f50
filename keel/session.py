"""One offline preview with its policy analysis: what ``keel preview`` and ``keel watch`` both run.

Usage::

    outcome = session.preview("prod", root, loaded)           # program, then the pack on what it registered
    outcome.document                                          # the preview document, policyViolations filled
                                                              # (absent with analyze=False: nothing was checked)
    outcome.errors, outcome.code                              # or why not, and keel's exit code for it

The pack is started before the program and gets each resource as it is registered (as the engine streams them),
so its start-up and the per-resource analysis overlap the program; ``AnalyzeStack`` follows the program's end.
User errors (an invalid stack config, a missing policy config) and failures (the program raised, a secret leaked,
the pack failed) come back as messages, never as exceptions; ``traceback`` prints a program failure's traceback.
"""

from __future__ import annotations

import sys
import traceback as tb
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel import EXIT_FAILED, EXIT_OK, EXIT_USAGE, engine, policy, stackfiles


@dataclass
class Outcome:
    """A preview document (``document``, with ``result`` the recorded preview), or the messages saying why not."""

    document: dict[str, Any] | None = None
    result: engine.Preview | None = None
    errors: list[str] = field(default_factory=list)
    code: int = EXIT_OK


def preview(
    stack: str,
    root: Path,
    loaded: stackfiles.StackConfigFile,
    *,
    analyze: bool = True,
    policy_config: Path | None = None,
    traceback: bool = False,
    pack: policy.Pack | None = None,
    cache: dict[bytes, Any] | None = None,
) -> Outcome:
    """Run the program for ``stack`` (config ``loaded``) and, with ``analyze``, the policy pack on it: ``pack``, a
    started one the caller keeps (and closes), with ``cache`` (:class:`keel.policy.Session`); else one started here
    and closed when done."""
    own = pack is None
    session = None
    try:
        if analyze:
            if pack is None:
                project = str(loaded.project["name"])
                pack = policy.Pack(root / "policies", stack=stack, project=project, config=loaded.config)
            session = policy.Session(
                pack, stack=stack, pack_dir=root / "policies", config_path=policy_config, cache=cache
            )
    except policy.PolicyError as err:
        if pack is not None and own:
            pack.close()
        return Outcome(errors=[str(err)], code=policy.exit_code(err))
    try:
        return _run(stack, root, loaded, session, traceback)
    finally:
        if session is not None:
            session.stop()
        if pack is not None and own:
            pack.close()


def _run(
    stack: str, root: Path, loaded: stackfiles.StackConfigFile, session: policy.Session | None, traceback: bool
) -> Outcome:
    import pulumi

    from components.config import ConfigError
    from keel import timings

    timings.preimport()
    try:
        result = engine.run(
            stack,
            root,
            loaded=loaded,
            # The pack gets the inputs as the engine sends them: secrets in their envelope, with the plaintext.
            on_step=(lambda step: session.add({**step.to_json()["newState"], "inputs": step.wire_inputs}))
            if session is not None
            else None,
        )
    except (engine.StackError, ConfigError) as err:
        return Outcome(errors=[stackfiles.usage_message(stack, err)], code=EXIT_USAGE)
    except pulumi.RunError as err:
        return Outcome(errors=[f"stack {stack!r}: {err}"], code=EXIT_FAILED)
    except Exception as err:
        if traceback:
            tb.print_exc(file=sys.stderr)
        return Outcome(
            errors=[
                f"stack {stack!r}: the program failed: {type(err).__name__}: {err}"
                + ("" if traceback else " (run with --traceback for details)")
            ],
            code=EXIT_FAILED,
        )
    if result.leaks:
        # The engine would store these in plain text: no Pulumi tool catches this; keel stops here.
        return Outcome(result=result, errors=[f"stack {stack!r}: {leak}" for leak in result.leaks], code=EXIT_FAILED)
    with timings.phase("render"):
        document = result.to_json()
    if session is None:
        # No analysis ran: the document holds no verdict rather than an empty one (`keel policy --saved` refuses
        # it, `keel watch` says the policies were not checked).
        del document["policyViolations"]
        return Outcome(document=document, result=result, code=EXIT_OK)
    try:
        found = session.finish(document)
    except policy.PolicyError as err:
        return Outcome(result=result, errors=[str(err)], code=policy.exit_code(err))
    document["policyViolations"] = [v.to_json() for v in found]
    return Outcome(document=document, result=result, code=EXIT_FAILED if policy.mandatory(found) else EXIT_OK)
