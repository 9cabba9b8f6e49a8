"""Session fixtures shared by the test modules; helpers are ``tests/helpers.py``.

Test modules sit in folders named after the package's (``tests/data`` for ``vmae_det/data``, ...; ``tests/cli``:
the bad-input tables through the tools; ``tests/docs``: the docs as tests); shared helpers stay here at the top,
which pytest puts on ``sys.path`` with this file, so they are imported by bare name.

The suite runs on both cores (``pytest -n 2 --dist loadfile``): a module's tests stay in one worker, and
session fixtures are built once per worker.
"""

import logging
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

import vmae_det  # noqa: E402,F401  (shims before detectron2)

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _package_logs_reach_caplog():
    """Training in-process runs detectron2's ``setup_logger(name="vmae_det")``, which stops the package's logger
    propagating and lowers its level to DEBUG; ``caplog`` listens at the root, so a later test in the same worker
    would see no records, or the INFO records a new process would not pass on."""
    logger = logging.getLogger("vmae_det")
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


@pytest.fixture(scope="session")
def tiny_ava_factory(tmp_path_factory):
    """``make(**kwargs)``: :func:`make_tiny_ava` with ``kwargs``, built once per session and set of arguments
    at ``<a folder of its own>/tiny_ava``, so its parent is a ``$VMAE_DET_DATASETS``. The dataset is shared:
    read it, link it or copy it, never write into it."""
    import inspect

    from vmae_det.synthetic.ava import make_tiny_ava

    built = {}

    def make(**kwargs):
        args = inspect.signature(make_tiny_ava).bind(None, **kwargs)
        args.apply_defaults()
        key = tuple((k, v) for k, v in sorted(args.arguments.items()) if k != "root")
        if key not in built:
            built[key] = make_tiny_ava(tmp_path_factory.mktemp("datasets") / "tiny_ava", **kwargs)
        return built[key]

    return make


@pytest.fixture(scope="session")
def tiny_ava(tiny_ava_factory):
    """The default tiny dataset (``python datasets/make_tiny_ava.py``: 8 training and 3 validation videos of
    10 s, frames and videos); shared, see :func:`tiny_ava_factory`."""
    return tiny_ava_factory()


@pytest.fixture(scope="session")
def tiny_ava_videos(tiny_ava_factory):
    """A small tiny dataset, videos only: 2 training and 1 validation video of 4 s; shared, see
    :func:`tiny_ava_factory`."""
    return tiny_ava_factory(num_train_videos=2, num_val_videos=1, seconds=4, format="videos")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """The demo tests' video: 75 frames of ``demo_helpers.make_video`` named ``clip one.mp4``."""
    from demo_helpers import make_video

    return make_video(tmp_path_factory.mktemp("vid") / "clip one.mp4", 75)


#: The longest modules (a long fixture, tool or multi-process runs), longest first: they start first, so that no
#: worker of ``pytest -n 2`` is left alone with one of them at the end.
LONG_MODULES = (
    "docs/test_docs_commands.py",
    "cli/test_cli_bad_inputs_reliability.py",
    "tools/test_vmad_end_to_end.py",
    "tools/test_train_net.py",
    "engine/test_multi_machine.py",
    "modeling/test_vmad_parity.py",
    "cli/test_cli_bad_inputs_video.py",
    "engine/test_engine.py",
    "cli/test_cli_bad_inputs_training.py",
    "tools/test_act_training.py",
)


def pytest_collection_modifyitems(items):
    """Modules in the order ``make test``'s workers take them (``--no-loadscope-reorder``): those of
    :data:`LONG_MODULES` first, then the others, most tests first; a module's tests keep their order."""
    count = {}
    for item in items:
        count[item.path] = count.get(item.path, 0) + 1
    here = Path(__file__).parent
    rank = {here / name: i for i, name in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: (rank.get(item.path, len(rank)), -count[item.path], str(item.path)))
