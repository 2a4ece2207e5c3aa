"""Images between ttscale's tensors and files: uint8 arrays and PNG bytes.

Inside ttscale an image batch is a float tensor (B, 3, H, W) in [0, 1]; files, evaluators, processors of
pretrained verifiers and API judges want HxWx3 uint8 arrays or PNG bytes. The conversions live here, apart
from the generators and the output folder, so that a verifier needs neither to make its inputs.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> list[np.ndarray]:
    """(B, 3, H, W) floats in [0, 1] to HxWx3 uint8 arrays, for PNG files and evaluators.

    Scaled in place on clamp's copy, and made contiguous here in one go, so PIL does not copy each image again.
    """
    scaled = images.detach().float().clamp(0, 1).mul_(255).round_()
    return list(scaled.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy())


def encode_png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def encode_pngs(images: Sequence[np.ndarray]) -> list[bytes]:
    """`encode_png` over several threads: zlib releases the GIL, and a 1024 px candidate takes ~0.1 s to encode,
    as long as a few denoising steps of a large model."""
    workers = min(len(images), os.cpu_count() or 1, 8)
    if workers <= 1:
        return [encode_png(image) for image in images]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(encode_png, images))


def load_image(path: Path) -> np.ndarray:
    """A picture file as an HxWx3 uint8 array (RGB, whatever mode it was saved in)."""
    with Image.open(path) as im:
        return np.array(im.convert("RGB"))
