"""The lab world's vocabulary: shapes, colours, counts and relations, and the held-out combinations.

Everything else in `ttscale.lab` (renderer, prompts, evaluator, models) reads these constants, so
the world is defined in exactly one place.
"""

from __future__ import annotations

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
PLURALS: dict[str, str] = {"circle": "circles", "square": "squares", "triangle": "triangles", "cross": "crosses"}

# Flat RGB colours, named as in GenEval's colour list so prompts read the same way.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 150, 30),
    "yellow": (235, 220, 50),
    "green": (40, 165, 70),
    "blue": (40, 90, 225),
    "purple": (140, 55, 195),
}
BACKGROUND: tuple[int, int, int] = (240, 240, 240)

COUNTS: tuple[int, ...] = (1, 2, 3, 4)
NUMBER_WORDS: dict[int, str] = {1: "one", 2: "two", 3: "three", 4: "four"}
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")

TASKS: tuple[str, ...] = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
# GenEval's number of prompts per task, in the order of TASKS (553 in all).
TASK_SIZES: dict[str, int] = {
    "single_object": 80,
    "two_object": 99,
    "counting": 80,
    "colors": 94,
    "position": 100,
    "color_attr": 100,
}

# Combinations never rendered for training: the held-out split asks for exactly these.
HELDOUT_COLOR_SHAPE: frozenset[tuple[str, str]] = frozenset(
    {("purple", "triangle"), ("green", "cross"), ("orange", "circle"), ("blue", "square")}
)
HELDOUT_SHAPE_COUNT: frozenset[tuple[str, int]] = frozenset({("triangle", 4), ("cross", 3)})

DEFAULT_RESOLUTION = 32


def article(word: str) -> str:
    """'a' or 'an' for the word that follows."""
    return "an" if word[0] in "aeiou" else "a"


def allowed_colors(shape: str, *, training: bool) -> list[str]:
    """Colours a shape may take in a scene; training scenes never show a held-out pair."""
    return [c for c in COLORS if not (training and (c, shape) in HELDOUT_COLOR_SHAPE)]
