"""Latent Verse: explore a sentence VAE's latent space of poetry.

    streamlit run explorer_app/app.py

This file only routes: the sidebar, one module per tab (only the open one runs), and the map beside them.
The tabs and the map are one fragment, so working in them does not redraw the sidebar.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `streamlit run` puts only this folder on the path

from explorer_app import (  # noqa: E402
    cache,
    directions,
    interpolate,
    latent_map,
    lines,
    model_card,
    neighbours,
    sample,
    sidebar,
    state,
)
from explorer_app.widgets import Context, apologise  # noqa: E402
from vae_core import CheckpointError  # noqa: E402
from vae_core.projection import CATEGORICAL, NUMERIC  # noqa: E402
from vae_core.sampler import INTERPOLATIONS, METHODS  # noqa: E402

TABS = {"Lines": lines, "Interpolate": interpolate, "Neighbours": neighbours, "Sample": sample,
        "Directions": directions, "Model": model_card}
CHOICES = {"tab": list(TABS), "settings.checkpoint": cache.checkpoint_names(), "settings.method": METHODS,
           "settings.encode": ("mean", "sample"), "interp.method": INTERPOLATIONS, "dir.view": directions.VIEWS,
           "dir.towards": list(directions.TOWARDS), "map.colour": ["", *NUMERIC, *CATEGORICAL]}


@st.fragment
def page(ctx: Context) -> None:
    """The open tab and the map beside it. A fragment: what a user does here reruns only this, not the
    sidebar or the loading before it (a setting in the sidebar reruns the whole app)."""
    state.follow()
    state.keep(state.PAGE)
    work, side = st.columns([4, 3], gap="large")
    layers = []
    with work:
        # Only the open tab runs (on_change="rerun"), and the map shows what that tab made.
        for tab, module in zip(st.tabs(list(TABS), key="tab", on_change="rerun"), TABS.values()):
            if tab.open:
                with tab:
                    try:
                        layers = module.render(ctx)
                    except ValueError as err:
                        st.error(str(err))
                    except Exception:  # the page keeps working whatever went wrong
                        apologise(f"the {module.__name__.rsplit('.', 1)[-1]} tab")
    with side:
        try:
            latent_map.render(ctx, layers)
        except Exception:
            apologise("the map")
    state.sync_url()


st.set_page_config(page_title="Latent Verse", page_icon="🪶", layout="wide")
state.init(CHOICES)
state.notice()
settings = sidebar.render()
try:
    path = cache.checkpoint_path(settings.checkpoint)
    vae = cache.load_sampler(path)
except CheckpointError as err:
    st.error(f"Checkpoint '{settings.checkpoint}' cannot be used: {err}. Pick another one in the sidebar.")
    st.stop()
try:
    projection = cache.load_projection(path)
except CheckpointError:
    projection = None
ctx = Context(settings.checkpoint, path, vae, projection, settings)
page(ctx)
