"""API judges: Gemini and any OpenAI-compatible endpoint (OpenAI, a local vLLM or SGLang), with rubrics.

Each image is rated 0-10 on tt-scale-flux's rubric, each score with a short explanation, in
structured (JSON-schema) output; `choice_of_metric` picks the one a search ranks by. Calls run
`concurrency` at a time, each with a timeout; 429, 5xx, timeouts and dropped connections are
retried with exponential backoff at most `retries` times. A judgement that still fails (or comes
back malformed) does not stop the run: its scores are -inf, so every ranking puts it last, its
`judge_failed` metric is 1, and the reason is kept in `failures`. A rejected key or an unknown
model (401/403/404) stops the run at once instead, since every call would fail the same way.

Keys come only from the environment (GEMINI_API_KEY, OPENAI_API_KEY or a variable you name);
the key is masked out of every recorded reason, error and repr. Results are keyed by the id of
the job they answer, never by completion order.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch
from pydantic import BaseModel, ValidationError

from ttscale.errors import TTScaleError
from ttscale.images import encode_png, to_uint8
from ttscale.optional import require

RUBRIC = (
    "accuracy_to_prompt",
    "creativity_and_originality",
    "visual_quality_and_realism",
    "consistency_and_cohesion",
    "emotional_or_thematic_resonance",
    "overall_score",
)
RUBRIC_SYSTEM = (
    "You are a strict, consistent judge of images generated from text prompts. Rate the image for the "
    "prompt on each criterion from 0 (worst) to 10 (best), with a one-sentence explanation each: "
    "accuracy_to_prompt (every object, count, colour, attribute and spatial relation asked for is there), "
    "creativity_and_originality, visual_quality_and_realism (sharpness, anatomy, no artifacts), "
    "consistency_and_cohesion (lighting, perspective and style agree across the image), "
    "emotional_or_thematic_resonance (the mood the prompt asks for), and overall_score (your overall "
    "judgement of the image for this prompt). Answer with JSON only, in the given schema."
)
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
FATAL_STATUS = {
    401: "the key was rejected",
    403: "access was refused with this key",
    404: "no such model (or a wrong base URL)",
}
K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def scored_object(properties: Mapping[str, Any], strict: bool) -> dict[str, Any]:
    """A JSON schema object requiring every property (and, for OpenAI's strict mode, nothing else)."""
    schema: dict[str, Any] = {"type": "object", "properties": dict(properties), "required": list(properties)}
    if strict:
        schema["additionalProperties"] = False
    return schema


def rubric_schema(strict: bool) -> dict[str, Any]:
    score = scored_object({"explanation": {"type": "string"}, "score": {"type": "number"}}, strict)
    return scored_object({m: score for m in RUBRIC}, strict)


class Score(BaseModel):
    explanation: str
    score: float


def parse_rubric(text: str) -> dict[str, Score]:
    """The rubric from the model's answer; ValueError (recorded as a failure) when it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"malformed JSON in the answer ({err.msg})") from None
    if not isinstance(data, dict) or any(m not in data for m in RUBRIC):
        missing = [m for m in RUBRIC if not isinstance(data, dict) or m not in data]
        raise ValueError(f"the answer lacks {', '.join(missing)}")
    try:
        rubric = {m: Score.model_validate(data[m]) for m in RUBRIC}
    except ValidationError as err:
        raise ValueError(f"malformed rubric entry ({err.errors()[0]['msg']})") from None
    outside = [m for m, s in rubric.items() if not 0 <= s.score <= 10]
    if outside:
        raise ValueError(f"scores outside 0-10 for {', '.join(outside)}")
    return rubric


class Backend(Protocol):
    """One provider's request: images and text in, the model's text answer out."""

    provider: str
    model: str
    base_url: str | None
    key_env: str

    def ask(self, pngs: Sequence[bytes], text: str, system: str, schema: dict[str, Any]) -> str: ...

    def status(self, err: Exception) -> int | None: ...


def api_key(key_env: str, provider: str) -> str:
    key = os.environ.get(key_env, "")
    if not key:
        raise TTScaleError(f"the {provider} judge needs an API key: set the {key_env} environment variable")
    return key


class OpenAIBackend:
    """Chat completions with images as data URLs and a strict JSON-schema response format."""

    provider = "openai"

    def __init__(self, model: str, base_url: str | None = None, key_env: str = "OPENAI_API_KEY", timeout: float = 60.0):
        openai = require("openai", "the OpenAI-compatible judge")
        self.model, self.base_url, self.key_env = model, base_url, key_env
        self._status_error = openai.APIStatusError
        # max_retries=0: retries are ours (bounded, counted, the same for every provider)
        self.client = openai.OpenAI(
            api_key=api_key(key_env, "OpenAI-compatible"), base_url=base_url, timeout=timeout, max_retries=0
        )

    def ask(self, pngs: Sequence[bytes], text: str, system: str, schema: dict[str, Any]) -> str:
        images = [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(p).decode()}}
            for p in pngs
        ]
        response = self.client.chat.completions.create(
            model=self.model,
            messages=[
                {"role": "system", "content": system},
                {"role": "user", "content": [{"type": "text", "text": text}, *images]},
            ],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "judgement", "strict": True, "schema": schema},
            },
            temperature=0,
        )
        content = response.choices[0].message.content if response.choices else None
        if not content:
            raise ValueError("the answer is empty")
        return str(content)

    def status(self, err: Exception) -> int | None:
        return int(err.status_code) if isinstance(err, self._status_error) else None


class GeminiBackend:
    """generateContent through google-genai, with a response schema (its OpenAPI subset)."""

    provider = "gemini"

    def __init__(self, model: str, base_url: str | None = None, key_env: str = "GEMINI_API_KEY", timeout: float = 60.0):
        genai = require("google.genai", "the Gemini judge")
        self.model, self.base_url, self.key_env = model, base_url, key_env
        self._types, self._api_error = genai.types, genai.errors.APIError
        # no retry_options: the client then tries once, and retries are ours
        options = genai.types.HttpOptions(base_url=base_url, timeout=int(timeout * 1000))
        self.client = genai.Client(api_key=api_key(key_env, "Gemini"), http_options=options)

    def ask(self, pngs: Sequence[bytes], text: str, system: str, schema: dict[str, Any]) -> str:
        types = self._types
        parts = [types.Part.from_text(text=text), *(types.Part.from_bytes(data=p, mime_type="image/png") for p in pngs)]
        config = types.GenerateContentConfig(
            system_instruction=system, response_mime_type="application/json", response_schema=schema, temperature=0
        )
        response = self.client.models.generate_content(
            model=self.model, contents=types.Content(role="user", parts=parts), config=config
        )
        if not response.text:
            raise ValueError("the answer is empty (blocked or cut off)")
        return str(response.text)

    def status(self, err: Exception) -> int | None:
        return int(err.code) if isinstance(err, self._api_error) and err.code is not None else None


def _transient(err: Exception) -> bool:
    """A timeout or dropped connection, whichever HTTP library the client runs on."""
    names = {c.__name__ for c in type(err).__mro__}
    return isinstance(err, OSError) or bool(names & {"TimeoutException", "TransportError", "APIConnectionError"})


@dataclass(frozen=True)
class Failure:
    """A judgement that did not come back: which job, why (key masked) and after how many requests."""

    job: Hashable
    prompt: str
    reason: str
    attempts: int


class ApiCaller:
    """Runs one backend's requests: bounded concurrency, timeouts, retries with backoff, failures kept."""

    def __init__(
        self,
        backend: Backend,
        *,
        concurrency: int = 8,
        retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
    ):
        if concurrency < 1 or retries < 0:
            raise TTScaleError("an API judge needs concurrency >= 1 and retries >= 0")
        self.backend, self.concurrency, self.retries = backend, concurrency, retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.requests = 0  # every HTTP request sent, retries included: the judge's real cost
        self.failures: list[Failure] = []
        self._lock = threading.Lock()
        self._secret = os.environ.get(backend.key_env, "")

    def __repr__(self) -> str:
        b = self.backend
        where = f" at {b.base_url}" if b.base_url else ""
        return f"ApiCaller({b.provider}:{b.model}{where}, key from ${b.key_env}, concurrency={self.concurrency})"

    def mask(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _call(self, job: Hashable, prompt: str, request: Callable[[], T]) -> T | Failure:
        b = self.backend
        for attempt in range(1, self.retries + 2):
            with self._lock:
                self.requests += 1
            try:
                return request()
            except ValueError as err:  # a malformed body or answer: asking again rarely mends it
                return Failure(job, prompt, self.mask(f"malformed answer: {err}").splitlines()[0][:300], attempt)
            except Exception as err:
                status = b.status(err)
                if status in FATAL_STATUS:
                    raise TTScaleError(
                        f"{b.provider} judge {b.model!r}: HTTP {status}, {FATAL_STATUS[status]} (key from ${b.key_env})"
                    ) from None
                if status is None and not _transient(err):
                    raise
                reason = self.mask(f"{f'HTTP {status}' if status else type(err).__name__}: {err}")
                if (status is not None and status not in RETRY_STATUS) or attempt > self.retries:
                    return Failure(job, prompt, reason.splitlines()[0][:300], attempt)
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                time.sleep(delay * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable: the last attempt returns")

    def run(self, jobs: Mapping[K, tuple[str, Callable[[], T]]]) -> dict[K, T | Failure]:
        """Answers keyed by job id; each job is (prompt, request). Failures are also appended to `failures`."""
        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(jobs)))) as pool:
            futures = {key: pool.submit(self._call, key, prompt, request) for key, (prompt, request) in jobs.items()}
            try:
                answers = {key: future.result() for key, future in futures.items()}
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
        self.failures += [a for a in answers.values() if isinstance(a, Failure)]
        return answers


class RubricJudge:
    """A Verifier asking an API model for tt-scale-flux's rubric; ranks by `choice_of_metric`."""

    flops_per_image = math.nan  # computed remotely: unknown; `requests` counts what it costs

    def __init__(self, caller: ApiCaller, *, choice_of_metric: str = "overall_score", system: str = RUBRIC_SYSTEM):
        if choice_of_metric not in RUBRIC:
            raise TTScaleError(f"choice_of_metric {choice_of_metric!r}: choose one of {', '.join(RUBRIC)}")
        backend = caller.backend
        self.caller, self.system = caller, system
        self.name = f"{backend.provider}:{backend.model}" + (f"@{backend.base_url}" if backend.base_url else "")
        self.metrics: tuple[str, ...] = (
            choice_of_metric,
            *(m for m in RUBRIC if m != choice_of_metric),
            "judge_failed",
        )
        self.schema = rubric_schema(strict=backend.provider == "openai")
        self.judgements: list[dict[str, Any]] = []  # each answer: prompt and every metric's score and explanation

    def __repr__(self) -> str:
        return f"RubricJudge({self.caller!r}, ranking by {self.metrics[0]})"

    @property
    def failures(self) -> list[Failure]:
        return self.caller.failures

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, retries included (one image per request)."""
        return self.caller.requests

    def _request(self, png: bytes, prompt: str) -> Callable[[], dict[str, Score]]:
        text = f'Prompt: "{prompt}"\nRate the attached image generated for this prompt.'
        return lambda: parse_rubric(self.caller.backend.ask([png], text, self.system, self.schema))

    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        pngs = [encode_png(im) for im in to_uint8(images)]
        answers = self.caller.run(
            {j: (p, self._request(png, p)) for j, (png, p) in enumerate(zip(pngs, prompts, strict=True))}
        )
        out = {m: torch.full((len(pngs),), float("-inf")) for m in self.metrics}
        out["judge_failed"] = torch.ones(len(pngs))
        for j, answer in answers.items():
            if isinstance(answer, Failure):
                continue
            for m, s in answer.items():
                out[m][j] = s.score
            out["judge_failed"][j] = 0.0
            self.judgements.append({"prompt": prompts[j]} | {m: s.model_dump() for m, s in answer.items()})
        return out


def openai_judge(
    model: str,
    base_url: str | None = None,
    *,
    key_env: str = "OPENAI_API_KEY",
    timeout: float = 60.0,
    choice_of_metric: str = "overall_score",
    **caller: Any,
) -> RubricJudge:
    """A rubric judge on any OpenAI-compatible endpoint (default: OpenAI's own)."""
    backend = OpenAIBackend(model, base_url, key_env, timeout)
    return RubricJudge(ApiCaller(backend, **caller), choice_of_metric=choice_of_metric)


def gemini_judge(
    model: str,
    base_url: str | None = None,
    *,
    key_env: str = "GEMINI_API_KEY",
    timeout: float = 60.0,
    choice_of_metric: str = "overall_score",
    **caller: Any,
) -> RubricJudge:
    """A rubric judge on Gemini (base_url only to reach a proxy or a test server)."""
    backend = GeminiBackend(model, base_url, key_env, timeout)
    return RubricJudge(ApiCaller(backend, **caller), choice_of_metric=choice_of_metric)
