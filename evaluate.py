"""
Evaluate checkpoints on math benchmarks at one or several attention windows.

    python evaluate.py --model out/rl.pt                                  # synthetic test sets
    python evaluate.py --model base_model out/sft.pt out/rl.pt --window 32 none --out out/eval
    python evaluate.py --model out/sft.pt --force-style free lookback carry    # each style's ceiling
    python evaluate.py --model out/rl.pt --data gsm8k.jsonl math500.jsonl --samples 8 --k 1,4,8

Benchmarks are JSON lines {"prompt", "answer"} (data/); by default the synthetic test_k{k} sets of
data.synthetic.DEFAULT_TASK. One row per checkpoint x window (x forced style), one column per
benchmark, cells = greedy accuracy %; a detailed table below it has, per cell:
- greedy: one greedy completion per problem, graded as the RL reward grades by default (strict):
  the last final answer in a trusted form (\\boxed{}, ####, "the answer is", an "Answer:" label:
  reward.extract_answer) equal to the gold one (reward.is_equiv). "greedy flexible" also takes the
  last number when no trusted form is there: for models never taught an answer format.
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

"""
import argparse
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path

import torch

import distributed
from checkpoint import ArgumentParser, add_model_args, atomic_write, check_at_least_one, check_model_args, check_output, load_model
from data import load_split
from data.synthetic import DEFAULT_TASK, MARKERS, detect_style, is_synthetic
from generate import kv_cache_bytes, sample_completions
from model import attention_label, fuse_projections
from reward import extract_answer, is_equiv, normalize, parse_gold
from tokenizer import first_line

STYLES = ("free", *MARKERS)  # free: no marker, the model picks its style


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


def style_shares(texts):
    counts = Counter(detect_style(t) or "none" for t in texts)
    return {s: counts[s] / len(texts) for s in (*MARKERS, "none")}


def smallest_window(config):
    """The tightest window of any layer (None: every layer is full attention)."""
    return min((w for w in config.layer_windows if w is not None), default=None)


# ----------------------------------------------------------------------------------------------
# benchmarks


def load_benchmarks(paths, limit=None):
    """-> [(name, records, source)], [errors]. A bad file costs its own column, not the run."""
    if not paths:  # the synthetic task's test sets
        names = [f"test_k{k}" for k in DEFAULT_TASK["splits"]["test_steps"]]
        return [(name, [r for _, r in load_split(None, name)][:limit], "data.synthetic") for name in names], []
    benchmarks, errors = [], []
    stems = Counter(Path(p).stem for p in dict.fromkeys(paths))
    for path in dict.fromkeys(paths):
        name = Path(path).stem if stems[Path(path).stem] == 1 else str(Path(path).with_suffix(""))
        try:
            benchmarks.append((name, [r for _, r in load_split(path, None)][:limit], str(path)))
        except ValueError as e:  # the messages name the file and line
            errors.append(str(e))
            print(f"error: {e}", file=distributed.stderr())
    return benchmarks, errors


# ----------------------------------------------------------------------------------------------
# one benchmark with the model's current attention


def summarize(outs, marker, marker_tokens, prompt_tokens, golds, window, synthetic):
    """Statistics of completions (per prompt a list of (text, tokens, cut)); also answers, correct."""
    texts = [[marker + text for text, _, _ in o] for o in outs]  # a forced marker is part of the response
    answers = [[extract_answer(t) for t in ts] for ts in texts]  # strict: what the RL reward trusts
    correct = [[is_equiv(a, gold) for a in ans] for ans, gold in zip(answers, golds)]
    # flexible mode differs only where strict found nothing: grade again just those (the last number, or math span)
    flexible = [ok if a is not None else is_equiv(extract_answer(t, mode="flexible"), gold)
                for ts, ans, oks, gold in zip(texts, answers, correct, golds) for t, a, ok in zip(ts, ans, oks)]
    lengths = [m + n for o, m in zip(outs, marker_tokens) for _, n, _ in o]
    flat = [t for ts in texts for t in ts]
    stats = {
        "accuracy": sum(map(sum, correct)) / len(flat),
        "accuracy_flexible": sum(flexible) / len(flat),  # also the last number of an answer in no trusted form
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
                       batch_size=64, seed=0, force_style=None, desc="eval", compile=False):
    """
    One benchmark under the model's current attention -> {"n", "window", "greedy": {...},
    "samples": {...} (with samples > 0), "notes", "completions" (per record in order: the greedy text,
    its extracted answer and whether it is correct)}.
    Rates are fractions. force_style ("lookback" / "carry") applies to synthetic benchmarks only.
    """
    synthetic, notes = is_synthetic(records), []
    marker = MARKERS[force_style] if force_style in MARKERS and synthetic else ""
    if force_style in MARKERS and not synthetic:
        notes.append(f"--force-style {force_style} applies to synthetic benchmarks only: not forced here")
    golds = [parse_gold(r["answer"]) for r in records]
    unparseable = [i + 1 for i, g in enumerate(golds) if g is None]
    if unparseable:  # such a problem can never be scored right: say so rather than count it wrong in silence
        notes.append(f"{len(unparseable)} of {len(records)} gold answers cannot be parsed by reward.py (records "
                     f"{', '.join(map(str, unparseable[:5]))}{', ...' if len(unparseable) > 5 else ''}): they count as wrong")
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
    outs = sample_completions(model, tokenizer, prompts, max_new_tokens, 1, 0.0, seed, batch_size, f"{desc} greedy", compile)
    seconds = time.perf_counter() - start  # (sample_completions ends reading the tokens back: synchronised)
    result["greedy"], texts, answers, correct = summarize(outs, marker, marker_tokens, prompt_tokens, golds, window, synthetic)
    # efficiency beside accuracy: generation speed, and the cache each sequence needs at its own length
    value_bytes = model.embed_tokens.weight.element_size()
    kv = [kv_cache_bytes(model.config, p + m + n, value_bytes) for o, p, m in zip(outs, prompt_tokens, marker_tokens) for _, n, _ in o]
    result["greedy"].update(tokens_per_s=sum(n for o in outs for _, n, _ in o) / seconds, seconds=seconds,
                            kv_bytes_mean=sum(kv) / len(kv), kv_bytes_max=max(kv))
    result["completions"] = [{"completion": ts[0], "answer": a[0], "correct": c[0]} for ts, a, c in zip(texts, answers, correct)]
    g = result["greedy"]
    if window is not None and g["beyond_window"] == 0:
        fits = g["longest_sequence"] <= window
        notes.append(f"no response token sits more than W={window} positions after the response's start "
                     f"(longest response {g['len_max']} tokens): the window hides none of the answer"
                     + ("; prompt + response fit in the window, so SWA computes exactly what full attention does"
                        if fits else f", only the start of the prompt (longest sequence {g['longest_sequence']} tokens)"))

    if samples:
        outs = sample_completions(model, tokenizer, prompts, max_new_tokens, samples, temperature, seed, batch_size,
                                  f"{desc} {samples} samples", compile)
        s, _, answers, correct = summarize(outs, marker, marker_tokens, prompt_tokens, golds, window, synthetic)
        s = {"n": samples, "temperature": temperature, "pass@1": s.pop("accuracy"), "pass@1_flexible": s.pop("accuracy_flexible"), **s}
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
    head = ["checkpoint", "attention", "style", "benchmark", "n", "greedy %", "greedy flexible %", *(f"{m} %" for m in sampled), "no answer %", "cut %",
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
        cells += [str(r["n"]), pct(g["accuracy"]), pct(g["accuracy_flexible"]), *(pct(s[m]) for m in sampled),
                  pct(g["no_answer"]), pct(g["cut"]), f"{g['len_mean']:.1f}", str(g["len_max"]),
                  pct(None if r["window"] is None else g["beyond_window"])]  # full attention hides nothing: "–"
        cells += [pct(g["style"][st]) if "style" in g else "–" for st in MARKERS]
        if samples:
            cells += [pct(s["style"][st]) if "style" in s else "–" for st in MARKERS]
        detail.append("| " + " | ".join(cells) + " |")
    return summary, detail


def write_report(prefix, markdown, data):
    """PREFIX.md and PREFIX.json, each replaced whole (through a temporary file and a rename); rank 0's under torchrun."""
    if prefix is None or not distributed.is_main():
        return
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(f"{prefix}.md", lambda f: Path(f).write_text(markdown))
    atomic_write(f"{prefix}.json", lambda f: Path(f).write_text(json.dumps(data, indent=2) + "\n"))


def device_name(device):
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


# ----------------------------------------------------------------------------------------------
# the command


def int_list(text):
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def parse_args(argv):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, several=True)
    p.add_argument("--ckpt", "--compare", dest="model", nargs="+", help=argparse.SUPPRESS)  # the old names of --model
    p.add_argument("--data", nargs="+", metavar="JSONL", help="benchmark files (default: the synthetic test_k{k} sets)")
    p.add_argument("--force-style", nargs="+", choices=STYLES, default=["free"],
                   help="start the response with a synthetic style's marker; several give one row each")
    p.add_argument("--samples", type=int, default=0, help="n samples per problem for pass@k / maj@k (0: greedy only)")
    p.add_argument("--k", type=int_list, default=None, help="comma-separated k for pass@k and maj@k (default: n)")
    p.add_argument("--temperature", type=float, default=1.0, help="of the samples (greedy is always 0)")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=64, help="sequences per generate call (prompts x samples)")
    p.add_argument("--eval-size", "--limit", type=int, default=None, help="the first N problems of each benchmark")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="torch.compile the decode step and the draw (GPU; the first batch of each "
                   "shape compiles, a minute or so, counted in tokens_per_s; greedy tokens can differ from eager at bf16 near-ties)")
    p.add_argument("--out", default=None, metavar="PREFIX", help="write PREFIX.md and PREFIX.json")
    p.add_argument("--save-completions", action="store_true",
                   help="also PREFIX.completions.jsonl: every greedy completion, its answer and whether it is correct")
    args = p.parse_args(argv)

    # every argument error is found here, before anything is loaded
    check_model_args(p, args)
    for ckpt in args.model:
        if not Path(ckpt).exists():
            p.error(f"checkpoint {ckpt} not found (a Hugging Face directory or a swarr .pt file)")
    args.window = list(dict.fromkeys(args.window))
    args.ks = args.k or ([args.samples] if args.samples else [])
    if args.samples < 0 or (args.ks and not args.samples):
        p.error("--k needs --samples n >= 1" if args.samples >= 0 else f"--samples must be >= 0, got {args.samples}")
    if any(not 1 <= k <= args.samples for k in args.ks):
        p.error(f"--k values must be in 1..{args.samples} (the number of samples), got {args.ks}")
    if args.samples and args.temperature <= 0:
        p.error("--samples need --temperature > 0 (greedy is evaluated anyway)")
    check_at_least_one(p, args, "max_new_tokens", "batch_size", "eval_size")
    args.force_style = list(dict.fromkeys(args.force_style))
    if args.save_completions and not args.out:
        p.error("--save-completions writes beside --out PREFIX: give --out")
    if args.out:
        check_output(p, "--out", Path(f"{args.out}.json"))
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    distributed.setup(args)  # torchrun: each rank a full copy of each model and a share of the problems (no sharding)
    command = "python evaluate.py " + " ".join(argv)
    benchmarks, errors = load_benchmarks(args.data, args.eval_size)
    if not benchmarks:
        print("error: no benchmark left to evaluate", file=distributed.stderr())
        return 1
    bench_names = [name for name, _, _ in benchmarks]
    rows, notes = [], []
    completions_file = Path(f"{args.out}.completions.jsonl") if args.save_completions and distributed.is_main() else None
    if completions_file:  # each cell's completions are appended as it ends: written once, not with every report
        completions_file.write_text("")

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

    for ckpt in args.model:
        for window in args.window:
            # loaded anew per window: the checkpoint alone knows what 'config' means
            explicit, window_text = isinstance(window, int), "none" if window is None else str(window)
            try:
                model, tokenizer = load_model(ckpt, window, args.sinks if explicit else 0,
                                              args.full_layers if explicit else (), args.device)
            except (OSError, ValueError, RuntimeError) as e:
                message = f"{ckpt} at window {window_text}: {first_line(e)}"
                print(f"error: {message}", file=distributed.stderr())
                errors.append(message)
                save()
                continue
            if args.device.startswith("cuda"):  # generation only: one product for q, k, v and one for gate, up
                fuse_projections(model)
            attention = attention_label(model.config) + (" (config)" if window == "config" else "")
            for style in args.force_style:
                for name, records, _ in benchmarks:
                    row = {"checkpoint": ckpt, "window_arg": window_text,
                           "attention": attention, "style": style, "benchmark": name}
                    desc = f"{ckpt} {attention} {style} {name}"
                    try:
                        result = evaluate_benchmark(model, tokenizer, records, args.samples, args.ks, args.temperature,
                                                    args.max_new_tokens, args.batch_size, args.seed,
                                                    None if style == "free" else style, desc, args.compile)
                    except (ValueError, RuntimeError, MemoryError) as e:  # a prompt too long, out of memory
                        row["error"] = first_line(e)
                        print(f"error: {desc}: {row['error']}", file=distributed.stderr())
                        rows.append(row)
                        save()
                        continue
                    completions = result.pop("completions")
                    if completions_file:
                        cell = {k: row[k] for k in ("checkpoint", "attention", "style", "benchmark")}
                        with completions_file.open("a") as f:
                            f.writelines(json.dumps({**cell, "index": i, "prompt": r["prompt"], "gold": r["answer"], **c}) + "\n"
                                         for i, (r, c) in enumerate(zip(records, completions)))
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
    distributed.teardown()
    return 0 if any("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
