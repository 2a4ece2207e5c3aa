"""The one place that turns names into objects: generators, verifiers and evaluators.

A name is what a user writes after `--generator`, `--verifier` or `--evaluator`, or in a config file. Each
kind has an ordered list of entries, and the first entry whose scheme matches a name loads it: the built-in
entries (the lab models are ordinary ones), then the installed plug-ins of the kind's entry-point group
(`ttscale.generators`, `ttscale.verifiers`, `ttscale.evaluators`), then `package.module:ClassName`, your own
class. `ttscale generators`, `ttscale verifiers` and `ttscale evaluators` print these lists, so what the CLI
lists is exactly what it can load.

A plug-in is a class or function registered in a package's `pyproject.toml`,

    [project.entry-points."ttscale.verifiers"]
    my-judge = "my_package.judges:MyJudge"

and is called with the argument of `my-judge:ARG` first (when there is one), then with keywords: a generator's
`steps=`, `guidance=`, `device=`, `batch_size=`; a verifier's `device=`; an evaluator's none. What it returns
must have the attributes of the kind's protocol (`ttscale.generator.Generator`, `ttscale.verifier.Verifier`,
`ttscale.evaluator.Evaluator`), or loading stops with one line naming the missing ones.

Only the composition roots call this module: the CLI, the runner (for the extra judges a strategy's
parameters name) and the Ray engine's workers (which build their models from the config they are sent); everything below them receives objects. tests/test_imports.py checks it.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from ttscale.config import NO_VERIFIER, SearchConfig, resolve_device
from ttscale.errors import TTScaleError
from ttscale.evaluator import Evaluator
from ttscale.generator import Generator
from ttscale.search import StrategyParams
from ttscale.verifier import Verifier

if TYPE_CHECKING:
    from ttscale.verifiers.api import ApiCaller

Kind = Literal["generator", "verifier", "evaluator"]
KINDS: tuple[Kind, ...] = get_args(Kind)
GROUPS: dict[Kind, str] = {kind: f"ttscale.{kind}s" for kind in KINDS}  # the entry-point group of each kind
# What a plug-in must have, per kind: the attributes of the kind's protocol.
REQUIRED: dict[Kind, tuple[str, ...]] = {
    "generator": ("name", "sample", "nfe_per_sample"),
    "verifier": ("name", "metrics", "flops_per_image", "score"),
    "evaluator": ("name", "evaluate"),
}
IMPORT_STRING = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class Options:
    """How a loaded object will run: generators use all of it, verifiers only `device`, evaluators none."""

    device: str = "cpu"
    steps: int = 20
    guidance: float = 3.0
    batch_size: int = 64

    def keywords(self, kind: Kind) -> dict[str, Any]:
        """The keywords a plug-in factory of `kind` is called with."""
        if kind == "generator":
            return {
                "steps": self.steps,
                "guidance": self.guidance,
                "device": self.device,
                "batch_size": self.batch_size,
            }
        return {"device": self.device} if kind == "verifier" else {}


@dataclass(frozen=True)
class Entry:
    """One way to write a name: its scheme (`clip[:MODEL]`), what it loads in one line, the arguments the name
    carries, and where it comes from (built-in, a plug-in's package, your own code)."""

    scheme: str
    description: str
    arguments: tuple[str, ...]
    matches: Callable[[str], bool]
    load: Callable[[str, Options], Any]
    origin: str = "built-in"


def _exactly(*names: str) -> Callable[[str], bool]:
    return lambda name: name in names


def _prefix(head: str) -> Callable[[str], bool]:
    """`head`, or `head:` followed by the entry's arguments."""
    return lambda name: name.partition(":")[0] == head


def _rest(name: str) -> str:
    """What follows the scheme's `kind:`."""
    return name.partition(":")[2]


# ---------------------------------------------------------------------------------------------------- generators


def _lab_generator(name: str, o: Options) -> Generator:
    from ttscale.lab.generator import LabGenerator

    return LabGenerator.from_pretrained(
        name, steps=o.steps, guidance=o.guidance, device=o.device, batch_size=o.batch_size
    )


def _diffusers(name: str, o: Options) -> Generator:
    from ttscale.generators.hub import load_diffusers

    return load_diffusers(name, steps=o.steps, guidance=o.guidance, device=o.device, batch_size=o.batch_size)


_DIFFUSERS_OPTIONS = (
    "OPTIONS: dtype=bf16|fp16|fp32, resolution=PX (or height=, width=), offload=1 (low VRAM), black_box=1, joined by &"
)
GENERATORS: tuple[Entry, ...] = (
    Entry(
        "lab-small",
        "lab rectified-flow U-Net, 2.3M parameters, 32 px (shipped; imperfect on purpose)",
        (),
        _exactly("lab-small"),
        _lab_generator,
    ),
    Entry(
        "lab-large",
        "lab rectified-flow U-Net, 5.2M parameters, 32 px (shipped)",
        (),
        _exactly("lab-large"),
        _lab_generator,
    ),
    Entry(
        "FILE.safetensors",
        "a lab generator checkpoint (of `ttscale lab train-generator`)",
        ("FILE: its path",),
        lambda name: name.endswith(".safetensors"),
        _lab_generator,
    ),
    Entry(
        "diffusers:ID[?OPTIONS]",
        "a diffusers text-to-image pipeline: SANA, FLUX.1, SD3, SDXL, SD1.5, PixArt step-level, any other black-box",
        ("ID: a folder with model_index.json or a hub id already downloaded", _DIFFUSERS_OPTIONS),
        _prefix("diffusers"),
        _diffusers,
    ),
    Entry(
        "FOLDER",
        "a diffusers pipeline folder (holding model_index.json), as diffusers:FOLDER",
        ("FOLDER: its path",),
        lambda name: Path(name).is_dir(),
        _diffusers,
    ),
    Entry(
        "ORG/NAME",
        "a diffusers pipeline from the local hub cache (never downloaded at run time), as diffusers:ORG/NAME",
        ("ORG/NAME: the hub id; `hf download ORG/NAME` fetches it",),
        lambda name: "/" in name and ":" not in name,
        _diffusers,
    ),
)


# ----------------------------------------------------------------------------------------------------- verifiers


def _lab_verifier(name: str, o: Options) -> Verifier:
    from ttscale.lab.verifiers import LabVerifier

    return LabVerifier.from_pretrained(name, device=o.device)


def _embedding(name: str, o: Options) -> Verifier:
    from ttscale.verifiers.clip import EmbeddingScorer
    from ttscale.verifiers.clip import Kind as EmbeddingKind

    kind, _, rest = name.partition(":")
    model, _, processor = rest.partition("@")
    return EmbeddingScorer.from_pretrained(
        model or None, kind=cast(EmbeddingKind, kind), processor=processor or None, device=o.device
    )


def _aesthetic(name: str, o: Options) -> Verifier:
    from ttscale.verifiers.aesthetic import DEFAULT_CLIP, HEAD_SOURCE, AestheticScorer

    head, _, clip = _rest(name).partition("@")
    if not head:
        raise TTScaleError(f"aesthetic needs its head file: aesthetic:PATH.pth; {HEAD_SOURCE}")
    return AestheticScorer.from_pretrained(head, clip=clip or DEFAULT_CLIP, device=o.device)


def _image_reward(name: str, o: Options) -> Verifier:
    from ttscale.verifiers.image_reward import ImageRewardScorer, source_hint

    folder, _, tokenizer = _rest(name).partition("@")
    if not folder:
        raise TTScaleError(f"imagereward needs its folder: imagereward:FOLDER; {source_hint('FOLDER')}")
    return ImageRewardScorer.from_pretrained(folder, tokenizer=tokenizer or None, device=o.device)


def _hps(name: str, o: Options) -> Verifier:
    from ttscale.verifiers.hps import DEFAULT_CONFIG, HPS_SOURCE, load_hps

    checkpoint, _, config = _rest(name).partition("@")
    if not checkpoint:
        raise TTScaleError(f"hps needs its checkpoint: hps:PATH.pt[@CONFIG_DIR]; {HPS_SOURCE}")
    return load_hps(checkpoint, config or DEFAULT_CONFIG, device=o.device)


def _vlm(name: str, o: Options) -> Verifier:
    from ttscale.verifiers.vlm import YesNoJudge

    if not _rest(name):
        raise TTScaleError("vlm needs a model: vlm:Qwen/Qwen2.5-VL-3B-Instruct or a local folder")
    return YesNoJudge.from_pretrained(_rest(name), device=o.device)


def _api_caller(spec: str) -> ApiCaller:
    """The ApiCaller of `openai:MODEL[@BASE_URL]` or `gemini:MODEL[@BASE_URL]`."""
    from ttscale.verifiers.api import ApiCaller, GeminiBackend, OpenAIBackend

    provider, _, rest = spec.partition(":")
    model, _, base_url = rest.partition("@")
    if provider not in ("openai", "gemini") or not model:
        raise TTScaleError(f"judge {spec!r}: write openai:MODEL[@BASE_URL] or gemini:MODEL[@BASE_URL]")
    if provider == "openai":
        return ApiCaller(OpenAIBackend(model, base_url or None))
    return ApiCaller(GeminiBackend(model, base_url or None))


def _rubric(name: str, o: Options) -> Verifier:
    from ttscale.verifiers.api import RubricJudge

    return RubricJudge(_api_caller(name))


def _tournament(name: str, o: Options) -> Verifier:
    from ttscale.verifiers.tournament import ApiPairwiseJudge, Mode, Tournament

    kind, _, judge = name.partition(":")
    return Tournament(ApiPairwiseJudge(_api_caller(judge)), cast(Mode, kind))


def _ensemble(name: str, o: Options) -> Verifier:
    """`ensemble:A+B…` (rank average) or `combined:W*A+W*B…` (weighted sum); members are any verifier names."""
    from ttscale.verifiers.ensemble import Ensemble, Member

    kind, _, spec = name.partition(":")
    members = []
    loaded: dict[str, Verifier] = {}
    for part in (p.strip() for p in spec.split("+")):
        weight = 1.0
        if kind == "combined":
            w, star, rest = part.partition("*")
            try:
                weight, part = (float(w), rest) if star else (1.0, part)
            except ValueError:
                raise TTScaleError(f"combined member {part!r}: write WEIGHT*NAME, e.g. 0.5*clip") from None
        member, _, metric = part.partition("#")
        if not member:
            raise TTScaleError(f"{kind}:{spec}: an empty member name")
        if member not in loaded:
            loaded[member] = load_verifier(member, device=o.device)
        members.append(Member(loaded[member], metric or None, weight))
    return Ensemble(members, mode="rank_mean" if kind == "ensemble" else "combined")


_MODEL = "MODEL: a local folder or a hub id (downloaded by transformers unless HF_HUB_OFFLINE is set)"
_JUDGE = "JUDGE: openai:MODEL[@BASE_URL] or gemini:MODEL[@BASE_URL]"
VERIFIERS: tuple[Entry, ...] = (
    Entry(
        "lab-visa",
        "lab yes-probability judge, 1.4M parameters (shipped); metric yes_prob",
        (),
        _exactly("lab-visa"),
        _lab_verifier,
    ),
    Entry(
        "lab-clip",
        "lab dual encoder, 1.0M parameters, cosine similarity (shipped); metric clip_score",
        (),
        _exactly("lab-clip"),
        _lab_verifier,
    ),
    Entry(
        "clip[:MODEL]",
        "CLIPScore, 100 x cosine; metric clip_score",
        (f"{_MODEL}; default openai/clip-vit-large-patch14",),
        _prefix("clip"),
        _embedding,
    ),
    Entry(
        "siglip[:MODEL]",
        "SigLIP match probability; metric siglip_score",
        (f"{_MODEL}; default google/siglip-so400m-patch14-384",),
        _prefix("siglip"),
        _embedding,
    ),
    Entry(
        "pickscore[:MODEL[@PROCESSOR]]",
        "PickScore (CLIP-H); metric pick_score",
        (f"{_MODEL}; default yuvalkirstain/PickScore_v1", "PROCESSOR: default laion/CLIP-ViT-H-14-laion2B-s32B-b79K"),
        _prefix("pickscore"),
        _embedding,
    ),
    Entry(
        "aesthetic:HEAD[@CLIP]",
        "LAION aesthetic predictor: your downloaded head on CLIP ViT-L/14; metric aesthetic",
        ("HEAD: the head's .pth or .safetensors file", "CLIP: default openai/clip-vit-large-patch14"),
        _prefix("aesthetic"),
        _aesthetic,
    ),
    Entry(
        "imagereward:FOLDER[@TOKENIZER]",
        "ImageReward (BLIP), from its official ImageReward.pt; metric image_reward",
        ("FOLDER: ImageReward.pt and med_config.json", "TOKENIZER: default FOLDER/tokenizer (bert-base-uncased's)"),
        _prefix("imagereward"),
        _image_reward,
    ),
    Entry(
        "hps:CHECKPOINT[@CONFIG_DIR]",
        "HPS v2 / v2.1 from its official open_clip checkpoint, 100 x cosine; metric hps",
        ("CHECKPOINT: HPS_v2.1_compressed.pt", "CONFIG_DIR: default laion/CLIP-ViT-H-14-laion2B-s32B-b79K"),
        _prefix("hps"),
        _hps,
    ),
    Entry(
        "vlm:MODEL",
        'a VLM\'s P(yes) to "Does this image match …?"; metrics yes_prob, p_yes',
        (_MODEL,),
        _prefix("vlm"),
        _vlm,
    ),
    Entry(
        "openai:MODEL[@BASE_URL]",
        "rubric judge on any OpenAI-compatible API (OPENAI_API_KEY); metrics overall_score, …",
        ("MODEL: the API's model name", "BASE_URL: e.g. a local vLLM server; default OpenAI's"),
        _prefix("openai"),
        _rubric,
    ),
    Entry(
        "gemini:MODEL[@BASE_URL]",
        "rubric judge on Gemini (GEMINI_API_KEY); metrics overall_score, …",
        ("MODEL: the API's model name", "BASE_URL: e.g. a proxy; default Google's"),
        _prefix("gemini"),
        _rubric,
    ),
    Entry(
        "knockout:JUDGE",
        "pairwise knock-out tournament, both orders judged; metric rounds_survived",
        (_JUDGE,),
        _prefix("knockout"),
        _tournament,
    ),
    Entry(
        "round-robin:JUDGE",
        "every pair judged in both orders; metric win_rate",
        (_JUDGE,),
        _prefix("round-robin"),
        _tournament,
    ),
    Entry(
        "ensemble:A+B[+…]",
        "rank average of verifiers (Ma et al.); metric rank_mean",
        ("A, B …: verifier names, each may end in #METRIC",),
        _prefix("ensemble"),
        _ensemble,
    ),
    Entry(
        "combined:W*A+W*B[+…]",
        "weighted sum of the verifiers' metrics (Scale-RAE); metric combined",
        ("W: a weight", "A, B …: verifier names, each may end in #METRIC"),
        _prefix("combined"),
        _ensemble,
    ),
    Entry(
        "FILE.safetensors",
        "a lab verifier checkpoint (of `ttscale lab train-verifiers`)",
        ("FILE: its path",),
        lambda name: name.endswith(".safetensors"),
        _lab_verifier,
    ),
)


# ---------------------------------------------------------------------------------------------------- evaluators


def _lab_evaluator(name: str, o: Options) -> Evaluator:
    from ttscale.lab.evaluator import LabEvaluator

    return LabEvaluator()


EVALUATORS: tuple[Entry, ...] = (
    Entry(
        "lab",
        "the lab world's exact evaluator: segmentation, colour and shape rules",
        (),
        _exactly("lab"),
        _lab_evaluator,
    ),
)
BUILT_IN: dict[Kind, tuple[Entry, ...]] = {"generator": GENERATORS, "verifier": VERIFIERS, "evaluator": EVALUATORS}
# Said after the list of choices when a name of that kind is unknown.
HINTS: dict[Kind, str] = {
    "evaluator": "; for real models run GenEval's own evaluator (djghosh13/geneval) on the output folder, "
    "which is in its format",
}


# ------------------------------------------------------------------------------------- plug-ins and your own code


def _made(kind: Kind, factory: Any, origin: str, arg: str, o: Options) -> Any:
    """`factory(ARG, **keywords)` (ARG only when the name has one), checked to have what a `kind` must have
    (and a verifier at least one metric); a factory that cannot take the call, or makes something else, is
    one line saying so."""
    args, keywords = ((arg,) if arg else ()), o.keywords(kind)
    try:
        inspect.signature(factory).bind(*args, **keywords)
    except TypeError as err:
        given = ", ".join([*(["ARG"] if arg else []), *(f"{k}=" for k in keywords)]) or "no arguments"
        raise TTScaleError(f"{origin} cannot be called with {given}: {err}") from None
    except ValueError:
        pass  # no signature to check (a C function): the call itself will tell
    made = factory(*args, **keywords)
    missing = [a for a in REQUIRED[kind] if not hasattr(made, a)]
    if missing:
        article = "an" if kind[0] in "aeiou" else "a"
        raise TTScaleError(f"{origin} did not make {article} {kind}: it lacks {', '.join(missing)}")
    if kind == "verifier" and not made.metrics:
        raise TTScaleError(f"{origin} made a verifier with no metrics; its first metric ranks candidates")
    return made


def _signature(factory: Any, kind: Kind) -> tuple[str, ...]:
    """A factory's own parameters (those the registry does not fill in), as `name=default` strings."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return ()
    injected = Options().keywords(kind)
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(str(p) for p in parameters if p.kind in plain and p.name not in injected)


def _plugin(kind: Kind, ep: EntryPoint) -> Entry:
    """The entry of one installed entry point: `NAME[:ARG]`, described by its factory's docstring and signature
    (so describing it imports the plug-in's module)."""
    origin = f"plug-in of {ep.dist.name} {ep.dist.version}" if ep.dist is not None else "plug-in"
    arguments: tuple[str, ...]
    try:
        factory = ep.load()
    except Exception as err:  # a broken plug-in is listed with its error, and does not stop the others loading
        description, arguments = f"cannot be loaded: {type(err).__name__}: {err}", ()
    else:
        doc = inspect.getdoc(factory)
        description, arguments = doc.strip().splitlines()[0] if doc else ep.value, _signature(factory, kind)

    def load(name: str, o: Options) -> Any:
        return _made(kind, ep.load(), f"entry point {ep.name!r} ({ep.value})", _rest(name), o)

    return Entry(f"{ep.name}[:ARG]", description, arguments, _prefix(ep.name), load, origin)


def _entry_points(kind: Kind) -> dict[str, EntryPoint]:
    """The installed entry points of the kind's group, by name (the first one found of each name)."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUPS[kind]):
        found.setdefault(ep.name, ep)
    return found


def _import_string(kind: Kind) -> Entry:
    """`package.module:ClassName`: anything importable that makes a `kind`, called as plug-ins are."""

    def load(spec: str, o: Options) -> Any:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise TTScaleError(f"{kind} {spec!r}: cannot import {module_name} ({err})") from None
        factory = getattr(module, attr, None)
        if factory is None:
            raise TTScaleError(f"{kind} {spec!r}: {module_name} has no {attr}")
        return _made(kind, factory, f"{kind} {spec!r}", "", o)

    called = ", ".join(f"{k}=" for k in Options().keywords(kind)) or "no arguments"
    return Entry(
        "package.module:ClassName",
        f"your own {kind} class or function, importable from Python, called with {called}",
        (),
        lambda name: IMPORT_STRING.match(name) is not None,
        load,
        "your code",
    )


# ------------------------------------------------------------------------------------------------ the public API


def entries(kind: Kind) -> list[Entry]:
    """Every way to name a `kind`, in the order names are matched: built-ins, installed plug-ins, your own code."""
    return [*BUILT_IN[kind], *(_plugin(kind, ep) for ep in _entry_points(kind).values()), _import_string(kind)]


def entry(kind: Kind, name: str) -> Entry:
    """The first of `entries(kind)` that matches `name`, or one line listing the choices; nothing is loaded yet.

    Only the one plug-in whose name matches is imported (to describe it), not every installed one.
    """
    for built_in in BUILT_IN[kind]:
        if built_in.matches(name):
            return built_in
    ep = _entry_points(kind).get(name.partition(":")[0])
    if ep is not None:
        return _plugin(kind, ep)
    own = _import_string(kind)
    if own.matches(name):
        return own
    schemes = ", ".join(e.scheme for e in entries(kind))
    raise TTScaleError(
        f"unknown {kind} {name!r}; choose one of {schemes} (`ttscale {kind}s` says more){HINTS.get(kind, '')}"
    )


def load_generator(
    name: str, *, steps: int = 20, guidance: float = 3.0, device: str = "cpu", batch_size: int = 64
) -> Generator:
    """The generator `name` stands for, sampling with `steps` and `guidance`, `batch_size` images at a time."""
    options = Options(device=device, steps=steps, guidance=guidance, batch_size=batch_size)
    return cast(Generator, entry("generator", name).load(name, options))


def load_verifier(name: str, *, device: str = "cpu") -> Verifier:
    """The verifier `name` stands for, on `device`."""
    return cast(Verifier, entry("verifier", name).load(name, Options(device=device)))


def load_evaluator(name: str) -> Evaluator:
    """The evaluator `name` stands for."""
    return cast(Evaluator, entry("evaluator", name).load(name, Options()))


def load_judges(params: StrategyParams, device: str) -> dict[str, Verifier]:
    """The extra judges a strategy's parameters name (rounds' `confirm`, early pruning's `cheap_verifier`),
    loaded once for a run, on its device, so that strategies receive objects and never parse a name."""
    return {role: load_verifier(name, device=device) for role in params.judges if (name := getattr(params, role))}


def load_models(config: SearchConfig) -> tuple[Generator, Verifier | None]:
    """A run's generator and verifier (None for `none`: plain sampling) on its device, `auto` resolved here.

    Both names are looked up before either model loads, so a misspelt verifier fails at once, not after a large
    generator has loaded.
    """
    generator = entry("generator", config.generator)
    verifier = None if config.verifier == NO_VERIFIER else entry("verifier", config.verifier)
    options = Options(
        device=resolve_device(config.device), steps=config.steps, guidance=config.guidance, batch_size=config.batch_size
    )
    loaded = cast(Generator, generator.load(config.generator, options))
    return loaded, None if verifier is None else cast(Verifier, verifier.load(config.verifier, options))
