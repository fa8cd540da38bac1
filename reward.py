"""
The math reward: find the final answer in a completion and decide whether it equals the gold
answer of a GSM8K (`... #### 72`) or MATH (`... \\boxed{\\frac{1}{2}}`) problem.

Standard library only; no sympy, and model text is never eval'd. Numbers go through a small
recursive-descent parser into an exact canonical form, a sum of Fraction * sqrt(squarefree int)
* pi^k terms, so 0.5 = \\frac{1}{2} and 2\\sqrt{3} = \\sqrt{12} without floats; anything else is
compared as cleaned-up text, element by element inside tuples, intervals, sets and matrices.

    python reward.py "<completion>" "<gold>"    # grade one case by hand
    python -m pytest tests/test_reward.py -q    # the tests
    python benchmarks/bench_reward.py           # 10,000 completions, timed

    extract_answer(text, allow_last_number=False) -> str | None   final answer of a completion
    normalize(answer) -> str                      canonical form: equal answers normalise equal
    is_equiv(pred, gold, rel_tol=1e-4) -> bool    two extracted answers
    parse_gold(text) -> str | None                answer of a gold field (GSM8K, MATH, or bare)
    math_reward(completion, gold, format_weight=0.0) -> float

Decisions (each pinned by a test):
- Extraction trusts, in order: the last \\boxed{} or \\fbox{} (nested braces; also `\\boxed 5`),
  the last `#### X`, the last "the (final) answer is X", and only where the caller allows it the
  last number in the text. math_reward trusts the first three only.
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
from fractions import Fraction
from functools import lru_cache

# -----------------------------------------------------------------------------
# extraction: where in the completion is the final answer?

_BRACE = re.compile(r"[{}]")
_BOXED_BARE = re.compile(r" +([^\s${}]+)")
_ANSWER_IS = re.compile(r"\bthe\s+(?:final\s+)?answer\s+is\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.;!?](?:\s|$)")  # "3.5" keeps its point
_NUMBER = re.compile(r"-?(?:[0-9]{1,3}(?:,[0-9]{3}(?![0-9]))+|[0-9]+)(?:\.[0-9]+)?(?:/[0-9]+)?|-?\.[0-9]+")


def _last_boxed(text):
    """Content of the last \\boxed{...} or \\fbox{...}; None if there is none or it never closes."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = start + (6 if text.startswith("\\boxed", start) else 5)
    j = len(text) - len(text[i:].lstrip(" "))
    if j == len(text) or text[j] != "{":
        m = _BOXED_BARE.match(text, i)  # \boxed 5: TeX takes the next token
        return m.group(1) if m else None
    depth = 0
    for m in _BRACE.finditer(text, j):  # brace to brace: linear even on a megabyte of "{"
        depth += 1 if m.group() == "{" else -1
        if depth == 0:
            return text[j + 1:m.start()]
    return None


def _line_after(text, i):
    end = text.find("\n", i)
    return text[i:end if end >= 0 else len(text)].strip()


def _after_hashes(text):
    i = text.rfind("####")
    return _line_after(text, i + 4) or None if i >= 0 else None


def _after_answer_is(text):
    match = None
    for match in _ANSWER_IS.finditer(text):
        pass
    if match is None:
        return None
    rest = _line_after(text, match.end()).lstrip(":").strip().strip("*")
    for open_, close in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if rest.startswith(open_):  # "The final answer is $X$. I hope it is correct." (Minerva)
            k = rest.find(close, len(open_))
            while k > 0 and rest[k - 1] == "\\":  # \$36 is a dollar sign, not the closing $
                k = rest.find(close, k + 1)
            if k > 0:
                return rest[len(open_):k].strip() or None
    m = _SENTENCE_END.search(rest)
    return (rest[:m.start()] if m else rest).strip().strip("*$").strip() or None


def extract_answer(text, allow_last_number=False):
    """The final answer in a completion, or None; the trust order is in the module docstring."""
    if not isinstance(text, str) or not text:
        return None
    for find in (_last_boxed, _after_hashes, _after_answer_is):
        answer = find(text)
        if answer and answer.strip():
            return answer.strip()
    last = None
    if allow_last_number:
        for last in _NUMBER.finditer(text):
            pass
    return last.group() if last else None


def parse_gold(text):
    """The answer in a gold field: GSM8K `... #### 72`, a MATH solution's \\boxed{}, or a bare answer."""
    text = "" if text is None else str(text).strip()  # str: AMC golds are floats (27.0)
    if "####" in text:
        return _after_hashes(text)
    if "\\boxed" in text or "\\fbox" in text:
        return (_last_boxed(text) or "").strip() or None
    return text or None


# -----------------------------------------------------------------------------
# cleaning: LaTeX and text decoration that never changes the value

_UNICODE = {"\u2212": "-", "\u2013": "-", "\u03c0": "\\pi ", "\u221e": "\\infty ", "\u221a": "\\sqrt",
            "\u00d7": "\\times ", "\u00b7": "\\cdot ", "\u00b0": "^\\circ", "\u20ac": "", "\u00a3": ""}
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textit|textrm|textnormal|mbox|hbox|mathrm|mathbf|mathit|mathsf"
                       r"|operatorname)\s*\{([^{}]*)\}")
_TEX_THOUSANDS = re.compile(r"(?<=[0-9])(?:,\\!|\\,|\{,\})\s*(?=[0-9]{3}(?![0-9]))")  # 10,\!080 1\,000
_SPACING = re.compile(r"\\[,;:! ]|\\q?quad(?![a-zA-Z])|~")
_SIZING = re.compile(r"\\(?:left|right|[bB]igg?[lr]?|displaystyle|textstyle)(?![a-zA-Z])")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree")


def _clean(s):
    """(cleaned string, whether it carried a percent sign)."""
    for old, new in _UNICODE.items():
        s = s.replace(old, new)
    if "\\boxed" in s or "\\fbox" in s:  # an answer handed over still boxed
        s = _last_boxed(s) or s
    s = s.replace("\\\\", " \\cr ")  # matrix row breaks, kept safe from the "\ " spacing rule
    for _ in range(3):  # \text{\textbf{..}} nests
        s = _TEXT_CMD.sub(r" \1 ", s)
    s = _SIZING.sub("", _SPACING.sub(" ", _TEX_THOUSANDS.sub("", s)))
    s = _DEGREES.sub("", s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac"))
    s = re.sub(r"\bpercent\b", "%", s)
    percent = "%" in s
    for junk in ("\\%", "%", "\\$", "$", "\\(", "\\)", "\\[", "\\]"):  # $: currency or math mode, both go
        s = s.replace(junk, "")
    return " ".join(s.split()).rstrip(".").strip(), percent  # a final full stop is punctuation


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


# numbers (1.5e3, .5), commands (\frac; bare words too, so sqrt(2) and 2pi parse), single symbols
_TOKEN = re.compile(r"\s*(?:(?P<num>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?)"
                    r"|\\?(?P<cmd>[a-zA-Z]+)|(?P<sym>\S))")


def _number(token):
    mantissa, _, exponent = token.lower().partition("e")
    whole, _, frac = mantissa.partition(".")
    if len(whole) + len(frac) > _MAX_DIGITS or len(exponent) > 5 or abs(int(exponent or 0)) > 1000:
        raise _NotNumeric  # never build 10**999999999
    return Fraction(int(whole + frac or "0"), 10 ** len(frac)) * Fraction(10) ** int(exponent or 0)


class _Parser:
    """Recursive descent over LaTeX-ish arithmetic, loosest binding first:
    expr = term {(+|-) term}      term = signed {(* | / | \\cdot | \\times | \\div | nothing) signed}
    signed = {+|-} power          power = atom [^ arg]
    atom = number | (expr) | {expr} | \\frac arg arg | \\sqrt arg | \\pi | \\infty"""

    def __init__(self, s):
        self.tokens = [(m.lastgroup, m.group(m.lastgroup)) for m in _TOKEN.finditer(s)]
        self.i, self.depth = 0, 0

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
            value = _add(value, term if sign == "+" else _neg(term))
        return value

    def term(self):
        value = self.signed()
        while True:
            op = self.peek()[1]
            if op in ("*", "cdot", "times", "/", "div"):
                self.i += 1
                operand = self.signed()
                value = _mul(value, _inverse(operand) if op in ("/", "div") else operand)
            elif op in ("(", "{", "frac", "sqrt", "pi"):  # 2\pi, 3\sqrt{2}, 2(5): a product
                value = _mul(value, self.power())
            else:
                return value

    def signed(self):
        negative = False
        while self.peek()[1] in ("+", "-"):  # a loop, not recursion: "------5" cannot overflow the stack
            negative ^= self.take()[1] == "-"
        value = self.power()
        return _neg(value) if negative else value

    def power(self):
        base = self.atom()
        if self.peek()[1] != "^":
            return base
        self.i += 1
        negative = self.peek()[1] == "-"  # 10^-3
        self.i += negative
        exponent = self.arg(one_digit=False)  # 10^12 is 10**12 as people mean it (TeX says 10^1 2)
        return _pow(base, _neg(exponent) if negative else exponent)

    def arg(self, one_digit=True):
        kind, text = self.peek()
        if text in ("{", "("):
            return self.group()
        if kind == "num" and one_digit and text.isdigit() and len(text) > 1:  # \frac34: TeX reads one digit
            self.tokens[self.i] = ("num", text[1:])
            return _const(int(text[0]))
        if kind in ("num", "cmd"):
            return self.atom()  # \sqrt2, \frac\pi2
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
                return _const(_number(text))
            if text == "frac":
                return _mul(self.arg(), _inverse(self.arg()))
            if text == "sqrt" and self.peek()[1] != "[":  # no n-th roots
                return _sqrt(self.arg())
            if text in ("pi", "infty"):
                return {(1, 1) if text == "pi" else _INF: Fraction(1)}
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
        fa, fb = (sum(float(c) * math.sqrt(r) * math.pi ** p for (r, p), c in v) for v in (a, b))
    except OverflowError:
        return False
    return math.isclose(fa, fb, rel_tol=rel_tol, abs_tol=0.0)


# -----------------------------------------------------------------------------
# structure: tuples, intervals, sets and matrices of numbers or text
#
# A canonical value is a hashable tuple: ("num", items) | ("str", text) | ("seq", open, close,
# elements) | ("set", elements) | ("union", elements); a matrix is a tuple of row tuples.

_LHS = re.compile(r"(?:[a-zA-Z](?:_\{?[a-zA-Z0-9]{1,3}\}?)?|\\[a-zA-Z]+|\([a-zA-Z ,]*\))\s*(?:=|\\in(?![a-zA-Z]))\s*")
_THOUSANDS = re.compile(r"(?<![0-9.])[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])")
_MATRIX = re.compile(r"\\begin\{([pbvBV]?matrix)\}(.*)\\end\{\1\}", re.DOTALL)
_MIXED = re.compile(r"(-?)([0-9]+)\s*\\frac\s*(?:\{([0-9]+)\}|([0-9]))\s*(?:\{([0-9]+)\}|([0-9]))"
                    r"|(-?)([0-9]+) ([0-9]+)/([0-9]+)")  # 1\frac{1}{2}, 1\frac12, 1 1/2
_UNIT_WORD = re.compile(r"[a-zA-Z]{2,}\.?(?:\^\{?[0-9]\}?)?|\^\{?[0-9]\}?")  # cm, cm^2, dollars, ft.
_WORDS = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")


def _strip_lhs(s):
    """x = 5 -> 5, x \\in [0,1] -> [0,1], (a,b) = (1,2) -> (1,2): one named variable or tuple."""
    m = _LHS.match(s)
    return s[m.end():] if m and m.end() < len(s) and "=" not in s[m.end():] else s


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


def _scalar(s):
    s = _strip_lhs(s).strip()
    if "\\pm" in s or "\\mp" in s:  # a \pm b is the set {a + b, a - b}
        a, _, b = s.replace("\\mp", "\\pm").partition("\\pm")
        try:
            return _unordered("set", [_num(f"{a}+{{{b}}}"), _num(f"{a}-{{{b}}}")])
        except _NotNumeric:
            return ("str", _text_key(s))
    m = _MIXED.fullmatch(s)
    if m:
        g = m.groups()
        sign, whole = (g[0], g[1]) if g[1] is not None else (g[6], g[7])
        numerator, denominator = [int(x) for x in g[2:6] + g[8:] if x is not None]
        if 0 < numerator < denominator:  # a proper fraction part, or it is no mixed number
            value = int(whole) + Fraction(numerator, denominator)
            return ("num", tuple(_const(-value if sign else value).items()))
    words = s.split()
    while len(words) > 1 and _UNIT_WORD.fullmatch(words[-1]):
        words.pop()  # 18 dollars, 15 cm^2, 5.4 cents: drop trailing unit words, if a number is left
    for candidate in dict.fromkeys([s, " ".join(words)]):
        try:
            return _num(candidate)
        except _NotNumeric:
            pass
    return ("str", _text_key(s))


def _unordered(kind, elements):
    flat = [x for e in elements for x in (e[1] if e[0] == "set" else [e])]  # {1 \pm \sqrt5, -2}: three
    unique = {_fmt(e): e for e in flat}  # a set: duplicates go
    return (kind, tuple(unique[k] for k in sorted(unique)))


def _structure(s, depth=0):
    s = _strip_lhs(s.strip())
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
    if a[0] != b[0]:
        return False
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


def math_reward(completion, gold, format_weight=0.0):
    """1.0 when the completion's final answer equals the gold answer, else 0.0.

    gold may be a raw gold field (parse_gold extracts it). Only trusted answer forms count
    (\\boxed, ####, "the answer is"): a bare number at the end earns nothing. With format_weight w:
        reward = (1 - w) * correct + w * [an answer was extractable in a trusted form]"""
    if not 0.0 <= format_weight <= 1.0:
        raise ValueError(f"format_weight must be in [0, 1], got {format_weight}")
    pred = extract_answer(completion)
    return (1.0 - format_weight) * is_equiv(pred, parse_gold(gold)) + format_weight * (pred is not None)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit('usage: python reward.py "<completion>" "<gold>"')
    completion, gold = sys.argv[1:]
    pred, gold_answer = extract_answer(completion), parse_gold(gold)
    last = "" if pred else f"   (the last number, {extract_answer(completion, True)!r}, is not trusted)"
    print(f"extracted  : {pred!r}{last}\ngold       : {gold_answer!r}")
    print(f"normalized : {normalize(pred)!r} vs {normalize(gold_answer)!r}")
    print(f"equivalent : {is_equiv(pred, gold_answer)}\nreward     : {math_reward(completion, gold)}")
