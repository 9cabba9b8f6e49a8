"""Rows on disk, so a CSV of millions of rows costs bounded memory: :class:`RowSpill` (file order) and
:class:`ExternalSort` (a merge sort). The files are this process's own scratch, written with :mod:`marshal`."""

from __future__ import annotations

import heapq
import marshal
from pathlib import Path
from typing import Iterable, Iterator, List

from .annotations import AnnotationRow

__all__ = ["ExternalSort", "RowSpill"]

#: Runs merged at once; more are first merged into longer runs (open files stay few).
MAX_FAN_IN = 64
_BATCH = 4096


def _dump(batch: List[tuple], f) -> None:
    data = marshal.dumps(batch)
    f.write(len(data).to_bytes(8, "little"))
    f.write(data)


def _write(path: Path, items: Iterable[tuple]) -> None:
    batch: List[tuple] = []
    with open(path, "wb") as f:
        for x in items:
            batch.append(x)
            if len(batch) == _BATCH:
                _dump(batch, f)
                batch = []
        if batch:
            _dump(batch, f)


def _read(path: Path) -> Iterator[tuple]:
    with open(path, "rb") as f:
        while size := f.read(8):
            yield from marshal.loads(f.read(int.from_bytes(size, "little")))


class RowSpill:
    """The checked rows in a file, in file order: :meth:`write` them inside ``with``, then iterate."""

    def __init__(self, path: Path):
        self.path = path
        self._batch: List[tuple] = []
        self._file = None

    def __enter__(self) -> "RowSpill":
        self._file = open(self.path, "wb")
        return self

    def __exit__(self, *exc) -> None:
        if self._batch:
            _dump(self._batch, self._file)
            self._batch = []
        self._file.close()
        self._file = None

    def write(self, r: AnnotationRow) -> None:
        self._batch.append((r.line, r.video_id, r.split, r.time, r.box, r.action, r.person))
        if len(self._batch) == _BATCH:
            _dump(self._batch, self._file)
            self._batch = []

    def __iter__(self) -> Iterator[AnnotationRow]:
        for t in _read(self.path):
            yield AnnotationRow(*t)


class ExternalSort:
    """Sort more tuples than fit in memory: :meth:`add` them, then iterate :meth:`sorted`.

    Args:
        folder: where the run files go (the caller removes it).
        chunk_rows: tuples held in memory at once.
    """

    def __init__(self, folder: Path, chunk_rows: int = 200_000):
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        self.folder, self.chunk_rows = folder, chunk_rows
        self._chunk: List[tuple] = []
        self._runs: List[Path] = []
        self._made = 0

    def add(self, item: tuple) -> None:
        self._chunk.append(item)
        if len(self._chunk) >= self.chunk_rows:
            self._flush()

    def _new_run(self, items: Iterable[tuple]) -> None:
        path = self.folder / f"run{self._made:06d}.bin"
        self._made += 1
        _write(path, items)
        self._runs.append(path)

    def _flush(self) -> None:
        self._chunk.sort()
        self._new_run(self._chunk)
        self._chunk = []

    def sorted(self) -> Iterator[tuple]:
        """All tuples added, in order."""
        if not self._runs:
            self._chunk.sort()
            yield from self._chunk
            return
        if self._chunk:
            self._flush()
        while len(self._runs) > MAX_FAN_IN:
            first, self._runs = self._runs[:MAX_FAN_IN], self._runs[MAX_FAN_IN:]
            self._new_run(heapq.merge(*map(_read, first)))
            for p in first:
                p.unlink()
        yield from heapq.merge(*map(_read, self._runs))
