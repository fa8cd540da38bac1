r"""The synthetic task: chains of mod-10 arithmetic, solved in two styles.

Why: it is deterministic from a seed (every command has data, no downloads), and it lets
the SWARR effect be studied where we control it. A solution can be written so that each
step reads far back into the question ("look-back"), or so that each step needs only the
line before it ("carry-forward"). Under sliding-window attention the first breaks once its
look-back distance passes what the layer stack can relay; the second does not. See
``../shared/notes/synthetic-task-findings.md`` for the prototype this is built on.

Problem
-------
A start value ``s`` in 0..9 and ``k`` operations (``k`` = ``steps`` = the difficulty), each
``+a`` or ``-a`` (a in 1..9) or ``*m`` (m in 3, 7, 9), applied in order mod 10. Each kind
(+, -, *) is drawn with probability 1/3, then its operand uniformly. Every operation is a
bijection mod 10, so the answer is uniform over 0..9 (chance = 10%).

Text (character level; every character is in ``ALPHABET``)
----------------------------------------------------------
prompt (``2k + 6`` chars)::

    Q:7|-4*3+5-3;\n

The prompt ends in a newline, so ``prompt + response`` splits back at the first ``\n``,
and the response's first character is its style marker.

look-back response (marker ``L``); step ``i`` writes its index, ``pad`` filler characters
``=`` and the running value ``v_i``. It must read operation ``i`` from the question::

    L1:3;2:9;3:4;4:1;\n#### 1                  (pad = 0)
    L1:==3;2:==9;3:==4;4:==1;\n#### 1          (pad = 2)

carry-forward response (marker ``C``); line ``i`` is ``v_i|`` followed by the operations
still to apply and ``;`` (the question's ``7|-4*3+5-3;`` is line 0). Each line is computed
from the line before it alone: apply its first operation to its value, copy the rest::

    C3|*3+5-3;9|+5-3;4|-3;1|;\n#### 1

Both styles end in ``\n#### N`` with N the answer; the record's ``answer`` is ``str(N)``.

Lengths (k steps, d(j) = number of decimal digits of j, D(i) = d(1) + ... + d(i))
----------------------------------------------------------------------------------
- prompt:                 ``2k + 6``
- look-back response:     ``8 + (3 + pad)k + D(k)``; for k <= 9: ``(4 + pad)k + 8``;
  for 10 <= k <= 99: ``(5 + pad)k - 1``.
- carry-forward response: ``k^2 + 2k + 8`` (line i is ``2(k - i) + 3`` chars).

Dependency distances (positions in ``prompt + response``; distance = position of the
written character minus position of a character it is computed from)
-----------------------------------------------------------------------------------
- look-back, step i: from the value ``v_i`` back to the first character (the sign) of
  operation i in the question::

      lookback_distance(k, i, pad) = 2k + 3 + (1 + pad)i + D(i)
        k <= 9:        = 2k + (2 + pad)i + 3,   largest (i = k): (4 + pad)k + 3
        10 <= k <= 99: largest (i = k) = (5 + pad)k - 6

  (the operand digit is one character nearer). E.g. pad = 0: k = 8 -> 35, 12 -> 54,
  16 -> 74 characters; pad = 8: k = 16 -> 202.
- carry-forward: every character of line i is computed from line i - 1 only; the farthest
  read is ``v_1`` reading the start value ``s`` in the question: ``2k + 5``; for i >= 2,
  ``v_i`` reads ``v_{i-1}`` at ``2(k - i) + 5``; copied operations read ``2(k - i) + 3``
  back.
- the final ``N`` reads the last value 8 (look-back) or 9 (carry-forward) characters back.

``max_dependency(style, k, pad)`` is the maximum over all of these::

    carry:    max(2k + 5, 9)
    lookback: max(lookback_distance(k, k, pad), 2k + 7 + pad, 8)   (= the first term for k >= 2)

A model with window W computes a style exactly only if the distance fits in what its layers
can relay; the findings saw SFT under SWA relay about 1.5 W with 6 layers, so ``pad`` (or
larger k) is the knob that pushes look-back far past that while carry-forward stays at
``2k + 5``.

Splits
------
``in_memory_splits`` / ``make_splits`` / the CLI produce, from one seed:

- ``sft``      mixed styles (``carry_share`` carry-forward, default 0.1), difficulties
  ``steps`` balanced, the share exact per difficulty up to rounding;
- ``val``      the same mix, for SFT validation;
- ``rl``       difficulties ``rl_steps``; prompt + answer for GRPO (a look-back response is
  included anyway; RL itself has no style bias);
- ``test_k{k}`` for every k in ``test_steps``: ``n_test`` held-out problems (look-back
  response included), distinct within the file for k >= 4;
- ``pretrain`` (only with ``pretrain=True``): the base model's corpus, every difficulty
  1..max(all k), ``pretrain_carry_share`` (default 0.5) carry-forward.

Disjointness: for k >= 4 (``DISJOINT_MIN_K``) each problem (start, ops) is hashed
(blake2b, independent of the seed) into one of 16 buckets; bucket 0 is reserved for test
problems and bucket 1 for validation, and every other split draws only from buckets 2..15.
So test problems never occur in sft/val/rl/pretrain, for any seed. For k <= 3 the space
(10 * 21^k problems: 210, 4410, 92610) is small and no bucket is reserved: those test
problems may occur in training data.

Each split has its own random stream (seeded by ``(seed, split name)``), so changing one
split's size does not change the others.

CLI::

    python -m data.synthetic --out data/synthetic --seed 0 --steps 4,8,12,16 \
        --carry-share 0.1 --n-sft 20000 --n-val 512 --n-rl 4096 \
        --test-steps 4,8,12,16 --n-test 256 [--rl-steps 12,16 [--rl-weights 1,1]] [--pad 0] \
        [--pretrain --n-pretrain 50000 --pretrain-carry-share 0.5]
    python -m data.synthetic --example 4        # print one problem in both styles
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import sys
from pathlib import Path

MOD = 10
MULTIPLIERS = (3, 7, 9)
# 27 entries: each kind (+, -, *) has 9, so a uniform draw picks the kind with p = 1/3.
OP_TABLE = tuple(
    [f"+{a}" for a in range(1, 10)]
    + [f"-{a}" for a in range(1, 10)]
    + [f"*{m}" for m in MULTIPLIERS for _ in range(3)]
)
OPS = tuple(dict.fromkeys(OP_TABLE))  # the 21 distinct operations
MARKERS = {"lookback": "L", "carry": "C"}
STYLES = tuple(MARKERS)
PAD_CHAR = "="
ANSWER_PREFIX = "#### "
ALPHABET = "0123456789+-*|;:#= \nQLC"

# The task every command defaults to, and the window that makes it interesting for the shipped
# base model (6 layers): look-back distances at k = 4, 8, 12 are 27, 51, 81 characters (pad 2),
# i.e. inside W = 32, 1.6 W and 2.5 W past it, while carry-forward never reads further back than
# 2k + 5 = 29 < W. RL trains on the difficulties where look-back is out of the window's reach. The
# test sets add difficulties no stage trains on: between the trained ones (6, 10) and beyond them
# (14, 16; the base model was pretrained on k <= 12 only).
DEFAULT_TASK = {
    "window": 32,
    "splits": dict(seed=0, steps=(4, 8, 12), pad=2, carry_share=0.1, rl_steps=(8, 12), n_sft=20000, n_val=512, n_rl=4096,
                   test_steps=(4, 6, 8, 10, 12, 14, 16), n_test=256),
}

N_BUCKETS = 16
TEST_BUCKET = 0
VAL_BUCKET = 1
DISJOINT_MIN_K = 4


def write_char_tokenizer(path) -> None:
    """The shipped base model's tokenizer, as Hugging Face files in ``path``: <eos> = 0, then one
    token per character of ``ALPHABET`` (built with the tokenizers package, imported only here)."""
    import json

    from tokenizers import Tokenizer
    from tokenizers.decoders import Fuse
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Split

    tokenizer = Tokenizer(WordLevel({"<eos>": 0, **{c: i + 1 for i, c in enumerate(ALPHABET)}}, unk_token="<eos>"))
    tokenizer.pre_tokenizer = Split("", "isolated")  # every character on its own
    tokenizer.decoder = Fuse()  # and joined back without spaces
    tokenizer.add_special_tokens(["<eos>"])
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<eos>", "model_max_length": 1024}, indent=2))
    (path / "generation_config.json").write_text(json.dumps({"eos_token_id": 0}, indent=2))


def apply_op(value: int, op: str) -> int:
    """Apply one operation (``'+a'``, ``'-a'`` or ``'*m'``) to a value mod 10."""
    sign, a = op[0], int(op[1])
    if sign == "+":
        return (value + a) % MOD
    if sign == "-":
        return (value - a) % MOD
    if sign == "*":
        return (value * a) % MOD
    raise ValueError(f"bad operation {op!r}")


_APPLY = {op: tuple(apply_op(v, op) for v in range(MOD)) for op in OPS}


def running_values(problem: dict) -> list[int]:
    """``[v_1, ..., v_k]``: the value after each operation."""
    v, out = problem["start"], []
    for op in problem["ops"]:
        v = _APPLY[op][v]
        out.append(v)
    return out


def make_problem(rng: random.Random, k: int) -> dict:
    """A random problem with ``k`` steps: ``{"start", "ops", "answer"}``."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"steps must be a positive integer, got {k!r}")
    start = rng.randrange(MOD)
    ops = rng.choices(OP_TABLE, k=k)
    v = start
    for op in ops:
        v = _APPLY[op][v]
    return {"start": start, "ops": ops, "answer": v}


def render_prompt(problem: dict) -> str:
    """``Q:7|-4*3+5-3;`` + newline."""
    return f"Q:{problem['start']}|{''.join(problem['ops'])};\n"


def render_response(problem: dict, style: str, pad: int = 0) -> str:
    """The worked solution in ``style`` (``'lookback'`` or ``'carry'``); ``pad`` filler
    characters per look-back step (ignored by carry-forward)."""
    values = running_values(problem)
    final = f"\n{ANSWER_PREFIX}{problem['answer']}"
    if style == "lookback":
        fill = PAD_CHAR * pad
        return "L" + "".join(f"{i}:{fill}{v};" for i, v in enumerate(values, 1)) + final
    if style == "carry":
        ops = "".join(problem["ops"])
        return "C" + "".join(f"{v}|{ops[2 * i:]};" for i, v in enumerate(values, 1)) + final
    raise ValueError(f"unknown style {style!r} (lookback, carry)")


def problem_record(problem: dict, style: str, pad: int = 0) -> dict:
    return {
        "prompt": render_prompt(problem),
        "response": render_response(problem, style, pad),
        "answer": str(problem["answer"]),
        "steps": len(problem["ops"]),
        "style": style,
    }


BODIES = {"carry": re.compile(r"\d\|"), "lookback": re.compile(r"\d+:")}  # a first line "v|ops;" or a first step "i:"


def detect_style(response_text: str) -> str | None:
    """``'lookback'`` / ``'carry'``: the style a marked response (first non-space character
    ``L`` or ``C``) is written in. Its body decides, as a policy under RL can keep one marker and
    write the other style's lines (seen on the GPU: ``L`` then carry-forward lines); a body of
    neither form leaves the marker's style. No marker: None."""
    text = response_text.lstrip()
    if not text or text[0] not in "LC":
        return None
    for style, body in BODIES.items():
        if body.match(text, 1):
            return style
    return {"L": "lookback", "C": "carry"}[text[0]]


# ---------------------------------------------------------------- lengths and distances

def _digits_sum(i: int) -> int:
    """d(1) + ... + d(i), d(j) = number of decimal digits of j."""
    return sum(len(str(j)) for j in range(1, i + 1))


def lookback_distance(k: int, i: int, pad: int = 0) -> int:
    """Characters from look-back step i's value back to the sign of operation i in the
    question: ``2k + 3 + (1 + pad)i + D(i)``."""
    if not 1 <= i <= k:
        raise ValueError(f"step {i} outside 1..{k}")
    return 2 * k + 3 + (1 + pad) * i + _digits_sum(i)


def max_dependency(style: str, k: int, pad: int = 0) -> int:
    """Largest distance from a response character back to a character it is computed
    from (see the module docstring): carry ``max(2k+5, 9)``; look-back
    ``max(lookback_distance(k, k, pad), 2k + 7 + pad, 8)``."""
    if style == "carry":
        return max(2 * k + 5, 9)
    if style == "lookback":
        return max(lookback_distance(k, k, pad), 2 * k + 7 + pad, 8)
    raise ValueError(f"unknown style {style!r}")


# ---------------------------------------------------------------- splits

def problem_key(problem: dict) -> str:
    return f"{problem['start']}|{''.join(problem['ops'])}"


def problem_bucket(problem: dict) -> int:
    """Seed-independent hash bucket in 0..N_BUCKETS-1."""
    h = hashlib.blake2b(problem_key(problem).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") % N_BUCKETS


def pool_of(problem: dict) -> str:
    """``'test'``, ``'val'`` or ``'train'`` for k >= DISJOINT_MIN_K; ``'any'`` below."""
    if len(problem["ops"]) < DISJOINT_MIN_K:
        return "any"
    b = problem_bucket(problem)
    return "test" if b == TEST_BUCKET else "val" if b == VAL_BUCKET else "train"


def _sample(rng: random.Random, k: int, pool: str) -> dict:
    while True:
        p = make_problem(rng, k)
        if k < DISJOINT_MIN_K or pool_of(p) == pool:
            return p


def _rng(seed: int, name: str) -> random.Random:
    return random.Random(f"swarr-synthetic/{seed}/{name}")


def _apportion(n, weights):
    """n split in proportion to weights, largest remainders first (ties: the earlier entry); equal
    weights give n // len + 1 to the first n % len entries."""
    total = sum(weights)
    exact = [n * w / total for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda j: (-(exact[j] - counts[j]), j))
    for j in by_remainder[: n - sum(counts)]:
        counts[j] += 1
    return counts


def _mixed(rng, n, ks, carry_share, pool, pad, weights=None):
    """n records, difficulties ks in proportion to weights (default: balanced), round(n_k * carry_share) carry per k."""
    plan = []
    for k, n_k in zip(ks, _apportion(n, weights or [1] * len(ks))):
        n_carry = round(n_k * carry_share)
        plan += [(k, "carry")] * n_carry + [(k, "lookback")] * (n_k - n_carry)
    rng.shuffle(plan)
    return [problem_record(_sample(rng, k, pool), style, pad) for k, style in plan]


def _test_set(rng, k, n, pad):
    if k < DISJOINT_MIN_K:
        return [problem_record(_sample(rng, k, "test"), "lookback", pad) for _ in range(n)]
    seen, out = set(), []
    while len(out) < n:
        p = _sample(rng, k, "test")
        key = problem_key(p)
        if key not in seen:
            seen.add(key)
            out.append(problem_record(p, "lookback", pad))
    return out


def _number_list(value, name, kind, expected):
    """'4,8,12' or a sequence -> a tuple of `kind`; a ValueError naming the argument otherwise."""
    if isinstance(value, str):
        value = [s for s in value.replace(" ", "").split(",") if s]
    try:
        return tuple(kind(x) for x in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected {expected}, got {value!r}") from None


def _steps(value, name) -> tuple[int, ...]:
    ks = _number_list(value, name, int, "integers like 4,8,12")
    if not ks or min(ks) < 1:
        raise ValueError(f"{name}: expected positive integers, got {value!r}")
    return ks


def _weights(value, n) -> tuple[float, ...]:
    weights = _number_list(value, "rl_weights", float, "numbers like 1,4.5,4.5")
    if len(weights) != n or min(weights) < 0 or not sum(weights) > 0 or not all(w < float("inf") for w in weights):
        raise ValueError(f"rl_weights: expected {n} non-negative finite numbers (one per RL difficulty), not all 0, got {value!r}")
    return weights


def in_memory_splits(seed: int = 0, steps=(4, 8, 12, 16), carry_share: float = 0.1,
                     n_sft: int = 20000, n_val: int = 512, n_rl: int = 4096,
                     rl_steps=None, rl_weights=None, test_steps=None, n_test: int = 256, pad: int = 0,
                     pretrain: bool = False, n_pretrain: int = 50000,
                     pretrain_carry_share: float = 0.5) -> dict[str, list[dict]]:
    """All splits as ``{name: records}``: ``sft``, ``val``, ``rl``, ``test_k{k}`` for each
    k in ``test_steps`` (default ``steps``), and ``pretrain`` if ``pretrain``. ``rl_steps``
    defaults to ``steps``; ``rl_weights`` (one per ``rl_steps``, default equal) sets each
    difficulty's share of the RL prompts, e.g. ``rl_steps=(4, 8, 12), rl_weights=(1, 4.5, 4.5)``
    gives 10% easy k = 4 prompts. The same arguments give the same records (and ``make_splits``
    writes exactly these)."""
    steps = _steps(steps, "steps")
    rl_steps = steps if rl_steps is None else _steps(rl_steps, "rl_steps")
    test_steps = steps if test_steps is None else _steps(test_steps, "test_steps")
    if rl_weights is not None:
        rl_weights = _weights(rl_weights, len(rl_steps))
    for name, share in [("carry_share", carry_share),
                        ("pretrain_carry_share", pretrain_carry_share)]:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {share}")
    for name, n in [("n_sft", n_sft), ("n_val", n_val), ("n_rl", n_rl),
                    ("n_test", n_test), ("n_pretrain", n_pretrain), ("pad", pad)]:
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    splits = {
        "sft": _mixed(_rng(seed, "sft"), n_sft, steps, carry_share, "train", pad),
        "val": _mixed(_rng(seed, "val"), n_val, steps, carry_share, "val", pad),
        "rl": _mixed(_rng(seed, "rl"), n_rl, rl_steps, 0.0, "train", pad, rl_weights),
    }
    for k in dict.fromkeys(test_steps):
        splits[f"test_k{k}"] = _test_set(_rng(seed, f"test_k{k}"), k, n_test, pad)
    if pretrain:
        top = max(steps + rl_steps + test_steps)
        splits["pretrain"] = _mixed(_rng(seed, "pretrain"), n_pretrain,
                                    tuple(range(1, top + 1)), pretrain_carry_share,
                                    "train", pad)
    return splits


def default_split(name: str) -> list[dict]:
    """One split of ``DEFAULT_TASK``, exactly as ``in_memory_splits(**DEFAULT_TASK["splits"])``
    gives it, drawing only that split (each split has its own random stream): ``sft``, ``val``,
    ``rl``, ``test_k{k}``, or ``val_k{k}`` (the validation problems of difficulty k)."""
    task = DEFAULT_TASK["splits"]
    base, _, k = name.partition("_k")
    if base not in ("sft", "val", "rl", "test") or (base in ("sft", "rl") and k) or (base == "test" and not k):
        raise ValueError(f"unknown synthetic split {name!r} (sft, val, rl, test_k<k>, val_k<k>)")
    sizes = {f"n_{s}": task[f"n_{s}"] if s == base else 0 for s in ("sft", "val", "rl", "test")}
    splits = in_memory_splits(**{**task, **sizes})
    if base == "val" and k:
        return [r for r in splits["val"] if r["steps"] == int(k)]
    if name not in splits:
        raise ValueError(f"the default task has no split {name!r}")
    return splits[name]


def is_synthetic(records) -> bool:
    """Whether records are this task's: they carry their difficulty, or their prompts are ``Q:``."""
    return all("steps" in r or r["prompt"].startswith("Q:") for r in records)


def make_splits(seed: int = 0, out="data/synthetic", **kwargs) -> dict[str, Path]:
    """Write ``in_memory_splits(seed, **kwargs)`` to ``out/{name}.jsonl``; returns the
    paths by split name."""
    from . import write_jsonl

    out = Path(out)
    return {name: write_jsonl(out / f"{name}.jsonl", recs)
            for name, recs in in_memory_splits(seed, **kwargs).items()}


def _example(k: int, pad: int, seed: int) -> str:
    p = make_problem(random.Random(seed), k)
    lines = [f"problem: start={p['start']} ops={' '.join(p['ops'])} answer={p['answer']}"]
    for style in STYLES:
        rec = problem_record(p, style, pad)
        lines.append(f"--- {style}: prompt {len(rec['prompt'])} chars, response "
                     f"{len(rec['response'])} chars, max dependency "
                     f"{max_dependency(style, k, pad)}")
        lines.append(rec["prompt"] + rec["response"])
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data.synthetic",
                                 description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data/synthetic", help="output folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", default="4,8,12,16", help="SFT/val difficulties k")
    ap.add_argument("--carry-share", type=float, default=0.1,
                    help="share of carry-forward solutions in sft/val")
    ap.add_argument("--n-sft", type=int, default=20000)
    ap.add_argument("--n-val", type=int, default=512)
    ap.add_argument("--n-rl", type=int, default=4096)
    ap.add_argument("--rl-steps", default=None, help="RL difficulties (default: --steps)")
    ap.add_argument("--rl-weights", default=None, help="their shares of the RL prompts, e.g. 1,4.5,4.5 (default: equal)")
    ap.add_argument("--test-steps", default=None,
                    help="held-out test difficulties, one file each (default: --steps)")
    ap.add_argument("--n-test", type=int, default=256, help="problems per test file")
    ap.add_argument("--pad", type=int, default=0,
                    help="filler characters per look-back step (longer look-back)")
    ap.add_argument("--pretrain", action="store_true",
                    help="also write pretrain.jsonl (base-model corpus, all k 1..max)")
    ap.add_argument("--n-pretrain", type=int, default=50000)
    ap.add_argument("--pretrain-carry-share", type=float, default=0.5)
    ap.add_argument("--example", type=int, metavar="K", default=None,
                    help="print one K-step problem in both styles and exit")
    args = ap.parse_args(argv)
    try:
        if args.example is not None:
            print(_example(args.example, args.pad, args.seed))
            return 0
        paths = make_splits(
            args.seed, args.out, steps=args.steps, carry_share=args.carry_share,
            n_sft=args.n_sft, n_val=args.n_val, n_rl=args.n_rl, rl_steps=args.rl_steps, rl_weights=args.rl_weights,
            test_steps=args.test_steps, n_test=args.n_test, pad=args.pad,
            pretrain=args.pretrain, n_pretrain=args.n_pretrain,
            pretrain_carry_share=args.pretrain_carry_share)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, path in paths.items():
        with open(path, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        print(f"{path}: {n} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
