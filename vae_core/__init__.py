"""Latent Verse core: a sentence VAE over BPEmb pieces, its trainer, evaluator and sampler.

    import vae_core
    vae = vae_core.load()          # the shipped poetry model
    vae.beam(vae.mu(["the sea is calm tonight"]), width=4)
"""

from .checkpoint import CheckpointError
from .sampler import Sampler, load
from .tokenizer import TokenizerError

__all__ = ["load", "Sampler", "CheckpointError", "TokenizerError"]
