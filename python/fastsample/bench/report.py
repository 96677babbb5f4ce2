"""What `python -m fastsample bench` prints and writes: a table per run (milliseconds per call
for each peer, and how many times faster fastsample is), a headline per case, and the JSON of
every measurement."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from .peers import LABELS
from .timing import NOISY_SPREAD

Key = Tuple[str, str, int, int]  # case, dtype, batch, vocab


def by_config(results: Iterable[dict]) -> Dict[Key, Dict[str, dict]]:
    """{(case, dtype, batch, vocab): {peer: result}}, configurations in a numeric order."""
    grouped: Dict[Key, Dict[str, dict]] = {}
    for r in results:
        grouped.setdefault((r["case"], r["dtype"], r["batch"], r["vocab"]), {})[r["peer"]] = r
    return dict(sorted(grouped.items()))


def _ms(r: dict) -> str:
    return f"{r['median_ms']:.3f}" + ("~" if r["noisy"] else " ")


def table(results: List[dict], peers: List[str]) -> str:
    """One line per configuration: each peer's ms per call, then fastsample's speed-up over the
    samplers (peer time / fastsample time; > 1: fastsample is faster) and its multiple of the
    floors (fastsample time / floor time; 1.0 would be as fast as reading the logits)."""
    samplers = [p for p in peers if p != "fastsample" and not p.startswith("floor")]
    floors = [p for p in peers if p.startswith("floor")]
    head = ["case", "dtype", "B", "V"] + [f"{p} ms" for p in peers] + \
        [f"x vs {p}" for p in samplers] + [f"/ {p}" for p in floors]
    rows = []
    for (case, dtype, batch, vocab), got in by_config(results).items():
        row = [case, dtype, str(batch), str(vocab)]
        row += [_ms(got[p]) if p in got else "-" for p in peers]
        fs = got.get("fastsample")
        for p in samplers:
            row.append(f"{got[p]['median_ms'] / fs['median_ms']:.2f}x" if fs and p in got else "-")
        for p in floors:
            row.append(f"{fs['median_ms'] / got[p]['median_ms']:.2f}" if fs and p in got else "-")
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)] if rows else \
        [len(h) for h in head]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def headlines(results: List[dict], device: str) -> List[str]:
    """Per case and dtype, at its largest batch x vocabulary: how fastsample compares."""
    largest: Dict[Tuple[str, str], Tuple[Key, Dict[str, dict]]] = {}
    for key, got in by_config(results).items():
        case, dtype, batch, vocab = key
        best = largest.get((case, dtype))
        if "fastsample" in got and (best is None or batch * vocab >= best[0][2] * best[0][3]):
            largest[(case, dtype)] = (key, got)
    lines = []
    for (case, dtype), ((_, _, batch, vocab), got) in sorted(largest.items()):
        fs = got["fastsample"]["median_ms"]
        faster = [f"{got[p]['median_ms'] / fs:.1f}x faster than {LABELS[p]}"
                  for p in got if p != "fastsample" and not p.startswith("floor")]
        floor = [f"{fs / got[p]['median_ms']:.1f}x {LABELS[p]}" for p in got if p.startswith("floor")]
        text = f"{case}: fastsample is " + (", ".join(faster) if faster else f"{fs:.3f} ms per call")
        text += f" at B={batch}, V={vocab} ({dtype}, {device})"
        if floor:
            text += "; its time is " + " and ".join(floor)
        noisy = [p for p in got if got[p]["noisy"]]
        if noisy:
            text += f" [noisy: {', '.join(noisy)}]"
        lines.append(text + ".")
    return lines


NOISE_NOTE = (f"~ marks a measurement whose rounds spread over more than {NOISY_SPREAD:.0%} of "
              f"its median: the machine was busy; rerun, or raise --rounds.")


def write_json(results: List[dict], meta: dict, path: Path) -> None:
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
