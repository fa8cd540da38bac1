"""
Fault injection: what a user meets when a run diverges, a flag means nothing, an output cannot be
written, a file is damaged or a run would clobber another, and kill-and-resume at the worst moment
(SIGKILL in the middle of a checkpoint write). Each case asserts the message and that nothing good
on disk changed.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import evaluate
import rl
import sft
from checkpoint import load_checkpoint, load_model, save_checkpoint
from data import write_jsonl
from data.synthetic import in_memory_splits
from tokenizer import Tokenizer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path, char_model_dir):
    splits = in_memory_splits(seed=0, steps=(2, 3), n_sft=48, n_val=16, n_rl=16, n_test=0, pad=1)
    for name in ("sft", "val", "rl"):
        write_jsonl(tmp_path / f"data_{name}.jsonl", splits[name])  # not sft.jsonl: that is sft.pt's log
    return tmp_path


def sft_argv(files, model, *extra, out="sft.pt"):
    return ["--model", str(model), "--data", str(files / "data_sft.jsonl"), "--eval-data", str(files / "data_val.jsonl"), "--window", "8",
            "--out", str(files / out), "--batch-size", "4", "--lr", "3e-3", "--warmup", "2", "--eval-every", "1000",
            "--device", "cpu", *extra]


def rl_argv(files, model, *extra, out="rl.pt"):
    return ["--model", str(model), "--data", str(files / "data_rl.jsonl"), "--eval-data", str(files / "data_val.jsonl"), "--out", str(files / out),
            "--prompts-per-step", "2", "--group-size", "4", "--max-new-tokens", "24", "--eval-size", "2", "--eval-samples", "1",
            "--lr", "1e-3", "--device", "cpu", "--no-skip-zero-std", *extra]


def usage_error(main, argv, capsys):
    capsys.readouterr()  # what earlier runs printed
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def all_finite(file):
    return all(torch.isfinite(t).all() for t in load_checkpoint(file)[1]["model"].values() if t.is_floating_point())


def valid_json_lines(file):
    def no_constants(name):
        raise ValueError(f"{file}: {name} is not JSON")

    return [json.loads(line, parse_constant=no_constants) for line in file.read_text().splitlines()]


# ----------------------------------------------------------------------------------------------
# divergence


def test_sft_divergence_stops_before_the_step_and_names_the_true_last_checkpoint(files, char_model_dir):
    with pytest.raises(FloatingPointError) as e:
        sft.main(sft_argv(files, char_model_dir, "--max-steps", "8", "--save-every", "1", "--lr", "1e6"))
    message = str(e.value)
    assert "stopped before the optimizer step" in message
    ckpt = load_checkpoint(files / "sft.pt")[1]
    assert f"the last good checkpoint is {files / 'sft.pt'} (step {ckpt['step']})" in message and all_finite(files / "sft.pt")
    assert not list(files.glob("*.tmp"))
    valid_json_lines(files / "sft.jsonl")  # no bare NaN


def test_a_checkpoint_with_non_finite_weights_is_never_written(files, char_model_dir, monkeypatch):
    real, calls = torch.optim.AdamW.step, []

    def poisoned_at_step_3(self, *a, **k):  # finite loss and gradients, then weights that are not
        calls.append(1)
        out = real(self, *a, **k)
        if len(calls) == 3:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("inf"))
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", poisoned_at_step_3)
    with pytest.raises(FloatingPointError, match=r"weight tensors hold NaN or inf .*the last good checkpoint is .*sft.pt \(step 2\)"):
        sft.main(sft_argv(files, char_model_dir, "--max-steps", "4", "--save-every", "1"))
    assert load_checkpoint(files / "sft.pt")[1]["step"] == 2 and all_finite(files / "sft.pt")


def test_rl_divergence_keeps_the_last_good_checkpoint(files, char_model_dir, monkeypatch):
    real_step, real_loss, calls = rl.grpo_step, rl.policy_loss, []
    monkeypatch.setattr(rl, "grpo_step", lambda *a, **k: calls.append(1) or real_step(*a, **k))

    def nan_from_step_3(*a, **k):
        loss, stats = real_loss(*a, **k)
        return (loss * float("nan") if len(calls) >= 3 else loss), stats

    monkeypatch.setattr(rl, "policy_loss", nan_from_step_3)
    with pytest.raises(FloatingPointError, match=r"loss is nan at step 3: stopped before the optimizer step; the last good "
                                                 r"checkpoint is .*rl.pt \(step 2\)"):
        rl.main(rl_argv(files, char_model_dir, "--max-steps", "4", "--save-every", "1"), reward_fn=lambda t, g: float("1" in t))
    assert load_checkpoint(files / "rl.pt")[1]["step"] == 2 and all_finite(files / "rl.pt")


# ----------------------------------------------------------------------------------------------
# flags that mean nothing, outputs that cannot be written, runs that would clobber


@pytest.mark.parametrize("extra, message", [
    (["--max-steps", "0"], "--max-steps must be >= 1, got 0"),
    (["--save-every", "0"], "--save-every must be >= 1, got 0"),
    (["--eval-every", "0"], "--eval-every must be >= 1, got 0"),
    (["--max-len", "0"], "--max-len must be >= 1, got 0"),
    (["--window", "1.5"], "argument --window: takes an integer >= 1, 'none' or 'config', got '1.5'"),
    (["--full-layers", "first"], "argument --full-layers: takes comma-separated integers, got 'first'"),
    (["--out", "/proc/swarr/x.pt"], "--out /proc/swarr/x.pt: cannot be written"),
    (["--log", "/dev/full"], "--log /dev/full: not a regular file"),
    (["--export-hf", "/proc/swarr-export"], "--export-hf /proc/swarr-export: cannot be written"),
])
def test_sft_flags_and_outputs_fail_before_any_model_is_loaded(extra, message, files, capsys):
    # the model does not exist: a parse-time error is reported before anything would load it
    assert message in usage_error(sft.main, sft_argv(files, files / "no-such-model", *extra), capsys)


def test_rl_and_generate_flags(files, capsys):
    assert "--eval-size must be >= 1, got 0" in usage_error(rl.main, rl_argv(files, "x", "--eval-size", "0"), capsys)
    assert "--out /proc/swarr/rl.pt: cannot be written" in usage_error(rl.main, rl_argv(files, "x", "--out", "/proc/swarr/rl.pt"), capsys)
    result = subprocess.run([sys.executable, "generate.py", "--prompt", "Q:1|+1;", "--samples", "0"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr == "error: --samples and --max-new-tokens must be >= 1, got 0 and 256\n"


def test_an_existing_out_is_never_clobbered(files, char_model_dir, capsys):
    sft.main(sft_argv(files, char_model_dir, "--max-steps", "2"))
    before, log_before = (files / "sft.pt").read_bytes(), (files / "sft.jsonl").read_text()
    err = usage_error(sft.main, sft_argv(files, char_model_dir, "--max-steps", "2"), capsys)
    assert "sft.pt exists: --resume continues that run, --overwrite starts a new one over it" in err
    assert (files / "sft.pt").read_bytes() == before and (files / "sft.jsonl").read_text() == log_before
    sft.main(sft_argv(files, char_model_dir, "--max-steps", "2", "--resume"))
    events = [r.get("event") for r in valid_json_lines(files / "sft.jsonl")]
    assert events.count("start") == 1 and events.count("resume") == 1  # where each run began


def test_a_full_disk_leaves_the_previous_checkpoint_and_no_tmp(files, char_model_dir, monkeypatch):
    real, calls = torch.save, []

    def disk_full_at_the_third_save(obj, f, *a, **k):
        calls.append(1)
        real(obj, f, *a, **k)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full_at_the_third_save)
    with pytest.raises(OSError, match="No space left"):
        sft.main(sft_argv(files, char_model_dir, "--max-steps", "4", "--save-every", "1"))
    assert load_checkpoint(files / "sft.pt")[1]["step"] == 2 and not list(files.glob("*.tmp"))


# ----------------------------------------------------------------------------------------------
# damaged files: one line naming the file


def test_damaged_checkpoints_and_tokenizers(files, char_model_dir):
    (files / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=f"checkpoint {files / 'empty.pt'} cannot be read"):
        load_model(files / "empty.pt")
    model, tokenizer = load_model(char_model_dir)
    ckpt = {"config": {}, "model": model.state_dict(), "tokenizer_files": tokenizer.files}
    from dataclasses import asdict

    ckpt["config"] = {**asdict(model.config), "window_size": 3}
    torch.save(ckpt, files / "unknown.pt")
    with pytest.raises(ValueError, match=r"unknown.pt: unknown config entries \['window_size'\]"):
        load_model(files / "unknown.pt")
    save_checkpoint(files / "no_tok.pt", model)
    with pytest.raises(ValueError, match="no_tok.pt has no tokenizer"):
        load_model(files / "no_tok.pt")
    bad = files / "bad_tok"
    bad.mkdir()
    (bad / "tokenizer.json").write_text("{ garbage")
    with pytest.raises(ValueError, match="bad_tok: tokenizer.json cannot be read"):
        Tokenizer(bad)
    (bad / "tokenizer.json").write_text((char_model_dir / "tokenizer.json").read_text())
    (bad / "tokenizer_config.json").write_text('{"eos_token": ')
    with pytest.raises(ValueError, match="bad_tok: tokenizer_config.json: malformed JSON"):
        Tokenizer(bad)


def test_a_zero_byte_checkpoint_costs_evaluate_only_its_rows(files, char_model_dir, capsys):
    (files / "empty.pt").write_bytes(b"")
    write_jsonl(files / "bench.jsonl", [{"prompt": "Q:1|+1;\n", "answer": "2"}, {"prompt": "Q:2|+1;\n", "answer": "#### "}])
    assert evaluate.main(["--model", str(files / "empty.pt"), str(char_model_dir), "--data", str(files / "bench.jsonl"),
                          "--max-new-tokens", "4", "--device", "cpu", "--out", str(files / "eval")]) == 0
    captured = capsys.readouterr()
    assert f"checkpoint {files / 'empty.pt'} cannot be read" in captured.err
    assert "1 of 2 gold answers cannot be parsed by reward.py (records 2): they count as wrong" in captured.out


def test_a_checkpoint_loads_from_anywhere(files, char_model_dir, monkeypatch):
    sft.main(sft_argv(files, char_model_dir, "--max-steps", "1"))
    moved = files / "elsewhere" / "deep"
    moved.mkdir(parents=True)
    os.replace(files / "sft.pt", moved / "sft.pt")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (char_model_dir / name).unlink()  # the directory it was trained from is gone
    monkeypatch.chdir(moved.parent)
    model, tokenizer = load_model(Path("deep") / "sft.pt")
    assert tokenizer.decode(tokenizer.encode("Q:1|+1;")) == "Q:1|+1;" and model.config.layer_windows == [8, 8]


# ----------------------------------------------------------------------------------------------
# kill -9 at the worst moment: in the middle of a checkpoint write


KILL_DURING_SAVE = """
import os, signal, sys, torch
sys.path.insert(0, os.getcwd())
real, calls = torch.save, []
def half_then_killed(obj, f, *a, **k):
    calls.append(1)
    real(obj, f, *a, **k)
    if len(calls) == int(sys.argv[2]):
        with open(f, "r+b") as tmp:
            tmp.truncate(os.path.getsize(f) // 2)  # half written when the process dies
        os.kill(os.getpid(), signal.SIGKILL)
torch.save = half_then_killed
import {stage}
{stage}.main(sys.argv[3:]{extra})
"""


def killed_then_resumed(stage, argv, extra=""):
    code = KILL_DURING_SAVE.replace("{stage}", stage).replace("{extra}", extra)
    killed = subprocess.run([sys.executable, "-c", code, "x", "3", *argv], cwd=ROOT, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr[-2000:]
    subprocess.run([sys.executable, "-c", code, "x", "0", *argv, "--resume"], cwd=ROOT, check=True, capture_output=True)


@pytest.mark.parametrize("stage", ["sft", "rl"])
def test_sigkill_during_a_checkpoint_write_then_resume_equals_uninterrupted(stage, files, char_model_dir):
    if stage == "sft":
        argv = lambda out: sft_argv(files, char_model_dir, "--max-steps", "5", "--save-every", "1", out=out)  # noqa: E731
    else:
        sft.main(sft_argv(files, char_model_dir, "--max-steps", "2", out="init.pt"))
        argv = lambda out: rl_argv(files, files / "init.pt", "--max-steps", "4", "--save-every", "1", out=out)  # noqa: E731
    subprocess.run([sys.executable, f"{stage}.py", *argv("full.pt")], cwd=ROOT, check=True, capture_output=True)
    killed_then_resumed(stage, argv("cut.pt"))
    full, cut = load_checkpoint(files / "full.pt")[1], load_checkpoint(files / "cut.pt")[1]
    assert cut["step"] == full["step"]
    for name, tensor in full["model"].items():
        assert torch.equal(tensor, cut["model"][name]), name


def test_damaged_hugging_face_directories(tmp_path, char_model_dir):
    import shutil

    from model import Model

    config = json.loads((char_model_dir / "config.json").read_text())
    cases = {
        "missing_field": ({k: v for k, v in config.items() if k != "hidden_size"}, "config.json: missing field 'hidden_size'"),
        "string_field": ({**config, "hidden_size": "6"}, "config.json: a field of the wrong type (hidden_size must be a positive integer, got '6')"),
    }
    for name, (bad, message) in cases.items():
        path = tmp_path / name
        shutil.copytree(char_model_dir, path)
        (path / "config.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError) as e:
            Model.from_pretrained(path)
        assert str(e.value) == f"{path / message}" and "\n" not in str(e.value)
    path = tmp_path / "malformed"
    shutil.copytree(char_model_dir, path)
    (path / "config.json").write_text('{"model_type": "llama",')
    with pytest.raises(ValueError, match=f"{path / 'config.json'}: malformed JSON"):
        load_model(path)
    path = tmp_path / "truncated"
    shutil.copytree(char_model_dir, path)
    weights = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ValueError, match=f"{path / 'model.safetensors'} cannot be read"):
        load_model(path)
