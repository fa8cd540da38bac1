"""sft.py: the loss mask, batching without cross-talk, exact resumption, and clear errors."""
import json
import math

import pytest
import torch

import sft
from data import write_jsonl
from data.synthetic import in_memory_splits
from checkpoint import load_checkpoint, load_model
from model import token_logprobs
from tokenizer import Tokenizer


def small_data(tmp_path, n=48):
    splits = in_memory_splits(seed=0, steps=(2, 3), n_sft=n, n_val=16, n_rl=0, n_test=0, pad=1)
    write_jsonl(tmp_path / "train.jsonl", splits["sft"])
    write_jsonl(tmp_path / "val.jsonl", splits["val"])
    return tmp_path / "train.jsonl", tmp_path / "val.jsonl"


def run(char_model_dir, tmp_path, *extra, out="sft.pt"):
    train, val = small_data(tmp_path)
    return sft.main(["--model", str(char_model_dir), "--data", str(train), "--eval-data", str(val), "--window", "8",
                     "--out", str(tmp_path / out), "--batch-size", "4", "--grad-accum", "2", "--lr", "3e-3",
                     "--warmup", "2", "--eval-every", "1000", "--device", "cpu", *extra])


def test_loss_mask_is_exactly_the_response(char_model_dir):
    tok = Tokenizer(char_model_dir)
    record = {"prompt": "Q:3|+4;\n", "response": "L1:7;\n#### 7"}
    (ids, mask), = sft.tokenize([("#1", record)], tok, 512, False, "test")[0]
    prompt_ids = tok.encode("Q:3|+4;\n")  # the plain prompt format: the prompt, then a newline
    response_ids = tok.encode("L1:7;\n#### 7")
    assert ids == prompt_ids + response_ids + [0]
    assert mask == [False] * len(prompt_ids) + [True] * (len(response_ids) + 1)
    (_, all_mask), = sft.tokenize([("#1", record)], tok, 512, True, "test")[0]
    assert all_mask == [False] + [True] * (len(ids) - 1)  # pretraining: every token but the first


def test_rows_of_a_batch_do_not_see_each_other(char_model_dir):
    """Length-bucketed batches pad on the right: each row's loss equals its loss alone."""
    model, tok = load_model(char_model_dir, window=5)
    records = in_memory_splits(seed=1, steps=(2, 6), n_sft=6, n_val=0, n_rl=0, n_test=0)["sft"]
    examples, _ = sft.tokenize(list(enumerate(records)), tok, 512, False, "test")
    ids, mask = sft.collate(examples, list(range(6)), 0, "cpu")
    assert len({len(e[0]) for e in examples}) > 1  # really padded
    with torch.no_grad():
        batch = token_logprobs(model, ids) * mask
        for row, (seq, m) in enumerate(examples):
            alone = token_logprobs(model, torch.tensor([seq]))[0] * torch.tensor(m[1:])
            torch.testing.assert_close(batch[row, : len(seq) - 1], alone, rtol=0, atol=1e-5)
            assert (batch[row, len(seq) - 1 :] == 0).all()


def test_batches_are_length_bucketed_and_cover_every_example():
    examples = [([0] * n, [True] * n) for n in [5, 50, 6, 48, 7, 52, 5, 49]]
    batches = sft.epoch_batches(examples, 2, seed=0, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(8))
    padding = sum(max(len(examples[i][0]) for i in b) * len(b) - sum(len(examples[i][0]) for i in b) for b in batches)
    assert padding <= 8  # short with short, long with long
    assert batches != sft.epoch_batches(examples, 2, seed=0, epoch=1)


def test_packed_rows_give_each_example_its_loss_alone(char_model_dir):
    """--pack: examples end to end in one row; the summed loss and its target count equal the padded batch's."""
    model, tok = load_model(char_model_dir, window=5, sinks=1)
    records = in_memory_splits(seed=1, steps=(2, 6), n_sft=6, n_val=0, n_rl=0, n_test=0)["sft"]
    examples, _ = sft.tokenize(list(enumerate(records)), tok, 512, False, "test")
    ids, mask, doc_start = sft.collate_packed(examples, list(range(6)), 0, 384, "cpu")
    assert ids.shape == (1, 384) and mask.shape == (1, 383)
    with torch.no_grad():
        packed_loss, packed_n = sft.sequence_loss(model, ids, mask, "cpu", doc_start)
        padded_loss, padded_n = sft.sequence_loss(model, *sft.collate(examples, list(range(6)), 0, "cpu"), "cpu")
    assert packed_n == padded_n == sum(sum(m) for _, m in examples)
    torch.testing.assert_close(packed_loss, padded_loss, rtol=1e-6, atol=0)


def test_packs_hold_whole_examples_and_cover_every_one():
    lengths = [5, 50, 6, 48, 7, 52, 5, 49, 100, 1, 64]
    examples = [([0] * n, [True] * n) for n in lengths]
    rows = sft.epoch_packs(examples, 128, seed=0, epoch=0)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= 128 for r in rows)
    assert len(rows) == 4  # 387 tokens: 4 rows at least, and first fit finds 4
    assert rows == sft.epoch_packs(examples, 128, seed=0, epoch=0) != sft.epoch_packs(examples, 128, seed=0, epoch=1)


def test_lr_schedule_hand_computed():
    class A:
        lr, warmup, min_lr_ratio = 1.0, 10, 0.1
    assert sft.lr_at(0, A, 110) == pytest.approx(0.1)
    assert sft.lr_at(9, A, 110) == pytest.approx(1.0)
    assert sft.lr_at(60, A, 110) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the cosine
    assert sft.lr_at(110, A, 110) == pytest.approx(0.1)


def test_training_lowers_validation_loss_and_writes_a_loadable_checkpoint(char_model_dir, tmp_path):
    run(char_model_dir, tmp_path, "--max-steps", "12", "--export-hf", str(tmp_path / "hf"))
    log = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert log[0]["step"] == 0 and log[-1]["step"] == 12
    assert log[-1]["val_loss"] < log[0]["val_loss"] - 0.3
    model, ckpt = load_checkpoint(tmp_path / "sft.pt")
    assert model.config.layer_windows == [8, 8] and ckpt["step"] == 12
    hf_model, _ = load_model(tmp_path / "hf")
    ids = torch.randint(0, 30, (1, 20))
    with torch.no_grad():
        assert torch.equal(hf_model(ids), model(ids))


@pytest.mark.parametrize("extra", [(), ("--pack", "256")], ids=["padded", "packed"])
def test_kill_and_resume_gives_the_same_weights(char_model_dir, tmp_path, monkeypatch, extra):
    full = run(char_model_dir, tmp_path, "--max-steps", "8", "--save-every", "3", *extra, out="full.pt")

    calls = {"n": 0}
    real_clip = torch.nn.utils.clip_grad_norm_

    def dies_at_step_5(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # killed mid-step 5, after the save at step 3
        return real_clip(*a, **kw)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", dies_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        run(char_model_dir, tmp_path, "--max-steps", "8", "--save-every", "3", *extra, out="killed.pt")
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", real_clip)
    assert load_checkpoint(tmp_path / "killed.pt")[1]["step"] == 3
    resumed = run(char_model_dir, tmp_path, "--max-steps", "8", "--save-every", "3", "--resume", *extra, out="killed.pt")
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_bad_input(char_model_dir, tmp_path, monkeypatch):
    train, val = small_data(tmp_path)
    base = ["--model", str(char_model_dir), "--val-data", str(val), "--window", "8", "--device", "cpu", "--out", str(tmp_path / "x.pt")]
    with pytest.raises(ValueError, match="missing.jsonl: no such file"):
        sft.main(base + ["--data", str(tmp_path / "missing.jsonl")])
    lines = train.read_text().splitlines()
    (tmp_path / "bad.jsonl").write_text("\n".join(lines[:2] + ['{"prompt": "Q", "response": '] + lines[2:]) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:3"):
        sft.main(base + ["--data", str(tmp_path / "bad.jsonl")])
    (tmp_path / "nofield.jsonl").write_text(json.dumps({"prompt": "Q:1|+1;"}) + "\n")
    with pytest.raises(ValueError, match="response"):
        sft.main(base + ["--data", str(tmp_path / "nofield.jsonl")])
    (tmp_path / "empty_response.jsonl").write_text(json.dumps({"prompt": "Q:1|+1;", "response": ""}) + "\n")
    with pytest.raises(ValueError, match="record 1 has a response that tokenizes to nothing"):
        sft.main(base + ["--data", str(tmp_path / "empty_response.jsonl")])
    with pytest.raises(FileNotFoundError, match="nothing|no checkpoint"):
        sft.main(base + ["--data", str(train), "--resume"])
    with pytest.raises(SystemExit, match="2"):  # a usage error: argparse's, one line naming --window
        sft.main(base + ["--data", str(train), "--window", "0"])
    with pytest.raises(SystemExit, match="2"):  # --pack must be whole flex blocks
        sft.main(base + ["--data", str(train), "--pack", "200"])
    # a resume of a different run
    run(char_model_dir, tmp_path, "--max-steps", "2", out="a.pt")
    with pytest.raises(ValueError, match="different run .*lr"):
        run(char_model_dir, tmp_path, "--max-steps", "2", "--resume", "--lr", "1e-2", out="a.pt")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(char_model_dir, tmp_path, monkeypatch):
    run(char_model_dir, tmp_path, "--max-steps", "2", out="good.pt")
    before = (tmp_path / "good.pt").read_bytes()
    real = sft.sequence_loss
    calls = {"n": 0}

    def nan_at_step_3(*a):
        calls["n"] += 1
        loss, n = real(*a)
        return (loss * math.nan if calls["n"] > 8 else loss), n  # 2 val batches + 2 micro-batches per step

    monkeypatch.setattr(sft, "sequence_loss", nan_at_step_3)
    with pytest.raises(FloatingPointError, match=r"loss is nan at step \d"):
        run(char_model_dir, tmp_path, "--max-steps", "6", "--save-every", "100", "--overwrite", out="good.pt")
    assert (tmp_path / "good.pt").read_bytes() == before


def test_real_data_without_eval_data_validates_on_a_held_out_slice(char_model_dir, tmp_path, capsys):
    train, _ = small_data(tmp_path)
    sft.main(["--model", str(char_model_dir), "--data", str(train), "--window", "8", "--out", str(tmp_path / "h.pt"),
              "--batch-size", "4", "--max-steps", "2", "--eval-size", "8", "--device", "cpu"])
    first = json.loads((tmp_path / "h.jsonl").read_text().splitlines()[0])
    assert first["val_data"] == f"8 records held out of {train}"
    out = capsys.readouterr().out
    assert "validating on 8 records held out of" in out and "sft: 2 updates in this run" in out
    records = [r for _, r in sft.load_split(str(train), "sft", ("prompt", "response"))]
    rest, held = sft.hold_out(records, 8, 0)
    assert len(held) == 8 and len(rest) == len(records) - 8 and not {r["prompt"] + r["response"] for r in held} & {r["prompt"] + r["response"] for r in rest}
