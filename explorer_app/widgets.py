"""What every tab shares: the context it renders with, input clean-up, and the results table."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from vae_core.projection import Projection
from vae_core.sampler import Sampler
from vae_core.tokenizer import clean

from . import cache, state
from .sidebar import Settings

log = logging.getLogger("latent_verse")


@dataclass
class Context:
    name: str  # checkpoint directory name under checkpoints/
    path: str  # its resolved directory (the cache key)
    vae: Sampler
    projection: Projection | None  # None when the checkpoint has no map
    settings: Settings

    def encode(self, lines: list[str]):
        s = self.settings
        return cache.encode(self.path, tuple(lines), s.use_mean, s.seed)

    def decode(self, z, seed_offset: int = 0, syllables: list[int] | None = None) -> list[str]:
        """Lines decoded with the sidebar's method (``syllables``: one count per row, for a model
        conditioned on them, in place of the sidebar's one count)."""
        options = self.settings.decode_options(seed_offset)
        z = np.asarray(z, dtype=np.float32)  # hashable for the cache
        return cache.decode(self.path, z, self.settings.method, tuple(sorted(options.items())),
                            tuple(syllables) if syllables is not None else None)

    def recall(self, lines: list[str]) -> dict[str, list]:
        """Columns saying what each generated line recalls of the corpus (none without a map)."""
        if self.projection is None:
            return {}
        return cache.recall(self.path, tuple(lines))

    def place(self, z):
        """Map coordinates for codes (None without a map)."""
        return None if self.projection is None else cache.place(self.path, z)


def apologise(where: str) -> None:
    """Log an unexpected error with its traceback on the server, and say sorry in the page (with no
    detail: a traceback would show the server's files) so that the rest of the page keeps working."""
    log.exception("unexpected error in %s", where)
    st.error(f"Sorry: something went wrong in {where}. The rest of the page still works; try other "
             "settings, or reload the page.")


def needs_sentence_code(ctx: Context, what: str) -> bool:
    """True, after saying why, when the model has no code for a whole line (a VRNN)."""
    if ctx.vae.latent != "sequence":
        return False
    st.info(f"{what} needs one code for each whole line. This checkpoint is a VRNN: it has a latent "
            "variable at every piece and no code for a line, so it offers the Sample tab and reconstructions "
            "in the Lines tab.")
    return True


def split_lines(text: str) -> tuple[list[str], list[str]]:
    """The lines of a text box that hold something to encode (not only spaces or control characters),
    capped in number and length, and notices about the caps."""
    lines = [line.strip() for line in text.splitlines() if clean(line)]
    notices = []
    if len(lines) > state.MAX_LINES:
        notices.append(f"Only the first {state.MAX_LINES} of {len(lines)} lines are used.")
        lines = lines[: state.MAX_LINES]
    long = [i + 1 for i, line in enumerate(lines) if len(line) > state.MAX_CHARS]
    if long:
        notices.append(f"Line(s) {', '.join(map(str, long[:5]))} cut to {state.MAX_CHARS} characters.")
        lines = [line[: state.MAX_CHARS] for line in lines]
    return lines, notices


RECALL_COLUMNS = {  # with the VRNN's latents and the neighbours' counts
    "times": st.column_config.NumberColumn(
        "times", width="small", help="How many of the variations decoded to this line"),
    "latents": st.column_config.TextColumn(
        "latents", width="small", help="Where each piece's latent comes from: the posterior (it has seen the "
        "piece) or the prior (it has not)"),
    "in corpus": st.column_config.CheckboxColumn(
        "in corpus", help="The line is a corpus line word for word: the model recalled it"),
    "most words shared with": st.column_config.TextColumn(
        "most words shared with", help="The corpus line (of all of them) that shares most of this line's words (BM25)"),
    "words shared": st.column_config.ProgressColumn(
        "words shared", format="percent", min_value=0.0, max_value=1.0,
        help="The share of this line's distinct words found in that corpus line"),
    "nearest in the latent space": st.column_config.TextColumn(
        "nearest in the latent space", help="The corpus line whose code is nearest this line's code, by a "
        "cosine corrected for lines that are near everything (CSLS)"),
    "cosine": st.column_config.NumberColumn(
        "cosine", format="%.2f", help="Cosine between the two codes: near 1 = the model places them together"),
}


def results_table(frame: pd.DataFrame, key: str, line_column: str, file_name: str) -> None:
    """The tab's results: click a row to walk to its line; download everything as CSV."""

    def walk() -> None:
        rows = st.session_state[key].selection.rows
        if rows:
            state.go_to(str(frame.iloc[rows[0]][line_column]))

    st.dataframe(frame, key=key, on_select=walk, selection_mode="single-row", hide_index=True,
                 width="stretch", column_config=RECALL_COLUMNS)
    st.caption(f"Click a row to make its {line_column.lower()} your current line.")
    st.download_button("Download CSV", frame.to_csv(index=False).encode("utf-8"), file_name=file_name,
                       mime="text/csv", key=f"{key}.csv")
