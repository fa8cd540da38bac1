"""The attention implementations agree with an independent float64 loop, and with each other."""
import itertools
import math
import warnings

import pytest
import torch

import swa_attention
from swa_attention import (FLEX_BLOCK, bucket_length, chunked_attention, flex_block_mask, naive_attention,
                           sliding_window_attention, visible, window_mask)


def loop_reference(q, k, v, window, sinks):
    """Written from the convention alone, one query at a time, in float64: i - W < j <= i, or j < S."""
    B, Hq, Tq, D = q.shape
    Hkv, Tk = k.shape[1], k.shape[2]
    out = torch.zeros(B, Hq, Tq, D, dtype=torch.float64)
    for h in range(Hq):
        kh = h // (Hq // Hkv)
        for t in range(Tq):
            i = Tk - Tq + t
            keys = [j for j in range(i + 1) if window is None or i - j < window or j < sinks]
            s = torch.stack([(q[:, h, t].double() * k[:, kh, j].double()).sum(-1) for j in keys], -1) / math.sqrt(D)
            p = torch.softmax(s, -1)  # (B, n_keys)
            out[:, h, t] = (p[..., None] * v[:, kh, keys].double()).sum(1)
    return out


def random_qkv(B, Hq, Hkv, Tq, Tk, D, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, Hq, Tq, D, generator=g, dtype=dtype)
    k = torch.randn(B, Hkv, Tk, D, generator=g, dtype=dtype)
    v = torch.randn(B, Hkv, Tk, D, generator=g, dtype=dtype)
    return q, k, v


CASES = [
    # (B, Hq, Hkv, T, D, window, sinks)
    (1, 2, 2, 5, 8, 8, 0),  # T below W
    (2, 4, 2, 8, 8, 8, 0),  # T at W, GQA
    (1, 4, 1, 40, 8, 7, 0),  # T far above W, multi-query
    (2, 6, 2, 37, 16, 5, 2),  # sinks, T not a multiple of anything
    (1, 2, 2, 33, 8, 1, 0),  # W=1: each query sees only itself
    (1, 2, 1, 30, 8, 4, 6),  # more sinks than the window
    (1, 2, 2, 20, 8, None, 0),  # full causal
]


@pytest.mark.parametrize("B,Hq,Hkv,T,D,window,sinks", CASES)
def test_impls_match_float64_loop(B, Hq, Hkv, T, D, window, sinks):
    q, k, v = random_qkv(B, Hq, Hkv, T, T, D)
    ref = loop_reference(q, k, v, window, sinks)
    for impl in ("naive", "chunked", "sdpa", "auto"):
        out = sliding_window_attention(q, k, v, window, sinks, impl=impl)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10, msg=f"impl={impl}")


@pytest.mark.parametrize("chunk_size", [1, 3, 16, 1000])
def test_chunked_any_chunk_size(chunk_size):
    q, k, v = random_qkv(2, 4, 2, 53, 53, 8, seed=1)
    ref = sliding_window_attention(q, k, v, 9, 3, impl="naive")
    torch.testing.assert_close(chunked_attention(q, k, v, 9, 3, chunk_size=chunk_size), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("window,sinks", [(4, 0), (6, 2), (None, 0)])
@pytest.mark.parametrize("Tq", [7, 12])  # 12 keys before 7 queries; 7 before 12 (SDPA pads the queries at the front)
def test_keys_before_queries(window, sinks, Tq):
    """A cache or a prompt run once feeds keys that start before the queries: queries are the last Tq positions.
    Gradients too: SDPA's padded queries add nothing to the keys' and values' gradients."""
    q, k, v = (t.requires_grad_() for t in random_qkv(1, 4, 2, Tq, 19, 8, seed=2))
    ref = loop_reference(q.detach(), k.detach(), v.detach(), window, sinks)
    probe = torch.randn(ref.shape, generator=torch.Generator().manual_seed(4), dtype=ref.dtype)
    grads = {}
    for impl in ("naive", "chunked", "sdpa"):
        out = sliding_window_attention(q, k, v, window, sinks, impl=impl)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
        grads[impl] = torch.autograd.grad((out * probe).sum(), (q, k, v))
    for impl in ("chunked", "sdpa"):
        for a, b in zip(grads[impl], grads["naive"]):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=impl)
    # and equal to the last rows of attention over the full sequence of queries
    q_full = torch.cat([random_qkv(1, 4, 2, 19 - Tq, 19 - Tq, 8, seed=3)[0], q.detach()], dim=2)
    full = sliding_window_attention(q_full, k.detach(), v.detach(), window, sinks, impl="naive")
    torch.testing.assert_close(full[:, :, -Tq:], ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("impl", ["naive", "chunked", "sdpa"])
def test_window_at_least_T_is_full_causal(impl):
    q, k, v = random_qkv(1, 2, 2, 24, 24, 8, seed=4)
    full = sliding_window_attention(q, k, v, None, impl=impl)
    for window in (24, 25, 1000):
        assert torch.equal(sliding_window_attention(q, k, v, window, impl=impl), full)


def test_gradients_agree():
    q, k, v = random_qkv(1, 4, 2, 29, 29, 8, seed=5)
    grads = {}
    for impl in ("naive", "chunked", "sdpa"):
        qq, kk, vv = (t.clone().requires_grad_() for t in (q, k, v))
        (sliding_window_attention(qq, kk, vv, 6, 2, impl=impl) ** 2).sum().backward()
        grads[impl] = (qq.grad, kk.grad, vv.grad)
    for impl in ("chunked", "sdpa"):
        for a, b in zip(grads[impl], grads["naive"]):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_mask_hand_computed():
    expected = torch.tensor([
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 0, 1, 1, 0, 0],
        [1, 0, 0, 1, 1, 0],
        [1, 0, 0, 0, 1, 1],
    ], dtype=torch.bool)
    assert torch.equal(window_mask(6, 6, window=2, sinks=1), expected)


def test_chunked_memory_is_linear_in_T():
    """The largest intermediate in the chunked path is a (C, C + W + S) block per head, not (T, T)."""
    sizes = []
    for T in (512, 2048):
        q, k, v = random_qkv(1, 1, 1, T, T, 4, dtype=torch.float32)
        largest = [0]

        def spy(fn):
            def wrapped(*a, **kw):
                out = fn(*a, **kw)
                largest[0] = max(largest[0], out.numel())
                return out
            return wrapped

        orig = torch.Tensor.masked_fill
        torch.Tensor.masked_fill = spy(orig)
        try:
            chunked_attention(q, k, v, 64, 4, chunk_size=128)
        finally:
            torch.Tensor.masked_fill = orig
        sizes.append(largest[0])
    assert sizes[0] == sizes[1] == 128 * (128 + 64 - 1 + 4)


@pytest.mark.parametrize("Tq,Tk", [(1, 300), (128, 128), (128, 255), (300, 300), (200, 513), (513, 1000)])
@pytest.mark.parametrize("window,sinks", [(1, 0), (5, 1), (5, 127), (127, 0), (128, 4), (129, 130), (253, 4), (255, 0), (600, 0), (None, 0)])
def test_flex_block_mask_matches_create_block_mask(Tq, Tk, window, sinks):
    """The block mask built from block corners lists the same partial and full blocks as torch's,
    which evaluates the mask at every (query, key) pair; blocks cut by the sequence end included."""
    from torch.nn.attention.flex_attention import create_block_mask
    offset = Tk - Tq
    ref = create_block_mask(lambda b, h, q, k: visible(q + offset, k, window, sinks), None, None, Tq, Tk, device="cpu", _compile=False)
    got = flex_block_mask(Tq, Tk, window, sinks, "cpu")

    def listed(counts, indices):  # per query block, the set of KV blocks listed
        return [sorted(indices[0, 0, i, :n].tolist()) for i, n in enumerate(counts[0, 0].tolist())]

    assert listed(got.kv_num_blocks, got.kv_indices) == listed(ref.kv_num_blocks, ref.kv_indices)  # partial
    assert listed(got.full_kv_num_blocks, got.full_kv_indices) == listed(ref.full_kv_num_blocks, ref.full_kv_indices)
    assert got.seq_lengths == (Tq, Tk) and got.mask_mod(0, 0, torch.tensor(Tq - 1), torch.tensor(0)) == visible(Tk - 1, 0, window, sinks)


def test_bad_input_errors():
    q, k, v = random_qkv(1, 2, 2, 4, 4, 8)
    with pytest.raises(ValueError, match="window"):
        sliding_window_attention(q, k, v, 0)
    with pytest.raises(ValueError, match="sinks"):
        sliding_window_attention(q, k, v, 4, sinks=-1)
    with pytest.raises(ValueError, match="expected q"):
        sliding_window_attention(q, k[:, :, :, :4], v, 2)
    with pytest.raises(ValueError, match="float32"):  # torch's CPU flex kernel has no float64
        sliding_window_attention(q, k, v, 2, impl="flex")
    qf, kf, vf = (t.float().requires_grad_() for t in (q, k, v))
    with pytest.raises(ValueError, match="forward-only"):  # nor a backward
        sliding_window_attention(qf, kf, vf, 2, impl="flex")
    with pytest.raises(ValueError, match="multiple of flex's block size 128"):
        swa_attention.flex_attention(qf.detach(), kf.detach(), vf.detach(), 2, bucket=192)
    with pytest.raises(ValueError, match="unknown attention impl"):
        sliding_window_attention(q, k, v, 2, impl="fast")
    with pytest.raises(ValueError, match="multiple"):
        sliding_window_attention(random_qkv(1, 3, 2, 4, 4, 8)[0], k, v, 2)


# ----------------------------------------------------------------------------------------------
# flex at many lengths: bounded compilations, never the unfused fallback (issue 14)


def compiled_graphs():
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


def test_bucket_lengths():
    assert [bucket_length(T) for T in (1, 128, 129, 1024, 1025, 1280, 1281, 2049, 32768)] == \
        [128, 128, 256, 1024, 1280, 1280, 1536, 2560, 32768]
    buckets = {bucket_length(T) for T in range(1, 32769)}
    assert len(buckets) == 28 and all(b % FLEX_BLOCK == 0 for b in buckets)
    assert all(bucket_length(T) - T < 128 or bucket_length(T) <= 1.25 * T for T in range(1, 32769))
    assert bucket_length(300, bucket=256) == 512
    for bad in (100, 192, 0, 128.0):
        with pytest.raises(ValueError, match="multiple of flex's block size"):
            bucket_length(300, bucket=bad)


def test_flex_on_cpu_at_many_lengths():
    """impl="flex" on the CPU (forward) at 14 lengths over two buckets: it compiles once per bucket,
    never warns that it runs uncompiled, and matches the float64 reference."""
    from torch.nn.attention import flex_attention as flex_module
    getattr(flex_module, "_WARNINGS_SHOWN", set()).discard("flex_attention_performance")  # torch warns once per process
    W, S = 16, 2
    lengths = [17, 23, 31, 40, 64, 97, 127, 128, 129, 150, 177, 200, 230, 256]
    before = compiled_graphs()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i, T in enumerate(lengths):
            q, k, v = random_qkv(1, 2, 1, T, T, 16, dtype=torch.float32, seed=i)
            out = sliding_window_attention(q, k, v, W, S, impl="flex")
            ref = naive_attention(q.double(), k.double(), v.double(), W, S)
            torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-5, msg=f"T={T}")
        # keys before the queries (a prefix): both padded by the same amount keeps them aligned
        q, k, v = random_qkv(1, 2, 1, 50, 170, 16, dtype=torch.float32, seed=99)
        ref = naive_attention(q.double(), k.double(), v.double(), W, S)
        torch.testing.assert_close(sliding_window_attention(q, k, v, W, S, impl="flex").double(), ref, rtol=0, atol=1e-5)
    assert not [w for w in caught if "without torch.compile" in str(w.message)]
    assert compiled_graphs() - before <= len({bucket_length(T) for T in lengths}) + 1  # + the prefix case


def test_flex_never_falls_back_silently(monkeypatch):
    q, k, v = random_qkv(1, 2, 1, 40, 40, 16, dtype=torch.float32)
    sliding_window_attention(q, k, v, 16, 2, impl="flex")  # bucket 128 compiled (or already was)
    # the recompile limit reached: torch would run flex unfused; it raises instead
    monkeypatch.setattr(swa_attention, "RECOMPILE_LIMIT", 1)
    limit_name = next(iter(swa_attention.recompile_budget()))  # recompile_limit, or its old name
    q, k, v = random_qkv(1, 2, 1, 300, 300, 16, dtype=torch.float32)
    with torch._dynamo.config.patch(**{limit_name: 1}), pytest.raises(RuntimeError, match="recompile limit"):
        sliding_window_attention(q, k, v, 16, 2, impl="flex")
    # compilation switched off: torch's own warning becomes the same error
    if hasattr(torch.compiler, "set_stance"):
        with torch.compiler.set_stance("force_eager"), pytest.raises(RuntimeError, match="unfused"):
            sliding_window_attention(q[:, :, :40], k[:, :, :40], v[:, :, :40], 16, 2, impl="flex")


# ----------------------------------------------------------------------------------------------
# packed rows: several documents end to end, each attending only to itself


def packed(lengths, Hq=4, Hkv=2, D=16, dtype=torch.float64, seed=0):
    """q, k, v of one row holding documents of `lengths`, and its doc_start (1, T)."""
    q, k, v = random_qkv(1, Hq, Hkv, sum(lengths), sum(lengths), D, dtype=dtype, seed=seed)
    doc_start = torch.tensor([[sum(lengths[:i]) for i, n in enumerate(lengths) for _ in range(n)]])
    return q, k, v, doc_start


def each_document_alone(q, k, v, lengths, window, sinks):
    """The reference: every document attended on its own, in float64, concatenated back."""
    outs, o = [], 0
    for n in lengths:
        outs.append(naive_attention(*(t[:, :, o : o + n].double() for t in (q, k, v)), window, sinks))
        o += n
    return torch.cat(outs, dim=2)


@pytest.mark.parametrize("window,sinks", [(None, 0), (4, 0), (3, 2), (1, 0)])
def test_packed_rows_match_the_loop_reference(window, sinks):
    lengths = [5, 1, 9, 3]
    q, k, v, doc_start = packed(lengths)
    ref, o = [], 0
    for n in lengths:  # the convention alone, one query at a time, document by document
        ref.append(loop_reference(*(t[:, :, o : o + n] for t in (q, k, v)), window, sinks))
        o += n
    ref = torch.cat(ref, dim=2)
    for impl in ("naive", "sdpa", "auto"):
        out = sliding_window_attention(q, k, v, window, sinks, impl=impl, doc_start=doc_start)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10, msg=f"impl={impl}")


def test_flex_packed_rows_on_cpu():
    """flex with packed rows (forward, CPU): documents crossing blocks, windows wider and narrower than
    a block, sinks, padding to the bucket. It matches each document alone, compiles once per bucket
    and window whatever the documents, and builds one block mask per forward, for every layer."""
    layouts = [[100, 300, 7, 217], [640], [5, 5, 5, 500, 125], [129, 255, 256], [1] * 40 + [600]]
    cases = [(None, 0), (200, 0), (64, 3), (1, 0)]
    before = compiled_graphs()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for lengths in layouts:
            q, k, v, doc_start = packed(lengths, dtype=torch.float32, seed=len(lengths))
            for window, sinks in cases:
                out = sliding_window_attention(q, k, v, window, sinks, impl="flex", doc_start=doc_start)
                ref = each_document_alone(q, k, v, lengths, window, sinks)
                torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-5, msg=f"{lengths} W={window} S={sinks}")
    assert not [w for w in caught if "without torch.compile" in str(w.message)]
    assert compiled_graphs() - before <= len(cases) * 2  # buckets 640 and 768 (the last layout), each window once
    mask = swa_attention._document_masks[(1, 0)][2]
    sliding_window_attention(q, k, v, 1, 0, impl="flex", doc_start=doc_start)  # the same forward's next layer
    assert swa_attention._document_masks[(1, 0)][2] is mask


def test_packed_rows_bad_input():
    q, k, v, doc_start = packed([3, 5])
    with pytest.raises(ValueError, match="chunked' does not take packed rows"):
        sliding_window_attention(q, k, v, 4, impl="chunked", doc_start=doc_start)
    with pytest.raises(ValueError, match="packed rows need as many queries as keys"):
        sliding_window_attention(q, k, v, 4, doc_start=doc_start[:, :7])
    with pytest.raises(ValueError, match="packed rows need as many queries as keys"):
        sliding_window_attention(q[:, :, 2:], k, v, 4, doc_start=doc_start)


# ----------------------------------------------------------------------------------------------
# prefixes: G completions of one prompt in one row, the prompt held once (model.pack_shared)


def shared_layout(groups):
    """groups: (prompt length, completion lengths). q, k, v (float64) of each whole sequence (prompt + completion, the
    prompt's values the same in every sequence), and the packed row: the prompt but its last position once, then each
    completion as [the prompt's last position] + completion -> sequences [(q, k, v) (1, H, n, D)], the row's q, k, v,
    doc_start, prefix_start, and per sequence the row's index of each of its positions from the prompt's last on."""
    g = torch.Generator().manual_seed(len(groups))
    make = lambda H, n: torch.randn(1, H, n, 16, generator=g, dtype=torch.float64)  # noqa: E731
    sequences, row, doc_start, prefix_start, where = [], [], [], [], []
    for p, lengths in groups:
        prompt = [make(H, p) for H in (4, 2, 2)]
        start = len(doc_start)
        row.append([t[:, :, : p - 1] for t in prompt])
        doc_start += [start] * (p - 1)
        prefix_start += [start] * (p - 1)
        for n in lengths:
            seq = [torch.cat([t, make(t.shape[1], n)], dim=2) for t in prompt]
            sequences.append(seq)
            o = len(doc_start)
            where.append(list(range(o, o + n + 1)))
            row.append([t[:, :, p - 1 :] for t in seq])
            doc_start += [o] * (n + 1)
            prefix_start += [start if p > 1 else o] * (n + 1)
    q, k, v = (torch.cat([part[i] for part in row], dim=2) for i in range(3))
    return sequences, q, k, v, torch.tensor([doc_start]), torch.tensor([prefix_start]), where


GROUPS = [[(5, [3, 1, 6]), (1, [2, 4]), (4, [5])], [(9, [2, 7, 1, 3])]]  # a one-position prompt: no prefix left


@pytest.mark.parametrize("groups", GROUPS)
@pytest.mark.parametrize("window,sinks", [(None, 0), (4, 0), (3, 2), (1, 0), (6, 1)])
def test_prefix_rows_match_each_sequence_alone(groups, window, sinks):
    """Each completion sees its prompt as if it came right before it, and no other completion: its
    positions equal the float64 loop over prompt + completion alone; the prompt's positions too."""
    sequences, q, k, v, doc_start, prefix_start, where = shared_layout(groups)
    assert swa_attention.packed_positions(doc_start, prefix_start)[0, where[0]].tolist() == list(range(groups[0][0] - 1, groups[0][0] + groups[0][1][0]))
    for impl in ("naive", "sdpa", "auto"):
        out = sliding_window_attention(q, k, v, window, sinks, impl=impl, doc_start=doc_start, prefix_start=prefix_start)
        for seq, at in zip(sequences, where):
            ref = loop_reference(*seq, window, sinks)  # (1, 4, p + n, D)
            torch.testing.assert_close(out[:, :, at], ref[:, :, -len(at) :], rtol=1e-10, atol=1e-10, msg=f"impl={impl}")
            prompt_part = [i for i in range(doc_start.shape[1]) if doc_start[0, i] == prefix_start[0, at[0]] != at[0]]
            torch.testing.assert_close(out[:, :, prompt_part], ref[:, :, : len(prompt_part)], rtol=1e-10, atol=1e-10)


def test_flex_prefix_rows_on_cpu():
    """flex with prefixes (forward, CPU, float32): blocks cut across prompts and completions, the row
    padded to its bucket. It matches each sequence alone, and its block mask lists every block
    holding a visible pair, all of whose pairs are visible when it is listed as full."""
    from torch.nn.attention.flex_attention import create_block_mask
    layouts = [[(130, [200, 3, 60]), (1, [140]), (40, [90, 90])], [(300, [129, 127, 256])]]
    for groups in layouts:
        sequences, q, k, v, doc_start, prefix_start, where = shared_layout(groups)
        for window, sinks in [(None, 0), (200, 0), (64, 3), (1, 0)]:
            out = sliding_window_attention(*(t.float() for t in (q, k, v)), window, sinks, impl="flex", doc_start=doc_start,
                                           prefix_start=prefix_start)
            for seq, at in zip(sequences, where):
                torch.testing.assert_close(out[:, :, at].double(), naive_attention(*seq, window, sinks)[:, :, -len(at) :],
                                           rtol=0, atol=1e-5, msg=f"W={window} S={sinks}")
            T = bucket_length(doc_start.shape[1])
            padded = [torch.nn.functional.pad(t, (0, T - t.shape[1]), value=doc_start.shape[1]) for t in (doc_start, prefix_start)]
            got = swa_attention.flex_document_mask(*padded[:1], window, sinks, padded[1])
            dense = swa_attention.document_mask(*padded[:1], window, sinks, padded[1])[0]  # (T, T)
            ref = create_block_mask(lambda b, h, i, j: dense[i, j], None, None, T, T, device="cpu", _compile=False)
            def listed(counts, indices):  # noqa: E306 -- per query block, the set of KV blocks listed
                return [set(indices[0, 0, i, :n].tolist()) for i, n in enumerate(counts[0, 0].tolist())]
            for i, (partial, full, want_partial, want_full) in enumerate(zip(
                    listed(got.kv_num_blocks, got.kv_indices), listed(got.full_kv_num_blocks, got.full_kv_indices),
                    listed(ref.kv_num_blocks, ref.kv_indices), listed(ref.full_kv_num_blocks, ref.full_kv_indices))):
                assert want_partial | want_full <= partial | full and full <= want_full and not partial & full
            blocks = T // FLEX_BLOCK
            assert sum(map(len, listed(got.kv_num_blocks, got.kv_indices))) < blocks * (blocks + 1) // 2  # sparser than causal


def test_prefix_bad_input():
    _, q, k, v, doc_start, prefix_start, _ = shared_layout(GROUPS[1])
    with pytest.raises(ValueError, match="prefix_start needs doc_start of its shape"):
        sliding_window_attention(q, k, v, 4, prefix_start=prefix_start)
    with pytest.raises(ValueError, match="prefix_start needs doc_start of its shape"):
        sliding_window_attention(q, k, v, 4, doc_start=doc_start, prefix_start=prefix_start[:, :5])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="flex's backward runs on CUDA only")
def test_flex_packed_rows_backward_on_gpu():
    """Training through flex on packed rows, with and without prefixes (CUDA, float32): outputs and q, k, v
    gradients equal the float64 naive path's; under bf16 autocast, float32 inputs run flex in bf16."""
    _, q, k, v, doc_start, prefix_start, _ = shared_layout([(130, [200, 3, 60]), (1, [140]), (40, [90, 90])])
    layouts = [(q, k, v, doc_start, prefix_start), (*packed([100, 300, 7, 217, 129]), None)]
    for (q, k, v, doc_start, prefix_start), (window, sinks) in itertools.product(layouts, [(None, 0), (64, 3)]):
        weights = torch.randn(q.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))  # tells positions apart
        cuda = lambda t: None if t is None else t.cuda()  # noqa: E731
        grads = []
        for impl, dtype, device in (("naive", torch.float64, "cpu"), ("flex", torch.float32, "cuda")):
            qkv = [t.detach().to(device, dtype).requires_grad_() for t in (q, k, v)]
            out = sliding_window_attention(*qkv, window, sinks, impl=impl, doc_start=doc_start.to(device),
                                           prefix_start=None if prefix_start is None else prefix_start.to(device))
            (out * weights.to(device, dtype)).sum().backward()
            grads.append([out.detach().double().cpu()] + [t.grad.double().cpu() for t in qkv])
        for name, a, b in zip(("out", "dq", "dk", "dv"), *grads):
            torch.testing.assert_close(b, a, rtol=0, atol=1e-4, msg=f"{name} W={window} S={sinks} prefix={prefix_start is not None}")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            q32, k32, v32 = (t.float().cuda() for t in (q, k, v))
            assert swa_attention.pick_impl(q32, k32, window, packed=True) == "flex"
            assert swa_attention.pick_impl(q32, k32, 64) == "sdpa"  # a window on unpacked rows: SDPA's mask (pick_impl)
            out = sliding_window_attention(q32, k32, v32, window, sinks, doc_start=cuda(doc_start), prefix_start=cuda(prefix_start))
        assert out.dtype == torch.bfloat16
        torch.testing.assert_close(out.double().cpu(), grads[0][0], rtol=0, atol=3e-2)
