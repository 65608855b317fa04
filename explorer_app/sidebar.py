"""The sidebar: checkpoint, decoding method and its options, seed, and how lines are encoded."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import streamlit as st

from vae_core.checkpoint import shipped_root
from vae_core.sampler import METHODS

from . import cache, state

log = logging.getLogger("latent_verse")


@dataclass
class Settings:
    checkpoint: str
    method: str
    temperature: float
    top_p: float
    width: int
    max_len: int
    seed: int
    use_mean: bool
    syllables: int | None  # requested syllables per line (None unless the model is conditioned on them)

    def decode_options(self, seed_offset: int = 0) -> dict:
        """Keyword arguments for ``Sampler.decode`` with this method."""
        options = {"max_len": self.max_len}
        if self.syllables is not None:
            options["syllables"] = self.syllables
        if self.method == "sample":
            options.update(temperature=self.temperature, top_p=self.top_p, seed=self.seed + seed_offset)
        elif self.method == "beam":
            options.update(width=self.width)
        return options


def render() -> Settings:
    sidebar, ranges = st.sidebar, state.RANGES
    sidebar.title("Latent Verse")
    names = cache.checkpoint_names()
    if not names:
        log.error("no checkpoint (a folder with a config.json) in %s", shipped_root().resolve())
        st.error("No checkpoint was found (a folder with a config.json; the server's log says where it looked): "
                 "set LATENT_VERSE_CHECKPOINTS to a folder of checkpoints, or start the app in the repository.")
        st.stop()
    if st.session_state["settings.checkpoint"] not in names and names:
        st.session_state["settings.checkpoint"] = names[0]
    sidebar.selectbox("Checkpoint", names, key="settings.checkpoint",
                      help="Every directory with a config.json under checkpoints/ (or the folder "
                           "LATENT_VERSE_CHECKPOINTS names)")
    path = cache.checkpoint_path(st.session_state["settings.checkpoint"])
    vrnn = cache.kind(path) == "vrnn"  # no sentence code: it only generates (at the Sample tab's temperature)
    if vrnn:
        sidebar.caption("A VRNN generates piece by piece at the Sample tab's temperature; the decoding "
                        "options below apply to sentence VAEs.")
    sidebar.radio("Decoding", METHODS, key="settings.method", horizontal=True, disabled=vrnn,
                  help="greedy: the likeliest piece each step; sample: drawn at a temperature; "
                       "beam: the likeliest whole line among several hypotheses")
    method = st.session_state["settings.method"]
    # Options of the other methods stay on the page, disabled, so users see what each method offers.
    sampling = not vrnn and method == "sample"
    sidebar.slider("Temperature", *ranges["settings.temperature"], step=0.05, key="settings.temperature",
                   disabled=not sampling)
    sidebar.slider("Top-p (nucleus)", *ranges["settings.top_p"], step=0.05, key="settings.top_p", disabled=not sampling)
    sidebar.slider("Beam width", *ranges["settings.width"], key="settings.width", disabled=vrnn or method != "beam")
    sidebar.slider("Maximum length (pieces)", *ranges["settings.max_len"], key="settings.max_len")
    conditioned = cache.condition(path) == "syllables"
    sidebar.slider("Syllables per line", *ranges["settings.syllables"], key="settings.syllables",
                   disabled=not conditioned,
                   help="Steers every decoded line of a model conditioned on syllable counts (checkpoints "
                        "trained with --model syllable-vae); other models ignore it")
    sidebar.number_input("Random seed", *ranges["settings.seed"], step=1, key="settings.seed")
    sidebar.radio("Encode lines by", ["mean", "sample"], key="settings.encode", horizontal=True, disabled=vrnn,
                  format_func={"mean": "posterior mean", "sample": "posterior sample"}.get)
    walk = st.session_state["walk"]
    if walk:
        sidebar.subheader("Your walk")
        first = max(0, len(walk) - 10)
        for i in range(first, len(walk)):
            sidebar.button(f"{i + 1}. {walk[i]}", key=f"walk.{i}", on_click=state.go_to, args=(walk[i], False),
                           help="Go back to this line", type="tertiary")
        sidebar.button("Clear the walk", key="walk.clear", on_click=walk.clear)
    s = st.session_state
    return Settings(s["settings.checkpoint"], method, s["settings.temperature"], s["settings.top_p"],
                    s["settings.width"], s["settings.max_len"], int(s["settings.seed"]), s["settings.encode"] == "mean",
                    s["settings.syllables"] if conditioned else None)
