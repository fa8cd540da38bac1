"""
Sliding-window attention (SWA): the attention every stage of swarr uses.

The convention, used everywhere in this project (the same as Hugging Face transformers and vLLM):

    a window W means the query at position i sees the keys j with  i - W < j <= i,
    i.e. W keys including itself. W=None means full causal attention (j <= i).

    sinks S > 0 additionally keeps the first S positions (j < S) visible to every query
    (StreamingLLM's "attention sinks", SWAA's "keep first"). Sinks never break causality.

One entry point, sliding_window_attention(q, k, v, window, sinks, impl), with four implementations:

    naive    materialises the T x T mask. The reference: any dtype, any device, O(T^2) memory.
    chunked  handwritten. Queries go in chunks; a chunk reads only the keys it can see, so
             memory is O(T * W), never O(T^2). Read this one to learn how SWA saves memory.
    sdpa     torch's scaled_dot_product_attention with a boolean mask (O(T^2) mask).
    flex     torch flex_attention with a cached block mask: fully masked blocks are skipped,
             so compute is O(T * W). Compiled, with lengths rounded up to a few buckets so
             that compilations stay bounded. Trains on CUDA; forward-only on the CPU.
    auto     the fastest correct one for the device (see pick_impl).

Keys may start before the queries (a KV cache or a prefix): with Tq queries and Tk keys the
queries are the *last* Tq positions, i.e. query t sits at absolute position Tk - Tq + t.

Packed rows (training): several documents end to end in one row, doc_start (B, T) giving for each
position the index where its document starts. A query then sees only keys of its own document, with
the window and the sinks counted from that document's start: exactly what each document would see
alone. Every forward can then have one shape, whatever the documents' lengths (naive, sdpa, flex).
A document may also continue another one of its row, its prefix (prefix_start (B, T): where that
prefix starts, or the position's own doc_start if none): it sees the prefix as if it came right
before it, so G completions of one prompt hold the prompt once (GRPO's groups, model.pack_shared).

Shapes: q (B, Hq, Tq, D); k, v (B, Hkv, Tk, D) with Hq a multiple of Hkv (grouped-query
attention); the output is (B, Hq, Tq, D).
"""
import functools
import math
import warnings

import torch
import torch.nn.functional as F

IMPLS = ("naive", "chunked", "sdpa", "flex", "auto")


def check_window(window, sinks):
    if window is not None and (not isinstance(window, int) or window < 1):
        raise ValueError(f"window must be an integer >= 1 or None (full attention), got {window!r}")
    if not isinstance(sinks, int) or sinks < 0:
        raise ValueError(f"sinks must be an integer >= 0, got {sinks!r}")


def visible(q_pos, k_pos, window, sinks):
    """The mask rule itself: True where a query at q_pos may attend a key at k_pos (broadcasts)."""
    mask = k_pos <= q_pos
    if window is not None:
        mask = mask & ((q_pos - k_pos < window) | (k_pos < sinks))
    return mask


def packed_positions(doc_start, prefix_start=None):
    """(B, T) position ids of packed rows: counted from each document's start, after its prefix's length if it has one."""
    pos = torch.arange(doc_start.shape[1], device=doc_start.device) - doc_start
    if prefix_start is None:
        return pos
    lengths = torch.zeros_like(doc_start).scatter_add_(1, doc_start, torch.ones_like(doc_start))  # (B, T): the document starting there
    return pos + torch.where(prefix_start != doc_start, lengths.gather(1, prefix_start), 0)


def document_mask(doc_start, window, sinks, prefix_start=None):
    """(B, T, T) boolean mask of packed rows: same document (or the query's prefix), and visible by position."""
    s_q, s_k = doc_start[:, :, None], doc_start[:, None, :]  # (B, T, 1), (B, 1, T)
    related = (s_q == s_k) if prefix_start is None else (s_q == s_k) | (prefix_start[:, :, None] == s_k)
    pos = packed_positions(doc_start, prefix_start)
    return related & visible(pos[:, :, None], pos[:, None, :], window, sinks)


def window_mask(Tq, Tk, window, sinks, device=None):
    """(Tq, Tk) boolean mask; queries are the last Tq of Tk positions."""
    q_pos = torch.arange(Tk - Tq, Tk, device=device)[:, None]
    k_pos = torch.arange(Tk, device=device)[None, :]
    return visible(q_pos, k_pos, window, sinks)


def group_queries(q, Hkv):
    """Grouped-query attention without copying k and v: (B, Hq, T, D) -> (B, Hkv, G, T, D)."""
    B, Hq, T, D = q.shape
    return q.view(B, Hkv, Hq // Hkv, T, D)


# ----------------------------------------------------------------------------------------------
# naive: the reference


def naive_attention(q, k, v, window, sinks=0, doc_start=None, prefix_start=None):
    B, Hq, Tq, D = q.shape
    Hkv, Tk = k.shape[1], k.shape[2]
    qg = group_queries(q, Hkv)  # (B, Hkv, G, Tq, D)
    scores = qg @ k.unsqueeze(2).transpose(-1, -2) / math.sqrt(D)  # (B, Hkv, G, Tq, Tk)
    if doc_start is None:
        mask = window_mask(Tq, Tk, window, sinks, q.device)
    else:
        mask = document_mask(doc_start, window, sinks, prefix_start)[:, None, None]  # (B, 1, 1, T, T)
    scores = scores.masked_fill(~mask, float("-inf"))
    # the reference softmax runs in at least float32 whatever the input dtype
    probs = torch.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32)).to(q.dtype)
    out = probs @ v.unsqueeze(2)  # (B, Hkv, G, Tq, D)
    return out.reshape(B, Hq, Tq, D)


# ----------------------------------------------------------------------------------------------
# chunked: the handwritten O(T * W) path


def chunked_attention(q, k, v, window, sinks=0, chunk_size=512):
    """
    Why chunks: the full (T, T) score matrix is mostly masked out under a window. A block of C
    consecutive queries [s, s + C) can only see keys in [s - W + 1, s + C), a band of C + W - 1
    keys, plus the S sink keys at the very start. So each chunk computes a (C, C + W + S) score
    block instead of a (C, T) row, and the whole pass holds O(T * (C + W)) numbers, never T^2.
    Autograd keeps one such block per chunk for the backward pass, so training memory is O(T * W)
    too. With W=None the band is everything before the chunk: this degenerates to a memory-hungry
    but correct causal attention.
    """
    B, Hq, Tq, D = q.shape
    Hkv, Tk = k.shape[1], k.shape[2]
    offset = Tk - Tq  # absolute position of query 0
    qg = group_queries(q * (1.0 / math.sqrt(D)), Hkv)  # (B, Hkv, G, Tq, D), scaled once, not per block
    outs = []
    for start in range(0, Tq, chunk_size):
        end = min(start + chunk_size, Tq)
        q_first, q_last = offset + start, offset + end - 1  # absolute positions of the chunk
        # the band of keys this chunk can see: from the window start of its first query to its last
        lo = 0 if window is None else max(0, q_first - window + 1)
        hi = q_last + 1
        k_pos = torch.arange(lo, hi, device=q.device)
        k_band, v_band = k[:, :, lo:hi], v[:, :, lo:hi]  # (B, Hkv, band, D)
        n_sinks = min(sinks, lo)  # sinks already inside the band need no extra copy
        if window is not None and n_sinks > 0:
            k_pos = torch.cat([torch.arange(n_sinks, device=q.device), k_pos])
            k_band = torch.cat([k[:, :, :n_sinks], k_band], dim=2)  # (B, Hkv, S + band, D)
            v_band = torch.cat([v[:, :, :n_sinks], v_band], dim=2)
        q_pos = torch.arange(q_first, q_last + 1, device=q.device)
        mask = visible(q_pos[:, None], k_pos[None, :], window, sinks)  # (C, S + band)
        scores = qg[:, :, :, start:end] @ k_band.unsqueeze(2).transpose(-1, -2)  # (B, Hkv, G, C, S + band)
        scores = scores.masked_fill(~mask, float("-inf"))
        # in the input dtype: torch accumulates a half-precision softmax in float32 anyway, and a
        # float32 copy of every block would double what autograd keeps for the backward pass
        probs = torch.softmax(scores, dim=-1)
        outs.append(probs @ v_band.unsqueeze(2))  # (B, Hkv, G, C, D)
    return torch.cat(outs, dim=3).reshape(B, Hq, Tq, D)


# ----------------------------------------------------------------------------------------------
# sdpa: torch's fused kernels with a boolean mask


def sdpa_attention(q, k, v, window, sinks=0, doc_start=None, prefix_start=None):
    Tq, Tk = q.shape[2], k.shape[2]
    gqa = q.shape[1] != k.shape[1]
    if doc_start is not None:
        mask = document_mask(doc_start, window, sinks, prefix_start)[:, None]  # (B, 1, T, T)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
    if window is None or window >= Tk:
        if Tq == Tk:  # plain causal: lets SDPA pick flash attention
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        if Tk - Tq <= Tq:  # a prefix no longer than the queries (model.hidden_states' prompts held once): the queries padded at
            q = F.pad(q, (0, 0, Tk - Tq, 0))  # the front, (B, Hq, Tk, D), so that causal flash runs, its padded rows dropped:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)[:, :, Tk - Tq :]  # at most 2x the FLOPs
        window = None
    mask = window_mask(Tq, Tk, window, sinks, q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)


# ----------------------------------------------------------------------------------------------
# flex: block-sparse attention, skipping blocks the window masks out entirely


# Compiled flex specialises on shapes, and torch allows a function 8 compilations
# (torch._dynamo.config.recompile_limit); past them flex ran its unfused path, which builds the
# T x T scores: 10-20x slower, memory growing with T^2, and only a log line said so (issue 14).
# Here flex only ever sees lengths rounded up to buckets: q, k and v are padded at the end and
# the output sliced back. Right padding changes nothing before it (a real query at i never sees a
# key at j > i), and padding q and k by the same amount keeps queries the last Tq of Tk positions.
#   Why buckets, not dynamic shapes: compiled with dynamic=True, flex does not build on the CPU
# (torch 2.13: its generated C++ fails to compile), so CI could not test it, and its speed with
# symbolic lengths on the GPU is unmeasured. Static shapes per bucket work on both.
#   Why geometric buckets: multiples of 128 alone are 256 buckets up to 32k, each compiled (5-10 s
# on an H200). Here the step is 128 up to 1024, then doubles with each doubling of the length
# (4 buckets per octave): 28 buckets up to 32k, 36 up to 128k; padding at most 127 tokens up to
# 1024, at most 25% above. Each bucket compiles once per window, dtype and grad mode: 28 x 2 x 2
# already exceed torch's 8, so the limit is raised (to 128) for these calls.
#   flex_attention is its own compiled region, also inside compiled blocks (model.py): a graph
# break, so its shapes stay static while the rest of the block runs with a symbolic length.
#   No silent fallback: compiled with fullgraph=True, torch raises at the limit instead of running
# flex eagerly, and its "called without torch.compile" warning is turned into an error.

FLEX_BLOCK = 128  # flex_attention's default block: block masks, and so buckets, come in multiples of it
RECOMPILE_LIMIT = 128  # per function (torch's total per function stays 256)


def bucket_length(T, bucket=FLEX_BLOCK, per_octave=4):
    """T rounded up to a bucket: a multiple of `bucket`, coarser with length (per_octave per doubling)."""
    if not isinstance(bucket, int) or bucket < FLEX_BLOCK or bucket % FLEX_BLOCK:
        raise ValueError(f"bucket must be a multiple of flex's block size {FLEX_BLOCK}, got {bucket!r}")
    step = bucket
    while T > 2 * per_octave * step:
        step *= 2
    return -(-T // step) * step


@functools.cache
def compiled_flex_attention():
    from torch.nn.attention.flex_attention import flex_attention
    # fullgraph: at the recompile limit torch raises instead of running flex unfused
    return torch.compile(flex_attention, dynamic=False, fullgraph=True)


def recompile_budget():
    """torch's recompile limit raised deliberately, for torch._dynamo.config.patch (renamed in torch 2.7)."""
    config = torch._dynamo.config
    name = "recompile_limit" if "recompile_limit" in config.get_config_copy() else "cache_size_limit"
    return {name: max(getattr(config, name), RECOMPILE_LIMIT)}


@functools.lru_cache(maxsize=32)
def flex_block_mask(Tq, Tk, window, sinks, device, block=FLEX_BLOCK):
    """
    flex's BlockMask of the window, from block coordinates alone. torch's create_block_mask
    either materialises the Tq x Tk mask (128 GiB at 128k tokens) or, with _compile=True, compiles
    a kernel first: 3 minutes on a fresh H100 machine. A window's blocks follow from their corners:
    O((T / block)^2) small integer ops, nothing compiled. The test checks it against create_block_mask.
    Built once per bucket, then every layer and step of that bucket reuses it.
    """
    from torch.nn.attention.flex_attention import BlockMask
    offset = Tk - Tq  # queries are the last Tq of Tk positions

    def mask_mod(b, h, q_idx, kv_idx):
        return visible(q_idx + offset, kv_idx, window, sinks)

    q_start = torch.arange(0, Tq, block, device=device)[:, None]  # (Q blocks, 1)
    k_start = torch.arange(0, Tk, block, device=device)[None, :]  # (1, KV blocks)
    q0, q1 = q_start + offset, torch.clamp(q_start + block, max=Tq) - 1 + offset  # first and last query position
    k0, k1 = k_start, torch.clamp(k_start + block, max=Tk) - 1
    reach = Tk if window is None else window  # full causal attention: a window that reaches every key
    # some pair is visible: a distance q - k in [0, window) occurs, or a sink key sits at or before a query
    touched = ((q1 >= k0) & (q0 - k1 < reach)) | ((k0 < sinks) & (k0 <= q1))
    # every pair sees: all keys are at or before the first query, and each is a sink or inside the
    # last query's window; a block cut by the end of the sequence stays partial, as torch leaves it
    whole = (q_start + block <= Tq) & (k_start + block <= Tk)
    full = whole & (k1 <= q0) & ((k1 < sinks) | (torch.clamp(k0, min=sinks) > q1 - reach))
    partial = touched & ~full

    def as_indices(blocks):  # (Q, KV) bool -> per query block: the count, and the KV block indices listed first
        counts = blocks.sum(-1, dtype=torch.int32)  # (Q,)
        order = torch.argsort((~blocks).to(torch.int8), dim=-1, stable=True).to(torch.int32)  # (Q, KV), ascending
        return counts[None, None], order[None, None]  # (1, 1, Q), (1, 1, Q, KV): B and H broadcast

    return BlockMask.from_kv_blocks(*as_indices(partial), *as_indices(full), BLOCK_SIZE=block, mask_mod=mask_mod,
                                    seq_lengths=(Tq, Tk))


def flex_document_mask(doc_start, window, sinks, prefix_start=None, block=FLEX_BLOCK):
    """
    flex's BlockMask of packed rows, doc_start (B, T) with T a multiple of the block, from block
    corners as flex_block_mask, row by row. Two blocks can hold a visible pair only if a document
    has positions in both (document starts only grow along a row, so a block's first and last
    positions bound its documents) and their positions are near enough (inside a document, distances
    are position distances). They are full only inside one document and wholly inside the window.
    Sinks sit at every document's start: with sinks, blocks sharing a document stay partial
    (correct, just less sparse). A prefix (prefix_start, also growing along a row) adds the blocks
    of the prefixes a query block's documents continue, near by position ids (a completion sits
    far from its prompt in the row but right after it in positions); those pairs stay partial.
    Built once per forward: every layer of that window reuses it.
    """
    from torch.nn.attention.flex_attention import BlockMask
    B, T = doc_start.shape

    def corners(t):  # (B, T) growing along each row -> (B, Q, 1) and (B, 1, KV): each block's first and last value
        t = t.view(B, T // block, block)  # (B, blocks, block)
        return t[:, :, 0, None], t[:, :, -1, None], t[:, None, :, 0], t[:, None, :, -1]

    q_first, q_last, k_first, k_last = corners(doc_start)
    start = torch.arange(0, T, block, device=doc_start.device)
    q0, q1, k0, k1 = start[:, None], start[:, None] + block - 1, start[None, :], start[None, :] + block - 1
    reach = T if window is None else window
    near = (q1 >= k0) & (q0 - k1 < reach)  # (Q, KV)
    if sinks:
        near = near | (k0 <= q1)
    touched = (k_last >= q_first) & (q_last >= k_first) & near  # (B, Q, KV)
    one_document = (q_first == q_last) & (k_first == k_last) & (q_first == k_first)
    full = one_document & (k1 <= q0) & (k0 > q1 - reach)
    if prefix_start is not None:
        p_first, p_last, _, _ = corners(prefix_start)
        pos = packed_positions(doc_start, prefix_start)  # (B, T)
        lo, hi = pos.view(B, T // block, block).amin(-1), pos.view(B, T // block, block).amax(-1)  # (B, blocks): position id bounds
        near_pos = (hi[:, :, None] >= lo[:, None, :]) & ((lo[:, :, None] - hi[:, None, :] < reach) | (lo[:, None, :] < sinks))
        touched = touched | ((k_last >= p_first) & (p_last >= k_first) & near_pos)

    def mask_mod(b, h, q_idx, kv_idx):
        s_q, s_k = doc_start[b, q_idx], doc_start[b, kv_idx]
        if prefix_start is None:
            return (s_q == s_k) & visible(q_idx - s_q, kv_idx - s_k, window, sinks)
        return ((s_q == s_k) | (prefix_start[b, q_idx] == s_k)) & visible(pos[b, q_idx], pos[b, kv_idx], window, sinks)

    partial = touched & ~full

    def as_indices(blocks):  # (B, Q, KV) bool -> the count per query block, and the KV block indices listed first
        counts = blocks.sum(-1, dtype=torch.int32)  # (B, Q)
        order = torch.argsort((~blocks).to(torch.int8), dim=-1, stable=True).to(torch.int32)  # (B, Q, KV)
        return counts[:, None], order[:, None]  # (B, 1, Q), (B, 1, Q, KV): H broadcasts

    return BlockMask.from_kv_blocks(*as_indices(partial), *as_indices(full), BLOCK_SIZE=block, mask_mod=mask_mod, seq_lengths=(T, T))


_document_masks = {}  # (window, sinks) -> (doc_start, prefix_start, their block mask): the last forward's, for its other layers


def cached_document_mask(doc_start, prefix_start, window, sinks, pad):
    held = _document_masks.get((window, sinks))
    if held is None or held[0] is not doc_start or held[1] is not prefix_start:
        # the padding: one more document, with no prefix
        padded = [F.pad(t, (0, pad), value=doc_start.shape[1]).contiguous() if pad else t for t in (doc_start, prefix_start) if t is not None]
        held = _document_masks[(window, sinks)] = (doc_start, prefix_start, flex_document_mask(padded[0], window, sinks, *padded[1:]))
    return held[2]


@torch.compiler.disable  # its own compiled region, static shapes per bucket, also inside compiled blocks
def flex_attention(q, k, v, window, sinks=0, doc_start=None, prefix_start=None, bucket=FLEX_BLOCK):
    Tq, Tk = q.shape[2], k.shape[2]
    pad = bucket_length(Tk, bucket) - Tk
    if q.device.type == "cpu":  # what torch's CPU kernel lacks: say so before compiling anything
        if q.dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"impl='flex' on the CPU takes float32, bfloat16 or float16, got {q.dtype} (use 'chunked' or 'sdpa')")
        if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
            raise ValueError("impl='flex' on the CPU is forward-only (torch has no CPU flex backward): train on CUDA, "
                             "run under torch.no_grad(), or use 'chunked' or 'sdpa'")
    elif q.device.type != "cuda":
        raise ValueError(f"impl='flex' needs a CUDA or CPU device; got tensors on {q.device.type} (use 'chunked' or 'sdpa')")
    # zeros at the end: (B, H, T + pad, D), contiguous whatever came in (compiled flex specialises on
    # strides too: a padded and an unpadded call of one bucket would otherwise compile twice)
    dtype = autocast_dtype(q) or q.dtype
    q, k, v = ((F.pad(t, (0, 0, 0, pad)) if pad else t).to(dtype).contiguous() for t in (q, k, v))
    if doc_start is None:
        block_mask = flex_block_mask(Tq + pad, Tk + pad, window, sinks, str(q.device))
    else:
        block_mask = cached_document_mask(doc_start, prefix_start, window, sinks, pad)
    with torch._dynamo.config.patch(**recompile_budget()), warnings.catch_warnings():
        # torch's own sign that flex is about to run unfused (no compiler): make it an error too
        warnings.filterwarnings("error", message=".*without torch.compile", category=UserWarning)
        try:
            out = compiled_flex_attention()(q, k, v, block_mask=block_mask, enable_gqa=q.shape[1] != k.shape[1])
        except (UserWarning, torch._dynamo.exc.FailOnRecompileLimitHit) as e:
            raise RuntimeError(f"flex_attention would fall back to its unfused path, which builds the full "
                               f"{Tq + pad} x {Tk + pad} score matrix (recompile limit reached, or torch.compile "
                               f"disabled): {type(e).__name__}: {str(e).splitlines()[0]}") from e
    return out[:, :, :Tq].contiguous()  # (B, Hq, Tq, D) without the padded rows; one layout whatever the padding


# ----------------------------------------------------------------------------------------------
# the one entry point


def autocast_dtype(q):
    """The half-precision dtype autocast runs attention in on q's device, or None. SDPA follows autocast by itself; flex
    does not (its inputs stay as they come: float32 under bf16 autocast, as rotary embedding leaves them), so flex_attention casts."""
    if q.device.type == "cuda" and torch.is_autocast_enabled("cuda") and torch.get_autocast_dtype("cuda") in (torch.bfloat16, torch.float16):
        return torch.get_autocast_dtype("cuda")
    return None


def pick_impl(q, k, window, packed=False):
    """
    auto: packed rows are flex on CUDA in half precision or under half-precision autocast (it skips
    the blocks between documents, where SDPA's mask spans the whole row: 3.70 against 4.00 s of a
    GRPO step's training with each group packed in one row on an H200, BENCHMARKS.md), SDPA with their mask
    elsewhere. Full causal attention is SDPA's flash kernel everywhere. A window on CUDA in half
    precision is flex (it skips masked blocks: O(T*W) compute, ~5x full causal at T=64k, W=4k on
    an H100); otherwise SDPA with a mask is fastest while the T x T mask is small, then the
    chunked loop takes over to keep memory O(T * W). (Under autocast, rows of 640 with W=256 ran
    their training forward in 1.01 s with SDPA's mask, 1.25 s with flex: a window there stays SDPA.)
    """
    on_gpu, half = q.device.type == "cuda" and q.shape[2] >= 128, q.dtype in (torch.bfloat16, torch.float16)
    if packed:
        return "flex" if on_gpu and (half or autocast_dtype(q) is not None) else "sdpa"
    if window is None or window >= k.shape[2]:
        return "sdpa"
    if on_gpu and half:
        return "flex"  # (flex's short-query decoding kernels do not cover every shape and dtype)
    if q.shape[2] * k.shape[2] <= 4096 * 4096:
        return "sdpa"
    return "chunked"


def sliding_window_attention(q, k, v, window=None, sinks=0, impl="auto", doc_start=None, prefix_start=None):
    """q (B, Hq, Tq, D), k and v (B, Hkv, Tk, D) with Tk >= Tq; doc_start (and prefix_start) (B, T) for packed rows -> (B, Hq, Tq, D)."""
    check_window(window, sinks)
    if q.dim() != 4 or k.dim() != 4 or k.shape != v.shape or (q.shape[0], q.shape[3]) != (k.shape[0], k.shape[3]):
        raise ValueError(f"expected q (B, Hq, Tq, D) and k, v (B, Hkv, Tk, D); got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[1] % k.shape[1] != 0:
        raise ValueError(f"query heads ({q.shape[1]}) must be a multiple of key/value heads ({k.shape[1]})")
    if q.shape[2] > k.shape[2]:
        raise ValueError(f"more queries ({q.shape[2]}) than keys ({k.shape[2]})")
    if doc_start is not None:
        if doc_start.shape != (q.shape[0], k.shape[2]) or q.shape[2] != k.shape[2]:
            raise ValueError(f"packed rows need as many queries as keys and doc_start (B, T); got q {tuple(q.shape)}, "
                             f"k {tuple(k.shape)}, doc_start {tuple(doc_start.shape)}")
        if impl == "chunked":
            raise ValueError("impl='chunked' does not take packed rows (doc_start): use 'naive', 'sdpa' or 'flex'")
    if prefix_start is not None and (doc_start is None or prefix_start.shape != doc_start.shape):
        raise ValueError(f"prefix_start needs doc_start of its shape; got {tuple(prefix_start.shape)} and "
                         f"{None if doc_start is None else tuple(doc_start.shape)}")
    if impl == "auto":
        impl = pick_impl(q, k, window, packed=doc_start is not None)
    if impl == "naive":
        return naive_attention(q, k, v, window, sinks, doc_start, prefix_start)
    if impl == "chunked":
        return chunked_attention(q, k, v, window, sinks)
    if impl == "sdpa":
        return sdpa_attention(q, k, v, window, sinks, doc_start, prefix_start)
    if impl == "flex":
        return flex_attention(q, k, v, window, sinks, doc_start, prefix_start)
    raise ValueError(f"unknown attention impl {impl!r}; choose one of {IMPLS}")
