"""The lab world's exact, classical evaluator: segmentation, colour and shape rules, centroids.

It plays GenEval's role for the lab world and shares no code or weights with any verifier.
Detection is deliberately strict, because a generator's failures must never count as objects:
a component is an object only if it is flat, near a palette colour, of plausible size and
recognisably one of the shapes, and an image whose foreground is mostly stray pixels, or whose
background is not clean, holds no countable objects at all. The judging rules then follow
GenEval: include = at least `count` found (the largest first, in the role of the most confident),
colour of each of those, relation from centres with a 0.1 x (sum of sizes) margin; exclude =
fewer than `count`; every rule must hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from ttscale.evaluator import Verdict
from ttscale.lab.world import BACKGROUND, COLORS

_PALETTE = np.array(list(COLORS.values()), dtype=np.float32)
_NAMES = list(COLORS)
_BG = np.array(BACKGROUND, dtype=np.float32)

BG_TOLERANCE = 40.0  # RGB distance under which a pixel is background
COLOR_TOLERANCE = 50.0  # RGB distance under which a pixel takes its nearest palette colour
MEAN_TOLERANCE = 30.0  # an object's mean colour must lie this close to its palette colour
MIN_AREA, MAX_AREA = 0.015, 0.16  # object area, as a fraction of the image
STRAY_LIMIT = 0.03  # more stray foreground than this fraction of the image: nothing counts
POSITION_MARGIN = 0.1  # GenEval's POSITION_THRESHOLD


@dataclass(frozen=True)
class Detection:
    shape: str
    color: str
    area: int
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive ends), pixels
    centroid: tuple[float, float]  # x, y, pixels

    @property
    def dims(self) -> np.ndarray:
        return np.array([self.bbox[2] - self.bbox[0], self.bbox[3] - self.bbox[1]], dtype=np.float64)


@dataclass
class Detections:
    """Objects found in one image, by class, largest first; `rejected` says why nothing counts."""

    by_class: dict[str, list[Detection]] = field(default_factory=dict)
    rejected: str = ""


def classify_shape(mask: np.ndarray) -> str | None:
    """Name the shape of one component from solidity, fill ratio and centroid offset, or None."""
    ys, xs = np.nonzero(mask)
    area = len(xs)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    w, h = x1 - x0, y1 - y0
    if not 0.7 <= w / h <= 1.43:
        return None
    corners = np.concatenate([np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)])
    try:
        hull_area = ConvexHull(corners).volume
    except QhullError:
        return None
    solidity = area / hull_area
    fill = area / (w * h)
    offset = (ys.mean() + 0.5 - (y0 + y1) / 2) / h
    if offset > 0.09 and fill < 0.72 and solidity >= 0.8:
        return "triangle"
    if abs(offset) >= 0.07:
        return None
    if solidity < 0.815:
        return "cross" if 0.4 <= fill <= 0.7 else None
    if solidity >= 0.985 and fill >= 0.95:
        return "square"
    if solidity < 0.985 and 0.6 <= fill < 0.97:
        return "circle"
    return None


def detect(image: np.ndarray) -> Detections:
    """Segment an HxWx3 image into lab objects."""
    rgb = image[..., :3].astype(np.float32)
    h, w = rgb.shape[:2]
    npix = h * w
    foreground = np.linalg.norm(rgb - _BG, axis=-1) >= BG_TOLERANCE
    dist = np.linalg.norm(rgb[:, :, None, :] - _PALETTE[None, None], axis=-1)
    nearest = dist.argmin(-1)
    colored = foreground & (dist.min(-1) < COLOR_TOLERANCE)
    claimed = np.zeros((h, w), dtype=bool)
    found: list[Detection] = []
    for ci, name in enumerate(_NAMES):
        labels, n = ndimage.label(colored & (nearest == ci))  # 4-connected
        for k in range(1, n + 1):
            comp = labels == k
            area = int(comp.sum())
            if not MIN_AREA * npix <= area <= MAX_AREA * npix:
                continue
            if np.linalg.norm(rgb[comp].mean(0) - _PALETTE[ci]) > MEAN_TOLERANCE:
                continue
            shape = classify_shape(comp)
            if shape is None:
                continue
            ys, xs = np.nonzero(comp)
            bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            found.append(Detection(shape, name, area, bbox, (float(xs.mean() + 0.5), float(ys.mean() + 0.5))))
            claimed |= comp
    # Edge fuzz right next to an object is tolerated; anything else in the foreground is stray.
    near_objects = ndimage.binary_dilation(claimed, iterations=1)
    stray = int((foreground & ~near_objects).sum())
    if stray > STRAY_LIMIT * npix:
        return Detections(rejected=f"{stray} stray foreground pixels ({stray / npix:.0%}): no countable objects")
    out = Detections()
    for det in sorted(found, key=lambda d: -d.area):
        out.by_class.setdefault(det.shape, []).append(det)
    return out


def relations(a: Detection, b: Detection) -> set[str]:
    """Where A lies relative to B (GenEval's rule on centres, with a size-proportional margin)."""
    offset = np.subtract(a.centroid, b.centroid)
    revised = np.maximum(np.abs(offset) - POSITION_MARGIN * (a.dims + b.dims), 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    rels = set()
    if dx < -0.5:
        rels.add("left of")
    if dx > 0.5:
        rels.add("right of")
    if dy < -0.5:
        rels.add("above")
    if dy > 0.5:
        rels.add("below")
    return rels


def judge(found: Detections, metadata: Mapping[str, Any]) -> Verdict:
    """Apply GenEval's include / exclude rules to the detections."""
    reasons = [found.rejected] if found.rejected else []
    correct = True
    groups: list[list[Detection] | None] = []
    for req in metadata.get("include", []):
        cls, count = req["class"], int(req["count"])
        chosen = found.by_class.get(cls, [])[:count]
        matched = len(chosen) >= count
        if not matched:
            reasons.append(f"expected {cls}>={count}, found {len(chosen)}")
        elif "color" in req:
            hits = sum(d.color == req["color"] for d in chosen)
            if hits < count:
                matched = False
                seen = ", ".join(sorted({d.color for d in chosen}))
                reasons.append(f"expected {req['color']} {cls}>={count}, found {hits} {req['color']} (colours: {seen})")
        if matched and "position" in req:
            rel, target = req["position"][0], int(req["position"][1])
            targets = groups[target] if target < len(groups) else None
            if targets is None:
                matched = False
                reasons.append(f"no target for {cls} to be {rel}")
            else:
                for det in chosen:
                    bad = [relations(det, t) for t in targets if rel not in relations(det, t)]
                    if bad:
                        matched = False
                        reasons.append(
                            f"expected {cls} {rel} target, found {' and '.join(sorted(bad[0])) or 'overlap'}"
                        )
                        break
        correct &= matched
        groups.append(chosen if matched else None)
    for req in metadata.get("exclude", []):
        cls, count = req["class"], int(req["count"])
        if len(found.by_class.get(cls, [])) >= count:
            correct = False
            reasons.append(f"expected {cls}<{count}, found {len(found.by_class[cls])}")
    details = {cls: [[*d.bbox, d.color] for d in dets] for cls, dets in found.by_class.items()}
    return Verdict(correct=correct, reason="\n".join(reasons), details=details)


class LabEvaluator:
    """Exact evaluator for images of the lab world (any resolution; thresholds are relative)."""

    name = "lab"

    def evaluate(self, image: np.ndarray, metadata: Mapping[str, Any]) -> Verdict:
        return judge(detect(np.asarray(image)), metadata)
