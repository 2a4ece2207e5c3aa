"""Adapters from real text-to-image models to ttscale's Generator interfaces.

`diffusers_generator` wraps any supported diffusers pipeline (SANA, FLUX.1, SD3, SDXL, SD1.5, PixArt)
as a step-level generator and any pipeline at all as a black-box one; `families` holds what differs
per pipeline family, `schedules` turns a diffusers scheduler into a ttscale Schedule, and `hub` loads
pipelines offline with clear errors. The lab generators stay in `ttscale.lab`.
"""
