"""The cases a bench already measured, so that ``docmill bench --resume`` runs only the rest.

A case is known by (strategy, workers, workload, size, complexity, repetition). That key is not
unique within a matrix: the sequential baseline runs at the start *and* the end of every
repetition. So the rows are counted per key and matched in the order the cases run: a key measured
once skips its first case and leaves the second to run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docmill.bench.harness import BenchCase, BenchRow

CaseKey = tuple[str, int, str, int, str, int]
Cell = tuple[str, int, str]


def case_key(case: BenchCase | BenchRow) -> CaseKey:
    return (case.strategy, case.workers, case.workload, case.size_kb, case.complexity, case.repeat)


class MeasuredCases:
    """Rows of an earlier run of the same matrix: what to skip, and each cell's document count."""

    def __init__(self, rows: Iterable[BenchRow] = ()) -> None:
        self._counts: Counter[CaseKey] = Counter()
        self._n_docs: dict[Cell, int] = {}
        for row in rows:
            self._counts[case_key(row)] += 1
            self._n_docs.setdefault((row.workload, row.size_kb, row.complexity), row.n_docs)

    def n_docs(self, cell: Cell) -> int | None:
        """The documents per case the earlier run calibrated for ``cell`` (None: it measured none)."""
        return self._n_docs.get(cell)

    def remaining(self, cases: Sequence[BenchCase]) -> list[BenchCase]:
        """``cases`` without those measured already (each row accounts for one case)."""
        left = Counter(self._counts)
        todo = []
        for case in cases:
            key = case_key(case)
            if left[key] > 0:
                left[key] -= 1
            else:
                todo.append(case)
        return todo
