"""Worst-case prices of model calls, for dollar budgets.

A run with `--max-cost` reserves each call's worst case before it starts and settles with the real
usage after it, so its spend never passes the budget. The bounds here are upper bounds a provider
cannot exceed: a token is at least one byte of text, an input image counts as at most
`IMAGE_INPUT_TOKENS`, and text output is capped with `max_completion_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.catalog import Catalog, CatalogModel, ModelChoice, load_catalog
from models.image import ImageOptions
from models.settings import Settings
from models.usage import CostLimit, Price

OUTPUT_TOKENS_MAX = 4096  # the most a capped text call may write
OUTPUT_TOKENS_MIN = 64  # below this a structured reply cannot fit: the call is refused instead
QUOTE_INPUT_TOKENS = 6000  # the prompt size a text call's reservation assumes (the cap adapts to the real one)
FLOOR_INPUT_TOKENS = 500  # the prompt a call near the end of a budget must fit in (most prompts do)
FLOOR_OUTPUT_TOKENS = 512  # and the output it may still write (capped to fit what it is given)
IMAGE_INPUT_TOKENS = 1600  # an input image (evaluation, reference) costs at most this many tokens
IMAGE_CALL_TEXT_TOKENS = 1000  # text the Responses API's model may write around an image tool call
# Output tokens OpenAI bills per generated image, by quality and shape (its published table).
IMAGE_TOKENS = {
    ("low", "square"): 272,
    ("medium", "square"): 1056,
    ("high", "square"): 4160,
    ("low", "wide"): 408,
    ("medium", "wide"): 1584,
    ("high", "wide"): 6240,
}


class Unpriced(ValueError):
    """A budget needs a price for every model a run calls."""

    def __init__(self, model: str) -> None:
        super().__init__(
            f"model {model!r} has no price: add it to ATELIER_PRICES (or a `price` to its catalog entry) to use "
            "--max-cost"
        )
        self.model = model


def price_of(prices: dict[str, Price], model: str) -> Price:
    if (price := prices.get(model)) is None:
        raise Unpriced(model)
    return price


def image_tokens(options: ImageOptions) -> int:
    """Output tokens of one image; `auto` quality or size is billed as the largest it could be."""
    quality = "high" if options.quality == "auto" else options.quality
    shape = "square" if options.size == "1024x1024" else "wide"
    return IMAGE_TOKENS[(quality, shape)]


def input_bound(messages: list[dict[str, Any]]) -> int:
    """At most this many input tokens: the text's bytes, and a bound per image part."""
    tokens = 0
    for message in messages:
        tokens += 8  # role and framing
        content = message["content"]
        for part in [content] if isinstance(content, str) else content:
            if isinstance(part, str):
                tokens += len(part.encode())
            elif part.get("type") in ("text", "input_text"):
                tokens += len(part["text"].encode())
            else:
                tokens += IMAGE_INPUT_TOKENS
    return tokens


def output_cap(price: Price, input_tokens: int, max_cost_usd: float) -> int:
    """The most output tokens a call may write and still cost at most `max_cost_usd` (0: it cannot fit)."""
    left = max_cost_usd - input_tokens * price.input_per_mtok / 1e6
    if price.output_per_mtok == 0:
        return OUTPUT_TOKENS_MAX if left >= 0 else 0
    cap = min(OUTPUT_TOKENS_MAX, int(left * 1e6 / price.output_per_mtok))
    return cap if cap >= OUTPUT_TOKENS_MIN else 0


@dataclass(frozen=True)
class RunPrices:
    """What a run's calls are quoted at: its text and evaluation models' prices, its image model's, and the
    price of the text model that drives the Responses API's image tool (None: pictures come another way)."""

    text: tuple[Price, ...]
    image: Price
    driver: Price | None = None


def catalog_price(model: CatalogModel, table: dict[str, Price]) -> Price:
    """A catalog model's price: its entry's `price`, else the table's for its provider model name (an offline
    model the table lacks costs nothing). `Unpriced` naming it when neither has one."""
    price = model.price or table.get(model.provider_model) or (Price() if model.provider == "offline" else None)
    if price is None:
        raise Unpriced(model.id)
    return price


def run_prices(catalog: Catalog, choice: ModelChoice, table: dict[str, Price]) -> RunPrices:
    """The prices of the models a run chose (unset kinds: the catalog's defaults). The Responses route's
    driver is the image model itself when it also writes text, else the default text model on an endpoint."""
    text, evaluator, image = (catalog.resolve(kind, choice.of(kind)) for kind in ("text", "eval", "image"))
    driver = None
    if image.provider == "openai" and image.image_api in ("auto", "responses"):
        writer = image if "text" in image.kinds else catalog.default("text")
        driver = catalog_price(writer, table) if writer.provider == "openai" else None
    return RunPrices((catalog_price(text, table), catalog_price(evaluator, table)), catalog_price(image, table), driver)


def image_call_bound(
    image: Price, driver: Price | None, prompt_tokens: int, references: int, options: ImageOptions
) -> float:
    """The most one image generation can cost: the image model's input and image, and with the Responses
    API (`driver`) the text model around it."""
    context = prompt_tokens + references * IMAGE_INPUT_TOKENS
    cost = image.cost(context, image_tokens(options), 1)
    if driver is not None:
        cost += driver.cost(context, IMAGE_CALL_TEXT_TOKENS, 0)
    return cost


def quote(
    settings: Settings,
    max_usd: float,
    image_options: list[ImageOptions],
    references: int = 0,
    prices: RunPrices | None = None,
) -> CostLimit:
    """A run's dollar budget with what it reserves per call: a text call at `QUOTE_INPUT_TOKENS` in and
    the output cap out (on the dearer of the text and evaluation models); an image at the run's
    dearest image options. Near the end of a budget a call may be given less, down to a floor that a
    short prompt fits (`FLOOR_INPUT_TOKENS`; a longer one is refused by the provider, unsent). `prices`: the
    run's models' (`run_prices`), else the catalog's defaults. Raises `Unpriced` naming a model without a price."""
    if prices is None:
        prices = run_prices(load_catalog(settings), ModelChoice(), settings.prices)
    text = max(p.cost(QUOTE_INPUT_TOKENS + IMAGE_INPUT_TOKENS, OUTPUT_TOKENS_MAX, 0) for p in prices.text)
    text_floor = max(p.cost(FLOOR_INPUT_TOKENS, FLOOR_OUTPUT_TOKENS, 0) for p in prices.text)
    image = max(
        (image_call_bound(prices.image, prices.driver, QUOTE_INPUT_TOKENS // 4, references, o) for o in image_options),
        default=0.0,
    )
    image_floor = min(
        (image_call_bound(prices.image, prices.driver, FLOOR_INPUT_TOKENS, references, o) for o in image_options),
        default=0.0,
    )
    return CostLimit(
        max_usd=max_usd,
        text_call_usd=round(text, 6),
        image_call_usd=round(image, 6),
        text_floor_usd=round(text_floor, 6),
        image_floor_usd=round(image_floor, 6),
    )
