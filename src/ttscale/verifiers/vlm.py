"""A VLM yes-probability judge through transformers (NVILA-verifier / Scale-RAE style).

The model is asked "Does this image match the description: <prompt>? Answer yes or no." and the
score is read from its next-token logits, not from generated text: `yes_prob` = softmax over the
"yes" and "no" tokens only (the probability of yes given that it answers yes or no), and `p_yes`
= the raw probability of a "yes" token over the whole vocabulary (low when the model would say
something else). Any model `AutoModelForImageTextToText` loads and whose processor has a chat
template works (Qwen2-VL, Qwen2.5-VL, LLaVA, Idefics …). Batches are left-padded so the last
position of every row is where the answer starts.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

from ttscale.budget import count_flops
from ttscale.errors import TTScaleError
from ttscale.images import to_uint8
from ttscale.optional import require
from ttscale.verifiers.pretrained import default_dtype, load, to_device

DEFAULT_TEMPLATE = "Does this image match the description: {prompt}? Answer yes or no."
YES_WORDS = ("yes", "Yes")
NO_WORDS = ("no", "No")


def answer_token_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """Ids of every single-token spelling of the words, with and without a leading space (never the unknown token)."""
    ids: list[int] = []
    for word in words:
        for spelling in (word, " " + word):
            encoded = tokenizer.encode(spelling, add_special_tokens=False)
            if len(encoded) == 1 and encoded[0] not in ids and encoded[0] != tokenizer.unk_token_id:
                ids.append(encoded[0])
    return ids


class YesNoJudge:
    """Scores (image, prompt) pairs by the judge's probability of answering yes."""

    metrics: tuple[str, ...] = ("yes_prob", "p_yes")

    def __init__(
        self,
        model: Any,
        processor: Any,
        name: str,
        *,
        template: str = DEFAULT_TEMPLATE,
        yes: Sequence[str] = YES_WORDS,
        no: Sequence[str] = NO_WORDS,
        device: str | torch.device = "cpu",
        batch_size: int = 8,
        probe_size: int = 512,
    ):
        if "{prompt}" not in template:
            raise TTScaleError(f"{name}: the question template must contain {{prompt}}, got {template!r}")
        if getattr(processor, "chat_template", None) is None:
            raise TTScaleError(f"{name}: its processor has no chat template; give a chat (instruct) checkpoint")
        self.model, self.processor, self.template = model.eval(), processor, template
        self.name, self.device, self.batch_size = name, torch.device(device), batch_size
        self.dtype = next(model.parameters()).dtype
        processor.tokenizer.padding_side = "left"
        self.yes_ids = answer_token_ids(processor.tokenizer, yes)
        self.no_ids = answer_token_ids(processor.tokenizer, no)
        if not self.yes_ids or not self.no_ids or set(self.yes_ids) & set(self.no_ids):
            raise TTScaleError(
                f"{name}: the tokenizer has no distinct single-token answers for {list(yes)} / {list(no)}; "
                "pass yes= and no= words it has"
            )
        self._last_only = "logits_to_keep" in inspect.signature(model.forward).parameters
        probe = torch.zeros(1, 3, probe_size, probe_size)
        self.flops_per_image = count_flops(lambda: self.logits(probe, ["a photo of a cat"]))

    @classmethod
    def from_pretrained(
        cls, model: str, *, device: str = "cpu", dtype: torch.dtype | None = None, **kwargs: Any
    ) -> YesNoJudge:
        transformers = require("transformers", "the VLM judge")
        dev = torch.device(device)
        net = load(
            transformers.AutoModelForImageTextToText.from_pretrained,
            model,
            "VLM judge",
            dtype=dtype or default_dtype(dev),
        )
        proc = load(transformers.AutoProcessor.from_pretrained, model, "VLM judge processor")
        return cls(net.to(dev), proc, name=f"vlm:{model}", device=dev, **kwargs)

    def chat(self, prompt: str) -> str:
        """The full text the model reads for one prompt (its chat template around image and question)."""
        question = self.template.format(prompt=prompt)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        return str(self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))

    def logits(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        """Next-token logits (B, vocab) at the position where the answer starts."""
        batch = self.processor(
            text=[self.chat(p) for p in prompts], images=to_uint8(images), padding=True, return_tensors="pt"
        )
        inputs = to_device(batch, self.device, self.dtype)
        if self._last_only:
            inputs["logits_to_keep"] = 1
        return self.model(**inputs).logits[:, -1, :].float()

    @torch.no_grad()
    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        yes_prob, p_yes = [], []
        for s in range(0, len(prompts), self.batch_size):
            logits = self.logits(images[s : s + self.batch_size], prompts[s : s + self.batch_size])
            yes = logits[:, self.yes_ids].logsumexp(-1)
            no = logits[:, self.no_ids].logsumexp(-1)
            yes_prob.append(torch.sigmoid(yes - no))
            p_yes.append((yes - logits.logsumexp(-1)).exp())
        return {"yes_prob": torch.cat(yes_prob).cpu(), "p_yes": torch.cat(p_yes).cpu()}
