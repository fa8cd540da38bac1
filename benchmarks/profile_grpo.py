"""
Where a whole GRPO step's wall time goes: bench_rl.py's workload (a Qwen2.5-1.5B shape, 32 prompts x 8
samples of 128 random tokens, 512 new tokens forced, every row trained on), one untimed warm-up step,
then one step timed phase by phase (generation, then the training forward + backward + AdamW), then
one more under the profiler. For each phase: its wall time unprofiled, the time the GPU was busy in the
profiled run (the union of its kernels' intervals, CUDA-graph kernels included), the share of the
unprofiled time the GPU was not busy (waiting on the host), and the top kernels. The profiler slows
the host, so the profiled wall time (also printed) overstates the waiting.

    python benchmarks/profile_grpo.py --compile --out out/profile_grpo.md
    python benchmarks/profile_grpo.py --tiny                    # CPU: checks the script runs (no GPU timeline)
"""
import argparse
import bisect
import json
import os
import random
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import rl  # noqa: E402
from checkpoint import Timer  # noqa: E402
from model import CONFIGS, Config, Model, compile_for_training, config_from_hf  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--prompts", type=int, default=32)
p.add_argument("--group-size", type=int, default=8)
p.add_argument("--prompt-len", type=int, default=128)
p.add_argument("--new-tokens", type=int, default=512)
p.add_argument("--micro-batch", type=int, default=16)
p.add_argument("--window", default="none", help="an int, or none for full attention")
p.add_argument("--compile", action="store_true")
p.add_argument("--share-prompts", action="store_true", help="rl.py --share-prompts: each training forward holds a prompt once")
p.add_argument("--top", type=int, default=10)
p.add_argument("--tiny", action="store_true")
p.add_argument("--out", default=None, help="also write the tables to this Markdown file")
args = p.parse_args()
cuda = torch.cuda.is_available() and not args.tiny
device = "cuda" if cuda else "cpu"
if args.tiny:
    config = Config(model_type="qwen2", vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=1024, tie_word_embeddings=True)
    args.prompts, args.group_size, args.prompt_len, args.new_tokens, args.micro_batch = 4, 4, 16, 32, 8
else:
    config = config_from_hf(CONFIGS["qwen2.5-1.5b"])
lines = []


def say(text=""):
    print(text, flush=True)
    lines.append(text)


torch.manual_seed(0)
model = Model(config).to(device)  # fp32 master weights, as bench_rl.py
with torch.no_grad():
    for name, w in model.named_parameters():
        if w.dim() == 2:
            w.normal_(0, 0.02)
model.set_window(None if args.window == "none" else int(args.window))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=cuda)
sampler = rl.make_sampler(model, device)
if args.compile and sampler is not model:
    compile_for_training(model)
scratch = tempfile.mkdtemp()
grpo = rl.get_args(["--prompts-per-step", str(args.prompts), "--group-size", str(args.group_size), "--max-new-tokens", str(args.new_tokens),
                    "--micro-batch", str(args.micro_batch), "--device", device, "--out", os.path.join(scratch, "rl.pt")]
                   + ["--compile"] * args.compile + ["--share-prompts"] * args.share_prompts)


class NoTokenizer:
    eos_ids = [-1]  # no token ends a sample

    def decode(self, ids):
        return ""


def phases(step):
    """rl.grpo_step's phases, called one by one so each can be profiled alone: (name, thunk) pairs."""
    prompts = [torch.randint(0, config.vocab_size, (args.prompt_len,)).tolist() for _ in range(args.prompts)]
    state = {}

    def generation():
        state["gen"] = rl.rollout(sampler, prompts, NoTokenizer(), grpo, step)

    def training():
        gen = state["gen"]
        model.train()
        rewards = torch.tensor([random.random() for _ in range(len(gen.tokens))])
        advantages, keep, _ = rl.group_advantages(rewards, gen, grpo)
        rl.update(model, optimizer, prompts, gen, advantages, keep, grpo, step, sampler, None, Timer(device))

    return [("generation", generation), ("training (forward, backward, AdamW, sampler refresh)", training)]


def busy_ms(trace_file):
    """The union of the GPU kernels', copies' and memsets' intervals in a Chrome trace, in ms, the kernel count, the
    GPU's idle gaps of 1 ms or more (count, ms), the CUDA runtime calls by total host time (where the host waited), and
    the CPU ops by their overlap with the GPU's idle gaps of 20 us or more (what kept the GPU waiting)."""
    with open(trace_file) as f:
        events = json.load(f)["traceEvents"]
    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and "dur" in e)
    total, end, idle = 0.0, float("-inf"), []
    for a, b in spans:
        if b > end:
            if end > float("-inf") and a - end >= 20:
                idle.append((end, a))
            total += b - max(a, end)
            end = b
    gaps = [b - a for a, b in idle if b - a >= 1000]
    runtime = {}
    for e in events:
        if e.get("cat") == "cuda_runtime" and "dur" in e:
            n, us = runtime.get(e["name"], (0, 0.0))
            runtime[e["name"]] = (n + 1, us + e["dur"])
    calls = sorted(runtime.items(), key=lambda kv: -kv[1][1])[:6]
    # what the host ran while the GPU idled: each CPU op's overlap with the gaps of 20 us or more (nested ops count each)
    starts, during = [a for a, _ in idle], {}
    for e in events:
        if e.get("cat") in ("cpu_op", "user_annotation") and "dur" in e:
            i = max(0, bisect.bisect_right(starts, e["ts"]) - 1)
            while i < len(idle) and idle[i][0] < e["ts"] + e["dur"]:
                overlap = min(idle[i][1], e["ts"] + e["dur"]) - max(idle[i][0], e["ts"])
                if overlap > 0:
                    during[e["name"]] = during.get(e["name"], 0.0) + overlap
                i += 1
    host = sorted(during.items(), key=lambda kv: -kv[1])[:8]
    return total / 1e3, sum(1 for e in events if e.get("cat") == "kernel"), (len(gaps), sum(gaps) / 1e3), calls, host


for _, run in phases(0):  # warm-up: compilation, CUDA graphs, AdamW's state
    run()
say(f"{torch.cuda.get_device_name() if cuda else 'CPU'}, torch {torch.__version__}, {'tiny' if args.tiny else 'qwen2.5-1.5b'}, "
    f"window {args.window}, {'compiled' if args.compile else 'eager'}{', shared prompts' if args.share_prompts else ''}: {args.prompts} prompts x {args.group_size} samples, "
    f"prompt {args.prompt_len}, {args.new_tokens} new tokens, micro-batch {args.micro_batch}")


def timed_ms(run):
    """Wall time of run(), from an idle GPU to all its work done."""
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    run()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1e3


unprofiled = {name: timed_ms(run) for name, run in phases(1)}
say("\n| phase | wall ms | GPU busy ms (profiled) | GPU idle | wall ms profiled | kernels | GPU gaps >= 1 ms (profiled) |\n|---|---|---|---|---|---|---|")
tops = []
for name, run in phases(2):
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
    with torch.profiler.profile(activities=activities) as prof:
        wall = timed_ms(run)
    trace = os.path.join(scratch, "trace.json")
    prof.export_chrome_trace(trace)
    busy, kernels, gaps, calls, host = busy_ms(trace) if cuda else (float("nan"), 0, (0, 0.0), [], [])
    idle = f"{max(0.0, 1 - busy / unprofiled[name]):.0%}" if cuda else "-"  # no GPU timeline on the CPU
    say(f"| {name} | {unprofiled[name]:.0f} | {busy:.0f} | {idle} | {wall:.0f} | {kernels} | {gaps[0]}, {gaps[1]:.0f} ms |")
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    tops.append((name, wall, sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)[: args.top], key, calls, host))
for name, wall, events, key, calls, host in tops:
    if calls:
        say(f"\n{name}: CUDA runtime calls by host time (profiled)\n\n| call | count | ms |\n|---|---|---|")
        for call, (n, us) in calls:
            say(f"| `{call}` | {n} | {us / 1e3:.1f} |")
        say(f"\n{name}: what the host ran while the GPU idled (profiled; nested ops each count)\n\n| op | ms |\n|---|---|")
        for op, us in host:
            say(f"| `{op[:90]}` | {us / 1e3:.1f} |")
    say(f"\n{name}: top kernels (profiled wall time {wall:.0f} ms)\n\n| kernel / op | calls | ms | share of the phase |\n|---|---|---|---|")
    for e in events:
        ms = getattr(e, key) / 1e3
        say(f"| `{e.key[:90]}` | {e.count} | {ms:.1f} | {ms / wall:.0%} |")
if args.out:
    with open(args.out, "w") as f:
        f.write(f"`python {' '.join(sys.argv)}`\n\n" + "\n".join(lines) + "\n")
