"""Convert public math datasets to the project's record format (see ``data/__init__.py``).

    python -m data.convert gsm8k   IN.jsonl OUT.jsonl
    python -m data.convert math    IN.jsonl OUT.jsonl
    python -m data.convert generic IN.jsonl OUT.jsonl [--prompt-field F]
                                   [--response-field F] [--answer-field F]

- ``gsm8k``: fields ``question`` and ``answer`` (a solution ending in ``#### N``).
  prompt = question; response = the solution with the calculator annotations
  ``<<48/2=24>>`` removed and its last line rewritten as ``#### N``; answer = N with
  thousands commas removed (``1,450,000`` -> ``1450000``).
- ``math`` (MATH, MATH500, and AIME-style files): fields ``problem``, ``solution``,
  ``answer``. prompt = problem; response = solution (``""`` if absent); answer = the
  ``answer`` field, or if it is absent the content of the last ``\\boxed{...}`` of the
  solution (brace-matched).
- ``generic``: prompt/response records with configurable field names. The answer field is
  optional: without it the answer is taken from the last ``#### X`` of the response, else
  from its last ``\\boxed{...}``, else it is an error.

Every error is one line naming the file and the 1-based line number.
"""

from __future__ import annotations

import argparse
import re
import sys

from . import iter_jsonl, write_jsonl

_CALC_RE = re.compile(r"<<[^<>]*>>")
_THOUSANDS_RE = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_BOXED_RE = re.compile(r"\\boxed\s*\{")


def strip_thousands(text: str) -> str:
    """``'1,450,000'`` -> ``'1450000'``; anything that is not a comma-grouped number is
    returned stripped but otherwise unchanged (``'1,2'`` stays)."""
    text = text.strip()
    return text.replace(",", "") if _THOUSANDS_RE.fullmatch(text) else text


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` in ``text``, found by a balanced-brace scan.

    A backslash escapes the next character, so ``\\{`` and ``\\}`` do not count as braces
    (and ``\\\\{`` does). Returns None when there is no ``\\boxed{``; raises ValueError
    when the last one is never closed.
    """
    starts = [m.end() for m in _BOXED_RE.finditer(text)]
    if not starts:
        return None
    start = starts[-1]
    depth, i = 1, start
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start:i].strip()
        i += 1
    raise ValueError("the last \\boxed{ is never closed")


def final_hash_answer(text: str) -> str | None:
    """The text after the last ``####`` up to the end of its line, thousands commas
    removed; None if there is no ``####`` or nothing follows it."""
    if "####" not in text:
        return None
    tail = text.rsplit("####", 1)[1].split("\n", 1)[0]
    return strip_thousands(tail) or None


def gsm8k_record(rec: dict) -> dict:
    solution = rec["answer"]
    if "####" not in solution:
        raise ValueError("field 'answer' has no final '#### N' line")
    body, final = solution.rsplit("####", 1)
    answer = strip_thousands(final)
    if not answer:
        raise ValueError("nothing after '####' in field 'answer'")
    body = _CALC_RE.sub("", body).rstrip()
    response = f"{body}\n#### {answer}" if body else f"#### {answer}"
    return {"prompt": rec["question"], "response": response, "answer": answer}


def math_record(rec: dict) -> dict:
    solution = rec.get("solution", "")
    if not isinstance(solution, str):
        raise ValueError(f"field 'solution' must be a string, got {type(solution).__name__}")
    if "answer" in rec:
        answer = rec["answer"]
        if not isinstance(answer, str):
            raise ValueError(f"field 'answer' must be a string, got {type(answer).__name__}")
        answer = answer.strip()
    else:
        answer = last_boxed(solution)
        if answer is None:
            raise ValueError("no field 'answer' and no \\boxed{...} in field 'solution'")
    if not answer:
        raise ValueError("empty answer")
    return {"prompt": rec["problem"], "response": solution, "answer": answer}


def generic_record(rec: dict, prompt_field="prompt", response_field="response",
                   answer_field="answer") -> dict:
    response = rec[response_field]
    if answer_field in rec:
        answer = rec[answer_field]
        if isinstance(answer, bool) or not isinstance(answer, (str, int)):
            raise ValueError(
                f"field {answer_field!r} must be a string, got {type(answer).__name__}"
            )
        answer = str(answer).strip()
    else:
        answer = final_hash_answer(response)
        if answer is None:
            answer = last_boxed(response)
        if answer is None:
            raise ValueError(
                f"no field {answer_field!r}, and field {response_field!r} has neither "
                "'#### X' nor \\boxed{...}"
            )
    if not answer:
        raise ValueError("empty answer")
    return {"prompt": rec[prompt_field], "response": response, "answer": answer}


def convert_records(kind: str, path, prompt_field="prompt", response_field="response",
                    answer_field="answer") -> list[dict]:
    """Read ``path`` and convert every record; errors name ``path:line``."""
    if kind == "gsm8k":
        need, fn = ("question", "answer"), gsm8k_record
    elif kind == "math":
        need, fn = ("problem",), math_record
    elif kind == "generic":
        need = (prompt_field, response_field)

        def fn(rec):
            return generic_record(rec, prompt_field, response_field, answer_field)
    else:
        raise ValueError(f"unknown dataset kind {kind!r} (gsm8k, math, generic)")
    out = []
    for lineno, rec in iter_jsonl(path, need=need):
        try:
            out.append(fn(rec))
        except ValueError as e:
            raise ValueError(f"{path}:{lineno}: {e}") from None
    return out


def convert_file(kind: str, src, dst, **fields) -> int:
    """Convert ``src`` into ``dst`` (written atomically); returns the record count."""
    records = convert_records(kind, src, **fields)
    write_jsonl(dst, records)
    return len(records)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data.convert",
        description="Convert a math dataset to prompt/response/answer JSON lines.",
    )
    sub = parser.add_subparsers(dest="kind", required=True)
    for kind, help_ in [
        ("gsm8k", "GSM8K: question, answer ending in '#### N'"),
        ("math", "MATH / MATH500: problem, solution, answer (or last \\boxed{})"),
        ("generic", "prompt/response records; answer optional"),
    ]:
        p = sub.add_parser(kind, help=help_)
        p.add_argument("src", help="input .jsonl")
        p.add_argument("dst", help="output .jsonl")
        if kind == "generic":
            p.add_argument("--prompt-field", default="prompt")
            p.add_argument("--response-field", default="response")
            p.add_argument("--answer-field", default="answer")
    args = parser.parse_args(argv)
    fields = {}
    if args.kind == "generic":
        fields = dict(prompt_field=args.prompt_field, response_field=args.response_field,
                      answer_field=args.answer_field)
    try:
        n = convert_file(args.kind, args.src, args.dst, **fields)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {n} records to {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
