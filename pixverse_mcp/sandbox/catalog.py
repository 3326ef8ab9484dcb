"""The sandbox's style catalog: each style is a real FFmpeg filter chain.

A chain is a sequence of ``(filter_name, args)`` pairs that :mod:`.render` links into an
``av.filter.Graph`` between a buffer source and a buffer sink. ``{seed}`` inside ``args`` is
replaced by the job's seed, so the seed changes the grain of the styles that have grain.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

FilterStep = tuple[str, str]

# Every chain ends like this: H.264 in yuv420p needs even dimensions.
FINISH: tuple[FilterStep, ...] = (
    ("scale", "trunc(iw/2)*2:trunc(ih/2)*2"),
    ("format", "yuv420p"),
)

# Posterize through a lookup table (this FFmpeg build has no `posterize`/`eq` filter).
_POSTER = "trunc(val/48)*48+24"


@dataclass(frozen=True)
class Style:
    """One restyle preset: what the list endpoint shows, its words, and how it is rendered."""

    restyle_id: int
    name: str
    prompt: str
    keywords: tuple[str, ...]
    chain: tuple[FilterStep, ...]
    marker: str = ""  # the web API's badge: "new" on recently added styles

    def steps(self, seed: int) -> list[FilterStep]:
        """The full filter chain for ``seed``, including the even-size/yuv420p finish."""
        return [(name, args.replace("{seed}", str(seed))) for name, args in (*self.chain, *FINISH)]


STYLES: tuple[Style, ...] = (
    Style(
        1001,
        "Film Noir",
        "A black-and-white 1940s film noir look with deep shadows, hard contrast and a dark vignette.",
        ("noir", "black", "white", "monochrome", "grayscale", "greyscale", "shadow", "detective"),
        (("hue", "s=0"), ("curves", "preset=strong_contrast"), ("vignette", "angle=PI/4")),
    ),
    Style(
        1002,
        "Sepia Memories",
        "An old photograph in warm sepia tones, softly faded like a century-old print.",
        ("sepia", "old", "antique", "vintage", "photograph", "faded", "nostalgic", "brown"),
        (
            ("colorchannelmixer", ".393:.769:.189:0:.349:.686:.168:0:.272:.534:.131"),
            ("vignette", "angle=PI/5"),
        ),
    ),
    Style(
        1003,
        "Pencil Sketch",
        "A hand-drawn pencil sketch: dark outlines on white paper, no color.",
        ("sketch", "pencil", "drawing", "drawn", "line", "outline", "charcoal", "paper"),
        (("edgedetect", "low=0.08:high=0.25"), ("negate", ""), ("hue", "s=0")),
    ),
    Style(
        1004,
        "Pixel Art",
        "A retro 8-bit video game look made of big square pixels and punchy colors.",
        ("pixel", "pixels", "8-bit", "8bit", "retro", "game", "arcade", "blocky", "minecraft"),
        (("pixelize", "w=8:h=8"), ("lutrgb", f"r='{_POSTER}':g='{_POSTER}':b='{_POSTER}'")),
    ),
    Style(
        1005,
        "Anime Cel",
        "A bright anime cel-shaded look with flat color bands, crisp edges and vivid saturation.",
        ("anime", "manga", "cartoon", "cel", "ghibli", "toon", "comic", "animated"),
        (
            ("lutrgb", "r='trunc(val/64)*64+32':g='trunc(val/64)*64+32':b='trunc(val/64)*64+32'"),
            ("hue", "s=1.6"),
            ("unsharp", "5:5:1.0"),
        ),
    ),
    Style(
        1006,
        "Neon Night",
        "A glowing neon cyberpunk night with inverted, electric, oversaturated colors.",
        ("neon", "cyberpunk", "glow", "electric", "synthwave", "night", "futuristic", "vaporwave"),
        (("negate", ""), ("hue", "h=90:s=2.5"), ("curves", "preset=increase_contrast")),
    ),
    Style(
        1007,
        "Warm Film",
        "A warm analog film look with golden highlights, visible grain and a gentle vignette.",
        ("warm", "film", "analog", "golden", "grain", "kodak", "sunset", "summer"),
        (
            ("colorbalance", "rs=.15:gs=.05:bs=-.15:rm=.1:bm=-.1:rh=.05:bh=-.05"),
            ("noise", "alls=14:allf=t:all_seed={seed}"),
            ("vignette", "angle=PI/5"),
        ),
    ),
    Style(
        1008,
        "Cool Cinematic",
        "A cool blockbuster color grade: teal shadows, crisp contrast and a blue cinematic mood.",
        ("cool", "cinematic", "blue", "teal", "blockbuster", "movie", "cold", "winter"),
        (
            ("colorbalance", "rs=-.1:bs=.2:rm=-.05:bm=.12:rh=-.05:bh=.08"),
            ("curves", "preset=medium_contrast"),
        ),
    ),
    Style(
        1009,
        "Thermal Vision",
        "A thermal camera view where brightness becomes a false-color heat map.",
        ("thermal", "heat", "infrared", "predator", "false-color", "heatmap"),
        (("hue", "s=0"), ("pseudocolor", "preset=turbo")),
        marker="new",
    ),
    Style(
        1010,
        "Dream Glow",
        "A soft dreamy glow with blurred highlights and pastel, lifted colors.",
        ("dream", "dreamy", "soft", "glow", "pastel", "fairy", "ethereal", "blur"),
        (("gblur", "sigma=2.5"), ("curves", "preset=lighter"), ("hue", "s=0.7")),
        marker="new",
    ),
)

_BY_ID = {style.restyle_id: style for style in STYLES}


def get_style(restyle_id: int) -> Style | None:
    """The style with this id, or None."""
    return _BY_ID.get(restyle_id)


def style_for_prompt(prompt: str) -> Style:
    """Pick the style a free-text prompt asks for.

    The style with most keyword hits wins (catalog order breaks ties); a prompt with no hit
    gets a style derived from a hash of the prompt, so the same prompt always looks the same.
    """
    words = set(re.findall(r"[a-z0-9][a-z0-9-]*", prompt.lower()))
    best, best_hits = None, 0
    for style in STYLES:
        hits = sum(1 for keyword in style.keywords if keyword in words)
        if hits > best_hits:
            best, best_hits = style, hits
    if best is not None:
        return best
    digest = hashlib.sha256(prompt.strip().lower().encode()).digest()
    return STYLES[int.from_bytes(digest[:4], "big") % len(STYLES)]
