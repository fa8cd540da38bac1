"""The rolling-cache engine equals recomputing full forwards, for every attention layout."""
import functools
import json

import pytest
import torch
import torch.nn.functional as F

import generate as generate_module
from generate import (DecodeStep, KVCache, decode_attention, decode_attention_bmm, decode_attention_sdpa, decode_attention_stretches,
                      decode_attention_triton, decode_splits, generate, generate_continuous, kv_cache_bytes, live_slots,
                      merge_stretches, merge_stretches_reference, sample, seen_ends)
import model as model_module
from model import Config, Model, fuse_projections

VOCAB = 61
LAYOUTS = {
    "full": dict(window=None),
    "swa": dict(window=5),
    "swa-sinks": dict(window=4, sinks=2),
    "hybrid": dict(window=3, sinks=1, full_layers=(1,)),
}


def tiny_model(layout, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    config = Config(model_type="qwen3", vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512, qk_norm=True)
    model = Model(config).to(dtype).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)  # large weights: a sharp, position-sensitive model, so a wrong mask shows
    model.set_window(**{"sinks": 0, "full_layers": (), **LAYOUTS[layout]})
    return model


def prompts_of(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, VOCAB - 1, (n,), generator=g).tolist() for n in lengths]


EOS = [VOCAB - 1]


@pytest.fixture(autouse=True)
def small_live_bucket(monkeypatch):
    """Decode reads only the live slots of a full-length cache, in steps of 8 here (128 in use): the
    tests' short rollouts cross many buckets, so a bucket missing a written key shows against their references."""
    monkeypatch.setattr(generate_module, "LIVE_BUCKET", 8)


def test_decode_reads_only_the_live_slots(monkeypatch):
    assert (live_slots(10, 49), live_slots(16, 49), live_slots(17, 49), live_slots(49, 49)) == (16, 16, 24, 49)
    assert live_slots(1, 16) == 8  # a short cache too: no cache is read whole before its rows reach its end
    monkeypatch.setattr(generate_module, "LIVE_BUCKET", 128)  # steps of 128 up to 1024, then an eighth of the next power of two
    assert (live_slots(1, 4224), live_slots(129, 4224), live_slots(1024, 4224), live_slots(1025, 4224)) == (128, 256, 1024, 1280)
    assert (live_slots(2049, 4224), live_slots(4097, 4224), live_slots(4097, 9000)) == (2560, 4224, 5120)
    assert len({live_slots(n, 8192) for n in range(1, 8193)}) == 20  # CUDA graphs up to 8192 positions
    assert len({live_slots(n, 32768) for n in range(1, 32769)}) == 28  # 4 more per doubling
    assert all(n <= live_slots(n, 10**6) <= 1.25 * n for n in range(1025, 40000))  # never more than 25% extra past 1024
    monkeypatch.setattr(generate_module, "LIVE_BUCKET", 8)
    read, readable = [], KVCache.readable

    def spy(self, window, t):
        out = readable(self, window, t)
        read.append(out.shape[2] if t.dim() == 4 else out.shape[1])
        return out

    monkeypatch.setattr(KVCache, "readable", spy)
    generate(tiny_model("full"), prompts_of([3, 9]), 40, [VOCAB], temperature=0)  # an EOS never drawn: 40 tokens
    # the first step writes position 9 of the longer row (10 slots: 16); the last feeds token 39 at position 47
    assert read[0] == 16 and read[-1] == 48 and read == sorted(read)
    assert set(read) == {16, 24, 32, 40, 48}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_greedy_cache_equals_recompute(layout):
    model = tiny_model(layout)
    prompts = prompts_of([3, 9, 9, 14])
    gen = generate(model, prompts, 40, EOS, temperature=0)  # 40 >> W: the ring wraps many times
    with torch.no_grad():
        for row, prompt in enumerate(prompts):
            seq = list(prompt)
            n = int(gen.mask[row].sum())
            for t in range(n):
                logits = model(torch.tensor([seq]))[0, -1]
                token = int(logits.argmax())
                assert token == int(gen.tokens[row, t]), f"row {row} step {t}"
                torch.testing.assert_close(gen.logprobs[row, t], F.log_softmax(logits, -1)[token], rtol=0, atol=1e-5)
                seq.append(token)
                if token in EOS:
                    break


@pytest.mark.parametrize("layout", LAYOUTS)
def test_sampled_logprobs_equal_full_forward(layout):
    """What rl.py relies on: the log-probs stored at sampling time equal a training forward's."""
    model = tiny_model(layout, seed=1)
    prompts = prompts_of([4, 11, 6], seed=1)
    temperature = 0.7
    gen = generate(model, prompts, 32, EOS, group_size=3, temperature=temperature, seed=5)
    assert gen.tokens.shape == (9, 32)
    with torch.no_grad():
        for row in range(9):
            prompt = prompts[row // 3]
            n = int(gen.mask[row].sum())
            seq = torch.tensor([prompt + gen.tokens[row, :n].tolist()])
            logp = F.log_softmax(model(seq)[0].float() / temperature, -1)  # (T, vocab)
            expected = logp[len(prompt) - 1 : len(prompt) - 1 + n].gather(-1, seq[0, len(prompt):, None])[:, 0]
            torch.testing.assert_close(gen.logprobs[row, :n], expected, rtol=0, atol=2e-5)
            assert not gen.mask[row, n:].any()
            ended = n > 0 and int(gen.tokens[row, n - 1]) in EOS
            assert bool(gen.truncated[row]) == (not ended) and (ended or n == 32)


def decode_inputs(B, Hkv, G, S, D, seed):
    """float64 q, keys, values (B, Hkv, n, D) and a mask (B, 1, 1, S) with ring-like holes and rows of varied length."""
    g = torch.Generator().manual_seed(seed)
    q, keys, values = (torch.randn(B, Hkv, n, D, generator=g, dtype=torch.float64) * 3 for n in (G, S, S))
    seen = torch.randint(1, S + 1, (B, 1, 1, 1), generator=g)
    mask = (torch.rand(B, 1, 1, S, generator=g) < 0.7) & (torch.arange(S) < seen)
    mask[:, :, :, 0] = True  # every row sees a key (its own, in decode)
    return q, keys, values, mask


@pytest.mark.parametrize("B,Hkv,G,S", [(1, 2, 6, 40), (5, 1, 1, 17), (3, 4, 2, 64)])
def test_decode_attention_bmm_equals_sdpa(B, Hkv, G, S):
    """The two-product decode attention against torch's SDPA in float64, with rows that see few or many slots; bf16 close."""
    q, keys, values, mask = decode_inputs(B, Hkv, G, S, 16, B * S)
    ref = decode_attention_sdpa(q, keys, values, mask)
    torch.testing.assert_close(decode_attention_bmm(q, keys, values, mask), ref, rtol=1e-12, atol=1e-12)
    q, keys, values = q.bfloat16(), keys.bfloat16(), values.bfloat16()
    low = decode_attention_bmm(q, keys, values, mask)  # float32 scores from bf16 inputs, bf16 probabilities and output
    ref = decode_attention_sdpa(q.double(), keys.double(), values.double(), mask)
    assert low.dtype == torch.bfloat16 and (low.double() - ref).abs().max() < 0.006 * ref.abs().max()  # bf16 scores: 0.011-0.033


CUDA = torch.cuda.is_available()
# without a GPU the kernel runs in triton's interpreter (conftest.py sets TRITON_INTERPRET), which has no bfloat16
LOW = torch.bfloat16 if CUDA else torch.float16


@pytest.mark.skipif(generate_module.triton is None, reason="triton is not installed (requirements-test.txt)")
@pytest.mark.parametrize("B,Hkv,G,S,D,splits", [(1, 2, 6, 300, 64, 64), (2, 2, 6, 200, 64, 4), (3, 1, 1, 17, 64, 1),
                                                (2, 4, 2, 130, 128, 3), (4, 2, 6, 129, 128, 2), (133, 2, 6, 40, 64, 1)])
def test_decode_attention_triton_equals_sdpa(B, Hkv, G, S, D, splits):
    """The flash-decoding kernel against SDPA in float64: stretches that end mid-tile, stretches past the end (more
    splits than tiles), a slice of a longer cache (decode reads the live slots of a full-length one), holes in the mask."""
    device = "cuda" if CUDA else "cpu"
    q, keys, values, mask = decode_inputs(B, Hkv, G, S, D, B * S + splits)
    q, keys, values = (t.to(LOW).double() for t in (q, keys, values))  # the kernel's error alone, not the rounding of its inputs
    ref = decode_attention_sdpa(q, keys, values, mask)
    cache = torch.zeros(B, Hkv, S + 37, D, dtype=LOW, device=device)
    cache[:, :, :S] = keys.to(LOW)
    low = [t.to(device, LOW) for t in (q, values)]
    out, lse = decode_attention_stretches(low[0], cache[:, :, :S], low[1], mask.to(device), seen_ends(mask).to(device), splits)
    assert out.shape == (B, Hkv, splits, G, D) and lse.shape == (B, Hkv, splits, G)
    merged = (torch.softmax(lse, 2)[..., None] * out).sum(2).double().cpu()  # as decode_attention_triton merges
    assert (merged - ref).abs().max() < 0.006 * ref.abs().max()
    with_splits = decode_attention_triton(low[0], cache[:, :, :S], low[1], mask.to(device))  # its own split count (1 at B=133)
    assert with_splits.dtype == LOW and (with_splits.double().cpu() - ref).abs().max() < 0.006 * ref.abs().max()
    if B > 8:
        return  # the interpreter's slowest case: the check below runs at the other five shapes
    # the kernel reads no slot past a row's last visible one: NaN there (0 * NaN would poison the sum) changes nothing
    poisoned = [t.clone() for t in (cache, low[1])]
    for b, end in enumerate(seen_ends(mask).tolist()):
        assert mask[b, 0, 0, end - 1] and not mask[b, 0, 0, end:].any()
        for t in poisoned:
            t[b, :, end:] = float("nan")
    assert torch.equal(decode_attention_triton(low[0], poisoned[0][:, :, :S], poisoned[1], mask.to(device)), with_splits)
    scores = torch.einsum("bhgd,bhsd->bhgs", q, keys) * D**-0.5  # each stretch's log-sum-exp, recomputed by hand
    chunk = -(-(-(-S // splits)) // generate_module.DECODE_BLOCK) * generate_module.DECODE_BLOCK
    for i in range(splits):
        part = scores[..., i * chunk : (i + 1) * chunk].masked_fill(~mask[..., i * chunk : (i + 1) * chunk], float("-inf"))
        expected = part.logsumexp(-1) if part.shape[-1] else torch.full(lse.shape[:2] + lse.shape[3:], float("-inf"), dtype=torch.float64)
        torch.testing.assert_close(lse[:, :, i].double().cpu(), expected, rtol=0, atol=0.05)  # -inf where nothing is seen


@pytest.mark.skipif(generate_module.triton is None, reason="triton is not installed (requirements-test.txt)")
@pytest.mark.parametrize("B,Hkv,splits,G,D", [(1, 2, 64, 6, 128), (2, 1, 5, 1, 64), (3, 2, 16, 2, 16)])
def test_merge_stretches_equals_float64(B, Hkv, splits, G, D):
    """The merge kernel against the softmax-weighted sum in float64, with empty stretches (lse -inf, their outputs
    never read: NaN there changes nothing), one stretch alone holding a row, and large log-sum-exps."""
    g = torch.Generator().manual_seed(0)
    out, lse = torch.randn(B, Hkv, splits, G, D, generator=g), 40 * torch.randn(B, Hkv, splits, G, generator=g)
    lse[0, 0, 1:] = float("-inf")  # one stretch holds the first (row, kv head)
    lse[..., splits // 2:, :] = float("-inf")  # the second half are past every row's end
    out[lse == float("-inf")] = float("nan")
    ref = merge_stretches_reference(out.double().nan_to_num(), lse.double(), torch.float64)
    device = "cuda" if CUDA else "cpu"
    got = merge_stretches(out.to(device), lse.to(device), LOW)
    assert got.dtype == LOW and got.shape == (B, Hkv, G, D) and not got.isnan().any()
    assert (got.double().cpu() - ref).abs().max() <= 0.6 * torch.finfo(LOW).eps * ref.abs().max()


def test_decode_attention_takes_triton_on_gpus_only():
    """bf16 on a GPU with triton: the kernel; anything else (the CPU, float32): the two products."""
    q, keys, values, mask = decode_inputs(2, 2, 6, 50, 64, 0)
    cases = [("cpu", torch.float32, decode_attention_bmm), ("cpu", torch.bfloat16, decode_attention_bmm)]
    if CUDA and generate_module.triton is not None:
        cases += [("cuda", torch.float32, decode_attention_bmm), ("cuda", torch.bfloat16, decode_attention_triton)]
    for device, dtype, expected in cases:
        inputs = [t.to(device, dtype) for t in (q, keys, values)] + [mask.to(device)]
        assert torch.equal(decode_attention(*inputs), expected(*inputs))


def test_decode_splits_fill_the_gpu_and_stay_with_the_batch():
    assert decode_splits(1 * 2, torch.device("cpu")) == 64  # batch 1, 2 kv heads: as many stretches as allowed
    assert decode_splits(8 * 2, torch.device("cpu")) == 16  # 2 x 132 SMs / 16 programs
    assert decode_splits(256 * 2, torch.device("cpu")) == 1  # enough programs already


@pytest.mark.skipif(not CUDA or generate_module.triton is None, reason="needs a GPU with triton")
@pytest.mark.parametrize("window, batch", [(None, 3), (64, 3), (None, 1), (64, 1)])
def test_compiled_triton_decode_equals_eager_sdpa_decode(monkeypatch, window, batch):
    """On a GPU the compiled decode step attends through the triton kernel (CUDA graph, merge kernel), and at batch 1
    its products are model.matvec (the fused projections too): its logits against the eager
    step's (SDPA, F.linear) at a Qwen-like head layout, bf16, over a cache longer than the window."""
    torch.manual_seed(0)
    config = Config(model_type="qwen2", vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                    num_attention_heads=12, num_key_value_heads=2, head_dim=128, max_position_embeddings=4096)
    model = fuse_projections(Model(config).cuda().to(torch.bfloat16).eval())
    model.set_window(window)
    logits, matvecs = {}, []
    real_matvec = model_module.matvec
    for compiled in (False, True):
        if not compiled:  # the reference: F.linear
            monkeypatch.setattr(model_module, "triton", None)
        else:
            monkeypatch.undo()
            monkeypatch.setattr(model_module, "matvec", lambda *a: matvecs.append(a[2] is not None) or real_matvec(*a))
        cache = KVCache(model, batch, 400, torch.device("cuda"), torch.bfloat16)
        prompts = torch.randint(0, 512, (batch, 300), generator=torch.Generator().manual_seed(1)).cuda()
        token = cache.prefill(model, prompts, torch.arange(batch, device="cuda")[:, None]).argmax(-1)
        step = DecodeStep(model, cache, batch, torch.device("cuda"), cuda_graph=compiled, compile=compiled)
        matvecs.clear()  # the prefill's head at batch 1 (one row of logits) took matvec too
        with torch.no_grad():
            for _ in range(5):
                out = step(torch.full_like(token, 7)).float().clone()
        logits[compiled] = out
    assert (logits[True] - logits[False]).abs().max() < 0.02 * logits[False].abs().max()
    # at batch 1, each step that runs Python: per layer q, k and v (with their bias), o, gate and up, down; the head
    per_step = [True, False, False, False] * 2 + [False] if batch == 1 else []
    assert matvecs[:len(per_step)] == per_step and (not per_step and not matvecs or len(matvecs) % len(per_step) == 0)


@pytest.mark.skipif(not CUDA or generate_module.triton is None, reason="needs a GPU with triton")
def test_pdl_changes_no_result(monkeypatch):
    """Programmatic dependent launch (model.PDL, one-row decode) moves when kernels start, never what they compute:
    the compiled, graph-replayed batch-1 decode (matvec, the attention kernel and its merge, inductor's kernels)
    gives the same logits bit for bit with it and without, step after step, each step's input the last one's output."""
    batch = 1
    torch.manual_seed(0)
    config = Config(model_type="qwen2", vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                    num_attention_heads=12, num_key_value_heads=2, head_dim=128, max_position_embeddings=4096)
    model = fuse_projections(Model(config).cuda().to(torch.bfloat16).eval())
    model.set_window(64)
    logits = {}
    for with_pdl in (False, True):
        torch._dynamo.reset()  # compiled, not dynamo's eager fallback once the tests before made 8 compilations of decode_step
        monkeypatch.setattr(model_module, "PDL", with_pdl)
        assert model_module.pdl_launch(torch.device("cuda"))["GDC"] == (with_pdl and torch.cuda.get_device_capability()[0] >= 9)
        assert not model_module.pdl_launch(torch.device("cuda"), rows=2)["GDC"]
        cache = KVCache(model, batch, 400, torch.device("cuda"), torch.bfloat16)
        prompts = torch.randint(0, 512, (batch, 300), generator=torch.Generator().manual_seed(1)).cuda()
        token = cache.prefill(model, prompts, torch.arange(batch, device="cuda")[:, None]).argmax(-1)
        step = DecodeStep(model, cache, batch, torch.device("cuda"), cuda_graph=True, compile=True)
        steps = []
        with torch.no_grad():
            for _ in range(12):  # eager first step, capture, then replays
                steps.append(step(token).clone())
                token = steps[-1].argmax(-1)
        logits[with_pdl] = torch.stack(steps)
    assert torch.equal(logits[True], logits[False])


def test_compiled_decode_step_alone_uses_decode_attention(monkeypatch):
    """decode_attention needs torch.compile to fuse its float32 passes: the compiled step (KVCache.compiled, set by
    DecodeStep) attends through it, an eager step through SDPA, with the same result."""
    used = []
    for name in ("decode_attention", "decode_attention_sdpa"):
        real = getattr(generate_module, name)
        monkeypatch.setattr(generate_module, name, lambda *a, real=real, name=name: used.append(name) or real(*a))
    model = tiny_model("hybrid")
    cache = KVCache(model, 2, 20, "cpu", torch.float32)
    cache.prefill(model, torch.tensor(prompts_of([6, 6])), torch.tensor([[0], [1]]))
    token, out = torch.tensor([[3], [4]]), {}
    for compiled in (False, True):
        assert DecodeStep(model, cache, 2, "cpu", cuda_graph=False, compile=compiled) and cache.compiled == compiled
        used.clear()
        with torch.no_grad():
            out[compiled] = generate_module.decode_step(model, cache, token, torch.empty(2, VOCAB)).clone()  # eager either way
        cache.pos -= 1  # the same position again
        assert set(used) == {"decode_attention" if compiled else "decode_attention_sdpa"} and len(used) == 3  # one per layer
    torch.testing.assert_close(out[True], out[False], rtol=0, atol=1e-5)


def test_compiled_decode_equals_eager():
    """generate(compile=True), the fast path, against the eager decode step (SWA ring, sinks and a full layer)."""
    graphs = lambda: torch._dynamo.utils.counters["stats"]["unique_graphs"]  # noqa: E731
    model = tiny_model("hybrid", seed=2)
    prompts = prompts_of([4, 11, 6], seed=2)
    for i, kwargs in enumerate((dict(temperature=0), dict(temperature=0.8, seed=3))):
        if i == 1:  # live slots grew from 16 to 48 in buckets of 8: a static, then one symbolic compilation, nothing after
            for rows in (3, 2):  # the compiled draw (greedy has none) for both batches, as generate runs it: then it takes any
                with torch.no_grad():
                    sample(torch.randn(rows, model.config.vocab_size), 0.8, 1.0, 0, torch.Generator(), compiled=True)
            compiled_so_far = graphs()
        eager = generate(model, prompts, 30, EOS, **kwargs)
        compiled = generate(model, prompts, 30, EOS, compile=True, **kwargs)
        assert torch.equal(compiled.tokens, eager.tokens) and torch.equal(compiled.mask, eager.mask)
        torch.testing.assert_close(compiled.logprobs, eager.logprobs, rtol=0, atol=1e-5)
        # continuous batching: eager refills between compiled steps, on the cache the compiled step reads
        eager = generate_continuous(model, prompts * 2, 30, ENDS, slots=2, check_every=2, **kwargs)
        compiled = generate_continuous(model, prompts * 2, 30, ENDS, slots=2, check_every=2, compile=True, **kwargs)
        assert torch.equal(compiled.tokens, eager.tokens) and torch.equal(compiled.mask, eager.mask)
        torch.testing.assert_close(compiled.logprobs, eager.logprobs, rtol=0, atol=1e-5)
    assert graphs() == compiled_so_far


def test_compiled_decode_of_fused_projections_follows_refreshed_weights():
    """rl.py's CUDA sampler: fused projections (model.fuse_projections), decode compiled, weights refreshed in place
    after every update. The compiled step reads the fused weights as inputs, not constants: after a refresh it
    generates what the new weights generate eagerly, unfused."""
    fused, first, second = (tiny_model("hybrid", seed=s) for s in (4, 4, 5))
    fuse_projections(fused)
    prompts = prompts_of([4, 11, 6], seed=4)
    for reference in (first, second):
        with torch.no_grad():
            for s, p in zip(fused.parameters(), reference.parameters()):
                s.copy_(p)  # the first time a no-op: fused started as `first`
        compiled = generate(fused, prompts, 20, EOS, temperature=0, compile=True)
        eager = generate(reference, prompts, 20, EOS, temperature=0)
        assert torch.equal(compiled.tokens, eager.tokens)
        torch.testing.assert_close(compiled.logprobs, eager.logprobs, rtol=0, atol=1e-5)


@pytest.mark.parametrize("engine", ["static", "continuous"])
@pytest.mark.parametrize("layout", ["swa-sinks", "hybrid"])
def test_kept_engine_equals_a_fresh_one(engine, layout):
    """rl.py's rollouts keep the cache and decode step from call to call (decode_engine's keep): a call on the
    kept one, whatever the last call left in it, samples what a call on a new one samples, and a call of
    another shape replaces it."""
    model = tiny_model(layout, seed=6)
    run = (functools.partial(generate, group_size=2) if engine == "static"
           else functools.partial(generate_continuous, group_size=2, slots=4, unit=1, check_every=2))
    keep, caches = {}, []
    calls = [(prompts_of([12, 5, 9], seed=6), dict(temperature=1.0, seed=1)),  # the longest prompt sets the cache length
             (prompts_of([3, 12, 7], seed=7), dict(temperature=0.7, top_k=5, seed=2)),
             (prompts_of([12, 2, 6], seed=8), dict(temperature=0)),
             (prompts_of([12, 4, 8, 5], seed=9), dict(temperature=1.0, seed=3))]  # more rows (static): a new cache
    for i, (prompts, kwargs) in enumerate(calls):
        budgets = torch.randint(1, 25, (2 * len(prompts),), generator=torch.Generator().manual_seed(i)).tolist()
        fresh = run(model, prompts, 24, ENDS, budgets=budgets, **kwargs)
        kept = run(model, prompts, 24, ENDS, budgets=budgets, keep=keep, **kwargs)
        assert fresh.mask.sum(1).min() < 12 < fresh.mask.sum(1).max()  # rows end apart: slots hold stale keys when reused
        assert torch.equal(kept.tokens, fresh.tokens) and torch.equal(kept.mask, fresh.mask)
        assert torch.equal(kept.logprobs, fresh.logprobs) and torch.equal(kept.truncated, fresh.truncated)
        caches.append(keep["cache"])
    assert caches[0] is caches[1] is caches[2]
    assert (caches[3] is not caches[2]) == (engine == "static")  # continuous batching: 4 slots, whatever the rows
    # taken again, it is emptied as a new one starts: no row at a stale position, which would widen the live slots read
    assert (caches[3].pos > 0).any()
    cache, _ = generate_module.decode_engine(model, len(caches[3].pos), caches[3].max_len, True, False, keep)
    assert cache is caches[3] and (cache.pos == 0).all() and all((held == -1).all() for held in cache.slot_pos.values())


@pytest.mark.skipif(not CUDA or generate_module.triton is None, reason="needs a GPU with triton")
def test_kept_engine_replays_its_cuda_graphs(monkeypatch):
    """On a GPU, compiled, the point of keeping: a second rollout of the same shape captures no CUDA graph, and
    samples what a fresh engine (eager first steps, then new graphs) samples, in bf16 at a Qwen-like head layout."""
    captured = []
    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda real=torch.cuda.CUDAGraph: captured.append(1) or real())
    torch.manual_seed(0)
    config = Config(model_type="qwen2", vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                    num_attention_heads=12, num_key_value_heads=2, head_dim=128, max_position_embeddings=4096)
    model = Model(config).cuda().to(torch.bfloat16).eval()
    model.set_window(64)
    keep = {}
    for seed in (1, 2, 3):
        prompts = torch.randint(0, 512, (4, 100), generator=torch.Generator().manual_seed(seed)).tolist()
        fresh = generate(model, prompts, 300, [-1], group_size=2, seed=seed, compile=True)
        before = len(captured)
        kept = generate(model, prompts, 300, [-1], group_size=2, seed=seed, compile=True, keep=keep)
        assert (len(captured) > before) == (seed == 1)  # graphs captured by the first kept call only
        assert torch.equal(kept.tokens, fresh.tokens) and torch.equal(kept.logprobs, fresh.logprobs)


def test_group_rows_share_the_prompt_and_seed_reproduces():
    model = tiny_model("swa")
    prompts = prompts_of([5, 8])
    a = generate(model, prompts, 20, EOS, group_size=4, temperature=1.0, seed=3)
    b = generate(model, prompts, 20, EOS, group_size=4, temperature=1.0, seed=3)
    c = generate(model, prompts, 20, EOS, group_size=4, temperature=1.0, seed=4)
    assert torch.equal(a.tokens, b.tokens) and not torch.equal(a.tokens, c.tokens)
    assert a.prompt_rows.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert len({tuple(r) for r in a.tokens.tolist()}) > 2  # samples of a group differ


def test_stops_on_any_eos():
    model = tiny_model("full")
    prompts = prompts_of([6])
    free = generate(model, prompts, 12, EOS, temperature=0)
    stop_token = int(free.tokens[0, 4])
    stopped = generate(model, prompts, 12, [VOCAB - 1, stop_token], temperature=0)
    first = free.tokens[0].tolist().index(stop_token)
    assert stopped.mask[0].sum() == first + 1 and not stopped.truncated[0]
    assert stopped.tokens[0, : first + 1].tolist() == free.tokens[0, : first + 1].tolist()


def test_sparse_stop_checks_change_nothing(monkeypatch):
    """Checking for the end every 16 steps (CUDA's default) runs past the last row's end, never changes a row:
    the same tokens, log-probs, masks and truncation as checking every step, with rows ending at many steps."""
    model = tiny_model("swa-sinks")
    prompts = prompts_of([3, 7, 5])
    eos = list(range(VOCAB - 6, VOCAB))  # a tenth of the vocabulary ends a row: most end early, at different steps
    every = generate(model, prompts, 60, eos, group_size=4, temperature=1.0, seed=5, stop_check_every=1)
    steps = []
    real_step = DecodeStep.__call__
    monkeypatch.setattr(DecodeStep, "__call__", lambda self, *a: steps.append(1) or real_step(self, *a))
    sparse = generate(model, prompts, 60, eos, group_size=4, temperature=1.0, seed=5, stop_check_every=16)
    last = int(every.mask.sum(1).max()) - 1  # the step that drew the last row's last token
    assert every.mask.sum(1).min() < last < 44 and len(steps) == 16 * -(-last // 16)  # ran on to the next check, at a multiple of 16
    for field in ("tokens", "logprobs", "mask", "truncated"):
        assert torch.equal(getattr(every, field), getattr(sparse, field)), field


def test_top_k_and_top_p():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]] * 4000)
    g = torch.Generator().manual_seed(0)
    tokens, logprobs = sample(logits, 1.0, 1.0, 1, g)  # top-k 1 is greedy
    assert (tokens == 0).all()
    torch.testing.assert_close(logprobs, F.log_softmax(logits, -1)[:, 0])
    tokens, _ = sample(logits, 1.0, 1.0, 2, g)
    assert set(tokens.tolist()) == {0, 1}
    p = F.softmax(logits[0], -1)
    tokens, _ = sample(logits, 1.0, float(p[0] + p[1]) - 1e-4, 0, g)  # nucleus: the two most likely
    assert set(tokens.tolist()) == {0, 1}
    tokens, _ = sample(logits, 1.0, 1.0, 0, g)  # plain sampling matches the distribution
    freq = torch.bincount(tokens, minlength=4).float() / len(tokens)
    torch.testing.assert_close(freq, p, rtol=0, atol=0.03)


def test_compiled_draw_equals_eager():
    """sample(compiled=True), generate's with compile=True, against the eager draw: same noise, same tokens."""
    logits = torch.randn(64, 1000, generator=torch.Generator().manual_seed(0)) * 3
    for temperature, top_p, top_k in ((1.0, 1.0, 0), (0.7, 1.0, 0), (0.7, 0.9, 0), (1.3, 1.0, 50)):
        eager = sample(logits, temperature, top_p, top_k, torch.Generator().manual_seed(1))
        compiled = sample(logits, temperature, top_p, top_k, torch.Generator().manual_seed(1), compiled=True)
        assert torch.equal(compiled[0], eager[0])
        torch.testing.assert_close(compiled[1], eager[1], rtol=0, atol=1e-5)
        # the log-prob is that of the temperature-scaled distribution, whatever top-k / top-p kept
        expected = F.log_softmax(logits / temperature, -1).gather(-1, eager[0][:, None])[:, 0]
        torch.testing.assert_close(compiled[1], expected, rtol=0, atol=1e-5)


def test_kv_cache_memory_flat_past_window_for_swa_layers():
    model = tiny_model("hybrid")  # layers 0 and 2: window 3 + 1 sink; layer 1 full
    per_layer = {}
    for generated in (1024, 4096, 16384):
        cache = KVCache(model, 1, 128 + generated, "cpu", torch.float32)
        per_layer[generated] = [k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in zip(cache.k, cache.v)]
    slot_bytes = 2 * 2 * 8 * 4  # k and v, 2 kv heads, head_dim 8, float32
    for generated, sizes in per_layer.items():
        assert sizes[0] == sizes[2] == (1 + 3) * slot_bytes  # sinks + window, whatever the length
        assert sizes[1] == (128 + generated) * slot_bytes  # full attention: every position


def test_bad_input():
    model = tiny_model("swa")
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        generate(model, [[1, 2]], 0, EOS)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        generate(model, [[1, 2]], 4, EOS, temperature=-1)
    for top_p in (0.0, 1.5):
        with pytest.raises(ValueError, match="top_p must be in"):
            generate(model, [[1, 2]], 4, EOS, top_p=top_p)
    with pytest.raises(ValueError, match="exceeds the model's context of 512"):
        generate(model, [[1] * 500], 20, EOS)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        generate(model, [[1], []], 4, EOS)


# ----------------------------------------------------------------------------------------------
# continuous batching

ENDS = [VOCAB - 1, 5, 17, 30]  # several end tokens: the tiny models' responses end at varied lengths
SHAPES = [(1, 2), (2, 4), (3, 3)]  # (group_size, slots): always fewer slots than rows, so slots are refilled many times


@pytest.mark.parametrize("group_size,slots", SHAPES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_continuous_greedy_equals_generate(layout, group_size, slots):
    """Row for row the static engine's tokens, whichever slot and step each prompt got."""
    model = tiny_model(layout)
    prompts = prompts_of([14, 3, 9, 9, 2, 11, 7, 5])  # long first: short prompts refill rows a long one used
    static = generate(model, prompts, 40, ENDS, group_size=group_size, temperature=0)
    lengths = static.mask.sum(1)
    assert lengths.min() < 10 and lengths.max() == 40 and static.truncated.any() and not static.truncated.all()
    for check_every, unit in ((1, None), (3, None), (2, 1)):  # unit 1: each row refilled alone, its prompt copied in
        gen = generate_continuous(model, prompts, 40, ENDS, group_size=group_size, temperature=0, slots=slots,
                                  check_every=check_every, unit=unit)
        assert torch.equal(gen.tokens, static.tokens) and torch.equal(gen.mask, static.mask)
        assert torch.equal(gen.truncated, static.truncated) and torch.equal(gen.prompt_rows, static.prompt_rows)
        torch.testing.assert_close(gen.logprobs, static.logprobs, rtol=0, atol=1e-5)


@pytest.mark.parametrize("unit", [None, 1])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_continuous_sampled_rows_equal_full_forward(layout, unit, monkeypatch):
    """Each row, sampled in whichever slot, is its own prompt's continuation: a full forward over prompt + tokens agrees."""
    prefilled, prefill, copied, copy_prompt = [], KVCache.prefill, [], KVCache.copy_prompt

    def counted(self, model, ids, rows, stash=None):  # the prompts each prefill takes: the first fill, then every refill
        prefilled.append(len(ids))
        return prefill(self, model, ids, rows, stash)

    def counted_copy(self, rows):
        copied.append(len(rows))
        return copy_prompt(self, rows)

    monkeypatch.setattr(KVCache, "prefill", counted)
    monkeypatch.setattr(KVCache, "copy_prompt", counted_copy)
    model = tiny_model(layout, seed=1)
    prompts = prompts_of([4, 11, 6, 13, 2, 9, 6], seed=1)
    temperature, top_k, N, G = 0.7, 5, 32, 3
    gen = generate_continuous(model, prompts, N, ENDS, group_size=G, temperature=temperature, top_k=top_k, seed=5, slots=6, unit=unit)
    assert gen.tokens.shape == gen.logprobs.shape == gen.mask.shape == (21, N)
    assert sum(prefilled) == 7  # every prompt prefilled once
    if unit is None:
        assert len(prefilled) >= 4 and not copied  # 2 groups of slots for 7 prompts: refilled at least 3 times
    else:
        # rows refilled one by one, 6 slots for 21 rows: the rows of a prompt placed in a later refill than its
        # first are copied from the stash, not prefilled again
        assert len(prefilled) >= 4 and len(copied) >= 3 and sum(copied) < 21 - 7
    assert gen.prompt_rows.tolist() == [p for p in range(7) for _ in range(G)]
    lengths = gen.mask.sum(1)
    assert lengths.min() < 10 and lengths.max() == N  # long-tailed enough that slots finish at different steps
    with torch.no_grad():
        for row in range(21):
            prompt, n = prompts[row // G], int(lengths[row])
            assert gen.mask[row, :n].all() and not gen.mask[row, n:].any()
            assert (gen.tokens[row, n:] == ENDS[0]).all() and (gen.logprobs[row, n:] == 0).all()
            seq = torch.tensor([prompt + gen.tokens[row, :n].tolist()])
            logits = model(seq)[0, len(prompt) - 1 : -1].float() / temperature  # (n, vocab): the logits each token was drawn from
            targets = seq[0, len(prompt):, None]
            torch.testing.assert_close(gen.logprobs[row, :n], F.log_softmax(logits, -1).gather(-1, targets)[:, 0], rtol=0, atol=2e-5)
            assert (logits.gather(-1, targets) >= logits.topk(top_k).values[:, -1:]).all()  # drawn from the top k
            ended = int(gen.tokens[row, n - 1]) in ENDS
            assert not any(int(x) in ENDS for x in gen.tokens[row, : n - 1])  # the first end token ends the row
            assert bool(gen.truncated[row]) == (not ended) and (ended or n == N)


def test_continuous_more_slots_than_rows():
    """Slots beyond the rows: no refill, and generate()'s result."""
    model = tiny_model("hybrid")
    prompts = prompts_of([6, 3, 10])
    static = generate(model, prompts, 20, ENDS, group_size=2, temperature=0)
    gen = generate_continuous(model, prompts, 20, ENDS, group_size=2, temperature=0, slots=64)
    assert torch.equal(gen.tokens, static.tokens) and torch.equal(gen.mask, static.mask)


def test_continuous_seed_reproduces():
    model = tiny_model("swa-sinks")
    prompts = prompts_of([5, 8, 3, 6])

    def run(seed):
        return generate_continuous(model, prompts, 20, ENDS, group_size=2, temperature=1.0, seed=seed, slots=4).tokens

    a, b, c = run(3), run(3), run(4)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("engine", ["static", "continuous"])
def test_budgets_cut_rows(engine):
    """The benchmarks' per-row length limits: a row ends at its first end token or at its budget, then truncated."""
    model = tiny_model("hybrid")
    prompts = prompts_of([6, 9, 4, 12, 7])
    run = functools.partial(generate, group_size=2) if engine == "static" else functools.partial(generate_continuous, group_size=2, slots=4)
    free = run(model, prompts, 30, ENDS, temperature=0)
    budgets = torch.randint(1, 31, (10,), generator=torch.Generator().manual_seed(0)).tolist()
    cut = run(model, prompts, 30, ENDS, temperature=0, budgets=budgets)
    ended = ~free.truncated & (free.mask.sum(1) <= torch.tensor(budgets))
    assert cut.mask.sum(1).tolist() == [min(int(n), b) for n, b in zip(free.mask.sum(1), budgets)]
    assert torch.equal(cut.truncated, ~ended)
    assert torch.equal(cut.tokens[cut.mask], free.tokens[cut.mask])
    never = run(model, prompts, 30, [-1], temperature=1.0, budgets=budgets)  # no end token: every row runs to its budget
    assert never.mask.sum(1).tolist() == budgets and never.truncated.all()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_refilled_row_holds_only_its_own_prompt(layout):
    """A refill leaves nothing of the row's previous occupant: the slot record, the position, the next step's output."""
    model = tiny_model(layout)
    old, new = prompts_of([14, 2])  # the new prompt is shorter than every ring: stale slots would stay
    rows = torch.tensor([[0]])  # (P, G): one prompt into cache row 0
    used = KVCache(model, 2, 60, "cpu", torch.float32)
    used.prefill(model, torch.tensor([old]), rows)
    step = DecodeStep(model, used, 2, "cpu", cuda_graph=False)
    for _ in range(30):  # the old sequence runs far past the window, and the full layers fill 44 slots
        step(torch.zeros(2, dtype=torch.long))
    used.prefill(model, torch.tensor([new]), rows)
    fresh = KVCache(model, 2, 60, "cpu", torch.float32)
    fresh.prefill(model, torch.tensor([new]), rows)
    assert used.pos[0] == fresh.pos[0] == len(new)
    for w in fresh.sizes:
        assert torch.equal(used.slot_pos[w][0], fresh.slot_pos[w][0])
    token = torch.tensor([7, 7])
    logits = step(token)
    assert logits is step.logits_out  # every step writes one buffer (on CUDA, every captured graph too)
    torch.testing.assert_close(logits[0], DecodeStep(model, fresh, 2, "cpu", cuda_graph=False)(token)[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_copied_prompt_equals_prefilled_prompt(layout):
    """copy_prompt places the stashed prompt as prefill would: keys, values, slot record, position, last logits,
    with a prompt longer than the rings (only the sinks and the last W positions kept) and a used row to overwrite."""
    model = tiny_model(layout)
    other, prompt, old = prompts_of([11, 11, 14])
    ids = torch.tensor([other, prompt])  # two prompts in one forward, the stash takes the second
    stashed = KVCache(model, 4, 30, "cpu", torch.float32)
    stashed.prefill(model, torch.tensor([old]), torch.tensor([[2]]))  # row 2 holds a longer prompt to overwrite
    with torch.no_grad():
        stashed.prefill(model, ids, torch.tensor([[0], [1]]), stash=1)
        logits = stashed.copy_prompt(torch.tensor([2, 3]))
        fresh = KVCache(model, 4, 30, "cpu", torch.float32)
        ref = fresh.prefill(model, ids, torch.tensor([[0, 1], [2, 3]]))[1]  # the same forward, prompt 1 into rows 2 and 3
    torch.testing.assert_close(logits, ref, rtol=0, atol=0)
    assert stashed.pos[2:].tolist() == fresh.pos[2:].tolist() == [11, 11]
    for w in fresh.sizes:
        assert torch.equal(stashed.slot_pos[w][2:], fresh.slot_pos[w][2:])
    for layer, w in enumerate(model.config.layer_windows):
        held = fresh.slot_pos[w][2:] >= 0  # (2, slots): slots past the prompt keep the old prompt's keys, never read
        for a, b in ((stashed.k[layer], fresh.k[layer]), (stashed.v[layer], fresh.v[layer])):
            assert torch.equal(a[2:].transpose(1, 2)[held], b[2:].transpose(1, 2)[held])  # (held, Hkv, D)
    held = fresh.slot_pos[model.config.layer_windows[0]][2] >= 0
    assert torch.equal(stashed.k[0][1][:, held], fresh.k[0][2][:, held])  # the prompt's own prefill row too


def test_continuous_bad_input():
    model = tiny_model("swa")
    for slots in (3, 1, 0):
        with pytest.raises(ValueError, match=r"slots must be a positive multiple of the refill unit \(2 rows\)"):
            generate_continuous(model, [[1, 2]], 4, EOS, group_size=2, slots=slots)
    for unit in (0, 3, 8):
        with pytest.raises(ValueError, match="unit must divide group_size=4"):
            generate_continuous(model, [[1, 2]], 4, EOS, group_size=4, slots=4, unit=unit)
    generate_continuous(model, [[1, 2]], 4, EOS, group_size=4, slots=3, unit=1)  # any number of slots when rows refill alone
    with pytest.raises(ValueError, match="check_every must be >= 1"):
        generate_continuous(model, [[1, 2]], 4, EOS, slots=1, check_every=0)
    for budgets in ([4], [0, 4], [4, 5]):
        with pytest.raises(ValueError, match=r"budgets must be 2 ints \(one per row\) in \[1, max_new_tokens=4\]"):
            generate_continuous(model, [[1, 2], [3]], 4, EOS, slots=2, budgets=budgets)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        generate_continuous(model, [[1, 2]], 0, EOS, slots=1)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        generate_continuous(model, [[1], []], 4, EOS, slots=1)


# ----------------------------------------------------------------------------------------------
# a character tokenizer for the tests of every stage


def write_tokenizer(path, vocab_size=VOCAB, chat_template=None):
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers.models import WordLevel
    from tokenizers.decoders import Fuse
    from tokenizers.pre_tokenizers import Split

    chars = [chr(ord("!") + i) for i in range(vocab_size - 2)] + [" "]
    vocab = {c: i for i, c in enumerate(chars)}
    tok = HFTokenizer(WordLevel(vocab, unk_token="!"))
    tok.pre_tokenizer = Split("", "isolated")
    tok.decoder = Fuse()
    tok.add_special_tokens(["<eos>"])
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))
    config = {"eos_token": "<eos>"}
    if chat_template:
        config["chat_template"] = chat_template
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    (path / "generation_config.json").write_text(json.dumps({"eos_token_id": [3]}))


# ----------------------------------------------------------------------------------------------
# the cache's size


@pytest.mark.parametrize("window,sinks,full_layers", [(None, 0, ()), (8, 0, ()), (8, 2, (1,))])
def test_kv_cache_bytes_equals_the_cache_generate_allocates(window, sinks, full_layers):
    model = Model(Config(vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=8, max_position_embeddings=128))
    model.set_window(window, sinks, full_layers)
    for length in (5, 10, 40):
        cache = KVCache(model, 1, length, "cpu", torch.bfloat16)
        assert kv_cache_bytes(model.config, length, 2) == cache.memory_bytes()
