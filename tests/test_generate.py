"""The rolling-cache engine equals recomputing full forwards, for every attention layout."""
import json

import pytest
import torch
import torch.nn.functional as F

from generate import KVCache, generate, kv_cache_bytes, sample
from model import Config, Model

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


def test_compiled_decode_equals_eager():
    """generate(compile=True), the fast path, against the eager decode step (SWA ring, sinks and a full layer)."""
    model = tiny_model("hybrid", seed=2)
    prompts = prompts_of([4, 11, 6], seed=2)
    for kwargs in (dict(temperature=0), dict(temperature=0.8, seed=3)):
        eager = generate(model, prompts, 30, EOS, **kwargs)
        compiled = generate(model, prompts, 30, EOS, compile=True, **kwargs)
        assert torch.equal(compiled.tokens, eager.tokens) and torch.equal(compiled.mask, eager.mask)
        torch.testing.assert_close(compiled.logprobs, eager.logprobs, rtol=0, atol=1e-5)


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
