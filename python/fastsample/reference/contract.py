"""The sampling contract (docs/semantics.md) in plain torch, read line by line.

This is the test oracle and the fallback for devices without compiled kernels. It favours
clarity over speed: it sorts, and it computes probabilities in float64.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Optional

import torch

from ..requests import arguments
from . import philox
from ..kernel.param_table import BY_NAME, TOP_N_SIGMA
from ..kernel.sample_output import SampleOutput, invalid_rows_message

FLT_MAX = torch.finfo(torch.float32).max
XTC_THRESHOLD_OFF = BY_NAME["xtc_threshold"].off


def sanitize(logits: torch.Tensor) -> torch.Tensor:
    """Stage 0: float32; NaN -> -inf (never sampled); +inf -> the largest finite float."""
    x = logits.to(torch.float32)
    x = torch.where(torch.isnan(x), torch.full_like(x, -math.inf), x)
    return torch.where(x == math.inf, torch.full_like(x, FLT_MAX), x)


def param_rows(p: arguments.Param, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if p.rows is not None:
        return p.rows.to(device=device, dtype=dtype)
    return torch.full((batch,), p.scalar, device=device, dtype=dtype)


def _row_values(p: arguments.Param, batch: int) -> list:
    return p.rows.tolist() if p.rows is not None else [p.scalar] * batch


def _id_lists(t: torch.Tensor) -> list:
    return [row[row >= 0].tolist() for row in t.cpu()]


def repeated_ngram_ends(history: list, n: int) -> set:
    """transformers' no_repeat_ngram_size: the tokens that complete an n-gram of `history`
    (its ids in order) whose first n - 1 tokens are the history's last n - 1."""
    if n <= 0 or len(history) < n:
        return set()
    ends: dict = {}
    for i in range(len(history) - n + 1):
        ends.setdefault(tuple(history[i:i + n - 1]), set()).add(history[i + n - 1])
    return ends.get(tuple(history[len(history) - n + 1:]), set())


def sequence_biases(history: list, items: list) -> dict:
    """transformers' sequence_bias on one row: {token: total bias} over the sequences (ids,
    bias) whose ids before the last end `history`, summed in float32 from 0 in `items`' order
    (a one-token sequence always applies)."""
    total: dict = {}
    for ids, bias in items:
        prefix = list(ids[:-1])
        if len(prefix) <= len(history) and history[len(history) - len(prefix):] == prefix:
            t = ids[-1]
            total[t] = total.get(t, torch.zeros((), dtype=torch.float32)) + \
                torch.tensor(bias, dtype=torch.float32)
    return total


FLOAT32_MAX = 3.4028234663852886e38


def dry_power(base: float, e: int) -> float:
    """base ** e by squaring in float64, as the kernels compute it (dry.h)."""
    r = 1.0
    while e > 0:
        if e & 1:
            r *= base
        base *= base
        e >>= 1
    return r


def dry_penalty(multiplier: float, base: float, allowed_length: int, length: int) -> float:
    """llama.cpp's DRY penalty for a repeat of `length` ids: multiplier * base ** e in float64,
    e = length - allowed_length stopped where base ** e would overflow float32, rounded once to
    float32 (+inf past its range)."""
    e = length - allowed_length
    if dry_power(base, e) > FLOAT32_MAX:
        lo, hi = 0, e
        while hi - lo > 1:
            mid = lo + (hi - lo) // 2
            lo, hi = (mid, hi) if dry_power(base, mid) <= FLOAT32_MAX else (lo, mid)
        e = lo
    v = float(torch.tensor(multiplier, dtype=torch.float32)) * dry_power(base, e)
    return math.inf if v >= 3.4028235677973366e38 else v


def dry_repeats(history: list, allowed_length: int, last_n: int, breakers: list) -> dict:
    """llama.cpp's DRY on one row: {token: its longest repeat} for the tokens a penalty reaches.
    The window is the history's last last_n ids (-1: all). A repeat at position j is how many
    ids ending at j equal the ids ending the window (inside it, at most rep_limit: the ids after
    the latest-starting breaker, the longest starting there); when it is >= allowed_length, the
    id after j would extend it, unless that id is a one-token breaker."""
    if last_n == 0:
        return {}
    window = list(history) if last_n < 0 else list(history)[max(0, len(history) - last_n):]
    n = len(window)
    if n <= allowed_length:
        return {}
    rep_limit = n
    for i in range(n):  # i ids after the breaker's first
        p = n - 1 - i
        longest = max((len(b) - 1 for b in breakers if window[p:p + len(b)] == list(b)),
                      default=-1)
        if longest >= 0:
            rep_limit = i - longest
            break
    if rep_limit < allowed_length:
        return {}
    singles = {b[0] for b in breakers if len(b) == 1}
    best: dict = {}
    for j in range(n - 1):
        length = 0
        while length < rep_limit and j - length >= 0 and window[j - length] == window[n - 1 - length]:
            length += 1
        if length >= allowed_length and window[j + 1] not in singles:
            best[window[j + 1]] = max(best.get(window[j + 1], 0), length)
    return best


def _runs(ids: list) -> list:
    """A packed row's runs of ids separated by -1 (edit_arguments.pack_sequences and
    pack_breakers), each as (ids tuple, index of its last id), in list order."""
    runs, run = [], []
    for j, t in enumerate(ids + [-1]):
        if t >= 0:
            run.append(t)
        elif run:
            runs.append((tuple(run), j - 1))
            run = []
    return runs


def _breaker_items(ids: list) -> list:
    """A row's packed breakers (edit_arguments.pack_breakers) as id tuples."""
    return [run for run, _ in _runs(ids)]


def _sequence_items(ids: list, values: torch.Tensor) -> list:
    """A row's packed sequence_bias (edit_arguments.pack_sequences) as (ids, bias) items, in
    list order."""
    return [(run, float(values[last])) for run, last in _runs(ids)]


def apply_edits(x: torch.Tensor, e: Any) -> torch.Tensor:
    """Stages 1-3 on sanitized float32 logits x [B, V]; e: the packed arguments (edit_arguments.Edits).
    Returns a new tensor. All arithmetic in float32, in the contract's order, on the CPU: on
    CUDA, torch divides by a scalar as a multiplication by its reciprocal (1 ulp from IEEE
    division), which the contract's x / r is not."""
    device = x.device
    x = x.cpu().clone()
    batch, vocab = x.shape
    f32 = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
    prompt, output = _id_lists(e.prompt.ids), _id_lists(e.output.ids)
    counts = None if e.output_counts is None else e.output_counts.cpu()
    bias_ids, bias_values = _id_lists(e.bias.ids), e.bias_values.cpu()
    sequences, sequence_values = e.sequences.ids.cpu(), e.sequence_values.cpu()
    allowed, banned, stop = _id_lists(e.allowed.ids), _id_lists(e.banned.ids), _id_lists(e.stop.ids)
    begin = _id_lists(e.begin_suppress.ids)
    rep, freq, pres = (_row_values(p, batch) for p in (e.repetition_penalty, e.frequency_penalty,
                                                       e.presence_penalty))
    min_tokens, generated = _row_values(e.min_tokens, batch), _row_values(e.num_generated, batch)
    ngram = _row_values(e.no_repeat_ngram_size, batch)
    dry_m, dry_b, dry_allowed, dry_last_n = (_row_values(p, batch) for p in (
        e.dry_multiplier, e.dry_base, e.dry_allowed_length, e.dry_penalty_last_n))
    breakers = e.dry_breakers.ids.cpu()
    for r in range(batch):
        row = x[r]
        # Stage 1: hard masks.
        if e.bitmask is not None:
            words = e.bitmask[r].cpu().to(torch.int64)
            bits = (words[:, None] >> torch.arange(32)) & 1
            row[~bits.flatten()[:vocab].bool()] = -math.inf
        if allowed[r]:
            outside = torch.ones(vocab, dtype=torch.bool)
            outside[allowed[r]] = False
            row[outside.to(row.device)] = -math.inf
        row[banned[r]] = -math.inf
        if generated[r] < min_tokens[r]:
            row[stop[r]] = -math.inf
        if generated[r] == 0:
            row[begin[r]] = -math.inf
        row[sorted(repeated_ngram_ends(prompt[r] + output[r], ngram[r]))] = -math.inf
        # Stage 2: logit_bias.
        for j, tok in enumerate(bias_ids[r]):
            row[tok] = row[tok] + bias_values[r, j].to(row.device)
        items = _sequence_items(sequences[r].tolist(), sequence_values[r])
        for tok, bias in sequence_biases(prompt[r] + output[r], items).items():
            row[tok] = row[tok] + bias
        # Stage 3: repetition once per distinct token of prompt + output, then frequency/presence,
        # then DRY.
        if rep[r] != 1.0:
            for tok in dict.fromkeys(prompt[r] + output[r]):
                v = row[tok]
                row[tok] = v / f32(rep[r]) if v > 0 else v * f32(rep[r])
        if freq[r] != 0.0 or pres[r] != 0.0:
            if counts is not None:
                tok_counts = {t: int(counts[r, j]) for j, t in enumerate(output[r])}
            else:
                tok_counts = {}
                for t in output[r]:
                    tok_counts[t] = tok_counts.get(t, 0) + 1
            for tok, c in tok_counts.items():
                if c > 0:
                    row[tok] = row[tok] - (f32(freq[r]) * f32(float(c)) + f32(pres[r]))
        # Then DRY, on the tokens that would extend a repeat of the history's end.
        if dry_m[r] > 0:
            repeats = dry_repeats(prompt[r] + output[r], int(dry_allowed[r]), int(dry_last_n[r]),
                                  _breaker_items(breakers[r].tolist()))
            for tok, length in repeats.items():
                penalty = dry_penalty(dry_m[r], float(f32(dry_b[r])), int(dry_allowed[r]), length)
                row[tok] = row[tok] - f32(penalty)
    # Stage 0 again, as the kernels read every edited value: a penalty that overflows to +inf
    # counts as the largest finite float, and NaN (-inf - -inf, from an overflowed penalty on
    # an overflowed logit) as -inf.
    return sanitize(x).to(device)


def _kept_z64(keep: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """z in float64 on the keep-set, -inf elsewhere."""
    return torch.where(keep, z.double(), torch.full_like(z, -math.inf, dtype=torch.float64))


def _n_sigma_keep(x: torch.Tensor, z: torch.Tensor, finite: torch.Tensor, sigma: torch.Tensor,
                  temp: torch.Tensor, greedy: torch.Tensor) -> torch.Tensor:
    """top-n-sigma's keep mask [B, V], computed as the kernels define it (row_filters.h,
    n_sigma_distance): d = x_max - x in float32 over the finite x, q = floor(min(d, 65535) *
    2^16), exact integer sums, E[q^2] - E[q]^2 rounded once (the kernels' fma), then
    z >= z_max - float32(n * std(q) / 2^16 / T)."""
    keep = torch.ones_like(finite)
    for r in range(x.shape[0]):
        n = float(sigma[r])
        if n <= 0.0 or bool(greedy[r]) or not bool(finite[r].any()):
            continue
        xr = x[r][finite[r]].float()
        q = ((xr.max() - xr).clamp(max=65535.0) * 65536.0).to(torch.int64).tolist()
        squares = [v * v for v in q]
        mean = float(sum(q)) / float(len(q))
        mean_sq = (float(sum(v >> 32 for v in squares)) * 4294967296.0
                   + float(sum(v & 0xFFFFFFFF for v in squares))) / float(len(q))
        var = float(Fraction(mean_sq) - Fraction(mean) * Fraction(mean))
        below = n * (math.sqrt(var) if var > 0.0 else 0.0) / 65536.0
        z_max = z[r][finite[r]].max()
        cut = z_max - torch.tensor(below / float(temp[r]), dtype=torch.float32)
        keep[r] = z[r] >= cut
    return keep


def _xtc_keep(keep: torch.Tensor, z: torch.Tensor, threshold: torch.Tensor,
              probability: torch.Tensor, coin: Optional[torch.Tensor]) -> torch.Tensor:
    """XTC's cut of the keep-set (row_filters.h, xtc_hi_key), on rows whose coin (uniform in
    [0, 1), float64 [B]) falls below xtc_probability: the top choices are the kept tokens whose
    probability over the keep-set is >= the threshold and which have mass (z less than 87 below
    the maximum in float32, where the kernels' exp flushes to 0); with two or more, the kept
    tokens above the least likely of them on z are removed."""
    if coin is None or not bool((probability > 0).any()):
        return keep
    acts = (probability.double() > 0) & (coin.to(z.device) < probability.double())
    zk = _kept_z64(keep, z)
    q = torch.softmax(zk, dim=1)
    z_max = torch.where(keep, z, torch.full_like(z, -math.inf)).max(dim=1).values
    top = keep & (q >= threshold.double()[:, None]) & ((z_max[:, None] - z) < 87.0)
    z_least = torch.where(top, z, torch.full_like(z, math.inf)).min(dim=1).values
    cut = acts & (top.sum(dim=1) >= 2)
    return keep & ~(cut[:, None] & (z > z_least[:, None]))


def _typical_keep(keep: torch.Tensor, z: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    """transformers' TypicalLogitsWarper on the keep-set, in float64: rank the kept tokens by
    |-log q - H| (q over the keep-set, H its entropy), add their q in that order until the sum
    reaches `mass` [B], keep every token as close as the one that reached it."""
    zk = _kept_z64(keep, z)
    logq = torch.log_softmax(zk, dim=1)
    q = logq.exp()
    entropy = -(logq * q).nansum(dim=1, keepdim=True)
    shifted = (-logq - entropy).abs()
    ranked, order = shifted.sort(dim=1, stable=True)
    cum = q.gather(1, order).cumsum(dim=1)
    last = (cum < mass[:, None]).sum(dim=1).clamp(max=z.shape[1] - 1)
    cut = ranked.gather(1, last[:, None])
    on = (mass < 1)[:, None]
    return keep & (~on | (shifted <= cut))


def _entropy(keep: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """H [B] of the softmax of z over the keep-set, float64."""
    zk = _kept_z64(keep, z)
    logq = torch.log_softmax(zk, dim=1)
    return -(logq * logq.exp()).nansum(dim=1)


def _cutoff_keep(keep: torch.Tensor, z: torch.Tensor, cutoff: torch.Tensor) -> torch.Tensor:
    """transformers' epsilon rule on the keep-set: keep q >= cutoff [B] (float64, q over the
    keep-set), and the kept tokens tied with the top ones always."""
    zk = _kept_z64(keep, z)
    q = torch.softmax(zk, dim=1)
    top = zk.max(dim=1, keepdim=True).values
    on = (cutoff > 0)[:, None]
    return keep & (~on | (q >= cutoff[:, None]) | (zk >= top))


def _entropy_filters_keep(keep: torch.Tensor, z: torch.Tensor, typical_p: torch.Tensor,
                          epsilon: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """typical-p, then epsilon, then eta (transformers' order and rules), each on what the one
    before keeps; eta's cutoff is min(eta, sqrt(eta) exp(-H))."""
    if bool((typical_p < 1).any()):
        keep = _typical_keep(keep, z, typical_p)
    if bool((epsilon > 0).any()):
        keep = _cutoff_keep(keep, z, epsilon.double())
    if bool((eta > 0).any()):
        e = eta.double()
        by_entropy = e.sqrt() * torch.exp(-_entropy(keep, z))
        keep = _cutoff_keep(keep, z, torch.where(e > 0, torch.minimum(e, by_entropy), e))
    return keep


def keep_set(logits: torch.Tensor, temperature: Any = 1.0, top_k: Any = 0, top_p: Any = 1.0,
             min_p: Any = 0.0, edits: Any = None, top_n_sigma: Any = 0.0,
             xtc_threshold: Any = XTC_THRESHOLD_OFF, xtc_probability: Any = 0.0,
             xtc_coin: Optional[torch.Tensor] = None, typical_p: Any = 1.0,
             epsilon_cutoff: Any = 0.0, eta_cutoff: Any = 0.0):
    """Stages 0-5. Returns (x, z, keep, valid, greedy) for logits [B, V]: x the logits after
    stages 0-3 (edits: edit_arguments.Edits or None), z = x / T, keep the bool keep-set [B, V], valid
    [B], greedy [B]. xtc_coin: each row's coin (float64 [B], philox.row_coin), needed when a
    row's xtc_probability is above 0."""
    logits = arguments.as_logits(logits)
    batch, vocab = logits.shape
    dev = logits.device
    temp = param_rows(arguments.param("temperature", temperature, batch, arguments.TEMPERATURE, dev), batch, dev, torch.float32)
    k = param_rows(arguments.param("top_k", top_k, batch, arguments.TOP_K, dev), batch, dev, torch.int64)
    p = param_rows(arguments.param("top_p", top_p, batch, arguments.TOP_P, dev), batch, dev, torch.float64)
    m = param_rows(arguments.param("min_p", min_p, batch, arguments.MIN_P, dev), batch, dev, torch.float64)
    sigma = param_rows(arguments.param("top_n_sigma", top_n_sigma, batch, TOP_N_SIGMA, dev), batch, dev,
                  torch.float32)
    xtc_t, xtc_p, typical, epsilon, eta = (
        param_rows(arguments.param(name, value, batch, BY_NAME[name].range, dev), batch, dev,
              BY_NAME[name].dtype)
        for name, value in (("xtc_threshold", xtc_threshold), ("xtc_probability", xtc_probability),
                            ("typical_p", typical_p), ("epsilon_cutoff", epsilon_cutoff),
                            ("eta_cutoff", eta_cutoff)))
    if xtc_coin is None and bool((xtc_p > 0).any()):
        raise ValueError("keep_set: rows with xtc_probability > 0 need xtc_coin")

    x = sanitize(logits)
    if edits is not None:
        x = apply_edits(x, edits)
    finite = x > -math.inf
    valid = finite.any(dim=1)
    greedy = temp == 0
    argmax = x.argmax(dim=1)  # first (lowest) index among equal maxima

    # Stage 4: z = x / T in float32, clamped to the finite range like stage 0 (a small T must
    # not turn finite logits into +-inf); -inf stays -inf. Greedy rows skip stage 5.
    t_safe = torch.where(greedy, torch.ones_like(temp), temp)
    z = torch.where(finite, (x / t_safe[:, None]).clamp(-FLT_MAX, FLT_MAX), x)
    z_sorted = z.sort(dim=1, descending=True, stable=True).values

    # top-k: keep z >= the k-th largest z; all ties at the boundary are kept.
    k_on = (k > 0) & (k < vocab)
    kth = z_sorted.gather(1, (k.clamp(1, vocab) - 1)[:, None])
    keep_k = finite & (~k_on[:, None] | (z >= kth))
    # top-n-sigma narrows what top-p renormalizes over, like top-k.
    keep_k &= _n_sigma_keep(x, z, finite, sigma, temp, greedy)

    # top-p on the softmax of the top-k and top-n-sigma survivors: the smallest set of highest-probability
    # tokens whose mass reaches p, plus every token tied with the lowest kept value.
    z64 = z.to(torch.float64)
    zk = torch.where(keep_k, z64, torch.full_like(z64, -math.inf))
    q = torch.softmax(zk, dim=1)
    # Ranked by z, not q: z values a float64 exp cannot tell apart (T 1e30) still rank.
    order = zk.sort(dim=1, descending=True, stable=True).indices
    cum = q.gather(1, order).cumsum(dim=1)
    first_enough = (cum < p[:, None]).sum(dim=1).clamp(max=vocab - 1)
    cut_value = z64.gather(1, order.gather(1, first_enough[:, None]))
    p_on = p < 1
    keep_p = ~p_on[:, None] | (z64 >= cut_value)

    # min-p: q_i >= m * max(q)  <=>  z_i >= max(z) + ln(m), in float32 with ln(m) rounded once.
    z_max = z.max(dim=1).values
    ln_m = torch.tensor([math.log(v) if v > 0 else -math.inf for v in m.tolist()],
                        dtype=torch.float32, device=dev)
    keep_m = z >= (z_max + ln_m)[:, None]

    keep = keep_k & keep_p & keep_m
    one_hot = torch.zeros_like(keep).scatter_(1, argmax[:, None], True)
    keep |= one_hot & finite  # the lower bounds always keep the argmax
    # typical-p, epsilon and eta on what the lower bounds keep; typical-p may remove the argmax.
    keep = _entropy_filters_keep(keep, z, typical, epsilon, eta)
    # XTC, last, on what the others keep: it may remove the argmax.
    keep = _xtc_keep(keep, z, xtc_t, xtc_p, xtc_coin)
    keep = torch.where(greedy[:, None], one_hot, keep)
    keep &= valid[:, None]
    return x, z, keep, valid, greedy


def edits_of(logits: torch.Tensor, edit_kwargs: dict):
    """The validated stage 1-3 arguments of a call on `logits` (edit_kwargs: sample()'s keywords)."""
    from ..requests import edit_arguments
    return edit_arguments.build(logits.shape[0], logits.shape[1], logits.device, **edit_kwargs)


def _coins(logits: torch.Tensor, seed: Any, offset: Any, generator: Any,
           xtc_probability: Any) -> Optional[torch.Tensor]:
    """Each row's XTC coin (float64 [B]) from its resolved seed and offset, or None when no row
    asks for XTC (then nothing is drawn: seed, offset and generator are only checked)."""
    batch = logits.shape[0]
    p = arguments.param("xtc_probability", xtc_probability, batch,
                        BY_NAME["xtc_probability"].range, logits.device)
    if not bool((param_rows(p, batch, torch.device("cpu"), torch.float32) > 0).any()):
        arguments.check_seeds(seed, offset, generator, batch)
        return None
    seed_rows, offset_rows = _seed_rows(logits, seed, offset, generator)
    return torch.tensor(philox.row_coin(seed_rows, offset_rows), dtype=torch.float64)


def _seed_rows(logits: torch.Tensor, seed: Any, offset: Any, generator: Any):
    """Each row's (seed, offset) as uint64 numpy arrays, unseeded rows drawn from `generator`."""
    batch = logits.shape[0]
    s = arguments.seeds(seed, offset, generator, batch, torch.device("cpu"))
    seed_rows = param_rows(s.seed, batch, torch.device("cpu"), torch.int64)
    offset_rows = param_rows(s.offset, batch, torch.device("cpu"), torch.int64)
    return seed_rows.numpy().astype("uint64"), offset_rows.numpy().astype("uint64")


def process_logits(logits: Any, *, temperature: Any = 1.0, top_k: Any = 0, top_p: Any = 1.0,
                   min_p: Any = 0.0, top_n_sigma: Any = 0.0, typical_p: Any = 1.0,
                   epsilon_cutoff: Any = 0.0, eta_cutoff: Any = 0.0,
                   xtc_threshold: Any = XTC_THRESHOLD_OFF, xtc_probability: Any = 0.0,
                   seed: Any = None, offset: Any = None,
                   generator: Optional[torch.Generator] = None,
                   **edit_kwargs: Any) -> torch.Tensor:
    """Reference for fastsample.process_logits: float32 [B, V], z on the keep-set, -inf elsewhere
    (greedy rows: the logit at the argmax after stages 0-3, unscaled). edit_kwargs: the stage 1-3
    keywords of fastsample.sample; seed, offset and generator key XTC's coin."""
    logits = arguments.as_logits(logits)
    coins = _coins(logits, seed, offset, generator, xtc_probability)
    x, z, keep, _, greedy = keep_set(logits, temperature, top_k, top_p, min_p,
                                     edits_of(logits, edit_kwargs), top_n_sigma, xtc_threshold,
                                     xtc_probability, coins, typical_p, epsilon_cutoff,
                                     eta_cutoff)
    kept_value = torch.where(greedy[:, None], x, z)
    return torch.where(keep, kept_value, torch.full_like(z, -math.inf))


def logprobs_of(logits: torch.Tensor, tokens: torch.Tensor, n: int, processed: bool,
                z: Optional[torch.Tensor] = None, keep: Optional[torch.Tensor] = None,
                greedy: Optional[torch.Tensor] = None):
    """Stage 7: (logprob [B], top_ids [B, n], top_logprobs [B, n]) of `tokens` (-1: none).
    raw: log_softmax of the sanitized logits; processed: of z over the keep-set (one-hot on the
    argmax for greedy rows). Top entries: most likely first, lower id first among ties, only
    finite logprobs (then id -1, logprob -inf)."""
    if processed:
        zk = _kept_z64(keep, z)
        lp = torch.log_softmax(zk, dim=1)
        one_hot = torch.where(keep, 0.0, -math.inf).double()
        lp = torch.where(greedy[:, None], one_hot, lp)
    else:
        lp = torch.log_softmax(sanitize(logits).double(), dim=1)
    lp = torch.nan_to_num(lp, nan=-math.inf, neginf=-math.inf)  # rows with nothing finite
    # A finite logit has a finite logprob: at least the lowest float32, even when it lies more
    # than FLT_MAX below the maximum.
    lp = torch.where(lp > -math.inf, lp.clamp(min=-FLT_MAX), lp)
    batch = lp.shape[0]
    safe = tokens.clamp(min=0).to(lp.device)
    token_lp = torch.where(tokens.to(lp.device) >= 0, lp.gather(1, safe[:, None])[:, 0],
                           torch.full((batch,), -math.inf, dtype=torch.float64, device=lp.device))
    values, ids = lp.sort(dim=1, descending=True, stable=True)
    values, ids = values[:, :n], ids[:, :n]
    if values.shape[1] < n:  # fewer tokens than asked for: padded as the non-finite ones are
        pad = n - values.shape[1]
        values = torch.nn.functional.pad(values, (0, pad), value=-math.inf)
        ids = torch.nn.functional.pad(ids, (0, pad), value=-1)
    ids = torch.where(values > -math.inf, ids, torch.full_like(ids, -1))
    invalid = tokens.to(lp.device) < 0
    values = torch.where(invalid[:, None], -math.inf, values)
    ids = torch.where(invalid[:, None], -1, ids)
    return token_lp.float(), ids, values.float()


def inverse_cdf(w: torch.Tensor, random: int) -> int:
    """The token of w's inverse CDF in token order at u = random / 2^64 (w: float64 [V] >= 0,
    not all 0), as the kernels' draw walks it: a token without weight is never drawn."""
    cum = w.cumsum(0)
    token = int((cum <= random / 2.0**64 * float(cum[-1])).sum().clamp(max=w.shape[0] - 1))
    while w[token] <= 0:  # a zero-width step can land on a token without weight
        token -= 1
    return token


def sample(logits: Any, *, temperature: Any = 1.0, top_k: Any = 0, top_p: Any = 1.0,
           min_p: Any = 0.0, top_n_sigma: Any = 0.0, typical_p: Any = 1.0,
           epsilon_cutoff: Any = 0.0, eta_cutoff: Any = 0.0,
           xtc_threshold: Any = XTC_THRESHOLD_OFF, xtc_probability: Any = 0.0,
           seed: Any = None, offset: Any = None,
           generator: Optional[torch.Generator] = None, return_valid: bool = False,
           logprobs: Optional[int] = None, logprobs_mode: str = "raw", **edit_kwargs: Any):
    """Reference for fastsample.sample: inverse CDF over the keep-set in token order, with the
    row's Philox draw u = r / 2^64 and float64 probabilities."""
    logits = arguments.as_logits(logits)
    batch = logits.shape[0]
    seed_rows, offset_rows = _seed_rows(logits, seed, offset, generator)
    coins = torch.tensor(philox.row_coin(seed_rows, offset_rows), dtype=torch.float64)
    _, z, keep, valid, greedy = keep_set(logits, temperature, top_k, top_p, min_p,
                                         edits_of(logits, edit_kwargs), top_n_sigma,
                                         xtc_threshold, xtc_probability, coins, typical_p,
                                         epsilon_cutoff, eta_cutoff)
    randoms = philox.row_random_u64(seed_rows, offset_rows)

    z64 = z.to(torch.float64)
    tokens = torch.full((batch,), -1, dtype=torch.int64)
    for row in range(batch):
        if not bool(valid[row]):
            continue
        kept = keep[row].cpu()
        if bool(greedy[row]):
            tokens[row] = int(kept.nonzero()[0, 0])
            continue
        zr = z64[row].cpu()
        w = torch.where(kept, torch.exp(zr - zr[kept].max()), torch.zeros_like(zr))
        tokens[row] = inverse_cdf(w, int(randoms[row]))
    tokens = tokens.to(logits.device)
    if logprobs is not None:
        lp = logprobs_of(logits, tokens, logprobs, logprobs_mode == "processed", z, keep, greedy)
        return SampleOutput(tokens, valid, *lp)
    if return_valid:
        return SampleOutput(tokens, valid)
    if not bool(valid.all()):
        raise ValueError(invalid_rows_message(valid))
    return tokens
