"""Addresses come from one builder (`kit.urls.Urls`): the API's links, events, webhooks, the CLI's and the
Studio's templates, which write no path of their own. The API imports neither the Studio nor a worker's
internals (`starter.app` puts the two together). No server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from kit.urls import Urls
from models.pipelines import PIPELINES
from models.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "starter" / "studio" / "templates"
LITERAL_PATH = re.compile(r"""(?:href|src|action|data-[a-z-]+)=["']/""")  # an attribute holding a path of its own


def settings() -> Settings:
    return Settings(LLM_API_KEY=None, ATELIER_API_PUBLIC_URL="https://atelier.example/", TEMPORAL_UI_URL="http://ui")


def test_the_api_hands_out_absolute_links_and_the_studio_paths_on_its_site():
    urls, run = Urls(settings()), "acme.image-1 a/b"
    made = urls.run_urls(run)
    assert made.run == "https://atelier.example/v1/runs/acme.image-1%20a%2Fb"
    assert (made.events, made.result, made.cancel) == (made.run + "/events", made.run + "/result", made.run + "/cancel")
    assert made.temporal_ui == "http://ui/namespaces/default/workflows/acme.image-1%20a%2Fb"
    assert (
        urls.messages("acme.conversation-1") == "https://atelier.example/v1/conversations/acme.conversation-1/messages"
    )
    assert urls.studio_page("image", "x") == "https://atelier.example/runs/x"
    assert urls.studio_page("conversation", "c") == "https://atelier.example/conversations/c"
    assert urls.studio_page("knowledge", "k") == "https://atelier.example/knowledge"
    site = Urls()
    assert site.artifact("runs/a b/iteration-01.png", 192) == "/v1/artifacts/runs/a%20b/iteration-01.png?width=192"
    assert site.run("r", "events", after=0) == "/v1/runs/r/events?after=0"
    assert (
        site.runs_page(pipeline="", state="", q="a lighthouse", part="rows")
        == "/?pipeline=&state=&q=a%20lighthouse&part=rows"
    )
    assert site.signin_page("/runs/x?y=1") == "/signin?next=%2Fruns%2Fx%3Fy%3D1"
    assert site.new_page("image", "acme.image-1") == "/new/image?start_from=acme.image-1"
    assert site.create(PIPELINES["meme"]) == "/v1/memes"
    assert site.document_page("doc", "3") == "/knowledge/doc#chunk-3"


def test_artifacts_in_results_and_events_get_their_urls():
    linked = Urls(settings()).with_artifact_links(
        {"image": {"key": "runs/r/a.png", "sha256": "0"}, "posts": [{"key": "k"}]}
    )
    assert linked["image"]["url"] == "https://atelier.example/v1/artifacts/runs/r/a.png"
    assert linked["posts"][0]["url"] == "https://atelier.example/v1/artifacts/k"


def test_templates_take_every_path_from_the_builder():
    for template in TEMPLATES.glob("*.html"):
        found = [line for line in template.read_text().splitlines() if LITERAL_PATH.search(line)]
        assert not found, f"{template.name} writes its own paths: {found}"


def loaded_by(module: str) -> list[str]:
    """The Studio's and the workers' modules that importing `module` loads, in a fresh interpreter."""
    probe = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [name for name in json.loads(done.stdout) if name.split(".")[0] == "workers" or "studio" in name]


def test_the_api_imports_neither_the_studio_nor_the_workers():
    assert loaded_by("starter.api.app") == []
    assert [name for name in loaded_by("starter.app") if name.startswith("workers")] == []
