"""
Models in and out of files, for every stage: loading a Hugging Face directory or a swarr .pt
checkpoint with its tokenizer, swarr checkpoints with exact resumption (optimizer, data position,
RNG streams), Hugging Face export, the JSON-lines metrics log and a timer of a step's phases, and the
command-line options that pick a model and its attention (the same names and parsing in every script).

    model, tokenizer = load_model("out/sft.pt", window="config")     # or a Hugging Face directory
    export_hf(model, "out/hf", tokenizer)                              # transformers loads it back

Every file is written through a temporary file and a rename (atomic_write): a crash mid-write
leaves the previous file whole. Checkpoints hold plain tensors and Python values only and are read
with torch.load(weights_only=True), which never unpickles arbitrary objects.
"""
import argparse
import json
import math
import os
import random
import tempfile
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch
from safetensors.torch import save_file

import distributed
from model import Config, Model, attention_label, config_to_hf, hf_name
from tokenizer import Tokenizer, check_tokenizer, first_line


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
        model = Model.from_pretrained(path, window, sinks, full_layers, dtype, device)
    else:
        model, ckpt = load_checkpoint(path, device, dtype)
        if window != "config":
            model.set_window(window, sinks, full_layers)
    context = model.config.max_position_embeddings
    if isinstance(window, int) and window > context:  # every position would see every other: a mistake, not SWA
        raise ValueError(f"window {window} is larger than the context of {path} ({context} positions): that is full attention "
                         "(--window none) or a window that was meant smaller")
    tokenizer = Tokenizer(path) if path.is_dir() else checkpoint_tokenizer(ckpt, path)
    check_tokenizer(tokenizer, model)
    return model, tokenizer


def load_model_under(path, config, device="cpu", dtype=None):
    """The model at `path` (no tokenizer), frozen, run under the attention of `config`: its windows per layer and
    sinks. A reference (rl.py --kl-ref): the layer count and vocabulary must match, the model's family."""
    model, _ = load_model(path, device=device, dtype=dtype)
    c = model.config
    if (c.vocab_size, c.num_hidden_layers) != (config.vocab_size, config.num_hidden_layers):
        raise ValueError(f"{path}: {c.vocab_size} tokens and {c.num_hidden_layers} layers, against {config.vocab_size} and "
                         f"{config.num_hidden_layers}: not the same model family")
    window = next((w for w in config.layer_windows if w is not None), None)
    model.set_window(window, config.sinks, [i for i, w in enumerate(config.layer_windows) if w is None] if window else ())
    if c.layer_windows != config.layer_windows:  # windows that differ between layers: set_window gives one
        raise ValueError(f"{path}: cannot run it under {attention_label(config)}")
    return model.eval().requires_grad_(False)


def checkpoint_tokenizer(ckpt, path):
    """The tokenizer a swarr checkpoint carries; older checkpoints name a directory (absolute, or relative
    to the working directory or to the checkpoint's own)."""
    if "tokenizer_files" in ckpt:
        return Tokenizer(files=ckpt["tokenizer_files"], source=f"{path} (its tokenizer)")
    if "tokenizer" not in ckpt:
        raise ValueError(f"checkpoint {path} has no tokenizer (neither tokenizer_files nor a tokenizer directory)")
    tokenizer_dir = Path(ckpt["tokenizer"])
    if not tokenizer_dir.is_absolute() and not tokenizer_dir.exists():
        tokenizer_dir = path.parent / tokenizer_dir
    return Tokenizer(tokenizer_dir)


def export_hf(model, directory, tokenizer=None):
    """
    A Hugging Face directory transformers loads with the same attention (model.config_to_hf): the
    weights as model.safetensors, config.json, and the tokenizer's files copied beside them. Under
    torchrun every rank calls it (the shards are gathered by all) and rank 0 writes.
    """
    if distributed.sharded(model):
        model = distributed.full_copy(model, torch.float32, "cpu")
    if not distributed.is_main():
        return
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
        for name, text in tokenizer.files.items():
            atomic_write(directory / name, lambda f, text=text: Path(f).write_text(text))
    print(f"exported a Hugging Face directory to {directory}")


# ----------------------------------------------------------------------------------------------
# swarr checkpoints (sft.py, rl.py): plain tensors and Python values, loaded with weights_only=True


def save_checkpoint(file, model, weights=None, **extra):
    """Weights (model's, or the full `weights` gathered from a sharded model), config (window settings
    included) and whatever the stage adds, written atomically. Weights holding NaN or inf are never
    written: they would replace a good checkpoint with a dead one."""
    weights = model.state_dict() if weights is None else weights
    bad = [name for name, t in weights.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise non_finite(file, bad)
    state = {"config": asdict(model.config), "model": weights, **extra}
    Path(file).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(file, lambda f: torch.save(state, f))


def non_finite(file, bad):
    return FloatingPointError(f"not writing {file}: {len(bad)} weight tensors hold NaN or inf (the first: {bad[0]})")


def load_checkpoint(file, device="cpu", dtype=None):
    """-> (model, the whole checkpoint dict). Never unpickles arbitrary objects."""
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint {file} not found") from None
    except IsADirectoryError:
        raise ValueError(f"checkpoint {file} is a directory, not a .pt file") from None
    except Exception as e:  # empty, truncated, corrupt, or not a torch file
        raise ValueError(f"checkpoint {file} cannot be read ({type(e).__name__}: {first_line(e)})") from None
    if not isinstance(ckpt, dict) or "config" not in ckpt or "model" not in ckpt:
        raise ValueError(f"checkpoint {file} is not a swarr checkpoint (no config / model entries)")
    unknown = set(ckpt["config"]) - {f.name for f in fields(Config)}
    if unknown:
        raise ValueError(f"checkpoint {file}: unknown config entries {sorted(unknown)} (written by another version of swarr?)")
    try:
        config = Config(**ckpt["config"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"checkpoint {file}: bad config ({first_line(e)})") from None
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


def save_run(out, model, tokenizer, args, optimizer, saved_step, **position):
    """A training stage's checkpoint: weights, its arguments, its tokenizer, optimizer, RNG and
    `position` (step, epoch, pos, ...). -> the step saved. `saved_step`: the one on disk until now."""
    try:
        if distributed.sharded(model):  # the same file as one process writes: full tensors, gathered; rank 0 writes
            weights, optimizer_state, bad = distributed.gather_state(model, optimizer)
            if bad:  # seen alike by every rank: all stop
                raise non_finite(out, bad)
            if distributed.is_main():  # the RNG streams saved are rank 0's; every rank restores them (nothing draws per rank)
                save_checkpoint(out, model, weights, tokenizer_files=tokenizer.files, args={k: json_value(v) for k, v in vars(args).items()},
                                optimizer=optimizer_state, rng=rng_state(), **position)
            torch.distributed.barrier()  # no rank runs ahead of a checkpoint being written
        else:
            save_checkpoint(out, model, tokenizer_files=tokenizer.files, args={k: json_value(v) for k, v in vars(args).items()},
                            optimizer=optimizer.state_dict(), rng=rng_state(), **position)
    except FloatingPointError as e:
        raise FloatingPointError(f"{e}; {still_good(out, saved_step)}") from None
    return position["step"]


def resume(out, model, optimizer, args, run_identity):
    """Restore weights, optimizer and RNG from `out`, refusing a checkpoint of another run. -> the checkpoint."""
    if not out.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {out} to resume from")
    resumed, ckpt = load_checkpoint(out, args.device, torch.float32)
    saved = ckpt.get("args", {})
    changed = [k for k in run_identity if k in saved and saved[k] != json_value(getattr(args, k))]
    if changed or "optimizer" not in ckpt:
        raise ValueError(f"--resume: {out} is from a different run (differs in {', '.join(changed) or 'missing optimizer state'})")
    shapes = {k: tuple(v.shape) for k, v in resumed.state_dict().items()}
    differ = [k for k, v in model.state_dict().items() if shapes.get(k) != tuple(v.shape)]  # a DTensor's shape is the full one
    if differ:
        raise ValueError(f"--resume: {out} holds a model of another shape ({differ[0]}: {shapes.get(differ[0])}, "
                         f"this run's model: {tuple(model.state_dict()[differ[0]].shape)})")
    if distributed.sharded(model):  # a full state dict, each rank keeping its shard: any world size resumes any other
        distributed.load_state(model, optimizer, resumed.state_dict(), ckpt["optimizer"])
    else:
        model.load_state_dict(resumed.state_dict())
        optimizer.load_state_dict(ckpt["optimizer"])
    set_rng_state(ckpt["rng"])
    print(f"resumed from {out} at step {ckpt['step']}")
    return ckpt


def json_value(v):
    return list(v) if isinstance(v, tuple) else v


def log(file, record):
    """Append one JSON line to the metrics log; NaN and inf become null (JSON has neither)."""
    if not distributed.is_main():  # one log, rank 0's
        return
    record = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
    file.parent.mkdir(parents=True, exist_ok=True)
    with open(file, "a") as f:
        f.write(json.dumps(record, allow_nan=False) + "\n")


class Timer:
    """
    timer(phase) charges the time since the previous call to `phase`; seconds() -> {phase: seconds}. On CUDA
    each call records an event, all read at the end: waiting for the GPU at every phase would leave it idle
    while the host prepares and launches the next one.
    """

    def __init__(self, device):
        self.cuda, self.marks = str(device).startswith("cuda"), []
        self(None)

    def __call__(self, phase):
        mark = torch.cuda.Event(enable_timing=True) if self.cuda else time.perf_counter()
        if self.cuda:
            mark.record()
        self.marks.append((phase, mark))

    def seconds(self):
        if self.cuda:
            torch.cuda.synchronize()
        out = {}
        for (_, a), (phase, b) in zip(self.marks, self.marks[1:]):
            out[phase] = out.get(phase, 0.0) + (a.elapsed_time(b) / 1e3 if self.cuda else b - a)
        return out


def diverged(what, value, step, out, saved_step):
    """The error that stops a diverged run before its optimizer step, naming the checkpoint that is still good."""
    return FloatingPointError(f"{what} is {value} at step {step + 1}: stopped before the optimizer step; {still_good(out, saved_step)}")


def still_good(out, saved_step):
    return f"the last good checkpoint is {out} (step {saved_step})" if saved_step is not None else "no checkpoint of this run was written"


def add_run_args(p, out):
    """A training stage's run, the same flags in sft.py and rl.py; check_run_outputs checks them."""
    p.add_argument("--out", default=out, help=f"the checkpoint (default: {out})")
    p.add_argument("--log", default=None, help="JSON-lines metrics; default: --out with .jsonl")
    p.add_argument("--export-hf", default=None, help="also write a Hugging Face directory here")
    p.add_argument("--resume", action="store_true", help="continue from --out exactly (optimizer, data position, RNG)")
    p.add_argument("--overwrite", action="store_true", help="start a new run over an existing --out (and append to its log)")
    p.add_argument("--seed", type=int, default=0)


def check_run_outputs(p, args):
    """sft.py / rl.py: refuse to clobber a run, and test-write every output before any model is loaded."""
    out = Path(args.out)
    if out.exists() and not (args.resume or args.overwrite):
        p.error(f"--out {out} exists: --resume continues that run, --overwrite starts a new one over it")
    if args.resume and args.overwrite:
        p.error("--resume and --overwrite exclude each other")
    check_output(p, "--out", out)
    check_output(p, "--log", Path(args.log or out.with_suffix(".jsonl")))
    if args.export_hf:
        check_output(p, "--export-hf", Path(args.export_hf), directory=True)


def check_output(p, flag, path, directory=False):
    """A usage error unless `path` (a file, or a folder) can be written: a file is created, written
    and removed beside it now, so that a read-only folder fails before hours of training, not after."""
    folder = path if directory else path.parent
    if path.exists() and not (path.is_dir() if directory else path.is_file()):
        p.error(f"{flag} {path}: not a {'folder' if directory else 'regular file'}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-") as f:
            f.write(b"x")
            f.flush()
    except OSError as e:
        p.error(f"{flag} {path}: cannot be written ({e.strerror or first_line(e)})")


# ----------------------------------------------------------------------------------------------
# the command line: one error style, and the options that pick a model and its attention, the
# same names and parsing in every script


def run_main(main):
    """A script's entry point: an expected failure (bad data, a file that cannot be read or written,
    a diverged run) ends in one line, `error: ...`, with exit status 1 instead of a traceback."""
    try:
        main()
    except (ValueError, OSError, FloatingPointError) as e:
        raise SystemExit(distributed.error_line(e)) from None
    distributed.teardown()


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors, `error: argument --flag: what is wrong` (--help has the usage)."""

    def error(self, message):
        self.exit(2, None if distributed.silent_rank() else f"error: {message}\n")  # under torchrun, rank 0 says it once


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


def check_at_least_one(p, args, *names):
    """Usage errors for counts that must be >= 1 (None: unset, a default decides)."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def check_model_args(p, args):
    """Usage errors of add_model_args' options, through p.error."""
    windows = args.window if isinstance(args.window, list) else [args.window]
    if args.sinks < 0:
        p.error(f"--sinks must be >= 0, got {args.sinks}")
    if (args.sinks or args.full_layers) and not any(isinstance(w, int) for w in windows):
        p.error("--sinks and --full-layers apply to an integer --window")
