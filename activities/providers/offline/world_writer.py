"""Offline world content: coherent and varied, derived deterministically from each request.

Names, roles and places come from word lists shuffled by a seed taken from the prompt; later
batches see what earlier ones produced and avoid repeating it; posts walk through a storyline
(the batch's narrative arc) beat by beat.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from collections.abc import Callable

from pydantic import BaseModel

from activities.providers.offline.writer import keywords
from models.world import (
    CharacterBatch,
    CharacterBatchRequest,
    CharacterConnection,
    CharacterDetail,
    CharacterDetailRequest,
    CharacterSeed,
    NotableLocation,
    PostBatch,
    PostBatchRequest,
    PostDetail,
    PostDetailRequest,
    PostIdea,
    WorldDescription,
    WorldPromptRequest,
)

SYLLABLES = [
    "vel",
    "ar",
    "ion",
    "tha",
    "mor",
    "ez",
    "kai",
    "lun",
    "dra",
    "sel",
    "qua",
    "ris",
    "ob",
    "en",
    "tir",
]
PALETTES = [
    ("teal", "gold"),
    ("purple", "orange"),
    ("blue", "amber"),
    ("emerald", "silver"),
    ("crimson", "beige"),
]
TECH = [
    "wind-driven engines and brass instruments",
    "early steam, signal towers and printing presses",
    "bioluminescent crafts grown rather than built",
    "salvaged machines from a forgotten age",
    "rune-etched tools and clockwork automatons",
    "solar sails, glass lenses and kite-borne relays",
]
SOCIAL = [
    "a council of guilds whose chairs rotate every season",
    "rival houses bound by an old treaty",
    "a federation of free towns that vote by lantern",
    "a meritocracy led by the most skilled of each craft",
    "a merchant republic with a hereditary archivist",
]
CULTURE = [
    "festivals where every household shows off its finest work",
    "an oral tradition of songs that double as maps",
    "strict etiquette around sharing food and news",
    "a love of riddles, wagers and public debates",
    "quiet rituals of thanks before every journey",
]
GEOGRAPHY = [
    "scattered islands linked by rope bridges and ferries",
    "terraced valleys under a restless sky",
    "a coastline of cliffs, coves and tidal caves",
    "high plateaus cut by deep green canyons",
    "a river delta of canals, reed forests and stilt towns",
]
VISUAL = [
    "{c1} and {c2} palette, ink lines with soft watercolour washes",
    "{c1} skies over {c2} rooftops, bold shapes and long shadows",
    "painterly light, {c1} and {c2} accents, hand-drawn maps in every frame",
]
HISTORY = [
    "founded when the first {k} charted a safe passage, then split by the Long Quarrel",
    "rebuilt after the Great Storm scattered the old towns; the {k} guilds kept order",
    "shaped by a century of trade wars that ended with the Lantern Accord",
]
PLACES = [
    "Spire",
    "Market",
    "Archive",
    "Harbour",
    "Observatory",
    "Bridge",
    "Gardens",
    "Forge",
    "Lighthouse",
    "Library",
]
ADJECTIVES = ["Drifting", "Copper", "Silent", "Windward", "Lantern", "Hollow", "Amber", "Northern", "Sunken"]
FIRST = [
    "Aria",
    "Bram",
    "Cyra",
    "Dax",
    "Elin",
    "Faro",
    "Galen",
    "Hesper",
    "Isolde",
    "Joren",
    "Kael",
    "Lyra",
    "Mira",
    "Nico",
    "Orla",
    "Pell",
    "Quill",
    "Rhea",
    "Soren",
    "Tamsin",
    "Ulric",
    "Vesna",
    "Wren",
    "Yara",
    "Zev",
    "Anselm",
    "Brisa",
    "Corin",
    "Delphine",
    "Esme",
    "Fenn",
    "Greta",
    "Hale",
    "Ines",
    "Jory",
    "Katya",
]
LAST = [
    "Ashdown",
    "Brightwater",
    "Coldharbour",
    "Driftwood",
    "Emberly",
    "Farrow",
    "Greaves",
    "Holloway",
    "Ironside",
    "Juniper",
    "Kestrel",
    "Larkin",
    "Marlowe",
    "Northcott",
    "Oakhart",
    "Penrose",
    "Redfern",
    "Stormvale",
    "Thorne",
    "Underhill",
    "Whitlock",
    "Yarrow",
]
ROLES = [
    "cartographer",
    "harbour master",
    "archivist",
    "street cook",
    "guild envoy",
    "smuggler",
    "healer",
    "schoolteacher",
    "courier",
    "engineer",
    "storyteller",
    "gardener",
    "night-watch captain",
    "merchant",
    "musician",
    "ferry pilot",
    "glassblower",
    "astronomer",
    "tailor",
    "bridge keeper",
    "apprentice",
    "innkeeper",
    "beekeeper",
    "lamplighter",
    "scribe",
    "diver",
    "weaver",
    "clockmaker",
]
TRAITS = [
    "curious",
    "stubborn",
    "generous",
    "sceptical",
    "playful",
    "methodical",
    "brave",
    "anxious",
    "warm",
    "ambitious",
    "patient",
    "witty",
    "secretive",
    "loyal",
    "restless",
    "idealistic",
]
HOBBIES = [
    "old maps",
    "tea blends",
    "knot-tying",
    "star charts",
    "street food",
    "folk songs",
    "rare birds",
    "card games",
    "gossip",
    "kites",
    "clock repair",
    "poetry",
    "tide tables",
    "rope bridges",
]
STYLES = [
    "short sentences, dry humour",
    "warm and chatty, lots of questions",
    "formal, precise, a little proud",
    "poetic, full of weather metaphors",
    "blunt, practical, ends with advice",
    "excitable, many exclamations",
]
RELATIONS = [
    "old friends with a standing wager",
    "rivals for the same commission",
    "mentor and former student",
    "neighbours who trade favours",
    "cousins who rarely agree",
    "partners on a secret project",
]
GARMENTS = ["coat", "scarf", "cloak", "apron", "jacket", "hood"]
SUBJECTS = ["person", "tower", "boat", "bird", "tree", "house", "lighthouse", "flower", "fish", "castle"]
# (title, brief, first-person line, tone) for each beat of a storyline
ARCS = [
    (
        "a rumour about {i} that turns into a discovery at {l}",
        [
            ("Rumour", "hears a rumour about {i}", "Heard something strange about {i} today.", "intrigued"),
            (
                "Preparations",
                "gets ready to look into {i}",
                "Packed a bag. Going to look into this {i} thing.",
                "eager",
            ),
            (
                "Setback",
                "runs into trouble near {l}",
                "The way to {l} is blocked. Of course it is.",
                "frustrated",
            ),
            (
                "Ally",
                "finds unexpected help at {l}",
                "A stranger at {l} offered to help. Didn't see that coming.",
                "grateful",
            ),
            (
                "Discovery",
                "discovers the truth about {i}",
                "Found it. Everything we believed about {i} was wrong.",
                "amazed",
            ),
            ("Choice", "must decide who to tell", "Who do I tell first? This changes things.", "torn"),
            ("Outcome", "shares what was found at {l}", "Showed everyone at {l} what I found.", "proud"),
            (
                "Reflection",
                "looks back on the search",
                "A quiet evening. Thinking about how this started.",
                "thoughtful",
            ),
        ],
    ),
    (
        "a season of change for {i}, from doubt to a public stand at {l}",
        [
            ("Unease", "notices something off about {i}", "Something about {i} feels off lately.", "uneasy"),
            ("Questions", "asks around {l}", "Asked around {l}. Nobody wants to talk.", "curious"),
            (
                "Pushback",
                "is told to leave {i} alone",
                "Got told to drop the {i} question. Not happening.",
                "defiant",
            ),
            (
                "Evidence",
                "collects proof at {l}",
                "Spent the day at {l} writing everything down.",
                "determined",
            ),
            (
                "Stand",
                "speaks up in public about {i}",
                "Spoke at the meeting about {i}. Hands still shaking.",
                "nervous",
            ),
            ("Response", "reads the replies", "So many of you wrote back. Thank you.", "moved"),
            ("Change", "sees {l} start to change", "{l} looks different this week. Better.", "hopeful"),
            ("Quiet", "enjoys a calmer day", "Nothing to report today, and that is wonderful.", "content"),
        ],
    ),
]
LOCATION_NOTES = [
    "the {p} where the {k} meet at dusk",
    "the oldest {p}, rebuilt three times",
    "a busy {p} that never fully sleeps",
    "a {p} the {k} argue about",
    "a quiet {p} few visitors find",
]
POST_TYPES = ["observation", "question to followers", "photo diary", "announcement", "short story", "tip"]


def _rng(*parts: str) -> random.Random:
    return random.Random(int(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16], 16))


def _world_name(rng: random.Random) -> str:
    return "".join(rng.sample(SYLLABLES, 3)).capitalize()


def write_world(req: WorldPromptRequest) -> WorldDescription:
    rng = _rng(req.prompt)
    words = keywords(req.prompt)
    k = words[-1]
    c1, c2 = rng.choice(PALETTES)
    places = rng.sample(PLACES, 4)
    adjectives = rng.sample(ADJECTIVES, 4)
    name = _world_name(rng)
    locations = [
        NotableLocation(name=f"The {a} {p}", description=template.format(p=p.lower(), k=k))
        for a, p, template in zip(adjectives, places, rng.sample(LOCATION_NOTES, 4), strict=True)
    ]
    return WorldDescription(
        name=name,
        description=f"{name} is a world of {req.prompt.strip().rstrip('.').lower()}, "
        f"where {rng.choice(SOCIAL)} keeps an uneasy peace.",
        theme=f"{' '.join(words[:2]).capitalize()} and the {k} who shape it",
        technology_level=rng.choice(TECH),
        social_structure=rng.choice(SOCIAL),
        culture=rng.choice(CULTURE).format(k=k),
        geography=rng.choice(GEOGRAPHY),
        visual_style=rng.choice(VISUAL).format(c1=c1, c2=c2),
        history=rng.choice(HISTORY).format(k=k),
        notable_locations=locations,
    )


def _world_words(world_text: str) -> list[str]:
    return keywords(world_text.split("\n", 2)[1] if "\n" in world_text else world_text)


def _locations(world_text: str) -> list[str]:
    return [line[2:].split(":")[0] for line in world_text.splitlines() if line.startswith("- ")] or ["the square"]


def write_character_batch(req: CharacterBatchRequest) -> CharacterBatch:
    rng = _rng(req.world_text, "characters", str(req.batch_index))
    used_first = {c.display_name.split()[0] for c in req.previous}
    used_last = {c.display_name.split()[-1] for c in req.previous}
    lasts = [n for n in rng.sample(LAST, len(LAST)) if n not in used_last] or rng.sample(LAST, len(LAST))
    used_roles = {c.role_in_world.split()[-1] for c in req.previous}
    firsts = [f for f in rng.sample(FIRST, len(FIRST)) if f not in used_first] or rng.sample(FIRST, len(FIRST))
    roles = [r for r in rng.sample(ROLES, len(ROLES)) if r not in used_roles] or rng.sample(ROLES, len(ROLES))
    world_words = _world_words(req.world_text)[:6]
    low = max(1, math.ceil(req.max_posts * 0.6)) if req.max_posts else 0
    characters = []
    for i in range(req.count):
        first, role = firsts[i % len(firsts)], roles[i % len(roles)]
        characters.append(
            CharacterSeed(
                username=f"{first.lower()}_{role.split()[-1].replace('-', '_')}",
                display_name=f"{first} {lasts[i % len(lasts)]}",
                role_in_world=role.capitalize(),
                personality_traits=[t.capitalize() for t in rng.sample(TRAITS, 3)],
                interests=[rng.choice(world_words), *rng.sample(HOBBIES, 2)],
                posts_count=rng.randint(low, req.max_posts) if req.max_posts else 0,
            )
        )
    connections = [
        CharacterConnection(character1=a.username, character2=b.username, relationship=rng.choice(RELATIONS))
        for a, b in itertools.pairwise(characters)
    ]
    if req.previous:
        connections.append(
            CharacterConnection(
                character1=characters[0].username,
                character2=rng.choice(req.previous).username,
                relationship=rng.choice(RELATIONS),
            )
        )
    roles_text = ", ".join(c.role_in_world.lower() for c in characters)
    return CharacterBatch(
        characters=characters,
        world_interpretation=f"A place where {rng.choice(_world_words(req.world_text))} shapes every livelihood.",
        character_connections=connections,
        generated_characters_description=f"Batch {req.batch_index + 1}: {roles_text}"
        + (f", joining {len(req.previous)} earlier characters." if req.previous else "."),
    )


def write_character(req: CharacterDetailRequest) -> CharacterDetail:
    seed = req.seed
    rng = _rng(req.world_text, seed.username)
    place = rng.choice(_locations(req.world_text))
    colour = rng.choice(["red", "blue", "green", "gold", "purple", "teal", "orange"])
    garment = rng.choice(GARMENTS)
    traits = ", ".join(t.lower() for t in seed.personality_traits)
    return CharacterDetail(
        username=seed.username,
        display_name=seed.display_name,
        bio=f"{seed.role_in_world} at {place}. Into {' & '.join(seed.interests[:2])}. Opinions my own.",
        appearance=f"Weathered hands, a {colour} {garment} and a habit of squinting at the horizon.",
        personality=f"{traits.capitalize()}; known around {place} for it.",
        avatar_description=f"portrait of a person in a {colour} {garment}, {seed.role_in_world.lower()}, near {place}",
        interests=[*seed.interests, rng.choice(HOBBIES)],
        speaking_style=rng.choice(STYLES),
    )


def write_post_batch(req: PostBatchRequest) -> PostBatch:
    who = req.character
    rng = _rng(req.world_text, who.username, "arc")
    template, beats = rng.choice(ARCS)
    interest, place = rng.choice(who.interests[1:] or who.interests), rng.choice(_locations(req.world_text))
    arc = req.narrative_arc or template.format(i=interest, l=place)
    start = len(req.previous)
    posts = []
    for offset in range(req.count):
        number = start + offset + 1
        title, brief, _, tone = beats[(number - 1) % len(beats)]
        posts.append(
            PostIdea(
                topic=f"{title}: {interest}",
                brief=f"{who.display_name.split()[0]} {brief.format(i=interest, l=place)}",
                emotional_tone=tone,
                post_type=rng.choice(POST_TYPES),
                has_image=_rng(who.username, str(number)).random() < 0.6,
            )
        )
    return PostBatch(
        posts=posts,
        narrative_arc=arc,
        character_development=f"{who.display_name} goes from {posts[0].emotional_tone} to {posts[-1].emotional_tone}",
        recurring_themes=[interest, place, rng.choice(HOBBIES)],
    )


def write_post(req: PostDetailRequest) -> PostDetail:
    who, idea = req.character, req.idea
    rng = _rng(req.world_text, who.username, str(req.number))
    subject = rng.choice(SUBJECTS)
    colour = rng.choice(["orange", "blue", "purple", "green", "gold", "red", "teal"])
    interest = idea.topic.split(": ", 1)[-1]
    world_name = req.world_text.split("\n", 1)[0].removeprefix("World: ")
    tags = ["".join(w.capitalize() for w in t.split()) for t in (interest, idea.topic.split(":")[0], world_name)]
    line = next((b[2] for _, beats in ARCS for b in beats if idea.topic.startswith(b[0] + ":")), idea.brief)
    place = next((p for p in _locations(req.world_text) if p in idea.brief), "the square")
    closing = rng.choice(["Anyone else seen this?", "More soon.", "Thoughts?", "Wish me luck.", "Stay tuned.", ""])
    content = f"{line.format(i=interest, l=place)} {closing}".strip()
    return PostDetail(
        content=content,
        image_prompt=f"a {colour} {subject} and a person, {idea.topic.lower()}, {idea.emotional_tone} mood",
        hashtags=tags,
        mood=idea.emotional_tone,
        context=f"Post {req.number} of the storyline: {req.narrative_arc}",
    )


WRITERS: dict[type[BaseModel], Callable[..., BaseModel]] = {
    WorldDescription: write_world,
    CharacterBatch: write_character_batch,
    CharacterDetail: write_character,
    PostBatch: write_post_batch,
    PostDetail: write_post,
}
