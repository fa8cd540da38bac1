"""
Where the time of a GRPO step goes: one decode step (rollout) and one training step (the
log-prob forward and backward), each timed, held against its hardware limit, and profiled, with
the top kernels by time printed as Markdown tables.

    python benchmarks/profile_step.py --compile --out out/profile      # GPU: Qwen2.5-1.5B shape, bf16
    python benchmarks/profile_step.py --tiny                            # CPU: a tiny model, to check the script

Decode, per batch size B, with `--context` tokens already in the cache of every row:
- time per step, CUDA graph replay (the generate() path), after an untimed warm-up, the median of
  --repeats timings; beside it, the
  same step with its attention through SDPA (generate.decode_attention_sdpa, the reference) and
  through the two batched products (generate.decode_attention_bmm, what decode_attention runs without
  triton); without --compile every column is SDPA: eager decode always uses it; at batch 1, the
  same step with every weight product through cuBLAS (F.linear) instead of model.matvec; and the
  step without programmatic dependent launch (model.PDL off: each kernel starts after the last ends);
- the memory-bandwidth limit: a decode step must read every weight once and every cache slot it
  attends to: the positions written so far, at most the layer's cache slots (decode_attention_triton stops
  at each row's last visible slot), on average over the timed steps, so
  limit = (weight bytes + those KV-cache bytes) / --peak-tbps, and "of limit" = limit / measured time;
- the profile of --profile-steps steps without the CUDA graph (a graph replays as one launch, so
  its kernels would not show).
Training: token_logprobs forward + backward on --train-rows x --train-tokens tokens (bf16 autocast
over fp32 weights, as sft.py and rl.py train), its tokens/s and MFU counted as bench_sft.py counts
it (6 x parameters x tokens / 989 TFLOP/s, the H200's dense bf16 peak), and its profile.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import generate  # noqa: E402
import model as model_module  # noqa: E402
from generate import DecodeStep, KVCache  # noqa: E402
from model import CONFIGS, Config, Model, compile_for_training, config_from_hf, fuse_projections, token_logprobs  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--config", default="qwen2.5-1.5b", choices=sorted(CONFIGS))
p.add_argument("--window", default="4096", help="an int, or none for full attention")
p.add_argument("--batches", default="1,256", help="decode batch sizes")
p.add_argument("--context", type=int, default=1024, help="tokens in every row's cache when decode is timed")
p.add_argument("--steps", type=int, default=32, help="decode steps per timing")
p.add_argument("--repeats", type=int, default=5, help="timings of --steps steps; the median is reported")
p.add_argument("--warmup", type=int, default=32, help="untimed graph replays first (the clocks settle after compiling)")
p.add_argument("--train-rows", type=int, default=1)
p.add_argument("--train-tokens", type=int, default=4096, help="0: decode only")
p.add_argument("--profile-steps", type=int, default=3)
p.add_argument("--top", type=int, default=12, help="kernels per table")
p.add_argument("--compile", action="store_true", help="the compiled decode step and training blocks (GPU)")
p.add_argument("--unfused", action="store_true", help="decode with separate q, k, v and gate, up products (model.fuse_projections off)")
p.add_argument("--peak-tbps", type=float, default=4.8, help="memory bandwidth, TB/s (H200: 4.8)")
p.add_argument("--tiny", action="store_true", help="a 2-layer model on the CPU: checks the script, measures nothing")
p.add_argument("--out", default=None, help="also write the tables to this Markdown file")
args = p.parse_args()

cuda = torch.cuda.is_available() and not args.tiny
device = "cuda" if cuda else "cpu"
if args.tiny:
    config = Config(model_type="qwen2", vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=2048, attention_bias=True)
    args.batches, args.context, args.steps, args.train_tokens, args.warmup, args.repeats = "1,4", 64, 4, 128, 2, 3
else:
    config = config_from_hf(dict(CONFIGS[args.config]))
window = None if args.window == "none" else int(args.window)
batches = [int(b) for b in args.batches.split(",")]
torch.manual_seed(0)
lines = []


def say(text=""):
    print(text)
    lines.append(text)


def write_tables():
    if args.out:
        with open(args.out if args.out.endswith(".md") else args.out + ".md", "w") as f:
            f.write(f"`python {' '.join(sys.argv)}`\n\n" + "\n".join(lines) + "\n")


def sync():
    if cuda:
        torch.cuda.synchronize()


def top_kernels(prof, total_ms, title):
    """The --top entries by self time (device time on a GPU), as a Markdown table, share of `total_ms`."""
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)[: args.top]
    say(f"\n{title}\n\n| kernel / op | calls | ms per step | share of the step |\n|---|---|---|---|")
    for e in events:
        ms = getattr(e, key) / 1e3 / args.profile_steps
        say(f"| `{e.key[:90]}` | {e.count // args.profile_steps} | {ms:.3f} | {ms / total_ms:.0%} |")


def profiled(fn):
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(args.profile_steps):
            fn()
        sync()
    return prof


# ----------------------------------------------------------------------------------------------
# decode

model = Model(config).to(device, torch.bfloat16 if cuda else torch.float32).eval()
model.set_window(window)
if not args.unfused:  # as rl.py's sampler and evaluate.py decode on CUDA
    fuse_projections(model)
weight_bytes = sum(t.numel() * t.element_size() for t in model.parameters())
say(f"{torch.cuda.get_device_name() if cuda else 'CPU'}, torch {torch.__version__}, {args.config if not args.tiny else 'tiny'}, "
    f"window {window}, {'compiled' if args.compile else 'eager'}, {'separate' if args.unfused else 'fused'} projections; "
    f"weights {weight_bytes / 1e9:.2f} GB")
say("\n| decode batch | context | ms per step | tokens/s | weights + KV read per step | bandwidth limit | of limit | "
    "SDPA decode attention (the reference), ms per step | two products (decode_attention_bmm), ms per step | "
    "batch 1: products through cuBLAS, not matvec, ms per step | without PDL, ms per step |\n|---|---|---|---|---|---|---|---|---|---|---|")
decode_attention, matvec_triton = generate.decode_attention, model_module.triton  # profile_step sets both per column


def decode_ms(B, attend, matvec=True, with_pdl=True):
    """ms per decode step (CUDA graph) at batch B with --context tokens in every row, attention through `attend`;
    matvec=False: every product through F.linear (cuBLAS), none through model.matvec; with_pdl: model.PDL."""
    torch._dynamo.reset()  # a fresh compilation: dynamo keeps 8 of decode_step, fewer than the variants make
    generate.decode_attention = attend
    model_module.triton = matvec_triton if matvec else None
    model_module.PDL = with_pdl
    steps = 4 + args.warmup + args.repeats * args.steps + args.profile_steps * 2
    cache = KVCache(model, B, args.context + 8 + steps, device, model.embed_tokens.weight.dtype)
    ids = torch.randint(0, config.vocab_size, (B, args.context), device=device)  # (B, context): one prompt per row
    token = cache.prefill(model, ids, torch.arange(B, device=device)[:, None]).argmax(-1)  # (B,)
    step = DecodeStep(model, cache, B, torch.device(device), cuda_graph=cuda, compile=args.compile)
    for _ in range(4 + args.warmup):  # eager first step, graph capture, compilation, then replays
        token = step(token).argmax(-1)
    times = []
    for _ in range(args.repeats):
        sync()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            token = step(token).argmax(-1)
        sync()
        times.append((time.perf_counter() - t0) * 1e3 / args.steps)
    return sorted(times)[len(times) // 2], cache, token


decode_profiles = []
with torch.no_grad():
    for B in batches:
        reference_ms = decode_ms(B, generate.decode_attention_sdpa)[0]
        bmm_ms = decode_ms(B, generate.decode_attention_bmm)[0]
        cublas_ms = decode_ms(B, decode_attention, matvec=False)[0] if B == 1 and matvec_triton is not None else float("nan")
        no_pdl_ms = decode_ms(B, decode_attention, with_pdl=False)[0]
        ms, cache, token = decode_ms(B, decode_attention)  # what ships, the last: the profile below runs with its settings
        attended = args.context + 4 + args.warmup + args.repeats * args.steps / 2  # a timed step's position, on average
        read = weight_bytes + sum(t[:, :, 0].numel() * t.element_size() * min(t.shape[2], attended) for t in cache.k + cache.v)
        limit_ms = read / (args.peak_tbps * 1e12) * 1e3
        say(f"| {B} | {args.context} | {ms:.2f} | {B / ms * 1e3:,.0f} | {read / 1e9:.2f} GB | {limit_ms:.2f} ms | {limit_ms / ms:.0%} | "
            f"{reference_ms:.2f} | {bmm_ms:.2f} | {cublas_ms:.2f} | {no_pdl_ms:.2f} |")
        no_graph = DecodeStep(model, cache, B, torch.device(device), cuda_graph=False, compile=args.compile)
        no_graph(token)  # compiled: already warm; eager: nothing to warm
        decode_profiles.append((B, ms, profiled(lambda: no_graph(token))))
        del cache  # the next batch size allocates its own
for B, ms, prof in decode_profiles:
    top_kernels(prof, ms, f"Decode, batch {B}: top kernels (profiled without the CUDA graph; share of the graph step's {ms:.2f} ms)")

# ----------------------------------------------------------------------------------------------
# training: the log-prob forward and backward

if args.train_tokens == 0:
    write_tables()
    sys.exit()
del model
model = Model(config).to(device).train()  # fp32 master weights, bf16 autocast, as the stages train
model.set_window(window)
if args.compile:
    compile_for_training(model)
n_params = sum(t.numel() for t in model.parameters())
ids = torch.randint(0, config.vocab_size, (args.train_rows, args.train_tokens), device=device)  # (R, T)


def train_step():
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda):
        loss = -token_logprobs(model, ids).mean()
    loss.backward()
    model.zero_grad(set_to_none=True)


for _ in range(2):
    train_step()
sync()
t0 = time.perf_counter()
for _ in range(3):
    train_step()
sync()
ms = (time.perf_counter() - t0) * 1e3 / 3
tokens_per_s = ids.numel() / ms * 1e3
say(f"\n| training step | tokens | ms | tokens/s | MFU (6N, 989 TFLOP/s) |\n|---|---|---|---|---|\n"
    f"| log-prob forward + backward | {args.train_rows} x {args.train_tokens} | {ms:.1f} | {tokens_per_s:,.0f} | "
    f"{6 * n_params * tokens_per_s / 989e12:.1%} |")
top_kernels(profiled(train_step), ms, f"Training step, {args.train_rows} x {args.train_tokens} tokens: top kernels")
write_tables()
