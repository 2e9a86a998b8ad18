"""Draws docs/images/dialogue-life.svg: the life of a dialogue.

The docs build runs this (docs/conf.py) and the test suite checks that the
committed image is what it draws and that every DialogueStatus is in it, so
the diagram cannot drift from the code. No dependency beyond Python.

    python docs/diagrams/dialogue_life.py   # rewrites the image
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

OUTPUT = Path(__file__).resolve().parent.parent / "images" / "dialogue-life.svg"
WIDTH, HEIGHT = 940, 330

#: state -> (x, y, width, height, style, notes under the box)
STATES = {
    "OPENING": (60, 110, 130, 40, "state", ()),
    "OPEN": (300, 110, 130, 40, "state", ()),
    "CLOSING": (540, 110, 130, 40, "state", ()),
    "CLOSED": (780, 110, 130, 40, "end", ()),
    "CONFLICT": (10, 220, 100, 36, "bad", ("another agent", "holds the recipient")),
    "REFUSED": (120, 220, 100, 36, "bad", ("refused by", "the platform")),
    "ERROR": (230, 220, 100, 36, "bad", ("retries", "used up")),
}

#: Straight arrows along the main line: (from, to, label).
MAIN_LINE = (("OPENING", "OPEN", "opened"), ("OPEN", "CLOSING", "close()"),
             ("CLOSING", "CLOSED", "closed"))

DESCRIPTION = (
    "open_dialogue() creates a dialogue in OPENING. When the platform opens it, it is OPEN; "
    "close() makes it CLOSING, and once the platform has closed it, CLOSED. From OPENING it "
    "can instead end in CONFLICT (another agent holds the recipient), REFUSED (the platform "
    "refused) or ERROR (retries used up). A dialogue the recipient starts arrives OPEN. The "
    "recipient, the platform or a timeout can close an OPEN dialogue directly."
)

STYLE = """\
      .state { fill: #eef4fb; stroke: #2c5d8f; stroke-width: 1.5; }
      .end { fill: #f4f4f4; stroke: #555; stroke-width: 1.5; }
      .bad { fill: #fbeeee; stroke: #a33; stroke-width: 1.5; }
      .name { font-weight: bold; text-anchor: middle; fill: #1a1a1a; }
      .edge { fill: none; stroke: #444; stroke-width: 1.4; }
      .label { fill: #333; font-size: 12px; }
      .mid { text-anchor: middle; }"""


def _box(name: str) -> list[str]:
    x, y, width, height, style, notes = STATES[name]
    centre = x + width // 2
    lines = [f'  <rect class="{style}" x="{x}" y="{y}" width="{width}" height="{height}" rx="8"/>',
             f'  <text class="name" x="{centre}" y="{y + height // 2 + 5}">{name}</text>']
    for index, note in enumerate(notes):
        lines.append(f'  <text class="label mid" x="{centre}" y="{y + height + 20 + 15 * index}">'
                     f"{escape(note)}</text>")
    return lines


def _arrow(x1: int, y1: int, x2: int, y2: int) -> str:
    return (f'  <line class="edge" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" '
            'marker-end="url(#arrow)"/>')


def draw() -> str:
    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" '
        'font-size="13">',
        "  <title>The life of a dialogue</title>",
        f"  <desc>{escape(DESCRIPTION)}</desc>",
        "  <defs>",
        '    <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse">',
        '      <path d="M0,0 L10,5 L0,10 z" fill="#444"/>',
        "    </marker>",
        "    <style>", STYLE, "    </style>",
        "  </defs>",
        f'  <rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    # The agent opens: a start dot into OPENING.
    ox, oy, _, oh, *_ = STATES["OPENING"]
    lines += [f'  <circle cx="22" cy="{oy + oh // 2}" r="7" fill="#444"/>',
              _arrow(29, oy + oh // 2, ox - 2, oy + oh // 2)]
    for source, target, label in MAIN_LINE:
        sx, sy, sw, sh, *_ = STATES[source]
        tx, *_ = STATES[target]
        middle = sy + sh // 2
        lines += [_arrow(sx + sw, middle, tx - 2, middle),
                  f'  <text class="label mid" x="{(sx + sw + tx) // 2}" y="{middle - 8}">'
                  f"{escape(label)}</text>"]
    for name in STATES:
        lines += _box(name)
    # OPEN -> CLOSED directly: closed by the recipient, the platform or a timeout.
    px, py, pw, *_ = STATES["OPEN"]
    cx, cy, cw, *_ = STATES["CLOSED"]
    start, end = px + pw // 2, cx + cw // 2
    lines += [f'  <path class="edge" d="M{start},{py} C{start},35 {end},35 {end},{cy - 2}" '
              'marker-end="url(#arrow)"/>',
              f'  <text class="label mid" x="{(start + end) // 2}" y="70">closed by the '
              "recipient, the platform</text>",
              f'  <text class="label mid" x="{(start + end) // 2}" y="86">or a platform timeout '
              "(dialogue.closed)</text>"]
    # The recipient writes first: a start dot straight into OPEN.
    lines += ['  <circle cx="400" cy="300" r="7" fill="#444"/>',
              _arrow(400, 293, 400, py + 42),
              '  <text class="label" x="412" y="250">the recipient writes first</text>',
              '  <text class="label" x="412" y="266">(dialogue.opened, initiatedBy '
              "RECIPIENT)</text>"]
    # OPENING can end without opening.
    for offset, name in ((-15, "CONFLICT"), (0, "REFUSED"), (15, "ERROR")):
        bx, by, bw, *_ = STATES[name]
        lines.append(f'  <path class="edge" d="M{ox + 65 + offset},{oy + oh} '
                     f'L{bx + bw // 2 + (offset * 2)},{by - 2}" marker-end="url(#arrow)"/>')
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def write() -> Path:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(draw(), encoding="utf-8")
    return OUTPUT


if __name__ == "__main__":
    print(write())
