"""Decontamination: find training problems that share a word n-gram with an evaluation benchmark problem.

Launch:

    python -m stagerl.data.decontaminate --data math-levels:1 math-levels:2 a-m-team/AM-Math-Difficulty-RL:1
    python -m stagerl.data.decontaminate --data train.jsonl --benchmarks math500,aime24 --ngram 8 --show 5

Choices, and why:
- Word n-grams (default 13, as in GPT-3's decontamination) over a normalised text: lower
  case, NFKC, every run of non-alphanumeric characters is a word break. So `$\\frac{1}{2}$` and
  `\\frac 1 2` compare equal, and LaTeX spacing or punctuation differences do not hide a copy.
- `[asy]...[/asy]` drawing code is removed first, and an n-gram that occurs in two or more benchmark problems
  is ignored: both are shared boilerplate (plot grids; "where m and n are relatively prime positive
  integers"), not evidence that one problem was copied.
- A match is reported with its overlap: the fraction of the benchmark problem's distinctive n-grams found in
  the training text (1.0 = the whole problem is there). `min_overlap` (default 0: any shared n-gram, the
  usual conservative rule) raises the bar. Checked on the shipped MATH train sample: 31 of 1500 problems
  match at 13-grams, none is a copy; they are templated siblings ("Convert the point ... to polar
  coordinates. Enter your answer in the form ...") at 1-75% overlap, while a copy sits at 100%.
- A text shorter than n words has one "n-gram": its whole word sequence. A short benchmark problem (e.g.
  "Compute $\\dbinom{31}{28}$.") matches any training text that contains it word for word; a short training
  text inside a long benchmark problem is not caught (lower `--ngram` to be stricter).
- Training text: a `problem`/`question`-like column when the rows have one (raw problem text), otherwise
  the user messages of the chat `prompt` column (rows from `stagerl.data.sources`). The instruction the prompt
  template adds never occurs in a benchmark problem, so n-grams that span it cannot match.
- Benchmarks are `stagerl.data.benchmarks` (shipped files, or jsonl paths); their `problem` field is compared.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

DEFAULT_NGRAM = 13
PROBLEM_COLUMNS = ("problem", "question", "query", "input")
_WORD = re.compile(r"[^\W_]+")
_ASY = re.compile(r"\[asy\].*?\[/asy\]", re.DOTALL | re.IGNORECASE)


def strip_drawings(text: str) -> str:
    """Remove Asymptote drawing code (`[asy]...[/asy]`): shared plotting boilerplate, not problem text."""
    return _ASY.sub(" ", text)


def words(text: str) -> list[str]:
    """Normalised words of a text (drawing code removed).

    >>> words(r"Find $\\frac{1}{2}$ of x_1, please. [asy]draw((0,0)--(1,1));[/asy]")
    ['find', 'frac', '1', '2', 'of', 'x', '1', 'please']
    """
    return _WORD.findall(unicodedata.normalize("NFKC", strip_drawings(text)).lower())


def ngrams(text: str, n: int = DEFAULT_NGRAM) -> set[str]:
    """The word n-grams of a text (its whole word sequence when shorter than n; empty for no words).

    >>> sorted(ngrams("a b c d", 3)), sorted(ngrams("a b", 3))
    (['a b c', 'b c d'], ['a b'])
    """
    if n < 1:
        raise ValueError(f"ngram={n}: must be >= 1")
    return _grams(words(text), n)


def _grams(w: list[str], n: int) -> set[str]:
    if not w:
        return set()
    if len(w) < n:
        return {" ".join(w)}
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


@dataclass(frozen=True)
class Match:
    """The benchmark problem a training text overlaps with most."""

    benchmark: str
    id: str
    ngram: str  # one shared n-gram, for the report
    overlap: float  # fraction of the benchmark problem's distinctive n-grams found in the training text


class BenchmarkIndex:
    """The n-grams of benchmark problems, each pointing at the one problem that has it.

    An n-gram found in two or more benchmark problems is boilerplate ("where m and n are relatively prime
    positive integers. Find m+n") and is left out: it says nothing about which problem was copied. A benchmark
    problem shorter than n words is one gram (its whole text), found in a training text that contains it.
    """

    def __init__(self, benchmarks: Sequence[str], ngram: int = DEFAULT_NGRAM, min_overlap: float = 0.0):
        """Index benchmark problems.

        Args:
            benchmarks: shipped benchmark names or jsonl paths (see `stagerl.data.benchmarks`).
            ngram: n of the word n-grams.
            min_overlap: a training text matches a benchmark problem when it shares more than this fraction
                of the problem's distinctive (non-boilerplate) n-grams (0 = any shared n-gram; 0.5 = most of
                the problem).
        """
        from stagerl.data.benchmarks import benchmark_name, load_benchmark

        if not 0 <= min_overlap < 1:
            raise ValueError(f"min_overlap={min_overlap}: must be in [0, 1)")
        self.ngram, self.min_overlap, self.benchmarks = ngram, min_overlap, list(benchmarks)
        owners: dict[str, set[tuple[str, str]]] = {}
        for spec in self.benchmarks:
            name = benchmark_name(spec)
            for row in load_benchmark(spec):
                for gram in ngrams(row["problem"], ngram):
                    owners.setdefault(gram, set()).add((name, str(row["id"])))
        self._grams = {gram: next(iter(o)) for gram, o in owners.items() if len(o) == 1}
        self.boilerplate = len(owners) - len(self._grams)
        self._sizes = Counter(self._grams.values())
        # Lengths of short benchmark problems, so a training text's word windows of those lengths are looked up.
        self._short = sorted({len(g.split()) for g in self._grams} - {ngram})

    def __len__(self) -> int:
        return len(self._grams)

    def match(self, text: str) -> Match | None:
        """The benchmark problem sharing the largest fraction of its n-grams with `text`, or None."""
        shared: dict[tuple[str, str], list[str]] = {}
        w = words(text)
        candidates = _grams(w, self.ngram).union(*(_grams(w, k) for k in self._short if k <= len(w)))
        for gram in candidates:
            owner = self._grams.get(gram)
            if owner is not None:
                shared.setdefault(owner, []).append(gram)
        if not shared:
            return None
        owner, grams = max(shared.items(), key=lambda kv: len(kv[1]) / self._sizes[kv[0]])
        overlap = len(grams) / self._sizes[owner]
        if overlap <= self.min_overlap:
            return None
        return Match(owner[0], owner[1], min(grams), round(overlap, 3))


def problem_text(row: dict, text_column: str | None = None) -> str:
    """The text of a training row that is compared with the benchmarks.

    Args:
        row: a training row.
        text_column: the column to use; default: the first of `PROBLEM_COLUMNS` present, else the user
            messages of a chat `prompt` (or a plain-string `prompt`).

    Returns:
        The text.

    >>> problem_text({"prompt": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "1+1?"}]})
    '1+1?'
    """
    if text_column is not None:
        if text_column not in row:
            raise ValueError(f"text_column={text_column!r} is not a column; columns found: {sorted(row)}")
        return str(row[text_column])
    for name in PROBLEM_COLUMNS:
        if name in row and row[name] is not None:
            return str(row[name])
    prompt = row.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return "\n".join(str(m.get("content", "")) for m in prompt if m.get("role") == "user")
    raise ValueError(
        f"cannot find the problem text (tried {list(PROBLEM_COLUMNS)} and a chat 'prompt'); "
        f"columns found: {sorted(row)}; set text_column"
    )


def find_contaminated(
    rows: Iterable[dict], index: BenchmarkIndex, text_column: str | None = None
) -> list[Match | None]:
    """One `Match` (or None) per row."""
    return [index.match(problem_text(row, text_column)) for row in rows]


def filter_contaminated(
    dataset,
    benchmarks: Sequence[str] | None = None,
    ngram: int = DEFAULT_NGRAM,
    text_column: str | None = None,
    min_overlap: float = 0.0,
):
    """Drop training rows that share a word n-gram with any benchmark problem.

    Args:
        dataset: a `datasets.Dataset` or a list of row dicts (rows from `stagerl.data.sources`, or any rows with a
            problem column).
        benchmarks: benchmark names or jsonl paths (default: all shipped ones).
        ngram: n of the word n-grams (default 13).
        text_column: the column holding the problem text (default: see `problem_text`).
        min_overlap: drop a row only when it shares more than this fraction of a benchmark problem's n-grams
            (default 0: any shared, non-boilerplate n-gram).

    Returns:
        `(dataset, removed_count)`, the dataset of the same type as given, in the same order.
    """
    from stagerl.data.benchmarks import DEFAULT_BENCHMARKS

    benchmarks = list(benchmarks or DEFAULT_BENCHMARKS)
    index = BenchmarkIndex(benchmarks, ngram, min_overlap)
    matches = find_contaminated(dataset, index, text_column)
    keep = [i for i, m in enumerate(matches) if m is None]
    removed = len(matches) - len(keep)
    logger.info(
        "decontamination: removed %d of %d rows sharing a %d-gram with %s",
        removed,
        len(matches),
        ngram,
        ",".join(benchmarks),
    )
    if isinstance(dataset, list):
        return [dataset[i] for i in keep], removed
    return (dataset.select(keep) if removed else dataset), removed


def build_parser() -> argparse.ArgumentParser:
    from stagerl.data.benchmarks import DEFAULT_BENCHMARKS

    p = argparse.ArgumentParser(
        prog="python -m stagerl.data.decontaminate", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--data", nargs="+", required=True, help="data components SOURCE[:LEVEL] (see stagerl.data)"
    )
    p.add_argument(
        "--benchmarks", default=",".join(DEFAULT_BENCHMARKS), help="comma-separated names or jsonl paths"
    )
    p.add_argument(
        "--ngram", type=int, default=DEFAULT_NGRAM, help=f"word n-gram size (default {DEFAULT_NGRAM})"
    )
    p.add_argument(
        "--min-overlap",
        type=float,
        default=0.0,
        help="match only above this fraction of a benchmark problem's n-grams (default 0: any)",
    )
    p.add_argument(
        "--text-column", default=None, help="question column of local files (default: auto-detected)"
    )
    p.add_argument("--show", type=int, default=3, help="matches printed per component (default 3)")
    return p


def main(argv: list[str] | None = None) -> dict:
    """Report overlaps per data component; returns `{spec: {"rows", "contaminated", "matches"}}`."""
    from stagerl.data.sources import DataComponent, load_component

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    index = BenchmarkIndex(benchmarks, args.ngram, args.min_overlap)
    report = {}
    for spec in args.data:
        component = DataComponent.parse(spec)
        component.check()
        rows = list(load_component(component, question_column=args.text_column))
        matches = find_contaminated(rows, index)
        hits = [
            {
                "id": row["id"],
                "benchmark": m.benchmark,
                "benchmark_id": m.id,
                "overlap": m.overlap,
                "ngram": m.ngram,
            }
            for row, m in zip(rows, matches, strict=True)
            if m is not None
        ]
        report[spec] = {"rows": len(rows), "contaminated": len(hits), "matches": hits}
        rule = f"a {args.ngram}-gram with"
        if args.min_overlap:
            rule = f"more than {args.min_overlap:.0%} of the {args.ngram}-grams of"
        print(f"{spec}: {len(hits)} of {len(rows)} rows share {rule} {','.join(benchmarks)}")
        for hit in hits[: args.show]:
            print(
                f"  {hit['id']} ~ {hit['benchmark']}/{hit['benchmark_id']} "
                f"(overlap {hit['overlap']:.0%}): {json.dumps(hit['ngram'])}"
            )
    return report


if __name__ == "__main__":
    main()
