"""results/summarize.py: the tables RESULTS.md prints, from hand-made raw metrics with hand-computed values."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "results"))
import summarize  # noqa: E402


def greedy(accuracy, carry=1.0, length=88.0, beyond=0.5):
    return {"accuracy": accuracy, "style": {"lookback": 1 - carry, "carry": carry, "none": 0.0}, "len_mean": length,
            "beyond_window": beyond}


def rows(checkpoint, accuracies, forced=None):
    return [{"checkpoint": checkpoint, "forced_style": forced, "benchmark": f"test_k{k}", "greedy": greedy(a)}
            for k, a in accuracies.items()]


def test_reach_tables_by_hand(tmp_path, capsys):
    """Two seeds of one variant: SWA + SFT at 1.0 / 0.1 / 0.1 (k = 4, 8, 12), RL at 0.98 / 0.9 / 0.55 (seed 0) and
    0.96 / 1.0 / 0.65 (seed 1); SA + SFT at 1.0 everywhere. The gap at k = 8 is 90 points, RL gains 85: 94%; at
    k = 12 it gains 50: 56%; k = 4 has no gap, and RL lost 3 points there (mean 97 against 100)."""
    out = []
    for seed, rl in ((0, {4: 0.98, 8: 0.9, 12: 0.55}), (1, {4: 0.96, 8: 1.0, 12: 0.65})):
        out += rows(f"out/v/main/seed{seed}/swa_sft.pt", {4: 1.0, 8: 0.1, 12: 0.1})
        out += rows(f"out/v/main/seed{seed}/swa_sft.pt", {4: 1.0, 8: 0.95, 12: 0.9}, forced="carry")
        out += rows(f"out/v/main/seed{seed}/swa_rl.pt", rl)
        log = tmp_path / "main" / f"seed{seed}" / "swa_rl.jsonl"
        log.parent.mkdir(parents=True)
        log.write_text("".join(json.dumps({"step": s, "reward": s / 10, "carry_share": s / 10, "truncated_share": 0.0}) + "\n"
                               for s in range(1, 11)))
    (tmp_path / "eval_main.json").write_text(json.dumps({"rows": out}))
    sa = tmp_path / "arms.json"
    sa.write_text(json.dumps({"rows": [r for seed in (0, 1) for r in rows(f"out/r/seed{seed}/sa_sft.pt", {4: 1.0, 8: 1.0, 12: 1.0})]}))
    summarize.reach_tables(tmp_path, sa)
    text = capsys.readouterr().out
    assert "| main recipe (10% carry-forward SFT): SWA + SFT + RL | 97.0 (96.0-98.0) | 95.0 (90.0-100.0) | 60.0 (55.0-65.0) |" in text
    assert "| main recipe (10% carry-forward SFT): SWA + SFT, carry forced | 100.0 (100.0-100.0) | 95.0 (95.0-95.0) |" in text
    assert "| main recipe (10% carry-forward SFT) | no gap | 94% | 56% | k=4: -3.0 |" in text
    assert "| main recipe (10% carry-forward SFT) | 0.30 → 0.80 | 0.30 → 0.80 | 0.00 → 0.00 |" in text  # steps 1-5, 6-10
    assert "| main recipe (10% carry-forward SFT): SWA + SFT + RL | 100 / 88 / 50 |" in text


def test_ablation_table_reads_one_eval_file_per_variant(tmp_path, capsys):
    """ablations.sh now writes eval_NAME.json per variant: the variant is the file's, whatever the checkpoint path (an
    RL-only variant's SWA + SFT rows come from the variant it started from)."""
    (tmp_path / "eval_rl_kl.json").write_text(json.dumps({"rows": rows("out/v/main/seed0/swa_sft.pt", {4: 1.0, 8: 0.1})
                                                         + rows("out/v/rl_kl/seed0/swa_rl.pt", {4: 0.99, 8: 0.985})}))
    summarize.ablation_tables(tmp_path)
    assert "| rl_kl | 100 / 10.0 | - / - | 99.0 / 98.5 | - |" in capsys.readouterr().out
