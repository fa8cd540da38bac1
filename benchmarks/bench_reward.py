"""
Time reward.math_reward on 10,000 synthetic but realistic completions: a few hundred characters
of GSM8K- or MATH-style reasoning, then a final answer as \\boxed{}, `#### X` or "The answer is X",
with integers, thousands separators, decimals, fractions, surds, pi, tuples, intervals and text.
About half are right (often in another form than the gold's), the rest are near misses.

    python benchmarks/bench_reward.py            # budget: under 2 s on one CPU core

The grader's cache is cleared first, and every completion is distinct, so nothing is free.
"""
import os
import random
import sys
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import reward  # noqa: E402

N, BUDGET_S = 10_000, 2.0
STEPS = ["She buys {a} packs of {b} pencils, so she has {a} * {b} = <<{a}*{b}={ab}>>{ab} pencils. ",
         "Let $x$ be the number of apples. Then $x + {a} = {b}$, so $x = {b} - {a}$. ",
         "We have $\\frac{{{a}}}{{{b}}} + \\frac{{1}}{{{b}}} = \\frac{{{a}+1}}{{{b}}}$, which we simplify. ",
         "Squaring both sides gives $({a}x - {b})^2 = {ab}$, and since $x > 0$ we keep the positive root. ",
         "Each of the {a} rows has {b} seats, and {a} \\cdot {b} = {ab}. Subtracting the {b} empty seats... "]


def gold_and_guess(rng):
    """(gold field, a way of writing the right answer, a near miss), in one of the common shapes."""
    a, b = rng.randint(1, 999), rng.randint(2, 99)
    shape = rng.randrange(7)
    if shape == 0:  # GSM8K: the raw gold field, commas for thousands
        n = rng.randint(1, 2_000_000)
        return f"So the total is {n}.\n#### {n:,}", str(n), str(n + rng.choice([1, -1, 10]))
    if shape == 1:
        q = Fraction(a, b)
        return f"\\frac{{{q.numerator}}}{{{q.denominator}}}", f"{q.numerator}/{q.denominator}", f"\\frac{{{b}}}{{{a}}}"
    if shape == 2:
        return f"{a}\\sqrt{{{b}}}", f"\\sqrt{{{a * a * b}}}", f"{a}\\sqrt{{{b + 1}}}"
    if shape == 3:
        return f"\\frac{{{a}\\pi}}{{{b}}}", f"{a}\\pi/{b}", f"\\frac{{{a}}}{{{b}}}"
    if shape == 4:
        return f"\\left( {a}, -{b} \\right)", f"({a},-{b})", f"({a},{b})"
    if shape == 5:
        return f"{a}.{b:02d}", f"\\${a}.{b:02d}", f"{a}.{b + 1:02d}"
    return f"[{a}, {a + b})", f"[{a},{a + b})", f"[{a},{a + b}]"


def completion(rng, answer):
    text = "".join(rng.choice(STEPS).format(a=rng.randint(2, 99), b=rng.randint(2, 99), ab=rng.randint(100, 9999))
                   for _ in range(rng.randint(2, 4)))
    form = rng.randrange(3)
    if form == 0:
        return text + f"Therefore the answer is $\\boxed{{{answer}}}$."
    if form == 1:
        return text + f"\n#### {answer}"
    return text + f"The answer is {answer}."


def main():
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the budget says
    rng = random.Random(0)
    cases = []
    for _ in range(N):
        gold, right, wrong = gold_and_guess(rng)
        cases.append((completion(rng, right if rng.random() < 0.5 else wrong), gold))
    chars = sum(len(c) for c, _ in cases) / N
    reward._canonical.cache_clear()
    start = time.perf_counter()
    total = sum(reward.math_reward(c, g) for c, g in cases)
    elapsed = time.perf_counter() - start
    print(f"{N} completions (mean {chars:.0f} chars), mean reward {total / N:.3f}")
    print(f"graded in {elapsed:.3f} s: {N / elapsed:,.0f} completions/s, {elapsed / N * 1e6:.1f} us each "
          f"({'within' if elapsed < BUDGET_S else 'OVER'} the {BUDGET_S:.0f} s budget)")


if __name__ == "__main__":
    main()
