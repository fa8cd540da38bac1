"""
Time reward.math_reward on 10,000 synthetic but realistic completions: a few hundred characters
of GSM8K- or MATH-style reasoning, then a final answer as \\boxed{}, `#### X`, "The answer is X", an
`Answer:` label, an early box revised by a later "final answer is", or no trusted form at all, with
integers, thousands separators, decimals, fractions, surds, pi, tuples, intervals, polynomials and
text. About half are right (often in another form than the gold's), the rest are near misses.
Both modes are timed, and the slowest single call is reported.

    python benchmarks/bench_reward.py            # budget: under 2 s per mode on one CPU core

The grader's cache is cleared before each mode, and every completion is distinct, so nothing is free.
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
    shape = rng.randrange(8)
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
    if shape == 6:  # a polynomial, compared at the fixed points
        return f"x^2 + {2 * b}x + {b * b}", f"(x+{b})^2", f"(x+{b + 1})^2"
    return f"[{a}, {a + b})", f"[{a},{a + b})", f"[{a},{a + b}]"


def completion(rng, answer):
    text = "".join(rng.choice(STEPS).format(a=rng.randint(2, 99), b=rng.randint(2, 99), ab=rng.randint(100, 9999))
                   for _ in range(rng.randint(2, 4)))
    form = rng.randrange(6)
    if form == 0:
        return text + f"Therefore the answer is $\\boxed{{{answer}}}$."
    if form == 1:
        return text + f"\n#### {answer}"
    if form == 2:
        return text + f"The answer is {answer}."
    if form == 3:
        return text + f"\n\n**Final Answer:** ${answer}$"
    if form == 4:  # an early box, revised by the final statement
        return text + f"First I got $\\boxed{{{rng.randint(1, 99)}}}$, but rechecking: The final answer is ${answer}$."
    return text + f"So we end with {answer}"  # no trusted form: only flexible mode reads it


def run(cases, mode):
    reward._canonical.cache_clear()
    slowest, total = (0.0, ""), 0.0
    start = time.perf_counter()
    for c, g in cases:
        t = time.perf_counter()
        total += reward.math_reward(c, g, mode=mode)
        slowest = max(slowest, (time.perf_counter() - t, c[-80:]))
    return time.perf_counter() - start, total, slowest


def main():
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the budget says
    rng = random.Random(0)
    cases = []
    for _ in range(N):
        gold, right, wrong = gold_and_guess(rng)
        cases.append((completion(rng, right if rng.random() < 0.5 else wrong), gold))
    print(f"{N} completions (mean {sum(len(c) for c, _ in cases) / N:.0f} chars)")
    for mode in reward.MODES:
        elapsed, total, (worst, text) = run(cases, mode)
        print(f"{mode:8s}: mean reward {total / N:.3f}, graded in {elapsed:.3f} s: {N / elapsed:,.0f} completions/s, "
              f"{elapsed / N * 1e6:.1f} us each ({'within' if elapsed < BUDGET_S else 'OVER'} the {BUDGET_S:.0f} s budget)")
        print(f"          slowest call {worst * 1e3:.2f} ms: ...{text!r}")
    hostile = ["\\boxed{" * 10_000, "x" * 1_000_000, "{" * 10_000 + "}" * 10_000, "10^10^10", "\\boxed{10^{10^{10}}}",
               "word 1 " * 150_000 + "\\boxed{5}", "$" * 100_000, "\\[" * 50_000 + "5"]
    worst = (0.0, "")
    for h in hostile:
        start = time.perf_counter()
        reward.math_reward(h, "5", mode="flexible")
        worst = max(worst, (time.perf_counter() - start, h[:30]))
    print(f"hostile inputs (flexible mode): slowest {worst[0] * 1e3:.1f} ms on {worst[1]!r}...")


if __name__ == "__main__":
    main()
