"""One definition of "frame i at time t" (vmae_det.data.video_io.FrameClock) shared by the training reader
(PyAVReader), the demo (VideoStreamReader) and the custom-dataset conversion (resample_to_fps / convert_video).

AVI's timestamps are not presentation times (a chunk's time is its number; FFmpeg hands out the right times
but, with DivX-style packed B-frames as in OpenCV's ``Megamind.avi``, attaches them to the wrong pictures):
there frame ``i``, the ``i``-th picture the decoder puts out, takes the ``i``-th smallest time, ``i / rate``
on a constant-rate AVI; chunks without a picture stay gaps (a sparse AVI). Elsewhere (MP4, MKV, ...) frames
are placed by their own presentation timestamp (VFR included). The real sample videos are in
../shared/videos (absent in a fresh clone: those tests skip).
"""

import hashlib
import io
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import vmae_det  # noqa: F401  (shims before detectron2)
from vmae_det.data.custom.video import _timed_frames, convert_video, probe_video, resample_to_fps
from vmae_det.data.video_io import FrameClock, open_video
from vmae_det.demo.video_stream import VideoStreamReader

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

SHARED_VIDEOS = Path(__file__).resolve().parents[3] / "shared" / "videos"  # ../shared/videos: absent in a fresh clone
W, H, N, RATE = 96, 48, 40, 25


def _coded(i: int) -> np.ndarray:
    """RGB frame carrying ``i`` as 12 black/white 8x8 blocks (survives lossy coding), plus a moving bar."""
    f = np.full((H, W, 3), 100, np.uint8)
    for bit in range(W // 8):
        f[0:8, 8 * bit : 8 * bit + 8] = 255 if (i >> bit) & 1 else 0
    f[16:, (3 * i) % (W - 4) : (3 * i) % (W - 4) + 4] = (255, 0, 0)
    return f


def _code_of(frame: np.ndarray) -> int:
    return sum(1 << b for b in range(W // 8) if frame[2:6, 8 * b + 2 : 8 * b + 6].mean() > 128)


def _digest(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()  # twice md5's speed here (SHA-NI)


def _nearest(j: int, rate: Fraction, n: int, fps: int = 30) -> int:
    """Index of the frame at ``k / rate`` (``k < n``) nearest to ``j / fps`` (ties: the earlier frame)."""
    x = Fraction(j * rate, fps)
    return min(int(x) if x - int(x) <= Fraction(1, 2) else int(x) + 1, n - 1)


def _write_opencv_avi(path: Path, fourcc: str = "XVID") -> Path:
    """What OpenCV writes: an AVI (its FFmpeg backend writes no B-frames)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), RATE, (W, H))
    if not writer.isOpened():
        pytest.skip(f"OpenCV cannot write {fourcc} AVI here")
    for i in range(N):
        writer.write(np.ascontiguousarray(_coded(i)[..., ::-1]))
    writer.release()
    return path


def _vop_type(packet: bytes) -> str:
    j = packet.find(b"\x00\x00\x01\xb6")
    return "IPBS"[packet[j + 4] >> 6]


def _write_packed_b_avi(path: Path) -> Path:
    """An AVI with DivX-style packed B-frames, as ``Megamind.avi``: MPEG-4 with one B-frame, chunks
    ``[I0] [P2 B1] [N-VOP] [P4 B3] [N-VOP] ...`` and DivX's ``p`` (packed) user data. FFmpeg decodes the
    pictures in display order but gives them the out-of-order pts 1, 3, 2, 5, 4, ...  (OpenCV's writer
    makes no B-frames, so the chunks are put together from PyAV's encoder output.)"""
    with av.open(io.BytesIO(), "w", format="avi") as c:
        s = c.add_stream("mpeg4", rate=RATE)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.codec_context.max_b_frames, s.codec_context.gop_size = 1, 12
        packets = []
        for i in range(N):
            frame = av.VideoFrame.from_ndarray(_coded(i), format="rgb24")
            frame.pts = i
            packets += [bytes(p) for p in s.encode(frame)]
        packets += [bytes(p) for p in s.encode(None)]
    first = packets[0]
    vop = first.find(b"\x00\x00\x01\xb6")
    chunks = [first[:vop] + b"\x00\x00\x01\xb2DivX503b1393p" + first[vop:]]
    q = 1
    while q < len(packets):
        if q + 1 < len(packets) and _vop_type(packets[q]) == "P" and _vop_type(packets[q + 1]) == "B":
            chunks += [packets[q] + packets[q + 1], b"\x00\x00\x01\xb6\x51\xf4\x9f"]  # P+B, then a not-coded VOP
            q += 2
        else:
            chunks.append(packets[q])
            q += 1
    with av.open(str(path), "w", format="avi") as c:
        s = c.add_stream("mpeg4", rate=RATE)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.codec_context.codec_tag = "XVID"
        for k, chunk in enumerate(chunks):
            p = av.Packet(chunk)
            p.stream, p.pts, p.dts, p.time_base = s, k, k, Fraction(1, RATE)
            p.is_keyframe = _vop_type(chunk) == "I"
            c.mux(p)
    return path


def _write_vfr_mp4(path: Path, times_ms) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=RATE)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(_coded(i), format="rgb24")
            frame.pts, frame.time_base = int(t), Fraction(1, 1000)
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    d = tmp_path_factory.mktemp("frame_times")
    return {"opencv_avi": _write_opencv_avi(d / "opencv.avi"), "packed_b_avi": _write_packed_b_avi(d / "packed.avi")}


def _decoded(path):
    """``[(pts, code)]`` of a plain sequential PyAV decode (the decoder's output order)."""
    with av.open(str(path)) as c:
        return [(f.pts, _code_of(f.to_ndarray(format="rgb24"))) for f in c.decode(video=0)]


# ------------------------------------------------------------------------------------------------ the rule


def test_the_rule_counts_avi_pictures_and_keeps_mp4_timestamps(synthetic, tmp_path):
    with av.open(str(synthetic["packed_b_avi"])) as c:
        clock = FrameClock(c, c.streams.video[0])
        assert clock.ranked and clock.rate == RATE
        times = [t for _, t, _ in clock.times(c.decode(video=0))]
    assert times == [Fraction(i, RATE) for i in range(N)]
    vfr_ms = [0, 40, 60, 160, 193, 293, 313, 413]
    mp4 = _write_vfr_mp4(tmp_path / "vfr.mp4", vfr_ms)
    with av.open(str(mp4)) as c:
        clock = FrameClock(c, c.streams.video[0])
        assert not clock.ranked
        times = [t for _, t, _ in clock.times(c.decode(video=0))]
    assert times == [Fraction(t, 1000) for t in vfr_ms]
    with open_video(mp4) as reader:  # the training reader's times from its demux index: the same rule
        np.testing.assert_allclose(reader.frame_times, np.asarray(vfr_ms) / 1000)


@pytest.mark.parametrize("name", ["opencv_avi", "packed_b_avi"])
def test_three_paths_agree_on_synthetic_avis(synthetic, name, tmp_path):
    path = synthetic[name]
    decoded = _decoded(path)
    assert [code for _, code in decoded] == list(range(N))  # the decoder puts pictures out in display order
    pts = [p for p, _ in decoded]
    if name == "packed_b_avi":  # what broke the timestamp rule: FFmpeg's invented pts are out of order
        assert sum(b <= a for a, b in zip(pts, pts[1:])) >= 10

    reader = VideoStreamReader(str(path), quiet=True)  # the demo
    assert reader.rate == RATE
    demo = [(i, _code_of(img)) for i, img in reader]
    assert demo == [(i, i) for i in range(N)]
    assert reader.stats["repeated"] == reader.stats["dropped"] == 0 and reader.stats["grid_frames"] == N

    with open_video(path) as training:  # the training reader: random access, times i / rate
        assert training.num_frames == N
        np.testing.assert_allclose(training.frame_times, np.arange(N) / RATE)
        for idx in ([0, 1, 2, 3], [5, 6, 7], [13, 14], [25, 26, 27, 39]):
            assert [_code_of(f) for f in training.get_frames(idx)] == idx

    # dataset preparation: frame j of the 30 fps video is the picture nearest to j / 30 s
    conv = [(j, _code_of(f.to_ndarray(format="rgb24"))) for j, f in resample_to_fps(_timed_frames(Path(path)))]
    assert len(conv) == 48  # 40 frames at 25 fps last 1.6 s
    assert conv == [(j, _nearest(j, Fraction(RATE), N)) for j in range(48)]

    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    n = convert_video(probe_video(Path(path)), "v", tmp_path / "v.mp4", frames_dir)
    jpegs = sorted(frames_dir.glob("*.jpg"))
    assert n == len(jpegs) == 48
    assert [_code_of(cv2.imread(str(p))[..., ::-1]) for p in jpegs] == [c for _, c in conv]
    with av.open(str(tmp_path / "v.mp4")) as c:
        assert [_code_of(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)] == [c for _, c in conv]


def _write_sparse_avi(path: Path, chunks) -> Path:
    """Pictures only in the given chunks (FFmpeg's AVI muxer leaves the others empty: a capture's dropped
    frames, as the cinepak sample whose header says 444 frames for 68 pictures)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=RATE)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for i, chunk in enumerate(chunks):
            frame = av.VideoFrame.from_ndarray(_coded(i), format="rgb24")
            frame.pts, frame.time_base = chunk, Fraction(1, RATE)
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_sparse_avi_keeps_its_gaps_in_all_three_paths(tmp_path):
    chunks = [0, 1, 2, 5, 6, 7, 12, 13, 20, 21, 22, 23, 30]
    path = _write_sparse_avi(tmp_path / "sparse.avi", chunks)
    times = [Fraction(c, RATE) for c in chunks]

    def nearest(t):
        return min(range(len(times)), key=lambda k: (abs(times[k] - t), k))

    reader = VideoStreamReader(str(path), quiet=True)
    assert [_code_of(img) for _, img in reader] == [nearest(Fraction(i, RATE)) for i in range(31)]
    with open_video(path) as training:
        np.testing.assert_allclose(training.frame_times, np.asarray(chunks) / RATE)
        assert [_code_of(f) for f in training.get_frames([0, 3, 6, 12])] == [0, 3, 6, 12]
    conv = [_code_of(f.to_ndarray(format="rgb24")) for _, f in resample_to_fps(_timed_frames(path))]
    # 1.2 s to the last picture, which lasts the gap before it (resample_to_fps): 1.48 s at 30 fps
    assert conv == [nearest(Fraction(j, 30)) for j in range(len(conv))] and len(conv) == 45


def test_vfr_mp4_keeps_nearest_frame_by_timestamp(tmp_path):
    vfr_ms = [0, 100, 110, 120, 130, 300, 400, 500]  # a burst (drops) and a gap (repeats)
    mp4 = _write_vfr_mp4(tmp_path / "vfr.mp4", vfr_ms)
    reader = VideoStreamReader(str(mp4), quiet=True)
    got = [_code_of(img) for _, img in reader]
    times = np.asarray(vfr_ms) / 1000
    want = []
    for i in range(len(got)):
        d = np.abs(times - i / reader.fps)  # the grid runs at the stream's average rate
        want.append(int(np.flatnonzero(d <= d.min() + 1e-9)[0]))
    assert got == want and reader.stats["repeated"] > 0 and reader.stats["dropped"] > 0


# ------------------------------------------------------------------------------------------------ real videos


def _three_paths(path: Path):
    """Per-frame digest of: a plain PyAV decode, the demo's grid, the training reader, and the 30 fps conversion."""
    with av.open(str(path)) as c:
        plain = [_digest(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    reader = VideoStreamReader(str(path), quiet=True)
    demo = [_digest(img) for _, img in reader]
    with open_video(path) as training:
        n = training.num_frames
        train = [_digest(f) for start in range(0, n, 64) for f in training.get_frames(range(start, min(start + 64, n)))]
        times = training.frame_times
        rng = np.random.RandomState(0)
        random_access = {}
        for _ in range(4):
            idx = sorted(set(rng.randint(0, training.num_frames, 3).tolist()))
            random_access.update(zip(idx, (_digest(f) for f in training.get_frames(idx))))
    conv, last = [], (None, None)
    for _, f in resample_to_fps(_timed_frames(path)):
        if f is not last[0]:  # a source frame repeated on the 30 fps grid is the same object
            last = (f, _digest(f.to_ndarray(format="rgb24")))
        conv.append(last[1])
    return plain, demo, reader, train, times, random_access, conv


@pytest.mark.skipif(not (SHARED_VIDEOS / "Megamind.avi").is_file(), reason="../shared/videos is absent")
def test_megamind_every_picture_once_in_display_order():
    """Issue 19 item 3: the demo dropped 88 of 270 frames and repeated 88 (182 distinct pictures), and the
    conversion wrote 340 frames of 182 pictures. The file is 23.976 fps (AVI header 2997/125), 270 frames."""
    plain, demo, reader, train, times, random_access, conv = _three_paths(SHARED_VIDEOS / "Megamind.avi")
    assert len(plain) == len(set(plain)) == 270
    assert reader.rate == Fraction(2997, 125)
    assert demo == plain  # 270 grid frames, each picture once, in display order
    assert reader.stats["repeated"] == reader.stats["dropped"] == 0 and reader.stats["grid_frames"] == 270
    assert train == plain and all(plain[i] == h for i, h in random_access.items())
    np.testing.assert_allclose(times, np.arange(270) * 125 / 2997)
    # 11.26 s at 30 fps: 338 frames, every picture, in order; the 68 repeats are the 23.976 -> 30 fps ones
    assert len(conv) == 338 and len(set(conv)) == 270
    assert conv == [plain[_nearest(j, reader.rate, 270)] for j in range(338)]


@pytest.mark.skipif(not (SHARED_VIDEOS / "vtest.avi").is_file(), reason="../shared/videos is absent")
def test_vtest_three_paths_agree():
    plain, demo, reader, train, times, random_access, conv = _three_paths(SHARED_VIDEOS / "vtest.avi")
    assert len(plain) == 795 and reader.rate == 10
    assert demo == plain == train and all(plain[i] == h for i, h in random_access.items())
    np.testing.assert_allclose(times, np.arange(795) / 10)
    assert conv == [plain[_nearest(j, Fraction(10), 795)] for j in range(795 * 3)]
