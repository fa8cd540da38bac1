"""
Decode latency and KV-cache memory against context length, full attention (SA) beside the sliding
window (SWA) in the same run: what the window saves when generating. One sequence; a random prompt
of `context` tokens is prefilled, then --decode-steps single tokens are timed after a warm-up.
Memory is the cache's own tensors (and the peak the GPU allocated while decoding). A context that
does not fit reports OOM and the next one runs.

    python benchmarks/bench_decode.py --config qwen2.5-1.5b --window 4096 --out out/decode
    python benchmarks/bench_decode.py --model out/rl.pt --window 32 --contexts 64,128,256,512,960

--config takes a shape of model.CONFIGS or a config.json (random weights decode exactly as fast as
trained ones); --model a checkpoint. --out PREFIX writes PREFIX.md, PREFIX.json and, with
matplotlib installed, PREFIX.png. Runs on the CPU too (slowly), which is how the tests run it.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checkpoint import ArgumentParser, atomic_write, layers_arg, load_model, run_main  # noqa: E402
from generate import DecodeStep, KVCache  # noqa: E402
from model import CONFIGS, Model, attention_label, config_from_hf, fuse_projections  # noqa: E402
from tokenizer import first_line  # noqa: E402

WARMUP = 3  # decode steps before timing: the first runs eagerly, the second captures the CUDA graph


def is_oom(e):
    text = str(e).lower()
    return isinstance(e, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in text or "allocate" in text


@torch.no_grad()
def decode_cost(model, context, steps, compile=False):
    """
    Prefill a random prompt of `context` tokens into a fresh cache, then time `steps` decode steps
    of that one sequence (compile: generate()'s compiled decode step, compiled for this cache length
    during the untimed warm-up). -> (ms per token, KV-cache bytes, peak GPU bytes while decoding or None).
    """
    device, dtype = model.embed_tokens.weight.device, model.embed_tokens.weight.dtype
    cuda = device.type == "cuda"
    cache = KVCache(model, 1, context + WARMUP + steps, device, dtype)
    ids = torch.randint(0, model.config.vocab_size, (1, context), device=device)  # (1, context)
    token = cache.prefill(model, ids, torch.zeros(1, 1, dtype=torch.long, device=device)).argmax(-1)  # (1,), into row 0
    step = DecodeStep(model, cache, 1, device, cuda_graph=cuda, compile=compile)
    for _ in range(WARMUP):
        token = step(token).argmax(-1)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        token = step(token).argmax(-1)
    if cuda:
        torch.cuda.synchronize()
    ms = (time.perf_counter() - t0) * 1000 / steps
    return ms, cache.memory_bytes(), torch.cuda.max_memory_allocated() if cuda else None


def efficiency_rows(model, name, contexts, window, sinks=0, full_layers=(), steps=32, on_row=None, compile=False):
    """SA then SWA at every context; a context that does not fit gives an OOM row and the next one runs."""
    rows = []
    for w in (None, window):
        model.set_window(w, sinks if w else 0, full_layers if w else ())
        label = attention_label(model.config)
        for context in tqdm(contexts, desc=f"{name} {label}", leave=False):
            row = {"model": name, "attention": label, "window": w, "context": context}
            try:
                ms, kv, peak = decode_cost(model, context, steps, compile=compile)
                row.update(ms_per_token=ms, kv_bytes=kv, peak_bytes=peak)
            except (MemoryError, RuntimeError) as e:
                if not is_oom(e):
                    raise
                row.update(oom=True, error=f"{type(e).__name__}: {first_line(e)}")
                print(f"error: {name} {label}: context {context} does not fit on {model.embed_tokens.weight.device} "
                      f"({row['error']})", file=sys.stderr)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # give back what the last context held before the next one
            rows.append(row)
            if on_row:
                on_row(rows)
    return rows


def efficiency_table(rows):
    lines = ["| model | attention | context | decode ms/token | KV cache | peak GPU memory |", "|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("oom"):
            cells = ["OOM", "OOM", "OOM"]
        else:
            cells = [f"{r['ms_per_token']:.2f}", human_bytes(r["kv_bytes"]), human_bytes(r["peak_bytes"])]
        lines.append("| " + " | ".join([r["model"], r["attention"], str(r["context"]), *cells]) + " |")
    return lines


def human_bytes(n):
    if n is None:
        return "–"
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:.0f} B" if i == 0 else f"{n:.1f} {units[i]}"


def plot_efficiency(rows, file):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed, so no plot")
        return
    fig, (ax_ms, ax_kv) = plt.subplots(1, 2, figsize=(10, 4))
    for label in dict.fromkeys(r["attention"] for r in rows):
        ok = [r for r in rows if r["attention"] == label and not r.get("oom")]
        x = [r["context"] for r in ok]
        ax_ms.plot(x, [r["ms_per_token"] for r in ok], "o-", label=label)
        ax_kv.plot(x, [r["kv_bytes"] / 2**20 for r in ok], "o-", label=label)
    for ax, ylabel in ((ax_ms, "decode ms / token"), (ax_kv, "KV cache MiB")):
        ax.set(xscale="log", xlabel="context (tokens)", ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(file, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a Hugging Face directory or a swarr .pt checkpoint")
    p.add_argument("--config", default=None, help=f"random weights of a built-in shape {list(CONFIGS)} or of a config.json")
    p.add_argument("--window", type=int, default=4096, help="the SWA row's window (SA is always measured)")
    p.add_argument("--sinks", type=int, default=0)
    p.add_argument("--full-layers", type=layers_arg, default=())
    p.add_argument("--contexts", default="1024,4096,16384,65536,131072")
    p.add_argument("--decode-steps", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="the compiled decode step rl.py --compile samples with (about a minute per context)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None, metavar="PREFIX", help="write PREFIX.md, PREFIX.json (and PREFIX.png)")
    args = p.parse_args(argv)
    if (args.model is None) == (args.config is None):
        p.error("give --model or --config: one model is measured")
    if args.config and args.config not in CONFIGS and not Path(args.config).is_file():
        p.error(f"--config {args.config!r} is neither a built-in shape {list(CONFIGS)} nor a config.json file")
    if args.window < 1 or args.decode_steps < 1:
        p.error("--window and --decode-steps must be >= 1")
    try:
        contexts = [int(c) for c in args.contexts.split(",") if c.strip()]
    except ValueError:
        p.error(f"--contexts takes comma-separated integers, got {args.contexts!r}")
    if not contexts or min(contexts) < 1:
        p.error(f"--contexts must be integers >= 1, got {args.contexts!r}")
    command = "python benchmarks/bench_decode.py " + " ".join(sys.argv[1:] if argv is None else argv)

    device = torch.device(args.device)
    if args.config:  # random weights of a known shape; the context must fit its rotary positions
        hf = dict(CONFIGS[args.config]) if args.config in CONFIGS else json.loads(Path(args.config).read_text())
        hf["max_position_embeddings"] = max(hf.get("max_position_embeddings", 0), max(contexts) + 64)
        torch.manual_seed(args.seed)
        with torch.device(device):
            model = Model(config_from_hf(hf))
        model = model.to(torch.bfloat16 if device.type == "cuda" else torch.float32).eval()
        name = args.config
    else:
        model, _ = load_model(args.model, None, device=device)
        name = args.model
        if max(contexts) > model.config.max_position_embeddings:
            print(f"note: contexts past the checkpoint's {model.config.max_position_embeddings} positions are "
                  "beyond what it was trained on; their speed and memory are measured all the same")
    n_params = sum(p.numel() for p in model.parameters())
    if device.type == "cuda":  # as evaluate.py and rl.py's sampler decode on a GPU: q, k, v one product, gate, up another
        fuse_projections(model)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    header = (f"# decode efficiency\n\n`{command}`\n\n{name} ({n_params / 1e6:.1f}M parameters, "
              f"{model.embed_tokens.weight.dtype}) on {device_name}, torch {torch.__version__}, one sequence, "
              f"{args.decode_steps} timed decode steps after a prefill of `context` random tokens"
              f"{', compiled decode step' if args.compile else ''}\n\n")

    def save(rows):
        if args.out is None:
            return
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(f"{args.out}.md", lambda f: Path(f).write_text(header + "\n".join(efficiency_table(rows)) + "\n"))
        report = {"command": command, "model": name, "device": device_name, "rows": rows}
        atomic_write(f"{args.out}.json", lambda f: Path(f).write_text(json.dumps(report, indent=2) + "\n"))

    rows = efficiency_rows(model, name, contexts, args.window, args.sinks, args.full_layers, args.decode_steps, save, args.compile)
    print("\n".join(efficiency_table(rows)))
    if args.out:
        plot_efficiency(rows, f"{args.out}.png")


if __name__ == "__main__":
    run_main(main)
