"""Latent Verse core: a sentence VAE over BPEmb pieces (and a VRNN), its trainer, evaluator and sampler.

    import vae_core
    vae = vae_core.load()          # the shipped poetry model
    vae.beam(vae.mu(["the sea is calm tonight"]), width=4)
"""

from .checkpoint import CheckpointError
from .sampler import Sampler, SequenceSampler, load
from .tokenizer import TokenizerError

__all__ = ["load", "Sampler", "SequenceSampler", "CheckpointError", "TokenizerError"]
