"""index.html for a world: banner, characters with avatars, their posts with images and hashtags.

Links are relative to `worlds/<world_id>/`, so the page opens from disk wherever the folder is.
"""

from __future__ import annotations

import html
import json

from kit.storage import ArtifactStore, load
from models.artifacts import ArtifactRef
from models.world import WorldDescription, WorldManifest

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f1ec;color:#222}
header{position:relative;color:#fff;background:#345 center/cover;padding:4rem 2rem 2rem}
header img.icon{width:72px;height:72px;border-radius:16px;float:left;margin-right:1rem}
header h1{margin:0;font-size:2.4rem;text-shadow:0 2px 6px #000}header p{text-shadow:0 1px 4px #000;max-width:60rem}
main{padding:1rem 2rem;display:grid;gap:1.5rem}
section{background:#fff;border-radius:12px;padding:1rem 1.5rem;box-shadow:0 1px 4px #0002}
section h2{display:flex;align-items:center;gap:1rem;margin:.2rem 0}
section h2 img{width:64px;height:64px;border-radius:50%;object-fit:cover}
.posts{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:1rem}
article{border:1px solid #ddd;border-radius:8px;padding:.6rem;font-size:.92rem}
article img{width:100%;border-radius:6px}.tags{color:#2a6ebb}.muted{color:#777;font-size:.85rem}
.failures{background:#fff3f3}
"""


def _rel(ref: ArtifactRef | None, world_id: str) -> str:
    prefix = f"worlds/{world_id}/"
    return html.escape(ref.key.removeprefix(prefix)) if ref else ""


def _consistency(manifest: WorldManifest, username: str) -> str:
    value = manifest.consistency.get(username)
    return f"<p class='muted'>posts fit the persona: {value:.2f}</p>" if value is not None else ""


async def render_gallery(manifest: WorldManifest, store: ArtifactStore) -> str:
    e, wid = html.escape, manifest.world_id
    world = WorldDescription.model_validate_json(await load(store, manifest.world))
    banner = f" style=\"background-image:url('{_rel(manifest.background, wid)}')\"" if manifest.background else ""
    icon = f'<img class="icon" src="{_rel(manifest.icon, wid)}" alt="icon">' if manifest.icon else ""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(world.name)}</title>",
        f"<style>{STYLE}</style></head><body><header{banner}>{icon}<h1>{e(world.name)}</h1>",
        f"<p>{e(world.description)}</p><p class='muted'>{e(world.visual_style)}</p></header><main>",
    ]
    for character in manifest.characters:
        avatar = f'<img src="{_rel(character.avatar, wid)}" alt="avatar">' if character.avatar else ""
        parts.append(
            f"<section id='{e(character.username)}'><h2>{avatar}<span>{e(character.display_name)} "
            f"<span class='muted'>@{e(character.username)} · {e(character.role_in_world)}</span></span></h2>"
            f"{_consistency(manifest, character.username)}"
            "<div class='posts'>"
        )
        for post in character.posts:
            detail = json.loads(await load(store, post.post))
            image = f'<img src="{_rel(post.image, wid)}" alt="">' if post.image else ""
            if post.image_refused:
                image = f"<p class='refused'>picture refused by the provider: {e(post.image_refused)}</p>"
            tags = " ".join(f"#{e(t)}" for t in detail.get("hashtags", []))
            parts.append(
                f"<article>{image}<p>{e(detail['content'])}</p><p class='tags'>{tags}</p>"
                f"<p class='muted'>#{post.number} · {e(detail.get('mood', ''))}</p></article>"
            )
        parts.append("</div></section>")
    if manifest.failures:
        items = "".join(f"<li>{e(f.step)}: {e(f.error)}</li>" for f in manifest.failures)
        parts.append(f"<section class='failures'><h2>Failures</h2><ul>{items}</ul></section>")
    parts.append(f"<p class='muted'>{e(manifest.state.value)} · {manifest.calls.llm_calls} LLM calls, ")
    parts.append(f"{manifest.calls.image_calls} image calls · {e(manifest.usage.summary())}</p></main></body></html>")
    return "".join(parts)
