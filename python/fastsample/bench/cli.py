"""`python -m fastsample bench`: the kernel benchmark a user runs (see --help)."""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional

import torch

from ..kernel.build_info import build_info
from . import report
from .peers import LABELS, PEERS, available_peers, make
from .timing import NOISY_SPREAD, measure
from .workload import CASES, DTYPES, FULL, QUICK, make_logits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Times fastsample.sample beside its peers on the same logits in the same run "
        "(transformers' processors, torch sort-based sampling as vLLM's native path does it, "
        "FlashInfer and llama.cpp when installed, and two reference floors: torch.amax and "
        "torch.logsumexp). Quick by "
        "default (a few sizes, under two minutes on two cores); --full for serving sizes.")
    parser.add_argument("--full", action="store_true",
                        help=f"batches {FULL['batches']}, vocabularies {FULL['vocabs']}, dtypes "
                             f"{FULL['dtypes']} (default: {QUICK['batches']}, "
                             f"{QUICK['vocabs']}, {QUICK['dtypes']})")
    parser.add_argument("--device", choices=["cpu", "cuda"],
                        help="default: cuda when torch sees a GPU and fastsample has CUDA "
                             "kernels, else cpu")
    parser.add_argument("--dtype", type=_names(DTYPES), help="comma-separated: "
                        + ", ".join(DTYPES))
    parser.add_argument("--batch", type=_ints, help="comma-separated batch sizes, e.g. 1,64")
    parser.add_argument("--vocab", type=_ints, help="comma-separated vocabulary sizes")
    parser.add_argument("--case", type=_names(CASES), help="comma-separated: "
                        + "; ".join(f"{k} ({v})" for k, v in CASES.items()))
    parser.add_argument("--peers", type=_names(PEERS), default=list(PEERS),
                        help="comma-separated subset of: " + ", ".join(PEERS))
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed rounds per measurement (default 5); the median is kept")
    parser.add_argument("--out", type=Path, default=Path("fastsample-bench"),
                        help="folder for results.json and the plots (default ./fastsample-bench)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG/SVG plots")
    parser.add_argument("--model", metavar="DIR",
                        help="instead: end-to-end decoding with this local transformers causal "
                             "LM, tokens/s of fastsample.generate beside model.generate")
    parser.add_argument("--prompts", type=int, default=8, help="--model: prompts (default 8)")
    parser.add_argument("--new-tokens", type=int, default=64,
                        help="--model: tokens generated per prompt (default 64)")


def _ints(text: str) -> List[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def _names(known) -> Callable[[str], List[str]]:
    def parse(text: str) -> List[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown) or 'empty'}; choose "
                                             f"from {', '.join(known)}")
        return names
    return parse


class Progress:
    """One status line on stderr: a bar redrawn in place on a terminal, lines otherwise."""

    def __init__(self, total: int, stream=None):
        self.total, self.done = total, 0
        self.stream = sys.stderr if stream is None else stream
        self.tty = self.stream.isatty()

    def show(self, what: str) -> None:
        filled = 30 * self.done // max(self.total, 1)
        line = f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {what}"
        if self.tty:
            self.stream.write("\r" + line[:119].ljust(119))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def step(self, what: str) -> None:
        self.done += 1
        self.show(what)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() and build_info()["cuda_enabled"] else "cpu"


def run(args: argparse.Namespace, out=None) -> int:
    out = sys.stdout if out is None else out
    device = args.device or _default_device()
    if device == "cuda" and not (torch.cuda.is_available() and build_info()["cuda_enabled"]):
        print("bench: --device cuda needs a GPU torch sees and fastsample built with CUDA "
              f"({build_info()['cuda_not_built'] or 'no GPU visible'})", file=sys.stderr)
        return 2
    if args.rounds < 1:
        print(f"bench: --rounds must be >= 1, got {args.rounds}", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"bench: --out {args.out} is a file; name a folder", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)  # before measuring: a bad path fails at once
    if args.model:
        return _run_model(args, device, out)
    sizes = FULL if args.full else QUICK
    batches, vocabs = args.batch or sizes["batches"], args.vocab or sizes["vocabs"]
    dtypes, cases = args.dtype or sizes["dtypes"], args.case or list(CASES)
    configs = [(c, d, b, v) for c in cases for d in dtypes for b in batches for v in vocabs]
    skipped = {}
    plan = []
    for case, dtype, batch, vocab in configs:
        for peer, why in available_peers(CASES[case], device, tuple(args.peers)).items():
            if why:
                skipped.setdefault((peer, why), set()).add(case)
            else:
                plan.append((case, dtype, batch, vocab, peer))
    print(f"fastsample {build_info()['version']} on {device} "
          f"({_machine(device)}); {len(configs)} configurations x {len(args.peers)} peers, "
          f"{args.rounds} rounds each", file=out)
    for (peer, why), where in skipped.items():
        cases_note = "" if where == set(cases) else f" ({', '.join(sorted(where))})"
        print(f"  not measured: {peer}{cases_note}: {why}", file=out)
    progress = Progress(len(plan))
    results = []
    logits_key, logits = None, None
    for case, dtype, batch, vocab, peer in plan:
        progress.show(f"{case} B={batch} V={vocab} {dtype}: {peer}")
        if logits_key != (dtype, batch, vocab):
            logits_key, logits = (dtype, batch, vocab), make_logits(batch, vocab, DTYPES[dtype],
                                                                    device)
        timing = measure(make(peer, CASES[case], logits), device, rounds=args.rounds)
        results.append(dict(case=case, dtype=dtype, batch=batch, vocab=vocab, device=device,
                            peer=peer, median_ms=timing.median_s * 1e3,
                            spread=round(timing.spread, 4), noisy=timing.noisy,
                            rounds_ms=[t * 1e3 for t in timing.rounds_s]))
        progress.step(f"{case} B={batch} V={vocab} {dtype}: {peer}")
    progress.close()
    peers = [p for p in args.peers if any(r["peer"] == p for r in results)]
    print("\nms per call (median of rounds); x vs P: P's time / fastsample's (above 1: "
          "fastsample is faster); / floor: fastsample's time / the floor's", file=out)
    print(report.table(results, peers), file=out)
    if any(r["noisy"] for r in results):
        print(report.NOISE_NOTE, file=out)
    print("", file=out)
    for line in report.headlines(results, device):
        print(line, file=out)
    meta = dict(device=device, machine=_machine(device), build=build_info(),
                torch=torch.__version__, rounds=args.rounds, noisy_spread=NOISY_SPREAD,
                cases={c: CASES[c] for c in cases}, peers={p: LABELS[p] for p in peers},
                time=time.strftime("%Y-%m-%d %H:%M:%S"))
    report.write_json(results, meta, args.out / "results.json")
    print(f"\nwrote {args.out / 'results.json'}", file=out)
    if not args.no_plots:
        try:
            from .plots import save_plots
            written = save_plots(results, args.out, device)
            print(f"wrote {len(written)} plots under {args.out}", file=out)
        except ImportError:
            print("no plots: matplotlib is not installed (pip install matplotlib)", file=out)
    return 0


def _machine(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"{platform.machine()}, {torch.get_num_threads()} threads"


_KERNEL_ONLY = ("full", "batch", "vocab", "peers", "no_plots")


def _run_model(args: argparse.Namespace, device: str, out) -> int:
    given = [f"--{name.replace('_', '-')}" for name in _KERNEL_ONLY
             if getattr(args, name) not in (None, False, list(PEERS))]
    if given or len(args.dtype or []) > 1 or len(args.case or []) > 1:
        print(f"bench --model times one end-to-end decode: it takes one --dtype and one --case, "
              f"not {' '.join(given) or 'several'} (those are the kernel benchmark's)",
              file=sys.stderr)
        return 2
    from .decode_loop import decode_rates, load_model
    dtype = DTYPES[(args.dtype or ["float32"])[0]]
    params = CASES[(args.case or ["hf-default"])[0]]
    model = load_model(args.model, device, dtype)
    progress = Progress(2 * (args.rounds + 1))
    rates = decode_rates(model, params, args.prompts, 32, args.new_tokens, args.rounds,
                         progress.step)
    progress.close()
    fs, hf = rates["fastsample"], rates["transformers"]
    print(f"{args.model} on {device}, {args.prompts} prompts x {args.new_tokens} new tokens, "
          f"{params}:", file=out)
    for name, t in rates.items():
        print(f"  {name:<12} {1 / t.median_s:10.1f} tokens/s"
              + (" ~" if t.noisy else ""), file=out)
    print(f"fastsample.generate decodes {hf.median_s / fs.median_s:.2f}x as many tokens per "
          f"second as model.generate(do_sample=True) here.", file=out)
    report.write_json([dict(loop=n, tokens_per_s=1 / t.median_s, spread=t.spread,
                            rounds_tokens_per_s=[1 / s for s in t.rounds_s])
                       for n, t in rates.items()],
                      dict(model=args.model, device=device, params=params,
                           prompts=args.prompts, new_tokens=args.new_tokens),
                      args.out / "decode-loop.json")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastsample bench")
    add_arguments(parser)
    return run(parser.parse_args(argv))
