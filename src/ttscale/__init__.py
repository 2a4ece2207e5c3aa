"""ttscale: inference-time scaling for text-to-image diffusion models.

Spend compute at sampling time instead of on a bigger model: draw candidates or search over noise
and denoising paths, score them with verifiers, keep the best, all under one counted budget.
"""

__version__ = "0.1.0"
