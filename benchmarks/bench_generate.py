"""
Generation throughput on the GPU: swarr's rolling-cache engine beside Hugging Face transformers'
generate, same weights, same shapes, same run. A Qwen2.5-1.5B-shaped model with random weights,
bf16, 128-token prompts, 512 new tokens forced to full length (no EOS can occur).

    python benchmarks/bench_generate.py [--batches 256,64] [--out bench.md]

First checks on the GPU that the CUDA-graph and compiled decode paths give the same tokens as the
eager path and as recomputing the full sequence (float32, a small model). Compiled rows are timed
after a warm-up run of the same shape (compiling takes about a minute and happens once per shape).
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from generate import generate  # noqa: E402
from model import CONFIGS, Config, Model, config_from_hf  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--batches", default="256,64")
parser.add_argument("--prompt-len", type=int, default=128)
parser.add_argument("--new-tokens", type=int, default=512)
parser.add_argument("--window", type=int, default=256, help="window of the SWA rows")
parser.add_argument("--skip-hf", action="store_true")
parser.add_argument("--out", default=None)
args = parser.parse_args()
device = torch.device("cuda")

# ---- correctness of the CUDA-graph path
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
print("correctness: compiled / CUDA-graph decode == eager decode == full recompute (float32, SWA W=16 + 2 sinks, one full layer)")

# ---- the Qwen2.5-1.5B shape
hf_config = CONFIGS["qwen2.5-1.5b"]
torch.manual_seed(0)
model = Model(config_from_hf(hf_config)).to(device=device, dtype=torch.bfloat16).eval()
print(f"{torch.cuda.get_device_name()}  torch {torch.__version__}")

rows = []


def timed(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - t0


for batch in [int(b) for b in args.batches.split(",")]:
    prompts = torch.randint(0, 151000, (batch, args.prompt_len)).tolist()
    new = args.new_tokens
    for name, window, compile in (("swarr, full attention, CUDA graph", None, False),
                                  ("swarr, full attention, compiled + CUDA graph", None, True),
                                  (f"swarr, SWA W={args.window}, CUDA graph", args.window, False),
                                  (f"swarr, SWA W={args.window}, compiled + CUDA graph", args.window, True)):
        model.set_window(window)
        # warm-up; compiling: the same cache shape as the timed run, so its compilation is not timed
        generate(model, prompts, new if compile else 8, [-1], temperature=1.0, compile=compile)
        torch.cuda.reset_peak_memory_stats()
        gen, secs = timed(lambda: generate(model, prompts, new, [-1], temperature=1.0, compile=compile))
        assert gen.mask.all()
        mem = torch.cuda.max_memory_allocated() / 2**30
        rows.append((batch, name, batch * new / secs, secs, mem))
        print(f"  batch {batch:4d} {name:38s} {batch * new / secs:9.0f} tokens/s  {secs:6.2f} s  peak {mem:.1f} GiB")
    model.set_window(None)

    if not args.skip_hf:
        import transformers

        if "hf" not in globals():
            hf = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**{k: v for k, v in hf_config.items() if k != "model_type"}))
            hf = hf.to(device=device, dtype=torch.bfloat16).eval()
        ids = torch.tensor(prompts, device=device)
        kw = dict(max_new_tokens=new, min_new_tokens=new, do_sample=True, top_k=0, top_p=1.0, pad_token_id=0,
                  attention_mask=torch.ones_like(ids))
        hf.generate(ids[:, :16], **{**kw, "max_new_tokens": 8, "min_new_tokens": 8, "attention_mask": torch.ones_like(ids[:, :16])})
        torch.cuda.reset_peak_memory_stats()
        with torch.no_grad():
            out, secs = timed(lambda: hf.generate(ids, **kw))
        assert out.shape[1] == args.prompt_len + new
        mem = torch.cuda.max_memory_allocated() / 2**30
        rows.append((batch, f"transformers {transformers.__version__} generate (peer)", batch * new / secs, secs, mem))
        print(f"  batch {batch:4d} {'transformers generate (peer)':38s} {batch * new / secs:9.0f} tokens/s  {secs:6.2f} s  peak {mem:.1f} GiB")

table = ["| batch | engine | generated tokens/s | seconds | peak GiB | vs transformers |", "|---|---|---|---|---|---|"]
for batch, name, tps, secs, mem in rows:
    peer = next((r[2] for r in rows if r[0] == batch and "peer" in r[1]), None)
    ratio = f"{tps / peer:.1f}x" if peer else "n/a"
    table.append(f"| {batch} | {name} | {tps:.0f} | {secs:.2f} | {mem:.1f} | {ratio} |")
text = "\n".join(table)
print("\n" + text)
if args.out:
    with open(args.out, "a") as f:
        f.write(f"\n{torch.cuda.get_device_name()}, torch {torch.__version__}, prompt {args.prompt_len}, new {args.new_tokens}\n\n{text}\n")
