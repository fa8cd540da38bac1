"""Data records and JSON-lines I/O shared by every stage.

Every stage (pretraining, SFT, RL, evaluation) reads the same record format, one JSON
object per line:

    {"prompt": "...", "response": "...", "answer": "..."}

- ``prompt``   the question, exactly the text the model is conditioned on;
- ``response`` a worked solution (the SFT target); ``prompt + response`` is the full text;
- ``answer``   the gold final answer as a string (what RL rewards and evaluation checks).

Synthetic records (``data.synthetic``) also carry ``"steps": k`` and
``"style": "lookback" | "carry"``. Public datasets are turned into this format by
``data.convert``.

Every stage reads its data through ``load_split`` (a file, or with none the synthetic task's
default split) and walks it with ``EpochIterator`` (a seeded order per epoch; its position is
all a checkpoint needs to resume it).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

__all__ = ["read_jsonl", "iter_jsonl", "write_jsonl", "load_split", "hold_out", "epoch_order", "EpochIterator"]


def iter_jsonl(path, need=("prompt", "answer")) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for every non-blank line of a JSON-lines file.

    Line numbers are 1-based. Every field in ``need`` must be present and a string.
    Every problem raises ``ValueError`` with a one-line message that names the file
    (and the line, where there is one): missing file, undecodable or malformed line,
    a line that is not a JSON object, a missing or non-string needed field, and a
    file without any record.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file")
    count = 0
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not UTF-8 text ({e.reason})") from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(
                    f"{path}:{lineno}: malformed JSON ({e.msg}, column {e.colno})"
                ) from None
            if not isinstance(rec, dict):
                raise ValueError(
                    f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}"
                )
            for field in need:
                if field not in rec:
                    raise ValueError(f"{path}:{lineno}: missing field {field!r}")
                if not isinstance(rec[field], str):
                    raise ValueError(
                        f"{path}:{lineno}: field {field!r} must be a string, "
                        f"got {type(rec[field]).__name__}"
                    )
            count += 1
            yield lineno, rec
    if count == 0:
        raise ValueError(f"{path}: empty file (no records)")


def read_jsonl(path, need=("prompt", "answer")) -> list[dict]:
    """Read a JSON-lines file into a list of dicts; see ``iter_jsonl`` for the checks."""
    return [rec for _, rec in iter_jsonl(path, need)]


def write_jsonl(path, records: Iterable[dict]) -> Path:
    """Write records as JSON lines, atomically: a temporary file in the same folder is
    written, flushed and then renamed over ``path`` (``os.replace``), so readers never see
    a half-written file and a failure leaves the old file untouched. Parent folders are
    created. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_split(path, split, need=("prompt", "answer")) -> list[tuple[str, dict]]:
    """``[(where, record)]`` of a JSON-lines file, or with ``path`` None the default synthetic
    task's split ``split`` (generated in memory: no files needed on a fresh machine; see
    ``data.synthetic.default_split``). ``where`` ("line 3", "#3") is for messages."""
    if path is None:
        from .synthetic import default_split

        return [(f"#{i + 1}", r) for i, r in enumerate(default_split(split))]
    return [(f"line {line}", r) for line, r in iter_jsonl(path, need)]


def hold_out(records, n, seed):
    """``(rest, held)``: ``n`` records drawn with ``seed`` and kept out of the rest, for evaluating a
    run on its own data when no held-out file is given (never on the synthetic task)."""
    if n >= len(records):
        raise ValueError(f"cannot hold out {n} of {len(records)} records and still train on some: lower --eval-size or give --eval-data")
    held = set(random.Random(f"hold-out/{seed}").sample(range(len(records)), n))
    return [r for i, r in enumerate(records) if i not in held], [r for i, r in enumerate(records) if i in held]


def epoch_order(n, seed, epoch):
    """0..n-1 in a seeded order of its own per epoch."""
    order = list(range(n))
    random.Random(f"{seed}/{epoch}").shuffle(order)
    return order


class EpochIterator:
    """Items of ``make_order(epoch)``, one epoch after the other, forever. ``(epoch, pos)`` is
    its whole state: the same order function and state continue exactly where a run stopped."""

    def __init__(self, make_order, epoch=0, pos=0):
        self.make_order, self.epoch, self.pos = make_order, epoch, pos
        self.order = make_order(epoch)

    def __iter__(self):
        return self

    def __next__(self):
        if self.pos == len(self.order):
            self.epoch, self.pos = self.epoch + 1, 0
            self.order = self.make_order(self.epoch)
        self.pos += 1
        return self.order[self.pos - 1]
