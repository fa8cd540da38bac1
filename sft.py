"""
Stage 1 of SWARR: convert a full-attention model to sliding-window attention and recover it with
supervised fine-tuning. Nothing is pretrained anew: the weights start as the base model's, only
the attention mask changes (see model.Model.set_window).

    python sft.py --window 32 --max-steps 300                      # shipped base model, synthetic task
    python sft.py --model ~/models/Qwen2.5-0.5B-Instruct --data gsm8k_sft.jsonl --eval-data gsm8k_val.jsonl \\
        --window 4096 --max-len 4096 --batch-size 4 --grad-accum 8 --lr 1e-5 --checkpointing

Data: JSON lines {"prompt", "response", ...} (data/convert.py makes them from GSM8K / MATH);
by default the synthetic task's SFT split (data/synthetic.py). The loss covers the response tokens
and the EOS after them; the prompt is rendered as at inference (chat template or plain).
Batches are length-bucketed: sequences of similar length share a batch, so little is padding.
--pack N instead puts whole examples end to end in single rows of N tokens, attention kept inside
each example (model.pack): every forward has one shape, so --compile compiles once whatever the
lengths (measured in BENCHMARKS.md: SFT at lengths drawn from 1k-16k).

Writes out/sft.pt (weights, config with its window, tokenizer location, args) atomically every
--save-every steps and at the end; --resume continues from it exactly (optimizer, schedule, data
position and RNG). Metrics go to a JSON-lines log beside it.
"""
import argparse
import math
import random
import time

import torch
from tqdm import tqdm

import distributed
from checkpoint import (ArgumentParser, add_model_args, add_run_args, check_at_least_one, check_model_args, check_run_outputs,
                        diverged, export_hf, load_model, log, resume, run_main, save_run, start_run)
from data import EpochIterator, hold_out, load_split
from data.synthetic import DEFAULT_TASK
from model import compile_for_training, first_fit, make_optimizer, pack, to_device, token_logprobs


def get_args(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, window=str(DEFAULT_TASK["window"]))
    add_run_args(p, out="out/sft.pt")
    p.add_argument("--data", default=None, help="training JSON lines; default: the synthetic task's SFT split")
    p.add_argument("--eval-data", "--val-data", default=None, help="validation JSON lines; default: the synthetic val split")
    p.add_argument("--all-tokens", action="store_true", help="loss on prompt tokens too (pretraining)")
    p.add_argument("--max-len", type=int, default=None, help="longer examples are skipped (and counted); default: the context")
    p.add_argument("--batch-size", type=int, default=16, help="sequences per micro-batch (with --pack: per validation batch)")
    p.add_argument("--pack", type=int, default=0, metavar="N",
                   help="micro-batches are single rows of N tokens holding whole examples (a multiple of 128; default: padded rows)")
    p.add_argument("--grad-accum", type=int, default=1,
                   help="micro-batches per optimizer step, over all ranks: the global batch is --batch-size x --grad-accum "
                        "whatever the number of GPUs (torchrun: each rank takes every world-size-th micro-batch)")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=None, help="optimizer steps; overrides --epochs")
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--eval-size", "--val-size", type=int, default=256, help="validation examples")
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--checkpointing", action="store_true", help="activation checkpointing per block")
    p.add_argument("--compile", action="store_true", help="torch.compile the blocks and the head (GPU; ~1 min to compile)")
    p.add_argument("--impl", default="auto", help="attention implementation (swa_attention.py)")
    args = p.parse_args(argv)
    check_model_args(p, args)
    # max_steps / max_len None: the epochs / the model's context decide
    check_at_least_one(p, args, "batch_size", "grad_accum", "epochs", "eval_every", "eval_size", "save_every", "max_steps", "max_len")
    if args.lr <= 0 or args.grad_clip <= 0 or args.warmup < 0 or args.weight_decay < 0 or not 0 <= args.min_lr_ratio <= 1:
        p.error("--lr and --grad-clip must be > 0, --warmup and --weight-decay >= 0, --min-lr-ratio in [0, 1]")
    if args.pack < 0 or args.pack % 128:
        p.error(f"--pack must be a multiple of 128 (flex attention's block), got {args.pack}")
    distributed.check_divisible(p, "--grad-accum", args.grad_accum, "so that the global batch stays --batch-size x --grad-accum")
    check_run_outputs(p, args)
    return args


# ----------------------------------------------------------------------------------------------
# data: records -> token ids with a loss mask -> length-bucketed batches


def tokenize(records, tokenizer, max_len, all_tokens, source):
    """[(where, record)] -> list of (ids, loss_mask) and the number of examples skipped for being longer than max_len."""
    examples, skipped = [], 0
    for i, (where, r) in enumerate(tqdm(records, desc=f"tokenize {source}", delay=2, leave=False, disable=distributed.silent_rank())):
        prompt = tokenizer.encode(tokenizer.render_prompt(r["prompt"]))
        response = tokenizer.encode(r["response"])
        if not response:
            raise ValueError(f"{source}, {where}: record {i + 1} has a response that tokenizes to nothing")
        ids = prompt + response + [tokenizer.eos_id]  # the end of turn the chat template closes with
        if len(ids) > max_len:
            skipped += 1
            continue
        # mask[t] says whether ids[t] is a target: the response and its EOS (everything but the first token with --all-tokens)
        mask = [all_tokens] * len(prompt) + [True] * (len(response) + 1)
        mask[0] = False
        examples.append((ids, mask))
    if not examples:
        raise ValueError(f"{source}: no usable examples (all {skipped} longer than --max-len {max_len})")
    return examples, skipped


def epoch_batches(examples, batch_size, seed, epoch):
    """Shuffle, then sort within pools of 64 batches by length: little padding, still random."""
    rng = random.Random(f"{seed}/{epoch}")
    order = list(range(len(examples)))
    rng.shuffle(order)
    pool = batch_size * 64
    batches = []
    for s in range(0, len(order), pool):
        chunk = sorted(order[s : s + pool], key=lambda i: len(examples[i][0]))
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def epoch_packs(examples, length, seed, epoch):
    """Shuffle, then first fit, longest first, within pools of 1024 examples: rows of at most `length` tokens."""
    rng = random.Random(f"{seed}/{epoch}")
    order = list(range(len(examples)))
    rng.shuffle(order)
    rows = []
    for s in range(0, len(order), 1024):
        pool = order[s : s + 1024]
        rows += [[pool[j] for j in row] for row in first_fit([len(examples[i][0]) for i in pool], length)]
    rng.shuffle(rows)
    return rows


def collate_packed(examples, idx, pad_id, length, device):
    """One row of `length` tokens: ids (1, length), mask (1, length - 1) aligned with targets, doc_start (1, length)."""
    ids, doc_start, _ = pack([examples[i][0] for i in idx], length, pad_id)
    mask = torch.zeros(1, length, dtype=torch.bool)
    mask[0, : sum(len(examples[i][1]) for i in idx)] = torch.tensor([m for i in idx for m in examples[i][1]])  # each mask[0] is False:
    return to_device(ids, device), mask[:, 1:], to_device(doc_start, device)  # no example is trained to follow the one before it


def collate(examples, idx, pad_id, device):
    T = max(len(examples[i][0]) for i in idx)
    ids = torch.full((len(idx), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(idx), T, dtype=torch.bool)
    for row, i in enumerate(idx):
        seq, m = examples[i]
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = torch.tensor(m)
    return to_device(ids, device), mask[:, 1:]  # mask aligned with targets ids[:, 1:], kept on the host (sequence_loss)


def sequence_loss(model, ids, target_mask, device, doc_start=None):
    """
    Summed negative log-likelihood of the masked targets, and their count. target_mask on the host: the
    head finds its positions there, and the copies go through pinned memory (model.to_device), so that
    no micro-batch waits for the GPU to finish the one before it.
    """
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
        logprobs = token_logprobs(model, ids, doc_start=doc_start, needed=target_mask)  # (B, T - 1): the head only where trained
    target_mask = to_device(target_mask, ids.device)
    return -(logprobs * target_mask).sum(), target_mask.sum()


@torch.no_grad()
def validation_loss(model, examples, batch_size, pad_id, device):
    model.eval()
    total, count = 0.0, 0
    starts = range(0, len(examples), batch_size)
    for k in distributed.lockstep(distributed.round_robin(len(starts))):  # one process: every batch, in order
        s = starts[0 if k is None else k]  # None: this rank is out of batches but must join the others' forward
        ids, mask = collate(examples, list(range(s, min(s + batch_size, len(examples)))), pad_id, device)
        loss, n = sequence_loss(model, ids, mask, device)
        if k is not None:
            total, count = total + loss.item(), count + n.item()
    total, count = distributed.all_sum(total, count)
    model.train()
    return total / count


def lr_at(step, args, total_steps):
    """Linear warm-up, then cosine decay to min_lr_ratio * lr."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, (step - args.warmup) / max(1, total_steps - args.warmup))
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


# arguments that must match for --resume to continue the same run
RUN_IDENTITY = ("model", "data", "window", "sinks", "full_layers", "all_tokens", "max_len", "batch_size", "pack", "grad_accum",
                "lr", "min_lr_ratio", "warmup", "weight_decay", "epochs", "max_steps", "seed")


def main(argv=None):
    args = get_args(argv)
    world = distributed.setup(args)  # 1 unless torchrun started several processes
    out, log_file = start_run(args)

    # 1. the model, converted to SWA (weights in float32; bf16 autocast on GPU)
    model, tokenizer = load_model(args.model, args.window, args.sinks, args.full_layers, args.device, torch.float32)
    model.impl, model.checkpointing = args.impl, args.checkpointing
    if args.compile:
        compile_for_training(model)
    context = model.config.max_position_embeddings
    args.max_len = args.max_len or context
    if args.max_len > context:
        print(f"note: --max-len {args.max_len} exceeds the model's context {context}; using {context}")
        args.max_len = context
    if args.pack and args.pack < args.max_len:  # an example must fit its row
        print(f"note: --max-len {args.max_len} lowered to --pack {args.pack}")
        args.max_len = args.pack
    windows = [w for w in model.config.layer_windows if w is not None]
    if windows and max(windows) >= args.max_len:
        print(f"note: window {max(windows)} >= --max-len {args.max_len}: SWA equals full attention on this data")

    # 2. data
    need = ("prompt", "response")
    train_records, val_source = load_split(args.data, "sft", need), args.eval_data or "synthetic val"
    if args.data and not args.eval_data:  # real data is never validated on the synthetic task
        train_records, val_records = hold_out(train_records, args.eval_size, args.seed)
        val_source = f"{args.eval_size} records held out of {args.data}"
        print(f"note: no --eval-data: validating on {val_source} (not trained on)")
    else:
        val_records = load_split(args.eval_data, "val", need)[: args.eval_size]
    train, skipped = tokenize(train_records, tokenizer, args.max_len, args.all_tokens, args.data or "synthetic sft")
    val, _ = tokenize(val_records, tokenizer, args.max_len, args.all_tokens, val_source)
    if skipped:
        print(f"note: skipped {skipped} training examples longer than --max-len {args.max_len}")
    pad_id = tokenizer.eos_id

    def batches_of(epoch):  # the epoch's micro-batches, each a list of example indices
        return epoch_packs(train, args.pack, args.seed, epoch) if args.pack else epoch_batches(train, args.batch_size, args.seed, epoch)

    batches_per_epoch = len(batches_of(0))
    total_steps = args.max_steps or args.epochs * batches_per_epoch // args.grad_accum
    if total_steps < 1:
        raise ValueError(f"nothing to train: {len(train)} examples give {batches_per_epoch} batches for --grad-accum {args.grad_accum}")

    # 3. optimizer, and the state to resume from
    if world > 1:  # each rank keeps 1/world of the weights, gradients and optimizer state (distributed.shard)
        distributed.shard(model, args.device)
    optimizer = make_optimizer(model, args.lr, args.weight_decay, args.device)
    step, epoch, pos, saved_step = 0, 0, 0, None
    if args.resume:
        ckpt = resume(out, model, optimizer, args, RUN_IDENTITY)
        pos = ckpt.get("pos", ckpt.get("batch_pos"))  # batch_pos: checkpoints written before 2026-12
        step, epoch, saved_step = ckpt["step"], ckpt["epoch"], ckpt["step"]
    batches = EpochIterator(batches_of, epoch, pos)
    if args.resume:  # where a resumed run begins; a new run's first record says "start" (readers keep the last record per step)
        log(log_file, {"event": "resume", "from_step": step, "out": str(out)})

    def save(final=False):
        return save_run(out, model, tokenizer, args, optimizer, saved_step, step=step, epoch=batches.epoch, pos=batches.pos, final=final)

    # 4. train
    model.train()
    val_loss = validation_loss(model, val, args.batch_size, pad_id, args.device) if step == 0 else None
    if val_loss is not None:
        log(log_file, {"step": 0, "event": "start", "val_loss": val_loss, "val_data": val_source})
        print(f"step 0: val loss {val_loss:.4f}")
    bar = tqdm(total=total_steps, initial=step, desc="sft", dynamic_ncols=True, disable=distributed.silent_rank())
    record, first_step, trained_tokens = {}, step, 0
    while step < total_steps:
        t0 = time.perf_counter()
        lr = lr_at(step, args, total_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        micro = [next(batches) for _ in range(args.grad_accum)]  # the step's micro-batches, crossing into the next epoch if needed
        # the loss is a mean over the whole step; every rank draws the same micro-batches, so this is the global count
        n_targets = sum(sum(train[i][1]) for idx in micro for i in idx)
        tokens = sum(len(train[i][0]) for idx in micro for i in idx)  # real tokens, padding not counted
        total_loss = 0.0
        for idx in micro[distributed.rank() :: world]:  # this rank's share; the ranks' gradients are summed (FSDP)
            ids, mask, *doc_start = collate_packed(train, idx, pad_id, args.pack, args.device) if args.pack else collate(train, idx, pad_id, args.device)
            loss, _ = sequence_loss(model, ids, mask, args.device, *doc_start)
            (loss / n_targets).backward()
            total_loss = total_loss + loss.detach()  # summed on the device: one host sync per step, not per micro-batch
        loss_value = distributed.all_sum(total_loss).item() / n_targets
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip).item()
        for what, value in (("loss", loss_value), ("gradient norm", grad_norm)):  # a diverged step is never taken
            if not math.isfinite(value):
                raise diverged(what, value, step, out, saved_step)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step, trained_tokens = step + 1, trained_tokens + tokens
        dt = time.perf_counter() - t0
        record = {"step": step, "epoch": batches.epoch, "loss": loss_value, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": tokens / dt, "sec": dt}
        if world > 1:
            record["world_size"] = world  # tokens_per_s is over all ranks
        if args.device.startswith("cuda"):
            record["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        if step % args.eval_every == 0 or step == total_steps:
            record["val_loss"] = validation_loss(model, val, args.batch_size, pad_id, args.device)
        log(log_file, record)
        bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{tokens / dt:.0f}", **({"val": f"{record['val_loss']:.3f}"} if "val_loss" in record else {}))
        bar.update(1)
        if step % args.save_every == 0 and step < total_steps:
            saved_step = save()
    bar.close()
    save(final=True)
    print(f"sft: {step - first_step} updates in this run ({trained_tokens:,} tokens trained), step {step} of {total_steps}"
          + (f", loss {record['loss']:.4f}, val loss {record['val_loss']:.4f}" if "val_loss" in record else "") + f"; wrote {out}")
    if args.export_hf:
        export_hf(model, args.export_hf, tokenizer)
    return model


if __name__ == "__main__":
    run_main(main)
