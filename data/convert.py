"""Convert public math datasets to the project's record format (see ``data/__init__.py``).

    python -m data.convert gsm8k   IN.jsonl OUT.jsonl
    python -m data.convert math    IN.jsonl OUT.jsonl
    python -m data.convert generic IN.jsonl OUT.jsonl [--prompt-field F]
                                   [--response-field F] [--answer-field F]

    # every split a run needs, from one command (GSM8K's train.jsonl and test.jsonl):
    python -m data.convert gsm8k train.jsonl --split-to data/gsm8k --test-file test.jsonl \\
        --val 200 --rl 2000 --seed 0      # -> data/gsm8k/{sft,val,rl,test}.jsonl

--split-to DIR shuffles IN with --seed and cuts it into val (--val records), rl (--rl) and sft
(the rest), so the three are disjoint by construction: RL never trains on a prompt SFT showed it,
and the validation problems are in neither. test.jsonl is --test-file converted, or without one
--test records cut from IN as well. Only the test split is for evaluate.py's final numbers.

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
import random
import re
import sys
from pathlib import Path

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


def split_records(records: list[dict], val: int, rl: int, test: int, seed: int) -> dict[str, list[dict]]:
    """Seeded, disjoint ``{"val", "rl", "test", "sft"}`` cuts of ``records`` (test may be 0)."""
    if min(val, rl, test) < 0 or val + rl + test >= len(records):
        raise ValueError(f"--val {val} + --rl {rl} + --test {test} leave no SFT records out of {len(records)}")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    cuts, start = {}, 0
    for name, n in (("val", val), ("rl", rl), ("test", test)):
        cuts[name] = [records[i] for i in order[start:start + n]]
        start += n
    cuts["sft"] = [records[i] for i in order[start:]]
    return cuts


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
        p.add_argument("dst", nargs="?", help="output .jsonl (or --split-to)")
        p.add_argument("--split-to", metavar="DIR", help="write DIR/{sft,val,rl,test}.jsonl instead")
        p.add_argument("--test-file", help="with --split-to: the dataset's own test split, converted to test.jsonl")
        p.add_argument("--val", type=int, default=200, help="with --split-to: validation records")
        p.add_argument("--rl", type=int, default=1000, help="with --split-to: RL prompts")
        p.add_argument("--test", type=int, default=0, help="with --split-to and no --test-file: test records cut from IN")
        p.add_argument("--seed", type=int, default=0)
        if kind == "generic":
            p.add_argument("--prompt-field", default="prompt")
            p.add_argument("--response-field", default="response")
            p.add_argument("--answer-field", default="answer")
    args = parser.parse_args(argv)
    if (args.dst is None) == (args.split_to is None):
        parser.error("give an output file or --split-to DIR")
    fields = {}
    if args.kind == "generic":
        fields = dict(prompt_field=args.prompt_field, response_field=args.response_field,
                      answer_field=args.answer_field)
    try:
        if args.dst is not None:
            print(f"wrote {convert_file(args.kind, args.src, args.dst, **fields)} records to {args.dst}")
            return 0
        records = convert_records(args.kind, args.src, **fields)
        splits = split_records(records, args.val, args.rl, 0 if args.test_file else args.test, args.seed)
        if args.test_file:
            splits["test"] = convert_records(args.kind, args.test_file, **fields)
        for name in ("sft", "val", "rl", "test"):
            if splits[name]:
                path = write_jsonl(Path(args.split_to) / f"{name}.jsonl", splits[name])
                print(f"wrote {len(splits[name])} records to {path}")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
