"""
The weight products of batch-1 decode, one at a time: model.matvec (the triton kernel model.linear takes for
a single row) against cuBLAS (F.linear, its peer and reference) in the same run, at the shapes of a real
checkpoint, each with its error against float64. What matvec_config was chosen from, and how to check it on
another GPU or another model.

    python benchmarks/bench_matvec.py --config qwen2.5-7b --out out/matvec      # GPU, bf16
    python benchmarks/bench_matvec.py --sweep                                  # also the best of a grid of configs
    python benchmarks/bench_matvec.py --tiny                                    # CPU: triton's interpreter, checks the script

Each product has --copies weights (by default one per layer, so that the GPU's L2 cache holds none of them
between two calls, as in a decode step); one call of each copy, twice over, is captured as a CUDA graph and
replayed --reps times. µs per call; TB/s = the weight's bytes / that time.
"""
import argparse
import itertools
import os
import sys
import time

import torch
import torch.nn.functional as F

if not torch.cuda.is_available():  # before model.py imports triton: the CPU runs the kernel in triton's interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import model as model_module  # noqa: E402
from model import CONFIGS, Config, config_from_hf, matvec  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--config", default="qwen2.5-1.5b", choices=sorted(CONFIGS))
p.add_argument("--copies", type=int, default=None, help="weights per product (default: the model's layers; the head: 2)")
p.add_argument("--reps", type=int, default=20, help="graph replays timed")
p.add_argument("--sweep", action="store_true", help="also time a grid of (rows, columns, warps, stages) configs")
p.add_argument("--tiny", action="store_true", help="a small shape on the CPU: checks the script, measures nothing")
p.add_argument("--out", default=None, help="also write the table to this Markdown file")
args = p.parse_args()

if model_module.triton is None:
    sys.exit("error: bench_matvec needs triton (torch's CUDA builds ship it; on a CPU: pip install triton)")
cuda = torch.cuda.is_available() and not args.tiny
device = "cuda" if cuda else "cpu"
dtype = torch.bfloat16 if cuda else torch.float16  # the interpreter has no bfloat16
if args.tiny:
    config = Config(model_type="qwen2", vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16)
    args.reps = 1
else:
    config = config_from_hf(dict(CONFIGS[args.config]))
H, I, D = config.hidden_size, config.intermediate_size, config.head_dim
qkv_bias = config.attention_bias or config.model_type == "qwen2"
products = [  # (name, rows, columns, bias): the products of a decode step, q, k, v and gate, up fused (model.fuse_projections)
    ("q, k, v", (config.num_attention_heads + 2 * config.num_key_value_heads) * D, H, qkv_bias),
    ("o_proj", H, config.num_attention_heads * D, config.attention_bias),
    ("gate, up", 2 * I, H, config.mlp_bias),
    ("down", H, I, config.mlp_bias),
    ("head", config.vocab_size, H, False),
]
torch.manual_seed(0)


def time_calls(call, copies):
    """µs per call of call(i) for i over the copies: a CUDA graph of every copy twice, replayed (CPU: plain calls)."""
    if not cuda:
        t0 = time.perf_counter()
        for i in range(copies):
            call(i)
        return (time.perf_counter() - t0) / copies * 1e6
    side = torch.cuda.Stream()  # warm-up (triton's first launch compiles) off the capturing stream
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for i in range(copies):
            call(i)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(2):
            for i in range(copies):
                call(i)
    graph.replay()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.reps):
        graph.replay()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / (args.reps * 2 * copies) * 1e6


grid = [c for c in itertools.product([1, 2, 4, 8], [256, 512, 1024, 2048], [1, 2, 4, 8], [2]) if c[0] * c[1] <= 16384]
lines = [f"{torch.cuda.get_device_name() if cuda else 'CPU (interpreter)'}, torch {torch.__version__}, "
         f"{'tiny' if args.tiny else args.config}, {dtype}, one row", "",
         "| product (rows × columns) | MB | cuBLAS µs (TB/s) | matvec µs (TB/s), kept config | matvec / cuBLAS | "
         "error vs float64: cuBLAS, matvec" + (" | best of the sweep µs (config)" if args.sweep else "") + " |",
         "|---|---|---|---|---|---" + ("|---" if args.sweep else "") + "|"]
for name, N, K, has_bias in products:
    copies = args.copies or (2 if name == "head" else config.num_hidden_layers)
    weights = [torch.randn(N, K, device=device, dtype=dtype) / K**0.5 for _ in range(copies)]
    biases = [torch.randn(N, device=device, dtype=dtype) if has_bias else None for _ in range(copies)]
    x = torch.randn(K, device=device, dtype=dtype)
    outs = [torch.empty(N, device=device, dtype=dtype) for _ in range(copies)]

    def cublas(i):
        outs[i].copy_(F.linear(x[None], weights[i], biases[i])[0])  # the copy: the graph keeps no output of its own

    def triton_matvec(i):
        outs[i].copy_(matvec(x, weights[i], biases[i]))

    ref = x.double() @ weights[0].double().T + (biases[0].double() if has_bias else 0)
    errors = []
    for call in (cublas, triton_matvec):
        call(0)
        errors.append((outs[0].double() - ref).abs().max().item() / ref.abs().max().item())
    cublas_us, matvec_us = time_calls(cublas, copies), time_calls(triton_matvec, copies)
    mb = N * K * weights[0].element_size() / 1e6
    row = (f"| {name} ({N} × {K}{', bias' if has_bias else ''}) | {mb:.1f} | {cublas_us:.2f} ({mb / cublas_us:.2f}) | "
           f"{matvec_us:.2f} ({mb / matvec_us:.2f}) {model_module.matvec_config(N, K)} | {matvec_us / cublas_us:.2f} | "
           f"{errors[0]:.1e}, {errors[1]:.1e} |")
    if args.sweep:  # matvec reads model.matvec_config at each call: each config of the grid in turn
        kept, timed = model_module.matvec_config, []
        for config_tried in grid if not args.tiny else grid[:2]:
            model_module.matvec_config = lambda n, k: config_tried
            timed.append((time_calls(triton_matvec, copies), config_tried))
        model_module.matvec_config = kept
        best_us, best = min(timed)
        row += f" {best_us:.2f} {best} |"
    lines.append(row)
    print(row, flush=True)
print("\n" + "\n".join(lines))
if args.out:
    with open(args.out if args.out.endswith(".md") else args.out + ".md", "w") as f:
        f.write(f"`python {' '.join(sys.argv)}`\n\n" + "\n".join(lines) + "\n")
