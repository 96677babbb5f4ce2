"""Command line: `python -m fastsample selftest` checks this install's backends; `info` prints
build_info()."""
from __future__ import annotations

import json
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["selftest"]:
        from .reference.selftest import run
        return run()
    if args == ["info"]:
        from .kernel.build_info import build_info
        print(json.dumps(build_info(), indent=2))
        return 0
    print("usage: python -m fastsample selftest | info", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
