"""
torchrun on the CPU: two processes, gloo, FSDP2 (distributed.py). The same optimisation on 2 ranks
as on 1 with the same global batch (SFT and GRPO), a checkpoint of 2 ranks resumed on 1, a rank
without signal that does not hang, and a global batch the world size does not divide.

The 2-rank runs are subprocesses of this file (`python -m torch.distributed.run ... tests/test_distributed.py
MODE ...`, the workers at the bottom), each with a timeout.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import distributed  # noqa: E402
import rl  # noqa: E402
import sft  # noqa: E402
from checkpoint import load_checkpoint  # noqa: E402
from generate import Generation, generate  # noqa: E402

ATOL = 1e-6  # float32: 2 ranks sum the same per-micro-batch gradients in another order


def torchrun(*args, timeout=90):
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master-addr", "127.0.0.1",
                           "--master-port", str(port), str(Path(__file__)), *map(str, args)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def close(a, b):
    return all(torch.allclose(x, y, atol=ATOL, rtol=0) for x, y in zip(a.values(), b.values())) and a.keys() == b.keys()


# ----------------------------------------------------------------------------------------------
# SFT


def sft_args(char_model_dir, tmp_path, out, *extra):
    from tests.test_sft import small_data
    train, val = small_data(tmp_path)
    return ["--model", str(char_model_dir), "--data", str(train), "--eval-data", str(val), "--window", "8", "--out", str(tmp_path / out),
            "--batch-size", "4", "--grad-accum", "2", "--lr", "3e-3", "--warmup", "2", "--eval-every", "2", "--device", "cpu",
            "--max-steps", "4", "--save-every", "2", *extra]


@pytest.mark.parametrize("extra", [(), ("--pack", "256")], ids=["rows", "packed"])
def test_sft_two_ranks_equal_one_and_resume_on_one(char_model_dir, tmp_path, monkeypatch, extra):
    # 2 ranks, cut after the checkpoint of step 2: each rank took one of the 2 micro-batches of a step
    run = torchrun("sft-die-at", 3, *sft_args(char_model_dir, tmp_path, "two.pt", *extra))
    assert run.returncode != 0 and "died on purpose" in run.stderr, run.stderr[-3000:]
    two = torch.load(tmp_path / "two.pt", weights_only=True)
    assert two["step"] == 2

    # 1 rank, the same flags (global batch 4 x 2), cut at the same place: the same weights and optimizer state
    real_clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", die_at(3, real_clip))
    with pytest.raises(SystemExit):
        sft.main(sft_args(char_model_dir, tmp_path, "one.pt", *extra))
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", real_clip)
    one = torch.load(tmp_path / "one.pt", weights_only=True)
    assert close(two["model"], one["model"])
    for i, state in one["optimizer"]["state"].items():
        assert close(two["optimizer"]["state"][i], state)
    assert (two["epoch"], two["pos"]) == (one["epoch"], one["pos"])

    # the 2-rank checkpoint resumed on 1 rank continues the uninterrupted 1-rank run
    full = sft.main(sft_args(char_model_dir, tmp_path, "full.pt", *extra))
    resumed = sft.main(sft_args(char_model_dir, tmp_path, "two.pt", "--resume", *extra))
    assert close(full.state_dict(), resumed.state_dict())
    log = [json.loads(line) for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "step" in r] == [0, 1, 2, 3, 4]  # rank 0 alone wrote the 2-rank log
    assert all(r.get("world_size") == 2 for r in log if r.get("step") in (1, 2))


def test_a_global_batch_the_ranks_do_not_divide_is_one_line(char_model_dir, tmp_path):
    run = torchrun("sft", *sft_args(char_model_dir, tmp_path, "x.pt", "--grad-accum", "3"), timeout=60)
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--grad-accum 3" in errors[0] and "2 ranks" in errors[0], run.stderr[-2000:]
    assert not (tmp_path / "x.pt").exists()


def test_evaluate_on_two_ranks_gives_the_one_process_table(tmp_path):
    import evaluate
    argv = ["--model", "base_model", "--window", "32", "--eval-size", "6", "--max-new-tokens", "48", "--samples", "2",
            "--batch-size", "4", "--device", "cpu"]
    run = torchrun("evaluate", *argv, "--out", tmp_path / "two", timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    torch.set_num_threads(1)
    assert evaluate.main(argv + ["--out", str(tmp_path / "one")]) == 0
    one, two = (json.loads((tmp_path / f"{n}.json").read_text())["rows"] for n in ("one", "two"))
    for row in one + two:  # timings differ; every count and rate is the same
        for key in ("tokens_per_s", "seconds"):
            row["greedy"].pop(key)
    assert one == two


# ----------------------------------------------------------------------------------------------
# GRPO: the toy setup of tests/test_rl.py


P = 8  # prompts per step, over all ranks: rank 0 takes the first 4 (with signal), rank 1 the last 4 (none)


def golds():
    return ["-"] * (P // 2) + ["none"] * (P // 2)


def toy_reward(text, gold):
    return float("+" in text) if gold == "-" else 0.0  # "none": every sample scores 0, a group without signal


def grpo_steps(model, optimizer, tokenizer, sampler=None, steps=2, extra=()):
    from tests.test_rl import toy_args
    args = toy_args(*extra)
    prompts = [tokenizer.encode(tokenizer.render_prompt("#%&"))] * P
    mine = distributed.block(list(range(P)))
    return [rl.grpo_step(model, optimizer, [prompts[i] for i in mine], [golds()[i] for i in mine], tokenizer, args, toy_reward,
                         step, sampler) for step in range(steps)]


@pytest.mark.parametrize("extra", [(), ("--micro-batch-tokens", "128"), ("--share-prompts",), ("--micro-batch-tokens", "128", "--share-prompts")],
                         ids=["rows", "packed", "shared", "shared-packed"])
def test_grpo_two_ranks_equal_one_and_a_rank_without_signal_does_not_hang(tmp_path, extra):
    from tests.test_rl import TOY_VOCAB, toy_model
    from tests.test_generate import write_tokenizer
    from tokenizer import Tokenizer
    write_tokenizer(tmp_path, vocab_size=TOY_VOCAB)
    run = torchrun("grpo", tmp_path, *extra, timeout=90)  # rank 1's groups never have signal: it must still join every collective
    assert run.returncode == 0, run.stderr[-3000:]
    two = torch.load(tmp_path / "grpo.pt", weights_only=True)

    torch.set_num_threads(1)
    model = toy_model()
    history = grpo_steps(model, torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0), Tokenizer(tmp_path), extra=extra)
    assert all(h["updates"] == 1 for h in history) and history[0]["zero_std_share"] >= 0.5
    assert close(two["model"], model.state_dict())
    for h, h2 in zip(history, two["history"]):  # metrics over both ranks = those of one process
        for key in ("reward", "zero_std_share", "kept_share", "tokens", "updates", "len_mean"):
            assert h[key] == pytest.approx(h2[key], abs=1e-6), key
        assert h["loss"] == pytest.approx(h2["loss"], abs=1e-6) and h["grad_norm"] == pytest.approx(h2["grad_norm"], rel=1e-5)


def test_rl_two_ranks_without_any_signal_finish_and_resume_on_one(char_model_dir, tmp_path):
    # a random model on the synthetic task scores 0 everywhere: no rank has anything to train, every step
    argv = ["--model", char_model_dir, "--window", "8", "--out", tmp_path / "rl.pt", "--device", "cpu", "--max-steps", "2",
            "--save-every", "1", "--prompts-per-step", "2", "--group-size", "2", "--max-new-tokens", "8", "--eval-size", "2",
            "--eval-samples", "1", "--eval-every", "100"]
    run = torchrun("rl-die-at", 2, *argv, timeout=90)
    assert "died on purpose" in run.stderr, run.stderr[-3000:]
    assert load_checkpoint(tmp_path / "rl.pt")[1]["step"] == 1
    model = rl.main([str(a) for a in argv] + ["--resume"])  # on 1 rank
    ckpt = load_checkpoint(tmp_path / "rl.pt")[1]
    assert ckpt["step"] == 2 and (ckpt["epoch"], ckpt["pos"]) == (0, 4)
    log = [json.loads(line) for line in (tmp_path / "rl.jsonl").read_text().splitlines()]
    assert [r.get("event") for r in log if "event" in r] == ["start", "resume"]
    assert all(r["updates"] == 0 for r in log if r.get("step", 0) > 0)
    base, _ = rl.load_model(char_model_dir, 8, device="cpu")
    assert close(base.state_dict(), model.state_dict())  # no update was made


# ----------------------------------------------------------------------------------------------
# the workers, run by torchrun


def die_at(n, real):
    calls = {"n": 0}

    def wrapper(*a, **kw):
        calls["n"] += 1
        if calls["n"] == n:
            print("died on purpose", file=sys.stderr)
            raise SystemExit(3)
        return real(*a, **kw)
    return wrapper


def grpo_worker(folder, *extra):
    """2 toy GRPO steps, sharded, on the samples one process would draw (each rank keeps its groups' rows)."""
    from tests.test_rl import toy_model
    from tokenizer import Tokenizer

    class Args:
        device = "cpu"
    distributed.setup(Args)
    torch.set_num_threads(1)
    tokenizer = Tokenizer(folder)

    def one_process_rollout(sampler, prompts, tokenizer, args, step):  # rank r's rows of the single-process draw
        sampler.eval()
        gen = generate(sampler, prompts * distributed.world_size(), args.max_new_tokens, tokenizer.eos_ids, args.group_size,
                       args.temperature, seed=rl.seed_of(args.seed, step))
        rows = slice(distributed.rank() * len(prompts) * args.group_size, (distributed.rank() + 1) * len(prompts) * args.group_size)
        return Generation(gen.tokens[rows], gen.logprobs[rows], gen.mask[rows], gen.truncated[rows],
                          gen.prompt_rows[rows] - distributed.rank() * len(prompts))

    rl.rollout = one_process_rollout
    model = toy_model()
    distributed.shard(model, "cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    history = grpo_steps(model, optimizer, tokenizer, rl.make_sampler(model, "cpu"), extra=extra)
    weights, _, _ = distributed.gather_state(model)
    if distributed.is_main():
        torch.save({"model": weights, "history": history}, Path(folder) / "grpo.pt")
    distributed.teardown()


if __name__ == "__main__":
    from checkpoint import run_main
    mode, rest = sys.argv[1], sys.argv[2:]
    if mode == "grpo":
        grpo_worker(*rest)
    elif mode == "evaluate":
        import evaluate
        sys.exit(evaluate.main(rest))
    elif mode == "sft":
        run_main(lambda: sft.main(rest))
    elif mode == "sft-die-at":  # cut inside step n, after the checkpoint before it, on every rank
        torch.nn.utils.clip_grad_norm_ = die_at(int(rest[0]), torch.nn.utils.clip_grad_norm_)
        run_main(lambda: sft.main(rest[1:]))
    elif mode == "rl-die-at":
        rl.grpo_step = die_at(int(rest[0]), rl.grpo_step)
        run_main(lambda: rl.main(rest[1:]))
