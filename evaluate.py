"""
Evaluate checkpoints on math benchmarks at one or several attention windows, and measure what the
window saves when decoding.

    python evaluate.py --ckpt out/rl.pt                                   # synthetic test sets
    python evaluate.py --compare base_model out/sft.pt out/rl.pt --window 32 none --out out/eval
    python evaluate.py --ckpt out/sft.pt --force-style free lookback carry     # each style's ceiling
    python evaluate.py --ckpt out/rl.pt --data gsm8k.jsonl math500.jsonl --samples 8 --k 1,4,8
    python evaluate.py --efficiency --config qwen2.5-1.5b --window 4096 --out out/efficiency

Benchmarks are JSON lines {"prompt", "answer"} (data/); by default the synthetic test_k{k} sets of
data.synthetic.DEFAULT_TASK. One row per checkpoint x window (x forced style), one column per
benchmark, cells = greedy accuracy %; a detailed table below it has, per cell:
- greedy: one greedy completion per problem, graded as the RL reward grades: the final answer in a
  trusted form (\\boxed{}, ####, "the answer is": reward.extract_answer) equal to the gold one
  (reward.is_equiv).
- with --samples n (at --temperature): pass@1 = the mean accuracy of the n samples, pass@k = the
  unbiased estimator of Chen et al. 2021, and maj@k = majority vote over the first k samples'
  answers by reward.normalize. A tie goes to the answer that appeared first among the k samples
  (the samples' order is fixed by --seed); an unextractable answer never votes.
- no answer: completions without an extractable answer; cut: completions stopped by
  --max-new-tokens.
- response length in tokens (mean, max) and "beyond W": the share of response tokens that sit more
  than W positions after the response's first token, i.e. how much of its own answer the window
  hides from the model as it writes. At 0% SWA cannot lose anything of the answer, and a note says
  whether it even differs from full attention (only if prompt + response is longer than W).
- synthetic benchmarks: the share of completions in each solution style (data.synthetic.
  detect_style: look-back or carry-forward), the mechanism SWARR is meant to change.
--force-style lookback|carry appends that style's marker to the prompt (the completion graded is
marker + generated text), so the model's ceiling in each style is measured; "free" is no marker.

--out PREFIX writes PREFIX.md (the tables) and PREFIX.json (every number), rewritten after each
finished cell: an error (a bad benchmark file, a checkpoint that fails to load, a prompt longer than
the context) prints `error: ...`, marks its cell and never loses what was already measured.

--efficiency measures, for one checkpoint or random weights of a built-in shape (--config), the
decode latency per token and the KV-cache memory at each --contexts length, full attention (SA)
against --window (SWA): a random prompt of that length is prefilled, then --decode-steps single
tokens are timed, one sequence. Memory is the cache's own tensors (and the peak the GPU allocated
while decoding). A context that does not fit reports OOM; the plot needs matplotlib.
"""
import argparse
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from tqdm import tqdm

from data import read_jsonl
from data.synthetic import DEFAULT_TASK, MARKERS, detect_style, in_memory_splits
from generate import DecodeStep, KVCache, completions, generate, load_model, parse_window
from model import Model, atomic_write, config_from_hf
from reward import extract_answer, is_equiv, normalize, parse_gold

# Qwen2.5-1.5B's config.json shape: random weights decode exactly as fast as trained ones
CONFIGS = {
    "qwen2.5-1.5b": dict(model_type="qwen2", vocab_size=151936, hidden_size=1536, intermediate_size=8960,
                         num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2, head_dim=128,
                         tie_word_embeddings=True, rope_theta=1000000.0, rms_norm_eps=1e-6, max_position_embeddings=32768),
}
STYLES = ("free", *MARKERS)  # free: no marker, the model picks its style
WARMUP = 3  # decode steps before timing: the first runs eagerly, the second captures the CUDA graph


# ----------------------------------------------------------------------------------------------
# the statistics


def pass_at_k(n, c, k):
    """
    Probability that k samples drawn without replacement from n, c of them correct, hold a correct
    one: 1 - C(n - c, k) / C(n, k) (Chen et al. 2021), as a product of ratios so that no binomial
    coefficient is ever formed (they overflow floats for n in the hundreds).
    """
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:  # every k-subset contains a correct sample
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def majority_vote(answers):
    """
    The most frequent answer among extracted answers (None = unextractable), two answers being the
    same when reward.normalize maps them to the same form; None and answers that normalise to ""
    never vote. Ties go to the group whose first member came first. Returns that first member as
    written (for is_equiv against the gold), or None when nobody voted.
    """
    groups = {}  # normal form -> [votes, first answer]; a dict keeps first-appearance order
    for answer in answers:
        key = normalize(answer) if answer is not None else ""
        if key:
            groups.setdefault(key, [0, answer])[0] += 1
    if not groups:
        return None
    return max(groups.values(), key=lambda g: g[0])[1]  # max() keeps the first of equal counts


def beyond_window_share(lengths, window):
    """
    Share of response tokens more than `window` positions after the response's first token: a
    response of n tokens has offsets 0 .. n-1, of which max(0, n - 1 - W) are past W. None (full
    attention) hides nothing.
    """
    total = sum(lengths)
    if window is None or total == 0:
        return 0.0
    return sum(max(0, n - 1 - window) for n in lengths) / total


def kv_cache_bytes(config, length, bytes_per_value):
    """The KV cache one sequence of `length` tokens holds: every position in a full layer, at most sinks + W in an SWA layer."""
    slots = sum(length if w is None else min(length, config.sinks + w) for w in config.layer_windows)
    return 2 * slots * config.num_key_value_heads * config.head_dim * bytes_per_value  # k and v


def style_shares(texts):
    counts = Counter(detect_style(t) or "none" for t in texts)
    return {s: counts[s] / len(texts) for s in (*MARKERS, "none")}


def smallest_window(config):
    """The tightest window of any layer (None: every layer is full attention)."""
    return min((w for w in config.layer_windows if w is not None), default=None)


def attention_label(config):
    windows = config.layer_windows
    if all(w is None for w in windows):
        return "full"
    label = "W=" + "/".join(str(w) for w in sorted({w for w in windows if w is not None}))
    if config.sinks:
        label += f" +{config.sinks} sinks"
    full = [str(i) for i, w in enumerate(windows) if w is None]
    return label + (f", full layers {','.join(full)}" if full else "")


# ----------------------------------------------------------------------------------------------
# benchmarks


def load_benchmarks(paths, limit=None):
    """-> [(name, records, source)], [errors]. A bad file costs its own column, not the run."""
    if not paths:
        # only the test splits are needed; each split has its own random stream, so not drawing
        # the training splits leaves the test sets exactly those every other command sees
        splits = in_memory_splits(**{**DEFAULT_TASK["splits"], "n_sft": 0, "n_val": 0, "n_rl": 0})
        return [(name, recs[:limit], "data.synthetic") for name, recs in splits.items() if name.startswith("test_k")], []
    benchmarks, errors = [], []
    stems = Counter(Path(p).stem for p in dict.fromkeys(paths))
    for path in dict.fromkeys(paths):
        name = Path(path).stem if stems[Path(path).stem] == 1 else str(Path(path).with_suffix(""))
        try:
            benchmarks.append((name, read_jsonl(path, need=("prompt", "answer"))[:limit], str(path)))
        except ValueError as e:  # read_jsonl's messages name the file and line
            errors.append(str(e))
            print(f"error: {e}", file=sys.stderr)
    return benchmarks, errors


def is_synthetic(records):
    return all("style" in r or r["prompt"].startswith("Q:") for r in records)


# ----------------------------------------------------------------------------------------------
# one benchmark with the model's current attention


def sample_completions(model, tokenizer, prompts, max_new_tokens, group_size, temperature, seed, batch_size, desc):
    """prompts: token lists -> per prompt, group_size tuples (text, generated tokens without EOS, cut)."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # equal lengths prefill together
    per_batch = max(1, batch_size // group_size)
    out = [None] * len(prompts)
    for b, start in enumerate(tqdm(range(0, len(order), per_batch), desc=desc, leave=False)):
        idx = order[start : start + per_batch]
        gen = generate(model, [prompts[i] for i in idx], max_new_tokens, tokenizer.eos_ids, group_size=group_size,
                       temperature=temperature, seed=seed + b)
        texts = completions(tokenizer, gen)
        n_tokens = (gen.mask.sum(1) - (~gen.truncated).long()).tolist()  # a row that stopped ends in its EOS
        cut = gen.truncated.tolist()
        for j, i in enumerate(idx):  # prompt j of the batch owns rows j*G .. j*G + G-1
            out[i] = [(texts[r], n_tokens[r], cut[r]) for r in range(j * group_size, (j + 1) * group_size)]
    return out


def summarize(outs, marker, marker_tokens, prompt_tokens, golds, window, synthetic):
    """Statistics of completions (per prompt a list of (text, tokens, cut)); also answers, correct."""
    texts = [[marker + text for text, _, _ in o] for o in outs]  # a forced marker is part of the response
    answers = [[extract_answer(t) for t in ts] for ts in texts]
    correct = [[is_equiv(a, gold) for a in ans] for ans, gold in zip(answers, golds)]
    lengths = [m + n for o, m in zip(outs, marker_tokens) for _, n, _ in o]
    flat = [t for ts in texts for t in ts]
    stats = {
        "accuracy": sum(map(sum, correct)) / len(flat),
        "no_answer": sum(a is None for ans in answers for a in ans) / len(flat),
        "cut": sum(cut for o in outs for _, _, cut in o) / len(flat),
        "len_mean": sum(lengths) / len(lengths),
        "len_max": max(lengths),
        "beyond_window": beyond_window_share(lengths, window),
        "longest_sequence": max(p + m + n for o, p, m in zip(outs, prompt_tokens, marker_tokens) for _, n, _ in o),
    }
    if synthetic:
        stats["style"] = style_shares(flat)
    return stats, texts, answers, correct


def evaluate_benchmark(model, tokenizer, records, samples=0, ks=(), temperature=1.0, max_new_tokens=512,
                       batch_size=64, seed=0, force_style=None, desc="eval"):
    """
    One benchmark under the model's current attention -> {"n", "window", "greedy": {...},
    "samples": {...} (with samples > 0), "notes", "completions" (greedy texts, in record order)}.
    Rates are fractions. force_style ("lookback" / "carry") applies to synthetic benchmarks only.
    """
    synthetic, notes = is_synthetic(records), []
    marker = MARKERS[force_style] if force_style in MARKERS and synthetic else ""
    if force_style in MARKERS and not synthetic:
        notes.append(f"--force-style {force_style} applies to synthetic benchmarks only: not forced here")
    golds = [parse_gold(r["answer"]) for r in records]
    prompts, marker_tokens = [], []
    for r in records:
        text = tokenizer.render_prompt(r["prompt"])  # exactly what training conditioned on
        ids = tokenizer.encode(text + marker)
        prompts.append(ids)
        marker_tokens.append(len(ids) - len(tokenizer.encode(text)))
    prompt_tokens = [len(p) - m for p, m in zip(prompts, marker_tokens)]
    window = smallest_window(model.config)
    room = model.config.max_position_embeddings - max(map(len, prompts))
    if room < 1:
        raise ValueError(f"a prompt of {max(map(len, prompts))} tokens fills the model's context of "
                         f"{model.config.max_position_embeddings}")
    if room < max_new_tokens:
        notes.append(f"max-new-tokens lowered to {room}: the longest prompt leaves no more room in the context")
        max_new_tokens = room
    result = {"n": len(records), "synthetic": synthetic, "forced_style": force_style if marker else None,
              "window": window, "max_new_tokens": max_new_tokens}

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    outs = sample_completions(model, tokenizer, prompts, max_new_tokens, 1, 0.0, seed, batch_size, f"{desc} greedy")
    seconds = time.perf_counter() - start  # (sample_completions ends reading the tokens back: synchronised)
    result["greedy"], texts, _, _ = summarize(outs, marker, marker_tokens, prompt_tokens, golds, window, synthetic)
    # efficiency beside accuracy: generation speed, and the cache each sequence needs at its own length
    value_bytes = model.embed_tokens.weight.element_size()
    kv = [kv_cache_bytes(model.config, p + m + n, value_bytes) for o, p, m in zip(outs, prompt_tokens, marker_tokens) for _, n, _ in o]
    result["greedy"].update(tokens_per_s=sum(n for o in outs for _, n, _ in o) / seconds, seconds=seconds,
                            kv_bytes_mean=sum(kv) / len(kv), kv_bytes_max=max(kv))
    result["completions"] = [ts[0] for ts in texts]
    g = result["greedy"]
    if window is not None and g["beyond_window"] == 0:
        fits = g["longest_sequence"] <= window
        notes.append(f"no response token sits more than W={window} positions after the response's start "
                     f"(longest response {g['len_max']} tokens): the window hides none of the answer"
                     + ("; prompt + response fit in the window, so SWA computes exactly what full attention does"
                        if fits else f", only the start of the prompt (longest sequence {g['longest_sequence']} tokens)"))

    if samples:
        outs = sample_completions(model, tokenizer, prompts, max_new_tokens, samples, temperature, seed, batch_size,
                                  f"{desc} {samples} samples")
        s, _, answers, correct = summarize(outs, marker, marker_tokens, prompt_tokens, golds, window, synthetic)
        s = {"n": samples, "temperature": temperature, "pass@1": s.pop("accuracy"), **s}
        for k in ks:
            s[f"pass@{k}"] = sum(pass_at_k(samples, sum(c), k) for c in correct) / len(correct)
            s[f"maj@{k}"] = sum(is_equiv(majority_vote(a[:k]), gold) for a, gold in zip(answers, golds)) / len(golds)
        result["samples"] = s
    result["notes"] = notes
    return result


# ----------------------------------------------------------------------------------------------
# tables


def pct(x):
    return "–" if x is None else f"{100 * x:.1f}"


def eval_tables(rows, bench_names, samples, ks):
    """The summary table (greedy accuracy %) and the detailed one, as Markdown lines."""
    keys = list(dict.fromkeys((r["checkpoint"], r["attention"], r["style"]) for r in rows))
    summary = ["| checkpoint | attention | style | " + " | ".join(bench_names) + " |", "|---" * (3 + len(bench_names)) + "|"]
    for key in keys:
        cells = {r["benchmark"]: "error" if "error" in r else pct(r["greedy"]["accuracy"])
                 for r in rows if (r["checkpoint"], r["attention"], r["style"]) == key}
        summary.append("| " + " | ".join([*key, *(cells.get(b, "") for b in bench_names)]) + " |")

    sampled = ["pass@1", *(f"{m}@{k}" for k in ks for m in ("pass", "maj") if (m, k) != ("pass", 1))] if samples else []
    head = ["checkpoint", "attention", "style", "benchmark", "n", "greedy %", *(f"{m} %" for m in sampled), "no answer %", "cut %",
            "len mean", "len max", "beyond W %", "look-back %", "carry %"]
    if samples:
        head += ["sampled look-back %", "sampled carry %"]
    detail = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        cells = [r["checkpoint"], r["attention"], r["style"], r["benchmark"]]
        if "error" in r:
            detail.append("| " + " | ".join(cells + [f"error: {r['error']}"] + [""] * (len(head) - 5)) + " |")
            continue
        g, s = r["greedy"], r.get("samples", {})
        cells += [str(r["n"]), pct(g["accuracy"]), *(pct(s[m]) for m in sampled),
                  pct(g["no_answer"]), pct(g["cut"]), f"{g['len_mean']:.1f}", str(g["len_max"]),
                  pct(None if r["window"] is None else g["beyond_window"])]  # full attention hides nothing: "–"
        cells += [pct(g["style"][st]) if "style" in g else "–" for st in MARKERS]
        if samples:
            cells += [pct(s["style"][st]) if "style" in s else "–" for st in MARKERS]
        detail.append("| " + " | ".join(cells) + " |")
    return summary, detail


def write_report(prefix, markdown, data):
    """PREFIX.md and PREFIX.json, each replaced whole (through a temporary file and a rename)."""
    if prefix is None:
        return
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(f"{prefix}.md", lambda f: Path(f).write_text(markdown))
    atomic_write(f"{prefix}.json", lambda f: Path(f).write_text(json.dumps(data, indent=2) + "\n"))


# ----------------------------------------------------------------------------------------------
# efficiency: decode latency and KV memory against context length


def is_oom(e):
    text = str(e).lower()
    return isinstance(e, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in text or "allocate" in text


@torch.no_grad()
def decode_cost(model, context, steps):
    """
    Prefill a random prompt of `context` tokens into a fresh cache, then time `steps` decode steps
    of that one sequence. -> (ms per token, KV-cache bytes, peak GPU bytes while decoding or None).
    """
    device, dtype = model.embed_tokens.weight.device, model.embed_tokens.weight.dtype
    cuda = device.type == "cuda"
    cache = KVCache(model, 1, context + WARMUP + steps, device, dtype)
    ids = torch.randint(0, model.config.vocab_size, (1, context), device=device)  # (1, context)
    token = cache.prefill(model, ids, torch.zeros(1, 1, dtype=torch.long, device=device)).argmax(-1)  # (1,), into row 0
    step = DecodeStep(model, cache, 1, device, cuda_graph=cuda)
    for _ in range(WARMUP):
        token = step(token).argmax(-1)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        token = step(token).argmax(-1)
    if cuda:
        torch.cuda.synchronize()
    ms = (time.perf_counter() - t0) * 1000 / steps
    return ms, cache.memory_bytes(), torch.cuda.max_memory_allocated() if cuda else None


def efficiency_rows(model, name, contexts, window, sinks=0, full_layers=(), steps=32, on_row=None):
    """SA then SWA at every context; a context that does not fit gives an OOM row and the next one runs."""
    rows = []
    for w in (None, window):
        model.set_window(w, sinks if w else 0, full_layers if w else ())
        label = attention_label(model.config)
        for context in tqdm(contexts, desc=f"{name} {label}", leave=False):
            row = {"model": name, "attention": label, "window": w, "context": context}
            try:
                ms, kv, peak = decode_cost(model, context, steps)
                row.update(ms_per_token=ms, kv_bytes=kv, peak_bytes=peak)
            except (MemoryError, RuntimeError) as e:
                if not is_oom(e):
                    raise
                row.update(oom=True, error=f"{type(e).__name__}: {first_line(e)}")
                print(f"error: {name} {label}: context {context} does not fit on {model.embed_tokens.weight.device} "
                      f"({row['error']})", file=sys.stderr)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # give back what the last context held before the next one
            rows.append(row)
            if on_row:
                on_row(rows)
    return rows


def efficiency_table(rows):
    lines = ["| model | attention | context | decode ms/token | KV cache | peak GPU memory |", "|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("oom"):
            cells = ["OOM", "OOM", "OOM"]
        else:
            cells = [f"{r['ms_per_token']:.2f}", human_bytes(r["kv_bytes"]), human_bytes(r["peak_bytes"])]
        lines.append("| " + " | ".join([r["model"], r["attention"], str(r["context"]), *cells]) + " |")
    return lines


def human_bytes(n):
    if n is None:
        return "–"
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:.0f} B" if i == 0 else f"{n:.1f} {units[i]}"


def plot_efficiency(rows, file):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed, so no plot")
        return
    fig, (ax_ms, ax_kv) = plt.subplots(1, 2, figsize=(10, 4))
    for label in dict.fromkeys(r["attention"] for r in rows):
        ok = [r for r in rows if r["attention"] == label and not r.get("oom")]
        x = [r["context"] for r in ok]
        ax_ms.plot(x, [r["ms_per_token"] for r in ok], "o-", label=label)
        ax_kv.plot(x, [r["kv_bytes"] / 2**20 for r in ok], "o-", label=label)
    for ax, ylabel in ((ax_ms, "decode ms / token"), (ax_kv, "KV cache MiB")):
        ax.set(xscale="log", xlabel="context (tokens)", ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(file, dpi=120)
    plt.close(fig)


def run_efficiency(args, command):
    device = torch.device(args.device)
    if args.config:  # random weights of a known shape; the context must fit its rotary positions
        hf = dict(CONFIGS[args.config]) if args.config in CONFIGS else json.loads(Path(args.config).read_text())
        hf["max_position_embeddings"] = max(hf.get("max_position_embeddings", 0), max(args.contexts) + 64)
        torch.manual_seed(args.seed)
        with torch.device(device):
            model = Model(config_from_hf(hf))
        model = model.to(torch.bfloat16 if device.type == "cuda" else torch.float32).eval()
        name = args.config
    else:
        model, _ = load_model(args.ckpt, None, device=device)
        name = args.ckpt
        if max(args.contexts) > model.config.max_position_embeddings:
            print(f"note: contexts past the checkpoint's {model.config.max_position_embeddings} positions are "
                  "beyond what it was trained on; their speed and memory are measured all the same")
    n_params = sum(p.numel() for p in model.parameters())
    header = (f"# decode efficiency\n\n`{command}`\n\n{name} ({n_params / 1e6:.1f}M parameters, "
              f"{model.embed_tokens.weight.dtype}) on {device_name(device)}, one sequence, "
              f"{args.decode_steps} timed decode steps after a prefill of `context` random tokens\n\n")

    def save(rows):
        write_report(args.out, header + "\n".join(efficiency_table(rows)) + "\n",
                     {"command": command, "model": name, "device": device_name(device), "rows": rows})

    rows = efficiency_rows(model, name, args.contexts, args.windows[0], args.sinks, args.full_layers, args.decode_steps, save)
    print("\n".join(efficiency_table(rows)))
    if args.out:
        plot_efficiency(rows, f"{args.out}.png")
    return 0


def first_line(e):
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def device_name(device):
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


# ----------------------------------------------------------------------------------------------
# the command


class UsageError(ValueError):
    pass


def int_list(text, name):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{name}: expected comma-separated integers, got {text!r}") from None
    return values


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default=None, help="a Hugging Face directory or a swarr .pt checkpoint (default: base_model)")
    p.add_argument("--compare", nargs="+", metavar="CKPT", help="several checkpoints in one table (instead of --ckpt)")
    p.add_argument("--data", nargs="+", metavar="JSONL", help="benchmark files (default: the synthetic test_k{k} sets)")
    p.add_argument("--window", nargs="+", default=None,
                   help="one or more of: an int, 'none' (full attention), 'config' (the checkpoint's own; the default). "
                        "With --efficiency: the SWA window, default 4096")
    p.add_argument("--sinks", type=int, default=0, help="attention sinks, with an int --window")
    p.add_argument("--full-layers", default="", help="comma-separated layers kept full, with an int --window")
    p.add_argument("--force-style", nargs="+", choices=STYLES, default=["free"],
                   help="start the response with a synthetic style's marker; several give one row each")
    p.add_argument("--samples", type=int, default=0, help="n samples per problem for pass@k / maj@k (0: greedy only)")
    p.add_argument("--k", default=None, help="comma-separated k for pass@k and maj@k (default: n)")
    p.add_argument("--temperature", type=float, default=1.0, help="of the samples (greedy is always 0)")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=64, help="sequences per generate call (prompts x samples)")
    p.add_argument("--limit", type=int, default=None, help="the first N problems of each benchmark")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None, metavar="PREFIX", help="write PREFIX.md and PREFIX.json (and PREFIX.png)")
    e = p.add_argument_group("efficiency")
    e.add_argument("--efficiency", action="store_true", help="decode latency and KV memory, SA against SWA")
    e.add_argument("--config", default=None, help=f"random weights of a built-in shape {list(CONFIGS)} or of a config.json")
    e.add_argument("--contexts", default="1024,4096,16384,65536,131072")
    e.add_argument("--decode-steps", type=int, default=32)
    args = p.parse_args(argv)

    # every argument error is found here, before anything is loaded
    if args.ckpt and args.compare:
        raise UsageError("give --ckpt or --compare, not both")
    args.checkpoints = args.compare or [args.ckpt or "base_model"]
    if args.efficiency and (len(args.checkpoints) > 1 or (args.ckpt and args.config)):
        raise UsageError("--efficiency measures one model: give --ckpt or --config")
    if not (args.efficiency and args.config):
        for ckpt in args.checkpoints:
            if not Path(ckpt).exists():
                raise UsageError(f"checkpoint {ckpt} not found (a Hugging Face directory or a swarr .pt file)")
    if args.config and args.config not in CONFIGS and not Path(args.config).is_file():
        raise UsageError(f"--config {args.config!r} is neither a built-in shape {list(CONFIGS)} nor a config.json file")
    args.windows = []
    for text in args.window or (["4096"] if args.efficiency else ["config"]):
        try:
            w = parse_window(text)
        except ValueError:
            w = 0
        if w is not None and w != "config" and w < 1:
            raise UsageError(f"--window takes integers >= 1, 'none' or 'config', got {text!r}")
        args.windows.append(w)
    args.windows = list(dict.fromkeys(args.windows))
    if args.efficiency and (len(args.windows) != 1 or not isinstance(args.windows[0], int)):
        raise UsageError("--efficiency takes one integer --window: the SWA row (SA is always measured)")
    args.full_layers = tuple(int_list(args.full_layers, "--full-layers"))
    if (args.sinks or args.full_layers) and not any(isinstance(w, int) for w in args.windows):
        raise UsageError("--sinks and --full-layers apply to an integer --window")
    if args.sinks < 0:
        raise UsageError(f"--sinks must be >= 0, got {args.sinks}")
    args.ks = int_list(args.k, "--k") if args.k else ([args.samples] if args.samples else [])
    if args.samples < 0 or (args.ks and not args.samples):
        raise UsageError("--k needs --samples n >= 1" if args.samples >= 0 else f"--samples must be >= 0, got {args.samples}")
    if any(not 1 <= k <= args.samples for k in args.ks):
        raise UsageError(f"--k values must be in 1..{args.samples} (the number of samples), got {args.ks}")
    if args.samples and args.temperature <= 0:
        raise UsageError("--samples need --temperature > 0 (greedy is evaluated anyway)")
    for name in ("max_new_tokens", "batch_size", "limit", "decode_steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    args.contexts = int_list(args.contexts, "--contexts")
    if not args.contexts or min(args.contexts) < 1:
        raise UsageError(f"--contexts must be integers >= 1, got {args.contexts}")
    args.force_style = list(dict.fromkeys(args.force_style))
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_args(argv)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    command = "python evaluate.py " + " ".join(argv)
    if args.efficiency:
        return run_efficiency(args, command)

    benchmarks, errors = load_benchmarks(args.data, args.limit)
    if not benchmarks:
        print("error: no benchmark left to evaluate", file=sys.stderr)
        return 1
    bench_names = [name for name, _, _ in benchmarks]
    rows, notes = [], []

    def save():
        summary, detail = eval_tables(rows, bench_names, args.samples, args.ks)
        extra = [f"- note: {n}" for n in notes] + [f"- error: {e}" for e in errors]
        markdown = "\n".join([f"# evaluation\n\n`{command}`\n\ngreedy accuracy %\n", *summary, "\ndetails (length in tokens; "
                              "style: share of completions in each; beyond W: response tokens the window hides)\n",
                              *detail, "", *extra]) + "\n"
        data = {"command": command, "device": device_name(torch.device(args.device)),
                "benchmarks": {name: {"source": src, "n": len(recs)} for name, recs, src in benchmarks},
                "rows": rows, "notes": notes, "errors": errors}
        write_report(args.out, markdown, data)
        return summary, detail, extra

    for ckpt in args.checkpoints:
        for window in args.windows:
            # loaded anew per window: the checkpoint alone knows what 'config' means
            explicit, window_text = isinstance(window, int), "none" if window is None else str(window)
            try:
                model, tokenizer = load_model(ckpt, window, args.sinks if explicit else 0,
                                              args.full_layers if explicit else (), args.device)
            except (OSError, ValueError, RuntimeError) as e:
                message = f"{ckpt} at window {window_text}: {first_line(e)}"
                print(f"error: {message}", file=sys.stderr)
                errors.append(message)
                save()
                continue
            attention = attention_label(model.config) + (" (config)" if window == "config" else "")
            for style in args.force_style:
                for name, records, _ in benchmarks:
                    row = {"checkpoint": ckpt, "window_arg": window_text,
                           "attention": attention, "style": style, "benchmark": name}
                    desc = f"{ckpt} {attention} {style} {name}"
                    try:
                        result = evaluate_benchmark(model, tokenizer, records, args.samples, args.ks, args.temperature,
                                                    args.max_new_tokens, args.batch_size, args.seed,
                                                    None if style == "free" else style, desc)
                    except (ValueError, RuntimeError, MemoryError) as e:  # a prompt too long, out of memory
                        row["error"] = first_line(e)
                        print(f"error: {desc}: {row['error']}", file=sys.stderr)
                        rows.append(row)
                        save()
                        continue
                    result.pop("completions")
                    row.update(result)
                    rows.append(row)
                    notes.extend(f"{desc}: {n}" for n in result["notes"])
                    for n in result["notes"]:
                        print(f"note: {desc}: {n}")
                    g = result["greedy"]
                    print(f"{desc}: greedy {pct(g['accuracy'])}%, no answer {pct(g['no_answer'])}%, cut {pct(g['cut'])}%, "
                          f"beyond W {pct(g['beyond_window'])}%")
                    save()
            del model
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    summary, detail, extra = save()
    print("\n".join(["", *summary, "", *detail, *extra]))
    return 0 if any("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
