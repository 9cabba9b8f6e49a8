"""Where weights come from: a local path, or a Hugging Face Hub id ``hf://ORG/NAME[@REVISION][/FILE]``.

:func:`resolve_weights` is the one place that turns a weights argument into a local path; it is called once, at
the entry (a tool's argument checks, ``train_net``'s setup, the public API). Cache and offline behaviour:
``docs/weights.md``. The environment is read at each call, not at import, so changing ``HF_HUB_OFFLINE`` /
``HF_HUB_CACHE`` / ``HF_HOME`` in a running process takes effect.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple, Optional, Union

__all__ = [
    "HF_PREFIX",
    "HF_WEIGHT_FILES",
    "HubId",
    "WeightsNotFoundError",
    "hub_cache_dir",
    "hub_offline",
    "is_hub_id",
    "parse_hub_id",
    "resolve_weights",
]

HF_PREFIX = "hf://"
#: Weight files looked for in a repository, in order (safetensors first, as transformers does).
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# A Hub repository name part: letters, digits, "-", "_", "." (no "--" / ".." at the ends, as the Hub checks).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class WeightsNotFoundError(FileNotFoundError):
    """An ``hf://`` id that cannot be resolved; the message names the id, the cache folder and the way out."""


class HubId(NamedTuple):
    repo_id: str
    revision: Optional[str]  # branch, tag or commit; None = "main"
    filename: Optional[str]  # a file inside the repository; None = the weights file


def is_hub_id(spec: Union[str, os.PathLike, None]) -> bool:
    return isinstance(spec, str) and spec.startswith(HF_PREFIX)


def parse_hub_id(spec: str) -> HubId:
    """``hf://ORG/NAME[@REVISION][/FILE]`` -> :class:`HubId`; ``ValueError`` for a malformed id.

    The revision is one path segment or ``refs/pr/N``; ``FILE`` may have folders.
    """
    body = spec[len(HF_PREFIX) :] if spec.startswith(HF_PREFIX) else spec
    parts = body.split("/")
    usage = f"'{spec}': expected {HF_PREFIX}ORG/NAME[@REVISION][/FILE], e.g. {HF_PREFIX}MCG-NJU/videomae-base"
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"{usage} (a Hub id has an organisation or user and a name)")
    org, name, rest = parts[0], parts[1], parts[2:]
    revision = None
    if "@" in name:
        name, revision = name.split("@", 1)
        if revision == "refs" and rest[:1] == ["pr"] and len(rest) >= 2:  # hf://org/name@refs/pr/3
            revision, rest = f"refs/pr/{rest[1]}", rest[2:]
        if not revision:
            raise ValueError(f"{usage} (empty revision after '@')")
    for part in (org, name):
        if not _NAME.fullmatch(part) or "--" in part or ".." in part:
            raise ValueError(f"{usage} ('{part}' is not a valid Hub name)")
    if any(p in ("", ".", "..") for p in rest):
        raise ValueError(f"{usage} (bad file path '{'/'.join(rest)}')")
    return HubId(f"{org}/{name}", revision, "/".join(rest) or None)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set, read now."""
    return _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")


def hub_cache_dir() -> str:
    """The hub cache folder huggingface_hub would use with the current environment."""

    def expand(p: str) -> str:
        return os.path.expandvars(os.path.expanduser(p))

    if os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return expand(os.environ.get("HF_HUB_CACHE") or os.environ["HUGGINGFACE_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface"
    )
    return os.path.join(expand(home), "hub")


def _how_to_fix(hub: HubId, cache: str, offline: bool) -> str:
    rev = f" --revision {hub.revision}" if hub.revision else ""
    file = f" {hub.filename}" if hub.filename else ""
    fetch = (
        f"on a machine with network run `HF_HUB_CACHE={cache} hf download {hub.repo_id}{rev}{file}` "
        "(huggingface_hub < 1.0: `huggingface-cli download ...`) and copy that cache folder here "
        f"(models--{hub.repo_id.replace('/', '--')}), or point HF_HUB_CACHE / HF_HOME at a cache that has it"
    )
    if offline:
        return f"{fetch}; or unset HF_HUB_OFFLINE to download it"
    return f"check the id and your network; {fetch}"


def resolve_weights(spec: Union[str, os.PathLike]) -> str:
    """A local path for a weights argument: ``hf://`` ids are fetched (or found in the cache), anything else
    is returned as a ``str``.

    Raises :class:`WeightsNotFoundError` for an id that cannot be resolved, ``ValueError`` for a malformed one.
    """
    if not is_hub_id(spec):
        return os.fspath(spec) if spec is not None else spec
    hub = parse_hub_id(spec)
    try:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
        from huggingface_hub.utils import (
            EntryNotFoundError,
            GatedRepoError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as e:
        raise WeightsNotFoundError(
            f"{spec}: huggingface_hub is needed for hf:// weights (pip install huggingface_hub): {e}"
        ) from e
    cache, offline = hub_cache_dir(), hub_offline()
    where = f"{spec} (Hugging Face cache {cache}{', HF_HUB_OFFLINE=1' if offline else ''})"

    local_only = offline

    def download(filename: str) -> str:
        return hf_hub_download(
            hub.repo_id, filename, revision=hub.revision, cache_dir=cache, local_files_only=local_only
        )

    candidates = [hub.filename] if hub.filename else list(HF_WEIGHT_FILES)
    # A cached pytorch_model.bin wins over a model.safetensors that would be downloaded anew.
    cached = {f: try_to_load_from_cache(hub.repo_id, f, cache_dir=cache, revision=hub.revision) for f in candidates}
    candidates.sort(key=lambda f: not isinstance(cached[f], str))
    not_cached, not_in_repo = [], []
    path = None
    for filename in candidates:
        if not isinstance(cached[filename], str) and cached[filename] is not None:  # cached as absent
            not_in_repo.append(filename)
            continue
        try:
            path = download(filename)
            break
        except GatedRepoError as e:  # before RepositoryNotFoundError, its base class
            raise WeightsNotFoundError(
                f"{where}: the repository is gated or private ({type(e).__name__}); "
                "log in with `hf auth login` (or set HF_TOKEN) after accepting its terms "
                "on huggingface.co"
            ) from e
        except RepositoryNotFoundError as e:
            raise WeightsNotFoundError(
                f"{where}: no such repository on the Hub {hub.repo_id} (or it is private: "
                "log in with `hf auth login`); check the id"
            ) from e
        except RevisionNotFoundError as e:
            raise WeightsNotFoundError(f"{where}: the repository has no revision '{hub.revision}'") from e
        except LocalEntryNotFoundError:  # before its base EntryNotFoundError: not cached
            not_cached.append(filename)
            local_only = True  # the Hub did not answer: do not wait for it again for the next files
        except EntryNotFoundError:  # the repository exists but has no such file
            not_in_repo.append(filename)
        except OSError as e:
            raise WeightsNotFoundError(
                f"{where}: cannot fetch {filename} ({type(e).__name__}: {e}); " + _how_to_fix(hub, cache, offline)
            ) from e
    if path is None:
        if not_cached:
            why = (
                "not in the cache and downloads are off"
                if offline
                else "not in the cache and the Hub could not be reached (no network?)"
            )
            raise WeightsNotFoundError(f"{where}: {' / '.join(not_cached)} {why}; " + _how_to_fix(hub, cache, offline))
        raise WeightsNotFoundError(
            f"{where}: the repository has no {' or '.join(not_in_repo)}"
            + ("" if hub.filename else f"; name the weights file: {HF_PREFIX}{hub.repo_id}/FILE")
        )
    if not hub.filename:
        # Only with newly downloaded weights: with cached weights the Hub may be unreachable.
        local_only = local_only or isinstance(cached[filename], str)
        try:
            download("config.json")
        except (OSError, ValueError, EntryNotFoundError):
            pass
    return path
