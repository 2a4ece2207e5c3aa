"""API judges against OpenAI-compatible and Gemini-shaped servers on 127.0.0.1: rubric scores keyed by candidate,
timeouts, 429, 500, malformed JSON, bounded retries, concurrency, tournaments, and no key in any output."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from ttscale.config import SearchConfig
from ttscale.errors import TTScaleError
from ttscale.folder import read_jsonl
from ttscale.generator import CallableGenerator
from ttscale.lab.generator import LabGenerator
from ttscale.lab.prompts import prompt_suite
from ttscale.registry import load_verifier
from ttscale.runner import run
from ttscale.verifiers.api import RUBRIC, RubricJudge, gemini_judge, openai_judge
from ttscale.verifiers.tournament import Tournament

KEY = "sk-test-SECRET-7f3a9c"
RETRIES = 2
# What the fake API does for a uniform grey image of this level (0-255); multiples of 10 answer level / 10.
TOO_MANY, FLAKY, BAD_BODY, SLOW, BAD_RUBRIC, ECHO_KEY, UNAUTHORIZED = 1, 2, 3, 4, 5, 6, 7


class FakeAPI(ThreadingHTTPServer):
    """Answers POST /…/chat/completions (OpenAI) and /…/models/M:generateContent (Gemini) like the real APIs."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.hits: Counter[Any] = Counter()  # requests per image level (or pair of levels, or image hash)
        self.bodies: list[dict[str, Any]] = []
        self.inflight = self.max_inflight = 0
        self.flaky_by_hash = False  # runner test: lab images fail by hash instead of grey level

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out has closed its socket; the late answer going nowhere is expected."""


def rubric(overall: float) -> str:
    return json.dumps(
        {m: {"explanation": f"{m} looks fine", "score": overall if m == "overall_score" else 1.0} for m in RUBRIC}
    )


def levels_of(body: dict[str, Any]) -> tuple[list[int], list[bytes]]:
    if "messages" in body:  # OpenAI: data URLs in the user message
        urls = [c["image_url"]["url"] for c in body["messages"][1]["content"] if c["type"] == "image_url"]
        blobs = [base64.b64decode(u.split(",", 1)[1]) for u in urls]
    else:  # Gemini: inline data parts, URL-safe base64 without padding
        data = [p["inlineData"]["data"] for p in body["contents"][0]["parts"] if "inlineData" in p]
        blobs = [base64.urlsafe_b64decode(d + "=" * (-len(d) % 4)) for d in data]
    return [int(np.asarray(Image.open(io.BytesIO(b)))[0, 0, 0]) for b in blobs], blobs


class Handler(BaseHTTPRequestHandler):
    server: FakeAPI
    protocol_version = "HTTP/1.1"  # keep-alive, as real APIs: clients reuse connections between retries

    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def answer(self, text: str) -> bytes:
        if self.path.endswith("/chat/completions"):
            message = {"role": "assistant", "content": text}
            body = {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "judge",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
        else:
            body = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}]}
        return json.dumps(body).encode()

    def do_POST(self) -> None:
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        levels, blobs = levels_of(body)
        key = (
            tuple(levels)
            if len(levels) == 2
            else hashlib.sha1(blobs[0]).hexdigest()
            if srv.flaky_by_hash
            else levels[0]
        )
        with srv.lock:
            srv.hits[key] += 1
            srv.bodies.append(body)
            seen = srv.hits[key]
            srv.inflight += 1
            srv.max_inflight = max(srv.max_inflight, srv.inflight)
        try:
            time.sleep(0.005 * (sum(levels) * 7 % 5))  # answers come back out of order
            self.respond(levels, key, seen)
        finally:
            with srv.lock:
                srv.inflight -= 1

    def respond(self, levels: list[int], key: Any, seen: int) -> None:
        if len(levels) == 2:  # pairwise: the brighter wins; a tie goes to the first shown (position bias)
            self.reply(
                200,
                self.answer(
                    json.dumps({"explanation": "x", "better": "first" if levels[0] >= levels[1] else "second"})
                ),
            )
            return
        if self.server.flaky_by_hash:
            digest = int(str(key), 16)
            if digest % 3 == 0:
                self.reply(429, b'{"error": {"message": "rate limited"}}')
            elif seen == 1:
                self.reply(503, b'{"error": {"message": "overloaded"}}')
            else:
                self.reply(200, self.answer(rubric(digest % 11)))
            return
        level = levels[0]
        if level == TOO_MANY:
            self.reply(429, b'{"error": {"message": "rate limited", "code": 429}}')
        elif level == FLAKY and seen == 1:
            self.reply(500, b'{"error": {"message": "internal", "code": 500}}')
        elif level == FLAKY:
            self.reply(200, self.answer(rubric(5.5)))
        elif level == BAD_BODY:
            self.reply(200, b'{"choices": [ not json')
        elif level == SLOW:
            time.sleep(1.0)
            self.reply(200, self.answer(rubric(9.0)))
        elif level == BAD_RUBRIC:
            self.reply(200, self.answer(json.dumps({"overall_score": {"explanation": "only this", "score": 3}})))
        elif level == ECHO_KEY:  # a server that quotes the credentials back in its error
            sent = self.headers.get("authorization") or self.headers.get("x-goog-api-key")
            self.reply(400, json.dumps({"error": {"message": f"bad request with {sent}", "code": 400}}).encode())
        elif level == UNAUTHORIZED:
            self.reply(401, b'{"error": {"message": "invalid key", "code": 401}}')
        else:
            self.reply(200, self.answer(rubric(level / 10)))


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAPI]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    server = FakeAPI()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def grey(levels: list[int]) -> torch.Tensor:
    return (torch.tensor(levels, dtype=torch.float32) / 255).view(-1, 1, 1, 1).expand(-1, 3, 8, 8).clone()


def judge_for(provider: str, api: FakeAPI, **kwargs: Any) -> RubricJudge:
    opts: dict[str, Any] = {"timeout": 0.4, "retries": RETRIES, "backoff": 0.01, "concurrency": 3} | kwargs
    if provider == "openai":
        return openai_judge("judge-model", f"{api.url}/v1", **opts)
    return gemini_judge("judge-model", api.url, **opts)


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_rubric_scores_stay_with_their_candidate_and_failures_are_recorded(provider: str, api: FakeAPI) -> None:
    levels = [70, TOO_MANY, FLAKY, BAD_BODY, SLOW, 20, BAD_RUBRIC, ECHO_KEY, 100, 40]
    judge = judge_for(provider, api)
    out = judge.score(grey(levels), [f"prompt {i}" for i in range(len(levels))])

    assert judge.metrics[0] == "overall_score" and judge.metrics[-1] == "judge_failed"
    expected = {0: 7.0, 2: 5.5, 5: 2.0, 8: 10.0, 9: 4.0}  # by candidate, whatever order the answers came in
    for j in range(len(levels)):
        if j in expected:
            assert out["overall_score"][j].item() == pytest.approx(expected[j]) and out["judge_failed"][j] == 0
            assert out["accuracy_to_prompt"][j] == 1.0
        else:
            assert all(out[m][j] == -math.inf for m in RUBRIC) and out["judge_failed"][j] == 1
    reasons = {f.job: f.reason for f in judge.failures}
    assert sorted(reasons) == [1, 3, 4, 6, 7]
    assert reasons[1].startswith("HTTP 429") and reasons[7].startswith("HTTP 400")
    assert reasons[3].startswith("malformed answer") and "lacks accuracy_to_prompt" in reasons[6]
    assert "Timeout" in reasons[4]
    assert {f.job: f.prompt for f in judge.failures}[4] == "prompt 4"
    # retries: only 429 / 5xx / timeouts, and at most RETRIES times
    attempts = RETRIES + 1
    assert api.hits == Counter(
        {
            70: 1,
            TOO_MANY: attempts,
            FLAKY: 2,
            BAD_BODY: 1,
            SLOW: attempts,
            20: 1,
            BAD_RUBRIC: 1,
            ECHO_KEY: 1,
            100: 1,
            40: 1,
        }
    )
    assert {f.job: f.attempts for f in judge.failures} == {1: attempts, 3: 1, 4: attempts, 6: 1, 7: 1}
    assert judge.caller.requests == sum(api.hits.values())
    assert 1 < api.max_inflight <= 3
    assert len(judge.judgements) == 5 and judge.judgements[0]["overall_score"]["explanation"]
    # the key never leaks: not in reasons (the echoing server quoted it), nor in the repr
    assert all(KEY not in f.reason for f in judge.failures) and "***" in reasons[7]
    assert KEY not in repr(judge) and provider in repr(judge)


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_requests_carry_the_image_the_prompt_and_a_schema(provider: str, api: FakeAPI) -> None:
    judge = judge_for(provider, api, choice_of_metric="accuracy_to_prompt")
    assert judge.metrics[:2] == ("accuracy_to_prompt", "creativity_and_originality")
    judge.score(grey([30]), ["a red circle left of a blue square"])
    (body,) = api.bodies
    text = json.dumps(body)
    assert "a red circle left of a blue square" in text and "overall_score" in text
    if provider == "openai":
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
        assert fmt["json_schema"]["schema"]["required"] == list(RUBRIC) and body["model"] == "judge-model"
    else:
        assert body["generationConfig"]["responseMimeType"] == "application/json"
        assert set(body["generationConfig"]["responseSchema"]["properties"]) == set(RUBRIC)


def test_a_rejected_key_stops_the_run_in_one_line_without_the_key(api: FakeAPI) -> None:
    judge = judge_for("openai", api)
    with pytest.raises(TTScaleError) as err:
        judge.score(grey([UNAUTHORIZED, 50]), ["p", "p"])
    message = str(err.value)
    assert "HTTP 401" in message and "OPENAI_API_KEY" in message and KEY not in message and "\n" not in message
    assert api.hits[UNAUTHORIZED] == 1  # never retried


def test_missing_keys_name_the_variable_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with pytest.raises(TTScaleError, match="set the OPENAI_API_KEY environment variable"):
        load_verifier("openai:gpt-4o")
    with pytest.raises(TTScaleError, match="set the GEMINI_API_KEY environment variable"):
        load_verifier("gemini:gemini-2.0-flash")
    with pytest.raises(TTScaleError, match="set the MY_VLLM_KEY environment variable"):
        openai_judge("qwen", "http://127.0.0.1:9/v1", key_env="MY_VLLM_KEY")


def test_a_search_with_a_failing_api_completes_and_writes_no_key(
    api: FakeAPI, tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    api.flaky_by_hash = True  # a third of the images always 429; every other one 503 once first
    gen = LabGenerator.from_pretrained(str(tiny_models["generator"]), steps=2, batch_size=6)
    judge = judge_for("openai", api, concurrency=4)
    prompts = prompt_suite("test")[:2]
    cfg = SearchConfig(verifier=f"openai:judge-model@{api.url}/v1", params={"n": 6}, steps=2, k=2)
    totals = run(cfg, prompts, tmp_path, gen, judge)
    assert totals.candidates == 12
    records = [r for i in range(2) for r in read_jsonl(tmp_path / f"{i:05d}" / "candidates.jsonl")]
    failed = [r for r in records if r["scores"]["judge_failed"] == 1]
    assert len(failed) == len(judge.failures) and all(r["score"] == -math.inf for r in failed)
    assert 0 < len(failed) < len(records)
    for i in range(2):
        kept = [r for r in read_jsonl(tmp_path / f"{i:05d}" / "candidates.jsonl") if r["rank"] == 0]
        assert kept[0]["scores"]["judge_failed"] == 0 or all(
            r["scores"]["judge_failed"] == 1 for r in read_jsonl(tmp_path / f"{i:05d}" / "candidates.jsonl")
        )
    assert max(api.hits.values()) == RETRIES + 1  # bounded
    assert judge.caller.requests == sum(api.hits.values())
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 12 and all(KEY.encode() not in p.read_bytes() for p in written)


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_tournaments_through_the_api_judge_each_pair_both_ways(provider: str, api: FakeAPI) -> None:
    spec = f"openai:judge-model@{api.url}/v1" if provider == "openai" else f"gemini:judge-model@{api.url}"
    levels = [30, 90, 10, 50, 70]
    knockout = load_verifier(f"knockout:{spec}")
    assert isinstance(knockout, Tournament)
    rounds = knockout.score(grey(levels), ["p"] * 5)["rounds_survived"]
    assert int(rounds.argmax()) == 1 and knockout.comparisons == sum(api.hits.values()) == 2 * 4
    assert all(api.hits[(a, b)] == api.hits[(b, a)] == 1 for a, b in [(30, 90), (10, 50)])
    api.hits.clear()
    win_rate = load_verifier(f"round-robin:{spec}").score(grey(levels), ["p"] * 5)["win_rate"]
    torch.testing.assert_close(win_rate, torch.tensor([0.25, 1.0, 0.0, 0.5, 0.75]))
    assert sum(api.hits.values()) == 5 * 4 and set(api.hits.values()) == {1}
    # the server's position bias on equal images cancels: a draw
    draw = load_verifier(f"round-robin:{spec}").score(grey([60, 60]), ["p"] * 2)["win_rate"]
    torch.testing.assert_close(draw, torch.tensor([0.5, 0.5]))


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_a_retried_request_reaches_spend_json(provider: str, api: FakeAPI, tmp_path: Path) -> None:
    """FLAKY fails once with a 500 and succeeds when asked again: 3 images scored, 4 requests spent."""
    gen = CallableGenerator(lambda prompt, seeds: grey([70, FLAKY, 20][: len(seeds)]), name="grey")
    judge = judge_for(provider, api)
    cfg = SearchConfig(generator="grey", verifier=f"{provider}:judge-model", params={"n": 3})
    totals = run(cfg, prompt_suite("test")[:1], tmp_path, gen, judge)
    spend = json.loads((tmp_path / "00000" / "spend.json").read_text())
    assert api.hits[FLAKY] == 2 and sum(api.hits.values()) == 4 == judge.requests
    assert (spend["verifier_calls"], spend["judge_requests"]) == (3, 4) and totals.spend.judge_requests == 4
    assert spend["verifier_flops"] is None  # computed remotely: unknown, not 0
    assert json.loads((tmp_path / "run.json").read_text())["totals"]["judge_requests"] == 4
