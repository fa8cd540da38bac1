"""Tests for reward.py: hand-checked cases in the spirit of the public graders (Hendrycks MATH
is_equiv, Minerva normalisation, the Qwen2.5-Math grader, Math-Verify, lm-evaluation-harness
GSM8K extraction), adversarial inputs under a time bound, and every gold answer of the real
GSM8K / MATH test sets in ../shared/data (skipped only where that folder is absent)."""
import json
import random
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from reward import extract_answer, is_equiv, math_reward, normalize, parse_gold  # noqa: E402

DATA = ROOT.parent / "shared" / "data"

# -----------------------------------------------------------------------------
# equivalence: (pred, gold) pairs that must match

EQUIVALENT = [
    # integers, thousands separators, signs, leading zeros (AIME golds are "025"), float golds (AMC "27.0")
    ("72", "72"), ("1,000", "1000"), ("1000", "1,000"), ("1,450,000", "1450000"), ("-3", "-3"),
    ("+5", "5"), ("025", "25"), ("27.0", "27"), ("0", "0.0"), ("-0", "0"), ("−3", "-3"),
    ("-1,000", "-1000"), ("1{,}000", "1000"), ("1\\,000", "1000"),
    ("10,\\!080", "10080"), ("\\$32,\\!348", "32348"), ("11,\\! 111,\\! 111,\\! 100", "11111111100"),
    # decimals and fractions
    ("0.50", ".5"), ("0.5", "1/2"), (".5", "\\frac{1}{2}"), ("3/4", "\\frac{3}{4}"), ("\\dfrac34", "0.75"),
    ("\\tfrac{3}{4}", "3/4"), ("\\frac34", "\\frac{3}{4}"), ("\\frac 34", "3/4"), ("\\frac9{19}", "9/19"),
    ("\\frac{270}7", "270/7"), ("1/2", "2/4"), ("\\frac{6}{8}", "\\frac{3}{4}"), ("-\\frac{24}{25}", "-0.96"),
    (".0000672", "6.72e-5"), ("\\dfrac{17}{50}", "0.34"), ("1.25", "\\frac{5}{4}"), ("4.5", "9/2"),
    # negative fractions, however the sign is written
    ("-\\frac{1}{2}", "\\frac{-1}{2}"), ("\\frac{1}{-2}", "-0.5"), ("-1/2", "\\frac{-1}{2}"), ("- \\frac12", "-0.5"),
    # mixed numbers
    ("1\\frac{1}{2}", "3/2"), ("2 1/2", "5/2"), ("137 \\frac{1}{2}", "137.5"), ("-1\\frac{1}{2}", "-1.5"),
    ("1\\frac{4}{5}", "\\frac{9}{5}"), ("3\\frac12", "3.5"),
    # percentages: a percent sign on one side matches the number or the number / 100
    ("25\\%", "25"), ("25%", "0.25"), ("0.25", "25\\%"), ("25\\%", "25%"), ("12.5\\%", "0.125"),
    ("10", "10\\%"), ("50 percent", "50\\%"), ("\\frac{1}{4}", "25\\%"),
    # currency and units
    ("\\$18", "18"), ("18 dollars", "18"), ("$18.00", "18"), ("\\$18.90", "18.9"), ("5\\text{ cm}", "5"),
    ("5 cm", "5\\text{ cm}"), ("15\\mbox{ cm}^2", "15"), ("864 \\mbox{ inches}^2", "864"),
    ("5.4 \\text{ cents}", "5.4"), ("5\\;\\text{cm}", "5"), ("18 square feet", "18"), ("£18", "18"),
    # degrees (no degree/radian conversion)
    ("90^\\circ", "90"), ("90^{\\circ}", "90"), ("90°", "90"), ("90 degrees", "90^\\circ"),
    ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}"),
    # scientific notation and powers
    ("1.5e3", "1500"), ("1.5 \\times 10^{3}", "1500"), ("1.5\\cdot10^3", "1.5e3"), ("2.5E-2", "0.025"),
    ("1.0e2", "100"), ("10^{3}", "1000"), ("2^{10}", "1024"), ("10^{-2}", "0.01"), ("3 \\times 10^6", "3,000,000"),
    # square roots and pi, compared structurally
    ("\\sqrt{2}", "\\sqrt2"), ("\\sqrt 2", "\\sqrt{2}"), ("2\\sqrt{3}", "\\sqrt{12}"), ("\\sqrt{8}", "2\\sqrt2"),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}"), ("\\frac{3\\sqrt{3}}{4}", "\\frac{3}{4}\\sqrt{3}"),
    ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}"), ("\\sqrt{\\frac{1}{4}}", "1/2"), ("(\\sqrt{2})^2", "2"),
    ("\\sqrt{2}\\sqrt{3}", "\\sqrt6"), ("\\sqrt{50}", "5\\sqrt2"), ("\\sqrt{72}", "6\\sqrt{2}"), ("\\sqrt{300}", "10\\sqrt3"), ("sqrt(2)", "\\sqrt{2}"), ("√2", "\\sqrt{2}"), ("-\\sqrt{3}", "-1\\sqrt{3}"),
    ("2\\pi", "2 \\pi"), ("\\frac{\\pi}{2}", "\\pi/2"), ("\\frac{\\pi}{2}", "0.5\\pi"), ("-\\frac{\\pi}{6}", "-\\pi/6"),
    ("12\\pi", "12 \\pi"), ("288 \\pi", "288\\pi"), ("18+2\\pi", "2\\pi+18"), ("11 \\sqrt{5} + 11", "11+11\\sqrt5"),
    ("\\frac{20000}{\\pi}", "20000/\\pi"), ("\\frac{\\pi^2}{8}", "\\pi^2/8"), ("1+2\\sqrt{3}", "2\\sqrt{3}+1"),
    ("\\pi", "π"), ("2pi", "2\\pi"), ("\\frac{2\\pi}{3}", "2\\frac{\\pi}{3}"),
    # approximations within rel_tol=1e-4 of a non-integer
    ("\\sqrt{2}", "1.41421"), ("\\pi", "3.14159"), ("\\frac{1}{3}", "0.333333"), ("3.14159", "\\pi"),
    ("2\\sqrt{3}", "3.4641"), ("\\frac{2}{3}", "0.6667"), ("\\frac{1}{7}", "0.142857"), ("\\frac{\\pi}{4}", "0.7854"),
    # LaTeX wrappers and spacing
    ("\\boxed{5}", "5"), ("$\\frac{1}{2}$", "1/2"), ("\\(5\\)", "5"), ("5.", "5"), ("\\displaystyle\\frac{1}{2}", "1/2"),
    ("\\textbf{42}", "42"), ("\\mathrm{42}", "42"), ("~5~", "5"), ("\\ 7", "7"), ("\\!12", "12"),
    ("\\left(\\frac{3}{5},\\frac{8}{3}\\right]", "(0.6, 8/3]"), ("\\fbox{9}", "9"),
    # tuples and intervals (ordered; bracket types matter)
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)"), ("(1, 2)", "(1,2)"), ("[0,1)", "[0, 1)"),
    ("(-\\infty, 0]", "(-\\infty,0]"), ("(2,\\infty)", "(2, \\infty)"), ("(0.5, -13)", "\\left( \\frac{1}{2}, -13 \\right)"),
    ("(-\\infty, 2) \\cup (3, \\infty)", "(3,\\infty)\\cup(-\\infty,2)"), ("x \\in [-2,7]", "[-2,7]"),
    ("(a,b) = (3,4)", "(3,4)"), ("(1,-16,-4,43)", "(1, -16, -4, 43)"),
    # sets and bare lists (unordered)
    ("\\{1,2\\}", "\\{2,1\\}"), ("1, -2", "-2, 1"), ("3, 5, 7", "7,5,3"), ("\\left\\{1,2\\right\\}", "\\{1,2\\}"),
    ("\\{1\\pm\\sqrt{5},-2\\}", "-2, 1+\\sqrt5, 1-\\sqrt5"), ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}"),
    ("3 \\pm 2 \\sqrt{2}", "3-2\\sqrt2,3+2\\sqrt2"), ("x = 1, x = 2", "2, 1"), ("1, 000", "0, 1"), ("1, 2", "\\{1, 2\\}"),
    # matrices
    ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}"),
    ("\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", "\\begin{pmatrix} 0.2 \\\\ -3.6 \\end{pmatrix}"),
    ("\\begin{bmatrix} \\frac12 \\\\ 2 \\end{bmatrix}", "\\begin{bmatrix} 0.5 \\\\ 2 \\end{bmatrix}"),
    # text answers: \text{}, case, spaces, trailing period, multiple-choice letters
    ("\\text{Evelyn}", "Evelyn"), ("\\text{east}", "East"), ("\\text{even}", "even."), ("\\text{(C)}", "C"),
    ("(C)", "\\text{(C)}"), ("  ellipse ", "\\text{ellipse}"), ("\\textbf{Navin}", "navin"),
    # a single-variable prefix
    ("x = 5", "5"), ("x=5", "5"), ("y = 2x + 3", "2x+3"), ("k = \\frac{1}{2}", "0.5"), ("x_1 = 3", "3"),
    ("\\theta = \\frac{\\pi}{4}", "\\pi/4"),
    # infinity
    ("\\infty", "\\infty"), ("-\\infty", "-\\infty"), ("∞", "\\infty"),
    # formulas compared as cleaned text
    ("52_8", "52_{8}"), ("x^3+3x-6", "x^{3} + 3x - 6"), ("6 - 5i", "6-5i"), ("2k+2", "2k + 2"),
    ("\\cot x", "\\cot x"), ("5x - 7y + 11z + 4 = 0", "5x-7y+11z+4=0"), ("p - q", "p-q"),
]

NOT_EQUIVALENT = [
    ("1/2", "2"), ("0.5", "5"), ("-3", "3"), ("12", "120"), ("\\frac{1}{2}", "\\frac{2}{1}"), ("12345", "12346"),
    ("1000", "1,001"), ("4.5", "45"), ("-10", "10"), ("2,125", "2.125"), ("\\frac{3}{4}", "\\frac{4}{3}"),
    ("-\\frac{1}{2}", "\\frac{1}{2}"), ("\\frac{-1}{2}", "0.5"), ("1.5e3", "150"), ("10^{3}", "30"),
    ("0.0000672", "0.0000673"), ("1e-10", "0"), ("100", "100.5"), ("999.50", "999.51"), ("1.0001", "1"),
    ("0.1", "0.10001"), ("\\frac{7}{8}", "0.87501"), ("\\frac{1}{3}", "0.333"), ("\\pi", "3.14"),
    ("\\sqrt{2}", "1.41"), ("\\sqrt{2}", "2"), ("\\sqrt{2}", "\\sqrt{3}"), ("2\\sqrt{3}", "3\\sqrt{2}"), ("2\\pi", "2"),
    ("\\frac{\\pi}{2}", "\\frac{2}{\\pi}"), ("90^\\circ", "\\frac{\\pi}{2}"),
    ("25", "0.25"), ("25\\%", "2.5"), ("25\\%", "0.25\\%"), ("\\$18", "1.8"),
    ("1\\frac{1}{2}", "1/2"), ("2 1/2", "1"), ("1\\frac{1}{2}", "2"),
    ("(1, 2)", "(2, 1)"), ("[0,1)", "[0,1]"), ("(0,1)", "[0,1]"), ("(1,2)", "\\{1,2\\}"), ("\\{1,2\\}", "\\{1,2,3\\}"),
    ("1, 2", "1, 2, 3"), ("3, 5, 7", "(3, 5, 7)"), ("(-\\infty, 0]", "(-\\infty, 0)"), ("\\infty", "-\\infty"),
    ("(0,9) \\cup (9,36)", "(0,36)"), ("(1,000)", "1000"), ("1, 000", "1000"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}"),
    ("\\text{east}", "\\text{west}"), ("\\text{(B)}", "C"), ("x = 5", "6"), ("6 - 5i", "6+5i"),
    ("x^3+3x-6", "x^3+3x+6"), ("2k", "2"), ("52_8", "52"), ("1,000", "1"), ("5", ""), ("", ""),
    ("0", "\\infty"), ("12", "twelve"),
]


@pytest.mark.parametrize("pred,gold", EQUIVALENT)
def test_equivalent(pred, gold):
    assert is_equiv(pred, gold), (normalize(pred), normalize(gold))
    assert is_equiv(gold, pred)


@pytest.mark.parametrize("pred,gold", NOT_EQUIVALENT)
def test_not_equivalent(pred, gold):
    assert not is_equiv(pred, gold), (normalize(pred), normalize(gold))
    assert not is_equiv(gold, pred)


# -----------------------------------------------------------------------------
# extraction

EXTRACTION = [
    # (text, allow_last_number, expected)
    ("So the answer is \\boxed{72}.", False, "72"),
    ("\\boxed{1} then, on reflection, \\boxed{2}", False, "2"),
    ("$\\boxed{\\frac{1}{2}}$", False, "\\frac{1}{2}"),
    ("\\boxed{\\{1,2\\}}", False, "\\{1,2\\}"),
    ("are $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}.$", False, "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("\\boxed{\\frac{\\sqrt{3}}{\\sqrt{2}}}", False, "\\frac{\\sqrt{3}}{\\sqrt{2}}"),
    ("\\fbox{7}", False, "7"),
    ("so $\\boxed 5$.", False, "5"),
    ("\\boxed {5}", False, "5"),
    ("\\boxed{a{b}c}", False, "a{b}c"),
    ("\\boxed{5", False, None),
    ("\\boxed{5 and then #### 3", False, "3"),
    ("\\boxed{}", False, None),
    ("\\boxed{} The answer is 3", False, "3"),
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", False, "72"),
    ("#### 5\n#### 6", False, "6"),
    ("#### 1,000", False, "1,000"),
    ("#### 72\nExtra text after", False, "72"),
    ("####", False, None),
    ("The answer is 42.", False, "42"),
    ("the final answer is $\\frac{1}{2}$. I hope it is correct.", False, "\\frac{1}{2}"),
    ("Final Answer: The final answer is $6$. I hope it is correct.", False, "6"),
    ("The final answer is $\\$36$. I hope it is correct.", False, "\\$36"),
    ("THE ANSWER IS 7", False, "7"),
    ("The answer is 3.5.", False, "3.5"),
    ("The answer is: 12", False, "12"),
    ("The answer is **9**.", False, "9"),
    ("The answer is 5. Wait, no: the answer is 6.", False, "6"),
    ("The answer is 18 dollars.", False, "18 dollars"),
    ("The answer is \\(\\frac{3}{4}\\).", False, "\\frac{3}{4}"),
    ("I think 5 apples and 7 pears", False, None),
    ("I think 5 apples and 7 pears", True, "7"),
    ("It costs $1,000 in total.", True, "1,000"),
    ("so x = -3.", True, "-3"),
    ("0.5 of them", True, "0.5"),
    ("half is 1/2", True, "1/2"),
    ("the points (1,2)", True, "2"),
    ("", True, None),
    ("no numbers here", True, None),
    # the trusted form that comes LAST wins, whichever it is (issue 16: these three asserted a fixed
    # box > #### > "answer is" priority, which let an early box beat the response's final statement)
    ("The answer is \\boxed{4} but the answer is 5", False, "5"),
    ("\\boxed{5}\n#### 6", False, "6"),
    ("#### 6\nThe answer is 5", False, "5"),
    ("Sum is 12, times 10 is \\boxed{120}", False, "120"),
    ("\\boxed{\\boxed{8}}", False, "8"),
]


@pytest.mark.parametrize("text,allow,expected", EXTRACTION)
def test_extract_answer(text, allow, expected):
    assert extract_answer(text, allow_last_number=allow) == expected


def test_extract_answer_non_string():
    assert extract_answer(None) is None
    assert extract_answer(None, allow_last_number=True) is None


# -----------------------------------------------------------------------------
# normal forms (majority voting keys)

NORMAL_FORMS = [
    ("72", "72"), ("1,000", "1000"), ("0.50", "1/2"), ("-3", "-3"), ("\\frac{3}{4}", "3/4"), ("\\dfrac{6}{8}", "3/4"),
    ("25\\%", "25"), ("\\$18.00", "18"), ("2\\sqrt{3}", "2*sqrt(3)"), ("\\sqrt{12}", "2*sqrt(3)"),
    ("\\frac{\\pi}{2}", "1/2*pi"), ("-\\infty", "-oo"), ("(1, 2)", "(1,2)"), ("\\{2,1\\}", "{1,2}"),
    ("\\text{Evelyn}", "evelyn"), ("x = 5", "5"), ("1.5e3", "1500"), ("1\\frac{1}{2}", "3/2"), ("[0,1)", "[0,1)"),
    ("1+2\\sqrt{3}", "1+2*sqrt(3)"), ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "[[1],[2]]"),
    ("(-\\infty, 2) \\cup (3, \\infty)", "(-oo,2) U (3,oo)"), ("\\text{(C)}", "c"), ("52_{8}", "52_8"),
    ("", ""), (None, ""), ("-\\frac{\\pi}{6}", "-1/6*pi"),
]


@pytest.mark.parametrize("answer,expected", NORMAL_FORMS)
def test_normalize(answer, expected):
    assert normalize(answer) == expected


# -----------------------------------------------------------------------------
# gold parsing and the reward

GSM8K_GOLD = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72"
MATH_GOLD = "So $x = \\frac{2}{4}$, which simplifies to $\\boxed{\\frac{1}{2}}$."

GOLDS = [
    (GSM8K_GOLD, "72"), ("#### 1,450,000", "1,450,000"), (MATH_GOLD, "\\frac{1}{2}"), ("\\frac{1}{2}", "\\frac{1}{2}"),
    ("  72  ", "72"), (27.0, "27.0"), (25, "25"), ("", None), (None, None), ("\\boxed{}", None), ("\\boxed{5", None),
]


@pytest.mark.parametrize("text,expected", GOLDS)
def test_parse_gold(text, expected):
    assert parse_gold(text) == expected


REWARDS = [
    # (completion, gold, format_weight, expected)
    ("48/2 = 24, 48+24 = 72. \\boxed{72}", GSM8K_GOLD, 0.0, 1.0),
    ("\\boxed{71}", "72", 0.0, 0.0),
    ("The answer is 72.", "72", 0.0, 1.0),
    ("#### 72", GSM8K_GOLD, 0.0, 1.0),
    ("I got 72", "72", 0.0, 0.0),                       # a bare number is not a trusted answer
    ("\\boxed{72}", "\\boxed{72}", 0.0, 1.0),
    ("\\boxed{\\frac12}", MATH_GOLD, 0.0, 1.0),
    ("\\boxed{0.5}", MATH_GOLD, 0.0, 1.0),
    ("72 is what I got first. \\boxed{70}", "72", 0.0, 0.0),  # the right answer outside a wrong box
    ("First 12, then \\boxed{120}", "12", 0.0, 0.0),
    ("\\boxed{71}", "72", 0.1, 0.1),
    ("\\boxed{72}", "72", 0.1, 1.0),
    ("I got 72", "72", 0.1, 0.0),
    ("", "72", 0.0, 0.0),
    ("\\boxed{72}", None, 0.0, 0.0),
    ("\\boxed{72}", "", 0.0, 0.0),
    ("\\boxed{27}", 27.0, 0.0, 1.0),                    # AMC golds are floats
    ("\\boxed{25}", "025", 0.0, 1.0),                   # AIME golds are zero-padded
]


@pytest.mark.parametrize("completion,gold,weight,expected", REWARDS)
def test_math_reward(completion, gold, weight, expected):
    assert math_reward(completion, gold, format_weight=weight) == pytest.approx(expected)


def test_format_weight_range():
    with pytest.raises(ValueError):
        math_reward("\\boxed{1}", "1", format_weight=1.5)


# -----------------------------------------------------------------------------
# properties over all the hand-checked pairs

ALL_PAIRS = EQUIVALENT + NOT_EQUIVALENT


def test_equal_normal_forms_are_equivalent():
    for a, b in ALL_PAIRS:
        if normalize(a) and normalize(a) == normalize(b):
            assert is_equiv(a, b), (a, b)


def test_reflexive():
    for answer in {x for pair in ALL_PAIRS for x in pair if x}:
        assert is_equiv(answer, answer), answer


def test_normalize_is_idempotent_on_numbers():
    for answer in ["72", "0.50", "\\frac{3}{4}", "2\\sqrt{3}", "\\frac{3\\sqrt{3}}{4}", "\\frac{\\pi}{2}",
                   "\\pi^2/8", "1+2\\sqrt{3}", "-\\frac{1}{2}", "\\frac{20000}{\\pi}", "(1, 2)", "\\{2,1\\}"]:
        assert normalize(normalize(answer)) == normalize(answer), answer


def test_generated_equivalent_forms():
    """Property: every way of writing a value normalises alike, and is_equiv agrees."""
    rng = random.Random(1)
    for n in range(1, 2001):  # \sqrt{n} = a\sqrt{b}, b squarefree (found here by brute force)
        a = max(k for k in range(1, int(n ** 0.5) + 1) if n % (k * k) == 0)
        b = n // (a * a)
        simplified = str(a) if b == 1 else f"{a}\\sqrt{{{b}}}"
        assert normalize(f"\\sqrt{{{n}}}") == normalize(simplified) and is_equiv(f"sqrt({n})", simplified), n
    for _ in range(500):
        p, q = rng.randint(-999, 999), rng.randint(1, 999)
        forms = [f"\\frac{{{p}}}{{{q}}}", f"{p}/{q}", f"\\dfrac{{{p * 3}}}{{{q * 3}}}", f"\\frac{{{-p}}}{{{-q}}}"]
        if p < 0:
            forms.append(f"-\\frac{{{-p}}}{{{q}}}")
        if _only_twos_and_fives(q):  # a finite decimal: write it out too
            forms.append(str(Decimal(p) / Decimal(q)))
        for form in forms:
            assert normalize(form) == normalize(forms[0]) and is_equiv(form, forms[0]), (form, forms[0])
    for _ in range(300):
        n = rng.randint(1000, 10 ** 9)
        assert is_equiv(f"{n:,}", str(n)) and normalize(f"{n:,}") == str(n)
        assert not is_equiv(f"{n:,}", str(n + 1))


def _only_twos_and_fives(q):
    for p in (2, 5):
        while q % p == 0:
            q //= p
    return q == 1


def test_percent_rule_is_not_transitive():
    assert is_equiv("25\\%", "25") and is_equiv("25\\%", "0.25") and not is_equiv("25", "0.25")


def test_rel_tol():
    assert not is_equiv("1.414", "\\sqrt{2}")               # 1.5e-4 relative: outside 1e-4
    assert is_equiv("1.414", "\\sqrt{2}", rel_tol=1e-3)
    assert is_equiv("0.33", "\\frac{1}{3}", rel_tol=0.02)
    assert not is_equiv("1001", "1000", rel_tol=1e-2)       # finite decimals are compared exactly
    assert not is_equiv("1.001", "1", rel_tol=1e-2)


def test_cli():
    out = subprocess.run([sys.executable, str(ROOT / "reward.py"), "so \\boxed{\\frac{1}{2}}", "#### 0.5"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "\\frac{1}{2}" in out.stdout and "1/2" in out.stdout and "True" in out.stdout and "1.0" in out.stdout


# -----------------------------------------------------------------------------
# adversarial input: a result in bounded time, never an exception

BIG = "1" * 100_000
ADVERSARIAL = [
    "", " ", "\\", "{", "}", "$", "####", "\\boxed", "\\boxed{", "\\boxed}", "\\frac", "\\sqrt", "^", "/", "1/0",
    "\\frac{1}{0}", "0^{-1}", "\\sqrt{-4}", "(", ")", "\\left(", "\\{", "\\}", "\\infty - \\infty", "\\infty^2",
    "\\boxed{" * 10_000,
    "{" * 100_000 + "}" * 99_999,
    "\\" * 100_000,
    "\\boxed{" + BIG + "}",
    "1e999999999", "1.5e99999", "10^{99999999}", "2^{2^{2^{2^{2^{10}}}}}", "\\pi^{100000}", "0^{0}",
    "9" * 5000 + "e" + "9" * 5000,
    "(" * 5000 + "1" + ")" * 5000,
    "\\frac" * 10_000 + "12",
    "\\sqrt{" * 3000 + "2" + "}" * 3000,
    "-" * 10_000 + "5",
    "a" * 1_000_000,
    "word 1 " * 150_000 + "\\boxed{5}",
    "#" * 100_000,
    "the answer is " * 50_000,
    "\\sqrt{999999999999999999999}",
    ",".join(["999"] * 30_000),
    "1," * 50_000,
    "\\text{" * 5000,
    "0." + "0" * 5000 + "1",
    "\\left(" * 3000,
    "\\begin{pmatrix}" * 1000,
    "\\cup".join(["(1,2)"] * 2000),
    ", ".join(str(i) for i in range(300)),
    "x = " * 1000 + "5",
    "\\pm" * 1000,
    "1\\frac{" + "9" * 2000 + "}{" + "9" * 2001 + "}",
    "\\$" * 10_000,
    "%" * 10_000,
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=lambda t: repr(t[:20]) + f"...{len(t)}")
def test_adversarial_is_bounded(text):
    start = time.perf_counter()
    for allow in (False, True):
        extract_answer(text, allow_last_number=allow)
    normalize(text)
    is_equiv(text, "1")
    is_equiv(text, text)
    parse_gold(text)
    assert math_reward(text, "5") in (0.0, 1.0)
    assert time.perf_counter() - start < 1.0


REPEATED = [" ", "\t", "\n", "^ ", "the ", "1", "1,", ",000", "\\", "{", "}", "\\text{", "\\!", "x = ", "$", "%",
            "e", "(", ")", "\\boxed{", "\\boxed ", "#", "the answer is ", ". ", "-", ".", "\\frac", "\\sqrt{", "&",
            "\\\\", "\\cup", "\\pm", "percent ", "\\left(", "^\\circ", "_", "1/", "1e", "$$", "\\$", "cm ",
            "1, ", "\\{", "{,}", ",\\!", "#### ", "\\begin{pmatrix}", "9e9", "^{", "\\pi", "2\\sqrt2"]


@pytest.mark.parametrize("unit", REPEATED)
def test_repeated_token_is_bounded(unit):
    """One token repeated to 50,000 characters, bare, boxed and after "the answer is": a regex
    that backtracks would take minutes here."""
    for wrap in ("{}", "\\boxed{{{}}}", "The answer is {}", "{}1"):
        text = wrap.format(unit * (50_000 // len(unit)))
        start = time.perf_counter()
        extract_answer(text, allow_last_number=True)
        normalize(text)
        is_equiv(text, "1")
        math_reward(text, text)
        assert time.perf_counter() - start < 1.0, wrap


def test_giant_numbers_compare_as_strings():
    assert is_equiv(BIG, BIG) and not is_equiv(BIG, BIG[:-1]) and not is_equiv(BIG, "1")
    assert math_reward("\\boxed{" + BIG + "}", BIG) == 1.0
    assert math_reward("word 1 " * 150_000 + "\\boxed{5}", "5") == 1.0
    assert not is_equiv("1e999999999", "1") and not is_equiv("10^{99999999}", "10")


def test_fuzz_never_raises():
    rng = random.Random(0)
    atoms = ["\\frac", "\\sqrt", "\\pi", "\\infty", "\\boxed", "\\text", "\\left", "\\right", "\\{", "\\}", "{", "}",
             "(", ")", "[", "]", "^", "_", "-", "+", "/", "*", ",", ".", "%", "$", "\\$", "=", "\\pm", "\\cup", "e",
             "1", "2", "0", "9", "12", "3.5", "x", "cm", " ", "\\\\", "&", "\\begin{pmatrix}", "\\end{pmatrix}",
             "####", "the answer is", "\n", "\\!", "\\circ", "\\cdot", "\\times"]
    for _ in range(2000):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 25)))
        extract_answer(text, allow_last_number=True)
        normalize(text)
        is_equiv(text, "\\frac{1}{2}")
        math_reward(text, text)


# -----------------------------------------------------------------------------
# the real data: every gold answer parses, equals itself, and grades its own solution 1.0


def _records(name):
    path = DATA / name
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is absent")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_gsm8k_golds():
    records = _records("gsm8k/test.jsonl")
    assert len(records) == 1319
    for r in records:
        gold = parse_gold(r["answer"])
        assert gold is not None, r["answer"]
        assert is_equiv(gold, gold), gold
        assert normalize(gold) == str(int(gold.replace(",", ""))), gold  # all GSM8K test golds are integers
        assert math_reward(r["answer"], gold) == 1.0, r["answer"]
        assert math_reward(f"... so she has {gold} left.\nThe answer is {gold}.", r["answer"]) == 1.0


def test_math500_golds():
    records = _records("math/test.jsonl")
    assert len(records) == 500
    for r in records:
        answer = r["answer"]
        gold = parse_gold(answer)
        assert gold is not None and normalize(gold), answer
        assert is_equiv(gold, gold), answer
        assert is_equiv(parse_gold(r["solution"]), answer), answer
        assert math_reward(r["solution"], answer) == 1.0, answer
        assert math_reward(f"Thus. The final answer is ${answer}$. I hope it is correct.", answer) == 1.0, answer
        assert math_reward(f"$\\boxed{{{answer}}}$", r["solution"]) == 1.0, answer


def test_math_full_test_set_golds():
    records = _records("math/math_test5000.jsonl")
    for r in records:
        gold = parse_gold(r["solution"])
        assert gold is not None and is_equiv(gold, gold), r["solution"][-200:]
        assert math_reward(r["solution"], gold) == 1.0


def test_competition_golds():
    for name in ("aime24/test.jsonl", "aime25/test.jsonl", "amc23/test.jsonl"):
        for r in _records(name):
            value = int(float(r["answer"]))
            assert is_equiv(str(value), parse_gold(r["answer"])), r["answer"]
            assert math_reward(f"\\boxed{{{value}}}", r["answer"]) == 1.0
            assert math_reward(f"\\boxed{{{value + 1}}}", r["answer"]) == 0.0


# -----------------------------------------------------------------------------
# issue 16: answers written the way instruction-tuned models write them, both modes, no farming

ISSUE_16 = [  # (completion, gold): every one must earn 1.0 in strict mode
    ("Final answer: 64", "64"), ("**Answer:** $18", "18"), ("Answer: 3 bolts", "3"), ("## Final Answer\n$18$", "18"),
    ("So $\\boxed{255}$ goes to the second CD. The final answer is $10,455$. I hope it is correct.", "10455"),
    ("\\boxed{\\cfrac{1}{3}}", "1/3"), ("\\boxed{\\frac34i}", "\\frac{3}{4}i"), ("\\boxed{14 {, }916}", "14{,}916"),
    ("\\boxed{\\frac{\\sqrt{3}}{3} \\approx 0.577}", "\\frac{\\sqrt{3}}{3}"), ("\\boxed{x\\approx 11}", "11"),
    ("\\boxed{6 \\text{ and } 8}", "6,8"), ("\\boxed{(11,7) or (7,11)}", "(7,11),(11,7)"),
    ("\\boxed{x^2+2x+1}", "x^2 + 2*x + 1"), ("\\boxed{2\\sqrt{33}+15}", "15+2\\sqrt{33}"),
    ("\\boxed{0.\\overline{3}}", "\\frac13"), ("\\boxed{0.1\\overline{6}}", "1/6"), ("\\boxed{f(2)=5}", "5"),
    ("\\boxed{AB=5}", "5"), ("the roots are $\\boxed{-2}$ and $\\boxed{1}$", "1, -2"), ("\\boxed{x \\geq 5}", "5 \\le x"),
]

FARMING = [  # (completion, gold): 0.0 in both modes
    ("\\boxed{1, 2, 3, 4, 5}", "3"), ("The answer is 3 or 4 or 5", "4"), ("\\boxed{-5}", "5"), ("\\boxed{125}", "1250"),
    ("\\boxed{12}", "125"), ("\\boxed{3}\\boxed{4}", "4"), ("Answer: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10", "7"),
    ("\\boxed{x+1}", "x+2"), ("\\boxed{x^2}", "x^3"), ("\\boxed{\\sqrt{2}+1}", "\\sqrt{2}-1"),
]


@pytest.mark.parametrize("completion,gold", ISSUE_16)
def test_issue_16_forms(completion, gold):
    assert math_reward(completion, gold) == 1.0, (extract_answer(completion), normalize(extract_answer(completion)))


@pytest.mark.parametrize("completion,gold", FARMING)
def test_no_farming(completion, gold):
    assert math_reward(completion, gold) == 0.0 and math_reward(completion, gold, mode="flexible") == 0.0


def test_modes():
    assert math_reward("I think it is 72", "72") == 0.0                    # strict: a bare number is not trusted
    assert math_reward("I think it is 72", "72", mode="flexible") == 1.0
    assert math_reward("the result is $\\frac{1}{2}$", "0.5", mode="flexible") == 1.0  # the last $..$ span
    assert extract_answer("so 5, then \\boxed{6}", mode="flexible") == "6"  # trusted forms first in both modes
    assert extract_answer("I hope the answer is correct. \\boxed{4}") == "4"
    assert extract_answer("The final answer is \\boxed{4}. I hope the answer is correct.") == "4"
    with pytest.raises(ValueError):
        extract_answer("\\boxed{1}", mode="lenient")


def test_nested_exponents_are_bounded():
    for text in ["10^10^10", "10^{10^{10}}", "x^{10^{10}}", "2^{x^{99999}}", "(x+1)^{100000}", "\\sin^{99999}(x)"]:
        start = time.perf_counter()
        assert not is_equiv(text, "1") and math_reward(f"\\boxed{{{text}}}", "x") == 0.0
        assert time.perf_counter() - start < 1.0, text


def test_typical_response_is_fast():
    text = ("We expand $(x+1)^2 = x^2 + 2x + 1$ and check each case; " * 60) + "The final answer is $x^2+2x+1$."
    math_reward(text, "(x+1)^2")  # warm the cache of the gold
    start = time.perf_counter()
    for i in range(50):
        assert math_reward(text + " " * i, "(x+1)^2") == 1.0
    assert (time.perf_counter() - start) / 50 < 0.005
