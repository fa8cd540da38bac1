"""
Several processes, one per GPU, launched by torchrun: the few pieces sft.py, rl.py and evaluate.py
need for it, in one place.

    torchrun --nproc_per_node 4 sft.py ...        # one node, 4 GPUs
    python sft.py ...                             # one process: nothing here runs beyond a check

- setup(): joins the process group (NCCL on CUDA, gloo on CPU), gives each rank its GPU, keeps
  stdout and progress bars to rank 0. Without torchrun (or with one process) it returns 1 and does
  nothing else, so the single-process path is exactly what it was.
- shard(): FSDP2 (torch.distributed.fsdp.fully_shard) per block and at the root, parameters in
  bf16 and gradients reduced in float32 on CUDA, float32 throughout on CPU. Gradients are summed
  over ranks, not averaged: every stage normalises its loss by the GLOBAL token count, so the sum
  is the single-process gradient of the same global batch.
- full weights where a rank needs them: full_copy() (the RL sampler), full_tensor() (its refresh),
  gather_state() / load_state() (checkpoints: one file format, a full state dict, whatever the
  world size; rank 0 writes it).
- all_sum / all_max / gather_objects: the reductions of counts and metrics; lockstep(): every rank
  runs as many forwards as the busiest one, since FSDP's gathers and reductions are collective.
"""
import dataclasses
import os
import sys
import time

import torch
import torch.distributed as dist


def launched():
    """Started by torchrun with more than one process (WORLD_SIZE=1 runs the single-process path)."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def env_world_size():
    """The world size torchrun announces, known before the process group exists (for usage errors)."""
    return int(os.environ.get("WORLD_SIZE", "1")) if "RANK" in os.environ else 1


def check_divisible(p, flag, value, why):
    """A usage error unless torchrun's world size (known before anything starts) divides `value`."""
    world = env_world_size()
    if value % world:
        p.error(f"{flag} {value} (over all ranks) is not divisible by the {world} ranks: use a multiple of {world} ({why})")


def enabled():
    return dist.is_available() and dist.is_initialized()


def rank():
    return dist.get_rank() if enabled() else 0


def world_size():
    return dist.get_world_size() if enabled() else 1


def is_main():
    return rank() == 0


def setup(args):
    """Join the process group under torchrun; -> the world size (1 without torchrun: nothing done).
    args.device becomes this rank's GPU on CUDA. A device count the machine lacks is a one-line
    error from local rank 0, and every rank exits."""
    if not launched():
        return 1
    local, per_node = int(os.environ["LOCAL_RANK"]), int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    cuda = str(args.device).startswith("cuda")
    if cuda:
        have = torch.cuda.device_count()
        if per_node > have:  # every rank of this machine sees the same count: all exit, one says why
            if local == 0:
                print(f"error: torchrun started {per_node} processes on this machine, which has {have} GPU(s): "
                      f"use --nproc_per_node {have} at most", file=sys.stderr)
            raise SystemExit(2)
        torch.cuda.set_device(local)
        args.device = f"cuda:{local}"
    dist.init_process_group("nccl" if cuda else "gloo", **({"device_id": torch.device(args.device)} if cuda else {}))
    if rank() != 0:  # logs and summaries from rank 0 only; errors (stderr) from every rank
        sys.stdout = open(os.devnull, "w")
    return world_size()


def teardown():
    if enabled():
        # every rank done before any tears down: a rank that left while its peer still wrote its checkpoint
        # sometimes aborted at exit (SIGABRT, "terminate called without an active exception", gloo)
        dist.barrier()
        dist.destroy_process_group()


def error_line(e):
    """run_main's one-line error. Under torchrun it names the rank; other ranks wait a moment first, so
    that an error every rank meets (bad data, a diverged loss) is printed once, by rank 0, before
    torchrun stops them all, while an error of one rank alone still shows."""
    if not launched():
        return f"error: {e}"
    r = int(os.environ["RANK"])
    if r != 0:
        time.sleep(3)
    return f"error: [rank {r}] {e}"


def stderr():
    """Where a message every rank meets alike goes: stderr on rank 0, the silenced stdout elsewhere."""
    return sys.stderr if is_main() else sys.stdout


def silent_rank():
    """For tqdm's disable=: bars from rank 0 only."""
    return int(os.environ.get("RANK", "0")) != 0 and launched()


# ----------------------------------------------------------------------------------------------
# collectives on small values: sums, maxima, Python objects


def all_sum(*values):
    """Sum numbers (or one tensor) over ranks; one process: returned as they are. -> the same shape of result."""
    if not enabled():
        return values[0] if len(values) == 1 else values
    if len(values) == 1 and torch.is_tensor(values[0]):
        t = values[0].detach().clone()
        dist.all_reduce(t)
        return t
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device_of_group())
    dist.all_reduce(t)
    out = [type(v)(x) if isinstance(v, int) else x for v, x in zip(values, t.tolist())]
    return out[0] if len(out) == 1 else tuple(out)


def all_max(value):
    if not enabled():
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=device_of_group())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return type(value)(t.item())


def gather_objects(obj):
    """[obj of rank 0, obj of rank 1, ...] on every rank (pickled: for small things)."""
    if not enabled():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def device_of_group():
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def block(items):
    """This rank's contiguous share of a list whose length the world size divides (a step's prompts: a
    group never spans ranks, and rank order is the single-process row order)."""
    n = len(items) // world_size()
    return items[rank() * n : (rank() + 1) * n]


def round_robin(n):
    """The indices of range(n) this rank handles: r, r + W, r + 2W, ..."""
    return range(rank(), n, world_size())


def lockstep(items):
    """items padded with None to the longest list of any rank: a sharded model runs a forward (and
    backward) per item on every rank at once, so a rank with fewer (or none) runs empty ones."""
    if not enabled():
        return list(items)
    items = list(items)
    return items + [None] * (all_max(len(items)) - len(items))


# ----------------------------------------------------------------------------------------------
# FSDP2


def shard(model, device, reshard_after_forward=None):
    """
    Shard `model` (model.Model) over all ranks with FSDP2, in place: each block is one unit (its
    weights gathered just before it runs), the embeddings, final norm and head are the root's.

    Mixed precision: bf16 parameters for compute, float32 master weights (what the optimizer
    steps) and float32 gradient reduction on CUDA; on CPU (the gloo tests) float32 throughout.
    reshard_after_forward: True frees each block's gathered weights after its forward and gathers
    them again in the backward (least memory: ZeRO-3); False keeps them from forward to backward (one
    all-gather per block and step fewer, at the cost of the whole model's bf16 weights per GPU).
    None picks False while those weights take under an eighth of the GPU (small models, where the
    extra gather is pure overhead), True otherwise (large ones, where the memory is the point).
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

    cuda = str(device).startswith("cuda")
    if reshard_after_forward is None:
        bf16_bytes = 2 * sum(p.numel() for p in model.parameters())
        reshard_after_forward = cuda and bf16_bytes > torch.cuda.get_device_properties(device).total_memory / 8
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if cuda else MixedPrecisionPolicy()
    mesh = init_device_mesh("cuda" if cuda else "cpu", (world_size(),))
    for layer in model.layers:
        fully_shard(layer, mesh=mesh, mp_policy=mp, reshard_after_forward=reshard_after_forward)
    fully_shard(model, mesh=mesh, mp_policy=mp)  # the root stays gathered after its forward: the head needs it next
    register_fsdp_forward_method(model, "hidden_states")  # token_logprobs calls hidden_states, not forward
    for m in model.modules():
        if isinstance(m, FSDPModule):  # a sum over ranks (SUM collectives only: gloo has no PREMUL_SUM)
            m.set_gradient_divide_factor(1.0)
            m.set_force_sum_reduction_for_comms(True)
    return model


def sharded(model):
    from torch.distributed.fsdp import FSDPModule
    return isinstance(model, FSDPModule)


def full_tensor(t):
    """The whole tensor of a sharded (DTensor) one, gathered on every rank; a plain tensor as it is."""
    from torch.distributed.tensor import DTensor
    return t.full_tensor() if isinstance(t, DTensor) else t


def gather_state(model, optimizer=None, everyone=False):
    """
    The full state dict of a sharded model (and, given, the optimizer's, in the single-process format
    of optimizer.state_dict(): state by parameter index), gathered tensor by tensor and moved to the
    CPU -> (weights, optimizer state, names of weights holding NaN or inf). Only rank 0 keeps the
    dicts (None elsewhere) unless `everyone`; the non-finite check is made on every rank alike.
    """
    keep = everyone or is_main()
    weights, bad = {}, []
    for name, t in model.state_dict().items():
        full = full_tensor(t)  # collective: every rank, same order
        if full.is_floating_point() and not torch.isfinite(full).all():
            bad.append(name)
        if keep:
            weights[name] = full.detach().cpu()
    opt = None
    if optimizer is not None:
        sd = optimizer.state_dict()
        state = {i: {k: full_tensor(v).detach().cpu() if torch.is_tensor(v) else v for k, v in s.items()}
                 for i, s in sorted(sd["state"].items())}
        opt = {"state": state, "param_groups": sd["param_groups"]} if keep else None
    return (weights if keep else None), opt, bad


def load_state(model, optimizer, weights, optimizer_state):
    """Full (single-process format) weights and optimizer state into a sharded model and its optimizer:
    each rank keeps its own shard of every tensor (no communication)."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    def local(full, like):
        if not isinstance(like, DTensor):
            return full.to(like.device)
        return distribute_tensor(full.to(like.device), like.device_mesh, like.placements, src_data_rank=None)

    with torch.no_grad():
        for name, p in model.state_dict().items():  # the parameters themselves (detached views): copied into in place
            full = weights[name].to(p.dtype)
            if isinstance(p, DTensor):
                p.to_local().copy_(local(full, p).to_local())
            else:
                p.copy_(full)
    if optimizer is None:
        return
    params = [p for g in optimizer.param_groups for p in g["params"]]
    state = {i: {k: local(v, params[i]) if torch.is_tensor(v) and v.dim() > 0 else v for k, v in s.items()}
             for i, s in optimizer_state["state"].items()}
    optimizer.load_state_dict({"state": state, "param_groups": optimizer_state["param_groups"]})


def full_copy(model, dtype, device):
    """A plain (unsharded) frozen copy of a sharded model on every rank, in `dtype` (the RL sampler:
    generation runs rank by rank, with no collectives, on full weights)."""
    from model import Model, hf_name

    weights, _, _ = gather_state(model, everyone=True)
    with torch.device("meta"):
        copy = Model(model.config)
    copy.load_weights({hf_name(k): v for k, v in weights.items()}, device, dtype)  # rotary frequencies stay float32
    copy.impl = model.impl
    return copy.eval().requires_grad_(False)


def gather_step(gen, texts, rewards, keep, zero_std, done, gen_s, reward_s):
    """Every rank's rollout, rewards and update sums, merged as one process would have them (for step_metrics)."""
    parts = gather_objects((gen.tokens.cpu(), gen.logprobs.cpu(), gen.mask.cpu(), gen.truncated.cpu(), texts,
                                        rewards, keep, zero_std, done, gen_s, reward_s))
    N = max(p[0].shape[1] for p in parts)
    pad = lambda t: torch.nn.functional.pad(t, (0, N - t.shape[1]))  # (B_r, N_r) -> (B_r, N): rows end where their mask does
    gen = dataclasses.replace(gen, tokens=torch.cat([pad(p[0]) for p in parts]), logprobs=torch.cat([pad(p[1]) for p in parts]),
                              mask=torch.cat([pad(p[2]) for p in parts]), truncated=torch.cat([p[3] for p in parts]), prompt_rows=None)
    merged = dict(parts[0][8])
    for key in ("loss", "clipped", "kl", "tis_weight", "tis_capped", "train_tokens"):  # sums over ranks
        merged[key] = sum(p[8][key] for p in parts)
    merged["diff_by_pos"] = {k: [sum(p[8]["diff_by_pos"][k][i] for p in parts) for i in (0, 1)] for k in merged["diff_by_pos"]}
    merged["fwd_s"], merged["update_s"] = max(p[8]["fwd_s"] for p in parts), max(p[8]["update_s"] for p in parts)
    return (gen, [t for p in parts for t in p[4]], torch.cat([p[5] for p in parts]), torch.cat([p[6] for p in parts]),
            torch.cat([p[7] for p in parts]), merged, max(p[9] for p in parts), max(p[10] for p in parts))
