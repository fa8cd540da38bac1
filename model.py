"""
A from-scratch decoder for the Llama family as Hugging Face ships it (model_type llama, qwen2,
qwen3, mistral), with sliding-window attention per layer.

    model = Model.from_pretrained("path/to/Qwen2.5-0.5B-Instruct", window=4096, full_layers=(0,))
    logits = model(input_ids)                     # (B, T, vocab)
    checkpoint.export_hf(model, "out/hf")         # loads in transformers with the same attention

What the four model types differ in, and where it lives here:
    qwen2    bias on q, k and v projections                          Attention.__init__
    qwen3    RMSNorm on each query and key head (q_norm, k_norm)     Attention.forward
    llama    optional attention / MLP bias; llama3 rope scaling      Config, rope_frequencies
    mistral  a sliding window set in its config (v0.1)               layer_windows_from_hf

Parameters keep Hugging Face's names (minus the leading "model."), so loading and saving is a
rename, not a conversion table. Also here: the weight products (linear: a triton matvec for a single
row, batch-1 decode), the shapes of real checkpoints (CONFIGS, for tests and benchmarks with random
weights), the training-side head (token_logprobs), the optimizer and torch.compile for training.
Writing files is checkpoint.py's.
"""
import copy
import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open

try:  # ships with torch's CUDA builds; only matvec uses it
    import triton
    import triton.language as tl
except ImportError:
    triton = None

from swa_attention import bucket_length, check_window, packed_positions, recompile_budget, sliding_window_attention
from tokenizer import first_line

MODEL_TYPES = ("llama", "qwen2", "qwen3", "mistral")
ROPE_TYPES = ("default", "linear", "llama3")

# config.json shapes of real checkpoints: random weights of these run exactly as fast as trained ones
CONFIGS = {
    "qwen2.5-1.5b": dict(model_type="qwen2", vocab_size=151936, hidden_size=1536, intermediate_size=8960,
                         num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2, head_dim=128,
                         tie_word_embeddings=True, rope_theta=1000000.0, rms_norm_eps=1e-6, max_position_embeddings=32768),
    "qwen2.5-7b": dict(model_type="qwen2", vocab_size=152064, hidden_size=3584, intermediate_size=18944,
                       num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4, head_dim=128,
                       tie_word_embeddings=False, rope_theta=1000000.0, rms_norm_eps=1e-6, max_position_embeddings=32768),
    "llama-3.1-8b": dict(model_type="llama", vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                         tie_word_embeddings=False, rope_theta=500000.0, rms_norm_eps=1e-5, max_position_embeddings=131072,
                         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 8192}),
}


@dataclass
class Config:
    model_type: str = "llama"
    vocab_size: int = 32000
    hidden_size: int = 256
    intermediate_size: int = 688
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    head_dim: int = 64
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None  # {"rope_type": "llama3" | "linear", ...}
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = False
    attention_bias: bool = False  # q, k, v and o bias (llama, qwen3); qwen2 always has q, k, v bias
    mlp_bias: bool = False
    qk_norm: bool = False  # qwen3
    # per layer: None = full causal attention, an int = that window (see swa_attention.py)
    layer_windows: list = field(default_factory=list)
    sinks: int = 0
    bos_token_id: int | None = None
    eos_token_id: int | list | None = None

    def __post_init__(self):
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"unknown model_type {self.model_type!r}; swarr supports {MODEL_TYPES}")
        if not self.layer_windows:
            self.layer_windows = [None] * self.num_hidden_layers
        if len(self.layer_windows) != self.num_hidden_layers:
            raise ValueError(f"layer_windows has {len(self.layer_windows)} entries for {self.num_hidden_layers} layers")
        for w in self.layer_windows:
            check_window(w, self.sinks)
        rope_type = (self.rope_scaling or {}).get("rope_type", "default")
        if rope_type not in ROPE_TYPES:
            raise ValueError(f"rope_scaling type {rope_type!r} is not supported; swarr supports {ROPE_TYPES}")


def apply_window(config, window=None, sinks=0, full_layers=()):
    """Convert to SWA: every layer gets `window` except `full_layers`, which keep full attention."""
    check_window(window, sinks)
    n = config.num_hidden_layers
    for i in full_layers:
        if not 0 <= i < n:
            raise ValueError(f"full_layers index {i} is out of range for a model with {n} layers")
    config.layer_windows = [None if i in full_layers else window for i in range(n)]
    config.sinks = sinks


def attention_label(config):
    windows = config.layer_windows
    if all(w is None for w in windows):
        return "full"
    label = "W=" + "/".join(str(w) for w in sorted({w for w in windows if w is not None}))
    if config.sinks:
        label += f" +{config.sinks} sinks"
    full = [str(i) for i, w in enumerate(windows) if w is None]
    return label + (f", full layers {','.join(full)}" if full else "")


# ----------------------------------------------------------------------------------------------
# weight products: F.linear, and at a single row on a GPU a triton matvec


def linear(x, weight, bias=None):
    """
    x (..., in) @ weight.T + bias -> (..., out): every weight product of the model. One row in all (batch-1
    decode) on a GPU in bf16 or fp16 goes through matvec; everything else through F.linear, its reference.
    At one row a product only reads its weight, and cuBLAS read the Qwen2.5-1.5B decode products at
    0.8-4.1 TB/s of the H200's 4.8, matvec at 1.3-4.4 (BENCHMARKS.md). Nothing that needs a gradient takes it.
    """
    if (triton is not None and x.is_cuda and x.numel() == x.shape[-1] and x.dtype in (torch.bfloat16, torch.float16)
            and weight.dtype == x.dtype and weight.is_contiguous()
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)))):
        return matvec(x.reshape(-1), weight, bias).view(*x.shape[:-1], weight.shape[0])
    return F.linear(x, weight, bias)


class Linear(nn.Linear):
    """nn.Linear through `linear`: the same parameters and names."""

    def forward(self, x):
        return linear(x, self.weight, self.bias)


# Programmatic dependent launch (PDL, Hopper and later): a kernel launched with it may start while the kernel
# before it still runs, and waits for that one (gdc_wait) just before it first reads what that one wrote.
# A batch-1 decode step is ~340 kernels of a few µs, each with a fixed cost to start: with PDL, matvec, the decode
# attention and its merge (ours) and the compiled step's own kernels (inductor's triton.enable_pdl) start
# early, and matvec asks for its first weight tile, which no kernel of the step writes, before it waits.
# Results are bit for bit the same. On an H200 at the Qwen2.5-1.5B shape, 1.45 -> 1.27 ms a step at batch 1,
# but 4.39 -> 4.63-4.69 ms at batch 256, whose step is a few long kernels (BENCHMARKS.md): only one-row
# decode launches with it. PDL = False: every kernel starts after the one before it ends (profile_step's comparison).
PDL = True


def pdl_launch(device, rows=1):
    """
    A decode kernel's GDC flag and launch options, `rows` the decode batch: programmatic dependent launch with PDL
    on, at one row, on an sm_90+ GPU, with a triton that has it; else {"GDC": False} (a triton without it refuses
    even launch_pdl=False).
    """
    if (PDL and rows == 1 and device.type == "cuda" and triton is not None and hasattr(tl.extra.cuda, "gdc_wait")
            and cuda_capability(device)[0] >= 9):
        return {"GDC": True, "launch_pdl": True}
    return {"GDC": False}


cuda_capability = functools.cache(torch.cuda.get_device_capability)  # asked for every product, ~100 times a step


# matvec: each program takes BLOCK_N rows of the weight and walks along them BLOCK_K at a time, the
# products summed in float32 in a (BLOCK_N, BLOCK_K) tile and reduced once at the end, the bias added
# before the one rounding to the activation dtype, as cuBLAS's epilogue does. The first tile is read
# before the loop so that, under PDL, it is on its way while the kernel waits for x.
if triton is not None:
    @triton.jit
    def _matvec_kernel(X, W, BIAS, Y, N, K, HAS_BIAS: tl.constexpr, EVEN_K: tl.constexpr,
                       BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GDC: tl.constexpr):
        n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        rows = n < N
        w_rows = W + n[:, None].to(tl.int64) * K  # 64-bit: a vocabulary-sized head can pass 2**31 elements
        k = tl.arange(0, BLOCK_K)
        if EVEN_K:
            w = tl.load(w_rows + k[None, :], mask=rows[:, None], other=0.0)  # (BLOCK_N, BLOCK_K)
        else:
            w = tl.load(w_rows + k[None, :], mask=rows[:, None] & (k[None, :] < K), other=0.0)
        if GDC:  # x is the last kernel's output
            tl.extra.cuda.gdc_wait()
            tl.extra.cuda.gdc_launch_dependents()
        x = tl.load(X + k, mask=k < K, other=0.0)
        acc = w.to(tl.float32) * x.to(tl.float32)[None, :]  # (BLOCK_N, BLOCK_K)
        for k0 in range(BLOCK_K, K, BLOCK_K):
            k = k0 + tl.arange(0, BLOCK_K)
            if EVEN_K:
                x = tl.load(X + k)
                w = tl.load(w_rows + k[None, :], mask=rows[:, None], other=0.0)
            else:
                x = tl.load(X + k, mask=k < K, other=0.0)
                w = tl.load(w_rows + k[None, :], mask=rows[:, None] & (k[None, :] < K), other=0.0)
            acc += w.to(tl.float32) * x.to(tl.float32)[None, :]
        y = tl.sum(acc, 1)  # (BLOCK_N,)
        if HAS_BIAS:
            y += tl.load(BIAS + n, mask=rows, other=0.0).to(tl.float32)
        tl.store(Y + n, y.to(Y.dtype.element_ty), mask=rows)


def matvec_config(N, K):
    """
    (BLOCK_N, BLOCK_K, num_warps, num_stages) for a (N, K) weight. Two rows a program was the fastest at every
    Qwen2.5-1.5B decode product on an H200 (BENCHMARKS.md); a weight of few rows has few programs, each of which
    then reads more of its rows at once. Timed in whole decode steps at Qwen2.5-1.5B and -7B shapes, 2048 columns
    and 8 warps for up to 4096 rows beat 1024 and 4 at both.
    """
    return (2, 2048, 8, 2) if N <= 4096 else (2, 512, 2, 2)


@torch.library.custom_op("swarr::matvec", mutates_args=())
def matvec(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x (K,) @ weight (N, K) contiguous, .T + bias (N,) -> (N,) in x's dtype."""
    (N, K), out = weight.shape, x.new_empty(weight.shape[0])
    block_n, block_k, warps, stages = matvec_config(N, K)
    _matvec_kernel[(triton.cdiv(N, block_n),)](x.contiguous(), weight, weight if bias is None else bias, out, N, K,
                                              HAS_BIAS=bias is not None, EVEN_K=K % block_k == 0,
                                              BLOCK_N=block_n, BLOCK_K=block_k, num_warps=warps, num_stages=stages, **pdl_launch(x.device))
    return out


@matvec.register_fake
def _(x, weight, bias):
    return x.new_empty(weight.shape[0])


# ----------------------------------------------------------------------------------------------
# the layers


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        # normalise in float32 whatever the activation dtype, as transformers does
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope_frequencies(config):
    """Inverse frequencies (head_dim / 2,), with the llama3 and linear scalings of HF checkpoints."""
    d = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    scaling = config.rope_scaling or {}
    rope_type = scaling.get("rope_type", "default")
    if rope_type == "linear":
        inv_freq = inv_freq / scaling["factor"]
    elif rope_type == "llama3":
        # long wavelengths are slowed by `factor`, short ones kept, the band between interpolated
        factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_len = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old_len / high) & (wavelen <= old_len / low)
        inv_freq = torch.where(medium, smoothed, scaled)
    return inv_freq


def rope_cos_sin(inv_freq, positions, dtype):
    """positions (B, T) -> cos, sin (B, 1, T, head_dim), computed in float32 like transformers."""
    freqs = positions.float()[..., None] * inv_freq  # (B, T, D/2)
    emb = torch.cat([freqs, freqs], dim=-1)  # (B, T, D)
    return emb.cos().to(dtype)[:, None], emb.sin().to(dtype)[:, None]


def apply_rope(x, cos, sin):
    """Rotate-half rotary embedding, the Hugging Face layout: x (B, H, T, D)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class Attention(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.layer_idx, window = layer_idx, config.layer_windows[layer_idx]
        self.n_heads, self.n_kv_heads, self.head_dim = config.num_attention_heads, config.num_key_value_heads, config.head_dim
        self.window, self.sinks = window, config.sinks
        qkv_bias = config.attention_bias or config.model_type == "qwen2"
        H, D = config.hidden_size, config.head_dim
        self.q_proj = Linear(H, self.n_heads * D, bias=qkv_bias)
        self.k_proj = Linear(H, self.n_kv_heads * D, bias=qkv_bias)
        self.v_proj = Linear(H, self.n_kv_heads * D, bias=qkv_bias)
        self.o_proj = Linear(self.n_heads * D, H, bias=config.attention_bias)
        if config.qk_norm:
            self.q_norm = RMSNorm(D, config.rms_norm_eps)
            self.k_norm = RMSNorm(D, config.rms_norm_eps)
        self.fused = None  # (weight, bias) of q, k and v side by side: fuse_projections, for generation copies

    def project(self, x, cos, sin):
        """x (B, T, H) -> q (B, Hq, T, D), k and v (B, Hkv, T, D), rotary embedding applied."""
        B, T, _ = x.shape
        if self.fused is None:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        else:
            q, k, v = linear(x, *self.fused).split([self.n_heads * self.head_dim] + [self.n_kv_heads * self.head_dim] * 2, dim=-1)
        q = q.view(B, T, self.n_heads, self.head_dim)  # (B, T, Hq, D)
        k = k.view(B, T, self.n_kv_heads, self.head_dim)  # (B, T, Hkv, D)
        v = v.view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, Hkv, T, D)
        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)
        q = apply_rope(q.transpose(1, 2), cos, sin)  # (B, Hq, T, D)
        k = apply_rope(k.transpose(1, 2), cos, sin)  # (B, Hkv, T, D)
        return q, k, v

    def forward(self, x, cos, sin, impl="auto", cache=None, doc_start=None, prefix_start=None, prefix=None):
        B, T, _ = x.shape
        q, k, v = self.project(x, cos, sin)
        if prefix is not None:
            y = self.attend_prefixed(q, k, v, impl, *prefix)
        elif cache is None:
            y = sliding_window_attention(q, k, v, self.window, self.sinks, impl, doc_start, prefix_start)  # (B, Hq, T, D)
        else:  # generation: the KV cache (generate.py) stores k, v and attends over what it holds
            y = cache.attend(self.layer_idx, q, k, v, impl)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))  # (B, T, Hq * D) -> (B, T, H)

    def attend_prefixed(self, q, k, v, impl, P, L, T, of):
        """
        One row holding P prompts of L positions, then R = len(of) rows of T positions, row r continuing
        prompt of[r] (Model.hidden_states' prefix_ids): each prompt attends to itself, each row to its
        prompt's keys and values, then its own. q (1, Hq, P * L + R * T, D), k and v (1, Hkv, ...) -> as q.
        """
        n, R = P * L, of.shape[0]
        def rows(t, count, length):  # (1, H, count * length, D) -> (count, H, length, D)
            return t[0].unflatten(1, (count, length)).transpose(0, 1)

        q_prompt, k_prompt, v_prompt = (rows(t[:, :, :n], P, L) for t in (q, k, v))  # (P, H, L, D)
        q_rows, k_rows, v_rows = (rows(t[:, :, n:], R, T) for t in (q, k, v))  # (R, H, T, D)
        y_prompt = sliding_window_attention(q_prompt, k_prompt, v_prompt, self.window, self.sinks, impl)
        k_rows, v_rows = torch.cat([k_prompt[of], k_rows], dim=2), torch.cat([v_prompt[of], v_rows], dim=2)  # (R, Hkv, L + T, D)
        y_rows = sliding_window_attention(q_rows, k_rows, v_rows, self.window, self.sinks, impl)  # queries: the last T of L + T
        return torch.cat([y_prompt.transpose(0, 1).flatten(1, 2), y_rows.transpose(0, 1).flatten(1, 2)], dim=1)[None]  # (1, Hq, n + R * T, D)


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        H, I, bias = config.hidden_size, config.intermediate_size, config.mlp_bias
        self.gate_proj = Linear(H, I, bias=bias)
        self.up_proj = Linear(H, I, bias=bias)
        self.down_proj = Linear(I, H, bias=bias)
        self.fused = None  # (weight, bias) of gate and up side by side: fuse_projections

    def forward(self, x):
        gate, up = (self.gate_proj(x), self.up_proj(x)) if self.fused is None else linear(x, *self.fused).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)  # SwiGLU


class Block(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config, layer_idx)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, impl="auto", cache=None, doc_start=None, prefix_start=None, prefix=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, impl, cache, doc_start, prefix_start, prefix)
        return x + self.mlp(self.post_attention_layernorm(x))


# ----------------------------------------------------------------------------------------------
# the model


class Model(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        # rotary frequencies stay float32 whatever the weights' dtype: a plain attribute, so that
        # model.to(torch.bfloat16) cannot round them (it would shift every position's angle)
        self.inv_freq = rope_frequencies(config)
        self.impl = "auto"  # attention implementation, see swa_attention.py
        self.checkpointing = False  # activation checkpointing per block, for long sequences
        self.head_logprobs = head_logprobs  # token_logprobs' head; compile_for_training swaps in a compiled one
        self.checkpoint_head = True  # recompute the head's logits in the backward (token_logprobs; compile_for_training: off)
        self.pad_to_buckets = False  # token_logprobs pads lengths to swa_attention.bucket_length (compile_for_training)

    def set_window(self, window=None, sinks=0, full_layers=()):
        """Switch attention in place (SA -> SWA conversion is only this: the weights do not change)."""
        apply_window(self.config, window, sinks, full_layers)
        for layer, w in zip(self.layers, self.config.layer_windows):
            layer.self_attn.window, layer.self_attn.sinks = w, sinks

    def hidden_states(self, input_ids, positions=None, cache=None, doc_start=None, prefix_start=None, prefix_ids=None, prefix_of=None):
        """
        input_ids (B, T); positions (B, T), by default 0..T-1 in every row, or counted from each
        document's start (after its prefix) in packed rows (doc_start, prefix_start (B, T): swa_attention.py, pack).
        prefix_ids (P, L) with prefix_of (B,): row b continues prompt prefix_of[b]. Each prompt is held
        once: the prompts, then the rows, all in one row (the products and the MLP run on it as on
        any row), where attention takes them apart (Attention.attend_prefixed). -> the rows' own (B, T, H).
        """
        B, T = input_ids.shape
        prefix, n = None, 0
        if prefix_ids is not None:  # G completions of a prompt, and the gradients through it, without G copies of it
            (P, L), n, device = prefix_ids.shape, prefix_ids.numel(), input_ids.device
            prefix = (P, L, T, prefix_of)
            positions = torch.cat([torch.arange(L, device=device).repeat(P), torch.arange(L, L + T, device=device).repeat(B)])[None]
            input_ids = torch.cat([prefix_ids.reshape(-1), input_ids.reshape(-1)])[None]  # (1, P * L + B * T)
        elif positions is None:
            positions = torch.arange(T, device=input_ids.device).expand(B, T) if doc_start is None else packed_positions(doc_start, prefix_start)
        x = self.embed_tokens(input_ids)  # (B, T, H), or (1, P * L + B * T, H)
        if self.inv_freq.device != x.device:
            self.inv_freq = self.inv_freq.to(x.device)
        cos, sin = rope_cos_sin(self.inv_freq, positions, x.dtype)
        for layer in self.layers:
            if self.checkpointing and self.training and cache is None:
                x = torch.utils.checkpoint.checkpoint(layer, x, cos, sin, self.impl, None, doc_start, prefix_start, prefix, use_reentrant=False)
            else:
                x = layer(x, cos, sin, self.impl, cache, doc_start, prefix_start, prefix)
        x = self.norm(x)
        return x if prefix is None else x[0, n:].view(B, T, -1)  # (B, T, H)

    def forward(self, input_ids, positions=None, cache=None):
        return self.lm_head(self.hidden_states(input_ids, positions, cache))  # (B, T, vocab)

    # ------------------------------------------------------------------------------------------
    # Hugging Face checkpoints in and out

    @classmethod
    def from_pretrained(cls, path, window="config", sinks=0, full_layers=(), dtype=None, device="cpu"):
        """
        Load a Hugging Face directory (config.json + model.safetensors, or a sharded
        model.safetensors.index.json). window="config" keeps the attention the checkpoint's config
        sets (full attention, or its own sliding window); None forces full attention; an int
        converts to SWA, with `full_layers` keeping full attention.
        """
        path = Path(path)
        try:
            config = config_from_hf(read_json(path / "config.json"))
        except (KeyError, TypeError, ValueError) as e:  # a field missing, of the wrong type, or not supported
            raise ValueError(f"{path / 'config.json'}: {hf_config_error(e)}") from None
        if window != "config":
            apply_window(config, window, sinks, full_layers)
        elif sinks or full_layers:
            raise ValueError("sinks and full_layers need an explicit window")
        if dtype is None:
            dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
        with torch.device("meta"):
            model = cls(config)
        model.load_weights(read_safetensors(path), device, dtype)
        return model

    def load_weights(self, tensors, device, dtype):
        """tensors: {hf_name: tensor}. Every parameter must be there with its exact shape."""
        expected = {hf_name(n): p for n, p in self.named_parameters()}
        if self.config.tie_word_embeddings:
            expected.pop("lm_head.weight", None)
        for name, param in expected.items():
            if name not in tensors:
                raise ValueError(f"checkpoint is missing tensor {name} (shape {tuple(param.shape)})")
            if tuple(tensors[name].shape) != tuple(param.shape):
                raise ValueError(f"tensor {name} has shape {tuple(tensors[name].shape)}, the config expects {tuple(param.shape)}")
        state = {own_name(n): tensors[n].to(dtype) for n in expected}
        self.load_state_dict(state, strict=False, assign=True)
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        self.inv_freq = rope_frequencies(self.config)
        self.to(device)


def hf_name(name):
    return name if name.startswith("lm_head") else "model." + name


def own_name(name):
    return name.removeprefix("model.")


def read_json(file):
    if not file.exists():
        raise FileNotFoundError(f"{file} not found (a Hugging Face model directory needs config.json)")
    try:
        value = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{file}: malformed JSON ({e})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{file}: expected a JSON object, got {type(value).__name__}")
    return value


def read_safetensors(path):
    """All tensors of model.safetensors, or of every shard listed in model.safetensors.index.json."""
    single, index = path / "model.safetensors", path / "model.safetensors.index.json"
    if single.exists():
        files = [single]
    elif index.exists():
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise ValueError(f"{index}: no weight_map")
        files = [path / f for f in sorted(set(weight_map.values()))]
    else:
        raise FileNotFoundError(f"no model.safetensors or model.safetensors.index.json in {path}")
    tensors = {}
    for file in files:
        if not file.exists():
            raise FileNotFoundError(f"weight shard {file} listed in the index is missing")
        try:
            with safe_open(file, framework="pt") as f:
                for name in f.keys():
                    tensors[name] = f.get_tensor(name)
        except Exception as e:  # truncated or not safetensors at all: safetensors' own error types
            raise ValueError(f"{file} cannot be read ({type(e).__name__}: {first_line(e)})") from None
    return tensors


# ----------------------------------------------------------------------------------------------
# configs: Hugging Face <-> ours


def layer_windows_from_hf(hf, n_layers):
    """The attention transformers gives a checkpoint: Mistral's sliding_window, Qwen's layer_types."""
    model_type, window = hf["model_type"], hf.get("sliding_window")
    if model_type == "mistral":
        return [window] * n_layers
    if model_type in ("qwen2", "qwen3") and hf.get("use_sliding_window") and window is not None:
        types = hf.get("layer_types") or [
            "sliding_attention" if i >= hf.get("max_window_layers", 0) else "full_attention" for i in range(n_layers)
        ]
        return [window if t == "sliding_attention" else None for t in types]
    return [None] * n_layers


def hf_config_error(e):
    if isinstance(e, KeyError):
        return f"missing field {e.args[0]!r}"
    return f"a field of the wrong type ({e})" if isinstance(e, TypeError) else str(e)


def config_from_hf(hf):
    if hf.get("model_type") not in MODEL_TYPES:
        raise ValueError(f"unknown model_type {hf.get('model_type')!r}; swarr supports {MODEL_TYPES}")
    # transformers 5 moved rope_theta and rope_scaling into rope_parameters; older configs have both
    rope = dict(hf.get("rope_parameters") or hf.get("rope_scaling") or {})
    rope_theta = rope.pop("rope_theta", hf.get("rope_theta", 10000.0))
    rope["rope_type"] = rope.pop("type", rope.get("rope_type", "default"))
    if rope["rope_type"] == "llama3":
        rope.setdefault("original_max_position_embeddings", hf.get("max_position_embeddings"))
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"):
        if not isinstance(hf[key], int) or isinstance(hf[key], bool) or hf[key] < 1:
            raise TypeError(f"{key} must be a positive integer, got {hf[key]!r}")
    n_layers, n_heads = hf["num_hidden_layers"], hf["num_attention_heads"]
    config = Config(
        model_type=hf["model_type"],
        vocab_size=hf["vocab_size"],
        hidden_size=hf["hidden_size"],
        intermediate_size=hf["intermediate_size"],
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=hf.get("num_key_value_heads") or n_heads,
        head_dim=hf.get("head_dim") or hf["hidden_size"] // n_heads,
        rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
        rope_theta=rope_theta,
        rope_scaling=None if rope["rope_type"] == "default" else rope,
        max_position_embeddings=hf.get("max_position_embeddings", 2048),
        tie_word_embeddings=hf.get("tie_word_embeddings", False),
        attention_bias=hf.get("attention_bias", False),
        mlp_bias=hf.get("mlp_bias", False),
        qk_norm=hf["model_type"] == "qwen3",
        layer_windows=layer_windows_from_hf(hf, n_layers),
        sinks=hf.get("swarr_sinks", 0),
        bos_token_id=hf.get("bos_token_id"),
        eos_token_id=hf.get("eos_token_id"),
    )
    return config


def config_to_hf(config):
    """
    A config.json transformers reads with the same attention. Returns (dict, renamed).

    qwen2/qwen3 express any layout of one window: use_sliding_window + sliding_window + layer_types.
    mistral expresses one window on every layer. transformers' llama has no sliding window, so an
    SWA llama without biases is written as qwen2 with zero q/k/v biases (the same function); a
    mistral with some full layers likewise. Sinks have no transformers equivalent: they are kept
    in `swarr_sinks`, which transformers ignores, so it would run that model without its sinks.
    """
    c = config
    windows = sorted({w for w in c.layer_windows if w is not None})
    if len(windows) > 1:
        raise ValueError(f"transformers supports one sliding window per model; this one has {windows}")
    window = windows[0] if windows else None
    model_type, renamed = c.model_type, False
    uniform = all(w == window for w in c.layer_windows)
    if window is not None and (model_type == "llama" or (model_type == "mistral" and not uniform)):
        if c.attention_bias or c.mlp_bias:
            raise ValueError(f"an SWA {model_type} with biases has no transformers equivalent")
        model_type, renamed = "qwen2", True
    hf = {
        "architectures": [{"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "mistral": "MistralForCausalLM"}[model_type]],
        "model_type": model_type,
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": c.num_key_value_heads,
        "head_dim": c.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": c.rms_norm_eps,
        "max_position_embeddings": c.max_position_embeddings,
        "tie_word_embeddings": c.tie_word_embeddings,
        "rope_theta": c.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": c.rope_theta, **(c.rope_scaling or {})},
        "bos_token_id": c.bos_token_id,
        "eos_token_id": c.eos_token_id,
        "torch_dtype": "float32",
    }
    if model_type == "llama":
        hf.update(attention_bias=c.attention_bias, mlp_bias=c.mlp_bias)
    if model_type == "qwen3":
        hf.update(attention_bias=c.attention_bias)
    if model_type == "mistral":
        hf.update(sliding_window=window)
    if model_type in ("qwen2", "qwen3"):
        # layer_types is what transformers 5 reads; max_window_layers (full layers first) is for
        # older readers, and exact whenever the full layers are the first ones
        n_full_first = next((i for i, w in enumerate(c.layer_windows) if w is not None), c.num_hidden_layers)
        hf.update(
            use_sliding_window=window is not None,
            sliding_window=window,
            max_window_layers=n_full_first,
            layer_types=["full_attention" if w is None else "sliding_attention" for w in c.layer_windows],
        )
    if c.sinks:
        hf["swarr_sinks"] = c.sinks
    return hf, renamed


def pack(seqs, length, pad_id=0):
    """
    Sequences end to end in one row of exactly `length` tokens -> ids (1, length), doc_start (1,
    length) (where each position's sequence starts; the padding at the end is one more) and each
    sequence's offset in the row. Attention keeps the sequences apart (swa_attention.py), so a packed
    row computes what each sequence would alone, and every forward has one shape however long the
    sequences are: compiled code compiles once, and no short row is padded to a long one.
    """
    if sum(map(len, seqs)) > length:
        raise ValueError(f"{len(seqs)} sequences of {sum(map(len, seqs))} tokens do not fit a packed row of {length}")
    ids, doc_start, offsets = [], [], []
    for s in seqs:
        offsets.append(len(ids))
        doc_start += [len(ids)] * len(s)
        ids += s
    doc_start += [len(ids)] * (length - len(ids))
    ids += [pad_id] * (length - len(ids))
    return torch.tensor([ids]), torch.tensor([doc_start]), offsets


def pack_shared(groups, length, pad_id=0):
    """
    pack for GRPO's groups, (prompt, completions) pairs, each prompt held once: its tokens but the
    last, then each completion as [the prompt's last token] + completion, a document continuing the
    prompt (prefix_start, swa_attention.py), which sees it as if it came right before. With the
    copy of the last token each completion predicts its first token in its own document, as if
    packed alone. -> ids, doc_start, prefix_start (1, length), and each completion's offset (of its
    copy of the last prompt token) in completions order.
    """
    needed = sum(len(p) - 1 + sum(len(c) + 1 for c in cs) for p, cs in groups)
    if needed > length:
        raise ValueError(f"{len(groups)} groups of {needed} tokens (each prompt once) do not fit a packed row of {length}")
    ids, doc_start, prefix_start, offsets = [], [], [], []
    for prompt, completions in groups:
        start = len(ids)
        ids += prompt[:-1]
        doc_start += [start] * (len(prompt) - 1)
        prefix_start += [start] * (len(prompt) - 1)
        for c in completions:
            offsets.append(len(ids))
            doc_start += [len(ids)] * (len(c) + 1)
            prefix_start += [start if len(prompt) > 1 else len(ids)] * (len(c) + 1)  # a one-token prompt: no prefix left
            ids += prompt[-1:] + c
    doc_start += [len(ids)] * (length - len(ids))
    prefix_start += [len(ids)] * (length - len(ids))
    ids += [pad_id] * (length - len(ids))
    return torch.tensor([ids]), torch.tensor([doc_start]), torch.tensor([prefix_start]), offsets


def completion_rows(pairs, packed=0, share=False):
    """
    The training rows of (prompt, completion) token-list pairs: each pair is prompt + completion,
    one row each right-padded with 0 (causal attention: what follows a row is never seen by it),
    or with `packed` all end to end in one row of that many positions (pack); share (with packed):
    the pairs of one prompt hold it once (pack_shared). -> ids (rows, T), doc_start and prefix_start
    (rows, T) or None, and per pair its row of ids and the column whose next token is its first
    completion token (completion token j's log-prob is that column + j).
    """
    if not share:
        seqs = [p + c for p, c in pairs]
        if packed:
            ids, doc_start, offsets = pack(seqs, packed)
        else:
            ids, doc_start, offsets = torch.cat([pack([s], max(map(len, seqs)))[0] for s in seqs]), None, [0] * len(seqs)  # (R, T)
        row_of = [0] * len(seqs) if packed else list(range(len(seqs)))
        return ids, doc_start, None, row_of, [o + len(p) - 1 for o, (p, _) in zip(offsets, pairs)]
    if not packed:
        raise ValueError("completion_rows(share=True) packs the groups: give `packed` (pairs_logprobs holds prompts once without it)")
    groups = {}  # prompt -> the indices of its pairs, in order (pairs of one prompt hold equal lists)
    for i, (p, _) in enumerate(pairs):
        groups.setdefault(tuple(p), []).append(i)
    ids, doc_start, prefix_start, offsets = pack_shared([(list(p), [pairs[i][1] for i in members]) for p, members in groups.items()], packed)
    starts = [0] * len(pairs)
    for i, o in zip([i for members in groups.values() for i in members], offsets):
        starts[i] = o  # o: the pair's copy of its prompt's last token
    return ids, doc_start, prefix_start, [0] * len(pairs), starts


def pairs_logprobs(model, pairs, temperature, packed=0, share=False):
    """
    Log-probs of each (prompt, completion) pair's completion tokens under `model`, from the rows of
    completion_rows -> (R, N) with N the longest completion (past each one's end: any value, for the
    caller to mask), and the positions the forwards ran, padding included. share without packed: each
    prompt is held once for its pairs (hidden_states' prefix_ids), one forward per prompt length, each
    pair a row of [the prompt's last token] + completion, so that a row predicts its first completion
    token itself.
    """
    device, N = model.embed_tokens.weight.device, max(len(c) for _, c in pairs)
    if not share or packed:
        ids, doc_start, prefix_start, row_of, starts = completion_rows(pairs, packed, share)
        parts, numel = [(ids, {"doc_start": doc_start, "prefix_start": prefix_start}, row_of, starts, range(len(pairs)))], ids.numel()
    else:
        parts, numel = [], 0
        for L in sorted({len(p) for p, _ in pairs}):  # prompts of one length: a prefix of one shape
            members = [i for i, (p, _) in enumerate(pairs) if len(p) == L]
            index = {}  # prompt -> its row among the prompts, each once, in order of first use
            of = [index.setdefault(tuple(pairs[i][0]), len(index)) for i in members]
            rows = [pairs[i][0][-1:] + pairs[i][1] for i in members]
            ids = torch.tensor([r + [0] * (max(map(len, rows)) - len(r)) for r in rows])  # (R_L, n + 1), right-padded
            prefix = {} if L == 1 else {"prefix_ids": torch.tensor([list(p[:-1]) for p in index]),  # (P_L, L - 1)
                                        "prefix_of": torch.tensor(of)}  # (R_L,)
            parts.append((ids, prefix, list(range(len(members))), [0] * len(members), members))
            numel += ids.numel() + (L - 1) * len(index)
    out, order = [], []
    for ids, extra, row_of, starts, members in parts:
        needed = torch.zeros(ids.shape[0], ids.shape[1] - 1, dtype=torch.bool)  # the completion columns: the head skips the rest
        for r, a, i in zip(row_of, starts, members):
            needed[r, a : a + len(pairs[i][1])] = True
        logp = token_logprobs(model, to_device(ids, device), temperature, needed=needed,
                              **{k: to_device(t, device) for k, t in extra.items() if t is not None})
        columns = (torch.tensor(starts)[:, None] + torch.arange(N)).clamp(max=logp.shape[1] - 1)  # (R_L, N)
        out.append(logp[to_device(torch.tensor(row_of)[:, None], device), to_device(columns, device)])  # (R_L, N)
        order += members
    if len(out) == 1:
        return out[0], numel
    where = torch.empty(len(pairs), dtype=torch.long)
    where[torch.tensor(order)] = torch.arange(len(pairs))  # pair i sits at row where[i] of the concatenation
    return torch.cat(out)[to_device(where, device)], numel


def first_fit(lengths, capacity):
    """Indices of `lengths` grouped into rows of at most `capacity` (first fit, longest first), for pack."""
    rows, free = [], []  # the rows, and the room left in each
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        r = next((r for r, room in enumerate(free) if room >= lengths[i]), len(rows))
        if r == len(rows):
            rows.append([])
            free.append(capacity)
        rows[r].append(i)
        free[r] -= lengths[i]
    return rows


def token_logprobs(model, input_ids, temperature=1.0, chunk=4096, doc_start=None, needed=None, prefix_start=None, prefix_ids=None,
                   prefix_of=None):
    """
    log p(input_ids[:, t + 1] | input_ids[:, :t + 1]) under softmax(logits / temperature), as
    (B, T - 1) float32: the SFT loss and GRPO's policy log-probs both come from here. The (B, T,
    vocab) float32 logits are never held at once (152k-token vocabularies make them the largest
    tensor of a long sequence): the head runs on chunks of positions. For the backward, each chunk
    is recomputed (eager, or with model.checkpointing: only its (n, H) input is kept), or, compiled
    without checkpointing, its bf16 logits are kept (what the fused backward reads: 0.3 MB a position
    at 152k, against ~3 MB a position of the blocks' own activations at the Qwen2.5-1.5B shape), which
    saves the head's second forward, about 4% of a GRPO step's training FLOPs.
    Packed rows (doc_start, and prefix_start, see pack and pack_shared): column t is within t's sequence,
    except at a sequence's last position, whose "next token" starts the next sequence (callers mask it out).
    needed (B, T - 1) bool: the columns the caller reads (a loss's targets). The head, a product
    over the whole vocabulary, then runs at those positions alone, so prompts and padding skip it
    (about a fifth of a Qwen2.5-1.5B training step's FLOPs is the head); the other columns are 0.
    prefix_ids (P, L), prefix_of (B,): the rows continue prompts run once (Model.hidden_states); column t is
    then position L + t.
    """
    # compiled blocks (compile_for_training) keep a compilation per window x grad mode x static or
    # symbolic length (measured: 8 for one window + full layers, with and without grad), which is
    # already torch's default limit: past it the blocks would run eagerly. Raised for this call.
    B, T = input_ids.shape
    if model.pad_to_buckets:  # compile_for_training(static=True): every length runs as its bucket's static shape
        input_ids = F.pad(input_ids, (0, bucket_length(T) - T))  # right padding changes nothing before it
        doc_start, prefix_start = (None if t is None else F.pad(t, (0, input_ids.shape[1] - T), value=T) for t in (doc_start, prefix_start))

    def head(h, t):  # h (1 or B, n, H), t (1 or B, n) -> (1 or B, n)
        if torch.is_grad_enabled() and (model.checkpointing or model.checkpoint_head):
            return torch.utils.checkpoint.checkpoint(model.head_logprobs, model.lm_head, h, t, temperature, use_reentrant=False)
        return model.head_logprobs(model.lm_head, h, t, temperature)

    with torch._dynamo.config.patch(**recompile_budget()):
        hidden = model.hidden_states(input_ids, doc_start=doc_start, prefix_start=prefix_start,
                                     prefix_ids=prefix_ids, prefix_of=prefix_of)  # (B, T', H)
        if needed is None:
            hidden, targets = hidden[:, :-1], input_ids[:, 1:]  # (B, T' - 1, H), (B, T' - 1)
            chunk = max(1, chunk // B)  # about `chunk` positions per head call over all rows
            out = [head(hidden[:, s : s + chunk], targets[:, s : s + chunk]) for s in range(0, hidden.shape[1], chunk)]
            return torch.cat(out, dim=1)[:, : T - 1]  # (B, T - 1), without the padding
        # only the needed positions, as one flat list: position b * T' + t predicts the token at b * T' + t + 1
        Tb = input_ids.shape[1]
        at = F.pad(needed, (0, Tb - needed.shape[1])).reshape(-1).nonzero()[:, 0]  # (n,); a row's last position is never needed
        at = to_device(at, hidden.device)  # a host `needed` (rl.py): its nonzero() did not wait for the GPU, nor does this copy
        if not at.numel():  # nothing to read: zeros, still attached to the graph for callers that backward through them
            return hidden[:, : T - 1, 0].float() * 0
        hidden, targets = hidden.reshape(B * Tb, -1)[at][None], input_ids.reshape(-1)[at + 1][None]  # (1, n, H), (1, n)
        out = torch.cat([head(hidden[:, s : s + chunk], targets[:, s : s + chunk]) for s in range(0, at.shape[0], chunk)], dim=1)
        logp = torch.zeros(B * Tb, device=out.device, dtype=out.dtype).index_put((at,), out[0])
        return logp.view(B, Tb)[:, : T - 1]  # (B, T - 1), 0 where not needed


def to_device(t, device):
    """A host tensor to `device`, without waiting for the GPU: a copy from pageable host memory to a GPU first
    waits for every kernel queued before it; from pinned memory it is queued behind them."""
    if t.device.type != "cpu" or torch.device(device).type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def head_logprobs(lm_head, hidden, targets, temperature):
    logits = lm_head(hidden).float() / temperature  # (B, chunk, vocab)
    return logits.log_softmax(-1).gather(-1, targets[..., None])[..., 0]


def compile_for_training(model, static=False):
    """
    torch.compile each block and the head's log-probs (sft.py / rl.py --compile). Eager, a block
    is ~40 kernels around its matrix products (float32 norms, rotary, bias, SwiGLU, residuals) and
    the head makes several float32 passes over (chunk, vocab) logits, forward and backward;
    compiled, each becomes a few fused kernels. The blocks share one compilation (same code, the
    parameters are inputs), so compiling costs the same for 4 layers or 28.

    Every batch has a new length. The blocks and the head compile for the first length, then once
    more with a symbolic length that serves every later one (torch's automatic dynamic shapes;
    measured on the CPU: no compilation after the second of 12 lengths). flex attention is not
    part of these graphs: it runs as its own compiled region with its lengths rounded up to a few
    static buckets (swa_attention.flex_attention), as dynamic shapes do not build for it.
    static=True instead pads every sequence to its bucket (token_logprobs) and compiles the blocks
    for each bucket's static shape: more compilations (one per bucket), kernels specialised to
    each shape (benchmarks/bench_sft.py --varied --static compares the two on the GPU).
    """
    for layer in model.layers:
        layer.compile(dynamic=False if static else None)
    model.head_logprobs = torch.compile(head_logprobs, dynamic=False if static else None)
    model.checkpoint_head = False  # compiled, the backward keeps the bf16 logits alone (token_logprobs)
    model.pad_to_buckets = static


def inference_copy(model, dtype):
    """A frozen copy in `dtype`; the rotary frequencies stay float32 (`.to(dtype)` would round them)."""
    copied = copy.deepcopy(model).to(dtype).eval().requires_grad_(False)
    copied.inv_freq = model.inv_freq.clone()
    return copied


def fuse_projections(model):
    """
    For a model that only generates (on CUDA: rl.py's bf16 sampler, evaluate.py's models): each layer's q, k and v
    products become one, and gate and up another, their weights concatenated once here. A decode step
    multiplies a few rows by each weight, so a product costs a launch and a pass over its weights more than
    its FLOPs: in bench_rl's rollout on an H200 the k and v products (0.8 MB of weights each) took 5 µs a
    call, the q product (4.7 MB) 6.5 (BENCHMARKS.md). The separate weights become views of the fused ones:
    the names, state_dict and in-place copies into them (rl.py's sampler refresh) are unchanged. Call it
    after the last .to(): moving the model would part the views. Not for training (the views are frozen).
    """
    for layer in model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        attn.fused = fuse_linears(attn.q_proj, attn.k_proj, attn.v_proj)
        mlp.fused = fuse_linears(mlp.gate_proj, mlp.up_proj)
    return model


def fuse_linears(*linears):
    """-> (weight, bias or None) of one product doing all of `linears` side by side; their parameters become views of it."""
    weight = torch.cat([lin.weight.detach() for lin in linears])  # (sum of outputs, in)
    bias = torch.cat([lin.bias.detach() for lin in linears]) if linears[0].bias is not None else None
    start = 0
    for lin in linears:
        rows = slice(start, start + lin.out_features)
        lin.weight = nn.Parameter(weight[rows], requires_grad=False)
        if bias is not None:
            lin.bias = nn.Parameter(bias[rows], requires_grad=False)
        start = rows.stop
    return weight, bias


def make_optimizer(model, lr, weight_decay, device, betas=(0.9, 0.95)):
    """AdamW; no weight decay on norms and biases (1-d parameters)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=betas, fused=str(device).startswith("cuda"))
