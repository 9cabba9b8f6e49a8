"""MAE pretraining data, reconstruction pictures and a short run of the real engine on generated
videos: the loss falls, checkpoints round-trip, --resume continues from the saved iteration."""

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from helpers import tiny_mae, write_square_video

import vmae_det  # noqa: F401  (shims before detectron2)
from vmae_det.data.video_dataset import (
    MAEClipMapper,
    check_video_list,
    load_video_list,
    register_video_list,
    reset_skipped_videos,
    sample_clip_indices,
    skip_events,
    skipped_videos,
)
from vmae_det.engine.mae_visualization import (
    MASK_GREY,
    reconstruction_caption,
    reconstruction_rows,
    save_reconstruction_figure,
)

cv2 = pytest.importorskip("cv2")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_CONFIG = os.path.join(REPO, "configs", "pretrain", "tiny.py")


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pretrain_videos")
    (d / "sub").mkdir()
    for i in range(3):
        write_square_video(str(d / f"v{i}.mp4"), seed=i)
    write_square_video(str(d / "sub" / "v3.avi"), seed=3)
    (d / "notes.txt").write_text("not a video")
    (d / "sub" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    return d


# ---------------------------------------------------------------- video lists


def test_load_video_list_from_folder(video_dir):
    records = load_video_list(str(video_dir))
    names = [os.path.relpath(r["file_name"], video_dir) for r in records]
    assert names == ["sub/broken.mp4", "sub/v3.avi", "v0.mp4", "v1.mp4", "v2.mp4"]
    assert all(r["label"] == -1 for r in records)


def test_load_video_list_from_csv(tmp_path):
    lst = tmp_path / "train.csv"
    lst.write_text("# comment\na/x.mp4 3\n\n/abs/y.mp4 0\nz.webm\n")
    records = load_video_list(str(lst), root="/data/k400")
    assert records == [
        {"file_name": "/data/k400/a/x.mp4", "label": 3},
        {"file_name": "/abs/y.mp4", "label": 0},
        {"file_name": "/data/k400/z.webm", "label": -1},
    ]
    comma = tmp_path / "list.csv"
    comma.write_text("x.mp4,7\n")
    assert load_video_list(str(comma)) == [{"file_name": str(tmp_path / "x.mp4"), "label": 7}]


@pytest.mark.parametrize(
    "content, line, message",
    [
        ("a.mp4 1\nb.mp4 1 2\n", 2, "expected 'path \\[label\\]'"),
        ("a.mp4 dog\n", 1, "label must be an integer"),
        ("ok.mp4 0\nlabel,youtube_id,time_start\n", 2, "expected"),
        ("a.mp4 -2\n", 1, "negative label"),
    ],
)
def test_load_video_list_malformed_lines(tmp_path, content, line, message):
    lst = tmp_path / "bad.csv"
    lst.write_text(content)
    with pytest.raises(ValueError, match=f"{lst}:{line}: {message}"):
        load_video_list(str(lst))


def test_load_video_list_missing_or_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        load_video_list(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no videos found"):
        load_video_list(str(tmp_path / "empty"))


def test_register_video_list(video_dir):
    name = "test_pretrain_register"
    register_video_list(name, str(video_dir))
    try:
        assert len(DatasetCatalog.get(name)) == 5
        assert MetadataCatalog.get(name).list_path == str(video_dir)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    assert "tiny_ava_videos" in DatasetCatalog.list()


# ---------------------------------------------------------------- clip mapper


def test_sample_clip_indices():
    rng = np.random.RandomState(0)
    for _ in range(20):
        idx = sample_clip_indices(100, 8, 4, rng)
        assert len(idx) == 8 and np.all(np.diff(idx) == 4) and idx[0] >= 0 and idx[-1] <= 99
    # shorter than the clip: starts at 0; the reader clamps the tail
    np.testing.assert_array_equal(sample_clip_indices(10, 4, 4, rng), [0, 4, 8, 12])


def test_mapper_output(video_dir):
    mapper = MAEClipMapper(num_frames=8, sampling_rate=2, input_size=32)
    for name in ("v0.mp4", "sub/v3.avi"):
        out = mapper({"file_name": str(video_dir / name), "label": -1})
        assert set(out) == {"clip"}
        assert out["clip"].shape == (3, 8, 32, 32) and out["clip"].dtype == torch.uint8
    # 16 frames at stride 4 span 61 frames of a 24-frame video: the tail repeats the last frame
    long_clip = MAEClipMapper(num_frames=16, sampling_rate=4, input_size=32, flip=False)
    clip = long_clip({"file_name": str(video_dir / "v1.mp4")})["clip"]
    assert clip.shape == (3, 16, 32, 32)
    torch.testing.assert_close(clip[:, 6], clip[:, 15])


def test_mapper_skips_and_counts_corrupt_videos(video_dir):
    records: list = []

    class _Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("vmae_det.data.video_dataset")
    handler = _Keep(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        reset_skipped_videos()
        mapper = MAEClipMapper(num_frames=4, sampling_rate=2, input_size=32)
        broken = str(video_dir / "sub" / "broken.mp4")
        assert mapper({"file_name": broken}) is None
        assert mapper({"file_name": str(video_dir / "missing.mp4")}) is None
        assert mapper({"file_name": str(video_dir / "v0.mp4")}) is not None
        assert skipped_videos() == 2
    finally:
        logger.removeHandler(handler)
    assert len(records) == 2 and broken in records[0] and "missing.mp4" in records[1]


def test_skip_counter_counts_distinct_files_across_forked_workers(video_dir):
    """The skipped_videos metric counts files, not failed reads: a bad file read again each epoch
    (or by several workers) counts once; skip_events() counts every failed read."""
    import multiprocessing

    mapper = MAEClipMapper(num_frames=4, sampling_rate=2, input_size=32)
    broken, missing = str(video_dir / "sub" / "broken.mp4"), str(video_dir / "missing.mp4")
    reset_skipped_videos()
    for _ in range(3):
        assert mapper({"file_name": broken}) is None
    # a forked data-loader worker skips the same file and a new one: the parent sees both counts
    worker = multiprocessing.get_context("fork").Process(
        target=lambda: [mapper({"file_name": p}) for p in (broken, missing)]
    )
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0
    assert (skipped_videos(), skip_events()) == (2, 5)
    reset_skipped_videos()
    assert (skipped_videos(), skip_events()) == (0, 0)


def test_check_video_list_drops_missing_and_refuses_all_bad(video_dir, tmp_path, caplog):
    records = load_video_list(str(video_dir))
    reset_skipped_videos()
    gone = [{"file_name": str(tmp_path / f"gone{i}.mp4"), "label": 0} for i in range(4)]
    with caplog.at_level(logging.WARNING, logger="vmae_det.data.video_dataset"):
        kept = check_video_list(records + gone, "train.csv")
    assert kept == records and skipped_videos() == 4
    assert "4 of the 9 videos listed in 'train.csv' do not exist and are skipped" in caplog.text
    assert "gone0.mp4" in caplog.text
    with pytest.raises(
        FileNotFoundError, match=r"none of the 4 videos listed in 'train.csv' exists \(e.g. '.*gone0.mp4'"
    ):
        check_video_list(gone, "train.csv")
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"b{i}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100 * i))
    with pytest.raises(
        ValueError,
        match=r"none of the 3 videos tried from '.*bad' decodes; is every video of this "
        r"list bad\? .*b0.mp4: .*b1.mp4: .*b2.mp4: ",
    ):
        check_video_list(load_video_list(str(bad)), str(bad))
    # a registered list is checked when training first reads it (before any worker starts)
    register_video_list("test_pretrain_all_bad", str(bad))
    try:
        with pytest.raises(ValueError, match="none of the 3 videos tried"):
            DatasetCatalog.get("test_pretrain_all_bad")
    finally:
        DatasetCatalog.remove("test_pretrain_all_bad")
        MetadataCatalog.remove("test_pretrain_all_bad")
    reset_skipped_videos()


# ---------------------------------------------------------------- reconstruction picture


def test_reconstruction_rows_and_figure(tmp_path):
    model = tiny_mae(encoder=dict(patch_size=8), decoder_depth=1, mask_ratio=0.75).train()
    clips = torch.randint(0, 256, (2, 3, 4, 32, 32), dtype=torch.uint8)
    rows = reconstruction_rows(model, [{"clip": c} for c in clips], sample=1)
    assert model.training  # restored after the eval-mode call
    original = clips[1].permute(1, 2, 3, 0).float().numpy()
    np.testing.assert_allclose(rows["original"], original)
    masked = rows["masked"] != original
    grey = rows["masked"] == MASK_GREY
    # masked pixels are grey; 75% tube masking hides 75% of the pixels (up to grey originals)
    assert np.all(grey[masked]) and 0.7 < grey.mean() < 0.8
    visible = ~grey.all(-1)
    np.testing.assert_allclose(rows["reconstruction"][visible], original[visible])  # visible pasted
    assert "the 75 % of the clip the encoder never sees" in reconstruction_caption(rows)  # printed on the picture
    path = save_reconstruction_figure(model, clips, str(tmp_path / "rec" / "r.png"), num_frames=3)
    import matplotlib.image

    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


# ---------------------------------------------------------------- the engine on generated videos


def _args(output_dir, dataset, max_iter, resume=False):
    from vmae_det.engine import default_argument_parser

    argv = (
        ["--config-file", TINY_CONFIG]
        + (["--resume"] if resume else [])
        + [
            f"dataloader.train.dataset.names={dataset}",
            "dataloader.train.num_workers=0",
            "dataloader.train.total_batch_size=4",
            f"train.output_dir={output_dir}",
            f"train.max_iter={max_iter}",
            "train.checkpointer.period=15",
            "train.log_period=5",
            "train.device=cpu",
        ]
    )
    return default_argument_parser().parse_args(argv)


def _losses(trainer):
    # detectron2 logs the single loss (loss_mae) as total_loss
    return [v for v, _ in trainer.storage.history("total_loss").values()]


def test_pretraining_loss_checkpoint_resume(video_dir, tmp_path):
    from detectron2.config import instantiate

    from vmae_det.engine import do_train, setup

    name = "test_pretrain_engine_videos"
    # One corrupt video in the list: it is skipped (MapDataset retries another item), counted and
    # reported as a metric; training goes on.
    video_list = tmp_path / "train.csv"
    video_list.write_text("v0.mp4 0\nv1.mp4 1\nsub/broken.mp4 0\nv2.mp4 0\nsub/v3.avi 1\n")
    from vmae_det.data.video_dataset import reset_skipped_videos, skipped_videos

    reset_skipped_videos()
    register_video_list(name, str(video_list), root=str(video_dir))
    out = tmp_path / "run"
    try:
        args = _args(out, name, max_iter=30)
        cfg = setup(args)
        trainer = do_train(cfg, args)

        losses = _losses(trainer)
        assert len(losses) == 30
        assert skipped_videos() >= 1
        assert trainer.storage.history("skipped_videos").latest() == skipped_videos()
        assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses

        for f in (
            "model_0000014.pth",
            "model_final.pth",
            "last_checkpoint",
            "metrics.json",
            "reconstruction_0000014.png",
            "reconstruction_0000029.png",
        ):
            assert (out / f).is_file(), f
        # Round trip: a plain weights-only load gives back exactly the trained weights.
        ckpt = torch.load(out / "model_final.pth", map_location="cpu", weights_only=True)
        assert ckpt["iteration"] == 29
        assert "optimizer" in ckpt["trainer"] and ckpt["trainer"]["hooks"]["LRScheduler"]["last_epoch"] == 30
        fresh = instantiate(cfg.model)
        fresh.load_state_dict(ckpt["model"])
        for (k, a), b in zip(trainer.model.state_dict().items(), fresh.state_dict().values()):
            torch.testing.assert_close(a, b, msg=k)

        # --resume continues from the saved iteration with the saved optimizer state.
        args = _args(out, name, max_iter=40, resume=True)
        resumed = do_train(setup(args), args)
        assert resumed.start_iter == 30 and resumed.iter == 40
        assert len(_losses(resumed)) == 10
        assert np.mean(_losses(resumed)) < np.mean(losses[:5])  # did not restart from scratch
        assert torch.load(out / "model_final.pth", weights_only=True)["iteration"] == 39
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


# ---------------------------------------------------------------- own data from the command line (--videos, --ava-root)


def _flag_args(config, *argv, videos=False, ava_root=False):
    from vmae_det.engine import default_argument_parser

    return default_argument_parser(videos=videos, ava_root=ava_root).parse_args(["--config-file", config, *argv])


def test_videos_flag_takes_a_folder_or_a_list_file(video_dir, tmp_path):
    """pretrain_mae.py --videos PATH: a folder (recursive) or a list file becomes dataloader.train's dataset."""
    from vmae_det.engine.train_loop import load_run_config

    cfg = load_run_config(_flag_args(TINY_CONFIG, "--videos", str(video_dir), videos=True))
    name = cfg.dataloader.train.dataset.names
    assert name == f"videos:{video_dir}"
    files = sorted(os.path.relpath(r["file_name"], video_dir) for r in DatasetCatalog.get(name))
    assert files == ["sub/broken.mp4", "sub/v3.avi", "v0.mp4", "v1.mp4", "v2.mp4"]  # the mapper skips broken.mp4
    listed = tmp_path / "lists" / "train.csv"
    listed.parent.mkdir()
    listed.write_text(f"{video_dir}/v0.mp4 0\n../missing.mp4 1\n")
    cfg = load_run_config(_flag_args(TINY_CONFIG, "--videos", str(listed), videos=True))
    records = DatasetCatalog.get(cfg.dataloader.train.dataset.names)
    assert [r["file_name"] for r in records] == [f"{video_dir}/v0.mp4"]  # the missing one is skipped and counted


@pytest.mark.parametrize(
    "what, message",
    [
        ("missing", "--videos {p}: video folder or list file '{p}' does not exist"),
        ("empty", "--videos {p}: folder '{p}' has no videos (searched recursively for .mp4"),
        ("conflict", "--videos and the override dataloader.train.dataset.names=... both name the data"),
    ],
)
def test_videos_flag_errors_name_the_path(tmp_path, what, message):
    from vmae_det.engine.train_loop import load_run_config

    p = tmp_path / what
    if what == "empty":
        (p / "sub").mkdir(parents=True)
        (p / "sub" / "notes.txt").write_text("no video here")
    if what == "conflict":
        p.mkdir()
        (p / "a.mp4").write_bytes(b"")
    extra = ["dataloader.train.dataset.names=tiny_ava_videos"] if what == "conflict" else []
    with pytest.raises((OSError, ValueError)) as err:
        load_run_config(_flag_args(TINY_CONFIG, "--videos", str(p), *extra, videos=True))
    assert message.format(p=p) in str(err.value)


def test_ava_root_flag_trains_and_evaluates_on_an_ava_layout_folder(tmp_path, monkeypatch, tiny_ava_videos):
    """train_net.py --ava-root ROOT: its train/val splits, the head as wide as its label map; a root without
    person boxes for val is refused (unless evaluating on GT boxes); a missing layout names what is missing."""
    from vmae_det.engine import launch_from_args
    from vmae_det.engine.train_loop import load_run_config

    monkeypatch.setenv("VMAE_DET_DATASETS", str(tmp_path / "elsewhere"))  # not the built-in datasets
    root = Path(shutil.copytree(tiny_ava_videos, tmp_path / "my_ava"))  # 2 train, 1 val video of 4 s
    ava_config = os.path.join(REPO, "configs", "ava", "tiny.py")
    cfg = load_run_config(_flag_args(ava_config, "--ava-root", str(root), ava_root=True))
    assert cfg.dataloader.train.dataset.names == f"ava:{root}:train"
    assert cfg.dataloader.test.dataset.names == cfg.dataloader.evaluator.dataset_name == f"ava:{root}:val"
    assert cfg.model.num_classes == cfg.dataloader.train.mapper.num_classes == 5  # the tiny label map's ids 1..5
    vit_b = load_run_config(
        _flag_args(os.path.join(REPO, "configs", "ava", "vit_b.py"), "--ava-root", str(root), ava_root=True)
    )
    assert vit_b.model.num_classes == vit_b.dataloader.test.mapper.num_classes == 5  # was 80
    explicit = load_run_config(
        _flag_args(
            os.path.join(REPO, "configs", "ava", "vit_b.py"),
            "--ava-root",
            str(root),
            "model.num_classes=7",
            "dataloader.train.mapper.num_classes=7",
            "dataloader.test.mapper.num_classes=7",
            ava_root=True,
        )
    )
    assert explicit.model.num_classes == 7  # an explicit override wins

    out = tmp_path / "out"
    launch_from_args(
        _flag_args(
            ava_config,
            "--ava-root",
            str(root),
            "train.max_iter=2",
            "train.eval_period=0",
            "dataloader.train.num_workers=0",
            "dataloader.test.num_workers=0",
            f"train.output_dir={out}",
            "train.device=cpu",
            ava_root=True,
        )
    )
    metrics = json.loads((out / "inference" / "ava_metrics.json").read_text())
    assert metrics["per_class"] and (out / "model_final.pth").is_file()

    (root / "annotations" / "ava_val_predicted_boxes.csv").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"test_box_source='proposals' needs person boxes for the val split.*"
        r"tools/make_proposals.py --root .* or pass "
        r"dataloader.test.mapper.test_box_source=gt",
    ):
        load_run_config(_flag_args(ava_config, "--ava-root", str(root), ava_root=True))
    cfg = load_run_config(
        _flag_args(ava_config, "--ava-root", str(root), "dataloader.test.mapper.test_box_source=gt", ava_root=True)
    )
    assert cfg.dataloader.test.mapper.test_box_source == "gt"
    with pytest.raises(
        FileNotFoundError, match=rf"'{tmp_path}' is not an AVA-layout dataset root: missing .*label map"
    ):
        load_run_config(_flag_args(ava_config, "--ava-root", str(tmp_path), ava_root=True))


def test_ava_root_flag_with_eval_only(tmp_path, tiny_ava_videos):
    """--eval-only --ava-root: the val split is needed, the train split only pointed at when the root has one."""
    from vmae_det.engine.train_loop import load_run_config

    root = Path(shutil.copytree(tiny_ava_videos, tmp_path / "val_only"))
    vit_b = os.path.join(REPO, "configs", "ava", "vit_b.py")
    cfg = load_run_config(_flag_args(vit_b, "--eval-only", "--ava-root", str(root), ava_root=True))
    assert cfg.dataloader.train.dataset.names == f"ava:{root}:train" and cfg.model.num_classes == 5
    (root / "annotations" / "ava_train_v2.2.csv").unlink()
    with pytest.raises(FileNotFoundError, match="ava_train_v2.2.csv"):
        load_run_config(_flag_args(vit_b, "--ava-root", str(root), ava_root=True))  # training needs it
    cfg = load_run_config(
        _flag_args(
            vit_b,
            "--eval-only",
            "--ava-root",
            str(root),
            "dataloader.train.dataset.names=ava_tiny_train",
            ava_root=True,
        )
    )
    assert cfg.dataloader.test.dataset.names == f"ava:{root}:val" and cfg.model.num_classes == 5


def test_reconstruction_pictures_leave_the_training_random_stream_alone():
    """A picture draws its mask from its own seeded generator: drawing pictures (at every checkpoint) must not
    change the masks training draws next, or the checkpoint period would change the trained weights."""
    model = tiny_mae(encoder=dict(patch_size=8), decoder_depth=1, mask_ratio=0.75).train()
    clips = torch.randint(0, 256, (1, 3, 4, 32, 32), dtype=torch.uint8)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = reconstruction_rows(model, clips)
    assert torch.equal(torch.get_rng_state(), state)
    np.testing.assert_array_equal(reconstruction_rows(model, clips)["masked"], first["masked"])  # comparable
    other = reconstruction_rows(model, clips, mask_seed=1)["masked"]
    assert not np.array_equal(other, first["masked"])
