"""
model.py against Hugging Face transformers (a test dependency only): random-weight models of each
model_type, built and saved by transformers, must give the same float32 logits in our decoder,
with full attention and with sliding windows; and our export (checkpoint.export_hf) must load back in
transformers with the same logits.
"""
import copy
import json
import warnings

import pytest
import torch

from checkpoint import export_hf
from generate import generate
import model as model_module
from model import (Config, Model, completion_rows, compile_for_training, fuse_projections, linear, matvec, pack, pack_shared,
                   pairs_logprobs, token_logprobs)
from swa_attention import packed_positions

transformers = pytest.importorskip("transformers")

TOL = 1e-4
T = 40  # far past every window used below


def hf_config(model_type, tied=False, rope=None, head_dim=16, **extra):
    cls = {
        "llama": transformers.LlamaConfig,
        "qwen2": transformers.Qwen2Config,
        "qwen3": transformers.Qwen3Config,
        "mistral": transformers.MistralConfig,
    }[model_type]
    kw = dict(
        vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=head_dim, max_position_embeddings=256, tie_word_embeddings=tied,
        rms_norm_eps=1e-5, attn_implementation="eager",
    )
    if model_type == "mistral":
        kw["sliding_window"] = None
    kw.update(extra)
    config = cls(**kw)
    config.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0, **(rope or {})}
    if "llama3" in str(rope):
        config.rope_parameters["original_max_position_embeddings"] = 64
    return config


def build_hf(tmp_path, config, seed=0):
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config).float().eval()
    with torch.no_grad():  # biases and norms start at 0 / 1: randomise them so they are tested
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.normal_(1.0 if "norm" in name else 0.0, 0.1)
    model.save_pretrained(tmp_path / "hf")
    return model, tmp_path / "hf"


def hf_logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


def input_ids(seed=0, vocab=97, B=2):
    return torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))


LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}
LINEAR = {"rope_type": "linear", "factor": 2.0}

FULL_CASES = {
    "llama": dict(model_type="llama"),
    "llama-tied-llama3": dict(model_type="llama", tied=True, rope=LLAMA3),
    "llama-bias-linear": dict(model_type="llama", rope=LINEAR, attention_bias=True, mlp_bias=True),
    "qwen2": dict(model_type="qwen2"),
    "qwen2-tied-linear": dict(model_type="qwen2", tied=True, rope=LINEAR),
    "qwen3-headdim24": dict(model_type="qwen3", head_dim=24),
    "qwen3-tied-llama3": dict(model_type="qwen3", tied=True, rope=LLAMA3),
    "mistral": dict(model_type="mistral"),
}


@pytest.mark.parametrize("case", FULL_CASES)
def test_full_attention_parity(tmp_path, case):
    hf, path = build_hf(tmp_path, hf_config(**FULL_CASES[case]))
    ours = Model.from_pretrained(path)
    assert all(w is None for w in ours.config.layer_windows)
    ids = input_ids()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf_logits(hf, ids), rtol=0, atol=TOL)


# checkpoints whose own config sets a sliding window load with exactly the attention transformers gives them
OWN_WINDOW_CASES = {
    "mistral-v0.1-style": (dict(model_type="mistral", sliding_window=7), [7, 7, 7]),
    "qwen2-max-window-layers": (dict(model_type="qwen2", use_sliding_window=True, sliding_window=6, max_window_layers=1), [None, 6, 6]),
    "qwen3-layer-types": (
        dict(model_type="qwen3", use_sliding_window=True, sliding_window=5, layer_types=["sliding_attention", "full_attention", "sliding_attention"]),
        [5, None, 5],
    ),
}


@pytest.mark.parametrize("case", OWN_WINDOW_CASES)
def test_checkpoint_window_parity(tmp_path, case):
    kw, windows = OWN_WINDOW_CASES[case]
    hf, path = build_hf(tmp_path, hf_config(**kw))
    ours = Model.from_pretrained(path)
    assert ours.config.layer_windows == windows
    ids = input_ids(1)
    with torch.no_grad():
        logits = ours(ids)
        torch.testing.assert_close(logits, hf_logits(hf, ids), rtol=0, atol=TOL)
        # and the window really matters at this length
        assert (Model.from_pretrained(path, window=None)(ids) - logits).abs().max() > 1e-2


def hf_with_window(path, model_type, window, full_layers=()):
    """The same weights in transformers, configured with our window and layout."""
    config = transformers.AutoConfig.from_pretrained(path)
    n = config.num_hidden_layers
    if model_type == "mistral":
        assert not full_layers
        config.sliding_window = window
    else:
        config.use_sliding_window, config.sliding_window = True, window
        config.layer_types = ["full_attention" if i in full_layers else "sliding_attention" for i in range(n)]
    return transformers.AutoModelForCausalLM.from_pretrained(path, config=config, attn_implementation="eager", dtype=torch.float32).eval()


@pytest.mark.parametrize("model_type,tied,full_layers", [
    ("qwen2", False, ()),
    ("qwen2", True, (1,)),
    ("qwen3", False, (0, 2)),
    ("mistral", True, ()),
])
def test_swa_conversion_parity(tmp_path, model_type, tied, full_layers):
    _, path = build_hf(tmp_path, hf_config(model_type, tied=tied, rope=LINEAR if tied else None))
    ours = Model.from_pretrained(path, window=6, full_layers=full_layers)
    ids = input_ids(2)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf_logits(hf_with_window(path, model_type, 6, full_layers), ids), rtol=0, atol=TOL)


@pytest.mark.parametrize("case,window,full_layers", [
    ("llama", None, ()),
    ("llama-tied-llama3", 5, ()),  # transformers' llama has no window: exported as qwen2 with zero biases
    ("llama", 6, (2,)),
    ("qwen2-tied-linear", 5, (0,)),
    ("qwen3-headdim24", 7, ()),
    ("qwen3-tied-llama3", None, ()),
    ("mistral", 6, ()),
    ("mistral", 6, (1,)),  # hybrid mistral -> qwen2
])
def test_export_hf_loads_in_transformers(tmp_path, case, window, full_layers):
    _, path = build_hf(tmp_path, hf_config(**FULL_CASES[case]), seed=3)
    ours = Model.from_pretrained(path, window=window, full_layers=full_layers)
    export_hf(ours, tmp_path / "ours")
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "ours", attn_implementation="eager", dtype=torch.float32).eval()
    ids = input_ids(3)
    with torch.no_grad():
        torch.testing.assert_close(hf_logits(hf, ids), ours(ids), rtol=0, atol=TOL)
    # and it round-trips through our loader with the same layout
    again = Model.from_pretrained(tmp_path / "ours")
    assert again.config.layer_windows == ours.config.layer_windows
    with torch.no_grad():
        torch.testing.assert_close(again(ids), ours(ids), rtol=0, atol=0)


def test_sharded_checkpoint(tmp_path):
    hf = transformers.AutoModelForCausalLM.from_config(hf_config("qwen2")).float().eval()
    hf.save_pretrained(tmp_path / "hf", max_shard_size="50KB")
    assert (tmp_path / "hf" / "model.safetensors.index.json").exists()
    ids = input_ids(4)
    with torch.no_grad():
        torch.testing.assert_close(Model.from_pretrained(tmp_path / "hf")(ids), hf_logits(hf, ids), rtol=0, atol=TOL)


def test_sinks_are_saved_but_transformers_ignores_them(tmp_path):
    _, path = build_hf(tmp_path, hf_config("qwen2"))
    ours = Model.from_pretrained(path, window=4, sinks=2)
    export_hf(ours, tmp_path / "ours")
    assert json.loads((tmp_path / "ours" / "config.json").read_text())["swarr_sinks"] == 2
    again = Model.from_pretrained(tmp_path / "ours")
    assert again.config.sinks == 2 and again.config.layer_windows == [4, 4, 4]
    ids = input_ids(5)
    with torch.no_grad():
        torch.testing.assert_close(again(ids), ours(ids), rtol=0, atol=0)
        # the sinks change the function, so a sink-free transformers model would differ
        assert (Model.from_pretrained(path, window=4)(ids) - ours(ids)).abs().max() > 1e-3


def test_set_window_equals_loading_with_window(tmp_path):
    _, path = build_hf(tmp_path, hf_config("llama"))
    a = Model.from_pretrained(path, window=5, sinks=1, full_layers=(0,))
    b = Model.from_pretrained(path)
    b.set_window(5, sinks=1, full_layers=(0,))
    ids = input_ids(6)
    with torch.no_grad():
        assert torch.equal(a(ids), b(ids))


def test_attention_impls_agree_in_the_model(tmp_path):
    _, path = build_hf(tmp_path, hf_config("qwen3"))
    model = Model.from_pretrained(path, window=5, sinks=1, full_layers=(1,), dtype=torch.float64)
    ids = input_ids(7)
    outs = {}
    with torch.no_grad():
        for impl in ("naive", "chunked", "sdpa"):
            model.impl = impl
            outs[impl] = model(ids)
    torch.testing.assert_close(outs["chunked"], outs["naive"], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(outs["sdpa"], outs["naive"], rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------------------------
# bad input: one clear line, never a silent wrong model


def test_compile_for_training_matches_eager():
    """--compile, the fast path: the same log-probs and gradients as the eager model at 12 lengths,
    with the head everywhere and at the needed positions only, compiling only for the first two (issue 14: every batch of a real run has a new length). Then
    flex inside the compiled blocks (forward: torch has no CPU flex backward): flex compiles once
    per bucket and window (test_swa_attention checks across buckets), never runs unfused."""
    graphs = lambda: torch._dynamo.utils.counters["stats"]["unique_graphs"]  # noqa: E731
    torch.manual_seed(0)
    config = Config(model_type="qwen2", vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256)
    eager = Model(config)
    eager.set_window(6, sinks=1, full_layers=(1,))
    compiled = Model(Config(**{**config.__dict__}))
    compiled.load_state_dict(eager.state_dict())
    compiled.set_window(6, sinks=1, full_layers=(1,))
    compile_for_training(compiled)
    lengths = [40, 23, 17, 31, 55, 64, 80, 99, 120, 129, 150, 200]
    for i, T in enumerate(lengths):
        if i == 2:  # compiled for a static, then a symbolic length: nothing more after that
            compiled_so_far = graphs()
        ids = torch.randint(0, 97, (2, T))
        needed = torch.rand(2, T - 1) < 0.5  # and the head at some positions only: its own shapes, (1, needed)
        for kwargs in ({}, {"needed": needed}):
            logp = {}
            for model in (eager, compiled):
                model.zero_grad()
                logp[model] = token_logprobs(model, ids, temperature=0.9, **kwargs)
                logp[model].sum().backward()
            torch.testing.assert_close(logp[compiled], logp[eager], rtol=0, atol=1e-5)
            for (name, a), b in zip(eager.named_parameters(), compiled.parameters()):
                torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=1e-5, msg=name)
    assert graphs() == compiled_so_far

    compiled.impl = "flex"
    # all in flex's first bucket (128): a new bucket would cost a compilation per window, ~4 s each
    lengths = [40, 23, 17, 31, 55, 64, 80, 99, 110, 120, 127, 128]
    from torch.nn.attention import flex_attention as flex_module
    getattr(flex_module, "_WARNINGS_SHOWN", set()).discard("flex_attention_performance")  # torch warns once per process
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        for i, T in enumerate(lengths):
            if i == 2:  # the no-grad graphs are made, flex compiled for windows 6 and None: nothing more
                compiled_so_far = graphs()
            ids = torch.randint(0, 97, (2, T))
            torch.testing.assert_close(token_logprobs(compiled, ids), token_logprobs(eager, ids), rtol=0, atol=1e-5)
    assert not [w for w in caught if "without torch.compile" in str(w.message)]
    assert graphs() == compiled_so_far


def test_bad_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        Model.from_pretrained(tmp_path)
    _, path = build_hf(tmp_path, hf_config("llama"))
    config = json.loads((path / "config.json").read_text())

    (path / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    with pytest.raises(ValueError, match="unknown model_type 'gpt2'"):
        Model.from_pretrained(path)

    (path / "config.json").write_text(json.dumps({**config, "rope_parameters": {"rope_type": "yarn", "factor": 2.0}}))
    with pytest.raises(ValueError, match="rope_scaling type 'yarn'"):
        Model.from_pretrained(path)

    (path / "config.json").write_text(json.dumps({**config, "intermediate_size": 100}))
    with pytest.raises(ValueError, match=r"model.layers.0.mlp.gate_proj.weight has shape \(96, 64\), the config expects \(100, 64\)"):
        Model.from_pretrained(path)

    (path / "config.json").write_text(json.dumps(config))
    from safetensors.torch import load_file, save_file
    tensors = load_file(path / "model.safetensors")
    del tensors["model.layers.2.self_attn.k_proj.weight"]
    save_file(tensors, path / "model.safetensors")
    with pytest.raises(ValueError, match="missing tensor model.layers.2.self_attn.k_proj.weight"):
        Model.from_pretrained(path)

    (path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        Model.from_pretrained(path)


def test_bad_windows():
    config = Config(num_hidden_layers=2, vocab_size=11, hidden_size=16, intermediate_size=8, num_attention_heads=2, num_key_value_heads=1, head_dim=8)
    model = Model(config)
    with pytest.raises(ValueError, match="window must be"):
        model.set_window(0)
    with pytest.raises(ValueError, match="sinks must be"):
        model.set_window(4, sinks=-1)
    with pytest.raises(ValueError, match="full_layers index 2 is out of range"):
        model.set_window(4, full_layers=(2,))
    model.set_window(4)
    with pytest.raises(ValueError, match="CUDA"):
        model.impl = "flex"
        model(torch.zeros(1, 8, dtype=torch.long))


def test_padding_to_a_bucket_changes_no_log_prob():
    """token_logprobs with pad_to_buckets (compile_for_training(static=True)) against the same model unpadded, float64."""
    torch.manual_seed(0)
    config = Config(model_type="qwen2", vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512)
    model = Model(config).double()
    model.set_window(6, sinks=1, full_layers=(1,))
    for T in (5, 129, 200):  # padded to 128, 256, 256
        ids = torch.randint(0, 97, (2, T))
        model.pad_to_buckets = False
        plain = token_logprobs(model, ids)
        model.pad_to_buckets = True
        padded = token_logprobs(model, ids)
        assert padded.shape == plain.shape == (2, T - 1)
        torch.testing.assert_close(padded, plain, rtol=0, atol=1e-12)


def packed_model(dtype):
    torch.manual_seed(0)
    config = Config(model_type="qwen2", vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=1024)
    model = Model(config).to(dtype)
    model.set_window(6, sinks=1, full_layers=(1,))
    return model


@pytest.mark.parametrize("impl", ["naive", "sdpa"])
def test_packed_rows_equal_each_sequence_alone(impl):
    """pack + token_logprobs(doc_start=...): every sequence's log-probs and their gradients equal
    those of the sequence run alone (float64): positions restart and attention stays inside each."""
    model = packed_model(torch.float64)
    model.impl = impl
    seqs = [torch.randint(0, 97, (n,)).tolist() for n in (9, 1, 30, 4, 17)]
    ids, doc_start, offsets = pack(seqs, 128)
    assert ids.shape == doc_start.shape == (1, 128) and offsets == [0, 9, 10, 40, 44]
    packed_logp = token_logprobs(model, ids, temperature=0.8, doc_start=doc_start)[0]  # (127,)
    inside = torch.cat([packed_logp[o : o + len(s) - 1] for o, s in zip(offsets, seqs)])  # not a sequence's last column
    inside.sum().backward()
    packed_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    alone = torch.cat([token_logprobs(model, torch.tensor([s]), temperature=0.8)[0] for s in seqs if len(s) > 1])
    alone.sum().backward()
    torch.testing.assert_close(inside, alone, rtol=0, atol=1e-12)
    for (name, p), g in zip(model.named_parameters(), packed_grads):
        torch.testing.assert_close(g, p.grad, rtol=0, atol=1e-12, msg=name)
    with pytest.raises(ValueError, match="do not fit a packed row of 32"):
        pack(seqs, 32)


def test_pack_shared_by_hand():
    """Each prompt once but its last token, each completion behind a copy of that token, continuing the prompt."""
    ids, doc_start, prefix_start, offsets = pack_shared([([7, 8, 9], [[1, 2], [3]]), ([5], [[6, 6]])], 16, pad_id=0)
    assert ids[0].tolist() == [7, 8, 9, 1, 2, 9, 3, 5, 6, 6, 0, 0, 0, 0, 0, 0] and offsets == [2, 5, 7]
    assert doc_start[0].tolist() == [0, 0, 2, 2, 2, 5, 5, 7, 7, 7] + [10] * 6
    assert prefix_start[0].tolist() == [0, 0, 0, 0, 0, 0, 0, 7, 7, 7] + [10] * 6  # a one-token prompt leaves no prefix
    assert packed_positions(doc_start, prefix_start)[0].tolist() == [0, 1, 2, 3, 4, 2, 3, 0, 1, 2] + list(range(6))
    with pytest.raises(ValueError, match="2 groups of 10 tokens .* do not fit a packed row of 9"):
        pack_shared([([7, 8, 9], [[1, 2], [3]]), ([5], [[6, 6]])], 9)


@pytest.mark.parametrize("impl", ["naive", "sdpa"])
def test_shared_prompts_equal_each_sequence_alone(impl):
    """pack_shared + token_logprobs(prefix_start=...): every completion's log-probs, its first token's
    included, and their gradients equal those of prompt + completion run alone (float64), under a
    window with a sink and a full layer; completion_rows(packed, share=True) lays pairs in any order out as pack_shared."""
    model = packed_model(torch.float64)
    model.impl = impl
    g = torch.Generator().manual_seed(3)
    draw = lambda n: torch.randint(0, 97, (n,), generator=g).tolist()  # noqa: E731
    groups = [(draw(9), [draw(n) for n in (4, 12, 1)]), (draw(1), [draw(5), draw(8)]), (draw(14), [draw(3)])]
    ids, doc_start, prefix_start, offsets = pack_shared(groups, 96)
    logp = token_logprobs(model, ids, temperature=0.8, doc_start=doc_start, prefix_start=prefix_start)[0]  # (95,)
    completions = [c for _, cs in groups for c in cs]
    shared = torch.cat([logp[o : o + len(c)] for o, c in zip(offsets, completions)])
    shared.sum().backward()
    shared_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    pairs = [(p, c) for p, cs in groups for c in cs]
    alone = torch.cat([token_logprobs(model, torch.tensor([p + c]), temperature=0.8)[0, len(p) - 1 :] for p, c in pairs])
    alone.sum().backward()
    torch.testing.assert_close(shared, alone, rtol=0, atol=1e-12)
    for (name, p), grad in zip(model.named_parameters(), shared_grads):  # a prompt position's gradient is G completions' sum,
        torch.testing.assert_close(grad, p.grad, rtol=0, atol=1e-6, msg=name)  # rounded once by RMSNorm's float32, not G times
    rows, _, _, row_of, starts = completion_rows(pairs[::-1], packed=96, share=True)  # one row, whatever the pairs' order
    assert row_of == [0] * 6  # the groups in order of first appearance: the pairs reversed reverse them and their completions
    assert torch.equal(rows, pack_shared([(p, cs[::-1]) for p, cs in groups[::-1]], 96)[0])
    assert [rows[r, s + 1 : s + 1 + len(c)].tolist() for r, s, (_, c) in zip(row_of, starts, pairs[::-1])] == [c for _, c in pairs[::-1]]
    with pytest.raises(ValueError, match="give `packed`"):
        completion_rows(pairs, share=True)


def shared_pairs(seed):
    """(prompt, completion) pairs, shuffled: two prompts of one length, a one-token prompt, prompts longer than the window."""
    g = torch.Generator().manual_seed(seed)
    draw = lambda n: torch.randint(0, 97, (n,), generator=g).tolist()  # noqa: E731
    groups = [(draw(9), [4, 12, 1]), (draw(9), [7, 3]), (draw(1), [5, 8]), (draw(14), [3, 20])]
    pairs = [(p, draw(n)) for p, lengths in groups for n in lengths]
    return [pairs[i] for i in torch.randperm(len(pairs), generator=g).tolist()]


@pytest.mark.parametrize("impl,checkpointing", [("naive", False), ("sdpa", False), ("sdpa", True)])
def test_prompts_run_once_equal_each_sequence_alone(impl, checkpointing):
    """pairs_logprobs(share=True): each prompt is held once, its rows attend to its keys and values
    (hidden_states' prefix_ids). Every completion's log-probs, its first token's included, and the
    gradients equal prompt + completion run alone (float64), under a window with a sink and a full
    layer, prompts of three lengths in one call, with activation checkpointing too."""
    model = packed_model(torch.float64)
    model.impl, model.checkpointing = impl, checkpointing
    model.train()
    pairs = shared_pairs(5)
    logp, numel = pairs_logprobs(model, pairs, 0.8, share=True)  # (R, N)
    N = max(len(c) for _, c in pairs)
    assert logp.shape == (len(pairs), N) and numel == 2 * 8 + 5 * 13 + 2 * 9 + 13 + 2 * 21  # prompts once, rows right-padded
    shared = torch.cat([row[: len(c)] for row, (_, c) in zip(logp, pairs)])  # past a completion's end: anything
    shared.sum().backward()
    shared_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    alone = torch.cat([token_logprobs(model, torch.tensor([p + c]), temperature=0.8)[0, len(p) - 1 :] for p, c in pairs])
    alone.sum().backward()
    torch.testing.assert_close(shared, alone, rtol=0, atol=1e-12)
    for (name, p), grad in zip(model.named_parameters(), shared_grads):
        torch.testing.assert_close(grad, p.grad, rtol=0, atol=1e-6, msg=name)  # RMSNorm's float32, as above
    padded, _ = pairs_logprobs(model, pairs, 0.8)  # the default layout, the same columns
    torch.testing.assert_close(torch.cat([row[: len(c)] for row, (_, c) in zip(padded, pairs)]), alone, rtol=0, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_prompts_run_once_on_gpu():
    """On the GPU under bf16 autocast, as rl.py trains (SDPA's flash kernel on the padded queries of full
    layers, its mask under the window): prompts run once are as close to the float64 model as a prompt per row."""
    model = packed_model(torch.float64)
    pairs = shared_pairs(5)
    cut = lambda logp: torch.cat([row[: len(c)] for row, (_, c) in zip(logp, pairs)])  # noqa: E731
    reference = cut(pairs_logprobs(model, pairs, 0.8)[0]).detach()
    model = model.float().cuda()
    errors, grads = [], []
    for share in (False, True):
        model.zero_grad()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logp = cut(pairs_logprobs(model, pairs, 0.8, share=share)[0])
        logp.sum().backward()
        errors.append((logp.detach().double().cpu() - reference).abs().max().item())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert errors[1] <= 2 * errors[0] + 1e-3, errors
    assert (grads[1] - grads[0]).norm() <= 0.05 * grads[0].norm()


def test_compiled_blocks_run_prompts_once():
    """--compile with --share-prompts: the compiled blocks take the prompts and the rows continuing them
    in one row (Attention.attend_prefixed): log-probs and gradients equal the eager model's."""
    eager = packed_model(torch.float32)
    compiled = packed_model(torch.float32)
    compiled.load_state_dict(eager.state_dict())
    for model in (eager, compiled):
        model.set_window(6, sinks=1)  # one window in every layer: one compilation per mode (a full layer would add its own)
    compile_for_training(compiled)
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, 97, (9,), generator=g).tolist() for _ in range(2)]
    pairs = [(prompts[j % 2], torch.randint(0, 97, (12 - j,), generator=g).tolist()) for j in range(4)]
    logp = {}
    for model in (eager, compiled):
        logp[model] = torch.cat([row[: len(c)] for row, (_, c) in zip(pairs_logprobs(model, pairs, 0.9, share=True)[0], pairs)])
        logp[model].sum().backward()
    torch.testing.assert_close(logp[compiled], logp[eager], rtol=0, atol=1e-5)
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=1e-5, msg=name)


@pytest.mark.parametrize("layout", ["padded", "packed", "bucketed"])
def test_head_at_needed_positions_only(layout):
    """token_logprobs(needed=...) runs the head at the needed columns alone: their log-probs and every gradient equal
    those of the whole head (float64), the other columns are 0; chunks of 7 positions cut across rows. Either way the
    same with the head's logits kept for the backward instead of recomputed (checkpoint_head, off when compiled)."""
    model = packed_model(torch.float64)
    g = torch.Generator().manual_seed(2)
    seqs = [torch.randint(0, 97, (n,), generator=g).tolist() for n in (9, 30, 4, 17)]
    kw = {}
    if layout == "packed":
        ids, doc_start, _ = pack(seqs, 64)
        kw["doc_start"] = doc_start
    else:
        ids = torch.cat([pack([s], 30)[0] for s in seqs])  # (4, 30), right-padded
    model.pad_to_buckets = layout == "bucketed"  # rows padded to 128 inside token_logprobs
    needed = torch.rand(ids.shape[0], ids.shape[1] - 1, generator=g) < 0.4
    weights = torch.randn(needed.shape, generator=g, dtype=torch.float64)  # a loss that tells columns apart
    losses, grads = [], []
    for model.checkpoint_head, kwargs in ((True, {}), (True, {"needed": needed}), (False, {}), (False, {"needed": needed})):
        model.zero_grad()
        logp = token_logprobs(model, ids, temperature=0.8, chunk=7, **kw, **kwargs)
        assert logp.shape == needed.shape
        (logp * weights * needed).sum().backward()
        losses.append(logp)
        grads.append([p.grad.clone() for p in model.parameters()])
    whole = losses[0]
    for only, only_grads in zip(losses[1:], grads[1:]):
        torch.testing.assert_close(only[needed], whole[needed], rtol=0, atol=1e-12)
        for (name, _), a, b in zip(model.named_parameters(), grads[0], only_grads):
            torch.testing.assert_close(b, a, rtol=0, atol=1e-12, msg=name)
    assert (losses[1][~needed] == 0).all() and (losses[3][~needed] == 0).all()
    model.zero_grad()
    none = token_logprobs(model, ids, needed=torch.zeros_like(needed), **kw)  # nothing needed: zeros a caller can still backward
    none.sum().backward()
    assert (none == 0).all()


def test_compiled_blocks_on_packed_rows_compile_once():
    """--compile with packed rows (flex inside the compiled blocks, forward on the CPU): one shape
    for every forward, so 8 different packings of varied lengths compile nothing after the first,
    and each equals the eager model."""
    eager = packed_model(torch.float32)
    compiled = packed_model(torch.float32)
    compiled.load_state_dict(eager.state_dict())
    compile_for_training(compiled)
    compiled.impl = eager.impl = "flex"
    graphs = lambda: torch._dynamo.utils.counters["stats"]["unique_graphs"]  # noqa: E731
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for i in range(8):
            if i == 1:
                compiled_so_far = graphs()
            lengths = torch.randint(1, 60, (int(torch.randint(1, 8, (1,), generator=g)),), generator=g).tolist()
            ids, doc_start, _ = pack([torch.randint(0, 97, (n,), generator=g).tolist() for n in lengths], 512)
            torch.testing.assert_close(token_logprobs(compiled, ids, doc_start=doc_start),
                                       token_logprobs(eager, ids, doc_start=doc_start), rtol=0, atol=1e-5)
    assert graphs() == compiled_so_far


@pytest.mark.parametrize("model_type, bias", [("qwen2", False), ("qwen3", False), ("llama", True)])
def test_fused_projections_equal_the_separate_ones(model_type, bias):
    """fuse_projections (generation copies on CUDA): one product for q, k, v and one for gate, up give the separate
    products' logits (float64) and the same greedy generation, biases included; the parameters keep their names and
    order, and new weights copied into them in place (rl.py's sampler refresh) reach the fused products."""
    config = Config(model_type=model_type, vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256,
                    qk_norm=model_type == "qwen3", attention_bias=bias, mlp_bias=bias)

    def random_model(seed):
        torch.manual_seed(seed)
        model = Model(config).double().eval().requires_grad_(False)
        for p in model.parameters():
            p.normal_(0, 0.3)  # biases too
        model.set_window(5, sinks=1, full_layers=(1,))
        return model

    model, other = random_model(0), random_model(1)
    fused = fuse_projections(copy.deepcopy(model))
    assert fused.layers[0].self_attn.fused is not None and fused.layers[0].mlp.fused is not None
    assert [n for n, _ in fused.named_parameters()] == [n for n, _ in model.named_parameters()]
    ids = input_ids(B=3)
    torch.testing.assert_close(fused(ids), model(ids), rtol=0, atol=1e-10)
    for s, p in zip(fused.parameters(), other.parameters()):
        s.copy_(p)
    torch.testing.assert_close(fused(ids), other(ids), rtol=0, atol=1e-10)
    prompts = [ids[0, :9].tolist(), ids[1, :4].tolist()]
    a, b = (generate(m, prompts, 16, [96], group_size=2, temperature=0) for m in (fused, other))
    assert torch.equal(a.tokens, b.tokens)
    torch.testing.assert_close(a.logprobs, b.logprobs, rtol=0, atol=1e-10)


CUDA = torch.cuda.is_available()
LOW = torch.bfloat16 if CUDA else torch.float16  # triton's interpreter (the CPU, conftest.py) has no bfloat16


def matvec_inputs(N, K, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, weight, bias = 5 * torch.randn(K, generator=g), torch.randn(N, K, generator=g) / K**0.5, torch.randn(N, generator=g)
    return [t.to(LOW).double() for t in (x, weight, bias)]  # representable in LOW: the kernel's error alone


@pytest.mark.skipif(model_module.triton is None, reason="triton is not installed (requirements-test.txt)")
@pytest.mark.parametrize("N, K, config", [(37, 96, (2, 64, 1, 1)), (64, 256, (8, 128, 2, 2)), (9, 300, (2, 1024, 4, 2)),
                                          (33, 512, (2, 512, 2, 2)), (40, 1536, (2, 2048, 8, 2)),
                                          (3584, 18944, (64, 1024, 4, 2))])
@pytest.mark.parametrize("with_bias", [False, True])
def test_matvec_equals_float64(monkeypatch, N, K, config, with_bias):
    """The one-row product against float64: rows that end inside a program (N), K that ends mid-tile, inside one
    tile or on a tile's edge, with and without bias, and Qwen2.5-7B's down product (18944 columns, 18.5 tiles; 64
    rows a program, not the kept 2, to keep the interpreter fast); off by at most the output's rounding."""
    monkeypatch.setattr(model_module, "matvec_config", lambda n, k: config)
    x, weight, bias = matvec_inputs(N, K)
    ref = x @ weight.T + (bias if with_bias else 0)
    device = "cuda" if CUDA else "cpu"
    got = matvec(x.to(device, LOW), weight.to(device, LOW), bias.to(device, LOW) if with_bias else None)
    assert got.dtype == LOW and got.shape == (N,)
    assert (got.double().cpu() - ref).abs().max() <= 0.6 * torch.finfo(LOW).eps * ref.abs().max()


@pytest.mark.skipif(not CUDA or model_module.triton is None, reason="needs a GPU with triton")
def test_linear_takes_matvec_for_one_row_without_gradients():
    """linear: one row on a GPU, no gradient needed -> matvec (bit for bit); more rows, or a gradient -> F.linear,
    which the one-row result stays close to."""
    x, weight, bias = (t.cuda().to(torch.bfloat16) for t in matvec_inputs(96, 256))
    rows = x.repeat(3, 1)[:, None]  # (3, 1, 256)
    with torch.no_grad():
        one = linear(rows[:1], weight, bias)
        assert one.shape == (1, 1, 96) and torch.equal(one.flatten(), matvec(x, weight, bias))
        many = linear(rows, weight, bias)
        assert torch.equal(many, torch.nn.functional.linear(rows, weight, bias))
        assert (one[0, 0].float() - many[0, 0].float()).abs().max() < 0.02 * many.float().abs().max()
    w = weight.clone().requires_grad_()
    graded = linear(rows[:1], w, bias)
    assert torch.equal(graded, torch.nn.functional.linear(rows[:1], w, bias))
    graded.sum().backward()
    assert w.grad is not None
