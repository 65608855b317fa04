"""All session state in one place: namespaced widget keys, their defaults, and the URL.

Widget keys are ``<tab>.<name>``; the lines and settings a user chose are mirrored into the page's
query parameters, so a view can be shared as a link and reopened.
"""

from __future__ import annotations

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
    "sample.count": 12,
    "sample.temperature": 0.8,
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
MAX_LINES = 200  # lines encoded from the text area at once
MAX_CHARS = 1000  # characters kept of one line


def _coerce(value: str, default):
    """A query-parameter string as the type of the widget's default (None if it does not parse)."""
    try:
        if isinstance(default, bool):
            return value.lower() in ("1", "true", "yes")
        return type(default)(value)
    except ValueError:
        return None


def init() -> None:
    """Give every key its value for this run: on a session's first run from the URL when it carries
    one, else the default; afterwards the value it had. Only the open tab is drawn, and Streamlit
    forgets the value of a widget that a run does not draw, so every key is set again each run."""
    if not st.session_state.get("_initialised"):
        params = st.query_params
        for key, default in DEFAULTS.items():
            value = _coerce(params[key], default) if key in params else None
            st.session_state[key] = default if value is None else value
        st.session_state["walk"] = []  # breadcrumbs: lines the user moved to, oldest first
        st.session_state["map.picked"] = []  # corpus lines chosen on the map
        st.session_state["_initialised"] = True
    for key in DEFAULTS:
        st.session_state[key] = st.session_state[key]


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
