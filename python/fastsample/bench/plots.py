"""Plots of a `python -m fastsample bench` run (matplotlib, an optional dependency): for each
case and dtype, time per call against the batch size (at the run's largest vocabulary) and
against the vocabulary (at its largest batch), one line per peer, on log axes."""
from __future__ import annotations

from pathlib import Path
from typing import List

from .peers import LABELS
from .report import by_config


def save_plots(results: List[dict], out: Path, device: str) -> List[Path]:
    """Writes <case>-<dtype>.png and .svg under `out`; returns their paths. ImportError when
    matplotlib is not installed (pip install matplotlib)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped = by_config(results)
    written = []
    for case, dtype in sorted({(k[0], k[1]) for k in grouped}):
        mine = {k: v for k, v in grouped.items() if k[0] == case and k[1] == dtype}
        batches = sorted({k[2] for k in mine})
        vocabs = sorted({k[3] for k in mine})
        peers = sorted({p for got in mine.values() for p in got},
                       key=lambda p: list(LABELS).index(p))
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        for peer in peers:
            for axis, xs, key in ((left, batches, lambda x: (case, dtype, x, vocabs[-1])),
                                  (right, vocabs, lambda x: (case, dtype, batches[-1], x))):
                points = [(x, mine[key(x)][peer]["median_ms"]) for x in xs
                          if key(x) in mine and peer in mine[key(x)]]
                if points:
                    axis.plot(*zip(*points), marker="o", label=LABELS[peer],
                              linestyle="--" if peer.startswith("floor") else "-")
        for axis, xs, label in ((left, batches, f"batch (V = {vocabs[-1]})"),
                                (right, vocabs, f"vocabulary (B = {batches[-1]})")):
            axis.set(xlabel=label, xscale="log", yscale="log")
            axis.set_xticks(xs, [str(x) for x in xs])
            axis.minorticks_off()
        left.set_ylabel("ms per call")
        left.legend(fontsize=7)
        fig.suptitle(f"{case}, {dtype}, {device}: time per call (lower is faster)")
        fig.tight_layout()
        for suffix in ("png", "svg"):
            path = out / f"{case}-{dtype}.{suffix}"
            fig.savefig(path)
            written.append(path)
        plt.close(fig)
    return written
