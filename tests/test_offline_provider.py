"""The offline provider is a real code path: deterministic, prompt-following, labelled."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Literal

from PIL import Image
from pydantic import BaseModel, Field

from activities.providers.offline import OfflineProvider
from activities.providers.offline.judge import measure
from models.image import Evaluation, ImageOptions, RefinePromptRequest

ROOT = Path(__file__).resolve().parent.parent
provider = OfflineProvider()


async def generate(prompt: str, **options) -> tuple[bytes, str]:
    result = await provider.generate_image(prompt, ImageOptions(**options), [], None)
    return result.data, result.response_id


async def test_deterministic_for_the_same_input():
    assert await generate("a red car") == await generate("a red car")
    assert (await generate("a red car"))[0] != (await generate("a blue car"))[0]


async def test_colour_words_set_the_palette():
    red, _ = await generate("a red car in a red city", background="opaque")
    blue, _ = await generate("a blue car in a blue city", background="opaque")
    with Image.open(io.BytesIO(red)) as a, Image.open(io.BytesIO(blue)) as b:
        assert measure(a, ["red"]).coverage["red"] > measure(b, ["red"]).coverage["red"]
        assert measure(b, ["blue"]).coverage["blue"] > measure(a, ["blue"]).coverage["blue"]


async def test_size_format_and_background_are_honoured():
    data, _ = await generate("a cat", size="1024x1536", format="jpeg", background="opaque")
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size) == ("JPEG", (1024, 1536))
    data, _ = await generate("a cat", format="png", background="transparent")
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "RGBA" and image.getchannel("A").getextrema()[0] == 0


async def test_refinement_changes_the_image_and_raises_the_score():
    prompt = "a lighthouse at sunset, orange and purple sky, blue sea"
    first, response_id = await generate(prompt, background="opaque")
    verdict = await provider.evaluate_image(first, "image/png", prompt)
    refined = await provider.refine_prompt(
        RefinePromptRequest(original_prompt=prompt, current_prompt=prompt, feedback=[verdict.feedback])
    )
    assert refined.prompt.startswith(prompt) and refined.prompt != prompt
    second = await provider.generate_image(refined.prompt, ImageOptions(background="opaque"), [], response_id)
    assert second.data != first
    assert second.response_id.split("-")[1] == response_id.split("-")[1], "refinement keeps the layout seed"
    assert (await provider.evaluate_image(second.data, "image/png", refined.prompt)).score > verdict.score


async def test_human_feedback_is_followed():
    refined = await provider.refine_prompt(
        RefinePromptRequest(
            original_prompt="a cat", current_prompt="a cat", feedback=["ok"], human_feedback=["make it green"]
        )
    )
    assert "make it green" in refined.prompt


class Character(BaseModel):
    name: str = Field(max_length=40)
    age: int = Field(ge=18, le=90)
    mood: Literal["calm", "angry"]
    traits: list[str] = Field(min_length=2, max_length=4)


class Cast(BaseModel):
    title: str
    characters: list[Character] = Field(min_length=3)


async def test_structured_output_is_valid_for_any_schema_and_follows_the_prompt():
    cast = await provider.structured(Cast, "", "pirates sailing the emerald archipelago")
    assert len({c.name for c in cast.characters}) == len(cast.characters), "the characters differ"
    assert len({c.age for c in cast.characters}) > 1 and {c.mood for c in cast.characters} == {"calm", "angry"}
    text = cast.model_dump_json()
    assert any(word in text for word in ("pirates", "sailing", "emerald", "archipelago"))
    assert await provider.structured(Cast, "", "pirates sailing the emerald archipelago") == cast
    verdict = await provider.structured(Evaluation, "", "x")
    assert verdict == await provider.structured(Evaluation, "", "x"), "deterministic"
    assert verdict.score != (await provider.structured(Evaluation, "", "y")).score, "and it follows the prompt"


def test_workflows_load_no_io_or_model_libraries():
    """Everything a workflow module loads, passed-through modules included: no HTTP client, image
    library, model SDK, S3 client or torch (activities that need them are called by name)."""
    banned = ["torch", "openai", "PIL", "httpx", "minio", "requests", "urllib3", "boto3"]
    probe = (
        "import sys, pathlib\n"
        "for path in sorted(pathlib.Path('workflows').glob('*.py')):\n"
        "    __import__('workflows.' + path.stem)\n"
        f"print(sorted(m for m in {banned!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"workflow modules load {done.stdout.strip()}"
