"""
Several GPUs: SFT tokens/s per GPU under FSDP2 (distributed.shard), a GRPO step's time, and the peak
memory per GPU, for a model shape with random weights. Run it at 1, 2, 4 GPUs and compare the
per-GPU rates (goal: at least 90% of the single-GPU rate per GPU):

    torchrun --nproc_per_node 1 benchmarks/bench_distributed.py --config qwen2.5-1.5b --seq-len 4096
    torchrun --nproc_per_node 2 benchmarks/bench_distributed.py --config qwen2.5-1.5b --seq-len 4096
    torchrun --nproc_per_node 4 benchmarks/bench_distributed.py --config qwen2.5-1.5b --seq-len 4096 --reshard both
    torchrun --nproc_per_node 4 benchmarks/bench_distributed.py --config qwen2.5-7b --seq-len 4096 --checkpointing
    torchrun --nproc_per_node 2 benchmarks/bench_distributed.py --config qwen2.5-1.5b --grpo --seq-len 1024

Each rank trains on its own sequences of --seq-len tokens (--batch-size per rank), the way sft.py
splits a step's micro-batches; the numbers are rank 0's, with the slowest rank's step time. With
one process (no torchrun, or --nproc_per_node 1) the model is not sharded: the single-GPU baseline
sft.py runs (fp32 master weights, bf16 autocast).

--config takes a shape of model.CONFIGS (qwen2.5-7b: Qwen2.5-7B's), random weights: memory and speed only.
--grpo times one rl.grpo_step (sample --prompts-per-step prompts' groups, score, update) with a
reward that is random per sample, so that every group has signal.
--reshard both measures reshard_after_forward True and False (distributed.shard's choice for small
models is False: measure it). Not run in CI; the results go to BENCHMARKS.md by hand.
"""
import argparse
import os
import random
import sys
import time
from types import SimpleNamespace

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import distributed  # noqa: E402
from model import CONFIGS, Config, Model, make_optimizer, token_logprobs  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--config", default="qwen2.5-1.5b", choices=sorted(CONFIGS))
p.add_argument("--seq-len", type=int, default=4096)
p.add_argument("--window", type=int, default=4096)
p.add_argument("--batch-size", type=int, default=1, help="sequences per rank per step")
p.add_argument("--steps", type=int, default=10, help="timed steps, after 3 of warm-up")
p.add_argument("--reshard", choices=("auto", "true", "false", "both"), default="auto")
p.add_argument("--checkpointing", action="store_true")
p.add_argument("--compile", action="store_true")
p.add_argument("--grpo", action="store_true", help="time GRPO steps instead of SFT")
p.add_argument("--prompts-per-step", type=int, default=8, help="--grpo: over all ranks")
p.add_argument("--group-size", type=int, default=8)
p.add_argument("--device", default="cuda")
args = p.parse_args()

world = distributed.setup(args)
torch.manual_seed(0)


def build(reshard):
    config = Config(**CONFIGS[args.config])
    config.max_position_embeddings = max(config.max_position_embeddings, args.seq_len + 1)
    with torch.device(args.device):
        model = Model(config)  # random weights, float32 masters as sft.py keeps them
    model.set_window(args.window)
    model.checkpointing = args.checkpointing
    if args.compile:
        from model import compile_for_training
        compile_for_training(model)
    if world > 1:
        distributed.shard(model, args.device, None if reshard == "auto" else reshard == "true")
    return model, config


def sft_rate(reshard):
    model, config = build(reshard)
    optimizer = make_optimizer(model, 1e-5, 0.0, args.device)
    n = sum(p.numel() for p in model.parameters()) if world == 1 else sum(distributed.full_tensor(p).numel() for p in model.parameters())
    torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(3 + args.steps):
        ids = torch.randint(0, config.vocab_size, (args.batch_size, args.seq_len), device=args.device)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", torch.bfloat16):
            loss = -token_logprobs(model, ids).sum() / (ids.numel() * world)  # the global token count
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step >= 3:
            times.append(distributed.all_max(time.perf_counter() - t0))  # a step lasts as long as its slowest rank
    dt = sorted(times)[len(times) // 2]
    peak = distributed.all_max(torch.cuda.max_memory_allocated() / 2**30)
    del model, optimizer
    torch.cuda.empty_cache()
    return dict(params_b=n / 1e9, tokens_per_s_per_gpu=args.batch_size * args.seq_len / dt, step_s=dt, peak_gib_per_gpu=peak)


def grpo_time(reshard):
    import rl
    model, config = build(reshard)
    optimizer = make_optimizer(model, 1e-6, 0.0, args.device, betas=(0.9, 0.999))
    sampler = rl.make_sampler(model, args.device) if world > 1 else rl.inference_copy(model, torch.bfloat16)
    tokenizer = SimpleNamespace(  # a stand-in that decodes ids as text
        eos_ids=[config.vocab_size - 1], decode=lambda ids: " ".join(map(str, ids)))
    rl_args = rl.get_args(["--device", args.device, "--prompts-per-step", str(args.prompts_per_step), "--group-size",
                           str(args.group_size), "--max-new-tokens", str(args.seq_len), "--out", "/tmp/bench_distributed_rl.pt",
                           "--overwrite", "--micro-batch", "8"] + (["--checkpointing"] if args.checkpointing else []))
    prompts = [[random.Random(i).randrange(config.vocab_size - 1) for _ in range(64)] for i in range(args.prompts_per_step)]
    mine = distributed.block(prompts)
    reward = lambda text, gold: float(random.random() < 0.5)  # noqa: E731  every group has signal
    times = []
    torch.cuda.reset_peak_memory_stats()
    for step in range(1 + max(1, args.steps // 5)):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        m = rl.grpo_step(model, optimizer, mine, ["0"] * len(mine), tokenizer, rl_args, reward, step, sampler)
        torch.cuda.synchronize()
        if step >= 1:
            times.append(distributed.all_max(time.perf_counter() - t0))
    return dict(grpo_step_s=sum(times) / len(times), gen_s=m["gen_s"], update_s=m["update_s"],
                peak_gib_per_gpu=distributed.all_max(torch.cuda.max_memory_allocated() / 2**30))


for reshard in (("true", "false") if args.reshard == "both" else (args.reshard,)):
    result = grpo_time(reshard) if args.grpo else sft_rate(reshard)
    print(f"| {args.config} | {world} GPU(s) | T={args.seq_len} | reshard_after_forward={reshard} | "
          + " | ".join(f"{k} {v:.3g}" for k, v in result.items()) + " |")
distributed.teardown()
