"""A tiny 5x7 bitmap font, to write labels into pictures without FreeType (this PyAV has no drawtext).

Printable ASCII only; other characters are folded to their plain letter when there is one
(é -> e) or shown as "?". Each glyph is five columns of seven bits, the top row in the lowest
bit: the classic 5x7 LCD font.
"""

from __future__ import annotations

import unicodedata

GLYPH_WIDTH = 5
GLYPH_HEIGHT = 7
ADVANCE = GLYPH_WIDTH + 1
"""Columns per character, the gap included."""

_COLUMNS = bytes.fromhex(
    "0000000000"
    "00005f0000"
    "0007000700"
    "147f147f14"
    "242a7f2a12"
    "2313086462"
    "3649552250"
    "0005030000"
    "001c224100"
    "0041221c00"
    "082a1c2a08"
    "08083e0808"
    "0050300000"
    "0808080808"
    "0060600000"
    "2010080402"
    "3e5149453e"
    "00427f4000"
    "4261514946"
    "2141454b31"
    "1814127f10"
    "2745454539"
    "3c4a494930"
    "0171090503"
    "3649494936"
    "064949291e"
    "0036360000"
    "0056360000"
    "0008142241"
    "1414141414"
    "4122140800"
    "0201510906"
    "324979413e"
    "7e1111117e"
    "7f49494936"
    "3e41414122"
    "7f4141221c"
    "7f49494941"
    "7f09090101"
    "3e41415132"
    "7f0808087f"
    "00417f4100"
    "2040413f01"
    "7f08142241"
    "7f40404040"
    "7f0204027f"
    "7f0408107f"
    "3e4141413e"
    "7f09090906"
    "3e4151215e"
    "7f09192946"
    "4649494931"
    "01017f0101"
    "3f4040403f"
    "1f2040201f"
    "7f2018207f"
    "6314081463"
    "0304780403"
    "6151494543"
    "00007f4141"
    "0204081020"
    "41417f0000"
    "0402010204"
    "4040404040"
    "0001020400"
    "2054545478"
    "7f48444438"
    "3844444420"
    "384444487f"
    "3854545418"
    "087e090102"
    "081454543c"
    "7f08040478"
    "00447d4000"
    "2040443d00"
    "007f102844"
    "00417f4000"
    "7c04180478"
    "7c08040478"
    "3844444438"
    "7c14141408"
    "081414187c"
    "7c08040408"
    "4854545420"
    "043f444020"
    "3c4040207c"
    "1c2040201c"
    "3c4030403c"
    "4428102844"
    "0c5050503c"
    "4464544c44"
    "0008364100"
    "00007f0000"
    "0041360800"
    "0201020402"
)


def _glyph(char: str) -> bytes:
    code = ord(char)
    if not 32 <= code < 127:
        code = ord("?")
    start = (code - 32) * GLYPH_WIDTH
    return _COLUMNS[start : start + GLYPH_WIDTH]


def printable(text: str) -> str:
    """The text as this font can show it: accents dropped, anything else outside ASCII as "?"."""
    plain = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in plain if not unicodedata.combining(c))
    return "".join(c if 32 <= ord(c) < 127 else ("?" if not c.isspace() else " ") for c in folded)


def text_width(text: str, scale: int = 1) -> int:
    """Pixels the text takes (the gap after the last character left out)."""
    return max(0, len(text) * ADVANCE - 1) * scale


def fit_text(text: str, width: int, scale: int = 1) -> str:
    """The text, cut with "..." to fit in ``width`` pixels."""
    shown = printable(text)
    if text_width(shown, scale) <= width:
        return shown
    room = max(0, (width // scale + 1) // ADVANCE - 3)
    return shown[:room].rstrip() + "..."


def draw_text(
    plane: bytearray, stride: int, x: int, y: int, text: str, *, value: int, scale: int = 1
) -> None:
    """Write ``text`` into one 8-bit picture plane (a luma plane): each lit pixel set to ``value``.

    The caller makes sure the text fits: ``text_width(text, scale)`` by ``GLYPH_HEIGHT * scale``
    pixels from (x, y).
    """
    for index, char in enumerate(text):
        left = x + index * ADVANCE * scale
        for column, bits in enumerate(_glyph(char)):
            for row in range(GLYPH_HEIGHT):
                if not bits >> row & 1:
                    continue
                top = y + row * scale
                for dy in range(scale):
                    start = (top + dy) * stride + left + column * scale
                    plane[start : start + scale] = bytes([value]) * scale
