"""The posterior q(z|x) of a sentence code, one class per latent family.

``Gaussian``: z in R^nz, q = N(mu, diag exp(logvar)), prior N(0, I) (Bowman et al. 2016).
``Bernoulli``: z in {0, 1}^K, q = a product of Bernoullis from the encoder's logits, prior a
product of Bernoullis with a fixed P(bit = 1) (the bit-vector latent of the VI tutorial's latent-factor notebook).

Both offer the same operations, so training, evaluation and the sampler need not know which
family a model has: ``mean``, ``std``, ``sample``, ``kl`` (closed form, per dimension),
``log_prob`` and ``log_prior`` (summed over dimensions), ``entropy``, and rows by index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LATENTS = ("gaussian", "bernoulli")


@dataclass
class Gaussian:
    mu: torch.Tensor  # [N, nz]
    logvar: torch.Tensor  # [N, nz]

    def __len__(self) -> int:
        return len(self.mu)

    def __getitem__(self, rows) -> Gaussian:
        return Gaussian(self.mu[rows], self.logvar[rows])

    def cpu(self) -> Gaussian:
        return Gaussian(self.mu.cpu(), self.logvar.cpu())

    @property
    def mean(self) -> torch.Tensor:
        return self.mu

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, samples: int = 1, generator=None) -> torch.Tensor:
        """``samples`` reparameterised draws per line, ``[N, samples, nz]``."""
        eps = torch.randn(self.mu.size(0), samples, self.mu.size(1), device=self.mu.device, generator=generator)
        return self.mu.unsqueeze(1) + eps * self.std.unsqueeze(1)

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per line and dimension, ``[N, nz]``."""
        return 0.5 * (self.mu.pow(2) + self.logvar.exp() - self.logvar - 1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) of ``z [N, k, nz]`` (row n under line n's posterior), ``[N, k]``."""
        return log_normal(z, self.mu.unsqueeze(1), self.logvar.unsqueeze(1))

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        return log_normal(z, torch.zeros_like(z), torch.zeros_like(z))

    def entropy(self) -> torch.Tensor:
        """H(q) per line, ``[N]``."""
        return 0.5 * (1 + self.logvar + math.log(2 * math.pi)).sum(-1)


@dataclass
class Bernoulli:
    logits: torch.Tensor  # [N, K]: log P(bit = 1) - log P(bit = 0)
    prior_logit: float = 0.0  # the prior's logit; 0 is P(bit = 1) = 0.5

    def __len__(self) -> int:
        return len(self.logits)

    def __getitem__(self, rows) -> Bernoulli:
        return Bernoulli(self.logits[rows], self.prior_logit)

    def cpu(self) -> Bernoulli:
        return Bernoulli(self.logits.cpu(), self.prior_logit)

    @property
    def mean(self) -> torch.Tensor:
        """P(bit = 1) for every bit, ``[N, K]``."""
        return torch.sigmoid(self.logits)

    @property
    def std(self) -> torch.Tensor:
        p = self.mean
        return torch.sqrt(p * (1 - p))

    def sample(self, samples: int = 1, generator=None) -> torch.Tensor:
        """``samples`` draws of the bits per line, ``[N, samples, K]`` (no gradient flows through them)."""
        p = self.mean.detach().unsqueeze(1).expand(-1, samples, -1)
        return torch.bernoulli(p, generator=generator)

    def straight_through(self, tau: float = 1.0, generator=None) -> torch.Tensor:
        """One draw of the bits per line, ``[N, K]``, with straight-through Gumbel gradients: the
        forward pass gives hard bits, the backward pass the gradient of the relaxed ones
        (sigmoid((logits + logistic noise) / tau))."""
        u = torch.rand(self.logits.shape, device=self.logits.device, generator=generator).clamp(1e-6, 1 - 1e-6)
        soft = torch.sigmoid((self.logits + torch.log(u) - torch.log1p(-u)) / tau)
        hard = (soft > 0.5).to(soft.dtype)
        return hard + (soft - soft.detach())  # exactly the hard bits forward

    def kl(self) -> torch.Tensor:
        """KL(q || prior) per line and bit, ``[N, K]``, from logits (log-sigmoids keep it finite
        for saturated probabilities)."""
        p = self.mean
        prior = torch.full_like(self.logits, self.prior_logit)
        return (p * (F.logsigmoid(self.logits) - F.logsigmoid(prior))
                + (1 - p) * (F.logsigmoid(-self.logits) - F.logsigmoid(-prior)))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) of bits ``z [N, k, K]`` (row n under line n's posterior), ``[N, k]``."""
        return _log_bernoulli(z, self.logits.unsqueeze(1))

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        return _log_bernoulli(z, torch.full_like(z, self.prior_logit))

    def entropy(self) -> torch.Tensor:
        p = self.mean
        return -(p * F.logsigmoid(self.logits) + (1 - p) * F.logsigmoid(-self.logits)).sum(-1)


Posterior = Gaussian | Bernoulli


def concat(parts: list[Posterior]) -> Posterior:
    """Posteriors of consecutive batches of lines joined into one."""
    first = parts[0]
    if isinstance(first, Gaussian):
        return Gaussian(torch.cat([p.mu for p in parts]), torch.cat([p.logvar for p in parts]))
    return Bernoulli(torch.cat([p.logits for p in parts]), first.prior_logit)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Diagonal Gaussian log-density summed over the last dimension."""
    return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


def _log_bernoulli(z: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    return (z * F.logsigmoid(logits) + (1 - z) * F.logsigmoid(-logits)).sum(-1)
