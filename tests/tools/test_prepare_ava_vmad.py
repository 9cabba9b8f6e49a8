"""tools/prepare_ava_vmad.py: raw AVA movies -> VMAD's processed AVA (AlphAction's preprocessing).

Synthetic "raw movies" whose frames carry their own index as 12 black/white blocks; the clips are decoded
back to check which source frame each output frame is. The movies start at AVA second 901
(``--time-offset 901``) and the clips cover seconds 902-906 (file time 1-6 s) instead of 895-1805.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vmae_det.data.ava import vmad_preprocess as vp
from vmae_det.formats.ava import read_labelmap, write_labelmap
from vmae_det.formats.video_writer import VideoWriter
from vmae_det.formats.vmad_layout import (
    read_alphaction_boxes,
    read_image_annotations,
    read_image_info,
)
from vmae_det.tools import prepare_ava_vmad as tool

ROOT = Path(__file__).resolve().parents[2]
START, END, OFFSET = 902, 906, 901
N_CLIPS = END - START + 1
#: movie -> (split, fps, width, height, seconds long): two sizes that are scaled, one that is not (short side
#: 240 <= 360); 29.97, 30 and 25 fps.
MOVIES = {
    "valAAAAAAAA": ("val", Fraction(30000, 1001), 640, 480, 6.4),
    "trnBBBBBBBB": ("train", Fraction(30), 1280, 720, 6.4),
    "valCCCCCCCC": ("val", Fraction(25), 320, 240, 6.4),
}
#: Movie list order (numbers the image ids): not the sorted order.
MOVIE_LIST = ["valCCCCCCCC.mkv", "zzzunused.mp4", "trnBBBBBBBB.mkv", "valAAAAAAAA.webm"]
GT = {
    "val": [
        ("valAAAAAAAA", 903, (0.1, 0.2, 0.5, 0.9), 12, 0),
        ("valAAAAAAAA", 903, (0.1, 0.2, 0.5, 0.9), 80, 0),
        ("valAAAAAAAA", 905, (0.305, 0.25, 0.6, 0.8), 11, 1),
        ("valCCCCCCCC", 904, (0.0, 0.0, 1.0, 1.0), 14, 2),
    ],
    "train": [("trnBBBBBBBB", 902, (0.2, 0.1, 0.4, 0.7), 17, 0)],
}
EXCLUDED = {"val": [("valAAAAAAAA", 904)], "train": []}
BOXES = [
    ("valAAAAAAAA", 903, (0.1, 0.2, 0.5, 0.9), 0.95),
    ("valAAAAAAAA", 903, (0.6, 0.1, 0.9, 0.5), 0.5),
    ("valCCCCCCCC", 905, (0.25, 0.125, 0.75, 0.875), 0.875),
    ("trnBBBBBBBB", 902, (0.2, 0.1, 0.4, 0.7), 0.99),
]  # not a val movie: left out


# ---------------------------------------------------------------------------------------------- fixtures
def _frame(k: int, w: int, h: int) -> np.ndarray:
    f = np.full((h, w, 3), 90, np.uint8)
    cw, ch = w // 4, h // 3
    for b in range(12):
        r, c = divmod(b, 4)
        f[r * ch + ch // 4 : r * ch + 3 * ch // 4, c * cw + cw // 4 : c * cw + 3 * cw // 4] = 255 if (k >> b) & 1 else 0
    return f


def _code(luma: np.ndarray) -> int:
    """The source frame index drawn by :func:`_frame`, read from the luma of a (scaled, encoded) frame."""
    h, w = luma.shape[:2]
    k = 0
    for b in range(12):
        r, c = divmod(b, 4)
        y, x = int((r + 0.5) * h / 3), int((c + 0.5) * w / 4)
        if luma[y - 2 : y + 3, x - 2 : x + 3].mean() > 128:
            k |= 1 << b
    return k


def _write_movie(path: Path, fps, w: int, h: int, seconds: float) -> None:
    with VideoWriter(str(path), fps, w, h, crf=18, preset="ultrafast", options={"g": "12"}, codec="libx264") as wr:
        for k in range(int(seconds * fps)):
            wr.write(_frame(k, w, h))


def _csv(path: Path, rows) -> None:
    path.write_text("".join(",".join(str(v) for v in r) + "\n" for r in rows))


def _write_annotations(folder: Path, movie_list: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    from vmae_det.evaluation.ava_io import DEFAULT_LABEL_MAP

    write_labelmap(folder / "ava_action_list_v2.2_for_activitynet_2019.pbtxt", read_labelmap(DEFAULT_LABEL_MAP))
    for split in ("train", "val"):
        _csv(folder / f"ava_{split}_v2.2.csv", [(m, f"{s:04d}", *box, a, p) for m, s, box, a, p in GT[split]])
        _csv(folder / f"ava_{split}_excluded_timestamps_v2.2.csv", [(m, f"{s:04d}") for m, s in EXCLUDED[split]])
    if movie_list:
        (folder / vp.MOVIE_LIST_FILE).write_text("\n".join(MOVIE_LIST) + "\n")


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """``(movies folder, annotations folder, person-box CSV)``, made once."""
    root = tmp_path_factory.mktemp("raw_ava")
    movies = root / "movies"
    movies.mkdir()
    for movie, (_, fps, w, h, sec) in MOVIES.items():
        _write_movie(movies / f"{movie}.{'mkv' if movie.startswith('trn') else 'mp4'}", fps, w, h, sec)
    _write_annotations(root / "annotations")
    _csv(root / "boxes.csv", [(m, s, *box, "", score) for m, s, box, score in BOXES])
    return movies, root / "annotations", root / "boxes.csv"


def _argv(raw, out, *extra):
    movies, ann, boxes = raw
    return [
        "--movies",
        str(movies),
        "--annotations",
        str(ann),
        "--person-boxes",
        str(boxes),
        "--out",
        str(out),
        "--start-sec",
        str(START),
        "--end-sec",
        str(END),
        "--time-offset",
        str(OFFSET),
        "--preset",
        "ultrafast",
        "--quiet",
        *extra,
    ]


@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("vmad") / "ava"
    assert tool.main(_argv(raw, out)) == 0
    return out


def _run_cli(argv, monkeypatch, capsys):
    """``vmae-prepare-ava-vmad argv`` through the console-script entry point: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["vmae-prepare-ava-vmad", *argv])
    rc = tool.cli()
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _source_times(path: Path):
    """``[(time s, frame index drawn)]`` of every frame of a source movie, from its timestamps."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(f.pts * s.time_base, _code(f.to_ndarray(format="gray"))) for f in c.decode(s)]


def _ffmpeg_selection(times, start: Fraction, n_clips: int, fps: int = 25):
    """The source frames FFmpeg's ``-ss start -t n_clips`` + ``fps=fps`` keep, from its documented rules:
    timestamps shifted by ``-start``, frames before 0 dropped, 911 s (``n_clips``) from the first kept one,
    each input time rounded to the nearest output tick (half away from zero), output tick ``n`` = the last
    input frame whose tick is <= ``n`` (the later one of a tie), from the first frame's tick on."""
    kept = [(t - start, k) for t, k in times if t - start >= 0]
    t0 = kept[0][0]
    kept = [(t, k) for t, k in kept if t - t0 < n_clips]
    ticks = [(math.floor(t * fps + Fraction(1, 2)), k) for t, k in kept]
    n0 = ticks[0][0]
    return [[k for tk, k in ticks if tk <= n][-1] for n in range(n0, n0 + n_clips * fps)]


def _clip_codes(path: Path):
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        info = (
            s.codec_context.name,
            s.codec_context.pix_fmt,
            s.average_rate,
            s.codec_context.width,
            s.codec_context.height,
        )
        return info, [_code(f.to_ndarray(format="gray")) for f in c.decode(s)]


def _mtimes(out: Path):
    return {p.relative_to(out): p.stat().st_mtime_ns for p in (out / "clips").rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------------------------- units
def test_clip_size_is_alphactions():
    assert vp.clip_size(640, 480) == (480, 360)
    assert vp.clip_size(1280, 720) == (640, 360)
    assert vp.clip_size(480, 640) == (360, 480)  # portrait: the width is the short side
    assert vp.clip_size(1920, 1080) == (640, 360)
    assert vp.clip_size(720, 480) == (540, 360)
    assert vp.clip_size(704, 576) == (440, 360)  # 440.0
    assert vp.clip_size(352, 288) == (352, 288)  # short side <= 360: unchanged, never upscaled
    assert vp.clip_size(640, 360) == (640, 360)
    assert vp.clip_size(853, 480) == (640, 360)  # 639.75 -> round(319.875) * 2
    for w, h in ((1000, 700), (1440, 1080), (500, 362), (2000, 361)):
        cw, ch = vp.clip_size(w, h)
        assert min(cw, ch) == 360 and max(cw, ch) % 2 == 0
        assert max(cw, ch) == int(round(360 * max(w, h) / min(w, h) / 2) * 2)


def test_console_script_is_declared():
    line = re.search(r'^vmae-prepare-ava-vmad = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    module, func = line.group(1).split(":")
    assert module == "vmae_det.tools.prepare_ava_vmad" and getattr(tool, func) is tool.cli
    launcher = (ROOT / "tools" / "prepare_ava_vmad.py").read_text()
    assert "from vmae_det.tools.prepare_ava_vmad import cli, main" in launcher


def test_image_ids_without_movie_list_number_the_sorted_movies(tmp_path):
    _write_annotations(tmp_path, movie_list=False)
    inputs = vp.read_ava_inputs(tmp_path)
    assert inputs.movie_index == {"trnBBBBBBBB": 0, "valAAAAAAAA": 1, "valCCCCCCCC": 2}
    assert inputs.movie_list is None and vp.MOVIE_LIST_FILE not in inputs.files
    (tmp_path / vp.MOVIE_LIST_FILE).write_text("\n".join(MOVIE_LIST) + "\n")
    assert vp.read_ava_inputs(tmp_path).movie_index == {
        "valCCCCCCCC": 0,
        "zzzunused": 1,
        "trnBBBBBBBB": 2,
        "valAAAAAAAA": 3,
    }


# ---------------------------------------------------------------------------------------------- the layout
def test_clips_are_25_frames_of_the_frames_ffmpeg_selects(raw, prepared):
    movies, _, _ = raw
    for movie, (_, fps, w, h, _) in MOVIES.items():
        folder = prepared / "clips" / "trainval" / movie
        assert sorted(p.name for p in folder.glob("*.mp4")) == sorted(f"{s}.mp4" for s in range(START, END + 1))
        size = vp.clip_size(w, h)
        assert min(size) == min(360, min(w, h)) and size[0] % 2 == 0 and size[1] % 2 == 0
        got = []
        for s in range(START, END + 1):
            (codec, pix_fmt, rate, cw, ch), codes = _clip_codes(folder / f"{s}.mp4")
            assert (codec, pix_fmt, rate, (cw, ch)) == ("h264", "yuv420p", 25, size)
            assert len(codes) == 25
            got += codes
        times = _source_times(next(movies.glob(f"{movie}.*")))
        expected = _ffmpeg_selection(times, Fraction(START - OFFSET), N_CLIPS)
        assert got == expected, movie
        if fps == 25:  # same rate: every frame once, from file time 1 s (frame 25) on
            assert got == list(range(25, 25 + 25 * N_CLIPS))
        marker = json.loads((folder / vp.COMPLETE_MARKER).read_text())
        assert marker["size"] == list(size) and marker["frames"] == 25 * N_CLIPS and marker["warnings"] == []
    # 29.97 -> 25 fps: source frames are skipped, never repeated
    codes = _clip_codes(prepared / "clips/trainval/valAAAAAAAA/902.mp4")[1]
    assert all(b > a for a, b in zip(codes, codes[1:]))


def test_image_info_and_person_boxes_read_back(raw, prepared):
    ann = prepared / "annotations"
    index = {name.split(".")[0]: i for i, name in enumerate(MOVIE_LIST)}
    sizes = {m: vp.clip_size(w, h) for m, (_, _, w, h, _) in MOVIES.items()}
    for split in ("train", "val"):
        images, gt = read_image_annotations(ann / f"ava_{split}_v2.2_min.json")
        movies = {m for m, *_ in GT[split]}
        assert len(images) == 897 * len(movies)  # every keyframe second 902-1798 of each movie
        for img_id, img in images.items():
            assert img_id == index[img.movie] * 10000 + img.timestamp
            assert (img.width, img.height) == sizes[img.movie]
        rows = {}
        for m, s, box, a, p in GT[split]:
            rows.setdefault((m, s, p), (box, []))[1].append(a)
        got = {
            (images[i].movie, images[i].timestamp, p): (xywh, acts) for i, anns in gt.items() for xywh, acts, p in anns
        }
        assert got.keys() == rows.keys()
        for key, (box, actions) in rows.items():
            w, h = sizes[key[0]]
            xywh, acts = got[key]
            assert acts == actions
            np.testing.assert_allclose(
                xywh, [box[0] * w, box[1] * h, (box[2] - box[0]) * w, (box[3] - box[1]) * h], atol=0.005
            )
        # the CSVs, exclusions and label map are there, byte for byte (every movie of the CSVs is prepared)
        for name in (f"ava_{split}_v2.2.csv", f"ava_{split}_excluded_timestamps_v2.2.csv"):
            assert (ann / name).read_bytes() == (raw[1] / name).read_bytes()
    assert (ann / "ava_action_list_v2.2_for_activitynet_2019.pbtxt").read_bytes() == (
        raw[1] / "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
    ).read_bytes()
    boxes = read_alphaction_boxes(
        prepared / "boxes/ava_val_det_person_bbox.json", ann / "ava_val_v2.2_min.json", convention="continuous"
    )
    expected = {}
    for m, s, box, score in BOXES:
        if m.startswith("val"):
            expected.setdefault((m, s), []).append((score, box))
    assert boxes.keys() == expected.keys()
    for key, items in expected.items():
        items.sort(key=lambda sb: -sb[0])
        np.testing.assert_allclose(boxes[key][0], [b for _, b in items], atol=1e-6)
        np.testing.assert_allclose(boxes[key][1], [s for s, _ in items], atol=1e-6)


def test_result_registers_as_vmad_layout(prepared):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from vmae_det.data.ava.catalog import load_vmad_dicts, register_ava_root

    names = register_ava_root(prepared)
    assert MetadataCatalog.get(names["val"]).layout == "vmad"
    dicts = load_vmad_dicts(prepared, "val")
    # keyframes with a person box >= 0.8: valAAAAAAAA 903 (0.95) and valCCCCCCCC 905 (0.875)
    assert [(d["video_id"], d["timestamp"]) for d in dicts] == [("valCCCCCCCC", 905), ("valAAAAAAAA", 903)]
    for d in dicts:
        assert Path(d["clips_dir"]).is_dir() and d["fps"] == 25
        assert d["image_size"] == vp.clip_size(*MOVIES[d["video_id"]][2:4])[::-1]
    assert len(DatasetCatalog.get(names["train"])) == 1  # the one keyframe with GT boxes


# ---------------------------------------------------------------------------------------------- resume
def test_rerun_skips_complete_movies_and_finishes_a_partial_one(raw, prepared, tmp_path, capsys):
    import shutil

    out = tmp_path / "ava"
    shutil.copytree(prepared, out)
    folder = out / "clips/trainval/valAAAAAAAA"
    # an interrupted run: no marker, two clips missing, a clip being written when it was killed
    (folder / vp.COMPLETE_MARKER).unlink()
    (folder / "905.mp4").unlink()
    (folder / "906.mp4").unlink()
    (folder / ".905.mp4.4242.tmp").write_bytes(b"half a clip")
    before = _mtimes(out)
    assert tool.main(_argv(raw, out)) == 0
    text = capsys.readouterr().out
    assert "1 movies sliced now (2 clips written, 3 kept from an interrupted run), 2 already complete, 0 failed" in text
    after = _mtimes(out)
    changed = {str(p) for p in after if after[p] != before.get(p)}
    assert changed == {f"clips/trainval/valAAAAAAAA/{n}" for n in ("905.mp4", "906.mp4", vp.COMPLETE_MARKER)}
    assert not list(folder.glob(".*.tmp"))
    # the clips written now are those of the full run
    for s in (905, 906):
        assert _clip_codes(folder / f"{s}.mp4")[1] == _clip_codes(prepared / f"clips/trainval/valAAAAAAAA/{s}.mp4")[1]
    # and a third run writes nothing
    assert tool.main(_argv(raw, out)) == 0
    assert (
        "0 movies sliced now (0 clips written, 0 kept from an interrupted run), 3 already complete"
        in capsys.readouterr().out
    )
    assert _mtimes(out) == after


def test_interrupted_run_resumes(raw, tmp_path, monkeypatch, capsys):
    """Ctrl-C during the 4th clip of the first movie: 3 clips stay, no marker, no temporary file; a rerun
    keeps them and writes the rest."""
    out = tmp_path / "ava"
    real_write = vp._ClipWriter.write
    calls = {"n": 0}

    def write(self, frame):
        calls["n"] += 1
        if calls["n"] == 3 * 25 + 10:
            raise KeyboardInterrupt
        real_write(self, frame)

    monkeypatch.setattr(vp._ClipWriter, "write", write)
    rc, _, err = _run_cli(_argv(raw, out, "--movie-ids", "valAAAAAAAA"), monkeypatch, capsys)
    assert rc == 130 and err.strip().splitlines()[-1] == (
        "interrupted: complete movies and clips are kept; run the same command again to resume"
    )
    folder = out / "clips/trainval/valAAAAAAAA"
    assert sorted(p.name for p in folder.iterdir()) == [vp.SETTINGS_FILE, "902.mp4", "903.mp4", "904.mp4"]
    kept = _mtimes(out)
    monkeypatch.setattr(vp._ClipWriter, "write", real_write)
    assert tool.main(_argv(raw, out, "--movie-ids", "valAAAAAAAA")) == 0
    assert "(2 clips written, 3 kept from an interrupted run)" in capsys.readouterr().out
    assert all(_mtimes(out)[p] == t for p, t in kept.items())
    assert len(list(folder.glob("*.mp4"))) == N_CLIPS and (folder / vp.COMPLETE_MARKER).is_file()
    # a subset: the ground truth and exclusions of val keep the prepared movies' lines only
    val = (out / "annotations/ava_val_v2.2.csv").read_text().splitlines()
    assert val and all(line.startswith("valAAAAAAAA,") for line in val)
    assert read_image_info(out / "annotations/ava_train_v2.2_min.json") == {}


def test_other_settings_redo_a_movie(raw, tmp_path, capsys):
    out = tmp_path / "ava"
    argv = _argv(raw, out, "--movie-ids", "valCCCCCCCC")
    assert tool.main(argv) == 0
    folder = out / "clips/trainval/valCCCCCCCC"
    first = (folder / "903.mp4").read_bytes()
    capsys.readouterr()
    assert tool.main([*argv, "--crf", "40"]) == 0
    assert "1 movies sliced now (5 clips written, 0 kept" in capsys.readouterr().out
    assert (folder / "903.mp4").read_bytes() != first


def test_workers(raw, tmp_path, capsys):
    out = tmp_path / "ava"
    assert tool.main(_argv(raw, out, "--workers", "2", "--movie-ids", "valAAAAAAAA", "valCCCCCCCC")) == 0
    assert "2 movies sliced now (10 clips written" in capsys.readouterr().out
    assert len(list((out / "clips/trainval").rglob("*.mp4"))) == 2 * N_CLIPS
    assert {img.movie for img in read_image_info(out / "annotations/ava_val_v2.2_min.json").values()} == {
        "valAAAAAAAA",
        "valCCCCCCCC",
    }


# ---------------------------------------------------------------------------------------------- bad input
def _one_error_line(rc, err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_bad_folders_are_one_error_line(raw, tmp_path, monkeypatch, capsys):
    movies, ann, boxes = raw
    out = tmp_path / "out"
    base = ["--out", str(out), "--quiet"]
    line = _one_error_line(
        *_run_cli(["--movies", str(tmp_path / "nope"), "--annotations", str(ann), *base], monkeypatch, capsys)[::2]
    )
    assert "movie folder" in line and "nope" in line and "does not exist" in line
    (tmp_path / "empty").mkdir()
    line = _one_error_line(
        *_run_cli(["--movies", str(tmp_path / "empty"), "--annotations", str(ann), *base], monkeypatch, capsys)[::2]
    )
    assert "no movie files in" in line and "empty" in line
    line = _one_error_line(
        *_run_cli(["--movies", str(movies), "--annotations", str(tmp_path / "empty"), *base], monkeypatch, capsys)[::2]
    )
    assert "ava_action_list_v2.2_for_activitynet_2019.pbtxt" in line
    assert not out.exists()
    (tmp_path / "file").write_text("")
    line = _one_error_line(
        *_run_cli(
            ["--movies", str(movies), "--annotations", str(ann), "--out", str(tmp_path / "file")], monkeypatch, capsys
        )[::2]
    )
    assert line == f"error: --out {tmp_path / 'file'} is a file, not a folder"


def test_movie_of_the_csv_without_file(raw, tmp_path, monkeypatch, capsys):
    movies, ann, _ = raw
    some = tmp_path / "movies"
    some.mkdir()
    os.symlink(next(movies.glob("valAAAAAAAA.*")), some / "valAAAAAAAA.mp4")
    line = _one_error_line(
        *_run_cli(
            ["--movies", str(some), "--annotations", str(ann), "--out", str(tmp_path / "o")], monkeypatch, capsys
        )[::2]
    )
    assert "2 of the 3 movies of the CSVs" in line and "trnBBBBBBBB" in line and "--movie-ids" in line
    line = _one_error_line(
        *_run_cli(
            [
                "--movies",
                str(some),
                "--annotations",
                str(ann),
                "--out",
                str(tmp_path / "o"),
                "--movie-ids",
                "valAAAAAAAA,valXXXXXXXX",
            ],
            monkeypatch,
            capsys,
        )[::2]
    )
    assert "no file for 1 movie(s)" in line and "valXXXXXXXX" in line


def test_malformed_csv_names_file_and_line(raw, tmp_path, monkeypatch, capsys):
    import shutil

    movies, ann, _ = raw
    bad = tmp_path / "ann"
    shutil.copytree(ann, bad)
    with open(bad / "ava_val_v2.2.csv", "a") as f:
        f.write("valAAAAAAAA,0950,0.1,0.2,0.5,0.9,12\n")  # 7 columns: no person id
    line = _one_error_line(
        *_run_cli(
            ["--movies", str(movies), "--annotations", str(bad), "--out", str(tmp_path / "o")], monkeypatch, capsys
        )[::2]
    )
    assert f"{bad / 'ava_val_v2.2.csv'}:5" in line
    _csv(bad / "ava_val_v2.2.csv", [("valAAAAAAAA", "0899", 0.1, 0.2, 0.5, 0.9, 12, 0)])
    line = _one_error_line(
        *_run_cli(
            ["--movies", str(movies), "--annotations", str(bad), "--out", str(tmp_path / "o")], monkeypatch, capsys
        )[::2]
    )
    assert "ava_val_v2.2.csv:1" in line and "902-1798" in line
    line = _one_error_line(
        *_run_cli(
            [
                "--movies",
                str(movies),
                "--annotations",
                str(ann),
                "--out",
                str(tmp_path / "o"),
                "--start-sec",
                "908",
                "--end-sec",
                "902",
            ],
            monkeypatch,
            capsys,
        )[::2]
    )
    assert "--end-sec 902 is before --start-sec 908" in line


def test_bad_movies_are_counted_skips(raw, tmp_path, monkeypatch, capsys, caplog):
    movies, ann, boxes = raw
    some = tmp_path / "movies"
    some.mkdir()
    os.symlink(next(movies.glob("valAAAAAAAA.*")), some / "valAAAAAAAA.mp4")
    (some / "valCCCCCCCC.mkv").write_bytes(os.urandom(4096))  # not a video
    _write_movie(some / "trnBBBBBBBB.mp4", Fraction(25), 160, 120, 0.6)  # ends before second 902 (1 s)
    out = tmp_path / "out"
    rc, text, err = _run_cli(_argv((some, ann, boxes), out), monkeypatch, capsys)
    assert rc == 1, err
    assert "1 movies sliced now (5 clips written, 0 kept from an interrupted run), 0 already complete, 2 failed" in text
    assert f"failed: valCCCCCCCC: {some / 'valCCCCCCCC.mkv'}: PyAV cannot open it" in text
    assert "failed: trnBBBBBBBB:" in text and "is 0.6 s long: its clips start at second 902 (file time 1 s" in text
    assert "valCCCCCCCC: FAILED" in caplog.text and "trnBBBBBBBB: FAILED" in caplog.text
    assert not (out / "clips/trainval/valCCCCCCCC" / vp.COMPLETE_MARKER).exists()
    assert not (out / "clips/trainval/trnBBBBBBBB").exists()  # checked before anything is written
    # the annotations cover the movie that is complete
    assert {img.movie for img in read_image_info(out / "annotations/ava_val_v2.2_min.json").values()} == {"valAAAAAAAA"}
    assert read_image_info(out / "annotations/ava_train_v2.2_min.json") == {}


def test_movie_ending_inside_the_range_warns(tmp_path, capsys):
    movies = tmp_path / "movies"
    movies.mkdir()
    _write_movie(movies / "valCCCCCCCC.mp4", Fraction(25), 320, 240, 4.5)  # file 1-4.5 s: seconds 902-905 (half)
    out = tmp_path / "out"
    result = vp.slice_movie(
        "valCCCCCCCC", movies / "valCCCCCCCC.mp4", out, vp.SliceSettings(START, END, OFFSET, preset="ultrafast")
    )
    assert result.status == "done" and result.num_clips == 4 and result.frames == 3 * 25 + 12
    assert result.warnings == ["second 905 has only 12 frames", "no frames after second 905 (1 second missing)"]
    assert sorted(p.name for p in (out / "valCCCCCCCC").glob("*.mp4")) == ["902.mp4", "903.mp4", "904.mp4", "905.mp4"]
