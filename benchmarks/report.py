"""Prints each group's ratios (fastsample / floor, HF chain / fastsample) from a
pytest-benchmark JSON file: python benchmarks/report.py .benchmarks/cpu.json"""
import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    groups = defaultdict(dict)
    for b in json.load(open(path))["benchmarks"]:
        groups[b["group"]][b["params"]["impl"]] = b["stats"]["median"]
    print(f"{'group':44} {'fastsample ms':>13} {'x floor':>8} {'HF / fs':>8} {'ref / fs':>8}")
    for group, t in sorted(groups.items()):
        fs = t.get("fastsample")
        if not fs:
            continue
        floor = t.get("floor-amax")
        hf = t.get("hf-chain")
        ref = t.get("reference")
        fmt = lambda v: f"{v:8.1f}" if v else "       -"  # noqa: E731
        print(f"{group:44} {fs * 1e3:13.3f} {fmt(fs / floor if floor else None)} "
              f"{fmt(hf / fs if hf else None)} {fmt(ref / fs if ref else None)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".benchmarks/cpu.json")
