"""Verifier names, as `--verifier` and config files write them, turned into verifier objects.

    clip[:MODEL]                  CLIPScore (default openai/clip-vit-large-patch14)      clip_score
    siglip[:MODEL]                SigLIP (default google/siglip-so400m-patch14-384)       siglip_score
    pickscore[:MODEL[@PROC]]      PickScore (default yuvalkirstain/PickScore_v1)          pick_score
    aesthetic:HEAD[@CLIP]         LAION aesthetic head (.pth/.safetensors) on CLIP L/14  aesthetic
    imagereward:FOLDER[@TOK]      ImageReward from its official ImageReward.pt           image_reward
    hps:CHECKPOINT[@CONFIG]       HPS v2 / v2.1 from its official open_clip checkpoint    hps
    vlm:MODEL                     VLM yes-probability judge                               yes_prob, p_yes
    openai:MODEL[@BASE_URL]       rubric judge, any OpenAI-compatible API (OPENAI_API_KEY) overall_score, …
    gemini:MODEL[@BASE_URL]       rubric judge on Gemini (GEMINI_API_KEY)                 overall_score, …
    knockout:JUDGE                pairwise knock-out tournament with an openai:/gemini: judge
    round-robin:JUDGE             every pair judged; mean win rate
    ensemble:A+B[+…]              rank average of verifiers (each A may end in #METRIC)
    combined:W*A+W*B[+…]          weighted sum of the verifiers' metrics
    NAME[:ARG]                    a plug-in registered under the `ttscale.verifiers` entry points
    package.module:ClassName      your own Verifier class, called with device=

MODEL is a local folder or a hub id (downloaded by transformers unless HF_HUB_OFFLINE is set).
"""

from __future__ import annotations

from typing import Literal, cast

from ttscale.errors import TTScaleError
from ttscale.verifier import Verifier
from ttscale.verifiers.api import ApiCaller, GeminiBackend, OpenAIBackend
from ttscale.verifiers.plugins import IMPORT_STRING, from_entry_point, from_import_string

KINDS = frozenset(
    {
        "clip",
        "siglip",
        "pickscore",
        "aesthetic",
        "imagereward",
        "hps",
        "vlm",
        "openai",
        "gemini",
        "knockout",
        "round-robin",
        "ensemble",
        "combined",
    }
)
SCHEMES = (
    "clip[:MODEL]",
    "siglip[:MODEL]",
    "pickscore[:MODEL[@PROCESSOR]]",
    "aesthetic:HEAD[@CLIP]",
    "imagereward:FOLDER[@TOKENIZER]",
    "hps:CHECKPOINT[@CONFIG_DIR]",
    "vlm:MODEL",
    "openai:MODEL[@BASE_URL]",
    "gemini:MODEL[@BASE_URL]",
    "knockout:JUDGE",
    "round-robin:JUDGE",
    "ensemble:A+B",
    "combined:W*A+W*B",
    "an entry point of ttscale.verifiers",
    "package.module:ClassName",
)


def _api_caller(spec: str) -> ApiCaller:
    """The ApiCaller of `openai:MODEL[@BASE_URL]` or `gemini:MODEL[@BASE_URL]`."""
    provider, _, rest = spec.partition(":")
    model, _, base_url = rest.partition("@")
    if provider not in ("openai", "gemini") or not model:
        raise TTScaleError(f"judge {spec!r}: write openai:MODEL[@BASE_URL] or gemini:MODEL[@BASE_URL]")
    if provider == "openai":
        return ApiCaller(OpenAIBackend(model, base_url or None))
    return ApiCaller(GeminiBackend(model, base_url or None))


def _ensemble(kind: Literal["ensemble", "combined"], spec: str, device: str) -> Verifier:
    from ttscale.loading import load_verifier
    from ttscale.verifiers.ensemble import Ensemble, Member

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
        name, _, metric = part.partition("#")
        if not name:
            raise TTScaleError(f"{kind}:{spec}: an empty member name")
        if name not in loaded:
            loaded[name] = load_verifier(name, device=device)
        members.append(Member(loaded[name], metric or None, weight))
    return Ensemble(members, mode="rank_mean" if kind == "ensemble" else "combined")


def load_named(name: str, *, device: str = "cpu") -> Verifier:
    """The verifier a name stands for (lab names are handled by ttscale.loading before this)."""
    kind, _, rest = name.partition(":")
    if kind in ("clip", "siglip", "pickscore"):
        from ttscale.verifiers.clip import EmbeddingScorer, Kind

        model, _, processor = rest.partition("@")
        return EmbeddingScorer.from_pretrained(
            model or None, kind=cast(Kind, kind), processor=processor or None, device=device
        )
    if kind == "aesthetic":
        from ttscale.verifiers.aesthetic import DEFAULT_CLIP, HEAD_SOURCE, AestheticScorer

        head, _, clip = rest.partition("@")
        if not head:
            raise TTScaleError(f"aesthetic needs its head file: aesthetic:PATH.pth; {HEAD_SOURCE}")
        return AestheticScorer.from_pretrained(head, clip=clip or DEFAULT_CLIP, device=device)
    if kind == "imagereward":
        from ttscale.verifiers.image_reward import ImageRewardScorer, source_hint

        folder, _, tokenizer = rest.partition("@")
        if not folder:
            raise TTScaleError(f"imagereward needs its folder: imagereward:FOLDER; {source_hint('FOLDER')}")
        return ImageRewardScorer.from_pretrained(folder, tokenizer=tokenizer or None, device=device)
    if kind == "hps":
        from ttscale.verifiers.hps import DEFAULT_CONFIG, HPS_SOURCE, load_hps

        checkpoint, _, config = rest.partition("@")
        if not checkpoint:
            raise TTScaleError(f"hps needs its checkpoint: hps:PATH.pt[@CONFIG_DIR]; {HPS_SOURCE}")
        return load_hps(checkpoint, config or DEFAULT_CONFIG, device=device)
    if kind == "vlm":
        from ttscale.verifiers.vlm import YesNoJudge

        if not rest:
            raise TTScaleError("vlm needs a model: vlm:Qwen/Qwen2.5-VL-3B-Instruct or a local folder")
        return YesNoJudge.from_pretrained(rest, device=device)
    if kind in ("openai", "gemini"):
        from ttscale.verifiers.api import RubricJudge

        return RubricJudge(_api_caller(name))
    if kind in ("knockout", "round-robin"):
        from ttscale.verifiers.tournament import ApiPairwiseJudge, Mode, Tournament

        return Tournament(ApiPairwiseJudge(_api_caller(rest)), cast(Mode, kind))
    if kind in ("ensemble", "combined"):
        return _ensemble(cast(Literal["ensemble", "combined"], kind), rest, device)
    plugin = from_entry_point(name, device)
    if plugin is not None:
        return plugin
    if IMPORT_STRING.match(name):
        return from_import_string(name, device)
    raise TTScaleError(f"unknown verifier {name!r}; choose lab-visa, lab-clip, or {', '.join(SCHEMES)}")
