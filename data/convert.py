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

import reward

from . import iter_jsonl, write_jsonl

_CALC_RE = re.compile(r"<<[^<>]*>>")
_THOUSANDS_RE = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def strip_thousands(text: str) -> str:
    """``'1,450,000'`` -> ``'1450000'``; anything that is not a comma-grouped number is
    returned stripped but otherwise unchanged (``'1,2'`` stays)."""
    text = text.strip()
    return text.replace(",", "") if _THOUSANDS_RE.fullmatch(text) else text


def solution_answer(text: str) -> str | None:
    """The answer a worked solution states, parsed as the grader parses gold answers
    (``reward.solution_answer``: the last ``#### X``, with thousands commas removed, else the
    last ``\\boxed{...}`` as written). Raises ValueError when the last ``\\boxed{`` never closes."""
    answer = reward.solution_answer(text)
    if "####" in text:
        return strip_thousands(answer) if answer else None
    if answer is None and ("\\boxed" in text or "\\fbox" in text):
        raise ValueError("the last \\boxed{ is never closed (or is empty)")
    return answer


def gsm8k_record(rec: dict) -> dict:
    solution = rec["answer"]
    if "####" not in solution:
        raise ValueError("field 'answer' has no final '#### N' line")
    body = solution.rsplit("####", 1)[0]
    answer = solution_answer(solution)
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
        answer = solution_answer(solution)
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
        answer = solution_answer(response)
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
