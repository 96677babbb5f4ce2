"""Command line: `python -m fastsample {info,selftest,bench}`; `--help` lists the commands."""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fastsample",
        description="fastsample: fused LLM sampling kernels for CPU and CUDA.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("info", help="print this install's build: backends, CUDA architectures "
                                     "(or why CUDA was not built), SIMD level, threads")
    commands.add_parser("selftest", help="check every compiled backend against the pure-torch "
                                         "reference; exit code 1 on any failure")
    from .bench.cli import add_arguments
    add_arguments(commands.add_parser(
        "bench", help="time fastsample beside its peers (transformers, torch sort-based, "
                      "FlashInfer, llama.cpp, floors); --help for its options"))
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "selftest":
        from .reference.selftest import run
        return run()
    if args.command == "bench":
        from .bench.cli import run
        return run(args)
    if args.command == "info":
        from .kernel.build_info import build_info
        print(json.dumps(build_info(), indent=2))
        return 0
    parser.print_usage(sys.stderr)
    print("python -m fastsample: name a command (--help lists them)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
