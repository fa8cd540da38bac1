"""
Generation throughput on the GPU: swarr's rolling-cache engine beside Hugging Face transformers'
generate, same weights, same shapes, same run. A Qwen2.5-1.5B-shaped model with random weights,
bf16, 128-token prompts, 512 new tokens forced to full length (no EOS can occur).

    python benchmarks/bench_generate.py [--batches 256,64] [--out bench.md]

First checks on the GPU that the CUDA-graph and compiled decode paths give the same tokens as the
eager path and as recomputing the full sequence (float32, a small model), and that continuous
batching gives the static engine's greedy tokens. Compiled rows are timed after a warm-up run of
the same shape (compiling takes about a minute and happens once per shape).

--long-tail is RL's workload: --prompts x --group-size responses whose lengths are drawn from a
log-normal (--median-tokens, --sigma) capped at --new-tokens, most short and a few at the cap
(forced with generate's per-row budgets; no EOS can occur). Static generate() runs --slots rows
at a time, each call until its longest row ends; generate_continuous keeps --slots rows busy,
refilling each finished group with the next prompt (unit = G), or each finished row with the next
row (unit = 1, its prompt prefilled once and its cache copied into its later rows). The same cache
rows, so the same memory. The bench prints the decode steps each engine's schedule needs for the
drawn lengths, so that a ratio short of 2x says whether the workload or the engine falls short:

    python benchmarks/bench_generate.py --long-tail --new-tokens 2048 --median-tokens 256 [--compile]
    python benchmarks/bench_generate.py --tiny [--long-tail]   # tiny sizes, on the CPU too: checks the script runs
"""
import argparse
import heapq
import math
import os
import random
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import generate as generate_module  # noqa: E402
from generate import generate, generate_continuous  # noqa: E402
from model import CONFIGS, Config, Model, config_from_hf  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--batches", default="256,64")
parser.add_argument("--prompt-len", type=int, default=128)
parser.add_argument("--new-tokens", type=int, default=512, help="the response length; with --long-tail, its cap")
parser.add_argument("--window", type=int, default=256, help="window of the SWA rows")
parser.add_argument("--skip-hf", action="store_true")
parser.add_argument("--long-tail", action="store_true", help="static generate() against continuous batching (see above)")
parser.add_argument("--slots", type=int, default=256, help="with --long-tail: cache rows, for both engines")
parser.add_argument("--prompts", type=int, default=128, help="with --long-tail")
parser.add_argument("--group-size", type=int, default=8, help="with --long-tail: samples per prompt")
parser.add_argument("--median-tokens", type=int, default=256, help="with --long-tail: the median response length")
parser.add_argument("--sigma", type=float, default=1.0, help="with --long-tail: the log-normal's sigma (the tail's weight)")
parser.add_argument("--check-every", type=int, default=4, help="with --long-tail: generate_continuous's check_every")
parser.add_argument("--compile", action="store_true", help="with --long-tail: both engines with compile=True")
parser.add_argument("--tiny", action="store_true", help="a tiny model and workload, for a smoke test (CPU if no GPU)")
parser.add_argument("--out", default=None)
args = parser.parse_args()
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
if not args.tiny and device.type == "cpu":
    raise SystemExit("error: the benchmark needs a GPU (use --tiny for a CPU smoke test)")
if args.tiny:
    args.batches, args.prompt_len, args.new_tokens, args.window, args.skip_hf = "8,4", 16, 64, 8, True
    args.prompts, args.group_size, args.slots, args.median_tokens = 16, 2, 8, 8
G, S = args.group_size, args.slots
if args.long_tail and (S % G or (args.prompts * G) % S):
    raise SystemExit(f"error: --slots ({S}) must be a multiple of --group-size ({G}) and divide --prompts x --group-size "
                     f"({args.prompts * G}): static generate() then runs whole calls of --slots rows")
gpu = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"


def sync():
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn):
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t0


def reset_peak():
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_gib():
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")


# ---- correctness of the CUDA-graph path, and of continuous batching's refills between graph replays; live slots in
#      buckets of 16 so that the short rollouts below cross several (one CUDA graph each)
generate_module.LIVE_BUCKET, live_bucket = 16, generate_module.LIVE_BUCKET
torch.manual_seed(0)
small = Model(Config(model_type="qwen2", vocab_size=300, hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=1024)).to(device).eval()
with torch.no_grad():
    for p in small.parameters():
        p.normal_(0, 0.3)
small.set_window(16, sinks=2, full_layers=(1,))
prompts = [torch.randint(0, 299, (n,)).tolist() for n in (5, 20, 20, 33)]
graph = generate(small, prompts, 60, [299], temperature=0, cuda_graph=True)
eager = generate(small, prompts, 60, [299], temperature=0, cuda_graph=False)
assert torch.equal(graph.tokens, eager.tokens), "CUDA graph decode differs from eager decode"
compiled = generate(small, prompts, 60, [299], temperature=0, compile=True)
assert torch.equal(compiled.tokens, eager.tokens), "compiled decode differs from eager decode"
assert (compiled.logprobs - eager.logprobs).abs().max() < 1e-4, "compiled decode's log-probs differ from eager decode's"
with torch.no_grad():
    for row, p in enumerate(prompts):
        seq = torch.tensor([p + graph.tokens[row].tolist()], device=device)
        ref = small(seq)[0, len(p) - 1 : -1].argmax(-1)
        n = int(graph.mask[row].sum())
        assert torch.equal(ref[:n], graph.tokens[row, :n]), f"row {row}: cached decode differs from a full forward"
budgets = torch.randint(1, 61, (12,)).tolist()  # varied lengths: slots finish and are refilled at different steps
static = generate(small, prompts * 3, 60, [299], temperature=0, cuda_graph=False, budgets=budgets)
for compile in (False, True):
    cont = generate_continuous(small, prompts * 3, 60, [299], temperature=0, slots=2, check_every=3, compile=compile, budgets=budgets)
    assert torch.equal(cont.tokens, static.tokens) and torch.equal(cont.mask, static.mask), "continuous batching differs from generate()"
generate_module.LIVE_BUCKET = live_bucket
# the bf16 decode attention (float32 scores from cuBLAS) against SDPA in float64, eager and compiled, the Qwen2.5-1.5B head layout
q, keys, values = (torch.randn(64, 2, n, 128, device=device).bfloat16() * 2 for n in (6, 1024, 1024))
mask = (torch.rand(64, 1, 1, 1024, device=device) < 0.8) & (torch.arange(1024, device=device) < torch.randint(1, 1025, (64, 1, 1, 1), device=device))
mask[..., 0] = True
ref = generate_module.decode_attention_sdpa(q.double(), keys.double(), values.double(), mask)
for attend in (generate_module.decode_attention, torch.compile(generate_module.decode_attention)):
    err = (attend(q, keys, values, mask).double() - ref).abs().max() / ref.abs().max()
    assert err < 0.006, f"bf16 decode attention is {err:.4f} off float64 (relative to the largest output)"
print("correctness: compiled / CUDA-graph decode == eager decode == full recompute (float32, SWA W=16 + 2 sinks, one full layer, "
      "live slots in buckets of 16); continuous batching (CUDA graph, compiled) == generate(); bf16 decode attention within 0.6% of float64 SDPA")

# ---- the Qwen2.5-1.5B shape (--tiny: a tiny qwen2)
hf_config = CONFIGS["qwen2.5-1.5b"]
torch.manual_seed(0)
if args.tiny:
    config = Config(model_type="qwen2", vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=1024, tie_word_embeddings=True)
else:
    config = config_from_hf(hf_config)
model = Model(config).to(device=device, dtype=torch.bfloat16 if device.type == "cuda" else torch.float32).eval()
print(f"{gpu}  torch {torch.__version__}")
vocab = config.vocab_size - 1
hf = None  # transformers' model, built at the first batch


def throughput():
    """Fixed-length responses: swarr's engine paths beside transformers' generate."""
    global hf
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        prompts = torch.randint(0, vocab, (batch, args.prompt_len)).tolist()
        new = args.new_tokens
        for name, window, compile in (("swarr, full attention, CUDA graph", None, False),
                                      ("swarr, full attention, compiled + CUDA graph", None, True),
                                      (f"swarr, SWA W={args.window}, CUDA graph", args.window, False),
                                      (f"swarr, SWA W={args.window}, compiled + CUDA graph", args.window, True)):
            model.set_window(window)
            # warm-up; compiling: the same cache shape as the timed run, so its compilation is not timed
            generate(model, prompts, new if compile else 8, [-1], temperature=1.0, compile=compile)
            reset_peak()
            gen, secs = timed(lambda: generate(model, prompts, new, [-1], temperature=1.0, compile=compile))
            assert gen.mask.all()
            mem = peak_gib()
            rows.append((batch, name, batch * new / secs, secs, mem))
            print(f"  batch {batch:4d} {name:38s} {batch * new / secs:9.0f} tokens/s  {secs:6.2f} s  peak {mem:.1f} GiB")
        model.set_window(None)

        if not args.skip_hf:
            import transformers

            if hf is None:
                hf = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**{k: v for k, v in hf_config.items() if k != "model_type"}))
                hf = hf.to(device=device, dtype=torch.bfloat16).eval()
            ids = torch.tensor(prompts, device=device)
            kw = dict(max_new_tokens=new, min_new_tokens=new, do_sample=True, top_k=0, top_p=1.0, pad_token_id=0,
                      attention_mask=torch.ones_like(ids))
            hf.generate(ids[:, :16], **{**kw, "max_new_tokens": 8, "min_new_tokens": 8, "attention_mask": torch.ones_like(ids[:, :16])})
            reset_peak()
            with torch.no_grad():
                out, secs = timed(lambda: hf.generate(ids, **kw))
            assert out.shape[1] == args.prompt_len + new
            mem = peak_gib()
            rows.append((batch, f"transformers {transformers.__version__} generate (peer)", batch * new / secs, secs, mem))
            print(f"  batch {batch:4d} {'transformers generate (peer)':38s} {batch * new / secs:9.0f} tokens/s  {secs:6.2f} s  peak {mem:.1f} GiB")

    table = ["| batch | engine | generated tokens/s | seconds | peak GiB | vs transformers |", "|---|---|---|---|---|---|"]
    for batch, name, tps, secs, mem in rows:
        peer = next((r[2] for r in rows if r[0] == batch and "peer" in r[1]), None)
        ratio = f"{tps / peer:.1f}x" if peer else "n/a"
        table.append(f"| {batch} | {name} | {tps:.0f} | {secs:.2f} | {mem:.1f} | {ratio} |")
    return "\n".join(table), f"prompt {args.prompt_len}, new {args.new_tokens}"


def long_tail():
    """Static generate() beside continuous batching, with the same cache rows, on long-tailed response lengths."""
    draw = random.Random(0)
    budgets = [min(args.new_tokens, max(1, round(draw.lognormvariate(math.log(args.median_tokens), args.sigma))))
               for _ in range(args.prompts * G)]
    prompts = torch.randint(0, vocab, (args.prompts, args.prompt_len)).tolist()
    per_call = S // G  # prompts per static call: S cache rows, as continuous batching has
    total = sum(budgets)
    static_steps = sum(max(budgets[i : i + S]) for i in range(0, len(budgets), S))
    packed_steps = sum(max(budgets[i : i + G]) for i in range(0, len(budgets), G)) * G / S  # every slot busy until its group ends
    row_steps = total / S  # every slot busy until the last row: the bound of refilling rows one by one

    def scheduled_steps(unit):
        """The decode steps generate_continuous takes for these lengths: units take free slots in order, at its checks."""
        free = [0] * (S // unit)  # when each slot unit is next free
        for i in range(0, len(budgets), unit):
            start = -(-heapq.heappop(free) // args.check_every) * args.check_every
            heapq.heappush(free, start + max(budgets[i : i + unit]))
        return max(free)

    fifo_groups, fifo_rows = scheduled_steps(G), scheduled_steps(1)
    workload = (f"{args.prompts} prompts x {G} samples, prompt {args.prompt_len}, response lengths log-normal (median "
                f"{args.median_tokens}, sigma {args.sigma}) capped at {args.new_tokens}: mean {total / len(budgets):.0f}, "
                f"{sum(b == args.new_tokens for b in budgets) / len(budgets):.0%} at the cap; {S} cache rows"
                f"{', compile=True' if args.compile else ''}")
    print(f"  {workload}\n  decode steps: static {static_steps}, continuous at least {packed_steps:.0f} with whole groups, "
          f"{row_steps:.0f} with single rows (packed perfectly): at most {static_steps / packed_steps:.2f}x and "
          f"{static_steps / row_steps:.2f}x;\n  in the order the engine places them: {fifo_groups} steps with whole groups "
          f"({static_steps / fifo_groups:.2f}x), {fifo_rows} with single rows ({static_steps / fifo_rows:.2f}x)")

    def static(prompts, budgets):
        return [generate(model, prompts[i : i + per_call], args.new_tokens, [-1], G, 1.0, compile=args.compile,
                         budgets=budgets[i * G : (i + per_call) * G]) for i in range(0, len(prompts), per_call)]

    def continuous(prompts, budgets, unit=None):
        return [generate_continuous(model, prompts, args.new_tokens, [-1], G, 1.0, slots=S, unit=unit, check_every=args.check_every,
                                    compile=args.compile, budgets=budgets)]

    def continuous_rows(prompts, budgets):
        return continuous(prompts, budgets, unit=1)

    rows = []
    for window in (None, args.window):
        model.set_window(window)
        attention = "full" if window is None else f"SWA W={window}"
        for name, run in (("static generate()", static), ("continuous, groups refilled", continuous),
                          ("continuous, rows refilled", continuous_rows)):
            run(prompts[:per_call], [4] * S)  # warm-up, the timed shapes: kernels, and the compilation with --compile
            reset_peak()
            gens, secs = timed(lambda: run(prompts, budgets))
            assert sum(int(g.mask.sum()) for g in gens) == total
            mem = peak_gib()
            rows.append((attention, name, total / secs, secs, mem))
            print(f"  {attention:12s} {name:20s} {total / secs:9.0f} tokens/s  {secs:6.2f} s  peak {mem:.1f} GiB", flush=True)
    model.set_window(None)

    # "its schedule allows": static decode steps / the engine's own, for these lengths; at equal cost per step, the ratio
    scheduled = {"static generate()": static_steps, "continuous, groups refilled": fifo_groups, "continuous, rows refilled": fifo_rows}
    table = ["| attention | engine | cache rows | generated tokens/s | seconds | peak GiB | vs static | its schedule allows |",
             "|---|---|---|---|---|---|---|---|"]
    for attention, name, tps, secs, mem in rows:
        base = next(r[2] for r in rows if r[0] == attention and r[1].startswith("static"))
        table.append(f"| {attention} | {name} | {S} | {tps:.0f} | {secs:.2f} | {mem:.1f} | {tps / base:.2f}x | "
                     f"{static_steps / scheduled[name]:.2f}x |")
    return "\n".join(table), workload


text, setting = long_tail() if args.long_tail else throughput()
print("\n" + text)
if args.out:
    with open(args.out, "a") as f:
        f.write(f"\n{gpu}, torch {torch.__version__}, {setting}{' (--tiny)' if args.tiny else ''}\n\n{text}\n")
