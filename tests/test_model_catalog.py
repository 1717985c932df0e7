"""The catalog at the worker: one provider per model (`activities.providers.Providers`) with its own limits,
prices and usage name; the three offline models paint visibly differently and score differently; a catalog
that cannot serve stops the worker at start with one line naming the entry."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from activities.providers import Providers
from activities.providers.offline.hands import HANDS
from models.catalog import OFFLINE_MODELS, ModelChoice, from_settings, read_catalog
from models.image import ImageOptions, RefinedPrompt
from models.pricing import Unpriced, quote, run_prices
from models.settings import Settings
from models.usage import Price
from starter.max_cost import BadBudget, cost_limit_for
from tests.conftest import ROOT, atelier_env, eventually
from tests.fake_openai import FakeOpenAI

PROMPTS = [
    "a red lighthouse on a cliff at sunset, blue sea",
    "a small green tree and a yellow house",
    "a robot holding a flower, orange and teal",
]


def catalog(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def offline_providers(tmp_path: Path) -> Providers:
    settings = Settings(ATELIER_PROVIDER="offline", ATELIER_DATA_DIR=str(tmp_path))
    return Providers(from_settings(settings), settings)


async def test_the_three_offline_models_paint_differently_and_the_judge_scores_them_apart(tmp_path):
    """Same prompt, three offline models: three different pictures (vivid: more saturated than plain; sketch:
    grey), stamped with the model's name, and the offline judge ranks them vivid > plain > sketch."""
    providers = offline_providers(tmp_path)
    assert set(HANDS) == set(OFFLINE_MODELS), "every offline model has a hand"
    judge = providers.get("eval", None)
    scores: dict[str, list[int]] = {name: [] for name in OFFLINE_MODELS}
    for prompt in PROMPTS:
        saturation = {}
        pictures = set()
        for name in OFFLINE_MODELS:
            made = await providers.get("image", name).generate_image(prompt, ImageOptions(quality="low"), [], None)
            assert made.model == name and set(made.usage.models) == {name}, "usage and result name the model"
            pictures.add(made.value.data)
            with Image.open(io.BytesIO(made.value.data)) as image:
                saturation[name] = ImageStat.Stat(image.convert("RGB").convert("HSV")).mean[1]
            verdict = await judge.evaluate_image(made.value.data, made.value.content_type, prompt)
            scores[name].append(verdict.value.score)
        assert len(pictures) == 3
        assert saturation["offline-vivid"] > saturation["offline"] > saturation["offline-sketch"] + 20
        assert saturation["offline-sketch"] < 5, "a sketch is grey"
    for plain, vivid, sketch in zip(*(scores[name] for name in OFFLINE_MODELS), strict=True):
        assert vivid > plain > sketch, scores


async def test_two_models_on_one_rate_limited_endpoint_learn_two_limits_and_one_429_holds_back_only_its_model(
    tmp_path,
):
    """A provider that limits each model on its own: the slow model's 429 closes its gate only; the fast
    model's calls go on at once, never refused, and each model learns the limit its headers told."""
    fake = FakeOpenAI()
    url = fake.start()
    try:
        fake.rate_limit_models({"m-slow": 15, "m-fast": 600}, burst_s=1)  # one slow request at once
        path = catalog(
            tmp_path,
            f"""
[[models]]
id = "slow"
kinds = ["text", "eval"]
base_url = "{url}"
model = "m-slow"
default = true

[[models]]
id = "fast"
kinds = ["text"]
base_url = "{url}"
model = "m-fast"

[[models]]
id = "offline"
kinds = ["image"]
provider = "offline"
default = true
""",
        )
        settings = Settings(ATELIER_DATA_DIR=str(tmp_path), LLM_TIMEOUT_S=10)
        providers = Providers(read_catalog(path), settings)
        slow, fast = providers.get("text", None), providers.get("text", "fast")
        assert slow.model_id == "slow" and fast.model_id == "fast"
        assert slow.inner.client is fast.inner.client, "one client per server"

        async def ask(provider):
            return await provider.structured(RefinedPrompt, "Refine.", "a kite")

        first = await ask(slow)  # the slow model's one request of its burst
        assert first.model == "slow" and set(first.usage.models) == {"slow"}
        refused = asyncio.ensure_future(ask(slow))  # 429: waits for its model's limit to refill (about 4 s)
        await eventually(fake.limited, 30, "the slow model's 429", every=0.02)
        answered = await asyncio.gather(*(ask(fast) for _ in range(5)))
        assert not refused.done(), "the slow model is still held back while the fast one answered"
        assert {m.model for m in answered} == {"fast"}
        assert (await refused).model == "slow"
    finally:
        fake.stop()
    limited = {r.body["model"] for r in fake.limited()}
    assert limited == {"m-slow"}, "only the slow model was refused"
    assert slow.learner.limit["text"] == pytest.approx(15 * 0.9)
    assert fast.learner.limit["text"] == pytest.approx(600 * 0.9)
    assert slow.learner.owns == fast.learner.owns == frozenset(), "two text models: neither sets the queue's limit"


def test_a_runs_quote_is_at_its_chosen_models_prices(tmp_path):
    path = catalog(
        tmp_path,
        """
[[models]]
id = "cheap"
kinds = ["text", "eval"]
model = "gpt-4o-mini"
default = true

[[models]]
id = "dear"
kinds = ["text"]
price = { input_per_mtok = 10.0, output_per_mtok = 40.0 }

[[models]]
id = "painter"
kinds = ["image"]
model = "gpt-image-1"
image_api = "images"
default = true

[[models]]
id = "mystery"
kinds = ["image"]
image_api = "images"
""",
    )
    settings, known = Settings(), read_catalog(path)
    table = settings.prices
    default = quote(settings, 5, [ImageOptions()], prices=run_prices(known, ModelChoice(), table))
    dear = quote(settings, 5, [ImageOptions()], prices=run_prices(known, ModelChoice(text="dear"), table))
    assert dear.text_call_usd > default.text_call_usd and dear.image_call_usd == default.image_call_usd
    assert default.text_call_usd == pytest.approx(
        quote(Settings(LLM_API_KEY="sk-x", LLM_MODEL="gpt-4o-mini", EVAL_MODEL="gpt-4o-mini"), 5, []).text_call_usd
    ), "a catalog entry without a price is priced by the table, as the settings' model is"
    with pytest.raises(Unpriced, match="'mystery'"):
        run_prices(known, ModelChoice(image="mystery"), table)
    assert run_prices(known, ModelChoice(), table).driver is None, "the images route needs no text model"
    quoted = cost_limit_for(5, settings, [ImageOptions()], models=ModelChoice(text="dear"), catalog=known)
    assert quoted == dear, "the API's and the CLI's quote is at the run's models' prices"
    with pytest.raises(BadBudget, match="'mystery'"):
        cost_limit_for(5, settings, [ImageOptions()], models=ModelChoice(image="mystery"), catalog=known)


async def test_prices_and_usage_are_the_catalog_models(tmp_path):
    """A catalog price wins over the table's for that model, and usage is keyed by the catalog id."""
    path = catalog(
        tmp_path,
        """
[[models]]
id = "house"
kinds = ["text", "eval", "image"]
provider = "offline"
model = "offline-vivid"
price = { input_per_mtok = 1000000.0 }
default = true
""",
    )
    providers = Providers(read_catalog(path), Settings(ATELIER_DATA_DIR=str(tmp_path)))
    house = providers.get("text", "house")
    assert house.prices["offline-vivid"] == Price(input_per_mtok=1000000.0)
    made = await house.structured(RefinedPrompt, "Refine.", "a kite")
    assert set(made.usage.models) == {"house"} and made.usage.models["house"].cost_usd > 0


CATALOGS = {
    "unset key": (
        '[[models]]\nid = "hosted"\nkinds = ["text", "image", "eval"]\napi_key_env = "ATELIER_TEST_UNSET_KEY"\n'
        "default = true\n",
        "model 'hosted' names api_key_env 'ATELIER_TEST_UNSET_KEY', which is not set",
    ),
    "no default": (
        '[[models]]\nid = "writer"\nkinds = ["text", "eval"]\ndefault = true\n\n'
        '[[models]]\nid = "painter"\nkinds = ["image"]\n',
        "no model is `default = true` for image",
    ),
    "duplicate id": (
        '[[models]]\nid = "twice"\nkinds = ["text", "image", "eval"]\ndefault = true\n\n'
        '[[models]]\nid = "twice"\nkinds = ["text"]\n',
        "model 'twice' is listed twice",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CATALOGS))
def test_a_catalog_that_cannot_serve_stops_the_worker_with_one_line_naming_the_entry(tmp_path, case):
    text, said = CATALOGS[case]
    path = catalog(tmp_path, text)
    env = atelier_env(tmp_path, "127.0.0.1:1", ATELIER_MODELS_FILE=str(path))
    worker = subprocess.run(
        [sys.executable, "-m", "workers"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert worker.returncode == 2, worker.stderr
    lines = worker.stderr.strip().splitlines()
    assert lines == [f"error: {path}: {said}"], worker.stderr
