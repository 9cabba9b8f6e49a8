"""vmae_det.data.video_io on small generated videos: decord and PyAV agree, indices clamp, bad files
raise VideoDecodeError naming the file."""
import os

import numpy as np
import pytest

import vmae_det  # noqa: F401  (shims before detectron2)
from vmae_det.data.video_io import VideoDecodeError, open_video

cv2 = pytest.importorskip("cv2")

H, W, N, FPS = 48, 64, 40, 25


def _frame(i: int) -> np.ndarray:
    """BGR frame carrying its index as 6 black/white 8x8 blocks (survives lossy coding), plus a
    red bar lower down."""
    f = np.full((H, W, 3), 100, np.uint8)
    for bit in range(6):
        f[0:8, 8 * bit : 8 * bit + 8] = 255 if (i >> bit) & 1 else 0
    f[16:, (i % (W - 4)) : (i % (W - 4)) + 4] = (0, 0, 255)
    return f


def _write(path: str, fourcc: str, n: int = N) -> str:
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), FPS, (W, H))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for i in range(n):
        writer.write(_frame(i))
    writer.release()
    return path


def _index_of(frame: np.ndarray) -> int:
    """The index a decoded RGB frame carries (see :func:`_frame`)."""
    return sum(1 << bit for bit in range(6) if frame[2:6, 8 * bit + 2 : 8 * bit + 6].mean() > 128)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    mp4 = _write(str(d / "clip.mp4"), "mp4v")
    avi = _write(str(d / "clip.avi"), "MJPG")
    data = open(avi, "rb").read()
    truncated_avi = str(d / "truncated.avi")
    with open(truncated_avi, "wb") as f:
        f.write(data[: int(len(data) * 0.6)])  # AVI keeps its header: a valid file with a lost tail
    data = open(mp4, "rb").read()
    truncated_mp4 = str(d / "truncated.mp4")
    with open(truncated_mp4, "wb") as f:
        f.write(data[: len(data) // 2])  # mp4v from OpenCV puts the index (moov) at the end: unreadable
    empty = str(d / "empty.mp4")
    open(empty, "wb").close()
    garbage = str(d / "garbage.mp4")
    with open(garbage, "wb") as f:
        f.write(np.random.RandomState(0).bytes(4096))
    return dict(mp4=mp4, avi=avi, truncated_avi=truncated_avi, truncated_mp4=truncated_mp4, empty=empty, garbage=garbage)


@pytest.mark.parametrize("kind", ["mp4", "avi"])
@pytest.mark.parametrize("backend", ["decord", "pyav", "auto"])
def test_metadata_and_frame_order(videos, kind, backend):
    with open_video(videos[kind], backend=backend) as reader:
        assert (reader.num_frames, reader.height, reader.width) == (N, H, W)
        assert reader.fps == pytest.approx(FPS)
        assert reader.path == videos[kind]
        indices = [0, 7, 3, 3, 39, 20]
        frames = reader.get_frames(indices)
    assert frames.shape == (len(indices), H, W, 3) and frames.dtype == np.uint8
    assert [_index_of(f) for f in frames] == indices
    # RGB order: the bar is red in RGB (written as BGR (0, 0, 255))
    bar = frames[0][20:, 0:4].reshape(-1, 3).mean(0)
    assert bar[0] > 150 and bar[2] < 100


@pytest.mark.parametrize("kind", ["mp4", "avi"])
def test_decord_and_pyav_agree(videos, kind):
    indices = [0, 1, 13, 26, 27, 39]  # 26/27 force PyAV to seek past keyframes
    with open_video(videos[kind], "decord") as a, open_video(videos[kind], "pyav") as b:
        fa, fb = a.get_frames(indices), b.get_frames(indices)
    assert np.abs(fa.astype(int) - fb.astype(int)).max() <= 2


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_indices_are_clamped(videos, backend):
    with open_video(videos["mp4"], backend) as reader:
        frames = reader.get_frames([-5, N + 100])
        assert [_index_of(f) for f in frames] == [0, N - 1]
        assert reader.get_frames([]).shape == (0, H, W, 3)


@pytest.mark.parametrize("backend", ["pyav", "auto"])
def test_truncated_avi_counts_decodable_frames(videos, backend):
    # decord alone gives up on the cut-off last packet; PyAV (and "auto", which falls back to it)
    # skips it and reads every complete frame.
    with open_video(videos["truncated_avi"], backend) as reader:
        assert reader.num_frames < N  # the header says N; the packets actually present are fewer
        beyond = reader.get_frames([N - 1])[0]  # past the end -> the last decodable frame
        n = reader.num_frames  # reading to the end dropped the cut-off last packet from the count
        assert 0 < n < N
        last = reader.get_frames([n - 1])[0]
        assert _index_of(last) == n - 1
        np.testing.assert_array_equal(beyond, last)
        everything = reader.get_frames(range(n))
    assert [_index_of(f) for f in everything] == list(range(n))


def test_truncated_avi_with_decord_alone_fails_cleanly(videos):
    path = videos["truncated_avi"]
    try:
        reader = open_video(path, "decord")
        reader.get_frames(range(reader.num_frames))
    except VideoDecodeError as e:
        assert path in str(e)


@pytest.mark.parametrize("backend", ["decord", "pyav", "auto"])
@pytest.mark.parametrize("bad, reason", [
    ("truncated_mp4", None), ("garbage", None), ("empty", "empty"), ("missing", "does not exist"),
])
def test_bad_files_raise_naming_the_file(videos, tmp_path, backend, bad, reason):
    path = videos.get(bad, str(tmp_path / "missing.mp4"))
    with pytest.raises(VideoDecodeError) as info:
        open_video(path, backend=backend)
    assert path in str(info.value) and info.value.path == path
    if reason:
        assert reason in str(info.value)


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        open_video(os.devnull, backend="opencv")
