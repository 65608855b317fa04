"""Shared links with hand-edited query strings: every value is checked before a widget is drawn,
and what does not fit is replaced by its default and named in one notice, never a traceback."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from explorer_app import state

from .conftest import ROOT

APP = str(ROOT / "explorer_app" / "app.py")
CHOICES = {"tab": ["Lines", "Model"], "settings.method": ("greedy", "sample", "beam")}


@pytest.mark.parametrize("key, raw, expected", [
    ("settings.max_len", "20", 20),
    ("settings.temperature", "1.5", 1.5),
    ("interp.distinct", "true", True),
    ("interp.distinct", "0", False),
    ("tab", "Model", "Model"),
    ("lines.text", "o rose thou art sick", "o rose thou art sick"),
])
def test_a_value_that_fits_is_used(key, raw, expected):
    assert state.parse(key, raw, CHOICES) == expected


@pytest.mark.parametrize("key, raw, why", [
    ("settings.max_len", "999", "outside 4-64"),
    ("settings.width", "-5", "outside 1-12"),
    ("settings.max_len", "3.5", "not a whole number"),
    ("settings.max_len", "ten", "not a whole number"),
    ("settings.temperature", "nan", "outside"),
    ("settings.temperature", "inf", "outside"),
    ("neigh.noise", "", "not a number"),
    ("interp.distinct", "maybe", "not true or false"),
    ("tab", "Admin", "not one of the options"),
    ("settings.method", "../../etc", "not one of the options"),
    ("lines.text", "x" * (state.MAX_TEXT + 1), "longer than"),
])
def test_a_value_that_does_not_fit_says_why(key, raw, why):
    with pytest.raises(ValueError, match=why):
        state.parse(key, raw, CHOICES)


def test_every_numeric_default_is_within_its_range():
    for key, (low, high) in state.RANGES.items():
        assert low <= state.DEFAULTS[key] <= high, key
    numeric = {k for k, v in state.DEFAULTS.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert numeric == set(state.RANGES)


def run(params: dict) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def test_a_hostile_link_opens_the_page_with_defaults_and_one_notice():
    at = run({"settings.max_len": "999", "settings.width": "-5", "tab": "Interpolate", "interp.t": "nan",
              "settings.checkpoint": "../../etc", "map.colour": "<script>", "bogus": "1"})
    assert not at.exception
    assert len(at.warning) == 1
    notice = at.warning[0].value
    for named in ("settings.max_len", "settings.width", "interp.t", "settings.checkpoint", "map.colour", "bogus"):
        assert named in notice, named
    assert "tab = " not in notice  # the valid tab was used
    assert at.session_state["settings.max_len"] == state.DEFAULTS["settings.max_len"]
    assert at.session_state["settings.width"] == state.DEFAULTS["settings.width"]
    assert at.session_state["settings.checkpoint"] == "poetry"
    assert at.session_state["tab"] == "Interpolate"
    assert at.slider(key="interp.t").value == state.DEFAULTS["interp.t"]
    assert not at.error


def test_the_notice_is_shown_once():
    at = run({"settings.max_len": "999"})
    assert len(at.warning) == 1
    at.run()
    assert not at.warning


def test_a_region_or_dimension_count_past_the_map_is_no_error():
    at = run({"tab": "Directions", "dir.view": "Sweep the dimensions", "dir.dims": "500", "map.region": "900"})
    assert not at.exception and not at.error
    nz = json.loads((ROOT / "checkpoints" / "poetry" / "config.json").read_text())["model"]["nz"]
    assert at.slider(key="dir.dims").value == nz and at.session_state["map.region"] == -1
