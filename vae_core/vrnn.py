"""The variational recurrent network (VRNN, Chung et al. 2015): a latent variable at every piece.

    prior    p(z_t | h_{t-1})            = N(mu, diag(sigma^2))  from the recurrent state
    encoder  q(z_t | x_t, h_{t-1})       = N(mu, diag(sigma^2))  from the state and the current piece
    decoder  p(x_t | z_t, h_{t-1})       adaptive softmax over BPEmb pieces
    h_t = GRU([phi_x(x_t) ; phi_z(z_t)], h_{t-1}),  h_0 = 0

The ELBO of a line sums, over its pieces and end-of-line, ``-log p(x_t | z_t, h_{t-1})`` and the
closed-form KL between q and the prior of that step. There is no code for a whole line: a VRNN
generates (z_t from the prior, then x_t) and reconstructs a line step by step, nothing else.

The output layer is the sentence VAE's adaptive softmax (``vae_core.model``), its clusters ordered
by the pieces' training-set frequency in the ``rank_of`` buffer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .decoding import draw
from .latent import log_normal
from .model import MAX_LEN, DictConfig, Dropout, SentenceVAE
from .tokenizer import EOS, VOCAB_SIZE
from .validate import Range


@dataclass
class VRNNConfig(DictConfig):
    vocab_size: int = VOCAB_SIZE  # BPEmb pieces
    emb_dim: int = 128  # piece embedding (phi_x) and latent features (phi_z)
    hidden: int = 256  # GRU state, and the width of the prior, encoder and decoder networks
    nz: int = 16  # latent dimensions per step
    dropout: float = 0.2  # dropout on embeddings and decoder features while training
    cutoffs: tuple[int, ...] = (1000, 4000)  # adaptive softmax: head size, then cluster bounds
    max_len: int = 48  # pieces per line; longer input is truncated, generation stops here

    def __post_init__(self):
        size = Range(int, 1)
        self.check({"vocab_size": size, "emb_dim": size, "hidden": size, "nz": size, "dropout": Range(float, 0, 1),
                    "max_len": Range(int, 1, MAX_LEN)})


class LineTerms(NamedTuple):
    """Per-line sums over the real steps, ``[N]`` each."""

    rec: torch.Tensor  # -log p(x_t | z_t, h_{t-1}) at the drawn latents
    kl: torch.Tensor  # KL(q(z_t | .) || p(z_t | h_{t-1})), closed form
    log_ratio: torch.Tensor  # log p(z_t | h_{t-1}) - log q(z_t | .) at the drawn latents


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p))) summed over the last dimension."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1).sum(-1)


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ELU(), nn.Linear(hidden, n_out))


class VRNN(nn.Module):
    def __init__(self, config: VRNNConfig):
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.emb_dim)  # phi_x: a lookup is already a free feature map
        self.phi_z = nn.Sequential(nn.Linear(c.nz, c.emb_dim), nn.ELU())
        self.prior = _mlp(c.hidden, c.hidden, 2 * c.nz)
        self.encoder = _mlp(c.emb_dim + c.hidden, c.hidden, 2 * c.nz)
        self.decoder = nn.Sequential(nn.Linear(c.emb_dim + c.hidden, c.hidden), nn.ELU())
        self.rnn = nn.GRUCell(2 * c.emb_dim, c.hidden)
        self.drop = Dropout(c.dropout)
        self.out = nn.AdaptiveLogSoftmaxWithLoss(c.hidden, c.vocab_size, list(c.cutoffs), div_value=4.0)
        self.register_buffer("rank_of", torch.arange(c.vocab_size))
        self.reset_parameters()

    # the output layer's frequency order and the initialisation are the sentence VAE's
    set_piece_order = SentenceVAE.set_piece_order
    piece_of = SentenceVAE.piece_of
    reset_parameters = SentenceVAE.reset_parameters

    # ---- the teacher-forced pass ---------------------------------------------------------
    def _walk(self, targets: torch.Tensor, sample: bool, generator=None, latents: str = "posterior"):
        """Run the recurrence over ``targets [N, T]`` (the pieces and EOS of each line), z_t drawn from
        q (or its mean when not ``sample``; with ``latents="prior"``, the prior's mean, which has not
        seen the piece). Returns, each ``[N, T, .]``: the states h_{t-1}, the latent features
        phi_z(z_t), z_t and q's ``mu, logvar``.

        Only the encoder, phi_z and the GRU sit in the loop; the prior and the decoder read the
        states afterwards, all steps at once.
        """
        N, T = targets.shape
        x = self.drop(self.embed(targets))
        noise = torch.randn(N, T, self.config.nz, generator=generator).to(x.device) if sample else None
        h = x.new_zeros(N, self.config.hidden)
        states, features, zs, mus, logvars = [], [], [], [], []
        for t in range(T):
            mu, logvar = self.encoder(torch.cat([x[:, t], h], dim=-1)).chunk(2, dim=-1)
            if latents == "prior":
                z = self.prior(h).chunk(2, dim=-1)[0]
            else:
                z = mu + noise[:, t] * torch.exp(0.5 * logvar) if sample else mu
            feature = self.phi_z(z)
            states.append(h)
            features.append(feature)
            zs.append(z)
            mus.append(mu)
            logvars.append(logvar)
            h = self.rnn(torch.cat([x[:, t], feature], dim=-1), h)
        return tuple(torch.stack(parts, dim=1) for parts in (states, features, zs, mus, logvars))

    def _decoder_out(self, states: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The decoder's input to the output layer, from h_{t-1} and phi_z(z_t) (any leading shape)."""
        return self.drop(self.decoder(torch.cat([features, states], dim=-1)))

    def terms(self, tokens: torch.Tensor, lengths: torch.Tensor, sample: bool = True, generator=None) -> LineTerms:
        """Reconstruction, KL and log prior/posterior ratio per line for ``[BOS] pieces [EOS]`` rows
        with ``lengths`` targets each, with one trajectory of latents from q (its means when not
        ``sample``). Padding is never scored."""
        targets = tokens[:, 1:]
        mask = torch.arange(targets.size(1), device=targets.device) < lengths.unsqueeze(1)
        states, features, z, mu, logvar = (part[mask] for part in self._walk(targets, sample, generator))
        prior_mu, prior_logvar = self.prior(states).chunk(2, dim=-1)
        nll = -self.out(self._decoder_out(states, features), self.rank_of[targets[mask]]).output
        kl = gaussian_kl(mu, logvar, prior_mu, prior_logvar)
        log_ratio = log_normal(z, prior_mu, prior_logvar) - log_normal(z, mu, logvar)

        def per_line(values: torch.Tensor) -> torch.Tensor:
            return values.new_zeros(mask.shape).masked_scatter(mask, values).sum(dim=1)

        return LineTerms(per_line(nll), per_line(kl), per_line(log_ratio))

    def loss(self, batch, beta: float, free_bits: float = 0.0):
        """Mean training loss per line of ``batch`` (tokens, lengths and conditions, which a VRNN has
        none of), ``rec + beta * KL`` with one trajectory of latents, and its parts (floats).

        ``free_bits`` floors the KL of a step (summed over its dimensions, averaged over the batch's
        steps) at that many nats: below the floor the KL costs nothing, so the latents carry at least
        that much of each piece instead of following the prior (free bits, Kingma et al. 2016, per step).
        """
        tokens, lengths = batch[:2]
        terms = self.terms(tokens, lengths)
        rec, kl = terms.rec.mean(), terms.kl.mean()
        steps = lengths.float().mean()  # a line's steps: its pieces and the end of line
        kl_term = (kl / steps).clamp(min=free_bits) * steps if free_bits > 0 else kl
        return rec + beta * kl_term, {"rec": rec.item(), "kl": kl.item()}

    # ---- generation and reconstruction ---------------------------------------------------
    @torch.no_grad()
    def posterior_means(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Each step's posterior mean ``[N, T, nz]``, teacher-forced over the lines (zero past the end)."""
        mask = torch.arange(tokens.size(1) - 1, device=tokens.device) < lengths.unsqueeze(1)
        return self._walk(tokens[:, 1:], sample=False)[2] * mask.unsqueeze(-1)

    @torch.no_grad()
    def generate(self, n: int, max_len: int, temperature: float = 1.0, generator=None,
                 fixed: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` lines as piece ids ``[n, T]``: at each step z_t from the prior, then the piece from the
        softmax at ``temperature`` (0: the most likely piece). Rows end in EOS or at ``max_len`` and
        are padded with EOS. ``fixed [k, nz]``: the latents of the first k steps, the same in every
        row (the prior takes over after them).

        The latent noise of all steps is drawn first, so a row's latents do not depend on how its
        pieces were drawn (the same seed at a lower temperature follows the same noise).
        """
        device = self.rank_of.device
        noise = torch.randn(n, max_len, self.config.nz, generator=generator).to(device)
        piece_of = self.piece_of()
        out = torch.full((n, max_len), EOS, dtype=torch.long, device=device)
        done = torch.zeros(n, dtype=torch.bool, device=device)
        h = torch.zeros(n, self.config.hidden, device=device)
        for t in range(max_len):
            mu, logvar = self.prior(h).chunk(2, dim=-1)
            z = mu + noise[:, t] * torch.exp(0.5 * logvar)
            if fixed is not None and t < len(fixed):
                z = fixed[t].expand(n, -1)
            feature = self.phi_z(z)
            log_probs = self.out.log_prob(self._decoder_out(h, feature))  # columns in frequency-rank order
            pieces = piece_of[draw(log_probs, temperature, generator)].masked_fill(done, EOS)
            out[:, t] = pieces
            done |= pieces == EOS
            if done.all():
                return out[:, : t + 1]
            h = self.rnn(torch.cat([self.embed(pieces), feature], dim=-1), h)
        return out

    @torch.no_grad()
    def reconstruct(self, tokens: torch.Tensor, lengths: torch.Tensor, latents: str = "posterior") -> torch.Tensor:
        """The most likely piece at every position of each line, ``[N, T]`` (EOS past the end):
        teacher-forced, the recurrence reads the line's own pieces, with each z_t at its posterior mean
        (``latents="prior"``: at the prior's mean).

        This shows what the per-step latents carry. q(z_t | x_t, h_{t-1}) sees the very piece the
        decoder is asked for, so where the latents are in use the line comes back even where its
        history alone would not predict it; the prior's latents leave only a language model's
        next-piece guesses, and the difference between the two is what the latents hold.
        """
        targets = tokens[:, 1:]
        mask = torch.arange(targets.size(1), device=targets.device) < lengths.unsqueeze(1)
        states, features, *_ = self._walk(targets, sample=False, latents=latents)
        ranks = self.out.predict(self._decoder_out(states[mask], features[mask]))
        return torch.full_like(targets, EOS).masked_scatter(mask, self.piece_of()[ranks])
