"""
Generation under the window: the engine rl.py and evaluate.py share, and a command to try it.

    python generate.py --model base_model --prompt "Q:7|-4*3+5-3;" --samples 4 --temperature 1.0

Why a rolling KV cache: a full-attention layer must keep the keys and values of every position,
so its cache grows with the sequence. A sliding-window layer only ever looks at the last W
positions (plus S sinks), so it keeps a ring of S + W slots and overwrites the oldest one: its
cache stops growing at W. Keys are stored after the rotary embedding, so an overwritten slot never
needs recomputing, and each slot remembers the position it holds, so the mask is the window rule
of swa_attention.visible applied to (query position, slot position).

How a batch runs:
  1. prefill: prompts of the same length go through the model together (no padding at all); each
     prompt's keys and values are copied into its G sample rows of the cache.
  2. decode: one token per row per step, every row at its own position. The shapes never change
     from step to step (static cache, a mask over all slots), which leaves room for CUDA graphs.
  The only host-device synchronisation per step is the check whether every row has stopped.
  A caller that generates again and again at one shape (rl.py's rollouts) passes `keep`, and the
  cache and the decode step's CUDA graphs serve every call (decode_engine).

Continuous batching (generate_continuous): RL response lengths are long-tailed, and a static batch
runs until its longest row ends while the finished rows idle. generate_continuous keeps a fixed
number of cache rows ("slots") busy instead: as slots finish, the next rows take them (each prompt
prefilled once) and decoding goes on, with the same static decode step.

sample_completions: prompts in batches of a given size to texts, shared out over torchrun ranks
(evaluate.py's benchmarks, rl.py's held-out evaluation).
"""
import functools
import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

try:  # ships with torch's CUDA builds; only decode_attention_triton uses it
    import triton
    import triton.language as tl
except ImportError:
    triton = None

import distributed
from checkpoint import ArgumentParser, add_model_args, check_model_args, load_model, run_main
from model import pdl_launch
from swa_attention import sliding_window_attention, visible
from tokenizer import first_line


# ----------------------------------------------------------------------------------------------
# the KV cache


def cache_slots(window, sinks, length):
    """Positions a layer must keep for a sequence of `length`: all of them at full attention, at most sinks + W under a window."""
    return length if window is None else min(length, sinks + window)


def kv_cache_bytes(config, length, bytes_per_value):
    """The KV cache one sequence of `length` tokens holds, over all layers (k and v)."""
    slots = sum(cache_slots(w, config.sinks, length) for w in config.layer_windows)
    return 2 * slots * config.num_key_value_heads * config.head_dim * bytes_per_value


LIVE_BUCKET = 128  # the smallest step of the slots a decode step reads from a full-length cache (live_slots)


def live_slots(next_position, max_len):
    """
    The slots a decode step must read to see every position up to next_position - 1, rounded up
    to a bucket so that few shapes (CUDA graphs) exist: steps of LIVE_BUCKET up to 8 of them, then
    an eighth of the next power of two: past 8 * LIVE_BUCKET a step reads at most 25% more slots
    than it needs, with 20 buckets up to 8192 and 4 more per doubling. (Buckets of a fixed 512
    read all 768 slots at every step of bench_rl's 640-token GRPO step; steps of 128 cut its
    generation from 3.60 s to 2.77 s on one H200, though a second H200 then took 3.47 s: BENCHMARKS.md.)
    """
    step = max(LIVE_BUCKET, (1 << (next_position - 1).bit_length()) // 8)
    return min(max_len, -(-next_position // step) * step)


class KVCache:
    """
    Per layer, k and v of shape (B, Hkv, slots, D): `slots` = max_len for a full-attention layer,
    sinks + window for a sliding-window one. Layers with the same window share one record of which
    position each slot holds (slot_pos, -1 = empty) and one mask per step.

    A full-length cache holds position p in slot p, so while every row is still short its later
    slots are empty: decode reads only the first `live` of them (set per step by the caller, who
    knows how far the rows have come; live_slots). Without this, every step of a long rollout
    reads the whole max_len cache from its first token on.
    """

    def __init__(self, model, batch, max_len, device, dtype):
        c = model.config
        self.sinks, self.max_len = c.sinks, max_len
        self.windows = c.layer_windows
        self.sizes = {w: cache_slots(w, c.sinks, max_len) for w in set(self.windows)}
        shape = lambda w: (batch, c.num_key_value_heads, self.sizes[w], c.head_dim)  # noqa: E731
        self.k = [torch.zeros(shape(w), device=device, dtype=dtype) for w in self.windows]
        self.v = [torch.zeros(shape(w), device=device, dtype=dtype) for w in self.windows]
        self.slot_pos = {w: torch.full((batch, n), -1, device=device) for w, n in self.sizes.items()}
        self.pos = torch.zeros(batch, dtype=torch.long, device=device)  # the next position per row
        self.rows = None  # prefill: which cache rows receive the prompt being prefilled
        self.stash = self.stash_logits = None  # one prompt's kept keys and values per layer, for copy_prompt
        self.compiled = False  # decode runs compiled (DecodeStep): its attention is decode_attention, not SDPA
        self.all_rows = torch.arange(batch, device=device)  # decode writes one slot in every row
        self.live = torch.empty(max_len, device=device)  # decode reads the first live.shape[0] slots of full-length caches:
        # a shape, not an int, so that the compiled decode step takes it as a symbolic size instead of compiling per value

    def set_live(self, slots):
        if slots != self.live.shape[0]:
            self.live = torch.empty(slots, device=self.live.device)
            torch._dynamo.maybe_mark_dynamic(self.live, 0)

    def readable(self, window, t):
        """t (B, ..., slots, ...) of a layer of `window` along dim 2 (or 1 for slot_pos) -> the slots decode reads."""
        if self.sizes[window] < self.max_len:
            return t
        return t[:, :, : self.live.shape[0]] if t.dim() == 4 else t[:, : self.live.shape[0]]

    def slot_of(self, window, pos):
        """Full layers: slot = position. SWA layers: sinks keep their slots, the rest go round a ring of W."""
        if window is None or self.sizes[window] == self.max_len:
            return pos
        return torch.where(pos < self.sinks, pos, self.sinks + (pos - self.sinks) % window)

    def memory_bytes(self):
        return sum(t.numel() * t.element_size() for t in self.k + self.v)

    def reset(self):
        """Empty, for another generation call: every slot unheld, every row at position 0. In place, so that the
        decode step's CUDA graphs, which read and write these very tensors, stay valid (decode_engine's keep)."""
        for held in self.slot_pos.values():
            held.fill_(-1)
        self.pos.zero_()
        self.drop_stash()

    # -- prefill: the prompt attends to itself with the training attention; the cache keeps what the
    #    window will still need. `rows` (the prompt's G sample rows) get a copy each.

    def place(self, rows, T):
        """rows (P, G), or (n,), start prompts of length T: their slot record holds the positions kept, their next position is T."""
        self.keep, self.keep_slots = {}, {}
        for w in self.sizes:
            pos = torch.arange(T, device=self.pos.device)
            if w is not None:  # only the sinks and the last W positions survive in the ring
                pos = pos[(pos < self.sinks) | (pos >= T - w)]
            self.keep[w], self.keep_slots[w] = pos, self.slot_of(w, pos)
            self.slot_pos[w][rows] = -1
            self.slot_pos[w][rows.reshape(-1)[:, None], self.keep_slots[w]] = pos
        self.pos[rows] = T

    def write_kept(self, layer, rows, k, v):
        """k, v (N, Hkv, kept, D), N = the rows (N, ) or 1 for all of them -> the layer's slots of the kept positions."""
        slots = self.keep_slots[self.windows[layer]]
        for dst, src in ((self.k[layer], k), (self.v[layer], v)):
            dst[rows[:, None], :, slots] = src.transpose(1, 2)  # the indexed view is (rows, kept, Hkv, D)

    def prefill(self, model, ids, rows, stash=None):
        """
        ids (P, T): P prompts of one length, prompt p into cache rows rows[p] (P, G). -> last logits (P, vocab).
        stash: the index p of a prompt whose kept keys, values and last logits stay in the cache, so that
        copy_prompt places it into more rows later without a second forward (continuous batching).
        """
        self.rows, self.stash_index = rows, stash
        self.place(rows, ids.shape[1])
        logits = model.lm_head(model.hidden_states(ids, cache=self)[:, -1]).float()  # only the last position is needed
        if stash is not None:
            self.stash_len, self.stash_logits = ids.shape[1], logits[stash]
        self.rows = None
        return logits

    def copy_prompt(self, rows):
        """The stashed prompt into more cache rows (n,): its keys and values copied, no forward. -> its last logits (vocab,)."""
        self.place(rows, self.stash_len)
        for layer, (k, v) in enumerate(self.stash):
            self.write_kept(layer, rows, k[None], v[None])
        return self.stash_logits

    def drop_stash(self):
        self.stash = self.stash_logits = None

    # -- decode: one new token per row at its own position

    def begin_step(self):
        rows = self.all_rows
        self.step_slots, self.step_masks = {}, {}
        for w in self.sizes:
            slot = self.slot_of(w, self.pos)  # (B,)
            self.slot_pos[w][rows, slot] = self.pos
            held = self.readable(w, self.slot_pos[w])  # (B, slots)
            mask = visible(self.pos[:, None], held, w, self.sinks) & (held >= 0)
            self.step_slots[w], self.step_masks[w] = slot, mask[:, None, None, :]  # (B, 1, 1, slots)
        if self.compiled:  # for decode_attention_triton, once per window, not per layer; the eager step's SDPA reads the mask alone
            self.step_ends = {w: seen_ends(m) for w, m in self.step_masks.items()}

    def end_step(self):
        self.pos += 1

    def attend(self, layer, q, k, v, impl):
        w = self.windows[layer]
        if self.rows is not None:  # prefill: q, k, v (P, H, T, D) for P prompts of length T
            y = sliding_window_attention(q, k, v, w, self.sinks, impl=impl)
            G = self.rows.shape[1]
            k, v = k[:, :, self.keep[w]], v[:, :, self.keep[w]]  # (P, Hkv, kept, D)
            self.write_kept(layer, self.rows.reshape(-1), k.repeat_interleave(G, dim=0), v.repeat_interleave(G, dim=0))
            if self.stash_index is not None:
                if layer == 0:
                    self.stash = []
                self.stash.append((k[self.stash_index].clone(), v[self.stash_index].clone()))  # (Hkv, kept, D) each, not a view of all P
            return y
        rows = self.all_rows
        slot = self.step_slots[w]
        self.k[layer][rows, :, slot] = k[:, :, 0]
        self.v[layer][rows, :, slot] = v[:, :, 0]
        # one query per row: the G query heads sharing a kv head become G "queries" of that head,
        # so each cached key is read once, with no GQA expansion
        B, Hq, _, D = q.shape
        Hkv = k.shape[1]
        keys, values = self.readable(w, self.k[layer]), self.readable(w, self.v[layer])  # (B, Hkv, live or all slots, D)
        attend = decode_attention if self.compiled else decode_attention_sdpa  # see decode_attention: it needs the fusion
        y = attend(q.view(B, Hkv, Hq // Hkv, D), keys, values, self.step_masks[w], self.step_ends[w] if self.compiled else None)
        return y.reshape(B, Hq, 1, D)  # (B, Hkv, G, D) -> (B, Hq, 1, D)


def seen_ends(mask):
    """mask (B, 1, 1, S) -> (B,) one past each row's last visible slot: decode_attention_triton reads no further."""
    S = mask.shape[-1]
    return torch.where(mask[:, 0, 0], torch.arange(1, S + 1, device=mask.device), 0).amax(-1)


def decode_attention(q, keys, values, mask, ends=None):
    """
    q (B, Hkv, G, D): the G query heads of each kv head, one position per row; keys, values (B, Hkv, S, D);
    mask (B, 1, 1, S) -> (B, Hkv, G, D); ends: seen_ends(mask) if the caller has it (the triton kernel skips
    the slots past a row's end; the others mask them). What the compiled decode step attends with (KVCache.compiled):
    on a GPU with triton, in bf16 or fp16, decode_attention_triton (one pass over the cache); otherwise
    decode_attention_bmm. The reference both are tested against: decode_attention_sdpa.
    """
    if triton is not None and q.is_cuda and q.dtype in (torch.bfloat16, torch.float16) and q.shape[-1] in (64, 128, 256):
        return decode_attention_triton(q, keys, values, mask, ends)
    return decode_attention_bmm(q, keys, values, mask)


def decode_attention_bmm(q, keys, values, mask, ends=None):
    """
    decode_attention as two batched matrix products around a float32 softmax, the scores accumulated
    and kept in float32 as a flash kernel keeps them (a bf16 score would move a logit of 30 by 0.1).
    Why not SDPA: its kernels tile 64 or more queries per (row, kv head), and a decode step has G = 6
    of them, so at batch 1 the whole layer is 2 thread blocks on a 132-SM GPU. torch.compile fuses the
    scaling, mask and softmax into one pass over the float32 scores, where eager they would be five.
    On an H200 (BENCHMARKS.md) it beat cuDNN at batch 1 (2.11 against 2.68 ms a step) but lost at
    batch 256, where cuBLAS runs the float32-out scores product as a slow 16x16 tile kernel.
    """
    B, Hkv, G, D = q.shape
    S = keys.shape[2]
    q3, k3, v3 = q.reshape(B * Hkv, G, D), keys.reshape(B * Hkv, S, D), values.reshape(B * Hkv, S, D)  # views: no copy
    if q.dtype in (torch.float32, torch.float64):
        scores = q3 @ k3.transpose(1, 2)  # (B * Hkv, G, S)
    elif q.device.type == "cuda":  # bf16 in, float32 out: cuBLAS accumulates in float32 and writes that
        scores = torch.bmm(q3, k3.transpose(1, 2), out_dtype=torch.float32)
    else:  # the CPU has no kernel of that overload
        scores = q3.float() @ k3.float().transpose(1, 2)
    scores = (scores.view(B, Hkv, G, S) * D**-0.5).masked_fill(~mask, float("-inf"))  # (B, Hkv, G, S)
    probs = scores.softmax(-1).to(values.dtype).view(B * Hkv, G, S)  # bf16 into the second product, as flash does
    return (probs @ v3).view(B, Hkv, G, D)


def decode_attention_sdpa(q, keys, values, mask, ends=None):
    """The reference decode_attention is tested against: torch's fused kernels (cuDNN on an H200)."""
    return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)


# -- decode_attention_triton: flash decoding. Each program takes one (row, kv head) and one of `splits`
#    stretches of the cache, and reads each key and value once: the G query heads of the kv head are the
#    rows of one tile (padded to 16, tl.dot's least), the scores stay in float32 registers with an
#    online softmax, and the probabilities go into the values product in the cache's dtype, as flash
#    attention does. Small batches split the cache so that the GPU has enough programs; the stretches
#    are merged by their log-sum-exp. One launch, not three, and it stops at each row's last visible slot
#    (seen_ends): a full-length cache's live slots run to the furthest row's bucket, a shorter row's end is its own.
#    On an H200 at the Qwen2.5-1.5B shape, per layer: 67 against 92 µs at batch 256 over 1024 keys,
#    3.4 against 9.3 µs at batch 1; a GRPO step's generation 2.01 s against 2.42-2.47 s (BENCHMARKS.md).

def decode_splits(programs, device):
    """
    Stretches per (row, kv head): about 2 programs per SM in all, at most 64. It depends on the batch
    alone, not on the cache length, so the compiled step does not change with it: a stretch that would
    start past the end is an empty program (a split of 1024 keys at batch 1 keeps 16 stretches of 64).
    """
    sms = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 132
    return max(1, min(2 * sms // programs, 64))


DECODE_BLOCK = 64  # keys per tile

if triton is not None:
    @triton.jit
    def _decode_attention_kernel(Q, K, V, MASK, ENDS, OUT, LSE, S, scale,
                                 sq_b, sq_h, sq_g, sk_b, sk_h, sk_s, sv_b, sv_h, sv_s, sm_b, sm_s,
                                 Hkv: tl.constexpr, G: tl.constexpr, D: tl.constexpr, SPLITS: tl.constexpr,
                                 BLOCK_G: tl.constexpr, BLOCK: tl.constexpr, GDC: tl.constexpr):
        if GDC:  # see model.PDL: q, the cache and ENDS are earlier kernels' outputs
            tl.extra.cuda.gdc_wait()
            tl.extra.cuda.gdc_launch_dependents()
        bh, split = tl.program_id(0), tl.program_id(1)
        b, h = (bh // Hkv).to(tl.int64), bh % Hkv  # 64-bit offsets: a layer's cache may pass 2**31 elements
        g, d = tl.arange(0, BLOCK_G), tl.arange(0, D)
        q = tl.load(Q + b * sq_b + h * sq_h + g[:, None] * sq_g + d[None, :], mask=g[:, None] < G, other=0.0)  # (BLOCK_G, D)
        chunk = tl.cdiv(tl.cdiv(S, SPLITS), BLOCK) * BLOCK
        start = split * chunk
        end = tl.minimum(start + chunk, tl.load(ENDS + b).to(tl.int32))  # no key past the row's last visible slot is read
        m_i = tl.full([BLOCK_G], float("-inf"), tl.float32)  # running max of the scores, per query head
        l_i = tl.zeros([BLOCK_G], tl.float32)  # running sum of exp(score - m_i)
        acc = tl.zeros([BLOCK_G, D], tl.float32)
        for n0 in range(start, end, BLOCK):
            n = n0 + tl.arange(0, BLOCK)
            inside = n < end
            k = tl.load(K + b * sk_b + h * sk_h + n[:, None] * sk_s + d[None, :], mask=inside[:, None], other=0.0)  # (BLOCK, D)
            seen = tl.load(MASK + b * sm_b + n * sm_s, mask=inside, other=0) != 0  # (BLOCK,)
            s = tl.dot(q, tl.trans(k)) * scale  # (BLOCK_G, BLOCK) float32
            s = tl.where(seen[None, :], s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a tile with nothing seen yet: no -inf - -inf
            alpha = tl.exp(m_i - m_safe)
            p = tl.exp(s - m_safe[:, None])  # (BLOCK_G, BLOCK)
            v = tl.load(V + b * sv_b + h * sv_h + n[:, None] * sv_s + d[None, :], mask=inside[:, None], other=0.0)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
            m_i = m_new
        has = l_i > 0  # a stretch with no key seen (or past S) counts nothing in the merge: lse -inf, output 0
        out = tl.where(has[:, None], acc / tl.where(has, l_i, 1.0)[:, None], 0.0)
        lse = tl.where(has, m_i + tl.log(tl.where(has, l_i, 1.0)), float("-inf"))
        row = bh * SPLITS + split  # OUT (B * Hkv * SPLITS, G, D) and LSE (B * Hkv * SPLITS, G), contiguous
        tl.store(OUT + row * G * D + g[:, None] * D + d[None, :], out, mask=g[:, None] < G)
        tl.store(LSE + row * G + g, lse, mask=g < G)


@torch.library.custom_op("swarr::decode_attention_stretches", mutates_args=())
def decode_attention_stretches(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                               ends: torch.Tensor, splits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """-> out (B, Hkv, splits, G, D) float32, each stretch's attention, and its lse (B, Hkv, splits, G). ends: seen_ends(mask)."""
    B, Hkv, G, D = q.shape
    out = torch.empty(B, Hkv, splits, G, D, device=q.device, dtype=torch.float32)
    lse = torch.empty(B, Hkv, splits, G, device=q.device, dtype=torch.float32)
    seen = mask.view(torch.uint8)  # (B, 1, 1, S): bool as bytes, the same strides
    _decode_attention_kernel[(B * Hkv, splits)](
        q, keys, values, seen, ends, out, lse, keys.shape[2], D**-0.5,
        q.stride(0), q.stride(1), q.stride(2), keys.stride(0), keys.stride(1), keys.stride(2),
        values.stride(0), values.stride(1), values.stride(2), seen.stride(0), seen.stride(3),
        Hkv=Hkv, G=G, D=D, SPLITS=splits, BLOCK_G=max(16, triton.next_power_of_2(G)), BLOCK=DECODE_BLOCK,
        num_warps=4, num_stages=2, **pdl_launch(q.device, B))  # the fastest of 18 configurations at batch 1 and 256 on an H200 (BENCHMARKS.md)
    return out, lse


@decode_attention_stretches.register_fake
def _(q, keys, values, mask, ends, splits):
    B, Hkv, G, D = q.shape
    return q.new_empty(B, Hkv, splits, G, D, dtype=torch.float32), q.new_empty(B, Hkv, splits, G, dtype=torch.float32)


# The merge of the stretches: one program per (row, kv head, query head, 32 of D) weighs the stretches' outputs by
# their shares of the softmax's denominator, exp(lse - max) / sum; an empty stretch (lse -inf) is not read.
# Compiled, merge_stretches_reference is two kernels (the max, then the weighted sum): 3.1 µs a layer at batch 1
# on an H200, where the decode attention kernel itself takes 3.9, and this kernel 1.7 (BENCHMARKS.md).
if triton is not None:
    @triton.jit
    def _merge_stretches_kernel(OUT, LSE, Y, G: tl.constexpr, D: tl.constexpr, SPLITS: tl.constexpr,
                                BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr, GDC: tl.constexpr):
        if GDC:  # see model.PDL
            tl.extra.cuda.gdc_wait()
            tl.extra.cuda.gdc_launch_dependents()
        bh, g, d0 = tl.program_id(0), tl.program_id(1), tl.program_id(2) * BLOCK_D
        s, d = tl.arange(0, BLOCK_S), d0 + tl.arange(0, BLOCK_D)
        rows = bh * SPLITS + s  # the stretches' rows of OUT (B * Hkv * SPLITS, G, D) and LSE (B * Hkv * SPLITS, G)
        lse = tl.load(LSE + rows * G + g, mask=s < SPLITS, other=float("-inf"))  # (BLOCK_S,)
        weight = tl.exp(lse - tl.max(lse, 0))
        used = (s < SPLITS) & (lse > float("-inf"))
        out = tl.load(OUT + (rows[:, None] * G + g) * D + d[None, :], mask=used[:, None], other=0.0)  # (BLOCK_S, BLOCK_D)
        y = tl.sum(weight[:, None] * out, 0) / tl.sum(weight, 0)
        tl.store(Y + (bh * G + g) * D + d, y.to(Y.dtype.element_ty))


@torch.library.custom_op("swarr::merge_stretches", mutates_args=())
def merge_stretches(out: torch.Tensor, lse: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """out (B, Hkv, splits, G, D) and lse (B, Hkv, splits, G), float32, contiguous -> (B, Hkv, G, D) in dtype."""
    B, Hkv, splits, G, D = out.shape
    y = out.new_empty(B, Hkv, G, D, dtype=dtype)
    block_d = min(D, 32)
    _merge_stretches_kernel[(B * Hkv, G, D // block_d)](out, lse, y, G=G, D=D, SPLITS=splits, BLOCK_S=triton.next_power_of_2(splits),
                                                        BLOCK_D=block_d, **pdl_launch(out.device, B))
    return y


@merge_stretches.register_fake
def _(out, lse, dtype):
    B, Hkv, splits, G, D = out.shape
    return out.new_empty(B, Hkv, G, D, dtype=dtype)


def merge_stretches_reference(out, lse, dtype):
    """merge_stretches in torch: the reference."""
    weight = torch.softmax(lse, dim=2)  # (B, Hkv, splits, G): each stretch's share of the softmax's denominator
    return (weight[..., None] * out).sum(2).to(dtype)  # (B, Hkv, G, D)


def decode_attention_triton(q, keys, values, mask, ends=None):
    """decode_attention in one pass over the cache (see above); q (B, Hkv, G, D) -> (B, Hkv, G, D)."""
    B, Hkv, G, D = q.shape
    if q.stride(-1) != 1 or keys.stride(-1) != 1 or values.stride(-1) != 1:
        raise ValueError("decode_attention_triton: q, keys and values need contiguous last dimensions")
    splits = decode_splits(B * Hkv, q.device)
    out, lse = decode_attention_stretches(q, keys, values, mask, seen_ends(mask) if ends is None else ends, splits)
    if splits == 1:  # large batches: one stretch, nothing to merge
        return out[:, :, 0].to(q.dtype)
    return merge_stretches(out, lse, q.dtype)


# ----------------------------------------------------------------------------------------------
# sampling


@dataclass
class Generation:
    tokens: torch.Tensor  # (B, max_new_tokens) generated ids, EOS included, padding after it
    logprobs: torch.Tensor  # (B, max_new_tokens) log-prob of each token under log_softmax(logits / temperature)
    mask: torch.Tensor  # (B, max_new_tokens) True for real generated tokens (up to and including EOS)
    truncated: torch.Tensor  # (B,) True where the row hit max_new_tokens (or its budget) without EOS
    prompt_rows: torch.Tensor  # (B,) which prompt each row continues


def check_sampling(temperature, top_p, top_k, max_new_tokens):
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 = off), got {top_k}")


def sample(logits, temperature, top_p, top_k, generator, compiled=False):
    """
    logits (B, V) -> tokens (B,), logprobs (B,). The log-prob is that of the temperature-scaled
    distribution (what rl.py's training forward computes); top-k / top-p only restrict the draw.
    Greedy (temperature 0) reports log_softmax(logits). compiled: the draw runs as one compiled
    function (gumbel_max), the same tokens as the eager one (generate's compile=True).
    """
    logits = logits.float()
    if temperature == 0:
        tokens = logits.argmax(-1)
        return tokens, logits.gather(-1, tokens[:, None])[:, 0] - logits.logsumexp(-1)
    draw = None  # no top-k / top-p: the draw is from the scaled logits themselves
    if top_k > 0 or top_p < 1:  # gumbel_max scales the logits again for the log-prob: one more pass beside the sort,
        draw = logits / temperature  # so that the common path (no filter) fuses its scaling into the compiled draw
    if top_k > 0:
        kth = draw.topk(min(top_k, draw.shape[-1]), dim=-1).values[:, -1:]
        draw = draw.masked_fill(draw < kth, float("-inf"))
    if top_p < 1:
        sorted_lp, order = F.log_softmax(draw, -1).sort(dim=-1, descending=True)
        cum = sorted_lp.exp().cumsum(-1)
        drop_sorted = cum - sorted_lp.exp() >= top_p  # keep the smallest prefix reaching top_p
        draw = draw.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
    noise = torch.empty_like(logits).exponential_(generator=generator)  # our own generator: reproducible, no host sync
    return (compiled_gumbel_max() if compiled else gumbel_max)(logits, temperature, noise, draw)


def gumbel_max(logits, temperature, noise, draw=None):
    """
    Gumbel-max: argmax(draw + Gumbel) = argmax(draw - log E), E ~ Exp(1) (`noise`), with draw the
    scaled logits unless top-k / top-p restricted them. No full log-softmax is written: the drawn
    token's log-prob is its scaled logit minus the logsumexp. Eager, this is ~10 passes over the
    (B, V) float32 logits (the scaling, the noise's clamp and log, the sum, the argmax, logsumexp's
    passes and temporaries), 155 MB each at 256 rows of a 152k vocabulary; compiled, a few.
    """
    scaled = logits / temperature if temperature != 1 else logits
    draw = scaled if draw is None else draw
    tokens = (draw - noise.clamp(min=torch.finfo(torch.float32).tiny).log()).argmax(-1)  # the clamp: log 0 would pick a masked-out token
    return tokens, scaled.gather(-1, tokens[:, None])[:, 0] - scaled.logsumexp(-1)


@functools.cache
def compiled_gumbel_max():
    # a new batch size or temperature can compile once more (the second of either turns symbolic)
    return torch.compile(gumbel_max, dynamic=None)


class DecodeStep:
    """
    One decode step: feed each row's last token at its own position, return the next logits.
    On CUDA the step is captured as a CUDA graph and replayed: a step launches a few hundred
    small kernels, and at batch sizes that fit on one GPU launching them costs more than running
    them. Capturing works because the cache never changes shape; one graph per live-slot count
    (KVCache.live, a bucket of live_slots), sharing one memory pool (replays never overlap and
    a step's logits are used before the next). Every graph writes its logits into the one buffer
    `logits_out`: a graph's own output would stay allocated in the pool, and at 256 rows a
    152k-vocabulary float32 output is 155 MB per graph, with about 20 graphs up to 8192 positions.
    The first step of each live-slot count runs without a graph, which warms up the kernels the
    capture will record.
    """

    def __init__(self, model, cache, batch, device, cuda_graph, compile=False):
        self.model, self.cache, self.cuda_graph = model, cache, cuda_graph
        self.graphs, self.seen, self.pool = {}, set(), None
        self.token_in = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.logits_out = torch.empty(batch, model.config.vocab_size, device=device)  # float32, every step's output
        self.forward = compiled_decode_step(pdl_launch(torch.device(device), batch)["GDC"]) if compile else decode_step
        cache.compiled = compile

    def __call__(self, token, live=None):
        """live: slots of the full-length caches to read (live_slots); None: all of them."""
        self.token_in.copy_(token[:, None])
        self.cache.set_live(self.cache.max_len if live is None else live)
        live = self.cache.live.shape[0]
        if not self.cuda_graph or live not in self.seen:
            self.seen.add(live)
            return self.forward(self.model, self.cache, self.token_in, self.logits_out)
        if live not in self.graphs:
            self.pool = self.pool or torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                self.forward(self.model, self.cache, self.token_in, self.logits_out)
            self.graphs[live] = graph
        self.graphs[live].replay()
        return self.logits_out


def decode_step(model, cache, token_in, logits_out):
    """token_in (B, 1): each row's last token, at its own position -> next logits, written into logits_out (B, vocab) float32."""
    cache.begin_step()
    logits_out.copy_(model(token_in, positions=cache.pos[:, None], cache=cache)[:, -1])  # the copy casts to float32
    cache.end_step()
    return logits_out


@functools.cache
def compiled_decode_step(with_pdl=False):
    # the gpt-fast recipe: torch.compile fuses each layer's ~40 small kernels (norms, rotary, bias,
    # SwiGLU, cache writes) into a few, and the CUDA graph then replays them. Static shapes but the
    # live slots (marked dynamic): a new batch size or cache length compiles again, so generate()
    # rounds the cache length up. with_pdl: the fused kernels launch with programmatic dependent launch (model.PDL).
    import torch._inductor.config as inductor
    with_pdl = with_pdl and hasattr(inductor.triton, "enable_pdl")  # an older torch's inductor has no PDL: ours alone then
    return torch.compile(decode_step, dynamic=None, options={"triton.enable_pdl": True} if with_pdl else None)


def decode_engine(model, batch, max_len, cuda_graph, compile, keep=None):
    """
    The KV cache and the decode step of one generation call: (cache, step).
    keep: a dict the caller holds from call to call (rl.py's rollouts). A call of the same model, batch, cache
    length and flags takes the last call's cache and decode step, emptied, instead of new ones, so that the
    step's CUDA graphs are replayed, not captured again: every capture synchronises and empties the
    allocator's cache (torch.cuda.graph), which the training pass between two rollouts then refills with
    cudaMalloc calls. The price: the cache and the graphs' memory stay allocated between calls.
    """
    device, dtype = model.embed_tokens.weight.device, model.embed_tokens.weight.dtype
    key = (batch, max_len, dtype, cuda_graph and device.type == "cuda", compile)
    if keep is not None and keep.get("model") is model and keep.get("key") == key:
        keep["cache"].reset()
        return keep["cache"], keep["step"]
    if keep:
        keep.clear()  # the last call's cache and graphs go before the new ones are allocated
    cache = KVCache(model, batch, max_len, device, dtype)
    step = DecodeStep(model, cache, batch, device, key[3], compile)
    if keep is not None:
        keep.update(model=model, key=key, cache=cache, step=step)
    return cache, step


def check_prompts(model, prompts, max_new_tokens):
    context = model.config.max_position_embeddings
    for i, p in enumerate(prompts):
        if len(p) == 0:
            raise ValueError(f"prompt {i} is empty")
        if len(p) + max_new_tokens > context:
            raise ValueError(
                f"prompt {i} has {len(p)} tokens; with max_new_tokens={max_new_tokens} that exceeds the model's context of {context}"
            )


def cache_length(prompts, max_new_tokens, compile):
    max_len = max(len(p) for p in prompts) + max_new_tokens
    if compile:  # fewer distinct cache shapes, fewer compilations; the extra slots stay empty
        max_len = -(-max_len // 256) * 256
    return max_len


def row_limits(budgets, rows, max_new_tokens, device):
    """(rows,) the most tokens each row may write: max_new_tokens, or a benchmark's per-row `budgets`."""
    if budgets is None:
        return torch.full((rows,), max_new_tokens, device=device)
    if len(budgets) != rows or not all(1 <= b <= max_new_tokens for b in budgets):
        raise ValueError(f"budgets must be {rows} ints (one per row) in [1, max_new_tokens={max_new_tokens}]")
    return torch.tensor(budgets, device=device)


def prefill_prompts(model, cache, prompts, placements, logits, stash=None):
    """
    placements: (prompt index, cache rows) pairs; each prompt is prefilled once, into all its rows, and
    its last logits go to those rows of `logits` (in place). Prompts of one length and row count share a forward.
    stash: a prompt index among them to keep in the cache for KVCache.copy_prompt.
    """
    device = logits.device
    by_shape = {}
    for i, rows in placements:
        by_shape.setdefault((len(prompts[i]), len(rows)), []).append((i, rows))
    for (_, G), pairs in by_shape.items():
        ids = torch.tensor([prompts[i] for i, _ in pairs], device=device)  # (P, T)
        rows = torch.tensor([rows for _, rows in pairs], device=device)  # (P, G)
        kept = next((p for p, (i, _) in enumerate(pairs) if i == stash), None)
        logits[rows.reshape(-1)] = cache.prefill(model, ids, rows, stash=kept).repeat_interleave(G, dim=0)


def truncated_rows(tokens, mask, eos):
    """(B,) True where a row's last real token is not an EOS: it hit its length limit."""
    last = tokens.gather(1, mask.sum(1, keepdim=True) - 1)[:, 0]  # every row has at least one token
    return ~torch.isin(last, eos)


@torch.no_grad()
def generate(model, prompts, max_new_tokens, eos_ids, group_size=1, temperature=1.0, top_p=1.0, top_k=0,
             seed=0, stop_check_every=None, cuda_graph=True, compile=False, budgets=None, keep=None):
    """
    prompts: a list of token-id lists. Returns a Generation with len(prompts) * group_size rows,
    the G rows of prompt p being rows p*G .. p*G + G-1. compile: torch.compile the decode step
    (CUDA; the first call of each batch size and cache length compiles, for a minute or so).
    budgets: for benchmarks, one length limit per row (<= max_new_tokens), reached = truncated.
    stop_check_every: decode steps between checks whether every row has stopped. The check waits for
    the GPU, which then idles while the host launches the next step's kernels; unchecked, the host
    queues steps ahead (1% of bench_rl's generation on an H200, BENCHMARKS.md). Default: every step on
    the CPU, where it costs nothing, every 16 on CUDA, at most 15 steps past the end; the output is the same.
    keep: a dict held between calls, to reuse the cache and CUDA graphs (decode_engine); the output is the same.
    """
    check_sampling(temperature, top_p, top_k, max_new_tokens)
    check_prompts(model, prompts, max_new_tokens)
    device = model.embed_tokens.weight.device
    stop_check_every = stop_check_every or (16 if device.type == "cuda" else 1)
    B, G = len(prompts) * group_size, group_size
    limit = row_limits(budgets, B, max_new_tokens, device)
    cache, step = decode_engine(model, B, cache_length(prompts, max_new_tokens, compile), cuda_graph, compile, keep)
    generator = torch.Generator(device=device).manual_seed(seed)
    eos = torch.tensor(eos_ids, device=device)
    longest_prompt = max(map(len, prompts))  # decode step t writes position len(prompt) + t

    # 1. prefill, prompts of equal length together; the last logits give each row's first token
    logits = torch.empty(B, model.config.vocab_size, device=device, dtype=torch.float32)
    prefill_prompts(model, cache, prompts, [(i, range(i * G, i * G + G)) for i in range(len(prompts))], logits)

    # 2. decode
    tokens = torch.full((B, max_new_tokens), eos_ids[0], device=device)
    logprobs = torch.zeros(B, max_new_tokens, device=device)
    mask = torch.zeros(B, max_new_tokens, dtype=torch.bool, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    for t in range(max_new_tokens):
        tok, lp = sample(logits, temperature, top_p, top_k, generator, compiled=compile)
        tokens[:, t] = torch.where(done, tokens[:, t], tok)
        logprobs[:, t] = torch.where(done, 0.0, lp)
        mask[:, t] = ~done
        done = done | torch.isin(tok, eos) | (t + 1 >= limit)
        if t == max_new_tokens - 1 or (t % stop_check_every == 0 and bool(done.all())):
            break
        logits = step(tok, live_slots(longest_prompt + t + 1, cache.max_len))  # finished rows run on too (static shape)
    prompt_rows = torch.arange(len(prompts), device=device).repeat_interleave(G)
    return Generation(tokens, logprobs, mask, truncated_rows(tokens, mask, eos), prompt_rows)


@torch.no_grad()
def generate_continuous(model, prompts, max_new_tokens, eos_ids, group_size=1, temperature=1.0, top_p=1.0, top_k=0,
                        seed=0, *, slots, unit=None, check_every=4, cuda_graph=True, compile=False, budgets=None, keep=None):
    """
    generate() with continuous batching, for long-tailed response lengths: the cache has `slots`
    rows (a multiple of `unit`: the memory, whatever the number of prompts), and whenever the
    `unit` slots of one unit have all finished, the next rows are prefilled into them. Same
    Generation, same row order (prompt p in rows p*G .. p*G + G-1), as generate() returns.

    unit: the rows refilled together, a divisor of group_size. The default, group_size, refills a
    whole group with one prefill of its prompt, but the group then holds its G slots until its
    longest sample ends. A smaller unit (1: each row as soon as it ends) keeps more slots busy when
    the samples of one prompt differ much in length. Each prompt is still prefilled once: when only
    some of its rows find slots, its keys and values wait in the cache (KVCache.copy_prompt) and are
    copied into its other rows as slots free up. Rows are placed in order, so one prompt at a time waits.

    Why it stays fast: the decode step keeps its one static shape (slots rows, one cache), so the
    CUDA graph and the compiled step serve every prompt. A refill is an eager prefill (or a copy) that
    writes the cache in place (KVCache.place resets the rows' slot record and position, so the new prompt
    never sees the old one's keys). A finished slot idles at position 0, its output thrown away, until
    its whole unit has finished and rows are left to take. The host looks for free units only
    every `check_every` steps (one sync each): a finished unit may idle check_every - 1 more steps.

    Sampling: reproducible for the same seed, slots and check_every, but not generate()'s samples
    for the same seed, because the per-step noise is drawn for slots, not rows, so the same draws
    land on different rows. Greedy (temperature 0) gives generate()'s tokens row for row, up to
    rounding: a row's neighbours in the batch change, which on a GPU can change a kernel's summation
    order and flip a near-tie in bf16; in float32 on the CPU the tests find them identical.
    budgets, keep: as in generate().
    """
    check_sampling(temperature, top_p, top_k, max_new_tokens)
    check_prompts(model, prompts, max_new_tokens)
    G, N, P = group_size, max_new_tokens, len(prompts)
    U = G if unit is None else unit
    if U < 1 or G % U:
        raise ValueError(f"unit must divide group_size={G} (a unit's rows share one prompt), got {unit}")
    if slots < U or slots % U:
        raise ValueError(f"slots must be a positive multiple of the refill unit ({U} rows), got {slots}")
    if check_every < 1:
        raise ValueError(f"check_every must be >= 1, got {check_every}")
    device = model.embed_tokens.weight.device
    B = P * G
    S = min(slots, B)  # more slots than rows would only idle
    limit = torch.cat([row_limits(budgets, B, N, device), torch.ones(1, dtype=torch.long, device=device)])  # (B + 1,)
    cache, step = decode_engine(model, S, cache_length(prompts, N, compile), cuda_graph, compile, keep)
    generator = torch.Generator(device=device).manual_seed(seed)
    eos = torch.tensor(eos_ids, device=device)
    longest_prompt = max(map(len, prompts))

    # the outputs, plus a scratch row B that idle slots write into: one unconditional write per step
    tokens = torch.full((B + 1, N), eos_ids[0], device=device)
    logprobs = torch.zeros(B + 1, N, device=device)
    mask = torch.zeros(B + 1, N, dtype=torch.bool, device=device)
    # per slot: the output row it writes (B = none), the column of its next token, finished (or idle)
    row = torch.full((S,), B, device=device)
    t = torch.zeros(S, dtype=torch.long, device=device)
    done = torch.ones(S, dtype=torch.bool, device=device)
    logits = torch.zeros(S, model.config.vocab_size, device=device)
    offsets = torch.arange(U, device=device)
    units, queued = B // U, 0  # unit k: rows k*U .. k*U + U-1, all of prompt k*U // G; units 0 .. queued-1 have had slots
    stashed = None  # the prompt in the cache's stash (KVCache.copy_prompt)
    for i in itertools.count():
        if i % check_every == 0:
            # the one host sync: which slot units have all finished, and how far the furthest row has come
            *units_done, furthest = torch.cat([done.view(S // U, U).all(1).long(), cache.pos.max()[None]]).tolist()
            free = [g for g, finished in enumerate(units_done) if finished]
            # the next check_every steps write at most check_every positions past the furthest row (a refill starts lower)
            live = live_slots(max(furthest, longest_prompt) + check_every + 1, cache.max_len)
            if queued == units and len(free) == S // U:
                break
            take = free[: units - queued]
            if take:  # refill: the new rows' first logits overwrite the slots' (the step's were for the old rows)
                placements = {}  # prompt -> the slots its rows take now
                for j, g in enumerate(take):
                    placements.setdefault((queued + j) * U // G, []).extend(range(g * U, g * U + U))
                slot_rows = torch.tensor(take, device=device)[:, None] * U + offsets  # (n, U)
                row[slot_rows] = torch.arange(queued, queued + len(take), device=device)[:, None] * U + offsets
                t[slot_rows], done[slot_rows] = 0, False
                queued += len(take)
                # every prompt is prefilled once: one whose rows are placed over several refills (at most one at a
                # time, as rows are placed in order) waits in the cache's stash and is copied into its later rows
                if stashed in placements:
                    copied = torch.tensor(placements.pop(stashed), device=device)
                    logits[copied] = cache.copy_prompt(copied)
                partial = (queued - 1) * U // G if queued * U % G else None  # the last prompt placed has rows left
                if partial != stashed:
                    cache.drop_stash()
                prefill_prompts(model, cache, prompts, list(placements.items()), logits, stash=partial)
                stashed = partial
        tok, lp = sample(logits, temperature, top_p, top_k, generator, compiled=compile)
        r, c = torch.where(done, B, row), t.clamp(max=N - 1)  # (S,) where each slot's token goes
        tokens[r, c], logprobs[r, c], mask[r, c] = tok, lp, True
        done = done | torch.isin(tok, eos) | (t + 1 >= limit[row])
        t += 1
        cache.pos.masked_fill_(done, 0)  # finished slots idle at position 0 (in bounds, one visible key) until refilled
        logits = step(tok, live)
    prompt_rows = torch.arange(P, device=device).repeat_interleave(G)
    tokens, logprobs, mask = tokens[:B], logprobs[:B], mask[:B]
    return Generation(tokens, logprobs, mask, truncated_rows(tokens, mask, eos), prompt_rows)


def completions(tokenizer, gen):
    """Decoded text per row, without EOS or padding."""
    lengths = gen.mask.sum(1).tolist()
    out = []
    for row, n in zip(gen.tokens.tolist(), lengths):
        ids = row[:n]
        if ids and ids[-1] in tokenizer.eos_ids:
            ids = ids[:-1]
        out.append(tokenizer.decode(ids))
    return out


def sample_completions(model, tokenizer, prompts, max_new_tokens, group_size, temperature, seed, batch_size, desc, compile=False,
                       top_p=1.0, top_k=0):
    """
    prompts: token lists -> per prompt, group_size tuples (text, generated tokens without EOS, cut), in
    batches of batch_size rows: evaluate.py's benchmarks and rl.py's held-out evaluation.
    """
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # equal lengths prefill together
    per_batch = max(1, batch_size // group_size)
    out = [None] * len(prompts)
    starts = range(0, len(order), per_batch)
    error = None
    try:
        # torchrun: batch b goes to rank b % world with its own seed + b, so the draws are those of one process
        for b in tqdm(distributed.round_robin(len(starts)), desc=desc, leave=False, disable=distributed.silent_rank()):
            idx = order[starts[b] : starts[b] + per_batch]
            gen = generate(model, [prompts[i] for i in idx], max_new_tokens, tokenizer.eos_ids, group_size=group_size,
                           temperature=temperature, top_p=top_p, top_k=top_k, seed=seed + b, compile=compile)
            texts = completions(tokenizer, gen)
            n_tokens = (gen.mask.sum(1) - (~gen.truncated).long()).tolist()  # a row that stopped ends in its EOS
            cut = gen.truncated.tolist()
            for j, i in enumerate(idx):  # prompt j of the batch owns rows j*G .. j*G + G-1
                out[i] = [(texts[r], n_tokens[r], cut[r]) for r in range(j * group_size, (j + 1) * group_size)]
    except (ValueError, RuntimeError, MemoryError) as e:
        if distributed.world_size() == 1:
            raise
        error = f"rank {distributed.rank()}: {first_line(e)}"  # told to every rank below, so that none waits for it
    if distributed.world_size() > 1:  # every rank's problems, for one table
        parts = distributed.gather_objects((out, error))
        errors = [e for _, e in parts if e]
        if errors:
            raise RuntimeError(errors[0])
        for part, _ in parts:
            out = [mine if mine is not None else theirs for mine, theirs in zip(out, part)]
    return out


# ----------------------------------------------------------------------------------------------
# try it


def main():
    p = ArgumentParser(description="Prompt in, completions out, for any model directory or checkpoint.")
    add_model_args(p)
    p.add_argument("--prompt", action="append", required=True, help="repeat for several prompts")
    p.add_argument("--samples", "--n", type=int, default=1, help="completions per prompt")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    check_model_args(p, args)
    if args.samples < 1 or args.max_new_tokens < 1:
        p.error(f"--samples and --max-new-tokens must be >= 1, got {args.samples} and {args.max_new_tokens}")

    model, tokenizer = load_model(args.model, args.window, args.sinks, args.full_layers, device=args.device)
    prompts = [tokenizer.encode(tokenizer.render_prompt(text)) for text in args.prompt]
    gen = generate(model, prompts, args.max_new_tokens, tokenizer.eos_ids, group_size=args.samples,
                   temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, seed=args.seed)
    for row, text in enumerate(completions(tokenizer, gen)):
        i = row // args.samples
        cut = " [cut at max-new-tokens]" if gen.truncated[row] else ""
        print(f"--- prompt {i}, sample {row % args.samples}{cut}\n{tokenizer.render_prompt(args.prompt[i])}{text}")


if __name__ == "__main__":
    run_main(main)
