"""Rows on disk, so that a CSV of millions of rows costs bounded memory: the checked rows in file order
(:class:`RowSpill`), and an external merge sort (:class:`ExternalSort`: sorted runs of ``chunk_rows`` rows,
merged lazily)."""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Callable, Dict, Generic, Iterator, List, TypeVar

from .annotations import SPLITS, AnnotationRow

__all__ = ["ExternalSort", "RowSpill"]

T = TypeVar("T")

#: Runs merged at once; more are first merged into longer runs (open files stay few).
MAX_FAN_IN = 64


class RowSpill:
    """The checked rows of the annotation CSV in a text file, in file order (numbers exactly as parsed:
    floats by ``repr``; video ids and action names by index, so no text needs quoting).

    Args:
        path: the file to write (then read back).
    """

    def __init__(self, path: Path):
        self.path = path
        self._index: Dict[str, int] = {}
        self._names: List[str] = []
        self._file = None

    def __enter__(self) -> "RowSpill":
        self._file = open(self.path, "w", encoding="utf-8", newline="\n")
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()
        self._file = None

    def _id(self, name: str) -> int:
        i = self._index.get(name)
        if i is None:
            i = self._index[name] = len(self._names)
            self._names.append(name)
        return i

    def write(self, r: AnnotationRow) -> None:
        x1, y1, x2, y2 = r.box
        self._file.write(
            f"{r.line},{SPLITS.index(r.split)},{self._id(r.video_id)},{r.time},{r.person},{self._id(r.action)},"
            f"{x1!r},{y1!r},{x2!r},{y2!r}\n"
        )

    def __iter__(self) -> Iterator[AnnotationRow]:
        names = self._names
        with open(self.path, encoding="utf-8", newline="\n") as f:
            for text in f:
                line, s, v, t, p, a, x1, y1, x2, y2 = text.split(",")
                yield AnnotationRow(
                    int(line),
                    names[int(v)],
                    SPLITS[int(s)],
                    int(t),
                    (float(x1), float(y1), float(x2), float(y2)),
                    names[int(a)],
                    int(p),
                )


class ExternalSort(Generic[T]):
    """Sort more items than fit in memory: :meth:`add` them, then iterate :meth:`sorted`. Every
    ``chunk_rows`` items are sorted and written to a run file in ``folder`` as one line each; the runs are
    merged while read.

    Args:
        folder: where the run files go (the caller removes it).
        encode: an item as one line of text (no newline inside).
        decode: the line back to an item (same order).
        chunk_rows: items held in memory at once.
    """

    def __init__(self, folder: Path, encode: Callable[[T], str], decode: Callable[[str], T], chunk_rows: int = 200_000):
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        self.folder, self.encode, self.decode, self.chunk_rows = folder, encode, decode, chunk_rows
        self._chunk: List[T] = []
        self._runs: List[Path] = []
        self._made = 0

    def add(self, item: T) -> None:
        self._chunk.append(item)
        if len(self._chunk) >= self.chunk_rows:
            self._flush()

    def _new_run(self) -> Path:
        path = self.folder / f"run{self._made:06d}.txt"
        self._made += 1
        self._runs.append(path)
        return path

    def _flush(self) -> None:
        self._chunk.sort()
        with open(self._new_run(), "w", encoding="utf-8", newline="\n") as f:
            f.writelines(self.encode(x) + "\n" for x in self._chunk)
        self._chunk = []

    def _read(self, path: Path) -> Iterator[T]:
        decode = self.decode
        with open(path, encoding="utf-8", newline="\n") as f:
            for text in f:
                yield decode(text[:-1])

    def sorted(self) -> Iterator[T]:
        """All items added, in order (ties in the order :func:`heapq.merge` gives: equal items are equal)."""
        if not self._runs:
            self._chunk.sort()
            yield from self._chunk
            return
        if self._chunk:
            self._flush()
        while len(self._runs) > MAX_FAN_IN:
            first, self._runs = self._runs[:MAX_FAN_IN], self._runs[MAX_FAN_IN:]
            with open(self._new_run(), "w", encoding="utf-8", newline="\n") as f:
                f.writelines(self.encode(x) + "\n" for x in heapq.merge(*map(self._read, first)))
            for p in first:
                p.unlink()
        yield from heapq.merge(*map(self._read, self._runs))
