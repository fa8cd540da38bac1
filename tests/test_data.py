"""Tests of data/: JSON-lines I/O, converters, and the synthetic task.

The synthetic checks compare against references written here (a separate mod-10
evaluator and text parsers), not against the module's own helpers.
"""

import json
import random
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from data import read_jsonl, write_jsonl  # noqa: E402
from data import convert, synthetic as syn  # noqa: E402
import data as data_pkg  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data absent")


# ------------------------------------------------------------ independent references


# ---- task arithmetic the tests check the generated text against (test-only helpers)

_PROMPT_RE = re.compile(r"Q:(\d)\|((?:[-+]\d|\*[379])+);\n?")


def make_record(rng: random.Random, k: int, style: str, pad: int = 0) -> dict:
    """A random problem with ``k`` steps as a record solved in ``style``."""
    return syn.problem_record(syn.make_problem(rng, k), style, pad)


def parse_prompt(prompt: str) -> dict:
    """Inverse of ``render_prompt`` (the trailing newline is optional)."""
    m = _PROMPT_RE.fullmatch(prompt)
    if not m or "0" in m.group(2)[1::2]:
        raise ValueError(f"not a synthetic prompt: {prompt!r}")
    ops = [m.group(2)[i:i + 2] for i in range(0, len(m.group(2)), 2)]
    problem = {"start": int(m.group(1)), "ops": ops, "answer": 0}
    problem["answer"] = syn.running_values(problem)[-1]
    return problem


def prompt_length(k: int) -> int:
    return 2 * k + 6


def response_length(style: str, k: int, pad: int = 0) -> int:
    """Length in characters of a ``k``-step response in ``style``."""
    if style == "lookback":
        return 8 + (3 + pad) * k + syn._digits_sum(k)
    if style == "carry":
        return k * k + 2 * k + 8
    raise ValueError(f"unknown style {style!r}")


def lookback_distances(record: dict) -> list[int]:
    """Measured on a look-back record's text: for each step i, the distance from the
    position of ``v_i`` in ``prompt + response`` back to the sign of operation i in the
    question. Equals ``[lookback_distance(k, i, pad) for i in 1..k]``."""
    prompt, response = record["prompt"], record["response"]
    if syn.detect_style(response) != "lookback" or not response.startswith("L"):
        raise ValueError("not a look-back response")
    first_op = prompt.index("|") + 1
    body = response[1:response.index("\n")]
    out, offset = [], len(prompt) + 1
    for i, step in enumerate(body.split(";")[:-1], 1):
        value_pos = offset + len(step) - 1
        out.append(value_pos - (first_op + 2 * (i - 1)))
        offset += len(step) + 1
    return out


def ref_parse_prompt(prompt):
    """(start, [(sign, digit), ...]) from 'Q:s|ops;\\n', parsed independently."""
    assert prompt.startswith("Q:") and prompt.endswith(";\n"), prompt
    head, ops = prompt[2:-2].split("|")
    pairs = [(ops[i], int(ops[i + 1])) for i in range(0, len(ops), 2)]
    return int(head), pairs


def ref_step(v, sign, a):
    if sign == "+":
        return (v + a) % 10
    if sign == "-":
        return (v + 10 - a) % 10
    assert sign == "*" and a in (3, 7, 9)
    r = 0
    for _ in range(a):  # repeated addition, not the module's multiply
        r = (r + v) % 10
    return r


def ref_values(prompt):
    v, pairs = ref_parse_prompt(prompt)
    out = []
    for sign, a in pairs:
        v = ref_step(v, sign, a)
        out.append(v)
    return out


def final_answer(response):
    m = re.search(r"\n#### (\d)\Z", response)
    assert m, response
    return m.group(1)


def carry_lines(response):
    assert response[0] == "C"
    body, _ = response[1:].split("\n", 1)
    assert body.endswith(";")
    return [line + ";" for line in body[:-1].split(";")]


def next_carry_line(line):
    """Carry-forward line i from line i-1 alone: apply its first op, copy the rest."""
    v, ops = line[:-1].split("|")
    return f"{ref_step(int(v), ops[0], int(ops[1]))}|{ops[2:]};"


def dependencies(prompt, response):
    """(written position, needed position) pairs in prompt+response, found by scanning
    the text: each value needs the previous value and its operation's sign; copied carry
    characters need their source; the final digit needs the last value."""
    text = prompt + response
    n0 = len(prompt)
    start_pos = text.index("Q:") + 2
    op_pos = [i for i in range(start_pos + 2, n0 - 2, 2)]  # sign positions
    assert all(text[p] in "+-*" for p in op_pos)
    deps = []
    if response[0] == "L":
        vals = [m.end() - 1 for m in re.finditer(r"\d+:=*\d", text[n0:])]
        vals = [n0 + p for p in vals]
        prev = start_pos
        for i, p in enumerate(vals):
            deps += [(p, op_pos[i]), (p, prev)]
            prev = p
    else:
        line_starts = [start_pos] + [n0 + 1 + m.start() for m in
                                     re.finditer(r"\d\|", response[1:])]
        for a, b in zip(line_starts, line_starts[1:]):
            deps += [(b, a), (b, a + 2)]  # value needs previous value and op sign
            j = 0
            while text[b + 2 + j] != ";":  # copied op chars come from 2 further on
                deps.append((b + 2 + j, a + 4 + j))
                j += 1
            deps.append((b + 2 + j, a + 4 + j))  # the ';'
        prev = line_starts[-1]
    deps.append((len(text) - 1, prev))  # final digit needs the last value
    return deps


def some_problems(n=60, ks=range(1, 21), seed=123):
    rng = random.Random(seed)
    return [syn.make_problem(rng, k) for k in ks for _ in range(n // 20 + 1)]


# ------------------------------------------------------------ synthetic task

def test_answers_match_reference_evaluator():
    rng = random.Random(1)
    for k in list(range(1, 21)) + [33]:
        for style in syn.STYLES:
            for _ in range(20):
                rec = make_record(rng, k, style)
                vals = ref_values(rec["prompt"])
                assert len(vals) == k == rec["steps"]
                assert rec["answer"] == str(vals[-1])
                assert final_answer(rec["response"]) == rec["answer"]
                assert rec["style"] == style


def test_ops_and_answer_distribution():
    rng = random.Random(2)
    recs = [make_record(rng, 8, "lookback") for _ in range(3000)]
    counts = [sum(r["answer"] == str(d) for r in recs) for d in range(10)]
    assert min(counts) > 200 and max(counts) < 400, counts  # uniform, chance 10%
    ops = [op for r in recs for op in ref_parse_prompt(r["prompt"])[1]]
    kinds = {s: sum(o[0] == s for o in ops) / len(ops) for s in "+-*"}
    assert all(0.30 < v < 0.37 for v in kinds.values()), kinds
    assert {a for s, a in ops if s == "*"} == {3, 7, 9}
    assert {a for s, a in ops if s == "+"} == set(range(1, 10))


def test_both_styles_same_final_answer_and_exact_format():
    p = {"start": 7, "ops": ["-4", "*3", "+5", "-3"], "answer": 1}
    assert syn.render_prompt(p) == "Q:7|-4*3+5-3;\n"
    assert syn.render_response(p, "lookback") == "L1:3;2:9;3:4;4:1;\n#### 1"
    assert syn.render_response(p, "lookback", pad=2) == "L1:==3;2:==9;3:==4;4:==1;\n#### 1"
    assert syn.render_response(p, "carry") == "C3|*3+5-3;9|+5-3;4|-3;1|;\n#### 1"
    for prob in some_problems():
        lb = syn.render_response(prob, "lookback")
        cf = syn.render_response(prob, "carry")
        assert final_answer(lb) == final_answer(cf) == str(prob["answer"])


def test_carry_lines_running_values_and_locality():
    for prob in some_problems():
        prompt = syn.render_prompt(prob)
        response = syn.render_response(prob, "carry")
        lines = carry_lines(response)
        k = len(prob["ops"])
        assert [int(line.split("|")[0]) for line in lines] == ref_values(prompt)
        # line 0 is the question itself; each line is computable from the previous alone
        prev = prompt[2:-1]
        for i, line in enumerate(lines, 1):
            assert next_carry_line(prev) == line
            assert len(line) == 2 * (k - i) + 3
            prev = line
        assert lines[-1].endswith("|;")


def test_lookback_steps():
    for pad in (0, 3):
        for prob in some_problems():
            prompt = syn.render_prompt(prob)
            resp = syn.render_response(prob, "lookback", pad)
            body = resp[1:resp.index("\n")]
            steps = body[:-1].split(";")
            assert [s.split(":")[0] for s in steps] == [str(i) for i in range(1, len(steps) + 1)]
            assert all(s.split(":")[1][:-1] == "=" * pad for s in steps)
            assert [int(s[-1]) for s in steps] == ref_values(prompt)


def test_length_and_distance_formulas():
    for pad in (0, 1, 5):
        for prob in some_problems():
            k = len(prob["ops"])
            for style in syn.STYLES:
                rec = syn.problem_record(prob, style, pad)
                assert len(rec["prompt"]) == prompt_length(k) == 2 * k + 6
                assert len(rec["response"]) == response_length(style, k, pad)
                deps = dependencies(rec["prompt"], rec["response"])
                assert max(w - n for w, n in deps) == syn.max_dependency(style, k, pad)
            if k <= 9:
                assert response_length("lookback", k, pad) == (4 + pad) * k + 8
                assert syn.max_dependency("lookback", k, pad) == max((4 + pad) * k + 3, 9 + pad)
            else:
                assert response_length("lookback", k, pad) == (5 + pad) * k - 1
                assert syn.max_dependency("lookback", k, pad) == (5 + pad) * k - 6
            assert response_length("carry", k) == k * k + 2 * k + 8
            assert syn.max_dependency("carry", k) == max(2 * k + 5, 9)
            # per-step look-back distances, measured on the text vs the closed form
            rec = syn.problem_record(prob, "lookback", pad)
            text = rec["prompt"] + rec["response"]
            n0 = len(rec["prompt"])
            signs = [i for i, c in enumerate(rec["prompt"]) if c in "+-*"]
            values = [n0 + m.end() - 1 for m in re.finditer(r"\d+:=*\d", rec["response"])]
            measured = [v - s for v, s in zip(values, signs)]
            assert all(text[v] == str(x) for v, x in zip(values, ref_values(rec["prompt"])))
            assert lookback_distances(rec) == measured
            assert measured == [syn.lookback_distance(k, i, pad) for i in range(1, k + 1)]
    assert [syn.max_dependency("lookback", k) for k in (8, 12, 16)] == [35, 54, 74]


def test_detect_style_and_concatenation_parses():
    rng = random.Random(3)
    for style, marker in [("lookback", "L"), ("carry", "C")]:
        rec = make_record(rng, 6, style)
        assert rec["response"][0] == marker == syn.MARKERS[style]
        assert syn.detect_style(rec["response"]) == style
        assert syn.detect_style("  \n" + rec["response"]) == style
        full = rec["prompt"] + rec["response"]
        cut = full.index("\n") + 1
        assert full[:cut] == rec["prompt"]
        assert syn.detect_style(full[cut:]) == style
        assert parse_prompt(full[:cut])["answer"] == int(rec["answer"])
        assert set(full) <= set(syn.ALPHABET)
    for text in ["", "   ", "#### 3", "Q:1|+1;", "l1:2;", "1|+1;"]:
        assert syn.detect_style(text) is None
    # the body decides over the marker: carry-forward lines after an L are carry-forward
    assert syn.detect_style("L3|*3+5-3;9|+5-3;4|-3;1|;\n#### 1") == "carry"
    assert syn.detect_style("C1:==3;2:==9;\n#### 9") == "lookback" and syn.detect_style("C12:=3;") == "lookback"
    assert syn.detect_style("Lxyz") == "lookback" and syn.detect_style("C") == "carry"
    for bad in ["Q:1|+0;\n", "Q:1|*2;\n", "Q:12|+1;\n", "Q:1|;\n", "1|+1;"]:
        with pytest.raises(ValueError):
            parse_prompt(bad)


SMALL = dict(n_sft=2000, n_val=100, n_rl=300, n_test=64, test_steps=(2, 4, 8, 12, 16))


def _dump(splits):
    return {k: "".join(json.dumps(r) + "\n" for r in v) for k, v in splits.items()}


def test_determinism_and_seeds():
    a = _dump(syn.in_memory_splits(0, **SMALL))
    assert a == _dump(syn.in_memory_splits(0, **SMALL))
    b = _dump(syn.in_memory_splits(1, **SMALL))
    assert a.keys() == b.keys()
    assert all(a[k] != b[k] for k in a)
    # each split has its own stream: resizing sft does not change the test sets
    c = _dump(syn.in_memory_splits(0, **{**SMALL, "n_sft": 500}))
    assert c["test_k8"] == a["test_k8"] and c["rl"] == a["rl"] and c["sft"] != a["sft"]


def test_split_contents_and_carry_share():
    splits = syn.in_memory_splits(0, carry_share=0.1, **SMALL)
    assert set(splits) == {"sft", "val", "rl", "test_k2", "test_k4", "test_k8",
                           "test_k12", "test_k16"}
    sft = splits["sft"]
    assert len(sft) == 2000
    share = sum(r["style"] == "carry" for r in sft) / len(sft)
    assert abs(share - 0.1) < 0.01
    for k in (4, 8, 12, 16):
        recs = [r for r in sft if r["steps"] == k]
        assert len(recs) == 500
        assert sum(r["style"] == "carry" for r in recs) == 50
    for r in sft:
        assert syn.detect_style(r["response"]) == r["style"]
        assert final_answer(r["response"]) == r["answer"] == str(ref_values(r["prompt"])[-1])
    assert all(r["style"] == "lookback" for r in splits["rl"])
    assert {r["steps"] for r in splits["test_k12"]} == {12}
    assert len(splits["test_k12"]) == 64
    half = syn.in_memory_splits(0, carry_share=0.5, **SMALL)["sft"]
    assert sum(r["style"] == "carry" for r in half) == 1000


def test_held_out_difficulties_leave_the_trained_test_sets_as_they_were():
    """Adding test difficulties (k = 6, 10, 14, 16) draws each from its own stream: the test sets of the trained
    difficulties, and every other split, are exactly those the default task had before them."""
    task = syn.DEFAULT_TASK["splits"]
    before = syn.in_memory_splits(**{**task, "test_steps": (4, 8, 12), "n_sft": 300, "n_rl": 300})
    after = syn.in_memory_splits(**{**task, "n_sft": 300, "n_rl": 300})
    assert all(after[name] == records for name, records in before.items())
    assert {r["steps"] for r in after["test_k14"]} == {14} and len(after["test_k16"]) == task["n_test"]


def test_rl_weights_set_the_share_of_each_difficulty():
    equal = syn.in_memory_splits(0, **{**SMALL, "n_rl": 301, "rl_steps": (4, 8, 12)})["rl"]
    assert [sum(r["steps"] == k for r in equal) for k in (4, 8, 12)] == [101, 100, 100]
    assert syn.in_memory_splits(0, **{**SMALL, "n_rl": 301, "rl_steps": (4, 8, 12), "rl_weights": (1, 1, 1)})["rl"] == equal
    easy = syn.in_memory_splits(0, **{**SMALL, "n_rl": 1000, "rl_steps": (4, 8, 12), "rl_weights": "1,4.5,4.5"})["rl"]
    assert [sum(r["steps"] == k for r in easy) for k in (4, 8, 12)] == [100, 450, 450]
    assert syn._apportion(10, [1, 1, 1]) == [4, 3, 3] and syn._apportion(7, [0, 2, 1]) == [0, 5, 2]
    for bad in ("1,2", "1,-1,1", "0,0,0", "a,b,c", "1,inf,1"):
        with pytest.raises(ValueError, match="rl_weights"):
            syn.in_memory_splits(0, **{**SMALL, "rl_steps": (4, 8, 12), "rl_weights": bad})


def test_test_sets_disjoint_from_training_for_k_ge_4():
    s0 = syn.in_memory_splits(0, pretrain=True, n_pretrain=3000, **SMALL)
    s1 = syn.in_memory_splits(1, pretrain=True, n_pretrain=3000, **SMALL)
    train = {r["prompt"] for s in (s0, s1) for name in ("sft", "val", "rl", "pretrain")
             for r in s[name] if r["steps"] >= 4}
    val = {r["prompt"] for r in s0["val"] + s1["val"]}
    for k in (4, 8, 12, 16):
        test = [r["prompt"] for r in s0[f"test_k{k}"]]
        assert len(set(test)) == len(test)  # distinct within the file
        assert not set(test) & train
        assert not set(test) & {r["prompt"] for r in s1[f"test_k{k}"]} & train
    assert not val & {r["prompt"] for s in (s0, s1) for n in ("sft", "rl", "pretrain")
                      for r in s[n] if r["steps"] >= 4}
    # the reservation really is by hash: regenerate and check buckets
    for r in s0["test_k8"]:
        assert syn.pool_of(parse_prompt(r["prompt"])) == "test"


def test_pretrain_corpus():
    s = syn.in_memory_splits(0, pretrain=True, n_pretrain=3200, **SMALL)
    pre = s["pretrain"]
    assert len(pre) == 3200
    assert {r["steps"] for r in pre} == set(range(1, 17))
    for k in range(1, 17):
        recs = [r for r in pre if r["steps"] == k]
        assert len(recs) == 200 and sum(r["style"] == "carry" for r in recs) == 100
    assert "pretrain" not in syn.in_memory_splits(0, **SMALL)


def test_generation_speed():
    t = time.perf_counter()
    splits = syn.in_memory_splits(0)  # defaults: ~25k records
    assert sum(len(v) for v in splits.values()) >= 20000
    assert time.perf_counter() - t < 2.0


def test_synthetic_cli_writes_files(tmp_path, capsys):
    out = tmp_path / "syn"
    args = ["--out", str(out), "--seed", "0", "--steps", "4,8", "--n-sft", "200",
            "--n-val", "20", "--n-rl", "30", "--test-steps", "4,16", "--n-test", "10",
            "--pad", "2"]
    assert syn.main(args) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["rl.jsonl", "sft.jsonl", "test_k16.jsonl", "test_k4.jsonl", "val.jsonl"]
    first = {n: (out / n).read_bytes() for n in names}
    assert syn.main(args + ["--pretrain", "--n-pretrain", "64"]) == 0
    assert all((out / n).read_bytes() == first[n] for n in names)  # same bytes again
    pre = read_jsonl(out / "pretrain.jsonl")
    assert {r["steps"] for r in pre} == set(range(1, 17))
    sft = read_jsonl(out / "sft.jsonl", need=("prompt", "response", "answer"))
    assert len(sft) == 200
    lb = next(r for r in sft if r["style"] == "lookback")
    assert "==" in lb["response"]
    assert syn.main(["--example", "4"]) == 0
    assert "Q:" in capsys.readouterr().out
    assert syn.main(["--out", str(out), "--carry-share", "1.5"]) == 2
    assert "carry_share" in capsys.readouterr().err


# ------------------------------------------------------------ JSON-lines I/O

def test_read_jsonl_ok_and_blank_lines(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text('{"prompt": "p1", "answer": "1"}\n\n   \n{"prompt": "p\u00e9", "answer": "2"}\n',
                 encoding="utf-8")
    assert read_jsonl(p) == [{"prompt": "p1", "answer": "1"}, {"prompt": "p\u00e9", "answer": "2"}]


@pytest.mark.parametrize("content, expected", [
    ("", "empty file"),
    ("\n  \n", "empty file"),
    ('{"prompt": "a", "answer": "1"}\n\n{"prompt": "b", "answer": \n', ":3: malformed JSON"),
    ('{"prompt": "a", "answer": "1"}\n{"prompt": "b"}\n', ":2: missing field 'answer'"),
    ('{"prompt": "a", "answer": 1}\n', ":1: field 'answer' must be a string, got int"),
    ('["prompt"]\n', ":1: expected a JSON object"),
])
def test_read_jsonl_errors(tmp_path, content, expected):
    p = tmp_path / "bad.jsonl"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as e:
        read_jsonl(p)
    msg = str(e.value)
    assert str(p) in msg and expected in msg and "\n" not in msg


def test_read_jsonl_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_write_jsonl_atomic(tmp_path):
    p = tmp_path / "deep" / "er" / "out.jsonl"
    recs = [{"prompt": "x\ny", "answer": "\u221a2"}, {"prompt": "z", "answer": "3"}]
    assert write_jsonl(p, recs) == p
    assert read_jsonl(p) == recs
    assert p.read_text(encoding="utf-8").count("\n") == 2
    with pytest.raises(TypeError):  # not serialisable: old file kept, no temp left
        write_jsonl(p, [{"prompt": "a", "answer": "1"}, {"prompt": object()}])
    assert read_jsonl(p) == recs
    assert sorted(x.name for x in p.parent.iterdir()) == ["out.jsonl"]


# ------------------------------------------------------------ converters

def _write(tmp_path, name, rows):
    p = tmp_path / name
    p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows),
                 encoding="utf-8")
    return p


def test_gsm8k_converter(tmp_path):
    src = _write(tmp_path, "g.jsonl", [
        {"question": "Q1?", "answer": "He has 16 - 3 = <<16-3=13>>13 eggs.\nSo 13 * 2 = "
                                      "$<<13*2=26>>26.\n#### 26"},
        {"question": "Q2?", "answer": "80,000+50,000=$<<80000+50000=130000>>130,000\n"
                                      "#### 1,450,000"},
        {"question": "Q3?", "answer": "Lost <<5-15=-10>>10.\n#### -10"},
    ])
    assert convert.convert_records("gsm8k", src) == [
        {"prompt": "Q1?", "response": "He has 16 - 3 = 13 eggs.\nSo 13 * 2 = $26.\n#### 26",
         "answer": "26"},
        {"prompt": "Q2?", "response": "80,000+50,000=$130,000\n#### 1450000",
         "answer": "1450000"},
        {"prompt": "Q3?", "response": "Lost 10.\n#### -10", "answer": "-10"},
    ]


def test_math_converter(tmp_path):
    src = _write(tmp_path, "m.jsonl", [
        {"problem": "P1", "solution": "So $\\boxed{2}$.", "answer": "2", "level": 1},
        {"problem": "P2", "solution": "First \\boxed{1}, then $\\boxed{\\frac{1}{2}}$."},
        {"problem": "P3", "solution": "$\\boxed{\\left\\{ 1, 2 \\right.}$ and \\\\{x}"},
        {"problem": "P4", "answer": "70"},
    ])
    assert convert.convert_records("math", src) == [
        {"prompt": "P1", "response": "So $\\boxed{2}$.", "answer": "2"},
        {"prompt": "P2", "response": "First \\boxed{1}, then $\\boxed{\\frac{1}{2}}$.",
         "answer": "\\frac{1}{2}"},
        {"prompt": "P3", "response": "$\\boxed{\\left\\{ 1, 2 \\right.}$ and \\\\{x}",
         "answer": "\\left\\{ 1, 2 \\right."},
        {"prompt": "P4", "response": "", "answer": "70"},
    ]
    assert convert.solution_answer("no box") is None
    assert convert.solution_answer("\\boxed{(1,\\{2\\})}") == "(1,\\{2\\})"


def test_generic_converter(tmp_path):
    src = _write(tmp_path, "x.jsonl", [
        {"q": "A", "sol": "x\n#### 1,234", "gold": "7"},
        {"q": "B", "sol": "so\n#### 1,234\nend"},
        {"q": "C", "sol": "thus $\\boxed{\\sqrt{2}}$"},
        {"q": "D", "sol": "n", "gold": 5},
    ])
    out = convert.convert_records("generic", src, prompt_field="q", response_field="sol",
                                  answer_field="gold")
    assert [r["answer"] for r in out] == ["7", "1234", "\\sqrt{2}", "5"]
    assert out[1] == {"prompt": "B", "response": "so\n#### 1,234\nend", "answer": "1234"}
    dflt = _write(tmp_path, "d.jsonl", [{"prompt": "p", "response": "r #### 4"}])
    assert convert.convert_records("generic", dflt) == [
        {"prompt": "p", "response": "r #### 4", "answer": "4"}]


@pytest.mark.parametrize("kind, rows, expected", [
    ("gsm8k", [{"question": "a", "answer": "1\n#### 1"}, {"question": "b", "answer": "no"}],
     ":2: field 'answer' has no final '#### N' line"),
    ("gsm8k", [{"question": "a", "answer": "1\n#### 1"}, '{"question": "b", "answer"'],
     ":2: malformed JSON"),
    ("gsm8k", [{"question": "a", "answer": "#### "}], ":1: nothing after '####'"),
    ("gsm8k", [{"question": "a"}], ":1: missing field 'answer'"),
    ("math", [{"problem": "a", "solution": "s \\boxed{1}"}, {"problem": "b", "solution": "s"}],
     ":2: no field 'answer' and no \\boxed"),
    ("math", [{"problem": "a", "solution": "s \\boxed{1"}], ":1: the last \\boxed{ is never"),
    ("math", [{"problem": "a", "answer": 27.0}], ":1: field 'answer' must be a string"),
    ("math", [{"solution": "s", "answer": "1"}], ":1: missing field 'problem'"),
    ("generic", [{"prompt": "a", "response": "b"}], ":1: no field 'answer'"),
    ("generic", [{"prompt": "a", "response": 3, "answer": "1"}],
     ":1: field 'response' must be a string"),
])
def test_converter_errors_name_file_and_line(tmp_path, kind, rows, expected):
    src = _write(tmp_path, "in.jsonl", rows)
    with pytest.raises(ValueError) as e:
        convert.convert_records(kind, src)
    assert str(e.value).startswith(f"{src}:") and expected in str(e.value)


def test_convert_cli(tmp_path, capsys):
    src = _write(tmp_path, "in.jsonl", [{"question": "a", "answer": "x <<1+1=2>>2\n#### 2"}])
    dst = tmp_path / "out" / "o.jsonl"
    assert convert.main(["gsm8k", str(src), str(dst)]) == 0
    assert read_jsonl(dst, need=("prompt", "response", "answer")) == [
        {"prompt": "a", "response": "x 2\n#### 2", "answer": "2"}]
    bad = _write(tmp_path, "bad.jsonl", [{"prompt": "a", "response": "b"}])
    assert convert.main(["generic", str(bad), str(tmp_path / "o2.jsonl"),
                         "--answer-field", "gold"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1:" in err and err.count("\n") == 1
    assert not (tmp_path / "o2.jsonl").exists()


@needs_shared
def test_real_gsm8k_test():
    src = SHARED_DATA / "gsm8k" / "test.jsonl"
    recs = convert.convert_records("gsm8k", src)
    raw = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    assert len(recs) == len(raw) == 1319
    ref = re.compile(r"#### (\-?[0-9\.\,]+)")  # the GSM8K repository's own extraction
    for r, x in zip(recs, raw):
        assert r["answer"] and r["answer"] == ref.search(x["answer"]).group(1).replace(",", "")
        assert r["prompt"] == x["question"]
        assert "<<" not in r["response"] and ">>" not in r["response"]
        assert r["response"].endswith("\n#### " + r["answer"])


@needs_shared
def test_real_math500():
    src = SHARED_DATA / "math" / "test.jsonl"
    recs = convert.convert_records("math", src)
    raw = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    assert len(recs) == 500
    for r, x in zip(recs, raw):
        assert r["answer"] and r["answer"] == x["answer"]
        # the brace scan agrees with the dataset's own answer on every record
        assert convert.solution_answer(x["solution"]) == x["answer"]
    # without an answer field (full MATH test): every solution yields a boxed answer
    full = convert.convert_records("math", SHARED_DATA / "math" / "math_test5000.jsonl")
    assert len(full) == 5000 and all(r["answer"] for r in full)


def test_shipped_base_model_tokenizer_is_the_one_write_char_tokenizer_builds(tmp_path):
    """build_base_model.py rebuilds base_model/: its tokenizer files must not drift from the shipped ones."""
    from data.synthetic import write_char_tokenizer

    write_char_tokenizer(tmp_path)
    shipped = Path(__file__).resolve().parents[1] / "base_model"
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        assert (tmp_path / name).read_bytes() == (shipped / name).read_bytes(), name


# ------------------------------------------------------------ the entry point every stage reads through


def test_default_split_equals_the_full_generation():
    full = syn.in_memory_splits(**syn.DEFAULT_TASK["splits"])
    assert sorted(n for n in full if n.startswith("test_")) == [f"test_k{k}" for k in (10, 12, 14, 16, 4, 6, 8)]
    for name in ("sft", "val", "rl", "test_k4", "test_k8", "test_k12", "test_k6", "test_k16"):
        assert syn.default_split(name) == full[name], name
    assert syn.default_split("val_k8") == [r for r in full["val"] if r["steps"] == 8]
    with pytest.raises(ValueError, match="unknown synthetic split 'train'"):
        syn.default_split("train")


def test_load_split_names_where_each_record_came_from(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "answer": "1"}\n\n{"prompt": "b", "answer": "2"}\n')
    assert data_pkg.load_split(path, None) == [("line 1", {"prompt": "a", "answer": "1"}), ("line 3", {"prompt": "b", "answer": "2"})]
    synthetic = data_pkg.load_split(None, "test_k4")
    assert synthetic[0][0] == "#1" and [r for _, r in synthetic] == syn.default_split("test_k4")
    assert syn.is_synthetic([r for _, r in synthetic]) and not syn.is_synthetic([{"prompt": "a"}])


def test_epoch_iterator_resumes_exactly():
    def make_order(epoch):
        order = list(range(5))
        random.Random(epoch).shuffle(order)
        return order

    straight = data_pkg.EpochIterator(make_order)
    items = [next(straight) for _ in range(13)]  # crosses two epoch boundaries
    assert sorted(items[:5]) == sorted(items[5:10]) == list(range(5)) and items[:5] != items[5:10]
    cut = data_pkg.EpochIterator(make_order)
    first = [next(cut) for _ in range(5)]  # stop exactly at an epoch's end
    resumed = data_pkg.EpochIterator(make_order, cut.epoch, cut.pos)
    assert first + [next(resumed) for _ in range(8)] == items
    assert (resumed.epoch, resumed.pos) == (straight.epoch, straight.pos) == (2, 3)
