"""The output folder of a run, GenEval-compatible, written atomically so a crash never leaves half a file.

```
out/run.json
out/00000/metadata.jsonl            the prompt's GenEval line
out/00000/samples/00000.png         the kept images (what GenEval evaluates)
out/00000/candidates.jsonl          every candidate: index, seed, path, nfe, scores, rank, kept
out/00000/candidates/00000.png      every candidate's image (optional)
out/results.jsonl, summary.json     the evaluator's output
```

A candidate is re-created (`ttscale.recreate`) from its `seed` alone for best-of-n, random-search, rounds,
adaptive and early-pruning; zero-order, search-over-paths and particle-filter need its `path` too, and the
particle filter also its `index` (its particle slot) and the number of lines (its particle count).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ttscale.errors import TTScaleError
from ttscale.images import encode_png
from ttscale.prompts import validate

_DIGITS = re.compile(r"^\d+$")
_PNG = re.compile(r"^\d+\.png$")


def prompt_dir(out: Path, index: int) -> Path:
    return out / f"{index:05d}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=False) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise TTScaleError(f"{path}:{number}: malformed JSON ({err.msg})") from None
    return rows


def save_png(path: Path, image: np.ndarray) -> None:
    """Write one HxWx3 uint8 image as a PNG file, atomically."""
    atomic_write_bytes(path, encode_png(image))


def write_prompt(out: Path, index: int, metadata: dict[str, Any], images: Sequence[np.ndarray | bytes]) -> Path:
    """Write one prompt's metadata.jsonl and kept samples; metadata goes last, marking it complete.

    A sample given as bytes is already PNG-encoded (the runner's candidate file), so it is not encoded twice.
    """
    folder = prompt_dir(out, index)
    for k, image in enumerate(images):
        png = image if isinstance(image, bytes) else encode_png(image)
        atomic_write_bytes(folder / "samples" / f"{k:05d}.png", png)
    write_jsonl(folder / "metadata.jsonl", [metadata])
    return folder


def iter_samples(out: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every (image path, metadata) in a GenEval folder, as GenEval's evaluator walks it."""
    if not out.is_dir():
        raise TTScaleError(f"{out} is not a folder; give the output folder of a run (it holds 00000/, 00001/ …)")
    folders = sorted(p for p in out.iterdir() if p.is_dir() and _DIGITS.match(p.name))
    if not folders:
        raise TTScaleError(f"{out} holds no prompt folders (00000/, 00001/ …): is it a GenEval-format output?")
    for folder in folders:
        meta_path = folder / "metadata.jsonl"
        if not meta_path.is_file():
            raise TTScaleError(f"{meta_path} is missing")
        lines = [ln for ln in meta_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if not lines:
            raise TTScaleError(f"{meta_path}:1: empty metadata file")
        try:
            metadata = json.loads(lines[0])
        except json.JSONDecodeError as err:
            raise TTScaleError(f"{meta_path}:1: malformed JSON ({err.msg})") from None
        validate(metadata, f"{meta_path}:1")
        samples = folder / "samples"
        names = sorted(p.name for p in samples.iterdir() if _PNG.match(p.name)) if samples.is_dir() else []
        for name in names:
            yield samples / name, metadata
