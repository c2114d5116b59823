"""Names, notes and messages written by people, shown as text and never as markup.

Streamlit renders markdown in titles, captions, alerts and image captions: a run named
`![x](http://elsewhere/p.png)` would make every viewer's browser fetch that address, and a
backtick would break out of inline code. `md_text` escapes every markdown (and Streamlit
directive) character with a backslash, so the text reads exactly as typed.
"""

from __future__ import annotations

import re

# what can make markup mid-line: links and images, code, emphasis, tables, HTML and
# autolinks, LaTeX, Streamlit's :directives:
_SPECIAL = re.compile(r"([\\`*_{}\[\]()!|<>~$:])")


def md_text(value: object) -> str:
    """`value` as a markdown string that renders as its own plain text, on one line."""
    text = " ".join(str(value).splitlines())
    return _SPECIAL.sub(r"\\\1", text)


def md_lines(value: object) -> str:
    """Like `md_text`, keeping line breaks (for notes and multi-line messages)."""
    return "  \n".join(md_text(line) for line in str(value).splitlines())
