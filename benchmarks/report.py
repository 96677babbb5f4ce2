"""Prints each group's ratios from a pytest-benchmark JSON file:
python benchmarks/report.py .benchmarks/kernels.json

CPU groups use the median wall-clock time; CUDA groups the CUDA-event time per call
(extra_info["cuda_event_ms"]). Ratios: fastsample / floor (one torch.amax pass over the logits),
each peer's time / fastsample's (HF chain, pure-torch reference, FlashInfer), the same call
after a model-like step / back to back (step / fs), and that loop limited to one thread / the
default (1t / step: >= 1 when the threads help). Filter-cost groups: each filter added to
hf-default, as a multiple of hf-default's time, beside transformers' chain. Strategy groups:
the decoding strategy's time outside the model's forward passes per prompt and generated
token, beside a peer's."""
import json
import sys
from collections import defaultdict


def seconds(bench: dict) -> float:
    event_ms = bench.get("extra_info", {}).get("cuda_event_ms")
    return event_ms / 1e3 if event_ms is not None else bench["stats"]["median"]


def main(path: str) -> None:
    groups = defaultdict(dict)
    shares = defaultdict(dict)
    step_ms = defaultdict(dict)
    filter_costs = defaultdict(dict)
    strategy_ms = defaultdict(dict)
    for b in json.load(open(path))["benchmarks"]:
        if "filter" in b.get("extra_info", {}):
            filter_costs[b["group"]][(b["extra_info"]["filter"], b["params"]["impl"])] = seconds(b)
            continue
        if "strategy_ms" in b.get("extra_info", {}):
            strategy_ms[b["group"]][b["params"]["impl"]] = b["extra_info"]["strategy_ms"]
            continue
        groups[b["group"]][b["params"]["impl"]] = seconds(b)
        if "sampling_share" in b.get("extra_info", {}):
            shares[b["group"]][b["params"]["impl"]] = b["extra_info"]["sampling_share"]
        if "step_ms" in b.get("extra_info", {}):
            step_ms[b["group"]][b["params"]["impl"]] = b["extra_info"]["step_ms"]
    for group, s in sorted(shares.items()):
        t = step_ms.get(group, {})
        if "unconstrained" in s and "half-json" in t and "unconstrained" in t:
            print(f"{group}: sampling share of a step {s['half-json']:.3f} with half the rows "
                  f"JSON-constrained vs {s['unconstrained']:.3f} without; step "
                  f"{t['half-json']:.2f} ms vs {t['unconstrained']:.2f} ms "
                  f"({t['half-json'] / t['unconstrained']:.2f}x)")
        if "fastsample" in s and "hf-sampling" in s:
            print(f"{group}: sampling share of a step {s['fastsample']:.3f} (fastsample) vs "
                  f"{s['hf-sampling']:.3f} (transformers) -> {s['hf-sampling'] / s['fastsample']:.1f}x smaller")
        groups.pop(group, None)
    for group, t in sorted(groups.items()):
        if "torch-rule" in t and t.get("fastsample"):
            print(f"{group}: fastsample.verify {t['fastsample'] * 1e3:.2f} ms, the same rule in "
                  f"torch {t['torch-rule'] * 1e3:.2f} ms ({t['torch-rule'] / t['fastsample']:.2f}x "
                  f"fastsample)")
    for group in [g for g, t in groups.items() if "torch-rule" in t]:
        groups.pop(group)
    for group, t in sorted(strategy_ms.items()):
        fs = t.get("fastsample")
        for peer, ms in sorted(t.items()):
            if peer != "fastsample" and fs:
                print(f"{group}: the strategy's time outside the model per prompt and token: "
                      f"fastsample {fs:.3f} ms, {peer} {ms:.3f} ms ({ms / fs:.1f}x fastsample)")
    for group, t in sorted(filter_costs.items()):
        base = t.get(("hf-default", "fastsample"))
        for name in sorted({f for f, _ in t}):
            fs, hf = t.get((name, "fastsample")), t.get((name, "hf-chain"))
            if not fs or not base:
                continue
            peer = f"; transformers {hf * 1e3:.2f} ms ({hf / fs:.1f}x fastsample)" if hf else ""
            print(f"{group}: hf-default + {name}: {fs * 1e3:.3f} ms, {fs / base:.3f}x "
                  f"hf-default{peer}")
    print(f"{'group':48} {'fastsample ms':>13} {'x floor':>8} {'HF / fs':>8} {'ref / fs':>8}"
          f" {'FI / fs':>8} {'step / fs':>9} {'1t / step':>9}")
    fmt = lambda v: f"{v:8.2f}" if v else "       -"  # noqa: E731
    for group, t in sorted(groups.items()):
        if "penalties-heavy" in t and t.get("penalties-off"):
            print(f"{group:48} penalties-heavy / penalties-off = "
                  f"{t['penalties-heavy'] / t['penalties-off']:.3f}")
            continue
        fs = t.get("fastsample")
        if not fs:
            continue
        ratio = lambda peer: t[peer] / fs if t.get(peer) else None  # noqa: E731
        floor = t.get("floor-amax")
        step, one = t.get("after-step"), t.get("after-step-1-thread")
        print(f"{group:48} {fs * 1e3:13.3f} {fmt(fs / floor if floor else None)} "
              f"{fmt(ratio('hf-chain'))} {fmt(ratio('reference'))} {fmt(ratio('flashinfer'))} "
              f"{fmt(step / fs if step else None)} {fmt(one / step if one and step else None)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".benchmarks/kernels.json")
