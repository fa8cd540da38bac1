"""
Regenerate RESULTS.md's tables from the raw metrics that reproduce.sh wrote (evaluate.py's JSON and
the training runs' JSON lines), averaged over seeds:

    python results/summarize.py results/synthetic-cpu
"""
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "results/synthetic-cpu")
ARMS = {"sa_sft": "SA + SFT", "swa_sft": "SWA + SFT", "swa_rl": "SWA + SFT + RL", "sa_rl": "SA + SFT + RL (control)"}


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


arms = cells(folder / "arms.json")
benchmarks = sorted({b for _, _, b in arms}, key=lambda b: int(b.split("_k")[1]))
seeds = len(arms["swa_sft", None, benchmarks[0]])

print(f"Greedy accuracy %, mean (min-max) over {seeds} seeds, each arm at its own attention:\n")
table(["arm"] + benchmarks, [[name] + [spread([g["accuracy"] for g in arms[arm, None, b]]) for b in benchmarks]
                             for arm, name in ARMS.items() if (arm, None, benchmarks[0]) in arms])

print("Share of the SA-SWA gap that RL closes, (SWA+RL - SWA+SFT) / (SA+SFT - SWA+SFT), from the means:\n")
mean = lambda arm, b: statistics.mean(g["accuracy"] for g in arms[arm, None, b])  # noqa: E731
gap_rows = []
for b in benchmarks:
    gap = mean("sa_sft", b) - mean("swa_sft", b)
    gap_rows.append([b, f"{100 * gap:.1f}", f"{100 * (mean('swa_rl', b) - mean('swa_sft', b)) / gap:.0f}%" if gap > 0.02 else "no gap"])
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
print("SWA + SFT with each style forced by its first character (its ceiling under the window), greedy accuracy %:\n")
table(["forced style"] + benchmarks, [[style] + [spread([g["accuracy"] for g in ceiling["swa_sft", style, b]]) for b in benchmarks]
                                      for style in ("lookback", "carry")])

print("RL training samples (the RL difficulties), first 5 steps -> last 5 steps, mean over seeds:\n")
rows = []
for arm in ("swa_rl", "sa_rl"):
    runs = [[json.loads(line) for line in f.read_text().splitlines()] for f in sorted(folder.glob(f"seed*_{arm}.jsonl"))]
    steps = [[r for r in run if "reward" in r] for run in runs]
    if not steps:
        continue
    avg = lambda key, part: statistics.mean(statistics.mean(r[key] for r in part(s)) for s in steps)  # noqa: E731
    first, last = (lambda s: s[:5]), (lambda s: s[-5:])
    rows.append([ARMS[arm]] + [f"{avg(k, first):.2f} -> {avg(k, last):.2f}" for k in ("reward", "carry_share", "truncated_share", "zero_std_share")]
                + [f"{avg('len_mean', first):.0f} -> {avg('len_mean', last):.0f}"])
table(["arm", "reward", "carry-forward share", "truncated share", "zero-variance groups", "mean length"], rows)
