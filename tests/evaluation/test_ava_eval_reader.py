"""The evaluator's CSV reading: the fast path (``np.loadtxt`` after a scan) gives exactly what the general,
row-by-row reader gives, or leaves the file to it; random files with every odd case the two must agree on."""

from __future__ import annotations

import logging
import random

import numpy as np
import pytest

from vmae_det.formats import ava
from vmae_det.formats.ava import AVAFormatError, read_ava_csv

VIDEOS = ["v", "vid0000001", "-5KQ66BBWC4", "a b", " v", "v ", "x\t", "caf\u00e9", "q,1", 'q"x', "", "v" * 300]
NUMBERS = [
    *("0.1", "0.25", "1", "1.0", "0", "-0.0", "0.000", ".5", "5.", "1e-3", "1E2", "+0.5", " 0.5", "0.5 ", "nan"),
    *("inf", "-inf", "", "x", "1_0", "0x1p3", "0.12345678901234567", "-0.5", "00.50", "1e", "1-2", "--1", "."),
]
ACTIONS = ["3", "03", "80", "-1", "+3", " 3", "3 ", "3.0", "", "walk", "99999999999", "1_2", "0"]
STAMPS = ["0902", "902", "0902.5", "1798", "", "abc", " 0902", "902.000000"]
OPTIONS = [
    {},
    {"strip": True},
    {"columns": (8,)},
    {"optional_action": True},
    {"columns": (7, 8), "optional_score": True},
]


def random_csv(rng: random.Random) -> bytes:
    """A small AVA-like CSV: regular rows, and in most files a sprinkle of odd fields, quotes, blank lines,
    CRLF, a byte-order mark or a non-UTF-8 byte."""
    ncols, odd = rng.choice([7, 8, 8]), rng.random() < 0.6
    decimals = rng.choice([1, 3, 4, 17])
    lines = []
    for _ in range(rng.randint(0, 12)):
        if odd and rng.random() < 0.08:
            lines.append(rng.choice(["", " ", "\r", "v,0902", "v,0902,0.1", ",,,,,,,"]))
            continue
        vid = rng.choice(VIDEOS) if odd and rng.random() < 0.3 else rng.choice(["v1", "vid0000001", "v2"])
        if ('"' in vid or "," in vid) and rng.random() < 0.7:
            vid = '"' + vid.replace('"', '""') + '"'
        fields = [
            vid,
            rng.choice(STAMPS) if odd and rng.random() < 0.2 else rng.choice(["0902", "0903", "1798"]),
            *(rng.choice(NUMBERS) if odd and rng.random() < 0.15 else f"{rng.random():.{decimals}f}" for _ in range(4)),
            rng.choice(ACTIONS) if odd and rng.random() < 0.15 else str(rng.randint(1, 80)),
        ]
        if ncols == 8:
            fields.append(rng.choice(NUMBERS) if odd and rng.random() < 0.15 else f"{rng.random():.4f}")
        if odd and rng.random() < 0.05:
            fields = fields[: rng.choice([1, 2, 6, 7, 8])]
        lines.append(",".join(fields))
    newline = "\r\n" if odd and rng.random() < 0.15 else "\n"
    data = (newline.join(lines) + (newline if rng.random() < 0.85 else "")).encode()
    if odd and rng.random() < 0.05:
        data = b"\xef\xbb\xbf" + data
    if odd and rng.random() < 0.03:
        data = data.replace(b"1", b"\xe9", 1)
    return data


def outcome(read, path, options) -> tuple:
    """Everything a reader returns (floats bit for bit), or the error it raises."""
    try:
        r = read(path, **options)
    except (AVAFormatError, ValueError) as e:
        return ("error", type(e).__name__, str(e))
    return (
        r.str_column("video_ids"),
        r.str_column("timestamps"),
        r.boxes.tobytes(),
        r.action_ids.tolist(),
        r.scores.tobytes(),
        r.lines.tolist(),
        r.empty_frames,
        r.empty_frame_lines,
    )


def general(path, **options):
    return ava._read_general(path, **options)


@pytest.mark.parametrize("scan_chunk", [ava._SCAN_CHUNK, 64])  # 64 bytes: every file spans several chunks
def test_reader_equals_the_general_reader_on_random_files(tmp_path, monkeypatch, caplog, scan_chunk):
    monkeypatch.setattr(ava, "_SCAN_CHUNK", scan_chunk)
    caplog.set_level(logging.ERROR, logger=ava.__name__)  # blank-line warnings of the general reader
    path, fast = str(tmp_path / "r.csv"), 0
    for seed in range(600):
        rng = random.Random(seed)
        with open(path, "wb") as f:
            f.write(random_csv(rng))
        options = rng.choice(OPTIONS)
        assert outcome(read_ava_csv, path, options) == outcome(general, path, options), (seed, options)
        fast += ava._read_fast(path, options.get("columns", (2, 7, 8)), options.get("strip", False)) is not None
    assert fast > 150  # the fast path did read a good share of them


def test_blank_line_after_the_first_chunk_keeps_line_numbers(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(ava, "_SCAN_CHUNK", 64)
    row = "v,0902,0.1,0.2,0.3,0.4,3,0.5\n"
    path = tmp_path / "b.csv"
    path.write_text(row * 5 + "\n" + row.replace("0.5\n", "x\n"))
    assert ava._read_fast(str(path)) is None
    with pytest.raises(AVAFormatError, match=r"b\.csv:7: score must be a number, got 'x'"):
        read_ava_csv(path)
    path.write_text(row * 5 + "\r\n" + row)
    with caplog.at_level(logging.WARNING, logger=ava.__name__):
        rows = read_ava_csv(path)
    assert rows.lines.tolist() == [1, 2, 3, 4, 5, 7] and "skipped 1 blank line" in caplog.text


def test_fast_path_reads_a_regular_file_exactly(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.csv"
    values = rng.random((2000, 5))
    path.write_text(
        "".join(
            f"vid{i // 50:07d},{902 + i % 7:04d},{b[0]:.3f},{b[1]:.3f},{b[2]:.5f},{b[3]!r},{1 + i % 80},{b[4]:.4f}\n"
            for i, b in enumerate(values.tolist())
        )
    )
    fast = ava._read_fast(str(path))
    assert fast is not None and len(fast) == 2000
    assert outcome(read_ava_csv, str(path), {}) == outcome(general, str(path), {})
