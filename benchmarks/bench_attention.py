"""
Attention forward + backward on the GPU: every implementation beside full-causal SDPA (flash) in
the same run. bf16, B=1, Hq=12, Hkv=2, D=128, W=4096, T from 4k to 64k.

    python benchmarks/bench_attention.py [--lengths 4096,8192,16384,32768,65536] [--out bench.md]

First checks correctness on the GPU (each impl against the float32 naive reference), then times.
TFLOP/s counts only the attended (query, key) pairs: 4*D flops per pair forward, 2.5x that
backward, the FlashAttention convention. So a window that attends fewer pairs is not credited for
work it skips; time and peak memory are the direct measures.

A new length at every call, as in sft.py and rl.py (issue 14): B=4, Hq=12, Hkv=2, D=128, W=256,
12 distinct lengths from 640 to 1700, each called once (the first call of a length, compilation
included) and then timed; per length: ms, peak extra memory, compilations, beside full-causal SDPA.

    python benchmarks/bench_attention.py --varied [--out bench.md]               # swarr's flex: buckets
    python benchmarks/bench_attention.py --varied --unbucketed [--out bench.md]  # torch's compiled flex as
                                                                                 # before: recompiles per length
"""
import argparse
import functools
import os
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from swa_attention import chunked_attention, flex_block_mask, sliding_window_attention  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--lengths", default="4096,8192,16384,32768,65536")
parser.add_argument("--window", type=int, default=4096)
parser.add_argument("--out", default=None, help="append the Markdown table to this file")
parser.add_argument("--varied", action="store_true", help="issue 14: a new length at every call, compilations counted")
parser.add_argument("--unbucketed", action="store_true", help="with --varied: torch.compile(flex_attention) called directly")
parser.add_argument("--varied-lengths", default="640,701,777,850,913,1000,1089,1170,1250,1370,1500,1700")

device = "cuda"
Hq, Hkv, D = 12, 2, 128  # B and W: from the command line, see the end


def qkv(T, dtype, seed=0, grad=False):
    g = torch.Generator(device=device).manual_seed(seed)
    t = [torch.randn(B, h, T, D, device=device, dtype=dtype, generator=g).requires_grad_(grad) for h in (Hq, Hkv, Hkv)]
    return t


# ---- correctness on the GPU: bf16 impls against the float32 naive reference, forward and backward
def check_correctness():
    print("correctness (max abs error vs float32 naive, bf16 inputs):")
    for T, window, sinks in ((1000, 128, 0), (2048, 512, 4), (777, None, 0)):
        q, k, v = qkv(T, torch.float32, grad=True)
        ref = sliding_window_attention(q, k, v, window, sinks, impl="naive")
        ref.square().sum().backward()
        ref_grads = [t.grad.clone() for t in (q, k, v)]
        for impl in ("chunked", "sdpa", "flex", "auto"):
            qb, kb, vb = (t.detach().bfloat16().requires_grad_() for t in (q, k, v))
            out = sliding_window_attention(qb, kb, vb, window, sinks, impl=impl)
            out.float().square().sum().backward()
            err = (out.float() - ref).abs().max().item()
            gerr = max((a.grad.float() - b).abs().max().item() / b.abs().max().item() for a, b in zip((qb, kb, vb), ref_grads))
            print(f"  T={T} W={window} S={sinks} {impl:8s} out {err:.4f}  grad (rel) {gerr:.4f}")
            assert err < 0.05 and gerr < 0.05, f"{impl} disagrees with the reference"


def attended_pairs(T, window):
    if window is None:
        return T * (T + 1) // 2
    return sum(min(i + 1, window) for i in range(T)) if T < 200_000 else None


def bench(fn, T, reps=5, warmup=2):
    q, k, v = qkv(T, torch.bfloat16, grad=True)
    do = torch.randn(B, Hq, T, D, device=device, dtype=torch.bfloat16)
    for _ in range(warmup):  # warm-up, compilation
        fn(q, k, v).backward(do)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn(q, k, v).backward(do)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps, (torch.cuda.max_memory_allocated() - base) / 2**20


variants = {
    "sdpa full causal (peer)": lambda q, k, v: sliding_window_attention(q, k, v, None, impl="sdpa"),
    "flex SWA": lambda q, k, v: sliding_window_attention(q, k, v, W, impl="flex"),
    "auto SWA": lambda q, k, v: sliding_window_attention(q, k, v, W, impl="auto"),
    "chunked SWA (C=256)": lambda q, k, v: chunked_attention(q, k, v, W, chunk_size=256),
    "chunked SWA (C=1024)": lambda q, k, v: chunked_attention(q, k, v, W, chunk_size=1024),
    "sdpa + bool mask SWA": lambda q, k, v: sliding_window_attention(q, k, v, W, impl="sdpa"),
}


def bench_lengths():
    rows = []
    print(f"\n{torch.cuda.get_device_name()}  torch {torch.__version__}  B={B} Hq={Hq} Hkv={Hkv} D={D} W={W} bf16, fwd+bwd")
    for T in [int(x) for x in args.lengths.split(",")]:
        peer_ms = None
        for name, fn in variants.items():
            if name.startswith("sdpa + bool") and T > 16384:
                rows.append((T, name, None, None, None, None))  # the T x T mask alone is 4 GB at 64k
                continue
            try:
                ms, mem = bench(fn, T)
            except torch.OutOfMemoryError:
                rows.append((T, name, None, None, None, "OOM"))
                torch.cuda.empty_cache()
                continue
            window = None if "full" in name else W
            tflops = 3.5 * 4 * B * Hq * D * attended_pairs(T, window) / (ms * 1e-3) / 1e12
            peer_ms = peer_ms or ms
            rows.append((T, name, ms, tflops, peer_ms / ms, f"{mem:.0f}"))
            print(f"  T={T:6d} {name:24s} {ms:9.2f} ms  {tflops:6.1f} TFLOP/s  {peer_ms / ms:5.2f}x peer speed  peak {mem:.0f} MiB")

    table = ["| T | implementation | ms fwd+bwd | TFLOP/s (attended pairs) | speed vs full-causal SDPA | peak extra MiB |", "|---|---|---|---|---|---|"]
    for T, name, ms, tf, ratio, mem in rows:
        if ms is None:
            table.append(f"| {T} | {name} | {mem or 'skipped (T x T mask)'} | | | |")
        else:
            table.append(f"| {T} | {name} | {ms:.2f} | {tf:.0f} | {ratio:.2f}x | {mem} |")
    return "\n".join(table)


# ---- issue 14: a new length at every call, as sft.py and rl.py make them


def compilations():
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


@functools.cache
def compiled_raw_flex():
    from torch.nn.attention.flex_attention import flex_attention
    return torch.compile(flex_attention, dynamic=False)


def unbucketed_flex(q, k, v):
    """What swarr did before issue 14: torch's compiled flex, a static compilation per length."""
    block_mask = flex_block_mask(q.shape[2], k.shape[2], W, 0, str(q.device))
    return compiled_raw_flex()(q, k, v, block_mask=block_mask, enable_gqa=True)


def first_and_timed(fn, T, reps=5):
    """The first call of a new length (compilation included), then the timed ones: (first s, ms, peak extra MiB, unfused)."""
    from torch.nn.attention import flex_attention as flex_module
    getattr(flex_module, "_WARNINGS_SHOWN", set()).discard("flex_attention_performance")  # torch warns once per process
    q, k, v = qkv(T, torch.bfloat16, grad=True)
    do = torch.randn(B, Hq, T, D, device=device, dtype=torch.bfloat16)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        fn(q, k, v).backward(do)
        torch.cuda.synchronize()
        first = time.perf_counter() - start
    unfused = any("without torch.compile" in str(w.message) for w in caught)
    ms, mem = bench(fn, T, reps, warmup=0)
    return first, ms, mem, unfused


def bench_varied():
    lengths = [int(x) for x in args.varied_lengths.split(",")]
    flex = unbucketed_flex if args.unbucketed else (lambda q, k, v: sliding_window_attention(q, k, v, W, impl="flex"))
    name = "flex, unbucketed (torch.compile per length)" if args.unbucketed else "flex, bucketed (swarr)"
    print(f"\n{torch.cuda.get_device_name()}  torch {torch.__version__}  B={B} Hq={Hq} Hkv={Hkv} D={D} W={W} bf16, fwd+bwd, "
          f"{len(lengths)} lengths, each new: {name}")
    rows, total = [], compilations()
    for T in lengths:
        before = compilations()
        first, ms, mem, unfused = first_and_timed(flex, T)
        compiled = compilations() - before
        _, sdpa_ms, sdpa_mem, _ = first_and_timed(lambda q, k, v: sliding_window_attention(q, k, v, None, impl="sdpa"), T)
        rows.append((T, first, compiled, ms, mem, unfused, sdpa_ms, sdpa_mem))
        print(f"  T={T:5d} first call {first:6.2f} s  graphs +{compiled}  {ms:7.2f} ms  peak {mem:7.0f} MiB"
              f"{'  UNFUSED' if unfused else ''}   sdpa full causal {sdpa_ms:6.2f} ms  peak {sdpa_mem:5.0f} MiB  "
              f"flex/sdpa time {ms / sdpa_ms:.2f}x")
    print(f"  dynamo graphs compiled over the sweep: {compilations() - total} (sdpa compiles none)")
    table = [f"| T | {name}: first call s | dynamo graphs compiled | ms fwd+bwd | peak extra MiB | unfused path | "
             "SDPA full causal ms | SDPA peak MiB | flex / SDPA time |", "|---|---|---|---|---|---|---|---|---|"]
    for T, first, compiled, ms, mem, unfused, sdpa_ms, sdpa_mem in rows:
        table.append(f"| {T} | {first:.2f} | {compiled} | {ms:.2f} | {mem:.0f} | {'yes' if unfused else 'no'} | "
                     f"{sdpa_ms:.2f} | {sdpa_mem:.0f} | {ms / sdpa_ms:.2f}x |")
    return "\n".join(table)


if __name__ == "__main__":
    args = parser.parse_args()
    B, W = (4, 256) if args.varied else (1, args.window)
    if args.varied:  # the sweep first: the correctness check's flex calls would compile some of its buckets
        text = bench_varied()
        if not args.unbucketed:  # after torch's own compiled flex used up its recompile limit, swarr's guard would (rightly) raise
            check_correctness()
    else:
        check_correctness()
        text = bench_lengths()
    print("\n" + text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(f"\n{torch.cuda.get_device_name()}, torch {torch.__version__}\n\n{text}\n")

