"""The quick start's pieces (docs/quickstart.md), fast: the unlabelled set, the reconstruction picture's
un-normalisation, the pretrained-vs-scratch comparison script and the picture script. The full quick
start (minutes) is `make quickstart`, not a test."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vmae_det.synthetic import ava as tiny_ava

REPO = Path(__file__).resolve().parents[2]


def _script(name: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# ---------------------------------------------------------------- the unlabelled pretraining set


def test_videos_only_set_is_the_labelled_sets_videos_without_any_label(tmp_path):
    unlabelled = tiny_ava.make_tiny_ava(
        tmp_path / "u", seed=5, num_train_videos=2, num_val_videos=0, seconds=3, videos_only=True
    )
    labelled = tiny_ava.make_tiny_ava(
        tmp_path / "l", seed=5, num_train_videos=2, num_val_videos=0, seconds=3, format="videos"
    )
    files = sorted(p.relative_to(unlabelled).as_posix() for p in unlabelled.rglob("*") if p.is_file())
    assert files == [".complete.json", ".gitignore", "README.txt", "videos/tinytrain000.mp4", "videos/tinytrain001.mp4"]
    for name in ("tinytrain000.mp4", "tinytrain001.mp4"):  # the same videos a labelled set of that seed has
        assert (unlabelled / "videos" / name).read_bytes() == (labelled / "videos" / name).read_bytes()
    assert "no annotations" in (unlabelled / "README.txt").read_text()
    # idempotent, and a labelled set is not mistaken for it (different parameters)
    assert tiny_ava.make_tiny_ava(unlabelled, seed=5, num_train_videos=2, num_val_videos=0, seconds=3, videos_only=True)
    assert json.loads((unlabelled / ".complete.json").read_text())["videos_only"] is True
    assert "videos_only" not in json.loads((labelled / ".complete.json").read_text())
    with pytest.raises(ValueError, match="num_val_videos must be 0"):
        tiny_ava.make_tiny_ava(tmp_path / "bad", num_val_videos=1, videos_only=True)


# ---------------------------------------------------------------- the picture's un-normalisation


def test_normalized_reconstruction_takes_each_masked_cubes_mean_and_std_from_the_original():
    """As the official run_videomae_vis.py: a prediction of all zeros (no idea of the shape) comes back as
    each masked cube's original mean, a perfect prediction as the original; visible cubes are untouched."""
    from vmae_det.modeling.mae_reconstruction import paste_predictions
    from vmae_det.modeling.mae_targets import cube_targets, patchify, unpatchify

    torch.manual_seed(0)
    video = torch.rand(1, 3, 4, 8, 8)
    grid, ts, p = (2, 2, 2), 2, 4
    mask = torch.tensor([[True, False, True, False, False, True, False, False]])
    targets = cube_targets(video, ts, p, normalize=True)[mask][None]
    perfect = paste_predictions(video, mask, targets, grid, ts, p, normalized=True)
    torch.testing.assert_close(perfect, video * 255, atol=1e-3, rtol=0)
    flat = paste_predictions(video, mask, torch.zeros_like(targets), grid, ts, p, normalized=True)
    cubes = patchify(video, ts, p)
    expected = cubes.clone()
    expected[mask] = cubes[mask].mean(dim=-2, keepdim=True).expand_as(cubes[mask])
    torch.testing.assert_close(flat, unpatchify(expected, grid, ts, p) * 255, atol=1e-4, rtol=0)


# ---------------------------------------------------------------- scripts/quickstart_compare.py


def _fake_run(folder: Path, value: float, key: dict) -> None:
    """A finished fine-tuning run as quickstart_compare.py leaves it: metrics and the run's key."""
    (folder / "inference").mkdir(parents=True)
    (folder / "inference" / "ava_metrics.json").write_text(json.dumps({"mAP": value, "per_class": []}))
    (folder / "run.json").write_text(json.dumps(key))


@pytest.fixture()
def compare_inputs(tmp_path):
    ckpt = tmp_path / "model_final.pth"
    ckpt.write_bytes(b"not read when every run exists")
    root = tmp_path / "ava"
    (root / "annotations").mkdir(parents=True)
    return ckpt, root


def test_compare_reports_both_arms_over_seeds_and_reuses_finished_runs(tmp_path, compare_inputs, capsys):
    compare = _script("quickstart_compare")
    ckpt, root = compare_inputs
    out = tmp_path / "compare"
    argv = ["--pretrained", str(ckpt), "--ava-root", str(root), "--output-dir", str(out), "--seeds", "0", "1"]
    args = compare.parse_args(argv)
    values = {("pretrained", 0): 0.7, ("pretrained", 1): 0.8, ("scratch", 0): 0.5, ("scratch", 1): 0.6}
    for (arm, seed), v in values.items():
        _fake_run(compare.run_dir(out, arm, seed), v, compare.run_key(args, arm, seed))
    assert compare.main(argv) == 0
    text = capsys.readouterr().out
    assert "pretrained: 0.750 ± 0.071, scratch: 0.550 ± 0.071" in text and "over 2 fine-tuning seeds" in text
    assert text.count("(reused") == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pretrained"]["mAP"] == [0.7, 0.8] and summary["scratch"]["mAP"] == [0.5, 0.6]
    assert summary["pretrained"]["mean"] == pytest.approx(0.75)
    # a run made from another checkpoint, or with other overrides, is not reused
    folder = compare.run_dir(out, "pretrained", 0)
    assert compare.finished_map(folder, compare.run_key(args, "pretrained", 0)) == pytest.approx(0.7)
    ckpt.write_bytes(b"another pretraining")
    assert compare.finished_map(folder, compare.run_key(args, "pretrained", 0)) is None
    other = compare.parse_args(argv + ["train.max_iter=5"])  # overrides right after the seeds
    assert other.seeds == [0, 1] and other.opts == ["train.max_iter=5"]
    assert compare.finished_map(compare.run_dir(out, "scratch", 0), compare.run_key(other, "scratch", 0)) is None


def test_compare_names_a_corrupt_metrics_file(tmp_path, compare_inputs):
    compare = _script("quickstart_compare")
    ckpt, root = compare_inputs
    out = tmp_path / "compare"
    argv = ["--pretrained", str(ckpt), "--ava-root", str(root), "--output-dir", str(out), "--seeds", "0", "1"]
    folder = compare.run_dir(out, "pretrained", 0)
    _fake_run(folder, 0.5, compare.run_key(compare.parse_args(argv), "pretrained", 0))
    (folder / "inference" / "ava_metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match="ava_metrics.json"):
        compare.main(argv)


@pytest.mark.parametrize(
    "argv_tail,message",
    [
        (["--seeds", "0"], "at least 2 distinct seeds"),
        (["--seeds", "1", "1"], "at least 2 distinct seeds"),
        (["train.max_iter"], "key=value"),
        (["--seeds", "0", "x"], "integers expected"),
    ],
)
def test_compare_argument_errors(compare_inputs, capsys, argv_tail, message):
    compare = _script("quickstart_compare")
    ckpt, root = compare_inputs
    with pytest.raises(SystemExit) as e:
        compare.parse_args(["--pretrained", str(ckpt), "--ava-root", str(root)] + argv_tail)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_compare_refuses_missing_checkpoint_and_dataset(tmp_path, compare_inputs, capsys):
    compare = _script("quickstart_compare")
    ckpt, root = compare_inputs
    for argv, message in (
        (["--pretrained", str(tmp_path / "none.pth"), "--ava-root", str(root)], "none.pth' does not exist"),
        (["--pretrained", str(ckpt), "--ava-root", str(tmp_path)], "has no annotations/"),
    ):
        with pytest.raises(SystemExit):
            compare.parse_args(argv)
        assert message in capsys.readouterr().err


def test_mean_std_is_the_sample_std():
    compare = _script("quickstart_compare")
    m, s = compare.mean_std([0.6, 0.7, 0.8])
    assert m == pytest.approx(0.7) and s == pytest.approx(0.1)
    assert np.isnan(compare.mean_std([0.5])[1])


# ---------------------------------------------------------------- scripts/quickstart_reconstruction.py


def test_reconstruction_picture_from_a_checkpoint_and_a_video(tmp_path, tiny_ava_factory):
    from detectron2.config import instantiate

    from vmae_det.config import load_config

    config = str(REPO / "configs/pretrain/tiny_quickstart.py")
    torch.manual_seed(0)
    model = instantiate(load_config(config).model)
    assert not model.norm_pix_loss and model.mask_ratio == pytest.approx(0.9)  # raw targets (see the config)
    ckpt = tmp_path / "model_final.pth"
    torch.save({"model": model.state_dict()}, ckpt)
    root = tiny_ava_factory(num_train_videos=1, num_val_videos=0, seconds=3, videos_only=True)
    out = tmp_path / "pics" / "rec.png"
    script = _script("quickstart_reconstruction")
    assert (
        script.main(
            [
                "--config-file",
                config,
                "--checkpoint",
                str(ckpt),
                "--video",
                str(root / "videos" / "tinytrain000.mp4"),
                "--output",
                str(out),
                "--clips",
                "2",
            ]
        )
        == 0
    )
    import matplotlib.image

    for i in range(2):
        img = matplotlib.image.imread(tmp_path / "pics" / f"rec_{i}.png")
        assert img.ndim == 3 and img.shape[0] > 100
    clip = script.center_square_clip(np.zeros((8, 96, 128, 3), np.uint8), 64)
    assert clip.shape == (1, 3, 8, 64, 64) and clip.dtype == torch.uint8


# ---------------------------------------------------------------- pretraining -> fine-tuning hand-over


def test_quickstart_checkpoint_gives_the_detector_the_mae_encoders_exact_tokens(tmp_path):
    """No silent mismatch between the two stages: every encoder tensor of an MAE checkpoint of
    configs/pretrain/tiny_quickstart.py loads into configs/ava/tiny.py's detector (only the action head is
    new), and its backbone computes the encoder's tokens for the same normalised clip, also on the
    fine-tuning's wider test frames (position table resized). Only the pixel normalisation constants differ
    (ImageNet's in pretraining, VMAD's in the detector, as upstream)."""
    from detectron2.config import instantiate

    from vmae_det.checkpoints import load_videomae_weights
    from vmae_det.config import load_config

    torch.manual_seed(0)
    mae = instantiate(load_config(str(REPO / "configs/pretrain/tiny_quickstart.py")).model).eval()
    with torch.no_grad():  # move away from the initialisation, so a wrong or skipped load shows
        for p in mae.encoder.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    ckpt = tmp_path / "model_final.pth"
    torch.save({"model": mae.state_dict()}, ckpt)
    torch.manual_seed(1)
    det = instantiate(load_config(str(REPO / "configs/ava/tiny.py")).model).eval()
    report = load_videomae_weights(det, str(ckpt))
    assert sorted(report.missing) == ["head.fc.bias", "head.fc.weight"]
    clip = torch.randint(0, 256, (1, 3, 8, 64, 64)).float()
    x = (clip - mae.pixel_mean) / mae.pixel_std
    with torch.no_grad():
        expected = mae.encoder.forward_tokens(x, torch.zeros(1, 256, dtype=torch.bool))
        torch.testing.assert_close(det.backbone.forward_tokens(x, None), expected, atol=1e-5, rtol=0)
        wide = det.backbone.forward_tokens(torch.nn.functional.pad(x, (0, 16)), None)  # 64x80: 8x10 grid
    assert wide.shape == (1, 4 * 8 * 10, expected.shape[-1]) and torch.isfinite(wide).all()
    assert det.backbone.patch_embed.tubelet_size == mae.encoder.patch_embed.tubelet_size
