"""GRPO: it learns a toy reward, skips groups without signal, trains on the log-probs it sampled with, resumes exactly."""
import json
import math

import pytest
import torch

import rl
from data.synthetic import DEFAULT_TASK
from checkpoint import load_checkpoint, load_model_under, save_checkpoint
from generate import generate
from model import Config, Model
from tokenizer import Tokenizer
from tests.test_generate import EOS, prompts_of, tiny_model, write_tokenizer

TOY_VOCAB = 20  # characters ! " # ... 2, a space and <eos>; '$' (id 3) also ends a completion


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Models this small gain nothing from intra-op threads, and lose much to them on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def toy_reward(text, gold):
    return float("+" in text)  # one token of 20 in a 3-token completion: ~15% of samples to start with


def toy_model(seed=0, context=64):
    torch.manual_seed(seed)
    return Model(Config(model_type="llama", vocab_size=TOY_VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=context))


@pytest.fixture(scope="module")
def toy_tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok")
    write_tokenizer(path, vocab_size=TOY_VOCAB)
    return Tokenizer(path)


def toy_args(*extra):
    return rl.get_args(["--group-size", "8", "--prompts-per-step", "8", "--max-new-tokens", "3", "--lr", "3e-3",
                        "--device", "cpu", *extra])


def run_toy(tokenizer, args, steps, reward_fn=toy_reward, sampler_dtype=None):
    model = toy_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    prompts = [tokenizer.encode(tokenizer.render_prompt("#%&"))] * args.prompts_per_step
    ref = rl.inference_copy(model, torch.float32) if args.kl_beta > 0 else None
    sampler = rl.fuse_projections(rl.inference_copy(model, sampler_dtype)) if sampler_dtype else None  # as make_sampler does on CUDA
    history = [rl.grpo_step(model, optimizer, prompts, ["-"] * len(prompts), tokenizer, args, reward_fn, step, sampler, ref)
               for step in range(steps)]
    return model, history


@pytest.mark.parametrize("extra", [(), ("--ppo-epochs", "2", "--minibatches", "2", "--std-norm"), ("--kl-beta", "0.01")],
                         ids=["on-policy", "ppo-clip", "kl"])
def test_grpo_raises_a_toy_reward(toy_tokenizer, extra):
    _, history = run_toy(toy_tokenizer, toy_args(*extra), 40)
    assert history[0]["reward"] < 0.2
    assert sum(h["reward"] for h in history[-5:]) / 5 > 0.8
    assert history[0]["logp_diff"] < 1e-5  # float32 on CPU: the sampler is the policy
    if "--kl-beta" in extra:
        kl = [h["kl"] for h in history if h["kl"] is not None]  # None: a step with every group skipped
        assert kl[0] < 1e-6 < max(kl)  # the policy starts at the reference and moves away


def test_groups_without_signal_change_nothing(toy_tokenizer):
    model = toy_model()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)  # even weight decay would move them
    prompts = [toy_tokenizer.encode("#%&")] * 8
    metrics = rl.grpo_step(model, optimizer, prompts, ["-"] * 8, toy_tokenizer, toy_args(), lambda text, gold: 1.0, 0)
    assert metrics["zero_std_share"] == 1.0 and metrics["updates"] == 0 and metrics["loss"] is None
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    kept = rl.grpo_step(model, optimizer, prompts, ["-"] * 8, toy_tokenizer, toy_args("--no-skip-zero-std"), lambda t, g: 1.0, 0)
    assert kept["updates"] == 1 and kept["kept_share"] == 1.0  # the groups count, with advantage 0


def test_mask_truncated(toy_tokenizer):
    _, (metrics,) = run_toy(toy_tokenizer, toy_args("--mask-truncated", "--no-skip-zero-std"), 1)
    assert metrics["truncated_share"] > 0
    assert metrics["kept_share"] == pytest.approx(1 - metrics["truncated_share"])


@pytest.mark.parametrize("layout", ["swa", "full"])
def test_sampling_logprobs_equal_the_training_forward(layout):
    model = tiny_model(layout, seed=2)  # swa: window 5, far shorter than prompt + 32 new tokens
    prompts = prompts_of([4, 11, 7], seed=2)
    gen = generate(model, prompts, 32, EOS, group_size=3, temperature=0.7, seed=1)
    # every row; a micro-batch of mixed prompt lengths, two rows of one prompt apart: each padded, packed (one row of 512),
    # their prompts held once (one row per prompt), or both
    for rows in (torch.arange(9), torch.tensor([7, 0, 4, 2, 8])):
        for packed, share in ((0, False), (512, False), (0, True), (512, True)):
            with torch.no_grad():
                logp, _ = rl.completion_logprobs(model, prompts, gen, rows, 0.7, packed, share)
            mask = gen.mask[rows, : logp.shape[1]]
            assert mask.sum() > 3 * len(rows) and torch.equal(mask.any(0), torch.ones(logp.shape[1], dtype=torch.bool))
            torch.testing.assert_close(logp[mask], gen.logprobs[rows, : logp.shape[1]][mask], rtol=0, atol=1e-5)


def test_policy_loss_clipped_objective_by_hand():
    ratio = torch.tensor([[1.5, 0.5, 1.1], [1.5, 0.5, 0.9]])
    logp = ratio.log().requires_grad_()
    old = torch.zeros(2, 3)
    adv = torch.tensor([1.0, -2.0])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    loss, stats = rl.policy_loss(logp, old, adv, mask, 0.2, 0.28, n_tokens=5)
    # A = 1: min(r, clip(r, 0.8, 1.28)) = 1.28, 0.5, 1.1; A = -2: min(-2r, -2 clip(r)) = -3, -1.6 (third token masked)
    assert loss.item() == pytest.approx((-1.28 - 0.5 - 1.1 + 3 + 1.6) / 5, abs=1e-6)
    assert stats["clipped"] == 2  # clipped tokens carry no gradient; the others -A * ratio / n_tokens
    loss.backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[0, -0.5 / 5, -1.1 / 5], [2 * 1.5 / 5, 0, 0]]))
    # on-policy (no stored log-probs): ratio 1, gradient -A / n_tokens on every token
    logp.grad = None
    loss, _ = rl.policy_loss(logp, None, adv, mask, 0.2, 0.28, n_tokens=5)
    assert loss.item() == pytest.approx((-3 + 2 * 2) / 5)
    loss.backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-0.2, -0.2, -0.2], [0.4, 0.4, 0]]))
    # k3 KL: exp(d) - d - 1 with d = ref - logp = log 2 on one token
    d = torch.zeros(2, 3)
    d[0, 0] = math.log(2)
    loss, stats = rl.policy_loss(logp, None, torch.zeros(2), mask, 0.2, 0.28, 5, ref_logp=logp.detach() + d, kl_beta=0.5)
    assert stats["kl"] == pytest.approx(1 - math.log(2), abs=1e-6) and loss.item() == pytest.approx(0.5 * (1 - math.log(2)) / 5, abs=1e-6)


@pytest.mark.parametrize("sampler_dtype", [None, torch.bfloat16], ids=["policy-samples", "bf16-sampler"])
def test_second_ppo_epoch_has_ratio_off_one(toy_tokenizer, sampler_dtype):
    """Before the first update the ratio is 1, even when a bf16 copy sampled (its log-probs are off
    by rounding: logp_diff); after it, reused samples are off-policy."""
    _, (metrics,) = run_toy(toy_tokenizer, toy_args("--ppo-epochs", "2", "--no-skip-zero-std"), 1, sampler_dtype=sampler_dtype)
    first, second = metrics["ratio_dev"]
    assert first < 1e-5 < 1e-3 < second and metrics["updates"] == 2
    if sampler_dtype:
        assert metrics["logp_diff"] > 1e-3  # the gap the trainer's own log-probs remove from the ratio


def test_truncated_importance_sampling_by_hand():
    logp = torch.zeros(1, 3, requires_grad=True)
    mask = torch.tensor([[True, True, True]])
    weight = torch.tensor([[0.5, 1.0, 2.0]])  # min(p_trainer / p_sampler, cap) per token
    loss, _ = rl.policy_loss(logp, None, torch.tensor([1.0]), mask, 0.2, 0.28, n_tokens=3, is_weight=weight)
    loss.backward()
    torch.testing.assert_close(logp.grad, -weight / 3)  # each token's policy gradient scaled by its weight


def test_tis_applies_to_a_bf16_sampler_only(toy_tokenizer):
    _, (with_tis,) = run_toy(toy_tokenizer, toy_args("--no-skip-zero-std"), 1, sampler_dtype=torch.bfloat16)
    _, (without,) = run_toy(toy_tokenizer, toy_args("--no-skip-zero-std", "--tis-cap", "0"), 1, sampler_dtype=torch.bfloat16)
    _, (itself,) = run_toy(toy_tokenizer, toy_args("--no-skip-zero-std"), 1)
    assert abs(with_tis["tis_weight"] - 1) < 0.05 and 0 <= with_tis["tis_capped_share"] < 0.05  # bf16 rounding: near 1
    assert "tis_weight" not in without and "tis_weight" not in itself  # off, or the policy sampled itself: nothing to correct
    assert with_tis["loss"] != without["loss"]
    assert set(with_tis["logp_diff_by_pos"]) == {"0-256"} and with_tis["logp_diff_by_pos"]["0-256"] == pytest.approx(with_tis["logp_diff"])


@pytest.mark.parametrize("layout", [("--micro-batch-tokens", "128"), ("--micro-batch", "5", "--share-prompts"),
                                    ("--micro-batch-tokens", "128", "--share-prompts")], ids=["packed", "shared", "shared-packed"])
@pytest.mark.parametrize("extra", [(), ("--ppo-epochs", "2", "--kl-beta", "0.05")], ids=["on-policy", "reused-and-kl"])
def test_packed_micro_batches_give_the_same_update(toy_tokenizer, layout, extra):
    """--micro-batch-tokens packs rows end to end (model.pack), --share-prompts holds each prompt once
    for its rows (model.pack_shared; micro-batches of 5 rows split groups of 4): the same log-probs,
    loss and update as padded rows; reused samples and the KL reference go through the same forwards."""
    rows_model, (by_rows,) = run_toy(toy_tokenizer, toy_args("--no-skip-zero-std", "--micro-batch", "5", *extra), 1)
    packed_model, (packed,) = run_toy(toy_tokenizer, toy_args("--no-skip-zero-std", *layout, *extra), 1)
    for a, b in zip(rows_model.parameters(), packed_model.parameters()):  # Adam's first step is ~lr x sign(gradient): float32
        torch.testing.assert_close(a, b, rtol=0, atol=2e-5)  # rounding stays far below lr = 3e-3 (a second step, whose
        # momentum nearly cancels the first's for a few elements, amplifies it: 1.3e-5 measured once with --share-prompts)
    assert by_rows["loss"] == pytest.approx(packed["loss"], abs=1e-6)


def test_micro_batches_fill_packed_rows():
    from types import SimpleNamespace

    lengths = [3, 9, 1, 7, 7, 2, 12, 5]  # + a 2-token prompt each: 5, 11, 3, 9, 9, 4, 14, 7 = 62 positions
    gen = SimpleNamespace(mask=torch.tensor([[j < n for j in range(12)] for n in lengths]), prompt_rows=torch.zeros(8, dtype=torch.long))
    prompts = [[0, 1]]  # every row: a 2-token prompt
    batches = rl.micro_batches(torch.arange(8), prompts, gen, SimpleNamespace(micro_batch=16, micro_batch_tokens=20, share_prompts=False))
    assert sorted(torch.cat(batches).tolist()) == list(range(8))  # every row once
    # first fit, longest first, by hand: [14, 5], [11, 9], [9, 7, 4], [3]
    assert [b.tolist() for b in batches] == [[6, 0], [1, 3], [4, 7, 5], [2]]
    # --share-prompts: rows 0-3 of prompt [0, 1], 4-7 of [0, 1, 2]; a unit is its prompt + its first row, + (row + 1) for each
    # further row that fits 20: 2 + 3, + 10, + 2 = 17 (row 3 would make 25); 2 + 7 = 9; 3 + 7, + 3 = 13; 3 + 12 = 15; 3 + 5 = 8
    gen.prompt_rows = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    shared = rl.micro_batches(torch.arange(8), [[0, 1], [0, 1, 2]], gen, SimpleNamespace(micro_batch=16, micro_batch_tokens=20, share_prompts=True))
    # units [0, 1, 2] (17), [3] (9), [4, 5] (13), [6] (15), [7] (8); first fit, largest first: [17], [15], [13], [9, 8]
    assert [b.tolist() for b in shared] == [[0, 1, 2], [6], [4, 5], [3, 7]]


# ----------------------------------------------------------------------------------------------
# the command: checkpoints, resume, bad input


@pytest.fixture
def run_files(tmp_path):
    write_tokenizer(tmp_path / "tok", vocab_size=TOY_VOCAB)
    save_checkpoint(tmp_path / "init.pt", toy_model(), tokenizer=str(tmp_path / "tok"))
    for name, prompts in (("prompts", ["#%&", "&%#", "'()", "%%"]), ("test", ["#", "&&"])):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps({"prompt": p, "answer": "7"}) + "\n" for p in prompts))
    return tmp_path


def command(path, *extra):
    return ["--model", str(path / "init.pt"), "--data", str(path / "prompts.jsonl"), "--eval-data", str(path / "test.jsonl"),
            "--out", str(path / "rl.pt"), "--group-size", "8", "--prompts-per-step", "3", "--max-new-tokens", "3",
            "--lr", "3e-3", "--max-steps", "4", "--save-every", "2", "--eval-every", "2", "--eval-samples", "2",
            "--micro-batch", "5", "--device", "cpu", *extra]


def read_log(file):
    return {r["step"]: r for r in map(json.loads, file.read_text().splitlines()) if "step" in r}  # the last record of each step


def test_resume_equals_uninterrupted(run_files, monkeypatch):
    full = rl.main(command(run_files, "--out", str(run_files / "full.pt")), reward_fn=toy_reward)
    full_log = read_log(run_files / "full.jsonl")
    assert sum(full_log[s]["updates"] for s in (1, 2, 3, 4)) >= 3 and "eval/test/greedy" in full_log[4]

    step = rl.grpo_step
    calls = []

    def crash_at_third(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed mid-step, after the save at step 2
        return step(*a, **k)

    monkeypatch.setattr(rl, "grpo_step", crash_at_third)
    with pytest.raises(KeyboardInterrupt):
        rl.main(command(run_files), reward_fn=toy_reward)
    assert load_checkpoint(run_files / "rl.pt")[1]["step"] == 2
    monkeypatch.setattr(rl, "grpo_step", step)
    with pytest.raises(ValueError, match="differs in lr"):
        rl.main(command(run_files, "--resume", "--lr", "1e-3"), reward_fn=toy_reward)
    resumed = rl.main(command(run_files, "--resume"), reward_fn=toy_reward)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    resumed_log = read_log(run_files / "rl.jsonl")
    for s in (3, 4):  # the same samples: seeds derive from (seed, step)
        assert resumed_log[s]["reward"] == full_log[s]["reward"] and resumed_log[s]["len_mean"] == full_log[s]["len_mean"]


def test_nan_loss_stops_and_keeps_the_last_checkpoint(run_files, monkeypatch):
    step, loss, calls = rl.grpo_step, rl.policy_loss, []

    def counted(*a, **k):
        calls.append(1)
        return step(*a, **k)

    def nan_from_step_3(*a, **k):
        value, stats = loss(*a, **k)
        return (value * float("nan") if len(calls) >= 3 else value), stats

    monkeypatch.setattr(rl, "grpo_step", counted)
    monkeypatch.setattr(rl, "policy_loss", nan_from_step_3)
    with pytest.raises(FloatingPointError, match="loss is nan at step 3"):
        rl.main(command(run_files, "--no-skip-zero-std"), reward_fn=toy_reward)
    assert load_checkpoint(run_files / "rl.pt")[1]["step"] == 2
    assert not list(run_files.glob("*.tmp"))


@pytest.mark.parametrize("flag, value, message", [("--group-size", "1", "--group-size must be >= 2"),
                                                  ("--max-new-tokens", "0", "--max-new-tokens must be >= 1"),
                                                  ("--micro-batch-tokens", "1000", "--micro-batch-tokens must be a multiple of 128")])
def test_bad_arguments(flag, value, message, capsys):
    with pytest.raises(SystemExit):
        rl.get_args([flag, value])
    assert message in capsys.readouterr().err


def test_packed_rows_too_short_for_the_longest_row(run_files):
    save_checkpoint(run_files / "init.pt", toy_model(context=256), tokenizer=str(run_files / "tok"))
    with pytest.raises(ValueError, match=r"--micro-batch-tokens 128 cannot hold the longest prompt .* \+ --max-new-tokens 125"):
        rl.main(command(run_files, "--micro-batch-tokens", "128", "--max-new-tokens", "125"), reward_fn=toy_reward)
    assert not (run_files / "rl.pt").exists()  # stopped before any work


def test_unparseable_gold_is_reported_and_dropped(run_files, capsys):
    (run_files / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"prompt": "#%&", "answer": "7"}, {"prompt": "no gold here", "answer": "#### "}, {"prompt": "&%#", "answer": "7"}]))
    rl.main(command(run_files, "--max-steps", "1"), reward_fn=toy_reward)
    out = capsys.readouterr().out
    assert "dropped 1 of 3 prompts whose gold answer reward.py cannot parse" in out and "line 2 'no gold here'" in out
    (run_files / "prompts.jsonl").write_text(json.dumps({"prompt": "#", "answer": ""}) + "\n")
    with pytest.raises(ValueError, match="no usable prompts"):
        rl.main(command(run_files, "--overwrite"), reward_fn=toy_reward)
    (run_files / "prompts.jsonl").write_text(json.dumps({"prompt": "#"}) + "\n")
    with pytest.raises(ValueError, match="prompts.jsonl:1: missing field 'answer'"):
        rl.main(command(run_files, "--overwrite"), reward_fn=toy_reward)


def test_bad_init(run_files):
    with pytest.raises(FileNotFoundError, match="not found"):
        rl.main(command(run_files, "--model", str(run_files / "missing.pt")))
    (run_files / "bad.pt").write_bytes((run_files / "init.pt").read_bytes()[:500])
    with pytest.raises(ValueError, match="cannot be read"):
        rl.main(command(run_files, "--model", str(run_files / "bad.pt")))


def test_defaults_run_the_synthetic_task(char_model_dir, tmp_path):
    """No --data, no --eval-data: DEFAULT_TASK's RL split, evaluated on the test sets of its RL difficulties."""
    rl.main(["--init", str(char_model_dir), "--window", "8",  # --init: the old name of --model still works
             "--out", str(tmp_path / "rl.pt"), "--max-steps", "1",
             "--prompts-per-step", "2", "--group-size", "2", "--max-new-tokens", "8", "--eval-size", "2", "--eval-samples", "1",
             "--device", "cpu"])
    record = read_log(tmp_path / "rl.jsonl")[1]
    assert 0 <= record["carry_share"] <= 1
    for k in DEFAULT_TASK["splits"]["rl_steps"]:
        assert 0 <= record[f"eval/val_k{k}/greedy"] <= 1 and f"eval/val_k{k}/greedy_carry_share" in record


def test_reward_mode_reaches_the_grader(run_files, monkeypatch):
    modes = []

    def recording(text, gold, mode="strict"):
        modes.append(mode)
        return 0.0

    monkeypatch.setattr(rl, "math_reward", recording)
    rl.main(command(run_files, "--max-steps", "1", "--reward-mode", "flexible"))
    assert modes and set(modes) == {"flexible"}
    with pytest.raises(SystemExit):
        rl.get_args(["--reward-mode", "lenient"])


def test_a_run_that_learned_nothing_says_so(run_files, capsys):
    before = load_checkpoint(run_files / "init.pt")[0].state_dict()
    after = rl.main(command(run_files, "--max-steps", "2"), reward_fn=lambda text, gold: 1.0)  # every group alike
    out = capsys.readouterr().out
    assert "grpo: 0 updates in 2 steps of this run" in out and "WARNING: no update was made" in out
    assert all(torch.equal(a, b) for a, b in zip(before.values(), after.state_dict().values()))
    rl.main(command(run_files, "--max-steps", "2", "--out", str(run_files / "learned.pt")), reward_fn=toy_reward)
    out = capsys.readouterr().out
    assert "WARNING" not in out and "grpo: 0 updates" not in out


def test_a_rollout_that_cannot_fit_stops_before_any_work(monkeypatch):
    model = toy_model()
    args = toy_args("--max-new-tokens", "100")
    args.device = "cuda"  # the check runs on GPUs only: pretend, with 1 MiB free
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (2**20, 2**30))
    needed = 64 * rl.kv_cache_bytes(model.config, 10 + 100, 4)  # 8 prompts x 8 samples, the longest prompt 10 tokens
    assert needed > 2**20  # (2 layers x 2 kv heads x 8 dims x k, v x 4 bytes x 110 positions x 64 rows = 1.7 MiB)
    with pytest.raises(ValueError, match=r"a rollout of 64 rows x \(longest prompt \+ --max-new-tokens 100\) needs .* GiB of KV cache"):
        rl.check_step_fits(model, [[1] * 10, [2] * 3], args)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (2**40, 2**40))
    rl.check_step_fits(model, [[1] * 10], args)  # fits: nothing said
    slots = toy_args("--max-new-tokens", "100", "--rollout-slots", "16")  # continuous batching holds 16 rows, not 64
    slots.device = "cuda"
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (needed // 4 + 1, 2**30))
    rl.check_step_fits(model, [[1] * 10], slots)
    with pytest.raises(ValueError, match="a rollout of 64 rows"):
        rl.check_step_fits(model, [[1] * 10], args)


def test_rollout_slots_run_continuous_batching(toy_tokenizer, monkeypatch):
    """--rollout-slots: the rollout goes through generate_continuous with that many slots; with a slot per row (no refill)
    its samples are generate()'s, and with fewer slots every row is still a sample of its own prompt, refilled in turn."""
    prompts = [toy_tokenizer.encode(toy_tokenizer.render_prompt(t)) for t in ("#%&", "&", "'()*", "%%")]
    model = toy_model().eval()
    static = rl.rollout(model, prompts, toy_tokenizer, toy_args("--prompts-per-step", "4"), step=3)
    every_row = rl.rollout(model, prompts, toy_tokenizer, toy_args("--prompts-per-step", "4", "--rollout-slots", "32"), step=3)
    for name in ("tokens", "mask", "truncated", "prompt_rows"):
        assert torch.equal(getattr(static, name), getattr(every_row, name)), name
    calls = []
    monkeypatch.setattr(rl, "generate_continuous", lambda *a, **k: calls.append((k["slots"], k["unit"])) or static)
    rl.rollout(model, prompts, toy_tokenizer, toy_args("--prompts-per-step", "4", "--rollout-slots", "5"), step=3)
    assert calls == [(5, 1)]  # rows refilled one by one: any number of slots
    for bad in ("-8", "-1"):
        with pytest.raises(SystemExit):
            toy_args("--rollout-slots", bad)
    with pytest.raises(SystemExit):
        toy_args("--kl-ref", "base_model")  # without --kl-beta it would be ignored


def test_rollouts_keep_their_engine_unless_freed(toy_tokenizer, monkeypatch):
    """Steps of one shape reuse one KV cache (generate.decode_engine's keep) and sample what a freed one samples;
    --free-rollout-cache hands the engine nothing to keep."""
    monkeypatch.setattr(rl, "KEPT_DECODE", {})
    prompts = [toy_tokenizer.encode(toy_tokenizer.render_prompt(t)) for t in ("#%&", "&", "'()*", "%%")]
    model = toy_model().eval()
    kept, caches = [], []
    for step in (3, 4):
        kept.append(rl.rollout(model, prompts, toy_tokenizer, toy_args("--prompts-per-step", "4"), step=step))
        caches.append(rl.KEPT_DECODE["cache"])
    assert caches[0] is caches[1]
    rl.KEPT_DECODE.clear()
    for step, gen in zip((3, 4), kept):
        freed = rl.rollout(model, prompts, toy_tokenizer, toy_args("--prompts-per-step", "4", "--free-rollout-cache"), step=step)
        assert torch.equal(freed.tokens, gen.tokens) and torch.equal(freed.logprobs, gen.logprobs)
    assert rl.KEPT_DECODE == {}


def test_evaluate_scores_greedy_and_sampled_completions(toy_tokenizer):
    """rl.evaluate (through generate.sample_completions, batches of a step's prompts): greedy accuracy equals
    scoring generate()'s greedy completions directly, pass@1 counts every sample, and every eval draws the same."""
    from generate import completions
    prompts = [toy_tokenizer.encode(toy_tokenizer.render_prompt(t)) for t in ("#%&", "&", "'()*", "%%", "#")]
    golds = ["0"] * 5
    model = toy_model().eval()
    args = toy_args("--prompts-per-step", "2", "--eval-samples", "3", "--max-new-tokens", "12", "--top-k", "5")
    scored = []

    def reward(text, gold):  # a reward that tells texts apart, and a record of what was scored
        scored.append(text)
        return float(len(text) % 2 == 0)

    result = rl.evaluate(model, {"a": (prompts, golds, True)}, toy_tokenizer, args, reward)
    texts = completions(toy_tokenizer, generate(model, prompts, 12, toy_tokenizer.eos_ids, temperature=0))
    assert scored[:5] == texts and len(scored) == 5 + 15
    assert result["eval/a/greedy"] == sum(len(t) % 2 == 0 for t in texts) / 5
    assert result["eval/a/pass@1"] == sum(len(t) % 2 == 0 for t in scored[5:]) / 15
    assert 0 < result["eval/a/pass@1"] < 1 and "eval/a/greedy_carry_share" in result
    assert rl.evaluate(model, {"a": (prompts, golds, True)}, toy_tokenizer, args, reward) == result


def test_kl_ref_anchors_to_another_model_under_the_policy_window(run_files):
    """--kl-ref: the penalty's reference is that model, run under the policy's attention; pointed at the policy's own
    starting weights it is exactly the default reference (the initial policy), so the logged KL is the same."""
    default = rl.main(command(run_files, "--kl-beta", "0.1", "--window", "2", "--out", str(run_files / "a.pt")), reward_fn=toy_reward)
    same = rl.main(command(run_files, "--kl-beta", "0.1", "--window", "2", "--kl-ref", str(run_files / "init.pt"),
                           "--out", str(run_files / "b.pt")), reward_fn=toy_reward)
    a, b = read_log(run_files / "a.jsonl"), read_log(run_files / "b.jsonl")
    assert [a[s]["kl"] for s in (1, 2, 3, 4)] == [b[s]["kl"] for s in (1, 2, 3, 4)] and max(a[s]["kl"] or 0 for s in (1, 2, 3, 4)) > 0
    for (name, x), y in zip(default.state_dict().items(), same.state_dict().values()):
        assert torch.equal(x, y), name

    policy = toy_model()
    policy.set_window(2, sinks=1, full_layers=[1])
    ref = load_model_under(run_files / "init.pt", policy.config)  # init.pt is full attention: it runs under the policy's window
    assert ref.config.layer_windows == [2, None] and ref.config.sinks == 1 and not any(p.requires_grad for p in ref.parameters())
    other = Model(Config(model_type="llama", vocab_size=TOY_VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64))
    save_checkpoint(run_files / "other.pt", other, tokenizer=str(run_files / "tok"))
    with pytest.raises(ValueError, match="3 layers, against 20 and 2: not the same model family"):
        load_model_under(run_files / "other.pt", policy.config)
