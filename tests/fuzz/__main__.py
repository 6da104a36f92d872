"""``python -m tests.fuzz [--target NAME]... [--examples N] [--seed S] [--list]``.

Runs every fuzz target (or the named ones) for N hypothesis examples each and exits with
status 1 if any target raised something its parser does not document. ``--engine atheris``
hands one target to atheris (``pip install atheris``) for coverage-guided fuzzing; the
remaining arguments go to libFuzzer.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from .runner import run_target
from .targets import TARGETS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), help="repeatable")
    parser.add_argument("--examples", type=int, default=5000, help="per target (default 5000)")
    parser.add_argument("--seed", type=int, help="hypothesis seed, to repeat a run")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--engine", choices=["hypothesis", "atheris"], default="hypothesis")
    args, rest = parser.parse_known_args(argv)
    if args.list:
        for name, target in TARGETS.items():
            print(f"{name:22} {target.covers}")
        return 0
    names = args.target or list(TARGETS)
    if args.engine == "atheris":
        return _atheris(names, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    failed = []
    for name in names:
        print(f"{name:22} ", end="", flush=True)
        try:
            elapsed = run_target(TARGETS[name], examples=args.examples, seed=args.seed)
        except Exception:
            traceback.print_exc()
            print(f"{name:22} FAILED")
            failed.append(name)
        else:
            print(f"ok  {args.examples} examples in {elapsed:.1f}s")
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


def _atheris(names: list[str], rest: list[str]) -> int:
    if len(names) != 1:
        print("--engine atheris needs exactly one --target", file=sys.stderr)
        return 2
    try:
        import atheris  # type: ignore[import-not-found]
    except ImportError:
        print("atheris is not installed (pip install atheris)", file=sys.stderr)
        return 2
    atheris.Setup([sys.argv[0], *rest], TARGETS[names[0]].one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
