"""Prompts in GenEval's metadata format: one JSON object per line with `prompt`, `tag`, `include`.

Loading validates every line, so a malformed file fails at once with the line number instead of
deep inside a run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ttscale.errors import TTScaleError

TASKS: tuple[str, ...] = ("single_object", "two_object", "counting", "colors", "position", "color_attr")


def validate(metadata: Any, where: str) -> dict[str, Any]:
    """Check one GenEval metadata object; `where` names it in the error (file and line)."""
    if not isinstance(metadata, dict):
        raise TTScaleError(f"{where}: expected a JSON object, got {type(metadata).__name__}")
    prompt = metadata.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise TTScaleError(f"{where}: empty or missing `prompt`")
    tag = metadata.get("tag")
    if tag not in TASKS:
        raise TTScaleError(f"{where}: unknown task tag {tag!r}; GenEval's tags are {', '.join(TASKS)}")
    for key in ("include", "exclude"):
        entries = metadata.get(key, [])
        if not isinstance(entries, list) or (key == "include" and not entries):
            raise TTScaleError(f"{where}: `{key}` must be a {'non-empty ' if key == 'include' else ''}list")
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("class"), str):
                raise TTScaleError(f"{where}: every `{key}` entry needs a `class`")
            if not isinstance(entry.get("count"), int) or entry["count"] < 1:
                raise TTScaleError(f"{where}: `{key}` entry {entry.get('class')!r} needs a positive integer `count`")
    return metadata


def parse_jsonl(text: str, source: str) -> list[dict[str, Any]]:
    prompts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise TTScaleError(f"{source}:{number}: malformed JSON ({err.msg})") from None
        prompts.append(validate(obj, f"{source}:{number}"))
    if not prompts:
        raise TTScaleError(f"{source}: no prompts found")
    return prompts


def load_prompts(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate a GenEval-format JSONL prompt file."""
    path = Path(path)
    if not path.is_file():
        raise TTScaleError(f"prompt file {path} does not exist")
    return parse_jsonl(path.read_text(encoding="utf-8"), str(path))
