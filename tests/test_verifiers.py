"""Real verifiers on tiny random models built here (no download): CLIP, SigLIP, PickScore, aesthetic, a VLM
yes-probability judge, ensembles, tournaments and plug-ins, each checked against a computation by hand."""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers / huggingface_hub read it

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
    SiglipConfig,
    SiglipImageProcessor,
    SiglipModel,
    SiglipProcessor,
)

from ttscale.config import SearchConfig
from ttscale.errors import TTScaleError
from ttscale.folder import read_jsonl
from ttscale.images import to_uint8
from ttscale.lab.generator import LabGenerator
from ttscale.lab.prompts import prompt_suite
from ttscale.registry import load_verifier
from ttscale.runner import run
from ttscale.verifiers.ensemble import Ensemble, Member, batch_ranks
from ttscale.verifiers.tournament import Pair, Tournament
from ttscale.verifiers.vlm import YesNoJudge

WORDS = ["a", "photo", "of", "red", "green", "blue", "circle", "square", "triangle", "left", "right", "cat"]
PROMPTS = ["a red circle", "a photo of a blue square left of a green triangle", "a cat"]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach the hub, whatever imported huggingface_hub first."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def word_tokenizer(special: Sequence[str], **kwargs: object) -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate([*special, "[UNK]", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", model_max_length=512, **kwargs)  # type: ignore[arg-type]


def tiny_vision(**extra: object) -> dict[str, object]:
    return (
        dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        )
        | extra
    )


@pytest.fixture(scope="session")
def hf_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny CLIP, SigLIP and LLaVA checkpoints with their processors, saved as transformers folders."""
    root = tmp_path_factory.mktemp("hf-models")
    torch.manual_seed(0)
    text = dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=16
    )

    clip_tok = word_tokenizer(["[PAD]", "<s>", "</s>"], pad_token="[PAD]", bos_token="<s>", eos_token="</s>")
    clip_text = text | dict(vocab_size=len(clip_tok), pad_token_id=0, bos_token_id=1, eos_token_id=2)
    clip = CLIPModel(CLIPConfig(text_config=clip_text, vision_config=tiny_vision(), projection_dim=8))
    clip_images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    clip.save_pretrained(root / "clip")
    CLIPProcessor(image_processor=clip_images, tokenizer=clip_tok).save_pretrained(root / "clip")

    sig_tok = word_tokenizer(["</s>"], pad_token="</s>", eos_token="</s>")
    sig_text = text | dict(vocab_size=len(sig_tok), pad_token_id=0, eos_token_id=0)
    siglip = SiglipModel(SiglipConfig(text_config=sig_text, vision_config=tiny_vision()))
    siglip.save_pretrained(root / "siglip")
    SiglipProcessor(
        image_processor=SiglipImageProcessor(size={"height": 32, "width": 32}), tokenizer=sig_tok
    ).save_pretrained(root / "siglip")

    special = ["<pad>", "<s>", "</s>", "<image>", "USER:", "ASSISTANT:", "Does", "this", "image", "match"]
    vlm_tok = word_tokenizer(
        [*special, "the", "description:", "?", "Answer", "or", ".", "yes", "no", "Yes", "No"],
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"},
    )
    chat = (
        "{% for m in messages %}USER: {% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
        "{% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    )
    llava = LlavaForConditionalGeneration(
        LlavaConfig(
            text_config=dict(
                model_type="llama",
                vocab_size=len(vlm_tok),
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=512,
                pad_token_id=0,
                bos_token_id=1,
                eos_token_id=2,
            ),
            vision_config=tiny_vision(model_type="clip_vision_model", projection_dim=16),
            image_token_index=3,
            vision_feature_layer=-1,
        )
    )
    llava.save_pretrained(root / "vlm")
    LlavaProcessor(
        image_processor=clip_images,
        tokenizer=vlm_tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        chat_template=chat,
        image_token="<image>",
        num_additional_image_tokens=1,
    ).save_pretrained(root / "vlm")
    return {"clip": root / "clip", "siglip": root / "siglip", "vlm": root / "vlm"}


def images(n: int = 3, size: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def manual_logits_per_image(path: Path, model_cls: type, ims: torch.Tensor, padding: str | bool) -> torch.Tensor:
    """The model's own (scale x cosine [+ bias]) for each (image, its prompt), through its plain forward."""
    model, proc = model_cls.from_pretrained(path).eval(), AutoProcessor.from_pretrained(path)
    batch = proc(
        text=PROMPTS, images=to_uint8(ims), padding=padding, max_length=16, truncation=True, return_tensors="pt"
    )
    with torch.no_grad():
        return model(**batch).logits_per_image.diagonal()


def test_clip_score_is_100_times_the_cosine_and_batches_agree(hf_models: dict[str, Path]) -> None:
    ver = load_verifier(f"clip:{hf_models['clip']}")
    ims = images()
    out = ver.score(ims, PROMPTS)
    assert ver.metrics == ("clip_score",) and ver.flops_per_image > 0 and out["clip_score"].shape == (3,)
    model = CLIPModel.from_pretrained(hf_models["clip"])
    expected = manual_logits_per_image(hf_models["clip"], CLIPModel, ims, True) / model.logit_scale.exp() * 100
    torch.testing.assert_close(out["clip_score"], expected, atol=1e-4, rtol=1e-4)
    ver.batch_size = 2  # type: ignore[attr-defined]
    torch.testing.assert_close(ver.score(ims, PROMPTS)["clip_score"], out["clip_score"], atol=1e-5, rtol=1e-5)


def test_pickscore_is_the_clip_logit_through_the_same_path(hf_models: dict[str, Path]) -> None:
    ver = load_verifier(f"pickscore:{hf_models['clip']}@{hf_models['clip']}")
    ims = images(seed=1)
    expected = manual_logits_per_image(hf_models["clip"], CLIPModel, ims, True)
    assert ver.metrics == ("pick_score",)
    torch.testing.assert_close(ver.score(ims, PROMPTS)["pick_score"], expected, atol=1e-4, rtol=1e-4)


def test_siglip_score_is_its_match_probability_with_max_length_padding(hf_models: dict[str, Path]) -> None:
    ver = load_verifier(f"siglip:{hf_models['siglip']}")
    ims = images(seed=2)
    expected = torch.sigmoid(manual_logits_per_image(hf_models["siglip"], SiglipModel, ims, "max_length"))
    out = ver.score(ims, PROMPTS)["siglip_score"]
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    assert ((out > 0) & (out < 1)).all()


def test_a_checkpoint_of_the_wrong_kind_and_missing_weights_fail_in_one_line(hf_models: dict[str, Path]) -> None:
    with pytest.raises(TTScaleError, match=r"'clip' model; load it as clip:"):
        load_verifier(f"siglip:{hf_models['clip']}")
    for name in ("clip:/nonexistent/clip-folder", "clip:someone/not-downloaded", "vlm:/nonexistent/vlm"):
        with pytest.raises(TTScaleError) as err:
            load_verifier(name)
        assert "hf download" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(TTScaleError, match="unknown verifier 'nonsense'"):
        load_verifier("nonsense")


def test_aesthetic_head_on_the_normalised_clip_embedding(hf_models: dict[str, Path], tmp_path: Path) -> None:
    torch.manual_seed(3)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.Dropout(0.2), torch.nn.Linear(16, 4), torch.nn.Linear(4, 1)
    )  # the LAION MLP's layout: linear layers with dropouts between, keys layers.0 / layers.2 / layers.3
    torch.save({f"layers.{k}": v for k, v in mlp.state_dict().items()}, tmp_path / "head.pth")
    linear = torch.nn.Linear(8, 1)
    save_file(linear.state_dict(), tmp_path / "linear.safetensors")
    ims = images(seed=4)
    clip = CLIPModel.from_pretrained(hf_models["clip"]).eval()
    pixels = CLIPImageProcessor.from_pretrained(hf_models["clip"])(images=to_uint8(ims), return_tensors="pt")
    with torch.no_grad():
        emb = clip.get_image_features(**pixels).pooler_output  # CLIP's projected image embedding
        emb = emb / emb.norm(dim=-1, keepdim=True)
        for head_file, head in (("head.pth", mlp.eval()), ("linear.safetensors", linear)):
            ver = load_verifier(f"aesthetic:{tmp_path / head_file}@{hf_models['clip']}")
            got = ver.score(ims, PROMPTS)["aesthetic"]
            torch.testing.assert_close(got, head(emb).squeeze(-1), atol=1e-5, rtol=1e-5)
    with pytest.raises(TTScaleError, match=r"does not exist; download sac\+logos\+ava1-l14-linearMSE\.pth"):
        load_verifier(f"aesthetic:{tmp_path / 'missing.pth'}@{hf_models['clip']}")
    save_file(torch.nn.Linear(768, 1).state_dict(), tmp_path / "wide.safetensors")
    with pytest.raises(TTScaleError, match="expects 768-d embeddings but the CLIP model gives 8-d"):
        load_verifier(f"aesthetic:{tmp_path / 'wide.safetensors'}@{hf_models['clip']}")


def test_vlm_yes_probability_equals_a_manual_softmax_over_yes_and_no(hf_models: dict[str, Path]) -> None:
    judge = load_verifier(f"vlm:{hf_models['vlm']}")
    assert isinstance(judge, YesNoJudge) and judge.metrics == ("yes_prob", "p_yes")
    assert math.isfinite(judge.flops_per_image) and judge.flops_per_image > 0
    ims = images(seed=5)
    out = judge.score(ims, PROMPTS)  # prompts of different lengths: one left-padded batch
    model = AutoModelForImageTextToText.from_pretrained(hf_models["vlm"]).eval()
    proc = AutoProcessor.from_pretrained(hf_models["vlm"])
    yes, no = proc.tokenizer.convert_tokens_to_ids(["yes", "Yes"]), proc.tokenizer.convert_tokens_to_ids(["no", "No"])
    assert sorted(judge.yes_ids) == sorted(yes) and sorted(judge.no_ids) == sorted(no)
    for j, prompt in enumerate(PROMPTS):
        text = f"USER: <image> Does this image match the description: {prompt}? Answer yes or no. ASSISTANT:"
        assert judge.chat(prompt) == text
        single = proc(text=[text], images=to_uint8(ims[j : j + 1]), return_tensors="pt")  # no padding at all
        with torch.no_grad():
            logits = model(**single).logits[0, -1]
        probs = torch.softmax(logits, -1)
        p_yes, p_no = probs[yes].sum(), probs[no].sum()
        assert out["yes_prob"][j].item() == pytest.approx((p_yes / (p_yes + p_no)).item(), abs=1e-5)
        assert out["p_yes"][j].item() == pytest.approx(p_yes.item(), abs=1e-6)
    assert not torch.allclose(out["yes_prob"], out["yes_prob"][0])


def test_vlm_template_is_configurable_and_checked(hf_models: dict[str, Path]) -> None:
    model = AutoModelForImageTextToText.from_pretrained(hf_models["vlm"])
    proc = AutoProcessor.from_pretrained(hf_models["vlm"])
    judge = YesNoJudge(model, proc, "vlm:tiny", template="Is this {prompt}? Answer yes or no.", probe_size=32)
    assert judge.chat("a cat") == "USER: <image> Is this a cat? Answer yes or no. ASSISTANT:"
    assert judge.score(images(2), ["a cat", "a red circle"])["yes_prob"].shape == (2,)
    with pytest.raises(TTScaleError, match="must contain \\{prompt\\}"):
        YesNoJudge(model, proc, "vlm:tiny", template="Is it good?")
    with pytest.raises(TTScaleError, match="no distinct single-token answers"):
        YesNoJudge(model, proc, "vlm:tiny", yes=("absolutely",), probe_size=32)
    proc.chat_template = None
    with pytest.raises(TTScaleError, match="no chat template"):
        YesNoJudge(model, proc, "vlm:tiny")


class Fixed:
    """A stub verifier returning given scores, to check ensemble and tournament arithmetic exactly."""

    def __init__(self, name: str, values: Sequence[float], metric: str = "s"):
        self.name, self.metrics, self.flops_per_image = name, (metric,), 1.0
        self.values = torch.tensor(values, dtype=torch.float32)

    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        return {self.metrics[0]: self.values[: images.shape[0]].clone()}


def test_rank_mean_and_combined_scores(hf_models: dict[str, Path], tiny_models: dict[str, Path]) -> None:
    a, b = Fixed("a", [0.1, 0.9, 0.5, 0.5]), Fixed("b", [3.0, 1.0, 2.0, -math.inf])
    ranked = Ensemble([Member(a), Member(b)]).score(images(4), ["p"] * 4)
    # a ranks: 0, 1, .5, .5 (tie shares) ; b ranks: 1, 1/3, 2/3, 0 (a failed judgement is last)
    torch.testing.assert_close(ranked["rank_mean"], torch.tensor([0.5, 2 / 3, 7 / 12, 0.25]))
    assert set(ranked) == {"rank_mean", "a/s", "b/s"}
    combined = Ensemble([Member(a, weight=2.0), Member(b, weight=0.5)], mode="combined").score(images(4), ["p"] * 4)
    torch.testing.assert_close(combined["combined"], torch.tensor([1.7, 2.3, 2.0, -math.inf]))
    torch.testing.assert_close(batch_ranks(torch.tensor([float("nan"), 1.0])), torch.tensor([0.0, 1.0]))
    # by name: real verifiers, each member's metric chosen with #
    clip, visa = f"clip:{hf_models['clip']}", str(tiny_models["visa"])
    ims = images(4, seed=6)
    ens = load_verifier(f"ensemble:{clip}+{visa}#yes_prob")
    got = ens.score(ims, ["a red circle"] * 4)
    parts = [load_verifier(clip).score(ims, ["a red circle"] * 4)["clip_score"], got[f"{visa}/yes_prob"]]
    torch.testing.assert_close(got["rank_mean"], (batch_ranks(parts[0]) + batch_ranks(parts[1])) / 2)
    weighted = load_verifier(f"combined:0.5*{clip}+2*{visa}").score(ims, ["a red circle"] * 4)
    torch.testing.assert_close(weighted["combined"], 0.5 * parts[0] + 2 * parts[1], atol=1e-4, rtol=1e-5)
    assert ens.flops_per_image > 0
    with pytest.raises(TTScaleError, match="has no metric 'nope'"):
        load_verifier(f"ensemble:{visa}#nope")


class BiasedJudge:
    """Prefers the brighter image, but says 'first' whenever the two are within `blind` of each other."""

    name = "biased"

    def __init__(self, blind: float = 0.0, fail: set[Pair] | None = None):
        self.blind, self.fail, self.calls = blind, fail or set(), 0

    def prefer(self, images: torch.Tensor, prompt: str, pairs: Sequence[Pair]) -> dict[Pair, float]:
        self.calls += len(pairs)
        bright = images.mean(dim=(1, 2, 3))
        out = {}
        for a, b in pairs:
            if (a, b) in self.fail:
                out[(a, b)] = math.nan
            elif abs(bright[a] - bright[b]) <= self.blind:
                out[(a, b)] = 1.0  # position bias: the first shown wins
            else:
                out[(a, b)] = float(bright[a] > bright[b])
        return out


def test_tournaments_judge_both_orders_and_count_their_calls() -> None:
    levels = torch.tensor([0.3, 0.9, 0.1, 0.5, 0.7])
    ims = levels.view(5, 1, 1, 1).expand(5, 3, 4, 4).clone()
    judge = BiasedJudge()
    knockout = Tournament(judge, "knockout")
    rounds = knockout.score(ims, ["p"] * 5)["rounds_survived"]
    assert int(rounds.argmax()) == 1 and rounds[1] == 3  # 5 players: 3 rounds, the brightest wins all
    assert knockout.comparisons == judge.calls == 2 * (5 - 1)
    judge = BiasedJudge()
    rr = Tournament(judge, "round-robin").score(ims, ["p"] * 5)["win_rate"]
    assert torch.equal(rr.argsort(), levels.argsort()) and judge.calls == 5 * 4
    torch.testing.assert_close(rr, torch.tensor([0.25, 1.0, 0.0, 0.5, 0.75]))
    # pure position bias cancels out when both orders are judged: every pair is a draw
    blind = Tournament(BiasedJudge(blind=1.0), "round-robin").score(ims, ["p"] * 5)["win_rate"]
    torch.testing.assert_close(blind, torch.full((5,), 0.5))
    # a failed order counts as no information; two prompts never meet
    failing = Tournament(BiasedJudge(fail={(0, 1)}), "round-robin")
    two = failing.score(ims[:4], ["p", "p", "q", "q"])["win_rate"]
    torch.testing.assert_close(two, torch.tensor([0.0, 1.0, 0.0, 1.0]))


def test_plugins_by_import_string_and_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_judges.py").write_text(
        textwrap.dedent(
            """
            import torch

            class Brightness:
                metrics = ("brightness",)
                flops_per_image = 0.0

                def __init__(self, arg="", device="cpu"):
                    self.name, self.device = f"brightness{arg}", device

                def score(self, images, prompts):
                    return {"brightness": images.mean(dim=(1, 2, 3))}

            class NotAVerifier:
                def __init__(self, device="cpu"):
                    self.name = "broken"
            """
        )
    )
    info = tmp_path / "my_judges-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-judges\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ttscale.verifiers]\nbright = my_judges:Brightness\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ims = images(2, seed=7)
    for name, expected in (
        ("my_judges:Brightness", "brightness"),
        ("bright", "brightness"),
        ("bright:-x", "brightness-x"),
    ):
        ver = load_verifier(name, device="cpu")
        assert ver.name == expected
        torch.testing.assert_close(ver.score(ims, ["p", "p"])["brightness"], ims.mean(dim=(1, 2, 3)))
    with pytest.raises(TTScaleError, match="lacks metrics, flops_per_image, score"):
        load_verifier("my_judges:NotAVerifier")
    with pytest.raises(TTScaleError, match="has no Missing"):
        load_verifier("my_judges:Missing")


def test_a_search_ranks_by_a_real_verifier(
    tmp_path: Path, hf_models: dict[str, Path], tiny_models: dict[str, Path]
) -> None:
    gen = LabGenerator.from_pretrained(str(tiny_models["generator"]), steps=2, batch_size=4)
    ver = load_verifier(f"vlm:{hf_models['vlm']}")
    prompts = prompt_suite("test")[:1]
    run(SearchConfig(params={"n": 4}, steps=2), prompts, tmp_path, gen, ver)
    records = read_jsonl(tmp_path / "00000" / "candidates.jsonl")
    assert all(set(r["scores"]) == {"yes_prob", "p_yes"} for r in records)
    best = max(records, key=lambda r: r["scores"]["yes_prob"])
    assert best["kept"] and best["rank"] == 0
    again = ver.score(gen.sample(prompts[0]["prompt"], [best["seed"]]), [prompts[0]["prompt"]])["yes_prob"]
    assert again.item() == pytest.approx(best["score"], abs=1e-6)
    assert np.isfinite([r["score"] for r in records]).all()
