"""The ``keel`` command.

Usage::

    keel preview prod            # resource tree and summary of the prod stack, offline
    keel preview dev --json      # the `pulumi preview --json` document, policyViolations filled
    keel policy saved.json       # the policy pack on a saved document
    keel policy saved.json --saved   # the verdict keel preview --json saved in it (CI renders each stack once)
    keel diff prod@HEAD~1 prod@HEAD --format markdown   # what a change does, stateful replacements flagged
    keel diff prod               # prod@HEAD against the working tree (the `pulumi preview --diff` habit)
    keel cost prod               # monthly estimate per component
    keel cost saved.json         # the same from a saved preview (CI renders each stack once)
    keel preview prod --config-file my.yaml --policy-pack-config my-policy.json   # as `pulumi preview` takes them
    keel validate prod           # the stack file and its policy config checked in about a second, nothing run
    keel watch prod              # re-render on every change to the stack: diff, policy changes, cost delta
    keel schema --output keel/data/stack.schema.json   # the stack files' JSON Schema (editor completion)
    keel --version               # keel's version and the Pulumi SDKs it runs with

Exit codes: 0 ok; 1 the program failed, the policy pack failed, a secret config value reached an input unmarked,
or a mandatory policy is violated; 3 (diff with --fail-on-replace) a stateful resource would be replaced;
2 invalid stack config (a duplicate key in a stack file too), a missing or invalid policy config, unknown stack
or bad command line. User errors print one clear message, never a
traceback; ``--traceback`` shows one for program failures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from keel import EXIT_FAILED, EXIT_OK, EXIT_USAGE

#: Installed distributions ``keel --version`` names besides keel: the SDKs a preview runs with, and botocore, whose
#: EC2 model is the instance-type list the config is checked against.
_VERSIONED = ("pulumi", "pulumi-aws", "pulumi-eks", "pulumi-kubernetes", "pulumi-docker", "pulumi-random")
_VERSIONED_TOO = ("pulumi-policy", "botocore")


def version_text() -> str:
    """``keel 0.1.0`` and, on a second line, the installed versions of the SDKs (importlib.metadata: nothing is
    imported)."""
    from importlib import metadata

    def installed(name: str) -> str:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            return f"{name} (not installed)"

    return f"keel {metadata.version('keel')}\n" + ", ".join(installed(n) for n in (*_VERSIONED, *_VERSIONED_TOO))


class _Version(argparse.Action):
    """``--version``, computed only when asked for (``keel --help`` stays instant)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(version_text())
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keel", description="Offline tooling for the keel Pulumi program.")
    parser.add_argument("--version", action=_Version, help="print keel's version and the SDK versions, then exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    preview = sub.add_parser("preview", help="render an offline preview of a stack (no cloud, no Pulumi CLI)")
    preview.add_argument("stack", help="stack name: the STACK of a Pulumi.STACK.yaml file")
    preview.add_argument("--json", action="store_true", help="print the `pulumi preview --json` document")
    preview.add_argument("--traceback", action="store_true", help="show the traceback of a program failure")
    preview.add_argument("--no-policy", action="store_true", help="skip the policy pack (never in CI)")
    _config_file_argument(preview)
    _policy_config_argument(preview)
    check = sub.add_parser("policy", help="run the policy pack on a saved `keel preview --json` document")
    check.add_argument("file", help="a preview document (`keel preview STACK --json > FILE`)")
    check.add_argument("--json", action="store_true", help="print the document with policyViolations filled")
    check.add_argument("--stack", help="policy config of this stack (default: read from the document's URNs)")
    check.add_argument(
        "--saved",
        action="store_true",
        help="print the violations `keel preview --json` saved in the document instead of running the pack again",
    )
    _policy_config_argument(check)
    watch = sub.add_parser(
        "watch", help="re-render a stack on every change to its files and print what changed (Ctrl-C stops)"
    )
    watch.add_argument("stack", help="stack name: the STACK of a Pulumi.STACK.yaml file")
    watch.add_argument("--no-policy", action="store_true", help="skip the policy pack")
    watch.add_argument("--traceback", action="store_true", help="show the traceback of a program failure")
    _config_file_argument(watch)
    _policy_config_argument(watch)
    cost = sub.add_parser("cost", help="monthly estimate of a stack, per component (offline price table)")
    cost.add_argument("stack", help="stack name, or a saved preview document (`keel preview STACK --json > FILE`)")
    cost.add_argument("--json", action="store_true", help="print the estimate as JSON")
    _config_file_argument(cost)
    boot = sub.add_parser("bootstrap", help="create the S3 state backend, the secrets key and GitHub deploy roles")
    boot.add_argument("--region", required=True, help="AWS region of the state bucket and key")
    boot.add_argument("--state-bucket", required=True, help="name of the S3 bucket for Pulumi state")
    boot.add_argument("--github-repo", help="OWNER/REPO: create the GitHub OIDC provider and a deploy role per stack")
    pre = sub.add_parser("preflight", help="read-only checks of what would make `pulumi up` fail half-way")
    pre.add_argument("stack", help="stack name")
    pre.add_argument("--state-bucket", help="the state bucket keel bootstrap created")
    pre.add_argument("--json", action="store_true", help='print {"stack", "checks": [...]}')
    _config_file_argument(pre)
    diff = sub.add_parser("diff", help="what changes between two previews (files or STACK@GITREF)")
    diff.add_argument(
        "base", help="a saved `keel preview --json` file, STACK@GITREF (prod@origin/main), or STACK alone"
    )
    diff.add_argument("head", nargs="?", help="the same for the new side; omitted: STACK@HEAD against the working tree")
    diff.add_argument(
        "--format", choices=("text", "markdown", "json"), default="text", help="markdown: a PR comment; json: ops"
    )
    diff.add_argument(
        "--fail-on-replace", action="store_true", help="exit 3 when a stateful resource would be replaced or deleted"
    )
    _config_file_argument(diff, "; a STACK@GITREF side reads PATH as it is at GITREF")
    valid = sub.add_parser(
        "validate", help="check a stack file and its policy config in about a second (no program, no policy pack run)"
    )
    valid.add_argument("stack", help="stack name: the STACK of a Pulumi.STACK.yaml file")
    _config_file_argument(valid)
    _policy_config_argument(valid)
    schema = sub.add_parser("schema", help="write the JSON Schema of a Pulumi.STACK.yaml file (editor completion)")
    schema.add_argument(
        "--output", type=Path, metavar="PATH", help="write it to PATH (keel/data/stack.schema.json) instead of stdout"
    )
    return parser


def _config_file_argument(parser: argparse.ArgumentParser, more: str = "") -> None:
    """``--config-file PATH``, as ``pulumi preview``/``up`` take it: the stack's config comes from PATH instead of
    ``Pulumi.<stack>.yaml``; the stack keeps its name."""
    parser.add_argument(
        "--config-file",
        type=Path,
        metavar="PATH",
        help=f"read the stack's config from PATH instead of Pulumi.STACK.yaml (as `pulumi preview` takes it){more}",
    )


def _policy_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--policy-pack-config PATH``, as ``pulumi preview`` takes it (default: ``policies/config.<stack>.json``)."""
    parser.add_argument(
        "--policy-pack-config",
        type=Path,
        metavar="PATH",
        help="the policy pack's config (default: policies/config.STACK.json)",
    )


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _usage_error(stack: str, err: Exception) -> int:
    """Report a user error about a stack (unknown stack, unreadable stack file, invalid config) and return the
    usage exit code. An unknown-stack message already names the stack; config problems get it prefixed."""
    from keel.stackfiles import usage_message

    _error(usage_message(stack, err))
    return EXIT_USAGE


def _checkout() -> Path:
    """The checkout keel runs in (the nearest ``Pulumi.yaml`` at or above the working folder): its
    ``components/``, ``policies/`` and stack files are what every command reads, whichever checkout the
    virtualenv's editable install of keel came from. Raises ``StackError`` when that cannot be made so."""
    from keel import stackfiles

    return stackfiles.use_checkout(stackfiles.project_root())


def preview(args: argparse.Namespace) -> int:
    # Imported here so `keel --help` stays instant; rich (`keel.render`) only for the terminal view, so
    # `--json` does not load it (0.05 s).
    from keel import session, stackfiles, timings

    try:
        root = _checkout()
        with timings.phase("stackFile"):
            loaded = stackfiles.load_stack(root, args.stack, stackfiles.load_project(root), path=args.config_file)
    except stackfiles.StackError as err:
        return _usage_error(args.stack, err)
    outcome = session.preview(
        args.stack,
        root,
        loaded,
        analyze=not args.no_policy,
        policy_config=args.policy_pack_config,
        traceback=args.traceback,
    )
    for message in outcome.errors:
        _error(message)
    if outcome.document is None or outcome.result is None:
        return outcome.code
    with _output(), timings.phase("render"):
        if args.json:
            json.dump(outcome.document, sys.stdout, indent=2, sort_keys=True)
            sys.stdout.write("\n")
        else:
            from keel import render

            console = render.console()
            render.preview(console, outcome.result)
            if "policyViolations" in outcome.document:  # absent with --no-policy: nothing was checked
                render.violations(console, outcome.document["policyViolations"])
    return outcome.code


def _policy_exit(err: Exception) -> int:
    """A missing or invalid policy config is the user's to fix (2); a pack that fails is a failure (1)."""
    from keel import policy

    return policy.exit_code(err)


@contextlib.contextmanager
def _output() -> Iterator[None]:
    """Write to stdout; a reader that goes away (`keel preview prod --json | head`) is not an error of ours,
    and the exit code still says what the preview found."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _analyze(document: dict[str, Any], stack: str | None, root: Path, config_path: Path | None) -> int | None:
    """Fill ``policyViolations`` by running the pack; an exit code if the pack itself failed."""
    from keel import policy

    try:
        violations = policy.analyze(document, stack=stack, pack_dir=root / "policies", config_path=config_path)
    except policy.PolicyError as err:
        _error(str(err))
        return _policy_exit(err)
    document["policyViolations"] = [v.to_json() for v in violations]
    return None


def _read_document(file: str) -> dict[str, Any] | None:
    """A saved ``keel preview --json`` document, or None after saying why it is not one."""
    try:
        document = json.loads(Path(file).read_text())
    except (OSError, json.JSONDecodeError) as err:
        _error(f"{file}: cannot read a preview document ({err})")
        return None
    if not isinstance(document, dict) or not isinstance(document.get("steps"), list):
        _error(f"{file}: not a preview document (expected an object with 'steps')")
        return None
    return document


def _stack_of(document: dict[str, Any]) -> str | None:
    """The stack a preview document was rendered for, read from its URNs (``urn:pulumi:STACK::...``)."""
    if not document["steps"]:
        return None
    return str(document["steps"][0].get("urn", "")).removeprefix("urn:pulumi:").split("::")[0] or None


def check(args: argparse.Namespace) -> int:
    from keel import render, stackfiles

    try:
        root = _checkout()
    except stackfiles.StackError as err:
        _error(str(err))
        return EXIT_USAGE
    document = _read_document(args.file)
    if document is None:
        return EXIT_USAGE
    if args.saved:
        # The PR workflow renders each stack once, with the pack: its verdict is in the saved document already.
        if not isinstance(document.get("policyViolations"), list):
            _error(f"{args.file}: no policy results saved (rendered with --no-policy?); run keel policy without it")
            return EXIT_USAGE
    else:
        stack = args.stack or _stack_of(document)
        failed = _analyze(document, stack, root, args.policy_pack_config)
        if failed is not None:
            return failed
    with _output():
        if args.json:
            json.dump(document, sys.stdout, indent=2, sort_keys=True)
            sys.stdout.write("\n")
        else:
            render.violations(render.console(), document["policyViolations"])
    from keel import policy

    return EXIT_FAILED if policy.mandatory_in(document) else EXIT_OK


EXIT_REPLACE = 3


def preflight_command(args: argparse.Namespace) -> int:
    import boto3

    from keel import preflight, stackfiles

    try:
        root = _checkout()
    except stackfiles.StackError as err:
        return _usage_error(args.stack, err)
    from components.config import ConfigError, validate

    try:
        raw, _ = stackfiles.load_config(root, args.stack, stackfiles.load_project(root), path=args.config_file)
        cfg = validate(args.stack, raw)
    except (stackfiles.StackError, ConfigError) as err:
        return _usage_error(args.stack, err)
    checks = preflight.Preflight(boto3.session.Session(), cfg, args.state_bucket).run()
    with _output():
        if args.json:
            json.dump({"stack": args.stack, "checks": [c.to_json() for c in checks]}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            marks = {"pass": "ok  ", "warn": "WARN", "fail": "FAIL"}
            for c in checks:
                print(f"[{marks[c.status]}] {c.name}: {c.detail}" + (f"\n       fix: {c.fix}" if c.fix else ""))
    return EXIT_FAILED if any(c.status == "fail" for c in checks) else EXIT_OK


def bootstrap_command(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError

    from keel import bootstrap, stackfiles

    if args.github_repo and (args.github_repo.count("/") != 1 or " " in args.github_repo):
        _error(f"--github-repo: got {args.github_repo!r}; expected OWNER/REPO")
        return EXIT_USAGE
    try:
        stacks = stackfiles.stacks(stackfiles.project_root())
    except stackfiles.StackError as err:
        _error(f"{err}; run keel bootstrap in the project (its roles are one per Pulumi.<stack>.yaml)")
        return EXIT_USAGE
    try:
        result = bootstrap.Bootstrap(boto3.session.Session(), args.region).run(
            args.state_bucket, args.github_repo, stacks
        )
    except bootstrap.BootstrapError as err:
        _error(str(err))
        return EXIT_FAILED
    except BotoCoreError as err:
        _error(f"AWS: {err}")
        return EXIT_FAILED
    with _output():
        if result.changes:
            for change in result.changes:
                print(f"changed: {change}")
        else:
            print("no change: the state backend is already in place")
        for stack, role in sorted(result.roles.items()):
            print(f"deploy role for {stack}: {role}")
        for stack, role in sorted(result.preview_roles.items()):
            print(f"preview role for {stack}: {role}")
        print("next:")
        for command in result.commands(stacks):
            print(f"  {command}")
    return EXIT_OK


def cost_command(args: argparse.Namespace) -> int:
    from keel import cost, engine

    try:
        root = _checkout()
    except engine.StackError as err:
        return _usage_error(args.stack, err)
    from components.config import ConfigError

    stack = args.stack
    saved = args.stack.endswith(".json")
    if saved and not Path(args.stack).is_file():
        _error(f"{args.stack}: no such file (a saved preview: keel preview STACK --json > FILE)")
        return EXIT_USAGE
    if saved and args.config_file is not None:
        _error("--config-file applies to a stack name; a saved preview was rendered already")
        return EXIT_USAGE
    try:
        if saved:
            # the PR workflow renders each stack once: the estimate reads the saved preview
            read = _read_document(args.stack)
            if read is None:
                return EXIT_USAGE
            document = read
            stack = _stack_of(document) or args.stack
        else:
            document = engine.run(args.stack, root, config_file=args.config_file).to_json()
        estimate = cost.estimate(document, stack=stack, region=cost.region_of(document))
    except (engine.StackError, ConfigError, cost.CostError) as err:
        return _usage_error(args.stack, err)
    with _output():
        if args.json:
            json.dump(estimate.to_json(), sys.stdout, indent=2, sort_keys=True)
            sys.stdout.write("\n")
        else:
            prices = f"{estimate.currency}, {estimate.region} list prices as of {estimate.prices_as_of}"
            if estimate.complete:
                sys.stdout.write(f"{stack}: ${estimate.monthly_total:,.2f} a month ({prices})\n")
            else:
                sys.stdout.write(
                    f"{stack}: not estimated: no price for {estimate.missing_prices()}; the resources priced "
                    f"come to ${estimate.monthly_total:,.2f} a month, the rest is unknown ({prices})\n"
                )
            for component, amount in sorted(estimate.by_component().items(), key=lambda kv: -kv[1]):
                sys.stdout.write(f"  {component:<32} ${amount:>10,.2f}\n")
            if estimate.gpu_hour:
                sys.stdout.write(
                    f"One GPU training hour: ${estimate.gpu_hour['spot']:.3f} on Spot, "
                    f"${estimate.gpu_hour['onDemand']:.3f} on demand\n"
                )
            for missing in estimate.unknown:
                sys.stdout.write(f"  depends on usage: {missing['urn'].rsplit('::', 1)[-1]} ({missing['missing']})\n")
    return EXIT_OK


def diff_command(args: argparse.Namespace) -> int:
    from keel import diff, stackfiles

    try:
        root = _checkout()
        if args.head is None:
            if "@" in args.base or Path(args.base).is_file():
                raise diff.DiffError(f"{args.base!r}: alone, name a stack (`keel diff prod`); or give both sides")
            # Read first: a typo is a clear error, not an empty base (the file is missing at HEAD too).
            loaded = stackfiles.load_stack(root, args.base, stackfiles.load_project(root), path=args.config_file)
            base_name, head_name = f"{args.base}@HEAD", f"{args.base} (working tree)"
            base = diff.load_side(base_name, root, args.config_file)
            head = diff.render_worktree(args.base, root, loaded)
        else:
            base_name, head_name = args.base, args.head
            base = diff.load_side(args.base, root, args.config_file)
            head = diff.load_side(args.head, root, args.config_file)
        result = diff.compare(base, head)
    except (diff.DiffError, stackfiles.StackError) as err:
        _error(str(err))
        return EXIT_USAGE
    except Exception as err:
        from components.config import ConfigError

        if not isinstance(err, ConfigError):
            raise
        return _usage_error(args.base, err)
    with _output():
        if args.format == "markdown":
            sys.stdout.write(diff.markdown(result, title=f"keel diff {base_name} → {head_name}"))
        elif args.format == "json":
            json.dump(result.to_json(), sys.stdout, indent=2, sort_keys=True)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(diff.text(result))
    return EXIT_REPLACE if args.fail_on_replace and result.replacements else EXIT_OK


def watch_command(args: argparse.Namespace) -> int:
    from keel import stackfiles, watch

    try:
        root = _checkout()
    except stackfiles.StackError as err:
        return _usage_error(args.stack, err)
    return watch.main(
        args.stack,
        root,
        config_file=args.config_file.resolve() if args.config_file else None,
        policy_config=args.policy_pack_config.resolve() if args.policy_pack_config else None,
        policy=not args.no_policy,
        traceback=args.traceback,
    )


def validate_command(args: argparse.Namespace) -> int:
    """``keel validate STACK``: the stack file as ``keel preview`` reads it, validated as the program validates it
    (every problem at once, the same messages), and the stack's policy config checked against the pack's schemas,
    reconciled as the engine does. Nothing runs: no program, no engine, no policy pack process, no provider SDK."""
    from keel import stackfiles

    try:
        root = _checkout()
        loaded = stackfiles.load_stack(root, args.stack, stackfiles.load_project(root), path=args.config_file)
    except stackfiles.StackError as err:
        return _usage_error(args.stack, err)
    from components.config import ConfigError, validate

    codes = []
    try:
        validate(args.stack, loaded.config, loaded.secret_keys)
    except ConfigError as err:
        codes.append(_usage_error(args.stack, err))
    from keel import policy

    try:  # the policy config: missing, not JSON, a policy the pack lacks, a level or value its schema refuses
        settings = policy.load_config(policy.config_file(args.stack, root / "policies", args.policy_pack_config))
        policy.reconcile(_pack_info(root / "policies"), settings)
    except policy.PolicyError as err:
        _error(str(err))
        codes.append(_policy_exit(err))
    if codes:
        return min(codes)  # a pack that does not load is a failure (1); the rest is the user's to fix (2)
    with _output():
        print(f"{args.stack}: valid")
    return EXIT_OK


def _pack_info(pack_dir: Path) -> Any:
    """The policy pack's ``AnalyzerInfo``, as its server would answer ``GetAnalyzerInfo``, without serving it:
    ``policies/__main__.py`` runs in this process and the analyzer servicer ``pulumi_policy.PolicyPack`` builds is
    taken before the pack would start its server (and block serving it). 0.1-0.3 s instead of the 1.3 s of starting
    the pack process; the policies, levels and schemas are the pack's own (a test compares both)."""
    import runpy

    from pulumi_policy import policy as pulumi_policy

    class _Built(Exception):
        pass

    built: list[Any] = []
    servicer = pulumi_policy._PolicyAnalyzerServicer

    class _Capture(servicer):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)
            raise _Built

    from keel.policy import PolicyError

    folder = str(pack_dir.resolve())
    setattr(pulumi_policy, "_PolicyAnalyzerServicer", _Capture)  # noqa: B010 (mypy: a class cannot be assigned)
    sys.path.insert(0, folder)
    try:
        runpy.run_path(str(pack_dir / "__main__.py"), run_name="__main__")
    except _Built:
        pass
    except Exception as err:
        raise PolicyError(f"the policy pack does not load: {type(err).__name__}: {err}") from None
    finally:
        setattr(pulumi_policy, "_PolicyAnalyzerServicer", servicer)  # noqa: B010
        sys.path.remove(folder)
    if not built:
        raise PolicyError(f"{pack_dir / '__main__.py'} built no PolicyPack")
    return built[0].GetAnalyzerInfo(None, None)


def schema_command(args: argparse.Namespace) -> int:
    from keel import schema, stackfiles

    try:
        root = _checkout()
    except stackfiles.StackError as err:
        _error(str(err))
        return EXIT_USAGE
    return schema.main(args, root)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return validate_command(args)
    if args.command == "schema":
        return schema_command(args)
    if args.command == "preview":
        return preview(args)
    if args.command == "policy":
        return check(args)
    if args.command == "diff":
        return diff_command(args)
    if args.command == "cost":
        return cost_command(args)
    if args.command == "watch":
        return watch_command(args)
    if args.command == "bootstrap":
        return bootstrap_command(args)
    if args.command == "preflight":
        return preflight_command(args)
    return EXIT_USAGE  # unreachable: argparse requires a known command


def entry() -> None:
    """The ``keel`` command as a process: :func:`main`, with the two process-level settings that are keel's to make
    (measured by ``make bench``, which gives its SDK floor the same two, so they are not counted as keel's gain):

    - the cyclic garbage collector is off: a preview allocates millions of objects (the provider SDKs' types)
      and none of them is garbage before the process ends, yet the collector walked them all about 1,400 times,
      2.5 s of a prod preview; with it off the preview's peak memory grows by under 10% (247 to 267 MB);
    - the process ends without the interpreter's teardown (``os._exit`` once the output is flushed): freeing
      every module of the provider SDKs one by one took about 2 s after the work was done. Everything keel opens
      (the policy pack's process, temporary files) is closed by ``main`` before it returns.

    Tests call :func:`main` instead, with neither setting."""
    import gc

    from keel import timings

    timings.mark("main")
    gc.disable()
    code = EXIT_FAILED
    try:
        code = main()
    except SystemExit as done:  # argparse (--help, --version, a bad command line)
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else EXIT_USAGE)
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        with contextlib.suppress(Exception):
            timings.write()
        os._exit(code)


if __name__ == "__main__":
    entry()
