"""
The math reward: find the final answer in a completion and decide whether it equals the gold
answer of a GSM8K (`... #### 72`) or MATH (`... \\boxed{\\frac{1}{2}}`) problem.

Standard library only; no sympy, and model text is never eval'd. Numbers go through a small
recursive-descent parser into an exact canonical form, a sum of Fraction * sqrt(squarefree int)
* pi^k terms, so 0.5 = \\frac{1}{2} and 2\\sqrt{3} = \\sqrt{12} without floats. The same parser on
floats compares what that form cannot hold: expressions in variables (x^2+2x+1 == (x+1)^2) by
their values at three fixed points, nested radicals, relations (x >= 5 == 5 <= x). Anything else
is compared as cleaned-up text, element by element inside tuples, intervals, sets and matrices.

    python reward.py "<completion>" "<gold>"    # grade one case by hand
    python -m pytest tests/test_reward.py -q    # the tests
    python benchmarks/bench_reward.py           # 10,000 completions, timed

    extract_answer(text, allow_last_number=False, mode="strict") -> str | None   final answer
    normalize(answer) -> str                      canonical form: equal answers normalise equal
    is_equiv(pred, gold, rel_tol=1e-4) -> bool    two extracted answers
    parse_gold(text) -> str | None                answer of a gold field (GSM8K, MATH, or bare)
    math_reward(completion, gold, format_weight=0.0, mode="strict") -> float

Decisions (each pinned by a test):
- Extraction (strict, the RL default): \\boxed{} / \\fbox{} (nested braces; `\\boxed 5`; boxes joined
  by "and" are one answer), `#### X`, "the (final) answer is X", and a label at a line start
  (`Answer:`, `**Final Answer:**`, `## Final Answer` then the next line): whichever starts LAST in
  the text wins. Flexible mode (evaluation only) falls back to the last $..$ span or number.
- Tolerance: equal canonical forms are equal. Two numbers with finite decimal forms (72, 0.25,
  7/8) are otherwise different: 12345 != 12346, 999.50 != 999.51. Where either side has none
  (sqrt(2), pi, 1/3) they are equal when math.isclose(a, b, rel_tol=rel_tol, abs_tol=0), i.e.
  |a - b| <= rel_tol * max(|a|, |b|): 1.41421 == sqrt(2), 0.333333 == 1/3, 0.333 != 1/3.
- Percent: normalize drops it (25\\% -> 25). When exactly one side of is_equiv is a number with a
  percent sign, the other may equal its number or its number / 100: 25% == 25 and 25% == 0.25
  (but 25 != 0.25).
- Commas: a comma then exactly three digits, no space, outside brackets, groups thousands:
  1,000 == 1000 (10,\\!080 too), but (1,000) is a pair. Bare lists (1, -2: "all solutions") and
  \\{\\} sets are unordered; tuples and intervals are ordered and keep their bracket types.
- Mixed numbers: a whole answer `1\\frac{1}{2}` or `2 1/2` is 3/2 or 5/2; `2\\frac{\\pi}{3}` is a product.
- Dropped: $ and \\$, trailing unit words (5 cm, 15\\mbox{ cm}^2, 18 dollars), degrees (90^\\circ
  == 90; no radians), \\text{}, spacing, \\left \\right, a leading `x =` or `x \\in`. Words
  compare case-blind.
- Hostile text costs bounded time: answers over 1000 characters, numbers over 1000 digits,
  exponents over 1000, radicands over 10^12 and nesting over 50 deep are compared as text.
"""
import math
import re
import sys
import zlib
from fractions import Fraction
from functools import lru_cache

# -----------------------------------------------------------------------------
# extraction: where in the completion is the final answer?
#
# Every trusted form is looked for, and the one that starts last wins: models revise, and a reader
# takes the last statement of the answer, not the first box.

_BRACE = re.compile(r"\\.|[{}]", re.DOTALL)  # an escaped \{ or \} (a set's brace) is no group brace
_BOXED_BARE = re.compile(r" +([^\s${}]+)")
_ANSWER_IS = re.compile(r"\bthe\s+(?:final\s+)?answer\s+is\b", re.IGNORECASE)
# "Answer: 5", "Final answer: 5", "**Answer:** 5", "## Final Answer" (value on the next line),
# "Answer $5$": at the start of a line only, so that "the answer: see above" mid-sentence is no label.
_LABEL = re.compile(r"^[ \t>#*_-]*(?:final[ \t]+)?answer[ \t*_]*(?::[ \t*_]*|(?=\$|\\[(\[])|$)",
                    re.IGNORECASE | re.MULTILINE)
_SENTENCE_END = re.compile(r"[.;!?](?:\s|$)")  # "3.5" keeps its point
_NOT_AN_ANSWER = re.compile(r"(?:correct|incorrect|wrong|right|as|given|shown|below|above|that|this|in|to|not|"
                            r"therefore|thus|clear|obvious)\b", re.IGNORECASE)  # "I hope the answer is correct"
_BOX_JOIN = re.compile(r"(?:[\s$,;&]|\\[,;]|\\q?quad|\\text\{\s*and\s*\}|\band\b)*")
_NUMBER = re.compile(r"(?<![A-Za-z])-?(?:[0-9]{1,3}(?:,[0-9]{3}(?![0-9]))+|[0-9]+)(?:\.[0-9]+)?(?:/[0-9]+)?"
                     r"|(?<![A-Za-z0-9])-?\.[0-9]+")
_MATH_SPAN = re.compile(r"\$\$(.{1,2000}?)\$\$|\\\[(.{1,2000}?)\\\]|(?<![\\$])\$([^$\n]{1,500}?)(?<!\\)\$"
                        r"|\\\((.{1,500}?)\\\)", re.DOTALL)
_PLAIN_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
MODES = ("strict", "flexible")


def _box_at(text, start):
    """(content, end) of the \\boxed{...} or \\fbox{...} starting at start; None if it never closes."""
    i = start + (6 if text.startswith("\\boxed", start) else 5)
    j = len(text) - len(text[i:].lstrip(" "))
    if j == len(text) or text[j] != "{":
        m = _BOXED_BARE.match(text, i)  # \boxed 5: TeX takes the next token
        return (m.group(1), m.end()) if m else None
    depth = 0
    for m in _BRACE.finditer(text, j):  # brace to brace: linear even on a megabyte of "{"
        if m.group()[0] == "\\":
            continue
        depth += 1 if m.group() == "{" else -1
        if depth == 0:
            return text[j + 1:m.start()], m.end()
    return None


def _last_box_start(text, end=None):
    end = len(text) if end is None else end
    return max(text.rfind("\\boxed", 0, end), text.rfind("\\fbox", 0, end))


def _last_boxed(text):
    """Content of the last \\boxed{...} or \\fbox{...}; None if there is none or it never closes."""
    start = _last_box_start(text)
    box = _box_at(text, start) if start >= 0 else None
    return box[0] if box else None


def _boxed_answer(text):
    """(start, answer) of the last box, joined with the boxes just before it when only `and`, commas or
    spacing separate them: `\\boxed{-2} and \\boxed{1}` is the answer -2, 1."""
    start = _last_box_start(text)
    box = _box_at(text, start) if start >= 0 else None
    if not box or not box[0].strip():
        return None
    parts = [box[0]]
    for _ in range(20):
        prev = _last_box_start(text, start)
        before = _box_at(text, prev) if prev >= 0 else None
        if not before or before[1] > start or not _BOX_JOIN.fullmatch(text, before[1], start):
            break
        parts.insert(0, before[0])
        start = prev
    return start, ", ".join(p.strip() for p in parts)


def _line_after(text, i):
    end = text.find("\n", i)
    return text[i:end if end >= 0 else len(text)].strip()


def _after_hashes(text):
    i = text.rfind("####")
    return _line_after(text, i + 4) or None if i >= 0 else None


def _statement(rest, label=False):
    """The answer at the start of rest, the text after "the answer is" or a label: a math span
    ($X$ or \\(X\\); across lines $$X$$ or \\[X\\]), else the rest of the sentence."""
    rest = rest[:2000].lstrip(" \t:*")
    rest = rest[2:] if rest.startswith('\\"') else rest[1:] if rest.startswith('"') else rest  # \"$12$\"
    for open_, close, lines in (("$$", "$$", True), ("$", "$", False), ("\\(", "\\)", False), ("\\[", "\\]", True)):
        if rest.startswith(open_):  # "The final answer is $X$. I hope it is correct." (Minerva)
            span = rest if lines else rest.split("\n", 1)[0]
            k = span.find(close, len(open_))
            while k > 0 and span[k - 1] == "\\":  # \$36 is a dollar sign, not the closing $
                k = span.find(close, k + 1)
            if k > 0:
                return span[len(open_):k].strip() or None
    rest = rest.split("\n", 1)[0].strip().strip("*").strip()
    m = _SENTENCE_END.search(rest)
    value = (rest[:m.start()] if m else rest).strip().strip("*$").strip()
    if label and " is " in value:  # "Final Answer: The largest $n$ is 34."
        value = value.rsplit(" is ", 1)[1].strip().strip("*$").strip()
    numbers = _NUMBER.findall(value)
    if len(_PLAIN_WORD.findall(value)) >= 2 and len(numbers) == 1 and "\\" not in value:
        value = numbers[0]  # "Jane started growing Sphere 3 hours ago": the one number of a sentence
    if len(_PLAIN_WORD.findall(value)) > 6:  # "The final answer is positive, because two of the three ..."
        return None
    return value or None


def _after_answer_is(text):
    """(start, answer) of the last "the (final) answer is X" that states an answer."""
    offset = max(0, len(text) - 200_000)
    for match in reversed(list(_ANSWER_IS.finditer(text, offset))[-50:]):  # bounded: a few tries
        rest = text[match.end():match.end() + 2000]
        if rest.strip() and not _NOT_AN_ANSWER.match(rest.lstrip(":*$ \t")):
            value = _statement(rest)
            if value:
                return match.start(), value
    return None


def _after_label(text):
    match = None
    for match in _LABEL.finditer(text):
        pass
    if match is None:
        return None
    rest = text[match.end():match.end() + 2000]
    if not _line_after(rest, 0):  # "## Final Answer" on a line of its own: the answer is on the next
        rest = rest.lstrip()
    value = _statement(rest, label=True) if rest else None
    return (match.start(), value) if value else None


def _last_math_or_number(text):
    """Flexible mode's fallback: the last LaTeX span ($X$, \\(X\\), $$X$$) or number, whichever
    ends later. Spans are looked for in the last 10,000 characters only (bounded time)."""
    number = None
    for number in _NUMBER.finditer(text):
        pass
    span = None
    for m in reversed(list(_MATH_SPAN.finditer(text, max(0, len(text) - 10_000)))[-20:]):
        content = next(g for g in m.groups() if g is not None).strip()
        if content and not (_canonical(content)[0][0] == "str" and "\\" in content):  # not \sum_{k}...
            span = m
            break
    if span and (number is None or span.end() >= number.end()):
        return next(g for g in span.groups() if g is not None).strip()
    return number.group() if number else None


def extract_answer(text, allow_last_number=False, mode="strict"):
    """The final answer in a completion, or None. Strict: the last trusted form (\\boxed, ####,
    "the answer is", an `Answer:` label). Flexible (or allow_last_number): else the last number."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(text, str) or not text:
        return None
    found = [_boxed_answer(text), _after_answer_is(text), _after_label(text)]
    i = text.rfind("####")
    if i >= 0 and _after_hashes(text):
        found.append((i, _after_hashes(text)))
    found = [f for f in found if f and f[1] and f[1].strip()]
    if found:
        return max(found, key=lambda f: f[0])[1].strip()
    return _last_math_or_number(text) if allow_last_number or mode == "flexible" else None


def solution_answer(text):
    """The answer a worked solution states: after its last `####` (GSM8K), else in its last \\boxed{}
    (MATH; boxes joined by "and" or commas are one answer, `\\boxed{-2} and \\boxed{1}` is -2, 1).
    None if it has neither, or its last box never closes. data/convert.py reads datasets with it."""
    if "####" in text:
        return _after_hashes(text)
    box = _boxed_answer(text)
    return box[1].strip() if box else None


def parse_gold(text):
    """The answer in a gold field: GSM8K `... #### 72`, a MATH solution's \\boxed{}, or a bare answer."""
    text = "" if text is None else str(text).strip()  # str: AMC golds are floats (27.0)
    if "####" in text or "\\boxed" in text or "\\fbox" in text:
        return solution_answer(text)
    return text or None


# -----------------------------------------------------------------------------
# cleaning: LaTeX and text decoration that never changes the value

_UNICODE = {"\u2212": "-", "\u2013": "-", "\u03c0": "\\pi ", "\u221e": "\\infty ", "\u221a": "\\sqrt",
            "\u00d7": "\\times ", "\u00b7": "\\cdot ", "\u00b0": "^\\circ", "\u20ac": "", "\u00a3": "",
            "\u2264": "<=", "\u2265": ">=", "\u2260": "!="}
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textit|textrm|textnormal|mbox|hbox|mathrm|mathbf|mathit|mathsf"
                       r"|operatorname)\s*\{([^{}]*)\}")
_TEX_THOUSANDS = re.compile(r"(?<=[0-9])\s*(?:,\\!|\\,|\{\s*,\s*\})\s*(?=[0-9]{3}(?![0-9]))")  # 10,\!080 14 {, }916
_REPEATING = re.compile(r"(-?)(?<![0-9])([0-9]{0,50})\.([0-9]{0,50})\\overline\{?([0-9]{1,20})\}?")  # 0.1\overline{6} = 1/6
_SPACING = re.compile(r"\\[,;:! ]|\\q?quad(?![a-zA-Z])|~")
_SIZING = re.compile(r"\\(?:left|right|[bB]igg?[lr]?|displaystyle|textstyle)(?![a-zA-Z])")
_RELATIONS = re.compile(r"\\(geq?|leq?|neq|gt|lt|ne)(?![a-zA-Z])")
_RELATION_OPS = {"ge": ">=", "geq": ">=", "le": "<=", "leq": "<=", "neq": "!=", "ne": "!=", "gt": ">", "lt": "<"}
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree")


def _repeating(m):
    sign, whole, fixed, period = m.groups()
    if len(whole) + len(fixed) > 50:
        return m.group()
    # x = whole.fixed(period)...: x * 10^len(fixed) * (10^len(period) - 1) = int(fixed period) - int(fixed)
    numerator = int(fixed + period) - int(fixed or "0")
    denominator = 10 ** len(fixed) * (10 ** len(period) - 1)
    return f"{sign}({whole or 0}+\\frac{{{numerator}}}{{{denominator}}})"


def _clean(s):
    """(cleaned string, whether it carried a percent sign)."""
    for old, new in _UNICODE.items():
        s = s.replace(old, new)
    if "\\boxed" in s or "\\fbox" in s:  # an answer handed over still boxed
        box = _boxed_answer(s)
        s = box[1] if box else s
    s = re.sub(r"\\\\(?=[dtc]?frac|left|right)", r"\\", s)  # \\\\frac: a doubled backslash, not a row break
    s = s.replace("\\\\", " \\cr ")  # matrix row breaks, kept safe from the "\ " spacing rule
    for _ in range(3):  # \text{\textbf{..}} nests
        s = _TEXT_CMD.sub(r" \1 ", s)
    s = _SIZING.sub("", _SPACING.sub(" ", _TEX_THOUSANDS.sub("", s)))
    for frac in ("\\dfrac", "\\tfrac", "\\cfrac"):
        s = s.replace(frac, "\\frac")
    s = _DEGREES.sub("", _REPEATING.sub(_repeating, s) if "\\overline" in s else s)
    s = re.sub(r"\s{0,3}(?:percentage|percent|pct)\b", "%", s)
    s = _RELATIONS.sub(lambda m: _RELATION_OPS[m.group(1)], s)
    percent = "%" in s
    for junk in ("\\%", "%", "\\$", "$", "\\(", "\\)", "\\[", "\\]"):  # $: currency or math mode, both go
        s = s.replace(junk, "")
    if "\\approx" in s or "\u2248" in s:  # "\frac{\sqrt3}{3} \approx 0.577": the exact value; "x \approx 11": 11
        left, *rest = re.split(r"\\approx|\u2248", s)
        s = left if left.strip() and not _NAME.fullmatch(left.strip()) else rest[-1]
    s = " ".join(s.split()).rstrip(".,").strip()  # a final full stop or comma is punctuation
    return (s[:-1].strip() if s.endswith("\\") and not s.endswith("\\\\") else s), percent  # 185\ (a stray \\)


# -----------------------------------------------------------------------------
# numbers: an exact canonical form, built by a small parser (never eval)
#
# A value is a dict {(radicand, pi_power): Fraction}, meaning the sum of coefficient *
# sqrt(radicand) * pi^pi_power with radicands squarefree: 2\sqrt{3} is {(3, 0): 2}, \frac{\pi}{2}
# is {(1, 1): 1/2}, 0 is {}. Infinity is the lone key _INF. Equal numbers get equal dicts.

_INF = (0, 0)
_MAX_CHARS, _MAX_DIGITS, _MAX_BITS, _MAX_DEPTH = 1000, 1000, 4000, 50


class _NotNumeric(ValueError):
    pass


def _const(q):
    return {(1, 0): Fraction(q)} if q else {}


def _finite(*values):
    if any(_INF in v for v in values):  # infinity stands alone (or negated): no arithmetic with it
        raise _NotNumeric


def _checked(v):
    """Drop zero terms; refuse values too big to be anyone's answer, so every step stays cheap."""
    v = {k: c for k, c in v.items() if c}
    if len(v) > 64 or any(
            r.bit_length() > 200 or abs(p) > 50 or max(c.numerator.bit_length(), c.denominator.bit_length()) > _MAX_BITS
            for (r, p), c in v.items()):
        raise _NotNumeric
    return v


def _neg(v):
    return {k: -c for k, c in v.items()}


def _add(a, b):
    _finite(a, b)
    out = dict(a)
    for k, c in b.items():
        out[k] = out.get(k, 0) + c
    return _checked(out)


def _mul(a, b):
    _finite(a, b)
    out = {}
    for (r1, p1), c1 in a.items():
        for (r2, p2), c2 in b.items():
            g = math.gcd(r1, r2)  # sqrt(g x) sqrt(g y) = g sqrt(x y), and x y stays squarefree
            key = (r1 // g * (r2 // g), p1 + p2)
            out[key] = out.get(key, 0) + c1 * c2 * g
    return _checked(out)


def _inverse(v):
    if len(v) != 1 or _INF in v:  # 1 / (a + b sqrt(c)) would need rationalising; 1/0 is no number
        raise _NotNumeric
    ((r, p), c), = v.items()
    return {(r, -p): 1 / (c * r)}  # 1 / (c sqrt(r) pi^p) = sqrt(r) pi^-p / (c r)


def _sqrt(v):
    q = v.get((1, 0), Fraction(0))
    if set(v) - {(1, 0)} or q < 0:  # the root of a surd, of pi or of a negative: not kept
        raise _NotNumeric
    n = q.numerator * q.denominator  # sqrt(a/b) = sqrt(a b) / b
    if n > 10 ** 12:
        raise _NotNumeric
    # n = outside^2 * inside. Trial division while k^3 <= n is enough: what is left then has no
    # prime factor below k, so at most two, and is 1, p, p^2 or p q.
    outside, inside, k = 1, 1, 2
    while k * k * k <= n:
        while n % (k * k) == 0:
            n, outside = n // (k * k), outside * k
        if n % k == 0:
            n, inside = n // k, inside * k
        k += 1
    root = math.isqrt(n)
    outside, inside = (outside * root, inside) if root * root == n else (outside, inside * n)
    return _checked({(inside, 0): Fraction(outside, q.denominator)})


def _pow(base, exponent):
    _finite(base, exponent)
    n = exponent.get((1, 0), Fraction(0))
    if set(exponent) - {(1, 0)} or n.denominator != 1 or abs(n) > 1000:  # never 10^{99999999}
        raise _NotNumeric
    out, square, k = _const(1), base, abs(int(n))
    while k:  # square and multiply; _mul's size check stops a runaway early
        if k & 1:
            out = _mul(out, square)
        k >>= 1
        square = _mul(square, square) if k else square
    return _inverse(out) if n < 0 else out


class _Exact:
    """The parser's arithmetic on exact values (above). Letters are not numbers here."""
    add, mul, neg, inverse, sqrt, pow = staticmethod(_add), staticmethod(_mul), staticmethod(_neg), \
        staticmethod(_inverse), staticmethod(_sqrt), staticmethod(_pow)
    const = staticmethod(_const)

    @staticmethod
    def symbol(name):
        if name in ("pi", "infty"):
            return {(1, 1) if name == "pi" else _INF: Fraction(1)}
        raise _NotNumeric

    @staticmethod
    def call(name, value):
        raise _NotNumeric


class _Approx:
    """The same arithmetic on floats, with each free variable set to a fixed value: two expressions
    that agree at a few such points (x^2+2x+1 and (x+1)^2) are taken to be the same expression."""
    FUNCS = {"sin": math.sin, "cos": math.cos, "tan": math.tan, "sec": lambda x: 1 / math.cos(x),
             "csc": lambda x: 1 / math.sin(x), "cot": lambda x: 1 / math.tan(x), "ln": math.log, "log": math.log,
             "exp": math.exp, "arcsin": math.asin, "arccos": math.acos, "arctan": math.atan}

    def __init__(self, point):
        self.point = point

    def value_of(self, name):  # a fixed pseudo-random value in (0.5, 2.5) per (name, point): deterministic
        return 0.5 + 2.0 * ((zlib.crc32(name.encode()) * 2654435761 + self.point * 40503) % 10007) / 10007

    const = staticmethod(lambda q: float(q))
    add = staticmethod(lambda a, b: a + b)
    mul = staticmethod(lambda a, b: a * b)
    neg = staticmethod(lambda a: -a)

    @staticmethod
    def inverse(a):
        if a == 0:
            raise _NotNumeric
        return 1 / a

    @staticmethod
    def sqrt(a):
        if a < 0:
            raise _NotNumeric
        return math.sqrt(a)

    @staticmethod
    def pow(a, b):
        if abs(b) > 1000 or (a < 0 and b != int(b)) or (a == 0 and b < 0):
            raise _NotNumeric  # never 10^{10^{10}}
        try:
            return float(a) ** b
        except OverflowError:
            raise _NotNumeric from None

    def symbol(self, name):
        if name == "pi":
            return math.pi
        if name == "infty":
            raise _NotNumeric
        return self.value_of(name)

    def call(self, name, value):
        try:
            return self.FUNCS[name](value)
        except (ValueError, ZeroDivisionError, OverflowError):
            raise _NotNumeric from None


_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "kappa",
          "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "phi", "varphi", "chi", "psi", "omega"}
# numbers (1.5e3, .5); \commands; the bare words sqrt, pi and function names (sqrt(2), 2pi); single
# letters, which are variables (2x is 2 * x); single symbols
_TOKEN = re.compile(r"\s*(?:(?P<num>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?)"
                    r"|\\(?P<cmd>[a-zA-Z]+)|(?P<word>sqrt|pi|sin|cos|tan|ln|log|exp)(?![a-zA-Z])"
                    r"|(?P<var>[a-zA-Z])|(?P<sym>\S))")


def _number(token):
    mantissa, _, exponent = token.lower().partition("e")
    whole, _, frac = mantissa.partition(".")
    if len(whole) + len(frac) > _MAX_DIGITS or len(exponent) > 5 or abs(int(exponent or 0)) > 1000:
        raise _NotNumeric  # never build 10**999999999
    return Fraction(int(whole + frac or "0"), 10 ** len(frac)) * Fraction(10) ** int(exponent or 0)


def _tokens(s):
    out = []
    for m in _TOKEN.finditer(s):
        kind, text = m.lastgroup, m.group(m.lastgroup)
        if kind == "word":
            kind = "cmd"
        elif kind == "cmd" and text in _GREEK:
            kind = "var"
        out.append((kind, text))
    return out


class _Parser:
    """Recursive descent over LaTeX-ish arithmetic, loosest binding first:
    expr = term {(+|-) term}      term = signed {(* | / | \\cdot | \\times | \\div | nothing) signed}
    signed = {+|-} power          power = atom [^ arg]
    atom = number | variable | (expr) | {expr} | \\frac arg arg | \\sqrt arg | \\pi | \\infty | \\sin arg ...
    ops does the arithmetic: _Exact, or _Approx at one point."""

    def __init__(self, s, ops=_Exact, tokens=None):
        self.tokens = _tokens(s) if tokens is None else list(tokens)
        self.i, self.depth, self.ops = 0, 0, ops

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "")

    def take(self):
        self.i += 1
        return self.tokens[self.i - 1] if self.i <= len(self.tokens) else ("end", "")

    def parse(self):
        value = self.expr()
        if self.i != len(self.tokens):
            raise _NotNumeric  # something we do not understand is left over: not a number
        return value

    def expr(self):
        value = self.term()
        while self.peek()[1] in ("+", "-"):
            sign = self.take()[1]
            term = self.term()
            value = self.ops.add(value, term if sign == "+" else self.ops.neg(term))
        return value

    def term(self):
        value = self.signed()
        while True:
            kind, op = self.peek()
            if op in ("*", "cdot", "times", "/", "div"):
                self.i += 1
                operand = self.signed()
                value = self.ops.mul(value, self.ops.inverse(operand) if op in ("/", "div") else operand)
            elif op in ("(", "{", "frac", "sqrt", "pi") or kind == "var" or op in _Approx.FUNCS:
                value = self.ops.mul(value, self.power())  # 2\pi, 3\sqrt{2}, 2(5), 2x, x\sin x: a product
            else:
                return value

    def signed(self):
        negative = False
        while self.peek()[1] in ("+", "-"):  # a loop, not recursion: "------5" cannot overflow the stack
            negative ^= self.take()[1] == "-"
        value = self.power()
        return self.ops.neg(value) if negative else value

    def exponent(self):
        self.i += 1
        negative = self.peek()[1] == "-"  # 10^-3
        self.i += negative
        exponent = self.arg(one_digit=False)  # 10^12 is 10**12 as people mean it (TeX says 10^1 2)
        return self.ops.neg(exponent) if negative else exponent

    def power(self):
        base = self.atom()
        return self.ops.pow(base, self.exponent()) if self.peek()[1] == "^" else base

    def arg(self, one_digit=True):
        kind, text = self.peek()
        if text in ("{", "("):
            return self.group()
        if kind == "num" and one_digit and text.isdigit() and len(text) > 1:  # \frac34: TeX reads one digit
            self.tokens[self.i] = ("num", text[1:])
            return self.ops.const(int(text[0]))
        if kind in ("num", "cmd", "var"):
            return self.atom()  # \sqrt2, \frac\pi2, \frac xy
        raise _NotNumeric

    def group(self):
        close = {"(": ")", "{": "}", "[": "]"}[self.take()[1]]
        value = self.expr()
        if self.take()[1] != close:
            raise _NotNumeric
        return value

    def atom(self):
        self.depth += 1
        if self.depth > _MAX_DEPTH:  # thousands of nested braces: give up, compare as text
            raise _NotNumeric
        try:
            kind, text = self.peek()
            if text in ("(", "{", "["):
                return self.group()
            self.i += 1
            if kind == "num":
                return self.ops.const(_number(text))
            if kind == "var" or text in ("pi", "infty"):
                return self.ops.symbol(text)
            if text == "frac":
                return self.ops.mul(self.arg(), self.ops.inverse(self.arg()))
            if text == "sqrt" and self.peek()[1] != "[":  # no n-th roots
                return self.ops.sqrt(self.arg())
            if kind == "cmd" and text in _Approx.FUNCS:  # \sin x, \cos^2(x), \ln 2
                power = self.exponent() if self.peek()[1] == "^" else None
                value = self.ops.call(text, self.arg(one_digit=False))
                return value if power is None else self.ops.pow(value, power)
            raise _NotNumeric
        finally:
            self.depth -= 1


def _finite_decimal(items):
    """72, 0.25, 7/8: a rational whose denominator has no prime factor but 2 and 5."""
    if len(items) > 1 or (items and items[0][0] != (1, 0)):
        return False
    d = items[0][1].denominator if items else 1
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def _num_close(a, b, rel_tol):
    """a, b: numbers as sorted item tuples. Exact first, then the tolerance of the docstring."""
    if a == b:
        return True
    if any(k == _INF for k, _ in a + b) or (_finite_decimal(a) and _finite_decimal(b)):
        return False  # 999.50 vs 999.51 are different prices, not a rounding
    try:
        fa, fb = _float(a), _float(b)
    except OverflowError:
        return False
    return math.isclose(fa, fb, rel_tol=rel_tol, abs_tol=0.0)


# -----------------------------------------------------------------------------
# structure: tuples, intervals, sets and matrices of numbers or text
#
# A canonical value is a hashable tuple: ("num", items) | ("expr", variables, values at the fixed
# points, text) | ("str", text) | ("seq", open, close, elements) | ("set", elements) | ("union",
# elements); a matrix is a tuple of row tuples.

# what a left-hand side names: x, x_1, AB, f(2), f'(x), \\angle ABC, (a,b), |z|
_NAME = re.compile(r"[a-zA-Z]{1,3}'*(?:_\{?[a-zA-Z0-9]{1,3}\}?)?(?:\([^()=]{0,20}\))?|\\[a-zA-Z]+(?:\s*[A-Z]{1,3})?"
                   r"|\([a-zA-Z ,]*\)|\|[^|=]{1,20}\|")
_IN = re.compile(r"(?:[a-zA-Z](?:_\{?[a-zA-Z0-9]{1,3}\}?)?|\\[a-zA-Z]+)\s*\\in(?![a-zA-Z])\s*")
_RELATION = re.compile(r"[<>!]|\\(?:[lg]eq?|neq|[lg]t)(?![a-zA-Z])")
_LIST_WORD = re.compile(r"\s*,?\s*\b(?:and|or)\b\s*")
_LETTERS = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}")
_THOUSANDS = re.compile(r"(?<![0-9.])[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])")
_MATRIX = re.compile(r"\\begin\{([pbvBV]?matrix|array)\}(?:\{[lcr| ]*\})?(.*)\\end\{\1\}", re.DOTALL)
_MIXED = re.compile(r"(-?)([0-9]+)\s*\\frac\s*(?:\{([0-9]+)\}|([0-9]))\s*(?:\{([0-9]+)\}|([0-9]))"
                    r"|([-+]?)([0-9]+) ([0-9]+)/([0-9]+)")  # 1\frac{1}{2}, 1\frac12, 1 1/2
_UNIT_WORD = re.compile(r"[a-zA-Z]{2,}\.?(?:\^\{?[0-9]\}?)?|\^\{?[0-9]\}?")  # cm, cm^2, dollars, ft.
_WORDS = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")


def _strip_lhs(s):
    """x = 5 -> 5, f(2) = 5 -> 5, x \\in [0,1] -> [0,1], (a,b) = (1,2) -> (1,2), and of a chain that
    starts with a name, x = 5+5+1 = 11 -> 11. An equation (2x + y = 1) or an inequality stays whole."""
    m = _IN.match(s)
    if m and m.end() < len(s):
        return s[m.end():]
    if "=" not in s or _RELATION.search(s):
        return s
    parts = s.split("=")
    if any("," in p for p in parts[1:-1]) or not _NAME.fullmatch(parts[0].strip()) or not parts[-1].strip():
        return s
    if len(parts) > 2:  # x = 5+5+1 = 11: the last step, if it is a number
        try:
            _Parser(parts[-1]).parse()
        except _NotNumeric:
            return "=".join(parts[1:]).strip()
    return parts[-1].strip()


def _split_top(s, sep):
    """Split on sep outside brackets. Bracket kinds are not matched, so [0,1) is one piece."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        depth = depth + (s[i] in "([{") - (depth > 0 and s[i] in ")]}")
        if depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i].strip())
            start = i = i + len(sep)
        else:
            i += 1
    return parts + [s[start:].strip()]


def _encloses(s):
    """Whether the bracket opening s closes at its last character: (1,2) yes, (a)(b) no."""
    depth = 0
    for i, c in enumerate(s):
        depth += (c in "([{") - (c in ")]}")
        if depth == 0 and c in ")]}":
            return i == len(s) - 1
    return False


def _text_key(s):
    s = s.strip().rstrip(".").strip()
    if _WORDS.fullmatch(s):
        return s.lower()  # East == east; formulas keep their case (3R^2)
    return "".join(re.sub(r"([_^])\{([^{}])\}", r"\1\2", s).split())  # 52_{8} == 52_8, x^{3} == x^3


def _num(s):
    return ("num", tuple(sorted(_Parser(s).parse().items())))


def _expr(s):
    """An expression with variables (x^2+2x+1), or a number beyond the exact forms (\\sqrt{1+\\sqrt2}):
    its values at three fixed points."""
    if any(w not in ("sqrt", "pi", "sin", "cos", "tan", "ln", "log", "exp") for w in _LETTERS.findall(s)):
        raise _NotNumeric  # a word, not a product of one-letter variables
    tokens = _tokens(s)
    names = tuple(sorted({t for k, t in tokens if k == "var"}))
    if len(names) > 6 or len(tokens) > 300:
        raise _NotNumeric
    values = tuple(_Parser(s, _Approx(k), tokens).parse() for k in range(3))
    if not all(isinstance(v, float) and math.isfinite(v) for v in values):
        raise _NotNumeric
    return ("expr", names, values, _text_key(s))


_REL_SPLIT = re.compile(r"(<=|>=|!=|<|>|=)")


def _relation(s):
    """2x + 4y = 3, x >= 5: one relation between two expressions, kept as the values of left - right
    at the fixed points, scaled to length 1 (and, for = and !=, to a positive first value), with > and
    >= turned around: so 5 <= x == x >= 5, -x > -1 == x < 1, and 2x = 4 == x = 2."""
    parts = _REL_SPLIT.split(s)
    if len(parts) != 3:
        raise _NotNumeric
    left, op, right = parts
    if op in (">", ">="):
        left, right, op = right, left, op.replace(">", "<")
    left, right = _expr(left), _expr(right)
    diff = [a - b for a, b in zip(left[2], right[2])]
    scale = math.sqrt(sum(d * d for d in diff))
    if scale == 0:
        raise _NotNumeric
    if op in ("=", "!=") and next(d for d in diff if d) < 0:
        scale = -scale
    return ("rel", op, tuple(sorted(set(left[1]) | set(right[1]))), tuple(d / scale for d in diff), _text_key(s))


def _float(items):
    return sum(float(c) * math.sqrt(r) * math.pi ** p for (r, p), c in items)


def _scalar(s):
    s = _strip_lhs(s).strip()
    if "\\pm" in s or "\\mp" in s:  # a \pm b is the set {a + b, a - b}
        a, _, b = s.replace("\\mp", "\\pm").partition("\\pm")
        try:
            return _unordered("set", [_num(f"{a}+{{{b}}}"), _num(f"{a}-{{{b}}}")])
        except _NotNumeric:
            return ("str", _text_key(s))
    if _RELATION.search(s) or "=" in s:
        try:
            return _relation(s)
        except (_NotNumeric, OverflowError, ZeroDivisionError, ValueError):
            return ("str", _text_key(s))
    m = _MIXED.fullmatch(s)
    if m:
        g = m.groups()
        sign, whole = (g[0], g[1]) if g[1] is not None else (g[6], g[7])
        numerator, denominator = [int(x) for x in g[2:6] + g[8:] if x is not None]
        if 0 <= numerator < denominator:  # a proper fraction part, or it is no mixed number
            value = int(whole) + Fraction(numerator, denominator)
            return ("num", tuple(_const(-value if sign == "-" else value).items()))
    words = s.split()
    while len(words) > 1 and _UNIT_WORD.fullmatch(words[-1]):
        words.pop()  # 18 dollars, 15 cm^2, 5.4 cents: drop trailing unit words, if a number is left
    for candidate in dict.fromkeys([s, " ".join(words)]):
        try:
            return _num(candidate)
        except _NotNumeric:
            pass
    if not _WORDS.fullmatch(s):  # a lone word or letter (x, east) stays text
        for candidate in dict.fromkeys([s, " ".join(words)]):
            try:
                return _expr(candidate)
            except (_NotNumeric, OverflowError, ZeroDivisionError, ValueError):
                pass
    return ("str", _text_key(s))


def _unordered(kind, elements):
    flat = [x for e in elements for x in (e[1] if e[0] == "set" else [e])]  # {1 \pm \sqrt5, -2}: three
    unique = {_fmt(e): e for e in flat}  # a set: duplicates go
    return (kind, tuple(unique[k] for k in sorted(unique)))


def _structure(s, depth=0):
    s = s.strip()
    if (" and " in s or " or " in s) and not _WORDS.fullmatch(s):  # 6 and 8, (11,7) or (7,11): a list
        s = _LIST_WORD.sub(", ", s).strip(", ")
    s = _strip_lhs(s)
    if not s or depth > 8 or len(s) > _MAX_CHARS:
        return ("str", _text_key(s) if len(s) <= _MAX_CHARS else "".join(s.split()))
    m = _MATRIX.fullmatch(s)
    if m:
        rows = [row.split("&") for row in m.group(2).split("\\cr") if row.strip()]  # a tuple of row tuples
        return ("seq", "[", "]", tuple(("seq", "[", "]", tuple(_structure(c, depth + 1) for c in row)) for row in rows))
    parts = _split_top(s, "\\cup")
    if len(parts) > 1:
        return _unordered("union", [_structure(p, depth + 1) for p in parts])
    if s.startswith("\\{") and s.endswith("\\}") and _encloses(s):
        return _unordered("set", [_structure(p, depth + 1) for p in _split_top(s[2:-2], ",")])
    if s[0] in "([{" and s[-1] in ")]}" and _encloses(s):
        parts = _split_top(s[1:-1], ",")
        if len(parts) == 1:  # (5), {5}, (C): brackets around one thing only group it
            return _structure(s[1:-1], depth + 1)
        if s[0] == "{":
            return _unordered("set", [_structure(p, depth + 1) for p in parts])
        return ("seq", s[0], s[-1], tuple(_structure(p, depth + 1) for p in parts))
    parts = _split_top(_THOUSANDS.sub(lambda m: m.group().replace(",", ""), s), ",")
    if len(parts) > 1:  # 1, -2: the solutions, in any order
        return _unordered("set", [_structure(p, depth + 1) for p in parts])
    return _scalar(parts[0])


def _fmt(v):
    kind, body = v[0], v[1]
    if kind == "str":
        return body
    if kind == "seq":
        return v[1] + ",".join(_fmt(e) for e in v[3]) + v[2]
    if kind == "set":
        return "{" + ",".join(_fmt(e) for e in body) + "}"
    if kind == "union":
        return " U ".join(_fmt(e) for e in body)
    if kind in ("expr", "rel"):
        return v[-1]
    if body and body[0][0] == _INF:
        return "oo" if body[0][1] > 0 else "-oo"
    terms = []
    for (r, p), c in body:  # 3/4*sqrt(3)*pi^2
        factors = ([f"sqrt({r})"] if r != 1 else []) + ([f"pi^{p}" if p != 1 else "pi"] if p else [])
        terms.append(("-" if c == -1 else "" if c == 1 else f"{c}*") + "*".join(factors) if factors else str(c))
    return "+".join(terms).replace("+-", "-") or "0"


@lru_cache(maxsize=65536)
def _canonical(answer):
    """(value, percent, normal form). Cached: golds and majority votes repeat."""
    s, percent = _clean(answer)
    value = _structure(s)
    return value, percent, _fmt(value)


def normalize(answer):
    """Canonical form of an answer, so that equal answers normalise equal (majority voting)."""
    return "" if answer is None else _canonical(str(answer))[2]


def _same(a, b, rel_tol):
    if {a[0], b[0]} == {"num", "expr"}:  # 0.5773503 against \\frac{1}{\\sqrt3}, or a nested radical
        (n, e) = (a, b) if a[0] == "num" else (b, a)
        return not e[1] and not any(k == _INF for k, _ in n[1]) and \
            math.isclose(_float(n[1]), e[2][0], rel_tol=rel_tol, abs_tol=1e-12)
    if a[0] != b[0]:
        return False
    if a[0] == "rel":
        return a[1:3] == b[1:3] and all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9) for x, y in zip(a[3], b[3]))
    if a[0] == "expr":
        return a[1] == b[1] and all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9) for x, y in zip(a[2], b[2]))
    if a[0] == "num":
        return _num_close(a[1], b[1], rel_tol)
    if a[0] == "str":
        return a[1] == b[1]
    if a[0] == "seq":
        return a[1:3] == b[1:3] and len(a[3]) == len(b[3]) and all(_same(x, y, rel_tol) for x, y in zip(a[3], b[3]))
    if len(a[1]) != len(b[1]) or len(a[1]) > 64:  # sets: a greedy matching, bounded in size
        return False
    unused = list(b[1])
    for x in a[1]:
        match = next((y for y in unused if _same(x, y, rel_tol)), None)
        if match is None:
            return False
        unused.remove(match)
    return True


def is_equiv(pred, gold, rel_tol=1e-4):
    """Whether two extracted answers are the same. Tolerance and percent rule: module docstring."""
    if pred is None or gold is None:
        return False
    (p_value, p_percent, p_key), (g_value, g_percent, g_key) = _canonical(str(pred)), _canonical(str(gold))
    if not p_key or not g_key:
        return False
    if p_key == g_key or _same(p_value, g_value, rel_tol):
        return True
    if p_percent != g_percent and p_value[0] == g_value[0] == "num":  # 25% == 0.25
        with_sign, other = (p_value[1], g_value[1]) if p_percent else (g_value[1], p_value[1])
        return _num_close(tuple((k, c / 100) for k, c in with_sign), other, rel_tol)
    return False


# -----------------------------------------------------------------------------
# the reward


def math_reward(completion, gold, format_weight=0.0, mode="strict"):
    """1.0 when the completion's final answer equals the gold answer, else 0.0.

    gold may be a raw gold field (parse_gold extracts it). mode="strict" (the RL default) counts only
    trusted answer forms (\\boxed, ####, "the answer is", an `Answer:` label), so that scattering
    numbers earns nothing; mode="flexible" falls back to the last number. With format_weight w:
        reward = (1 - w) * correct + w * [an answer was extractable (in the mode's forms)]"""
    if not 0.0 <= format_weight <= 1.0:
        raise ValueError(f"format_weight must be in [0, 1], got {format_weight}")
    pred = extract_answer(completion, mode=mode)
    return (1.0 - format_weight) * is_equiv(pred, parse_gold(gold)) + format_weight * (pred is not None)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit('usage: python reward.py "<completion>" "<gold>"')
    completion, gold = sys.argv[1:]
    pred, gold_answer = extract_answer(completion), parse_gold(gold)
    last = "" if pred else f"   (flexible mode would take the last number, {extract_answer(completion, mode='flexible')!r})"
    print(f"extracted  : {pred!r}{last}\ngold       : {gold_answer!r}")
    print(f"normalized : {normalize(pred)!r} vs {normalize(gold_answer)!r}")
    print(f"equivalent : {is_equiv(pred, gold_answer)}\nreward     : {math_reward(completion, gold)} strict, "
          f"{math_reward(completion, gold, mode='flexible')} flexible")
