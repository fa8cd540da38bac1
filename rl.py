"""
Stage 2 of SWARR: adapt the SFT'd sliding-window model with on-policy GRPO on math prompts, so it
learns reasoning that fits its window (on the synthetic task: the carry-forward style, whose every
step reads only the line before it, over look-back, which reads past the window).

    python rl.py                                                     # out/sft.pt, synthetic task
    python rl.py --model out/sft.pt --data gsm8k_rl.jsonl --eval-data gsm8k_val.jsonl \\
        --prompts-per-step 64 --group-size 8 --max-new-tokens 1024 --lr 1e-6 --micro-batch 8 --checkpointing

Data: JSON lines {"prompt", "answer", ...} (data/convert.py); by default the synthetic task's RL
split (data.synthetic.DEFAULT_TASK's rl_steps: the difficulties where look-back reaches past the
window). Held-out accuracy: greedy and sampled pass@1 on --eval-data (default: the synthetic
validation problems of those difficulties; the test sets are left to evaluate.py).

One step (grpo_step), each part a function below:
  1. rollout: sample G completions for each of P prompts with generate.generate, the rolling SWA
     cache: the policy samples under the same attention it is trained with;
  2. score: reward each with reward.math_reward; advantage = reward - mean reward of its group;
  3. update: a token-level policy-gradient loss over every kept completion token of the step
     (divided by their count, as Dr. GRPO and DAPO do), from log-probs of a training forward at the
     sampling temperature. One epoch and one minibatch (the default) is plain on-policy REINFORCE
     with a group baseline; --ppo-epochs / --minibatches > 1 reuse the samples with DAPO's clipped
     ratio, and --kl-beta adds a KL penalty to the initial policy;
  4. metrics.

Writes out/rl.pt atomically every --save-every steps and at the end; --resume continues it exactly
(optimizer, step, data position, RNG; sampling seeds derive from (seed, step)). Metrics go to a
JSON-lines log beside it.
"""
import argparse
import dataclasses
import functools
import math
import random
from pathlib import Path

import torch
from tqdm import tqdm

import distributed
from checkpoint import (ArgumentParser, Timer, add_model_args, add_run_args, check_at_least_one, check_model_args, check_run_outputs,
                        export_hf, load_model, load_model_under, log, resume, run_main, save_run, start_run, still_good)
from data import EpochIterator, epoch_order, hold_out, load_split
from data.synthetic import DEFAULT_TASK, detect_style, is_synthetic
from generate import completions, generate, generate_continuous, kv_cache_bytes, sample_completions
from model import compile_for_training, first_fit, fuse_projections, inference_copy, make_optimizer, pairs_logprobs, to_device
from reward import MODES, math_reward, parse_gold


def get_args(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, model="out/sft.pt")
    p.add_argument("--init", dest="model", help=argparse.SUPPRESS)  # the old name of --model
    add_run_args(p, out="out/rl.pt")
    p.add_argument("--data", default=None, help="RL prompts, JSON lines with prompt and answer; default: the synthetic RL split")
    p.add_argument("--eval-data", default=None, help="comma-separated JSON-lines files; default: the synthetic validation problems of the RL difficulties")
    # sampling
    p.add_argument("--prompts-per-step", type=int, default=8,
                   help="P, over all ranks; P * G samples per step (8 * 8 fits a CPU); torchrun: P / ranks prompts' groups per rank")
    p.add_argument("--group-size", type=int, default=8, help="G samples per prompt")
    p.add_argument("--max-new-tokens", type=int, default=384, help="room for the synthetic carry-forward answer, k^2 + 2k + 8 chars (296 at k=16)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    # the objective
    p.add_argument("--reward-mode", choices=MODES, default="strict",
                   help="strict: only a trusted answer form scores (\\boxed, ####, 'the answer is', 'Answer:'); flexible: "
                        "else the last number too, which a policy can farm by scattering numbers (reward.py)")
    p.add_argument("--std-norm", action="store_true", help="divide advantages by the group's std (GRPO's z-score)")
    p.add_argument("--skip-zero-std", action=argparse.BooleanOptionalAction, default=True,
                   help="drop groups whose rewards are all equal (no signal) from the loss and its token count")
    p.add_argument("--mask-truncated", action="store_true", help="no gradient for completions cut at --max-new-tokens")
    p.add_argument("--ppo-epochs", type=int, default=1, help="passes over each step's samples")
    p.add_argument("--minibatches", type=int, default=1, help="optimizer steps per pass")
    p.add_argument("--clip-low", type=float, default=0.2)
    p.add_argument("--clip-high", type=float, default=0.28, help="DAPO's clip-higher: more room to raise unlikely tokens")
    p.add_argument("--kl-beta", type=float, default=0.0, help="weight of a k3 KL penalty to the initial policy (or --kl-ref)")
    p.add_argument("--kl-ref", default=None, metavar="MODEL",
                   help="anchor the KL penalty to this model instead, run under the policy's attention (e.g. the base model before SFT)")
    p.add_argument("--tis-cap", type=float, default=2.0,
                   help="truncated importance sampling for a sampler that is not the trainer (GPU: a bf16 copy): each token's "
                        "policy gradient weighted by min(p_trainer / p_sampler, cap), as TRL and OpenRLHF do; 0: off")
    # optimisation
    p.add_argument("--lr", type=float, default=1e-4, help="for the synthetic model; ~1e-6 to 1e-5 for real LLMs")
    p.add_argument("--warmup", type=int, default=10, help="steps of linear warm-up, then constant")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--micro-batch", type=int, default=16, help="rows per training forward (gradients accumulate)")
    p.add_argument("--micro-batch-tokens", type=int, default=0,
                   help="instead: each training forward is one row of this many positions holding whole rows end to end "
                        "(model.pack): one shape for every forward, however long the responses (a multiple of 128; 0: off)")
    p.add_argument("--share-prompts", action="store_true",
                   help="each training forward holds a prompt once for all its rows, which read its keys and values "
                        "(model.pairs_logprobs; packed rows: model.pack_shared): the same log-probs, the prompt's "
                        "positions computed once, not group-size times (README)")
    p.add_argument("--rollout-slots", type=int, default=0,
                   help="continuous batching: this many cache rows, each refilled with the next row as it ends, every prompt "
                        "prefilled once (0: all of a step's rows at once, until the longest ends)")
    p.add_argument("--free-rollout-cache", action="store_true", help="free the rollout's KV cache and CUDA graphs after each step, "
                   "for training that needs the memory; by default they are kept for the next step (generate.decode_engine)")
    p.add_argument("--checkpointing", action="store_true", help="activation checkpointing per block")
    p.add_argument("--compile", action="store_true", help="torch.compile training blocks, the rollout's decode step and draw (GPU)")
    # evaluation during training
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--eval-size", type=int, default=64, help="prompts per eval file")
    p.add_argument("--eval-samples", type=int, default=4, help="samples per prompt for sampled pass@1")
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--impl", default="auto", help="attention implementation (swa_attention.py)")
    args = p.parse_args(argv)
    check_model_args(p, args)
    if args.group_size < 2:
        p.error(f"--group-size must be >= 2 (GRPO's baseline is the mean of a prompt's samples), got {args.group_size}")
    if args.temperature <= 0:
        p.error("--temperature must be > 0: GRPO trains on sampled completions")
    if args.kl_ref and args.kl_beta <= 0:
        p.error("--kl-ref is the KL penalty's reference: give --kl-beta > 0 too")
    check_at_least_one(p, args, "max_new_tokens", "prompts_per_step", "ppo_epochs", "minibatches", "micro_batch", "max_steps", "eval_every",
                       "eval_size", "eval_samples", "save_every")
    if min(args.clip_low, args.clip_high, args.kl_beta, args.tis_cap, args.micro_batch_tokens, args.rollout_slots) < 0 or args.clip_low >= 1:
        p.error("--clip-low must be in [0, 1), --clip-high, --kl-beta, --tis-cap, --micro-batch-tokens and --rollout-slots >= 0")
    if args.micro_batch_tokens % 128:
        p.error(f"--micro-batch-tokens must be a multiple of 128 (flex attention's block), got {args.micro_batch_tokens}")
    if args.lr <= 0 or args.grad_clip <= 0 or args.warmup < 0 or args.weight_decay < 0 or not 0 < args.top_p <= 1 or args.top_k < 0:
        p.error("--lr and --grad-clip must be > 0, --warmup, --weight-decay and --top-k >= 0, --top-p in (0, 1]")
    distributed.check_divisible(p, "--prompts-per-step", args.prompts_per_step, "a prompt's group never spans ranks")
    check_run_outputs(p, args)
    return args


# ----------------------------------------------------------------------------------------------
# data: records -> prompt token ids and gold answers


def prepare(records, tokenizer, max_new_tokens, context, source):
    """[(where, record)] -> (prompt token lists, gold answers, synthetic?). Drops, and reports, what cannot be used."""
    prompts, golds, bad, too_long = [], [], [], 0
    for where, r in tqdm(records, desc=f"prepare {source}", delay=2, leave=False, disable=distributed.silent_rank()):
        if parse_gold(r["answer"]) is None:  # the grader could never score it 1: noise, not signal
            bad.append(f"{where} {r['prompt'][:60]!r}")
            continue
        ids = tokenizer.encode(tokenizer.render_prompt(r["prompt"]))
        if len(ids) + max_new_tokens > context:
            too_long += 1
            continue
        prompts.append(ids)
        golds.append(r["answer"])
    if bad:
        print(f"note: {source}: dropped {len(bad)} of {len(records)} prompts whose gold answer reward.py cannot parse: {'; '.join(bad[:3])}")
    if too_long:
        print(f"note: {source}: dropped {too_long} prompts longer than the context {context} minus --max-new-tokens")
    if not prompts:
        raise ValueError(f"{source}: no usable prompts ({len(bad)} without a parseable gold answer, {too_long} too long)")
    return prompts, golds, is_synthetic([r for _, r in records])


DIFF_BINS = ((0, 256), (256, 1024), (1024, 4096), (4096, 1 << 30))  # response positions logp_diff is reported by


def seed_of(*parts):
    """A 63-bit seed from (seed, step, ...): a resumed run draws exactly what an uninterrupted one would."""
    return random.Random("/".join(map(str, parts))).getrandbits(63)


# ----------------------------------------------------------------------------------------------
# the loss


def policy_loss(logp, old_logp, advantages, mask, clip_low, clip_high, n_tokens, ref_logp=None, kl_beta=0.0, is_weight=None):
    """
    logp (B, N) with gradient, old_logp / ref_logp / is_weight (B, N) or None, advantages (B,), mask
    (B, N). -> (loss = sum over masked tokens of the per-token loss / n_tokens, detached token sums).

    Per token: -min(ratio * A, clip(ratio, 1 - clip_low, 1 + clip_high) * A), ratio = p / p_old,
    times is_weight (truncated importance sampling: the sampler is not exactly the trainer), plus
    kl_beta * k3 with k3 = exp(ref - logp) - (ref - logp) - 1 (Schulman's unbiased, positive KL
    estimator). old_logp None is on-policy: ratio = exp(logp - logp.detach()) = 1, whose gradient
    is A * grad logp, the plain policy gradient.
    """
    if old_logp is None:
        old_logp = logp.detach()
    log_ratio = torch.where(mask, logp - old_logp, 0.0)  # padding may hold anything: keep it out of exp
    ratio = log_ratio.exp()
    adv = advantages[:, None]
    clipped = ratio.clamp(1 - clip_low, 1 + clip_high) * adv
    per_token = -torch.minimum(ratio * adv, clipped)
    if is_weight is not None:
        per_token = per_token * is_weight
    stats = {"clipped": ((ratio * adv > clipped) & mask).sum(), "ratio_dev": ((ratio.detach() - 1).abs() * mask).sum()}
    if kl_beta > 0:
        d = torch.where(mask, ref_logp - logp, 0.0)
        k3 = d.exp() - d - 1
        per_token = per_token + kl_beta * k3
        stats["kl"] = (k3.detach() * mask).sum()
    return torch.where(mask, per_token, 0.0).sum() / n_tokens, stats


def completion_logprobs(model, prompts, gen, rows, temperature, packed=0, share=False):
    """
    Log-probs of the completion tokens of `rows` (R,) under `model`, (R, N) with N the longest of
    them (model.pairs_logprobs): prompt + completion right-padded, or all end to end in one row of
    `packed` positions; with `share` each prompt runs once for its rows.
    """
    lengths = gen.mask[rows].sum(1).tolist()
    tokens, prompt_of = gen.tokens[rows].tolist(), gen.prompt_rows[rows].tolist()  # read on the host (update passes a host copy)
    return pairs_logprobs(model, [(prompts[p], t[:n]) for p, t, n in zip(prompt_of, tokens, lengths)], temperature, packed, share)


# ----------------------------------------------------------------------------------------------
# one GRPO step


def micro_batches(rows, prompts, gen, args):
    """
    The training forwards of `rows` (R,): --micro-batch rows each, or with --micro-batch-tokens the
    rows that fill one packed row of that many positions (first fit, longest first); with
    --share-prompts a prompt's rows go together, as many as fit, their prompt counted once.
    """
    if not args.micro_batch_tokens:
        return rows.split(args.micro_batch)
    lengths, prompt_of = gen.mask[rows].sum(1).tolist(), gen.prompt_rows[rows].tolist()
    units, sizes = [], []  # the rows that go together, and the positions they fill: a row alone is its prompt + itself
    for i in sorted(range(len(rows)), key=prompt_of.__getitem__) if args.share_prompts else range(len(rows)):
        p, n = prompt_of[i], lengths[i]
        if args.share_prompts and units and prompt_of[units[-1][0]] == p and sizes[-1] + n + 1 <= args.micro_batch_tokens:
            units[-1].append(i)  # its prompt is there already: the row and its copy of the prompt's last token
            sizes[-1] += n + 1
        else:
            units.append([i])
            sizes.append(len(prompts[p]) + n)
    return [rows[torch.tensor([i for u in b for i in units[u]], device=rows.device)] for b in first_fit(sizes, args.micro_batch_tokens)]


def frozen_logprobs(policy, prompts, gen, rows, args, autocast):
    """The completion log-probs of `rows` under `policy`, without gradients -> (P * G, N), 0 elsewhere."""
    out = torch.zeros_like(gen.logprobs)
    micros = [m for m in micro_batches(rows, prompts, gen, args) if len(m)]
    with torch.no_grad(), autocast:
        for micro in distributed.lockstep(micros) if distributed.sharded(policy) else micros:
            lp, _ = completion_logprobs(policy, prompts, gen, FILLER if micro is None else micro, args.temperature,
                                        args.micro_batch_tokens, args.share_prompts)  # (R, N')
            if micro is not None:  # None: an empty turn of a rank with fewer rows, for the sharded policy's collectives
                out[micro, : lp.shape[1]] = lp
    return out


FILLER = torch.tensor([0])  # the row an empty turn runs (every rank has at least one group): its result is thrown away


def check_step_fits(sampler, prompts, args):
    """A step's longest row (the longest prompt + --max-new-tokens) must fit a packed row (--micro-batch-tokens), and
    on a GPU the step's KV cache in the free memory, or the run stops now, before any work, not mid-step."""
    longest = max(map(len, prompts)) + args.max_new_tokens
    if args.micro_batch_tokens and longest > args.micro_batch_tokens:
        raise ValueError(f"--micro-batch-tokens {args.micro_batch_tokens} cannot hold the longest prompt ({longest - args.max_new_tokens} "
                         f"tokens) + --max-new-tokens {args.max_new_tokens}: raise it, or lower --max-new-tokens")
    if not str(args.device).startswith("cuda"):
        return
    rows = args.prompts_per_step // distributed.world_size() * args.group_size
    rows = min(rows, args.rollout_slots or rows)  # continuous batching holds --rollout-slots rows, whatever the step's
    needed = rows * kv_cache_bytes(sampler.config, longest, sampler.embed_tokens.weight.element_size())
    free = torch.cuda.mem_get_info()[0]
    if needed > free:
        raise ValueError(f"a rollout of {rows} rows x (longest prompt + --max-new-tokens {args.max_new_tokens}) needs "
                         f"{needed / 2**30:.1f} GiB of KV cache, {free / 2**30:.1f} GiB are free: lower --prompts-per-step, "
                         "--group-size or --max-new-tokens, or use a window (its layers keep only W positions)")


def make_sampler(model, device):
    """
    The weights generation runs on. On CUDA, a bf16 copy refreshed after every update: decoding
    reads every weight per token, so half the bytes is nearly twice the speed, and the KV cache
    takes the weights' dtype (autocast cannot mix into it). Its log-probs then differ from the
    fp32-master / bf16-autocast training forward by rounding (logged as logp_diff), so reused
    samples take their old log-probs from the trainer. On CPU the policy itself: stored and
    recomputed log-probs agree to float32 rounding.
    """
    cuda = str(device).startswith("cuda")
    if distributed.sharded(model):  # several ranks: full weights gathered from the shards, refreshed the same way
        sampler = distributed.full_copy(model, torch.bfloat16 if cuda else torch.float32, device)
    else:
        sampler = inference_copy(model, torch.bfloat16) if cuda else model
    return fuse_projections(sampler) if cuda else sampler  # a copy, never the policy: fewer, larger decode products


def grpo_step(model, optimizer, prompts, golds, tokenizer, args, reward_fn, step, sampler=None, ref_model=None, synthetic=False):
    """
    One GRPO step on `prompts` (token-id lists) with gold answers `golds`; reward_fn(text, gold)
    -> float. Updates model (and sampler) in place; returns the step's metrics. Under torchrun,
    `prompts` are this rank's share: it samples, scores and takes advantages over its own groups;
    the loss is normalised by the kept tokens of all ranks and the metrics are over all ranks.
    """
    sampler = model if sampler is None else sampler
    timer = Timer(args.device)
    gen = rollout(sampler, prompts, tokenizer, args, step)
    model.train()
    timer("gen_s")
    texts = completions(tokenizer, gen)
    rewards = torch.tensor([reward_fn(text, golds[i // args.group_size]) for i, text in enumerate(texts)], dtype=torch.float32)
    timer("reward_s")
    advantages, keep, zero_std = group_advantages(rewards, gen, args)
    done = update(model, optimizer, prompts, gen, advantages, keep, args, step, sampler, ref_model, timer)
    done.update(timer.seconds())  # fwd_s, update_s (0 if no update ran), gen_s, reward_s
    gen_s, reward_s = done.pop("gen_s"), done.pop("reward_s")
    if distributed.world_size() > 1:  # the metrics of the whole step: every rank's rows, in rank order
        gen, texts, rewards, keep, zero_std, done, gen_s, reward_s = distributed.gather_step(gen, texts, rewards, keep, zero_std, done, gen_s, reward_s)
    return step_metrics(gen, texts, rewards, keep, zero_std, done, args, synthetic, gen_s, reward_s)


KEPT_DECODE = {}  # the rollout's KV cache and CUDA graphs, kept from one step to the next unless --free-rollout-cache


def rollout(sampler, prompts, tokenizer, args, step):
    """1. G completions per prompt; rows p*G .. p*G + G-1 belong to prompt p."""
    sampler.eval()  # also: checkpointing applies in training mode only, and would bypass the cache
    seed = seed_of(args.seed, step) if distributed.world_size() == 1 else seed_of(args.seed, step, distributed.rank())  # ranks draw apart
    # single rows refilled: a whole group would hold its G slots until its longest sample ends (BENCHMARKS.md: 2.9x, not 1.9x)
    engine = functools.partial(generate_continuous, slots=args.rollout_slots, unit=1) if args.rollout_slots else generate
    return engine(sampler, prompts, args.max_new_tokens, tokenizer.eos_ids, args.group_size, args.temperature, args.top_p,
                  args.top_k, seed=seed, compile=args.compile, keep=None if args.free_rollout_cache else KEPT_DECODE)


def group_advantages(rewards, gen, args):
    """
    2. advantages (P * G,): r - mean(r) of the group. No division by the group's std by default:
    Dr. GRPO (Liu et al. 2025) shows it weights groups by how (un)certain the prompt is, too easy or
    too hard ones (std near 0) most, a difficulty bias; --std-norm restores GRPO's z-score.
    -> (advantages, keep (P * G,): rows trained on, zero_std (P,): groups without signal).
    """
    r = rewards.view(-1, args.group_size)  # (P, G)
    advantages = r - r.mean(1, keepdim=True)
    if args.std_norm:
        advantages = advantages / (r.std(1, keepdim=True) + 1e-4)
    zero_std = r.max(1).values == r.min(1).values  # (P,) every sample scored alike: no signal
    keep = (~zero_std[:, None].expand(-1, args.group_size) if args.skip_zero_std else torch.ones(r.shape, dtype=torch.bool)).reshape(-1)  # (P * G,)
    if args.mask_truncated:
        keep &= ~gen.truncated.cpu()
    return advantages.reshape(-1).to(gen.tokens.device), keep, zero_std


def update(model, optimizer, prompts, gen, advantages, keep, args, step, sampler, ref_model, timer):
    """
    3. --ppo-epochs passes of --minibatches optimizer steps over the kept rows, --micro-batch rows
    per forward. The default (one pass, one minibatch) is on-policy: one optimizer step whose ratio
    is exp(logp - logp.detach()) = 1 by construction. -> the sums step_metrics reports.
    """
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=str(args.device).startswith("cuda"))
    # lengths and tokens copied to the host once: the loop never waits for the GPU, so the host prepares the next micro-batch meanwhile
    host = dataclasses.replace(gen, tokens=gen.tokens.cpu(), mask=gen.mask.cpu(), prompt_rows=gen.prompt_rows.cpu())
    kept, device = keep.nonzero()[:, 0], gen.tokens.device
    # -- off-policy parts: reused samples need the policy's log-probs from before any update (a bf16
    #    sampler's own are off by rounding, logp_diff); a KL penalty needs the initial policy's
    reuse = args.ppo_epochs > 1 or args.minibatches > 1
    # a float32 copy (the sampler of several CPU ranks) samples exactly what the policy would: nothing to correct
    tis = sampler is not model and args.tis_cap > 0 and sampler.embed_tokens.weight.dtype != torch.float32
    old_logp = ref_logp = None
    if reuse:
        old_logp = gen.logprobs if sampler is model else frozen_logprobs(model, prompts, host, kept, args, autocast)
    if args.kl_beta > 0 and len(kept):  # once per step
        ref_logp = frozen_logprobs(ref_model, prompts, host, kept, args, autocast)
    shuffle = torch.Generator().manual_seed(seed_of(args.seed, step, "minibatches"))
    # -- the update; sums stay on the GPU (a copy to the host would wait for it) until each optimizer step
    done = dict(loss=0.0, clipped=0, kl=0.0, tis_weight=0.0, tis_capped=0, train_tokens=0, grad_norms=[], ratio_dev=[], fwd_s=0.0, update_s=0.0)
    diff = torch.zeros(len(DIFF_BINS), 2, device=device)  # sum |logp_sampler - logp_trainer| and tokens, by position
    for epoch in range(args.ppo_epochs):
        dev, dev_tokens = 0.0, 0
        order = kept[torch.randperm(len(kept), generator=shuffle)] if reuse else kept
        for minibatch in order.tensor_split(args.minibatches):
            mb_tokens = distributed.all_sum(int(host.mask[minibatch].sum()))  # each optimizer step's loss is a mean over its tokens (all ranks')
            if mb_tokens == 0:  # nothing kept (every group skipped, or all truncated) on any rank: no step at all
                continue
            mb_loss = 0.0
            for micro in distributed.lockstep(micro_batches(minibatch, prompts, host, args) if len(minibatch) else []):
                with autocast:  # micro None: this rank has no rows (left) in this minibatch, but the sharded model's gathers
                    logp, numel = completion_logprobs(model, prompts, host, FILLER if micro is None else micro, args.temperature,
                                                      args.micro_batch_tokens, args.share_prompts)  # (R, N)
                if micro is None:  # and gradient reductions need every rank: an empty turn
                    (logp.sum() * 0.0).backward()
                    continue
                N, tokens = logp.shape[1], int(host.mask[micro].sum())
                micro = to_device(micro, device)
                mask = gen.mask[micro, :N]
                is_weight = None
                if tis:  # -- off-policy part: the sampler is a bf16 copy
                    trainer_logp = logp.detach() if old_logp is None else old_logp[micro, :N]
                    weight = torch.where(mask, trainer_logp - gen.logprobs[micro, :N], 0.0).exp()  # p_trainer / p_sampler
                    is_weight = weight.clamp(max=args.tis_cap)
                    done["tis_weight"] = done["tis_weight"] + (is_weight * mask).sum()
                    done["tis_capped"] = done["tis_capped"] + ((weight > args.tis_cap) & mask).sum()
                loss, stats = policy_loss(logp, None if old_logp is None else old_logp[micro, :N], advantages[micro], mask,
                                          args.clip_low, args.clip_high, mb_tokens,
                                          None if ref_logp is None else ref_logp[micro, :N], args.kl_beta, is_weight)
                timer("fwd_s")
                loss.backward()
                timer("update_s")
                if not done["grad_norms"]:  # before the first update: how far the sampler's log-probs are from the trainer's
                    gap = (logp.detach() - gen.logprobs[micro, :N]).abs() * mask
                    diff += torch.stack([torch.stack([gap[:, lo:hi].sum(), mask[:, lo:hi].sum()]) for lo, hi in DIFF_BINS])
                mb_loss, dev, dev_tokens = mb_loss + loss.detach(), dev + stats["ratio_dev"], dev_tokens + tokens
                done["clipped"], done["kl"] = done["clipped"] + stats["clipped"], done["kl"] + stats.get("kl", 0.0)
                done["train_tokens"] += numel  # prompt + completion positions of the forward, padding included
            mb_loss = float(mb_loss)  # the first wait for the GPU in this optimizer step
            if not math.isfinite(mb_loss):
                raise FloatingPointError(f"loss is {mb_loss} at step {step + 1}: stopped before the optimizer step")
            done["loss"] += mb_loss * mb_tokens
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip).item()
            if not math.isfinite(grad_norm):
                raise FloatingPointError(f"gradient norm is {grad_norm} at step {step + 1}: stopped before the optimizer step")
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if sampler is not model:
                with torch.no_grad():
                    for s, p in zip(sampler.parameters(), model.parameters()):
                        s.copy_(distributed.full_tensor(p))  # sharded: gathered by every rank
            done["grad_norms"].append(grad_norm)
            timer("update_s")
        dev, dev_tokens = distributed.all_sum(float(dev), dev_tokens)
        done["ratio_dev"].append(dev / max(1, dev_tokens))
    done.update({k: float(done[k]) for k in ("clipped", "kl", "tis_weight", "tis_capped")})
    done["diff_by_pos"] = {f"{lo}-{hi}": [d, int(n)] for (lo, hi), (d, n) in zip(DIFF_BINS, diff.tolist())}
    return done


def step_metrics(gen, texts, rewards, keep, zero_std, done, args, synthetic, gen_s, reward_s):
    """4. what the step did: rewards, lengths, the update's loss and norms, where the time went."""
    lengths = gen.mask.sum(1).float()
    n_tokens = int(gen.mask[keep.to(gen.mask.device)].sum())  # the kept completion tokens the loss averaged over
    seen = max(1, n_tokens * args.ppo_epochs)
    grad_norms, diffs = done["grad_norms"], done["diff_by_pos"].values()
    metrics = {
        "reward": rewards.mean().item(),
        "accuracy": (rewards == 1.0).float().mean().item(),
        "zero_std_share": zero_std.float().mean().item(),
        "kept_share": keep.float().mean().item(),
        "truncated_share": gen.truncated.float().mean().item(),
        "len_mean": lengths.mean().item(),
        "len_max": int(lengths.max().item()),
        # minus the mean log-prob of the sampled tokens: a one-sample estimate of the entropy per token
        "entropy": -(gen.logprobs * gen.mask).sum().item() / gen.mask.sum().item(),
        "loss": done["loss"] / seen if grad_norms else None,
        "grad_norm": sum(grad_norms) / len(grad_norms) if grad_norms else None,
        "updates": len(grad_norms),
        "tokens": n_tokens,
        # mean |log p_sampler - log p_trainer| per token, overall and by position in the response: 0 up to
        # float rounding when the policy samples itself (CPU), bf16 rounding that grows along a response otherwise
        "logp_diff": sum(v[0] for v in diffs) / max(1, sum(v[1] for v in diffs)) if any(v[1] for v in diffs) else None,
        "logp_diff_by_pos": {k: v[0] / v[1] for k, v in done["diff_by_pos"].items() if v[1]},
        "clip_share": done["clipped"] / seen,
        "ratio_dev": done["ratio_dev"],  # per epoch, mean |ratio - 1|: 0 for on-policy, > 0 once samples are reused
        "gen_tokens_per_s": gen.mask.sum().item() / gen_s,
        "train_tokens_per_s": done["train_tokens"] / max(1e-9, done["fwd_s"] + done["update_s"]),
        "gen_s": gen_s, "reward_s": reward_s, "fwd_s": done["fwd_s"], "update_s": done["update_s"],
        "sec": gen_s + reward_s + done["fwd_s"] + done["update_s"],
    }
    if args.kl_beta > 0:
        metrics["kl"] = done["kl"] / seen if grad_norms else None  # k3, over the tokens trained on
    if done["tis_weight"]:  # truncated importance sampling: the mean weight, and how often the cap cut it
        metrics["tis_weight"], metrics["tis_capped_share"] = done["tis_weight"] / seen, done["tis_capped"] / seen
    if synthetic:
        metrics["carry_share"] = sum(detect_style(t) == "carry" for t in texts) / len(texts)
    return metrics


# ----------------------------------------------------------------------------------------------
# held-out accuracy


@torch.no_grad()
def evaluate(sampler, eval_sets, tokenizer, args, reward_fn):
    """Greedy accuracy and sampled pass@1 (the mean over --eval-samples samples) per eval set, a training step's prompts per batch."""
    sampler.eval()
    out, P, n = {}, args.prompts_per_step, args.eval_samples
    for name, (prompts, golds, synthetic) in eval_sets.items():  # torchrun: batches shared out, the same draws as one process
        greedy = [rows[0][0] for rows in sample_completions(sampler, tokenizer, prompts, args.max_new_tokens, 1, 0.0, 0, P, f"eval {name}")]
        sampled = sample_completions(sampler, tokenizer, prompts, args.max_new_tokens, n, args.temperature, seed_of(args.seed, "eval", name),
                                     P * n, f"eval {name}", top_p=args.top_p, top_k=args.top_k)  # the same draws at every eval: comparable
        out[f"eval/{name}/greedy"] = sum(reward_fn(t, g) == 1.0 for t, g in zip(greedy, golds)) / len(golds)
        out[f"eval/{name}/pass@1"] = sum(reward_fn(t, g) == 1.0 for rows, g in zip(sampled, golds) for t, _, _ in rows) / (n * len(golds))
        if synthetic:
            out[f"eval/{name}/greedy_carry_share"] = sum(detect_style(t) == "carry" for t in greedy) / len(greedy)
    return out


def lr_at(step, args):
    """Linear warm-up, then constant: RL's data moves with the policy, there is no end to decay towards."""
    return args.lr * min(1.0, (step + 1) / args.warmup) if args.warmup > 0 else args.lr


# arguments that must match for --resume to continue the same run
RUN_IDENTITY = ("model", "data", "window", "sinks", "full_layers", "prompts_per_step", "group_size", "max_new_tokens",
                "temperature", "top_p", "top_k", "reward_mode", "std_norm", "skip_zero_std", "mask_truncated", "ppo_epochs", "minibatches",
                "clip_low", "clip_high", "kl_beta", "kl_ref", "tis_cap", "rollout_slots", "lr", "warmup", "weight_decay", "grad_clip", "max_steps", "seed")


def main(argv=None, reward_fn=None):
    args = get_args(argv)
    world = distributed.setup(args)  # 1 unless torchrun started several processes
    reward_fn = reward_fn or functools.partial(math_reward, mode=args.reward_mode)
    out, log_file = start_run(args)

    # 1. the policy, with the SFT checkpoint's window unless --window overrides it (fp32 weights; bf16 autocast on GPU)
    model, tokenizer = load_model(args.model, args.window, args.sinks, args.full_layers, args.device, torch.float32)
    model.impl, model.checkpointing = args.impl, args.checkpointing
    ref_model = None  # the frozen policy a KL penalty anchors to: the initial one, or --kl-ref (e.g. the base model
    if args.kl_beta > 0:  # before SFT, which still writes both solution styles) run under the policy's attention
        dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
        ref_model = load_model_under(args.kl_ref, model.config, args.device, dtype) if args.kl_ref else inference_copy(model, dtype)

    # 2. prompts and gold answers
    context = model.config.max_position_embeddings
    train_records, eval_sets = load_split(args.data, "rl"), {}
    if args.eval_data:
        for f in args.eval_data.split(","):
            eval_sets[Path(f).stem] = prepare(load_split(f, None)[: args.eval_size], tokenizer, args.max_new_tokens, context, f)
    elif args.data:  # real data is never evaluated on the synthetic task: a held-out slice of it instead
        train_records, held = hold_out(train_records, args.eval_size, args.seed)
        eval_sets[f"{Path(args.data).stem}_heldout"] = prepare(held, tokenizer, args.max_new_tokens, context, f"held out of {args.data}")
        print(f"note: no --eval-data: evaluating on {len(held)} prompts held out of {args.data} (not trained on), "
              f"logged as eval/{Path(args.data).stem}_heldout/...")
    else:  # the synthetic validation problems of the difficulties RL trains on: never the test sets,
        # which are evaluate.py's alone, so nothing is tuned on them
        for k in sorted(DEFAULT_TASK["splits"]["rl_steps"], reverse=True):
            eval_sets[f"val_k{k}"] = prepare(load_split(None, f"val_k{k}")[: args.eval_size], tokenizer, args.max_new_tokens,
                                             context, f"synthetic val_k{k}")
    train_prompts, train_golds, synthetic = prepare(train_records, tokenizer, args.max_new_tokens, context, args.data or "synthetic rl")

    # 3. optimizer, and the state to resume from
    if world > 1:  # each rank keeps 1/world of the weights, gradients and optimizer state (distributed.shard)
        distributed.shard(model, args.device)
    optimizer = make_optimizer(model, args.lr, args.weight_decay, args.device, betas=(0.9, 0.999))
    step, epoch, pos, saved_step = 0, 0, 0, None
    if args.resume:
        ckpt = resume(out, model, optimizer, args, RUN_IDENTITY)
        step, epoch, pos, saved_step = ckpt["step"], ckpt["epoch"], ckpt["pos"], ckpt["step"]
    order = EpochIterator(lambda e: epoch_order(len(train_prompts), args.seed, e), epoch, pos)  # a seeded permutation per epoch
    sampler = make_sampler(model, args.device)
    if args.compile and sampler is model:  # CPU: compiled blocks would also run generation, recompiling per cache shape
        print("note: --compile on CPU compiles the decode step only (the policy samples itself there)")
    elif args.compile:  # after the copies are made: they run uncompiled, apart from the decode step
        compile_for_training(model)
    check_step_fits(sampler, train_prompts, args)

    if args.resume:  # where a resumed run begins; a new run's first record says "start" (readers keep the last record per step)
        log(log_file, {"event": "resume", "from_step": step, "out": str(out)})

    def save(final=False):
        return save_run(out, model, tokenizer, args, optimizer, saved_step, step=step, epoch=order.epoch, pos=order.pos, final=final)

    # 4. train
    record = {}
    if step == 0:  # where RL starts from
        record = {"step": 0, "event": "start", **evaluate(sampler, eval_sets, tokenizer, args, reward_fn)}
        log(log_file, record)
        print("step 0: " + ", ".join(f"{k} {v:.3f}" for k, v in record.items() if k.startswith("eval/")))
    bar = tqdm(total=args.max_steps, initial=step, desc="grpo", dynamic_ncols=True, disable=distributed.silent_rank())
    first_step, updates, trained_tokens = step, 0, 0
    while step < args.max_steps:
        lr = lr_at(step, args)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = distributed.block([next(order) for _ in range(args.prompts_per_step)])  # torchrun: this rank's prompts
        try:
            metrics = grpo_step(model, optimizer, [train_prompts[i] for i in batch], [train_golds[i] for i in batch], tokenizer,
                                args, reward_fn, step, sampler, ref_model, synthetic)
        except FloatingPointError as e:
            raise FloatingPointError(f"{e}; {still_good(out, saved_step)}") from None
        step, updates, trained_tokens = step + 1, updates + metrics["updates"], trained_tokens + metrics["tokens"] * (metrics["updates"] > 0)
        record = {"step": step, "epoch": order.epoch, "lr": lr, **metrics, **({"world_size": world} if world > 1 else {})}
        if args.device.startswith("cuda"):
            record["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        if step % args.eval_every == 0 or step == args.max_steps:
            record.update(evaluate(sampler, eval_sets, tokenizer, args, reward_fn))
        log(log_file, record)
        shown = {"reward": f"{metrics['reward']:.2f}", "skip": f"{metrics['zero_std_share']:.2f}", "len": f"{metrics['len_mean']:.0f}"}
        if synthetic:
            shown["carry"] = f"{metrics['carry_share']:.2f}"
        shown.update({k.split("/")[1]: f"{v:.2f}" for k, v in record.items() if k.endswith("/greedy")})
        bar.set_postfix(shown)
        bar.update(1)
        if step % args.save_every == 0 and step < args.max_steps:
            saved_step = save()
    bar.close()
    save(final=True)
    print(f"grpo: {updates} updates in {step - first_step} steps of this run ({trained_tokens:,} completion tokens trained), "
          f"step {step} of {args.max_steps}; " + ", ".join(f"{k} {v:.3f}" for k, v in record.items() if k.startswith("eval/"))
          + f"; wrote {out}")
    if updates == 0 and step > first_step:  # every group's samples scored alike (or, with --mask-truncated, were cut)
        print(f"WARNING: no update was made, so {out} equals its input. Check the rewards in the log: too hard or too easy "
              "prompts, --max-new-tokens too short, or answers in a form the grader does not read (--reward-mode).")
    if args.export_hf:
        export_hf(model, args.export_hf, tokenizer)
    return model


if __name__ == "__main__":
    run_main(main)
