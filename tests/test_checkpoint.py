"""checkpoint.py: loading either kind of model, atomic writes, resumable iteration state, and the shared flags."""
import pytest
import torch

import checkpoint
from checkpoint import ArgumentParser, add_model_args, atomic_write, check_model_args, export_hf, load_model, save_checkpoint
from test_generate import prompts_of, tiny_model, write_tokenizer


def test_load_model_from_checkpoint_and_directory(tmp_path):
    model = tiny_model("swa-sinks")
    write_tokenizer(tmp_path / "tok")
    save_checkpoint(tmp_path / "ckpt.pt", model, tokenizer=str(tmp_path / "tok"))
    loaded, tok = load_model(tmp_path / "ckpt.pt")
    assert loaded.config.layer_windows == [4, 4, 4] and loaded.config.sinks == 2
    ids = torch.tensor([prompts_of([20])[0]])
    with torch.no_grad():
        assert torch.equal(loaded(ids), model(ids))
    export_hf(model, tmp_path / "tok")
    from_dir, _ = load_model(tmp_path / "tok", window=None)
    assert from_dir.config.layer_windows == [None] * 3
    with pytest.raises(FileNotFoundError, match="not found"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes((tmp_path / "ckpt.pt").read_bytes()[:1000])
    with pytest.raises(ValueError, match="cannot be read"):
        load_model(tmp_path / "bad.pt")


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path):
    target = tmp_path / "file.txt"
    atomic_write(target, lambda f: open(f, "w").write("good"))
    assert target.read_text() == "good"

    def half_then_fail(f):
        open(f, "w").write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "good" and sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # no .tmp left


def parse(argv, several=False):
    p = ArgumentParser()
    add_model_args(p, several=several)
    args = p.parse_args(argv)
    check_model_args(p, args)
    return args


def test_model_flags_parse_the_same_everywhere():
    args = parse(["--window", "16", "--sinks", "2", "--full-layers", "0,3"])
    assert (args.model, args.window, args.sinks, args.full_layers) == ("base_model", 16, 2, (0, 3))
    assert parse(["--window", "none"]).window is None and parse([]).window == "config"
    several = parse(["--model", "a", "b", "--window", "config", "none", "8"], several=True)
    assert several.model == ["a", "b"] and several.window == ["config", None, 8]


@pytest.mark.parametrize("argv, message", [
    (["--window", "0"], "argument --window: takes an integer >= 1, 'none' or 'config', got '0'"),
    (["--window", "wide"], "argument --window: takes an integer >= 1, 'none' or 'config', got 'wide'"),
    (["--full-layers", "a,b", "--window", "4"], "argument --full-layers: takes comma-separated integers, got 'a,b'"),
    (["--sinks", "2"], "--sinks and --full-layers apply to an integer --window"),
    (["--sinks", "-1", "--window", "4"], "--sinks must be >= 0, got -1"),
])
def test_model_flag_errors_are_one_line_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        parse(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err == f"error: {message}\n"


def test_a_window_larger_than_the_context_is_refused(tmp_path):
    export_hf(tiny_model("full"), tmp_path / "m")
    write_tokenizer(tmp_path / "m")
    with pytest.raises(ValueError, match=r"window 600 is larger than the context of .* \(512 positions\)"):
        load_model(tmp_path / "m", window=600)
    assert load_model(tmp_path / "m", window=512)[0].config.layer_windows == [512] * 3


def test_timer_charges_each_phase_the_time_since_the_previous_mark(monkeypatch):
    clock = iter([10.0, 10.5, 11.0, 13.0, 13.25, 20.0])  # start, gen, fwd, update, fwd, update
    monkeypatch.setattr(checkpoint.time, "perf_counter", lambda: next(clock))
    timer = checkpoint.Timer("cpu")
    for phase in ("gen_s", "fwd_s", "update_s", "fwd_s", "update_s"):
        timer(phase)
    assert timer.seconds() == {"gen_s": 0.5, "fwd_s": 0.5 + 0.25, "update_s": 2.0 + 6.75}
