"""All session state in one place: namespaced widget keys, their defaults, and the URL.

Widget keys are ``<tab>.<name>``; the lines and settings a user chose are mirrored into the page's
query parameters, so a view can be shared as a link and reopened. A link is read before any widget is
drawn, and each value in it is checked against its widget's type and range: what does not fit is
ignored (the default is used) and named in one notice.
"""

from __future__ import annotations

import math

import streamlit as st

DEFAULTS = {
    "tab": "Lines",
    "settings.checkpoint": "poetry",
    "settings.method": "beam",
    "settings.temperature": 0.7,
    "settings.top_p": 0.9,
    "settings.width": 4,
    "settings.max_len": 32,
    "settings.seed": 0,
    "settings.encode": "mean",
    "settings.syllables": 8,
    "lines.text": "the sea is calm tonight\ni wandered lonely as a cloud\nbecause i could not stop for death",
    "interp.a": "the sea is calm tonight",
    "interp.b": "i wandered lonely as a cloud",
    "interp.steps": 10,
    "interp.method": "slerp",
    "interp.t": 0.5,
    "interp.distinct": False,
    "neigh.source": "the sea is calm tonight",
    "neigh.noise": 0.5,
    "neigh.flip": 0.1,
    "neigh.count": 16,
    "neigh.by_std": False,
    "neigh.distinct": False,
    "sample.count": 12,
    "sample.temperature": 0.8,
    "sample.line": "my heart leaps up when i behold",
    "sample.fixed": 0,
    "dir.view": "Steer",
    "dir.line": "the sea is calm tonight",
    "dir.towards": "words",
    "dir.word": "night",
    "dir.set_a": "",
    "dir.set_b": "",
    "dir.amount": 0.0,
    "dir.a": "the day is bright",
    "dir.b": "the night is dark",
    "dir.c": "the sun is warm",
    "dir.keep_norm": False,
    "dir.dims": 8,
    "map.colour": "region",
    "map.search": "",
    "map.regex": False,
    "map.labels": True,
    "map.region": -1,
}
SHARED = [k for k in DEFAULTS if k.split(".")[0] in ("tab", "settings", "lines", "interp", "neigh", "sample", "dir",
                                                       "map")]
PAGE = [k for k in DEFAULTS if not k.startswith("settings.")]  # the keys of the tabs' and the map's widgets
MAX_LINES = 200  # lines encoded from the text area at once
MAX_CHARS = 1000  # characters kept of one line
MAX_TEXT = MAX_LINES * (MAX_CHARS + 1)  # characters a link may carry in one text field
# The range of every numeric widget: the widgets are drawn with it, and a link is held to it.
RANGES = {
    "settings.temperature": (0.05, 2.0),
    "settings.top_p": (0.05, 1.0),
    "settings.width": (1, 12),
    "settings.max_len": (4, 64),
    "settings.seed": (0, 2**31 - 1),
    "settings.syllables": (1, 20),
    "interp.steps": (1, 50),
    "interp.t": (0.0, 1.0),
    "neigh.noise": (0.0, 2.0),
    "neigh.flip": (0.0, 0.5),
    "neigh.count": (1, 64),
    "sample.count": (1, 64),
    "sample.temperature": (0.05, 2.0),
    "sample.fixed": (0, 16),
    "dir.amount": (-3.0, 3.0),
    "dir.dims": (1, 1024),  # at most the code's size, which the tab checks
    "map.region": (-1, 1023),  # -1 is none; an index past the map's regions is none too
}
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse(key: str, raw: str, choices: dict) -> object:
    """The value of ``key`` that a link's ``raw`` text asks for, or a ``ValueError`` saying why it
    cannot be used: the wrong type, NaN or out of range, not one of the options, too long."""
    default = DEFAULTS[key]
    if isinstance(default, bool):
        if raw.lower() not in BOOLEANS:
            raise ValueError("not true or false")
        return BOOLEANS[raw.lower()]
    if isinstance(default, (int, float)):
        try:
            value = type(default)(raw)
        except ValueError:
            raise ValueError(f"not {'a whole number' if isinstance(default, int) else 'a number'}") from None
        low, high = RANGES[key]
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"outside {low}-{high}")
        return value
    if key in choices and raw not in choices[key]:
        raise ValueError("not one of the options")
    if len(raw) > MAX_TEXT:
        raise ValueError(f"longer than {MAX_TEXT:,} characters")
    return raw


def init(choices: dict) -> None:
    """Give every key its value for this run: on a session's first run from the URL when it carries
    a value that fits (``choices``: the options of each choice key), else the default; afterwards
    the value it had. Only the open tab is drawn, and Streamlit forgets the value of a widget that a
    run does not draw, so every key is set again each run."""
    if not st.session_state.get("_initialised"):
        params, ignored = st.query_params, []
        for key in params:
            if key not in DEFAULTS:
                ignored.append(f"{_quoted(key)} (not a setting)")
        for key, default in DEFAULTS.items():
            st.session_state[key] = default
            if key in params:
                try:
                    st.session_state[key] = parse(key, params[key], choices)
                except ValueError as err:
                    ignored.append(f"{key} = {_quoted(params[key])} ({err})")
        st.session_state["_ignored"] = ignored  # shown once, by ``notice``
        st.session_state["walk"] = []  # breadcrumbs: lines the user moved to, oldest first
        st.session_state["map.picked"] = []  # corpus lines chosen on the map
        st.session_state["_initialised"] = True
    st.session_state.pop("_rerun_app", None)  # this is the whole app's run
    keep(DEFAULTS)


def keep(keys) -> None:
    """Set each of ``keys`` to the value it has, so that Streamlit keeps it through a run that does not
    draw its widget (a fragment's rerun does this for the widgets in it)."""
    for key in keys:
        st.session_state[key] = st.session_state[key]


def _quoted(text: str, most: int = 40) -> str:
    """A link's text, shortened and quoted so that a notice shows it as it is."""
    text = text.replace("`", "'")
    return f"`{text[:most]}{'…' if len(text) > most else ''}`"


def notice() -> None:
    """Once, after a link was read: which of its values were ignored, and that defaults replaced them."""
    ignored = st.session_state.pop("_ignored", [])
    if ignored:
        st.warning("Some of this link's settings could not be used, so their defaults are shown instead: "
                   + "; ".join(ignored) + ".")


def sync_url() -> None:
    """Mirror the shared keys that differ from their defaults into the query string."""
    wanted = {k: str(st.session_state[k]) for k in SHARED if st.session_state[k] != DEFAULTS[k]}
    for key in list(st.query_params):
        if key not in wanted:
            del st.query_params[key]
    for key, value in wanted.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value


def go_to(line: str, record: bool = True) -> None:
    """Make ``line`` the current line of every tab and (with ``record``) add it to the walk."""
    st.session_state["neigh.source"] = line
    st.session_state["interp.a"] = st.session_state["interp.b"]
    st.session_state["interp.b"] = line
    text = st.session_state["lines.text"].rstrip("\n")
    if line not in text.splitlines():
        st.session_state["lines.text"] = f"{text}\n{line}" if text else line
    walk = st.session_state["walk"]
    if record and (not walk or walk[-1] != line):
        walk.append(line)
    st.session_state["_rerun_app"] = True  # see ``follow``


def follow() -> None:
    """Rerun the whole app if a callback moved to a new line (``go_to``): the rerun of a fragment
    alone would not redraw the sidebar's walk, nor the tabs when it was the map's."""
    if st.session_state.pop("_rerun_app", False):
        st.rerun()
