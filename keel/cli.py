"""The ``keel`` command.

Usage::

    keel preview prod            # resource tree and summary of the prod stack, offline
    keel preview dev --json      # the `pulumi preview --json` document

Exit codes: 0 ok; 1 the program failed (or, once the policy pack runs, a mandatory policy is violated);
2 invalid stack config, unknown stack or bad command line. User errors print one clear message, never a
traceback; ``--traceback`` shows one for program failures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence

from rich.console import Console

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keel", description="Offline tooling for the keel Pulumi program.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    preview = sub.add_parser("preview", help="render an offline preview of a stack (no cloud, no Pulumi CLI)")
    preview.add_argument("stack", help="stack name: the STACK of a Pulumi.STACK.yaml file")
    preview.add_argument("--json", action="store_true", help="print the `pulumi preview --json` document")
    preview.add_argument("--traceback", action="store_true", help="show the traceback of a program failure")
    return parser


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def preview(args: argparse.Namespace) -> int:
    # Imported here so `keel --help` stays instant.
    import pulumi

    from components.config import ConfigError
    from keel import engine, render

    try:
        result = engine.run(args.stack)
    except engine.StackError as err:
        _error(str(err))
        return EXIT_USAGE
    except ConfigError as err:
        _error(f"stack {args.stack!r}: {err}")
        return EXIT_USAGE
    except pulumi.RunError as err:
        _error(f"stack {args.stack!r}: {err}")
        return EXIT_FAILED
    except Exception as err:
        if args.traceback:
            traceback.print_exc()
        _error(
            f"stack {args.stack!r}: the program failed: {type(err).__name__}: {err}"
            + ("" if args.traceback else " (run with --traceback for details)")
        )
        return EXIT_FAILED
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        console = Console()
        if not console.is_terminal:
            console = Console(width=200)  # piped or captured: no wrapping of long type tokens
        render.preview(console, result)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "preview":
            return preview(args)
        return EXIT_USAGE  # unreachable: argparse requires a known command
    except BrokenPipeError:
        # The reader went away (`keel preview prod --json | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
