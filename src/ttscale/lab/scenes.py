"""Scenes of flat-coloured shapes: sample one that satisfies a GenEval metadata entry, and render it.

A scene is plain data (shape, colour, centre, size per object), so every rendered image keeps its
ground truth. Placement keeps objects apart (>= 2.5 px at 32 px) and relations unambiguous, which
is what makes the classical evaluator exact on rendered truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ttscale.lab.world import BACKGROUND, COLORS, DEFAULT_RESOLUTION, SHAPES, allowed_colors

# Object size (side or diameter) and the gap between objects, as fractions of the image side.
SIZE_RANGE = (0.25, 0.34)
GAP = 0.09
_MAX_TRIES = 400


class SceneError(ValueError):
    """A metadata entry asks for a scene the lab world cannot draw."""


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    cx: float  # centre, in units of the image side (0..1)
    cy: float
    size: float  # side / diameter, in units of the image side


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(o) for o in self.objects]


def shape_mask(obj: SceneObject, resolution: int) -> np.ndarray:
    """Boolean mask of the pixels whose centres fall inside the object."""
    coords = (np.arange(resolution) + 0.5) / resolution
    px, py = np.meshgrid(coords, coords)  # px varies along columns (x), py along rows (y)
    dx, dy, half = px - obj.cx, py - obj.cy, obj.size / 2
    if obj.shape == "circle":
        return np.asarray(dx**2 + dy**2 <= half**2)
    if obj.shape == "square":
        return np.asarray((np.abs(dx) <= half) & (np.abs(dy) <= half))
    if obj.shape == "triangle":  # apex up, base down
        from_top = dy + half
        return np.asarray((dy <= half) & (from_top >= 0) & (np.abs(dx) <= from_top / 2))
    if obj.shape == "cross":
        arm = max(obj.size / 6, 1.3 / resolution)
        vertical = (np.abs(dx) <= arm) & (np.abs(dy) <= half)
        horizontal = (np.abs(dy) <= arm) & (np.abs(dx) <= half)
        return np.asarray(vertical | horizontal)
    raise SceneError(f"unknown shape {obj.shape!r}; the lab world has {', '.join(SHAPES)}")


def render(scene: Scene, resolution: int = DEFAULT_RESOLUTION) -> np.ndarray:
    """Draw the scene as an HxWx3 uint8 image on the plain background."""
    image = np.empty((resolution, resolution, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    for obj in scene.objects:
        image[shape_mask(obj, resolution)] = COLORS[obj.color]
    return image


def _apart(a: SceneObject, b: SceneObject) -> bool:
    reach = (a.size + b.size) / 2 + GAP
    return abs(a.cx - b.cx) >= reach or abs(a.cy - b.cy) >= reach


def _relation_holds(a: SceneObject, rel: str, b: SceneObject) -> bool:
    """A clear `a rel b`: separated along the relation's axis, the other axis offset at most half as much."""
    dx, dy = a.cx - b.cx, a.cy - b.cy
    reach = (a.size + b.size) / 2 + GAP
    along, across = (dx, dy) if rel in ("left of", "right of") else (dy, dx)
    sign = -1.0 if rel in ("left of", "above") else 1.0
    return sign * along >= reach and abs(across) <= 0.5 * abs(along)


def sample_scene(
    metadata: Mapping[str, Any], rng: np.random.Generator, *, training: bool = False, resolution: int = 32
) -> Scene:
    """Draw a random scene that satisfies the metadata's `include` entries exactly (and so its `exclude`).

    Unnamed colours are drawn at random; with `training=True` the held-out colour/shape pairs never
    appear. The resolution only sets the minimum object size in pixels, since sizes are relative.
    """
    specs: list[tuple[int, str, str | None, Sequence[Any] | None]] = []
    for index, entry in enumerate(metadata.get("include", [])):
        shape = entry["class"]
        if shape not in SHAPES:
            raise SceneError(f"unknown class {shape!r}; the lab world has {', '.join(SHAPES)}")
        color = entry.get("color")
        if color is not None and color not in COLORS:
            raise SceneError(f"unknown colour {color!r}; the lab world has {', '.join(COLORS)}")
        specs.extend((index, shape, color, entry.get("position")) for _ in range(int(entry["count"])))
    if not specs:
        raise SceneError("metadata has no `include` entry to draw")
    min_size = max(SIZE_RANGE[0], 8.0 / resolution)
    for _ in range(_MAX_TRIES):
        placed: list[SceneObject] = []
        groups: dict[int, list[SceneObject]] = {}
        for index, shape, color, position in specs:
            size = float(rng.uniform(min_size, max(min_size, SIZE_RANGE[1])))
            name = color or str(rng.choice(allowed_colors(shape, training=training)))
            targets = groups.get(int(position[1]), []) if position is not None else []
            obj = _place(shape, name, size, placed, position[0] if position else None, targets, rng)
            if obj is None:
                break
            placed.append(obj)
            groups.setdefault(index, []).append(obj)
        else:
            return Scene(tuple(placed))
    raise SceneError(f"could not place the objects of {metadata.get('prompt', metadata)!r}")


def _place(
    shape: str,
    color: str,
    size: float,
    placed: list[SceneObject],
    relation: str | None,
    targets: list[SceneObject],
    rng: np.random.Generator,
) -> SceneObject | None:
    lo, hi = size / 2 + 0.04, 1 - size / 2 - 0.04
    for _ in range(60):
        obj = SceneObject(shape, color, float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi)), size)
        if not all(_apart(obj, other) for other in placed):
            continue
        if relation is not None and not all(_relation_holds(obj, relation, t) for t in targets):
            continue
        return obj
    return None
