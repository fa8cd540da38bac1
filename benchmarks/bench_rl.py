"""
One GRPO step on the GPU, timed by phase as rl.grpo_step reports it: generation (sampling with
the rolling KV cache, on the bf16 copy of the weights), the log-prob forward (the training forward
of every kept row, bf16 autocast over fp32 master weights) and the update (the backward pass,
which with activation checkpointing recomputes each block's forward, then clipping, AdamW and
refreshing the sampler's bf16 copy). A Qwen2.5-1.5B-shaped model with random weights,
32 prompts x 8 samples of 128 random tokens, 512 new tokens forced (no EOS can occur), a random
reward per sample (so no group is skipped and every row is trained on), full attention beside SWA.

    python benchmarks/bench_rl.py [--windows none,256] [--micro-batch 16] [--out bench.md]
    python benchmarks/bench_rl.py --tiny      # a tiny config, on the CPU too: checks the script runs
    python benchmarks/bench_rl.py --compile --no-checkpointing --windows none --decode auto,bmm,auto,bmm --steps 3
        # decode attentions A/B in one process, each twice: the generation time has varied between processes
    python benchmarks/bench_rl.py --compile --no-checkpointing --windows none,256 --share-prompts off,on,off,on --steps 2
        # training forwards holding each prompt once (rl.py --share-prompts) beside a prompt per row, in one process
    python benchmarks/bench_rl.py --compile --no-checkpointing --windows none --share-prompts on --keep-decode off,on,off,on --steps 2
        # rollouts that keep their KV cache and CUDA graphs (rl.py's default) beside rollouts that rebuild them

--long-tail is reasoning far past the window: prompts of 64-512 random tokens, and each response's
length drawn from a long-tailed (log-normal) distribution capped at --new-tokens, most short and a
few hitting the cap (per-row budgets of the generation engine); generation runs the static batch
to its longest response (as generate() does), or with --rollout-slots N keeps N rows busy
(continuous batching), and each row is trained on its own length. With --compile and --steps 20 it reports every step's
time, the compilations torch made after the warm-up, and peak memory per step:

    python benchmarks/bench_rl.py --long-tail --compile --windows 1024,none --new-tokens 8192 \\
        --prompts 8 --group-size 4 --steps 20 --micro-batch-tokens 65536
"""
import argparse
import math
import os
import random
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import generate  # noqa: E402
import rl  # noqa: E402
from model import CONFIGS, Config, Model, compile_for_training, config_from_hf  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--prompts", type=int, default=32)
parser.add_argument("--group-size", type=int, default=8)
parser.add_argument("--prompt-len", type=int, default=128)
parser.add_argument("--new-tokens", type=int, default=512)
parser.add_argument("--micro-batch", type=int, default=16, help="rows per training forward")
parser.add_argument("--windows", default="none,256", help="attention of each timed row: 'none' (full) or a window")
parser.add_argument("--steps", type=int, default=1, help="timed steps per row (their mean is reported)")
parser.add_argument("--tiny", action="store_true", help="a tiny model and batch, for a smoke test (CPU if no GPU)")
parser.add_argument("--long-tail", action="store_true", help="varied prompt lengths, long-tailed response lengths (see above)")
parser.add_argument("--median-tokens", type=int, default=600, help="with --long-tail: the median response length")
parser.add_argument("--sigma", type=float, default=1.0, help="with --long-tail: the log-normal's sigma (the tail's weight)")
parser.add_argument("--compile", action="store_true", help="rl.py --compile: compiled training blocks, head and decode step")
parser.add_argument("--no-checkpointing", action="store_true", help="train without activation checkpointing")
parser.add_argument("--micro-batch-tokens", type=int, default=0, help="rl.py --micro-batch-tokens")
parser.add_argument("--rollout-slots", type=int, default=0, help="rl.py --rollout-slots: continuous batching in the rollout")
parser.add_argument("--live-bucket", type=int, default=0, help="generate.LIVE_BUCKET (the smallest step of live slots) for this run (0: its default)")
parser.add_argument("--decode", default="auto",
                    help="with --compile, the decode attention of each timed row, comma-separated, all in one process (repeat one "
                         "to time it again): auto (generate.decode_attention: the triton kernel on a GPU), all (the triton kernel "
                         "reading every live slot, not stopping at each row's last visible one), bmm (two batched "
                         "products, decode_attention_bmm), sdpa (torch's SDPA, the reference); eager decode uses SDPA either way")
parser.add_argument("--sdpa-decode", action="store_true", help=argparse.SUPPRESS)  # the old name of --decode sdpa
parser.add_argument("--share-prompts", default="off", help="rl.py --share-prompts for each timed row, comma-separated off/on "
                    "(both in one process: off,on): each training forward holds a prompt once for its rows")
parser.add_argument("--keep-decode", default="on", help="for each timed row, comma-separated on/off (both in one process: "
                    "off,on): on, rl.py's rollouts keep the KV cache and CUDA graphs from step to step (generate.decode_engine); "
                    "off, rl.py --free-rollout-cache: each rollout allocates and captures them again")
parser.add_argument("--unfused", action="store_true", help="a sampler without model.fuse_projections (the reference; rl.py fuses on CUDA)")
parser.add_argument("--out", default=None, help="append the table to this file")
args = parser.parse_args()
device = "cuda" if torch.cuda.is_available() else "cpu"
if not args.tiny and device == "cpu":
    raise SystemExit("error: the benchmark needs a GPU (use --tiny for a CPU smoke test)")

if args.live_bucket:  # decode reads a full-length cache's first slots in steps of at least this
    generate.LIVE_BUCKET = args.live_bucket
DECODE = {"auto": generate.decode_attention, "bmm": generate.decode_attention_bmm, "sdpa": generate.decode_attention_sdpa,
          # the triton kernel reading every live slot, as before it stopped at each row's last visible one (seen_ends)
          "all": lambda q, keys, values, mask, ends=None: generate.decode_attention_triton(
              q, keys, values, mask, torch.full((q.shape[0],), keys.shape[2], device=q.device))}
if args.sdpa_decode:
    args.decode = "sdpa"
decodes, shares, keeps = args.decode.split(","), args.share_prompts.split(","), args.keep_decode.split(",")
if not set(decodes) <= set(DECODE):
    raise SystemExit(f"error: --decode takes {', '.join(DECODE)}, got {args.decode}")
if not set(shares) <= {"off", "on"}:
    raise SystemExit(f"error: --share-prompts takes off, on or both (off,on), got {args.share_prompts}")
if not set(keeps) <= {"off", "on"}:
    raise SystemExit(f"error: --keep-decode takes off, on or both (off,on), got {args.keep_decode}")
if args.tiny:
    config = Config(model_type="qwen2", vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=1024, tie_word_embeddings=True)
    args.prompts, args.group_size, args.prompt_len, args.new_tokens, args.micro_batch = 4, 4, 16, 32, 8
    args.windows = ",".join(w if w == "none" else "8" for w in args.windows.split(","))
else:
    config = config_from_hf(CONFIGS["qwen2.5-1.5b"])
torch.manual_seed(0)
model = Model(config).to(device)  # fp32 master weights
with torch.no_grad():
    for name, p in model.named_parameters():
        if p.dim() == 2:  # GPT-2 style init: a well-behaved random model, not a saturated one
            p.normal_(0, 0.02)
model.checkpointing = not args.no_checkpointing
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=device == "cuda")
sampler = rl.make_sampler(model, device)  # the bf16 copy generation runs on (the model itself on CPU)
if args.unfused and sampler is not model:  # the reference: separate q, k, v and gate, up products
    sampler = rl.inference_copy(model, torch.bfloat16)
if args.compile and sampler is not model:  # as rl.main does: after the copy, which runs uncompiled apart from the decode step
    compile_for_training(model)
gpu = torch.cuda.get_device_name() if device == "cuda" else "CPU"
print(f"{gpu}  torch {torch.__version__}  {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")


class NoTokenizer:
    """generate's eos_ids and completions' decode, for random token ids: no text is needed."""

    eos_ids = [-1]  # no token ends a sample: every row runs to --new-tokens

    def decode(self, ids):
        return ""


rewards = random.Random(0)


def random_reward(text, gold):
    return rewards.random()  # rewards of a group never all equal: every row is trained on


def grpo_args(prompts, new_tokens, share, keep):
    return rl.get_args(["--share-prompts"] * (share == "on") + ["--free-rollout-cache"] * (keep == "off")
                       + ["--prompts-per-step", str(prompts), "--group-size", str(args.group_size), "--max-new-tokens", str(new_tokens),
                        "--micro-batch", str(args.micro_batch), "--micro-batch-tokens", str(args.micro_batch_tokens),
                        "--rollout-slots", str(args.rollout_slots),
                        "--device", device, "--out", os.path.join(scratch, "rl.pt")]
                       + ["--compile"] * args.compile + ["--checkpointing"] * (not args.no_checkpointing))


scratch = tempfile.mkdtemp()  # rl.get_args test-writes its --out; nothing is saved there
lengths = random.Random(1)


def long_tailed(engine):
    """The engine (generate or generate_continuous) with per-row budgets drawn long-tailed: each row stops at its own
    length, as if it had written EOS there; the static batch runs to its longest row, continuous batching refills."""
    def run(model, prompts, max_new_tokens, eos_ids, group_size, *a, **k):
        budgets = [min(max_new_tokens, max(1, round(lengths.lognormvariate(math.log(args.median_tokens), args.sigma))))
                   for _ in range(len(prompts) * group_size)]
        return engine(model, prompts, max_new_tokens, eos_ids, group_size, *a, budgets=budgets, **k)
    return run


def prompts_of(n):
    sizes = [random.Random(step_seed + i).randint(64, 512) for i in range(n)] if args.long_tail else [args.prompt_len] * n
    return [torch.randint(0, config.vocab_size, (size,)).tolist() for size in sizes]


if args.long_tail:  # rl.rollout looks both engines up at each call
    rl.generate, rl.generate_continuous = long_tailed(rl.generate), long_tailed(rl.generate_continuous)
compilations = lambda: torch._dynamo.utils.counters["stats"]["unique_graphs"]  # noqa: E731
step_seed = 0


rows = []
for window, decode, share, keep in [(window, decode, share, keep) for window in args.windows.split(",") for decode in decodes
                                    for share in shares for keep in keeps]:
    w = None if window == "none" else int(window)
    rl.KEPT_DECODE.clear()  # no row starts with, or holds the memory of, the last row's kept engine
    generate.decode_attention = DECODE[decode]  # KVCache.attend looks it up at each call; the compiled step guards on it
    for m in (model, sampler):
        m.set_window(w)
    # warm-up, a step of the same shape: kernels, cuBLAS handles, AdamW's state, compilation, the CUDA-graph decode path
    step_seed += 1000
    rl.grpo_step(model, optimizer, prompts_of(args.prompts), ["-"] * args.prompts, NoTokenizer(),
                 grpo_args(args.prompts, args.new_tokens, share, keep), random_reward, 0, sampler)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    torch._logging.set_logs(recompiles=True)  # past the warm-up, any recompilation is printed with the guard that failed
    timed, compiled_before = [], compilations()
    for step in range(args.steps):
        step_seed += 1000
        m = rl.grpo_step(model, optimizer, prompts_of(args.prompts), ["-"] * args.prompts, NoTokenizer(),
                         grpo_args(args.prompts, args.new_tokens, share, keep), random_reward, step + 1, sampler)
        assert (args.long_tail or m["len_mean"] == args.new_tokens) and m["kept_share"] == 1.0 and m["updates"] == 1, m
        m["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
        if args.long_tail or args.steps > 1:
            print(f"    step {step + 1:2d}: {m['sec']:6.2f} s  longest {m['len_max']:5d}  mean {m['len_mean']:6.0f} tokens  "
                  f"generation {m['gen_s']:.2f}  fwd {m['fwd_s']:.2f}  update {m['update_s']:.2f}  peak {m['peak_gib']:.1f} GiB  "
                  f"|logp diff| by position {m['logp_diff_by_pos']}", flush=True)
        timed.append(m)
    print(f"    compilations after the warm-up step: {compilations() - compiled_before}")
    torch._logging.set_logs(recompiles=False)
    mean = {k: sum(t[k] for t in timed) / len(timed) for k in ("gen_s", "reward_s", "fwd_s", "update_s", "sec", "logp_diff")}
    mem = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    name = (("full attention" if w is None else f"SWA W={w}") + (f", {decode} decode" if decodes != ["auto"] else "")
            + {"on": ", shared prompts", "off": ", prompt per row" if shares != ["off"] else ""}[share]
            + ("" if keeps == ["on"] else {"on": ", decode kept", "off": ", decode rebuilt"}[keep]))
    rows.append((name, mean, sum(t["gen_tokens_per_s"] * t["gen_s"] for t in timed) / sum(t["gen_s"] for t in timed), mem))
    print(f"  {name:16s} generation {mean['gen_s']:6.2f} s  log-prob forward {mean['fwd_s']:6.2f} s  update {mean['update_s']:6.2f} s"
          f"  step {mean['sec']:6.2f} s  peak {mem:.1f} GiB  |logp diff| {mean['logp_diff']:.2e}")

table = ["| attention | generation s | generated tokens/s | log-prob forward s | update s | reward s | step s | peak GiB | mean abs logp gen - train |",
         "|---|---|---|---|---|---|---|---|---|"]
for name, m, tps, mem in rows:
    table.append(f"| {name} | {m['gen_s']:.2f} | {tps:.0f} | {m['fwd_s']:.2f} | {m['update_s']:.2f} | {m['reward_s']:.3f} | {m['sec']:.2f}"
                 f" | {mem:.1f} | {m['logp_diff']:.1e} |")
text = "\n".join(table)
print("\n" + text)
if args.out:
    with open(args.out, "a") as f:
        f.write(f"\n{gpu}, torch {torch.__version__}, one GRPO step: {args.prompts} prompts x {args.group_size} samples, "
                f"prompt {args.prompt_len}, {args.new_tokens} new tokens, micro-batch {args.micro_batch}, "
                f"{'bf16 autocast, ' if device == 'cuda' else ''}fp32 master weights"
                f"{'' if args.no_checkpointing else ', activation checkpointing'}{', --compile' if args.compile else ''}"
                f"{f', long-tailed lengths (median {args.median_tokens}, sigma {args.sigma})' if args.long_tail else ''}"
                f"{f', --rollout-slots {args.rollout_slots}' if args.rollout_slots else ''}"
                f"{', unfused sampler' if args.unfused else ''}"
                f"{' (--tiny)' if args.tiny else ''}\n\n{text}\n")
