"""benchmarks/bench_decode.py: the SWA cache stops growing at W while SA's grows, and a context that does not fit costs only its row."""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_decode  # noqa: E402
from model import config_to_hf  # noqa: E402
from test_generate import tiny_model  # noqa: E402


def test_swa_cache_stops_growing(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(config_to_hf(tiny_model("full").config)[0]))
    out = tmp_path / "eff"
    argv = ["--config", str(config), "--contexts", "16,64,256", "--window", "8", "--decode-steps", "2",
            "--device", "cpu", "--out", str(out)]
    bench_decode.main(argv)
    rows = json.loads((tmp_path / "eff.json").read_text())["rows"]
    sa = [r["kv_bytes"] for r in rows if r["window"] is None]
    swa = [r["kv_bytes"] for r in rows if r["window"] == 8]
    assert len(sa) == len(swa) == 3 and all(r["ms_per_token"] > 0 for r in rows)
    assert swa[0] == swa[1] == swa[2] and sa[0] < sa[1] < sa[2] and swa[2] < sa[2]
    slot = 3 * 2 * 2 * 8 * 4  # layers x (k, v) x kv heads x head_dim x float32 bytes
    assert swa[0] == 8 * slot and sa[2] == (256 + bench_decode.WARMUP + 2) * slot
    assert "| decode ms/token | KV cache |" in (tmp_path / "eff.md").read_text()


def test_reports_oom_and_goes_on(monkeypatch):
    real = bench_decode.decode_cost

    def limited(model, context, steps, compile=False):
        if context > 32 and model.config.layer_windows[0] is None:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")
        return real(model, context, steps)

    monkeypatch.setattr(bench_decode, "decode_cost", limited)
    rows = bench_decode.efficiency_rows(tiny_model("full"), "tiny", [16, 64, 128], 8, steps=1)
    assert [bool(r.get("oom")) for r in rows] == [False, True, True, False, False, False]
    table = "\n".join(bench_decode.efficiency_table(rows))
    assert "| tiny | full | 64 | OOM | OOM | OOM |" in table and "| tiny | W=8 | 128 |" in table


def test_argument_errors_are_one_line(capsys):
    import pytest

    for argv, message in ((["--config", "gpt-5"], "neither a built-in shape"), (["--window", "none", "--config", "qwen2.5-1.5b"], "--window"),
                          ([], "give --model or --config")):
        with pytest.raises(SystemExit) as e:
            bench_decode.main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and message in err and err.startswith("error: ") and err.count("\n") == 1, err
