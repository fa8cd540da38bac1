"""
SFT throughput on the GPU: swarr's forward + backward (the loss sft.py computes) beside Hugging Face
transformers' on the same shape in the same run. A Qwen2.5-1.5B-shaped model with random weights,
bf16 weights, B=1, T=4096 and 16384, W=4096 (transformers configured with the same window).

    python benchmarks/bench_sft.py [--lengths 4096,16384] [--out bench.md]

First checks on the GPU, on a small model in float32, that swarr's loss and gradients equal
transformers' with the same weights and window.
"""
import argparse
import os
import sys
import time

import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from model import CONFIGS, Model, compile_for_training, config_from_hf, pack, token_logprobs  # noqa: E402
from sft import epoch_packs  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--lengths", default="4096,16384")
parser.add_argument("--window", type=int, default=4096)
parser.add_argument("--reps", type=int, default=5)
parser.add_argument("--varied", type=int, default=0,
                    help="then N steps of swarr --compile at lengths drawn from 1k-16k (a real run's batches), against T=4096")
parser.add_argument("--skip-peers", action="store_true", help="time swarr only (no transformers rows)")
parser.add_argument("--static", action="store_true", help="with --varied: also compile_for_training(static=True), padded to buckets")
parser.add_argument("--pack", type=int, default=0, help="with --varied: sft.py --pack N instead, the same lengths end to end in rows of N")
parser.add_argument("--out", default=None)
args = parser.parse_args()
device = "cuda"


def hf_model(config, window, dtype):
    cfg = transformers.Qwen2Config(**{k: v for k, v in config.items() if k != "model_type"}, use_sliding_window=True,
                                   sliding_window=window, max_window_layers=0)
    cfg.layer_types = ["sliding_attention"] * cfg.num_hidden_layers
    return transformers.Qwen2ForCausalLM(cfg).to(device=device, dtype=dtype)


def ours_from(hf, config, window):
    model = Model(config_from_hf(config))
    model.load_weights({n: t for n, t in hf.state_dict().items()}, device, next(hf.parameters()).dtype)
    model.set_window(window)
    return model


def ours_loss(model, ids):
    return -token_logprobs(model, ids).mean()


def hf_loss(model, ids):
    return model(ids, labels=ids).loss


# ---- correctness: same weights, same window, float32, small shape
small = dict(model_type="qwen2", vocab_size=1000, hidden_size=128, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
             num_key_value_heads=2, head_dim=32, max_position_embeddings=4096, tie_word_embeddings=True, rope_theta=1e6)
torch.manual_seed(0)
hf_small = hf_model(small, 64, torch.float32)
ours_small = ours_from(hf_small, small, 64)
ids = torch.randint(0, 1000, (2, 300), device=device)
a, b = ours_loss(ours_small, ids), hf_loss(hf_small, ids)
a.backward(), b.backward()
grad_err = max((ours_small.get_parameter(n.removeprefix("model.")).grad - p.grad).abs().max().item()
               for n, p in hf_small.named_parameters() if n != "lm_head.weight")
print(f"correctness: loss ours {a.item():.6f} transformers {b.item():.6f}; max grad difference {grad_err:.2e}")
assert abs(a.item() - b.item()) < 1e-4 and grad_err < 1e-4
# packed rows (sft.py --pack): flex with the documents' block mask, forward and backward, against each sequence alone
ours_small.zero_grad()
seqs = [torch.randint(0, 1000, (n,)).tolist() for n in (300, 7, 129, 500, 64)]
ids_packed, doc_start, offsets = pack(seqs, 1024)
ours_small.impl = "flex"
packed_logp = token_logprobs(ours_small, ids_packed.to(device), doc_start=doc_start.to(device))[0]
packed_sum = sum(packed_logp[o : o + len(q) - 1].sum() for o, q in zip(offsets, seqs))
packed_sum.backward()
packed_grads = [p.grad.clone() for p in ours_small.parameters()]
ours_small.zero_grad()
ours_small.impl = "naive"
alone_sum = sum(token_logprobs(ours_small, torch.tensor([q], device=device)).sum() for q in seqs)
alone_sum.backward()
grad_err = max((g - p.grad).abs().max().item() for g, p in zip(packed_grads, ours_small.parameters()))
print(f"correctness: packed rows (flex, CUDA) summed log-prob {packed_sum.item():.4f}, each alone {alone_sum.item():.4f}; "
      f"max grad difference {grad_err:.2e}")
assert abs(packed_sum.item() - alone_sum.item()) < 1e-2 and grad_err < 1e-4
del hf_small, ours_small

# ---- throughput at the Qwen2.5-1.5B shape
big = CONFIGS["qwen2.5-1.5b"]
n_params = 1.54e9
print(f"{torch.cuda.get_device_name()}  torch {torch.__version__}  transformers {transformers.__version__}")


def bench(step, reps):
    for _ in range(2):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps, torch.cuda.max_memory_allocated() / 2**30


rows = []
torch.manual_seed(0)
hf = hf_model(big, args.window, torch.bfloat16)
ours = ours_from(hf, big, args.window)
compiled = ours_from(hf, big, args.window)  # sft.py --compile
compile_for_training(compiled)
for T in [int(t) for t in args.lengths.split(",")]:
    ids = torch.randint(0, 151000, (1, T), device=device)
    long = T > 8192  # transformers needs activation checkpointing here (the peer measurement)
    variants = {}

    def hf_step():
        hf.zero_grad(set_to_none=True)
        hf_loss(hf, ids).backward()

    for impl in () if args.skip_peers else ("sdpa", "flash_attention_2", "flex_attention"):
        try:
            hf.set_attn_implementation(impl)
            hf.gradient_checkpointing_enable() if long else hf.gradient_checkpointing_disable()
            hf.train()
            variants[(f"transformers ({impl})", long)] = bench(hf_step, args.reps)
        except Exception as e:  # an implementation this install lacks
            print(f"  transformers {impl}: unavailable ({type(e).__name__}: {str(e).splitlines()[0][:100]})")
            torch.cuda.empty_cache()
    attention = "flash causal" if args.window >= T else "flex SWA"
    for name, model, checkpointing in ((f"swarr eager ({attention})", ours, long), (f"swarr --compile ({attention})", compiled, False)):
        def ours_step():
            model.zero_grad(set_to_none=True)
            ours_loss(model, ids).backward()

        model.train()
        model.checkpointing = checkpointing
        bench(ours_step, 1)  # compiles for this length, outside the timing
        variants[(name, checkpointing)] = bench(ours_step, args.reps)
    peer = max((T / s for (name, _), (s, _) in variants.items() if name.startswith("transformers")), default=float("nan"))
    for (name, checkpointing), (secs, mem) in variants.items():
        tps = T / secs
        mfu = 6 * n_params * tps / 989e12
        rows.append((T, checkpointing, name, tps, mfu, mem, tps / peer))
        print(f"  T={T:6d} {name:34s} {tps:9.0f} tokens/s  MFU {mfu:5.1%}  peak {mem:5.1f} GiB  {tps / peer:4.2f}x best transformers")

def run_varied(model, label, packed=0):
    """args.varied steps at lengths drawn from 1k-16k; the steps that compiled something are left out of the rate.
    packed: the same lengths end to end in rows of `packed` tokens (sft.py --pack), a step per row; tokens/s counts real tokens."""
    import random

    compilations = lambda: torch._dynamo.utils.counters["stats"]["unique_graphs"]  # noqa: E731
    rng = random.Random(0)
    lengths = [rng.randint(1024, 16384) for _ in range(args.varied)]
    model.train()
    model.checkpointing = False

    def varied_step(T):
        model.zero_grad(set_to_none=True)
        ours_loss(model, torch.randint(0, 151000, (1, T), device=device)).backward()

    steps = [(T, lambda T=T: varied_step(T)) for T in lengths]
    if packed:
        def packed_step(row):
            ids, doc_start, _ = pack([torch.randint(0, 151000, (lengths[i],)).tolist() for i in row], packed)
            model.zero_grad(set_to_none=True)
            (-token_logprobs(model, ids.to(device), doc_start=doc_start.to(device)).mean()).backward()

        packs = epoch_packs([([0] * T, None) for T in lengths], packed, 0, 0)
        steps = [(sum(lengths[i] for i in row), lambda row=row: packed_step(row)) for row in packs]
        print(f"  {label}: {len(lengths)} sequences ({sum(lengths)} tokens) in {len(packs)} rows of {packed} "
              f"({sum(lengths) / (len(packs) * packed):.0%} filled)")
    before, timed, compiling = compilations(), [], 0
    for i, (T, step) in enumerate(steps):
        so_far = compilations()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        if compilations() > so_far:  # a bucket seen for the first time: its compilation is not throughput
            compiling += 1
        else:
            timed.append((T, seconds))
        print(f"  {label} varied step {i + 1:3d}: T={T:5d}  {T / seconds:8.0f} tokens/s  {seconds:6.2f} s  "
              f"compilations so far {compilations() - before}", flush=True)
    tps = sum(T for T, _ in timed) / sum(s for _, s in timed)
    fixed = next(tps for T, ck, name, tps, *_ in rows if T == 4096 and name.startswith("swarr --compile"))
    print(f"{label}: varied lengths 1024-16384: {len(timed)} steps that compiled nothing ({compiling} did): "
          f"{tps:.0f} tokens/s, {tps / fixed:.2f}x the fixed T=4096 rate {fixed:.0f}; {compilations() - before} compilations "
          f"in all, peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB", flush=True)


if args.varied:  # every batch of a real run has its own length: compiled paths must not recompile (or fall back) per length
    if args.static:  # compile_for_training(static=True): padded to buckets, static shapes per bucket
        del ours
        static = ours_from(hf, big, args.window)
        compile_for_training(static, static=True)
        run_varied(static, "static buckets")
        del static
        torch.cuda.empty_cache()
    if args.pack:  # sft.py --pack: one shape for every step (the unpacked rows are in BENCHMARKS.md)
        run_varied(compiled, f"packed rows of {args.pack}", packed=args.pack)
    else:
        run_varied(compiled, "symbolic length")

table = ["| T | act. ckpt | implementation | tokens/s | MFU (6N, 989 TFLOP/s) | peak GiB | vs best transformers |", "|---|---|---|---|---|---|---|"]
for T, ck, name, tps, mfu, mem, ratio in rows:
    table.append(f"| {T} | {'yes' if ck else 'no'} | {name} | {tps:.0f} | {mfu:.1%} | {mem:.1f} | {ratio:.2f}x |")
text = "\n".join(table)
print("\n" + text)
if args.out:
    with open(args.out, "a") as f:
        f.write(f"\n{torch.cuda.get_device_name()}, torch {torch.__version__}, transformers {transformers.__version__}, B=1, W={args.window}, bf16 weights, fwd+bwd\n\n{text}\n")
