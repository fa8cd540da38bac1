"""
The README's real-checkpoint path at a real model's shape on the GPU: data.convert -> sft.py ->
rl.py, exactly the commands a user runs, on a Qwen2.5-1.5B-shaped Hugging Face directory with
random weights (model.CONFIGS), a byte-level BPE tokenizer trained here on GSM8K-format text (its
vocabulary is smaller than the model's 151,936-row embedding, as a padded tokenizer would be), Qwen's
ChatML template and both Qwen2.5-Instruct EOS ids, and GSM8K-format problems generated here.

    python benchmarks/bench_real_path.py [--window 4096] [--sft-steps 12] [--rl-steps 4] [--out bench.md]

Reports SFT tokens/s, the GRPO step time with the real reward (and its split), and peak memory,
from the stages' own JSON-lines logs; the first steps (compilation) are left out of the medians.
Random weights rarely write EOS, so responses run to --max-new-tokens and every reward is 0:
--no-skip-zero-std makes every step update anyway, as a learning run would.
"""
import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import rl  # noqa: E402
import sft  # noqa: E402
from checkpoint import export_hf  # noqa: E402
from data import convert  # noqa: E402
from model import CONFIGS, Model, config_from_hf  # noqa: E402

CHATML = ("{%- if messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
          "{%- endif %}{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content']"
          " + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")
NAMES = ["Tom", "Ana", "Wei", "Sara", "Omar", "Lena"]
ITEMS = ["apples", "marbles", "books", "stickers", "coins", "pencils"]

parser = argparse.ArgumentParser()
parser.add_argument("--window", default="4096")
parser.add_argument("--work", default="out/bench_real_path")
parser.add_argument("--sft-steps", type=int, default=12)
parser.add_argument("--rl-steps", type=int, default=4)
parser.add_argument("--prompts-per-step", type=int, default=32)
parser.add_argument("--group-size", type=int, default=8)
parser.add_argument("--max-new-tokens", type=int, default=512)
parser.add_argument("--out", default=None)
args = parser.parse_args()
work = Path(args.work)
work.mkdir(parents=True, exist_ok=True)


def gsm8k_row(rng):
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b, c = rng.randint(2, 500), rng.randint(2, 500), rng.randint(2, 9)
    total = (a + b) * c
    return {"question": f"{name} has {a} {item} and gets {b} more. Then {name} buys {c} times as many in total. "
                        f"How many {item} does {name} have now?",
            "answer": f"{name} first has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} {item}.\n"
                      f"Then {c} times as many: {a + b} * {c} = <<{a + b}*{c}={total}>>{total}.\n#### {total}"}


# 1. GSM8K-format data and the splits, with the converter a user runs
rng = random.Random(0)
for name, n in (("train", 3000), ("test", 200)):
    (work / f"{name}.jsonl").write_text("".join(json.dumps(gsm8k_row(rng)) + "\n" for _ in range(n)))
assert convert.main(["gsm8k", str(work / "train.jsonl"), "--split-to", str(work / "gsm8k"), "--test-file", str(work / "test.jsonl"),
                     "--val", "64", "--rl", "512", "--seed", "0"]) == 0

# 2. the model directory: Qwen2.5-1.5B's shape, random weights, a BPE tokenizer trained on the data
model_dir = work / "qwen2.5-1.5b-random"
if not (model_dir / "model.safetensors").exists():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator((line for line in (work / "train.jsonl").read_text().splitlines()),
                            trainers.BpeTrainer(vocab_size=4096, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Model(config_from_hf(dict(CONFIGS["qwen2.5-1.5b"]))).to(torch.bfloat16)
    export_hf(model, model_dir)
    del model
    tok.save(str(model_dir / "tokenizer.json"))
    (model_dir / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|im_end|>", "chat_template": CHATML}))
    (model_dir / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 0]}))
torch.cuda.empty_cache()

# 3. SFT, then GRPO, exactly as the README runs them
t0 = time.perf_counter()
sft.main(["--model", str(model_dir), "--data", str(work / "gsm8k/sft.jsonl"), "--eval-data", str(work / "gsm8k/val.jsonl"),
          "--window", args.window, "--max-len", "4096", "--batch-size", "16", "--max-steps", str(args.sft_steps), "--lr", "1e-5",
          "--eval-every", "1000", "--eval-size", "64", "--compile", "--out", str(work / "sft.pt")])
sft_s = time.perf_counter() - t0
torch.cuda.reset_peak_memory_stats()
t0 = time.perf_counter()
rl.main(["--model", str(work / "sft.pt"), "--data", str(work / "gsm8k/rl.jsonl"), "--eval-data", str(work / "gsm8k/val.jsonl"),
         "--max-steps", str(args.rl_steps), "--prompts-per-step", str(args.prompts_per_step), "--group-size", str(args.group_size),
         "--max-new-tokens", str(args.max_new_tokens), "--lr", "1e-6", "--micro-batch", "16", "--no-skip-zero-std",
         "--eval-every", "1000", "--eval-size", "32", "--eval-samples", "1", "--compile", "--out", str(work / "rl.pt")])
rl_s = time.perf_counter() - t0

# 4. the numbers, from the stages' own logs (steps after the first two / the first: compilation)
sft_log = [json.loads(line) for line in (work / "sft.jsonl").read_text().splitlines() if '"loss"' in line]
rl_log = [json.loads(line) for line in (work / "rl.jsonl").read_text().splitlines() if '"reward"' in line]
med = lambda rows, key: statistics.median(r[key] for r in rows)  # noqa: E731
sft_warm, rl_warm = sft_log[2:] or sft_log, rl_log[1:] or rl_log
lines = [
    f"# the real-checkpoint path, {CONFIGS['qwen2.5-1.5b']['num_hidden_layers']}-layer Qwen2.5-1.5B shape (random weights), W={args.window}",
    "",
    f"`python benchmarks/bench_real_path.py {' '.join(sys.argv[1:])}` on {torch.cuda.get_device_name()}, torch {torch.__version__}",
    "",
    "| stage | what | value |",
    "|---|---|---|",
    f"| sft.py --compile | tokens/s (median of steps 3..{len(sft_log)}, batch 16, GSM8K-length sequences) | {med(sft_warm, 'tokens_per_s'):,.0f} |",
    f"| sft.py --compile | peak memory | {max(r['peak_gib'] for r in sft_log):.1f} GiB |",
    f"| sft.py --compile | wall time, {len(sft_log)} steps incl. load and compile | {sft_s:.0f} s |",
    f"| rl.py --compile | GRPO step s ({args.prompts_per_step} prompts x {args.group_size}, {args.max_new_tokens} new tokens, "
    f"real reward; median of steps 2..{len(rl_log)}) | {med(rl_warm, 'sec'):.2f} |",
    f"| rl.py --compile | split: generation / reward / log-prob fwd / update s | {med(rl_warm, 'gen_s'):.2f} / {med(rl_warm, 'reward_s'):.3f} / "
    f"{med(rl_warm, 'fwd_s'):.2f} / {med(rl_warm, 'update_s'):.2f} |",
    f"| rl.py --compile | generated tokens/s | {med(rl_warm, 'gen_tokens_per_s'):,.0f} |",
    f"| rl.py --compile | peak memory | {max(r['peak_gib'] for r in rl_log):.1f} GiB |",
    f"| rl.py --compile | wall time, {len(rl_log)} steps incl. load, compile and evaluation | {rl_s:.0f} s |",
]
print("\n".join(lines))
if args.out:
    Path(args.out).write_text("\n".join(lines) + "\n")
