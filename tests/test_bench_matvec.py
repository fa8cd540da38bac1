"""benchmarks/bench_matvec.py --tiny: every decode product of a qwen2 layout (the q, k, v bias included) through
matvec and cuBLAS, each within the output's rounding of float64, in a table of one row per product."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import model as model_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(model_module.triton is None, reason="triton is not installed (requirements-test.txt)")
def test_bench_matvec_tiny_table(tmp_path):
    out = tmp_path / "matvec.md"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_matvec.py"), "--tiny", "--out", str(out)],
                   check=True, capture_output=True, text=True, timeout=300, env={**os.environ, "TRITON_INTERPRET": "1"})
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ") and "×" in line and "product" not in line]
    assert [r.split(" (")[0] for r in rows] == ["| q, k, v", "| o_proj", "| gate, up", "| down", "| head"]
    assert "bias" in rows[0] and "bias" not in rows[1]
    for row in rows:
        cublas_error, matvec_error = (float(e) for e in row.split("|")[6].split(","))
        assert matvec_error <= 0.6 * 2**-10 and cublas_error <= 0.6 * 2**-10  # float16: half an ulp of the largest output
