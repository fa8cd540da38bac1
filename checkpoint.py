"""
Models in and out of files, for every stage: loading a Hugging Face directory or a swarr .pt
checkpoint with its tokenizer, swarr checkpoints with exact resumption (optimizer, data position,
RNG streams), Hugging Face export, the JSON-lines metrics log, and the command-line options that
pick a model and its attention (the same names and parsing in every script).

    model, tokenizer = load_model("out/sft.pt", window="config")     # or a Hugging Face directory
    export_hf(model, "out/hf", tokenizer)                              # transformers loads it back

Every file is written through a temporary file and a rename (atomic_write): a crash mid-write
leaves the previous file whole. Checkpoints hold plain tensors and Python values only and are read
with torch.load(weights_only=True), which never unpickles arbitrary objects.
"""
import argparse
import json
import os
import random
import shutil
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import save_file

from model import Config, Model, config_to_hf, hf_name
from tokenizer import Tokenizer, check_tokenizer


def atomic_write(file, write):
    """write(tmp_path) into a temporary file beside `file`, then rename it over `file`."""
    tmp = f"{file}.tmp"
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # on disk before the rename: a power loss leaves the old file, not an empty new one
            os.fsync(f.fileno())
        os.replace(tmp, file)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------------------------
# loading a model: a Hugging Face directory or a swarr checkpoint, with its tokenizer


def load_model(path, window="config", sinks=0, full_layers=(), device="cpu", dtype=None):
    """A Hugging Face directory or a swarr .pt checkpoint -> (model, tokenizer). window: see Model.from_pretrained."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model {path} not found (a Hugging Face directory or a .pt checkpoint)")
    if path.is_dir():
        model, tokenizer_dir = Model.from_pretrained(path, window, sinks, full_layers, dtype, device), path
    else:
        model, ckpt = load_checkpoint(path, device, dtype)
        if window != "config":
            model.set_window(window, sinks, full_layers)
        tokenizer_dir = Path(ckpt["tokenizer"])
        if not tokenizer_dir.is_absolute() and not tokenizer_dir.exists():
            tokenizer_dir = path.parent / tokenizer_dir
    tokenizer = Tokenizer(tokenizer_dir)
    check_tokenizer(tokenizer, model)
    return model, tokenizer


def export_hf(model, directory, tokenizer=None):
    """
    A Hugging Face directory transformers loads with the same attention (model.config_to_hf): the
    weights as model.safetensors, config.json, and the tokenizer's files copied beside them.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hf, renamed = config_to_hf(model.config)
    tensors = {hf_name(n): p.detach().contiguous().cpu() for n, p in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        tensors.pop("lm_head.weight")
    if renamed:  # llama -> qwen2 adds q, k, v biases; zeros keep the function identical
        for i, layer in enumerate(model.layers):
            for proj in ("q_proj", "k_proj", "v_proj"):
                w = getattr(layer.self_attn, proj).weight
                tensors.setdefault(f"model.layers.{i}.self_attn.{proj}.bias", torch.zeros(w.shape[0], dtype=w.dtype))
    atomic_write(directory / "model.safetensors", lambda f: save_file(tensors, f, metadata={"format": "pt"}))
    atomic_write(directory / "config.json", lambda f: Path(f).write_text(json.dumps(hf, indent=2) + "\n"))
    if tokenizer is not None:
        for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja"):
            if (tokenizer.path / name).exists():
                shutil.copy(tokenizer.path / name, directory / name)
    print(f"exported a Hugging Face directory to {directory}")


# ----------------------------------------------------------------------------------------------
# swarr checkpoints (sft.py, rl.py): plain tensors and Python values, loaded with weights_only=True


def save_checkpoint(file, model, **extra):
    """Weights, config (window settings included) and whatever the stage adds, written atomically."""
    state = {"config": asdict(model.config), "model": model.state_dict(), **extra}
    Path(file).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(file, lambda f: torch.save(state, f))


def load_checkpoint(file, device="cpu", dtype=None):
    """-> (model, the whole checkpoint dict). Never unpickles arbitrary objects."""
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint {file} not found") from None
    except Exception as e:  # truncated, corrupt, or not a torch file
        raise ValueError(f"checkpoint {file} cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    if not isinstance(ckpt, dict) or "config" not in ckpt or "model" not in ckpt:
        raise ValueError(f"checkpoint {file} is not a swarr checkpoint (no config / model entries)")
    config = Config(**ckpt["config"])
    if dtype is None:
        dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    with torch.device("meta"):
        model = Model(config)
    model.load_weights({hf_name(k): v for k, v in ckpt["model"].items()}, device, dtype)
    return model, ckpt


def rng_state():
    """Every random stream a training run draws from, for exact resumption."""
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state):
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def start_run(args):
    """A training stage's start: every random stream seeded from --seed. -> (checkpoint path, log path)."""
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    out = Path(args.out)
    return out, Path(args.log or out.with_suffix(".jsonl"))


def save_run(out, model, tokenizer, args, optimizer, **position):
    """A training stage's checkpoint: weights, its arguments, optimizer, RNG and `position` (step, epoch, pos, ...)."""
    save_checkpoint(out, model, tokenizer=str(tokenizer.path), args={k: json_value(v) for k, v in vars(args).items()},
                    optimizer=optimizer.state_dict(), rng=rng_state(), **position)


def resume(out, model, optimizer, args, run_identity):
    """Restore weights, optimizer and RNG from `out`, refusing a checkpoint of another run. -> the checkpoint."""
    if not out.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {out} to resume from")
    resumed, ckpt = load_checkpoint(out, args.device, torch.float32)
    saved = ckpt.get("args", {})
    changed = [k for k in run_identity if k in saved and saved[k] != json_value(getattr(args, k))]
    if changed or "optimizer" not in ckpt:
        raise ValueError(f"--resume: {out} is from a different run (differs in {', '.join(changed) or 'missing optimizer state'})")
    model.load_state_dict(resumed.state_dict())
    optimizer.load_state_dict(ckpt["optimizer"])
    set_rng_state(ckpt["rng"])
    print(f"resumed from {out} at step {ckpt['step']}")
    return ckpt


def json_value(v):
    return list(v) if isinstance(v, tuple) else v


def log(file, record):
    """Append one JSON line to the metrics log."""
    file.parent.mkdir(parents=True, exist_ok=True)
    with open(file, "a") as f:
        f.write(json.dumps(record) + "\n")


# ----------------------------------------------------------------------------------------------
# the command line: one error style, and the options that pick a model and its attention, the
# same names and parsing in every script


def run_main(main):
    """A script's entry point: an expected failure (bad data, a file that cannot be read or written,
    a diverged run) ends in one line, `error: ...`, with exit status 1 instead of a traceback."""
    try:
        main()
    except (ValueError, OSError, FloatingPointError) as e:
        raise SystemExit(f"error: {e}") from None


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors, `error: argument --flag: what is wrong` (--help has the usage)."""

    def error(self, message):
        self.exit(2, f"error: {message}\n")


def window_arg(text):
    """--window: an int >= 1, 'none' (full attention) or 'config' (the checkpoint's own)."""
    if text == "config":
        return "config"
    if text.lower() == "none":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"takes an integer >= 1, 'none' or 'config', got {text!r}")
    return int(text)


def layers_arg(text):
    """--full-layers: comma-separated layer indices."""
    try:
        return tuple(int(i) for i in text.split(",") if i.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes comma-separated integers, got {text!r}") from None


def add_model_args(p, model="base_model", window="config", several=False):
    """--model, --window, --sinks, --full-layers, --device; several=True takes lists of models and windows."""
    nargs = "+" if several else None
    p.add_argument("--model", nargs=nargs, default=[model] if several else model, metavar="MODEL",
                   help=f"a Hugging Face directory or a swarr .pt checkpoint (default: {model})")
    p.add_argument("--window", type=window_arg, nargs=nargs, default=[window] if several else window,
                   help=f"an int, 'none' (full attention) or 'config' (the checkpoint's own); default: {window}")
    p.add_argument("--sinks", type=int, default=0, help="attention sinks, with an int --window")
    p.add_argument("--full-layers", type=layers_arg, default=(), help="comma-separated layers kept full, with an int --window")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def check_model_args(p, args):
    """Usage errors of add_model_args' options, through p.error."""
    windows = args.window if isinstance(args.window, list) else [args.window]
    if args.sinks < 0:
        p.error(f"--sinks must be >= 0, got {args.sinks}")
    if (args.sinks or args.full_layers) and not any(isinstance(w, int) for w in windows):
        p.error("--sinks and --full-layers apply to an integer --window")
