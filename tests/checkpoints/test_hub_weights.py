"""Weights from the Hugging Face Hub (``hf://ORG/NAME[@REVISION][/FILE]``, docs/weights.md) and the
``convert_checkpoint --to hf`` export.

Nothing is downloaded: each test builds a huggingface_hub cache in its tmp folder, laid out as
``hf download`` leaves it (``models--ORG--NAME/blobs/<etag>``, ``snapshots/<commit>/<file>`` links to the
blobs, ``refs/<branch>`` holding the commit), points ``HF_HUB_CACHE`` at it and sets ``HF_HUB_OFFLINE=1``.
Then the id goes through the real readers: ``resolve_weights``, ``load_videomae_weights``, ``train_net``'s
``train.init_checkpoint`` (a one-iteration run), the demo's ``--checkpoint`` (a whole run) and
``convert_checkpoint``. The export is checked against transformers itself: no missing / unexpected keys,
the same outputs, and back into our models with identical tensors.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from cli_table import run_tool
from demo_helpers import CONFIG
from helpers import randomize

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.checkpoints import load_videomae_weights
from vmae_det.checkpoints.hub import WeightsNotFoundError, hub_cache_dir, parse_hub_id, resolve_weights
from vmae_det.cli import run_main
from vmae_det.modeling import build_videomae, build_vit
from vmae_det.tools import convert_checkpoint

REPO = Path(__file__).resolve().parents[2]
IMG, FRAMES, PATCH = 32, 4, 8
ENCODER = dict(img_size=IMG, num_frames=FRAMES, patch_size=PATCH)
SHAPE = ["--image-size", str(IMG), "--num-frames", str(FRAMES)]


# ------------------------------------------------------------------------------------------ a local hub cache
def publish(cache: Path, repo_id: str, files: dict, revision: str = "main", commit: str = "") -> Path:
    """Put ``files`` ({name in repo: local file}) into the hub cache as ``hf download`` does; return the
    snapshot folder. ``revision`` names a branch or tag (``refs/<revision>`` holds the commit)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = commit or hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    for name, src in files.items():
        data = Path(src).read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    return snapshot


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """An empty hub cache, offline: the environment a test of hf:// ids runs in."""
    cache = tmp_path / "hf_cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def to_hf(model_or_path, out: Path, tmp: Path, *extra: str) -> str:
    """``convert_checkpoint SRC OUT --to hf`` (a model is saved first); returns the printed summary."""
    src = model_or_path
    if isinstance(model_or_path, torch.nn.Module):
        src = tmp / f"{out.name}_src.pth"
        torch.save({"model": model_or_path.state_dict(), "iteration": 0}, src)
    return convert_checkpoint.convert_to_hf(str(src), str(out), **_shape(extra))


def _shape(extra) -> dict:
    args = dict(zip(extra[::2], extra[1::2]))
    return dict(image_size=int(args.get("--image-size", IMG)), num_frames=int(args.get("--num-frames", FRAMES)))


# ------------------------------------------------------------------------------------------ resolving ids
def test_resolve_weights_finds_the_cached_files(hub, tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"safetensors bytes")
    (tmp_path / "w.bin").write_bytes(b"bin bytes")
    (tmp_path / "config.json").write_text("{}")
    snap = publish(
        hub,
        "org/both",
        {
            "model.safetensors": tmp_path / "w.safetensors",
            "pytorch_model.bin": tmp_path / "w.bin",
            "config.json": tmp_path / "config.json",
        },
    )
    only_bin = publish(
        hub, "org/bin-only", {"pytorch_model.bin": tmp_path / "w.bin", "ckpt/model_final.pth": tmp_path / "w.bin"}
    )
    tagged = publish(hub, "org/bin-only", {"pytorch_model.bin": tmp_path / "w.safetensors"}, revision="v2")

    assert resolve_weights("hf://org/both") == str(snap / "model.safetensors")  # safetensors first
    assert Path(resolve_weights("hf://org/both")).read_bytes() == b"safetensors bytes"
    assert resolve_weights("hf://org/bin-only") == str(only_bin / "pytorch_model.bin")
    assert resolve_weights("hf://org/bin-only/ckpt/model_final.pth") == str(only_bin / "ckpt/model_final.pth")
    assert resolve_weights("hf://org/bin-only@v2") == str(tagged / "pytorch_model.bin")
    assert resolve_weights(f"hf://org/bin-only@{only_bin.name}") == str(only_bin / "pytorch_model.bin")  # commit
    # Plain paths (files, folders, the empty "no weights") pass through untouched.
    for plain in ("", "output/model_final.pth", str(tmp_path), "hf_folder/model.safetensors"):
        assert resolve_weights(plain) == plain
    assert resolve_weights(tmp_path / "w.bin") == str(tmp_path / "w.bin")
    assert parse_hub_id("hf://a/b@refs/pr/3/sub/f.pth") == ("a/b", "refs/pr/3", "sub/f.pth")


def test_the_cache_folder_follows_hf_home_when_hf_hub_cache_is_unset(tmp_path, monkeypatch, hub):
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == str(tmp_path / "home" / "hub")
    (tmp_path / "w.bin").write_bytes(b"x")
    snap = publish(tmp_path / "home" / "hub", "org/name", {"pytorch_model.bin": tmp_path / "w.bin"})
    assert resolve_weights("hf://org/name") == str(snap / "pytorch_model.bin")


def test_online_without_an_answering_hub_the_cached_file_is_used(hub, tmp_path, monkeypatch):
    """HF_HUB_OFFLINE unset and the Hub unreachable (a closed local port): the cached snapshot is used."""
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    closed = "http://127.0.0.1:9"  # the URL template is built when huggingface_hub is imported: patch both
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", closed)
    monkeypatch.setattr(
        huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", closed + "/{repo_id}/resolve/{revision}/{filename}"
    )
    (tmp_path / "w.bin").write_bytes(b"x")
    snap = publish(hub, "org/name", {"pytorch_model.bin": tmp_path / "w.bin"})
    assert resolve_weights("hf://org/name") == str(snap / "pytorch_model.bin")


def test_an_id_missing_offline_is_one_clear_error(hub, tmp_path, capsys):
    with pytest.raises(WeightsNotFoundError) as err:
        resolve_weights("hf://MCG-NJU/videomae-base")
    msg = str(err.value)
    for part in (
        "hf://MCG-NJU/videomae-base",
        str(hub),
        "HF_HUB_OFFLINE",
        "hf download MCG-NJU/videomae-base",
        "models--MCG-NJU--videomae-base",
    ):
        assert part in msg, (part, msg)
    (tmp_path / "w.bin").write_bytes(b"x")
    publish(hub, "org/name", {"pytorch_model.bin": tmp_path / "w.bin"})
    with pytest.raises(WeightsNotFoundError, match=r"hf://org/name/other\.pth .*other\.pth not in the cache"):
        resolve_weights("hf://org/name/other.pth")
    with pytest.raises(WeightsNotFoundError, match="hf download org/name --revision v9"):
        resolve_weights("hf://org/name@v9")
    for bad in ("hf://videomae-base", "hf://org/", "hf://a--b/c", "hf://org/name@"):
        with pytest.raises(ValueError, match=r"expected hf://ORG/NAME\[@REVISION\]\[/FILE\]"):
            resolve_weights(bad)
    # Through a tool: one "error:" line naming the id, exit code 2, nothing written.
    rc = run_main(lambda: convert_checkpoint.main(["hf://org/missing", str(tmp_path / "out.pth")]))
    err_text = capsys.readouterr().err
    assert rc == 2 and err_text.startswith("error: hf://org/missing") and err_text.count("\n") == 1
    assert not (tmp_path / "out.pth").exists()


# ------------------------------------------------------------------------------------------ --to hf export
def _clean(info: dict) -> None:
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        assert not info.get(kind), (kind, info.get(kind))


def _inputs(seed: int):
    """(our normalised input [B, 3, T, H, W], HF pixel_values [B, T, 3, H, W], a tube mask [B, N])."""
    from vmae_det.modeling.masking import build_masking

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, FRAMES, IMG, IMG, generator=g)
    mask = build_masking("tube", (FRAMES // 2, IMG // PATCH, IMG // PATCH), 0.75)(2, generator=g)
    return x, x.permute(0, 2, 1, 3, 4).contiguous(), mask


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_pretraining_export_loads_in_transformers_and_round_trips(hub, tmp_path):
    transformers = pytest.importorskip("transformers")
    ours = randomize(build_videomae("tiny", encoder_kwargs=ENCODER, decoder_depth=2), 1).eval()
    summary = to_hf(ours, tmp_path / "mae_hf", tmp_path)
    assert "VideoMAEForPreTraining" in summary and "dropped" not in summary, summary
    assert sorted(os.listdir(tmp_path / "mae_hf")) == ["config.json", "model.safetensors"]

    hf, info = transformers.VideoMAEForPreTraining.from_pretrained(tmp_path / "mae_hf", output_loading_info=True)
    _clean(info)
    hf.eval()
    x, pixel_values, mask = _inputs(seed=2)
    with torch.no_grad():
        enc = (hf.videomae(pixel_values).last_hidden_state - ours.encoder.forward_tokens(x)).abs().max()
        dec = (hf(pixel_values, bool_masked_pos=mask).logits - ours.predict(x, mask)).abs().max()
    assert enc < 1e-4 and dec < 1e-4, (enc, dec)  # decoder norm: transformers' eps 1e-5, ours 1e-6

    # Back into ours, from the folder and from the Hub id of the same files: identical tensors.
    back = build_videomae("tiny", encoder_kwargs=ENCODER, decoder_depth=2)
    report = load_videomae_weights(back, tmp_path / "mae_hf")
    assert report.source_format == "hf" and not report.missing and not report.unexpected
    _assert_same_weights(back, ours)
    publish(hub, "org/tiny-mae", {n: tmp_path / "mae_hf" / n for n in ("config.json", "model.safetensors")})
    again = build_videomae("tiny", encoder_kwargs=ENCODER, decoder_depth=2)
    load_videomae_weights(again, "hf://org/tiny-mae")
    _assert_same_weights(again, ours)
    # The Hub id as convert's input, back to our format: the same tensors as converting the .pth.
    assert convert_checkpoint.main(["hf://org/tiny-mae", str(tmp_path / "from_hub.pth")]) == 0
    from_hub = build_videomae("tiny", encoder_kwargs=ENCODER, decoder_depth=2)
    load_videomae_weights(from_hub, tmp_path / "from_hub.pth")
    _assert_same_weights(from_hub, ours)


def test_classification_and_detector_exports_load_in_their_transformers_classes(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    x, pixel_values, _ = _inputs(seed=3)
    # A mean-pooling fine-tune with its head (the official layout): VideoMAEForVideoClassification.
    vit = randomize(build_vit("tiny", use_mean_pooling=True, **ENCODER), 4).eval()
    g = torch.Generator().manual_seed(5)
    head = {"head.weight": torch.randn(7, 64, generator=g), "head.bias": torch.randn(7, generator=g)}
    torch.save({"model": {**vit.state_dict(), **head}}, tmp_path / "k400.pth")
    assert convert_checkpoint.main([str(tmp_path / "k400.pth"), str(tmp_path / "cls_hf"), "--to", "hf", *SHAPE]) == 0
    assert "VideoMAEForVideoClassification" in capsys.readouterr().out
    cls, info = transformers.VideoMAEForVideoClassification.from_pretrained(
        tmp_path / "cls_hf", output_loading_info=True
    )
    _clean(info)
    with torch.no_grad():
        ours_logits = torch.nn.functional.linear(vit.forward_features(x), head["head.weight"], head["head.bias"])
        diff = (cls.eval()(pixel_values).logits - ours_logits).abs().max()
    assert cls.config.num_labels == 7 and diff < 1e-4, diff  # fc_norm: transformers' eps 1e-5, ours 1e-6

    # Our AVA detector: transformers has no RoI action head, the backbone goes out as VideoMAEModel.
    from vmae_det.modeling import AVAActionDetector

    det = AVAActionDetector(backbone=build_vit("tiny", **ENCODER), num_classes=5)
    randomize(det, 6).eval()
    summary = to_hf(det, tmp_path / "det_hf", tmp_path)
    assert "VideoMAEModel" in summary and "dropped" in summary and "head.fc.weight" in summary, summary
    assert "transformers has no class for an action detector's head" in summary, summary
    model, info = transformers.VideoMAEModel.from_pretrained(tmp_path / "det_hf", output_loading_info=True)
    _clean(info)
    with torch.no_grad():
        diff = (model.eval()(pixel_values).last_hidden_state - det.backbone.forward_tokens(x)).abs().max()
    assert diff < 1e-5, diff
    back = build_vit("tiny", **ENCODER)
    load_videomae_weights(back, tmp_path / "det_hf")
    _assert_same_weights(back, det.backbone)


def test_export_refuses_what_transformers_cannot_hold(tmp_path):
    layer_scale = build_vit("tiny", init_values=0.1, **ENCODER)
    with pytest.raises(ValueError, match="layer scale"):
        to_hf(layer_scale, tmp_path / "ls", tmp_path)
    learned = randomize(build_vit("tiny", use_learnable_pos_emb=True, **ENCODER), 7).eval()
    with pytest.raises(ValueError, match="learned position table"):
        to_hf(learned, tmp_path / "pos", tmp_path)
    with pytest.raises(ValueError, match="not multiples of the patch"):
        to_hf(build_vit("tiny", **ENCODER), tmp_path / "size", tmp_path, "--image-size", "30")
    assert not (tmp_path / "ls").exists() and not (tmp_path / "pos").exists() and not (tmp_path / "size").exists()


# ------------------------------------------------------------------------------------------ the tools
def test_train_net_starts_from_an_hf_id(hub, tmp_path, tiny_ava_factory):
    """train.init_checkpoint=hf://... through the real train_net (one iteration on the tiny dataset), and
    load_videomae_weights on the same id gives the published backbone exactly."""
    from detectron2.config import instantiate

    from vmae_det.checkpoints import locate_checkpoint
    from vmae_det.config import load_config

    mae = randomize(
        build_videomae("tiny", encoder_kwargs=dict(img_size=64, num_frames=8, patch_size=8), decoder_depth=1), 8
    ).eval()
    to_hf(mae, tmp_path / "pre_hf", tmp_path, "--image-size", "64", "--num-frames", "8")
    publish(hub, "org/tiny-pretrain", {n: tmp_path / "pre_hf" / n for n in ("config.json", "model.safetensors")})

    model = instantiate(load_config(str(REPO / "configs/ava/tiny.py")).model)
    load_videomae_weights(model, "hf://org/tiny-pretrain")
    _assert_same_weights(model.backbone, mae.encoder)

    datasets = tiny_ava_factory(num_train_videos=2, num_val_videos=1, seconds=4).parent
    out = tmp_path / "run"
    run = run_tool(
        "train_net",
        [
            "--config-file",
            str(REPO / "configs/ava/tiny.py"),
            "train.init_checkpoint=hf://org/tiny-pretrain",
            f"train.output_dir={out}",
            "train.max_iter=1",
            "train.eval_period=0",
            "dataloader.train.num_workers=0",
            "dataloader.test.num_workers=0",
            "dataloader.train.total_batch_size=2",
        ],
        {"VMAE_DET_DATASETS": str(datasets)},
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert "train.init_checkpoint hf://org/tiny-pretrain -> " in log and "models--org--tiny-pretrain" in log
    assert "VideoMAE weights (hf): loaded" in log, log[-3000:]
    assert (out / "model_final.pth").is_file()

    # An id that is not cached: the clear error where it is resolved (a tool prints it as "error: ...").
    with pytest.raises(WeightsNotFoundError, match="hf://org/not-there .*not in the cache"):
        locate_checkpoint("hf://org/not-there")


def test_demo_takes_an_hf_checkpoint(hub, tmp_path):
    from vmae_det.demo import ActionPredictor
    from vmae_det.modeling.tiny_action_model import TinyActionModel
    from vmae_det.tools import demo as demo_tool

    cfg = tmp_path / "tiny_cfg.py"
    cfg.write_text(CONFIG)
    torch.manual_seed(3)
    weights = TinyActionModel(num_classes=3).state_dict()
    torch.save({"model": weights}, tmp_path / "w.pth")
    publish(hub, "org/tiny-demo", {"checkpoints/model_final.pth": tmp_path / "w.pth"})
    spec = "hf://org/tiny-demo/checkpoints/model_final.pth"

    predictor = ActionPredictor.from_config(str(cfg), spec, device="cpu")
    assert torch.equal(predictor.model.cls.weight, weights["cls.weight"])  # the published weights

    video = tmp_path / "v.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (48, 32))
    for i in range(9):
        writer.write(np.full((32, 48, 3), 20 * i, np.uint8))
    writer.release()
    boxes = tmp_path / "b.csv"
    boxes.write_text("v,0,0.1,0.1,0.6,0.9,,0.9\n")
    args = [
        "--config-file",
        str(cfg),
        "--input",
        str(video),
        "--output",
        str(tmp_path / "o"),
        "--boxes",
        str(boxes),
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert demo_tool.main(["--checkpoint", spec, *args]) == 0
    assert (tmp_path / "o" / "v_actions.csv").is_file()
    with pytest.raises(WeightsNotFoundError, match="hf://org/tiny-demo/nope.pth"):
        demo_tool.main(["--checkpoint", "hf://org/tiny-demo/nope.pth", *args])


def test_weights_doc_commands_name_real_flags(capsys):
    """docs/weights.md's commands use flags the tools have."""
    doc = (REPO / "docs" / "weights.md").read_text()
    for flag in (
        "--to hf",
        "--image-size",
        "--num-frames",
        "HF_HUB_OFFLINE=1",
        "train.init_checkpoint=hf://",
        "--checkpoint hf://",
    ):
        assert flag in doc, flag
    with pytest.raises(SystemExit):
        convert_checkpoint.main(["--help"])
    parser_help = capsys.readouterr().out
    for flag in ("--to {vmae_det,hf}", "--image-size", "--num-frames", "--num-heads", "--decoder-num-heads"):
        assert flag in parser_help, flag
