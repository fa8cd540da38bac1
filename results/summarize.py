"""
Regenerate RESULTS.md's tables from the raw metrics that reproduce.sh and ablations.sh wrote
(evaluate.py's JSON and the training runs' JSON lines), averaged over seeds:

    python results/summarize.py results/synthetic-cpu                   # the main run's tables
    python results/summarize.py results/synthetic-cpu --plot acc.png    # and accuracy against k (needs matplotlib)
    python results/summarize.py --ablations results/ablations-gpu      # the ablation table, and the window / depth maps
    python results/summarize.py --ablations results/depth-gpu          # the map over depths
    python results/summarize.py results/depth-gpu/layers12             # the arms on the 12-layer base
"""
import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

ARMS = {"sa_sft": "SA + SFT", "swa_sft": "SWA + SFT", "swa_rl": "SWA + SFT + RL", "sa_rl": "SA + SFT + RL (control)"}
VARIANTS = {"carry0": "0% carry-forward in the SFT data", "carry30": "30% carry-forward", "sinks4": "4 attention sinks",
            "hybrid_layer0_full": "hybrid: layer 0 full attention", "window48": "window 48 instead of 32"}


def training_steps(log_file):
    """A training log's step records in step order, the last record of each step: a resumed run
    repeats the steps after its checkpoint, and the repeat is what the final weights came from."""
    records = {}
    for line in log_file.read_text().splitlines():
        r = json.loads(line)
        if "reward" in r:
            records[r["step"]] = r
    return [records[k] for k in sorted(records)]


def spread(values):
    """'mean (min-max)' in percent."""
    v = [100 * x for x in values]
    return f"{statistics.mean(v):.1f} ({min(v):.1f}-{max(v):.1f})"


def table(header, rows):
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print()


def cells(file):
    """(arm, forced style, benchmark) -> [greedy stats per seed]"""
    out = defaultdict(list)
    for row in json.loads(file.read_text())["rows"]:
        arm = Path(row["checkpoint"]).stem
        out[arm, row["forced_style"], row["benchmark"]].append(row["greedy"])
    return out


def k_of(benchmark):
    return int(benchmark.split("_k")[1])


def main_tables(folder):
    arms = cells(folder / "arms.json")
    benchmarks = sorted({b for _, _, b in arms}, key=k_of)
    seeds = len(arms["swa_sft", None, benchmarks[0]])

    print(f"Greedy accuracy %, mean (min-max) over {seeds} seeds, each arm at its own attention:\n")
    table(["arm"] + benchmarks, [[name] + [spread([g["accuracy"] for g in arms[arm, None, b]]) for b in benchmarks]
                                 for arm, name in ARMS.items() if (arm, None, benchmarks[0]) in arms])

    print("Share of the SA-SWA gap that RL closes, (SWA+RL - SWA+SFT) / (SA+SFT - SWA+SFT), from the means:\n")
    mean = lambda arm, b: statistics.mean(g["accuracy"] for g in arms[arm, None, b])  # noqa: E731
    gap_rows = []
    for b in benchmarks:
        gap = mean("sa_sft", b) - mean("swa_sft", b)
        gap_rows.append([b, f"{100 * gap:.1f}", f"{100 * (mean('swa_rl', b) - mean('swa_sft', b)) / gap:.0f}%" if gap > 0.05 else "no gap"])
    table(["benchmark", "gap SA+SFT - SWA+SFT (points)", "closed by RL"], gap_rows)

    print("Mechanism: greedy completions in carry-forward style %, mean response length (tokens), share of response tokens beyond W %:\n")
    table(["arm"] + [f"{b} carry / len / beyond W" for b in benchmarks],
          [[name] + [f"{100 * statistics.mean(g['style']['carry'] for g in arms[arm, None, b]):.0f} / "
                     f"{statistics.mean(g['len_mean'] for g in arms[arm, None, b]):.0f} / "
                     + (f"{100 * statistics.mean(g['beyond_window'] for g in arms[arm, None, b]):.0f}" if arm.startswith("swa") else "-")
                     for b in benchmarks]
           for arm, name in ARMS.items() if (arm, None, benchmarks[0]) in arms])

    ceiling = defaultdict(list)
    for file in sorted(folder.glob("ceiling_seed*.json")):
        for key, stats in cells(file).items():
            ceiling[key] += stats
    for key, stats in arms.items():  # an arms.json evaluated with --force-style holds the ceiling too
        if key[1] is not None:
            ceiling[key] += stats
    if ceiling:
        print("SWA + SFT with each style forced by its first character (its ceiling under the window), greedy accuracy %:\n")
        table(["forced style"] + benchmarks, [[style] + [spread([g["accuracy"] for g in ceiling["swa_sft", style, b]]) for b in benchmarks]
                                              for style in ("lookback", "carry") if ("swa_sft", style, benchmarks[0]) in ceiling])

    print("RL training samples (the RL difficulties), first 5 steps -> last 5 steps, mean over seeds:\n")
    rows = []
    for arm in ("swa_rl", "sa_rl"):
        steps = [training_steps(f) for f in sorted(folder.glob(f"seed*_{arm}.jsonl"))]
        if not steps:
            continue
        avg = lambda key, part: statistics.mean(statistics.mean(r[key] for r in part(s)) for s in steps)  # noqa: E731
        first, last = (lambda s: s[:5]), (lambda s: s[-5:])
        rows.append([ARMS[arm]] + [f"{avg(k, first):.2f} -> {avg(k, last):.2f}" for k in ("reward", "carry_share", "truncated_share", "zero_std_share")]
                    + [f"{avg('len_mean', first):.0f} -> {avg('len_mean', last):.0f}"])
    table(["arm", "reward", "carry-forward share", "truncated share", "zero-variance groups", "mean length"], rows)

    if "tokens_per_s" not in arms["swa_sft", None, benchmarks[0]][0]:
        return  # evaluate.py recorded speed and cache size from 2026-11-27 on
    print(f"Efficiency beside accuracy, on {json.loads((folder / 'arms.json').read_text()).get('device', 'this run')}: "
          "greedy generation tokens/s (batches of evaluate.py), and the KV cache per sequence at its own length, mean / max:\n")
    table(["arm"] + [f"{b} tokens/s, KV KiB" for b in benchmarks],
          [[name] + [f"{statistics.mean(g['tokens_per_s'] for g in arms[arm, None, b]):.0f}, "
                     f"{statistics.mean(g['kv_bytes_mean'] for g in arms[arm, None, b]) / 1024:.0f} / "
                     f"{max(g['kv_bytes_max'] for g in arms[arm, None, b]) / 1024:.0f}" for b in benchmarks]
           for arm, name in ARMS.items() if (arm, None, benchmarks[0]) in arms])


def acc(values):
    """Greedy accuracy %: one seed as RESULTS.md writes it, several as 'mean (min-max)'; '-' for none."""
    if not values:
        return "-"
    if len(values) > 1:
        return spread(values)
    return "100" if values[0] == 1 else f"{100 * values[0]:.1f}"


def ablation_tables(folder):
    """RESULTS.md's ablation tables from ablations.sh's output: the variants (arms.json), the maps (map.json, depth.json)."""
    if (folder / "arms.json").exists() or any(folder.glob("eval_*.json")):
        variant_table(folder)
    if (folder / "map.json").exists():
        window_map(folder)
    if (folder / "depth.json").exists():
        depth_map(folder)


def variant_table(folder):
    """arms.json (OUT/NAME/seedS/*.pt, or the single-seed OUT/NAME/*.pt), or one eval_NAME.json per variant."""
    runs = defaultdict(list)  # (variant, checkpoint stem, forced style, benchmark) -> [greedy accuracy per seed]
    files = [folder / "arms.json"] if (folder / "arms.json").exists() else sorted(folder.glob("eval_*.json"))
    for file in files:
        for row in json.loads(file.read_text())["rows"]:
            ckpt = Path(row["checkpoint"])
            variant = file.stem.removeprefix("eval_") if file.stem.startswith("eval_") else \
                (ckpt.parent.parent if ckpt.parent.name.startswith("seed") else ckpt.parent).name
            runs[variant, ckpt.stem, row["forced_style"], row["benchmark"]].append(row["greedy"]["accuracy"])
    benchmarks = sorted({b for *_, b in runs}, key=k_of)
    variants = list(dict.fromkeys(v for v, *_ in runs))
    seeds = {len(runs[v, "swa_sft", None, benchmarks[0]]) for v in variants}
    ks = " / ".join(str(k_of(b)) for b in benchmarks)
    print(f"Greedy accuracy % at k = {ks}, {'/'.join(map(str, sorted(seeds)))} seed{'s' if max(seeds) > 1 else ''} per variant"
          + (", mean (min-max)" if max(seeds) > 1 else "") + ", free choice of style unless forced:\n")
    rows = []
    for v in variants:
        cell = lambda stem, style: " / ".join(acc(runs[v, stem, style, b]) for b in benchmarks)  # noqa: E731
        logs = sorted(folder.glob(f"{v}/seed*/swa_rl.jsonl")) or sorted(folder.glob(f"{v}_swa_rl.jsonl"))
        steps = [training_steps(f) for f in logs]
        share = lambda part: statistics.mean(statistics.mean(r["carry_share"] for r in part(s)) for s in steps)  # noqa: E731
        rows.append([VARIANTS.get(v, v), cell("swa_sft", None), cell("swa_sft", "carry"), cell("swa_rl", None),
                     f"{share(lambda s: s[:5]):.2f} → {share(lambda s: s[-5:]):.2f}" if steps else "-"])
    table(["variant", f"SWA + SFT k={ks}", "SWA + SFT, carry-forward forced", "SWA + SFT + RL",
           "RL samples: carry-forward share, first → last 5 steps"], rows)


REACH = {"main": "main recipe (10% carry-forward SFT)", "rl_easy10": "RL prompts 10% k=4", "rl_kl0.05": "KL 0.05 to SWA + SFT",
         "carry0": "0% carry-forward SFT", "carry0_g32": "0%, group of 32", "carry0_temp1.5": "0%, temperature 1.5",
         "carry0_klbase": "0%, KL 0.1 to the base model", "carry0_sft50": "0%, 50 SFT steps", "carry1": "1% carry-forward SFT",
         "carry3": "3% carry-forward SFT", "carry5": "5% carry-forward SFT"}


def reach_tables(folder, sa_file=None):
    """
    ablations.sh's eval_NAME.json (how far the finding reaches): per variant, SWA + SFT (free, and carry-forward forced) and
    SWA + SFT + RL at every test difficulty, mean (min-max) over seeds; the mechanism per difficulty; the RL samples; and
    with --sa (reproduce.sh's arms.json) the share of the SA + SFT - SWA + SFT gap each RL run closes, from the means.
    """
    runs = defaultdict(list)  # (variant, model, forced style, benchmark) -> [greedy stats per seed]
    for file in sorted(folder.glob("eval_*.json")):
        for row in json.loads(file.read_text())["rows"]:
            runs[file.stem.removeprefix("eval_"), Path(row["checkpoint"]).stem, row["forced_style"], row["benchmark"]].append(row["greedy"])
    benchmarks = sorted({b for *_, b in runs}, key=k_of)
    variants = sorted({v for v, *_ in runs}, key=lambda v: list(REACH).index(v) if v in REACH else len(REACH))
    rows = [(v, model, style) for v in variants for model, style in (("swa_sft", None), ("swa_sft", "carry"), ("swa_rl", None))
            if (v, model, style, benchmarks[0]) in runs]
    label = lambda v, model, style: f"{REACH.get(v, v)}: " + ("SWA + SFT + RL" if model == "swa_rl" else "SWA + SFT" + (", carry forced" if style else ""))  # noqa: E731
    mean = lambda key, b, stat="accuracy": statistics.mean(g[stat] for g in runs[key + (b,)])  # noqa: E731
    seeds = max(len(v) for v in runs.values())
    print(f"Greedy accuracy %, mean (min-max) over {seeds} seeds, at every test difficulty:\n")
    table(["variant: model"] + benchmarks, [[label(*r)] + [spread([g["accuracy"] for g in runs[r + (b,)]]) for b in benchmarks] for r in rows])

    print("Mechanism, greedy: carry-forward style % / mean response length (tokens) / response tokens beyond W %:\n")
    table(["variant: model"] + benchmarks, [[label(*r)] + [f"{100 * statistics.mean(g['style']['carry'] for g in runs[r + (b,)]):.0f} / "
                                                           f"{mean(r, b, 'len_mean'):.0f} / {100 * mean(r, b, 'beyond_window'):.0f}" for b in benchmarks]
                                            for r in rows if r[2] is None])

    rl_rows = []
    for v in variants:
        steps = [training_steps(f) for f in sorted(folder.glob(f"{v}/seed*/swa_rl.jsonl"))]
        if steps:
            avg = lambda key, part: statistics.mean(statistics.mean(r[key] for r in part(s)) for s in steps)  # noqa: E731
            first, last = (lambda s: s[:5]), (lambda s: s[-5:])
            rl_rows.append([REACH.get(v, v)] + [f"{avg(k, first):.2f} → {avg(k, last):.2f}" for k in ("reward", "carry_share", "truncated_share")])
    if rl_rows:
        print("RL training samples, first 5 steps → last 5 steps, mean over seeds:\n")
        table(["variant", "reward", "carry-forward share", "truncated share"], rl_rows)

    if sa_file:
        sa = cells(Path(sa_file))
        print("Share of the SA + SFT - SWA + SFT gap closed by RL, from the means (SA + SFT from " + str(sa_file) + "), and the largest "
              "drop below SWA + SFT where SWA + SFT scored >= 90%:\n")
        gap_rows = []
        for v in variants:
            if (v, "swa_rl", None, benchmarks[0]) not in runs:
                continue
            closed, drops = [], []
            for b in benchmarks:
                sft, rl = mean((v, "swa_sft", None), b), mean((v, "swa_rl", None), b)
                gap = statistics.mean(g["accuracy"] for g in sa["sa_sft", None, b]) - sft
                closed.append(f"{100 * (rl - sft) / gap:.0f}%" if gap > 0.05 else "no gap")
                if sft >= 0.9:
                    drops.append(f"k={k_of(b)}: {100 * (rl - sft):+.1f}")
            gap_rows.append([REACH.get(v, v)] + closed + [", ".join(drops)])
        table(["variant"] + [f"{b} closed" for b in benchmarks] + ["RL - SWA + SFT where SWA + SFT >= 90% (points)"], gap_rows)


def window_map(folder):
    cells_ = defaultdict(list)  # (window, attention, style, benchmark) -> [greedy accuracy per seed]
    for row in json.loads((folder / "map.json").read_text())["rows"]:
        cells_[row["window"] or 0, row["attention"], row["style"], row["benchmark"]].append(row["greedy"]["accuracy"])
    benchmarks = sorted({b for *_, b in cells_}, key=k_of)
    order = {"free": 0, "carry": 1, "lookback": 2}
    keys = sorted({key[:3] for key in cells_}, key=lambda key: (key[0], order.get(key[2], 3)))
    print("Where SFT alone suffices: SWA + SFT at each window, each style forced, greedy accuracy %:\n")
    table(["attention", "style"] + benchmarks, [[attention, style] + [acc(cells_[w, attention, style, b]) for b in benchmarks]
                                                for w, attention, style in keys])


def depth_map(folder):
    """depth.json: per depth, its base model (OUT/depth/layersL/base, full attention) and SWA + SFT (layersL/seedS/swa_sft.pt)."""
    cells_ = defaultdict(list)  # (layers, model, style, benchmark) -> [greedy accuracy per seed]
    for row in json.loads((folder / "depth.json").read_text())["rows"]:
        path = Path(row["checkpoint"])
        layers = int(next(p for p in path.parts if p.startswith("layers")).removeprefix("layers"))
        model = "base, full attention" if path.name == "base" else f"SWA + SFT, {row['attention']}"
        cells_[layers, model, row["style"], row["benchmark"]].append(row["greedy"]["accuracy"])
    benchmarks = sorted({b for *_, b in cells_}, key=k_of)
    order = {"free": 0, "carry": 1, "lookback": 2}
    keys = sorted({key[:3] for key in cells_}, key=lambda key: (key[0], key[1] != "base, full attention", order.get(key[2], 3)))
    print("Where SFT alone suffices, by depth: each base model and its SWA + SFT models, each style forced, greedy accuracy %:\n")
    table(["layers", "model", "style"] + benchmarks, [[layers, model, style] + [acc(cells_[layers, model, style, b]) for b in benchmarks]
                                                      for layers, model, style in keys])


def plot(folder, file):
    """Greedy accuracy against k, one line per arm, min-max over seeds as error bars."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"--plot: matplotlib is not installed, {file} not drawn")
        return
    arms = cells(folder / "arms.json")
    benchmarks = sorted({b for _, _, b in arms}, key=k_of)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    present = [(arm, name) for arm, name in ARMS.items() if (arm, None, benchmarks[0]) in arms]
    for i, (arm, name) in enumerate(present):
        v = [[100 * g["accuracy"] for g in arms[arm, None, b]] for b in benchmarks]
        mean = [statistics.mean(x) for x in v]
        dodge = 0.15 * (i - (len(present) - 1) / 2)  # arms at the same accuracy would hide each other
        low, high = [m - min(x) for m, x in zip(mean, v)], [max(x) - m for m, x in zip(mean, v)]
        ax.errorbar([k_of(b) + dodge for b in benchmarks], mean, yerr=[low, high], marker="o", capsize=3, label=name)
    ax.set(xlabel="difficulty k (operations)", ylabel="greedy accuracy %", xticks=[k_of(b) for b in benchmarks], ylim=(-3, 103))
    ax.set_title(f"{folder.name}: mean, min-max over seeds", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(file, dpi=150)
    print(f"wrote {file}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", default="results/synthetic-cpu", help="reproduce.sh's output (arms.json, ceiling_seed*.json, logs)")
    p.add_argument("--ablations", metavar="FOLDER", help="print the ablation table of ablations.sh's output instead")
    p.add_argument("--reach", metavar="FOLDER", help="print the tables of ablations.sh's eval_NAME.json files (how far the finding reaches)")
    p.add_argument("--sa", metavar="ARMS.json", help="with --reach: reproduce.sh's arms.json, whose SA + SFT gives the gap")
    p.add_argument("--plot", metavar="FILE.png", help="also draw greedy accuracy against k per arm (needs matplotlib)")
    args = p.parse_args()
    if args.reach:
        reach_tables(Path(args.reach), args.sa)
    elif args.ablations:
        ablation_tables(Path(args.ablations))
    else:
        main_tables(Path(args.folder))
    if args.plot:
        plot(Path(args.folder), args.plot)
