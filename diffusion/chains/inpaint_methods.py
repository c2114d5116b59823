"""The inpainting methods by name, and the guided method's weight: what the CLI, the worker's
input checks and the dashboard offer (no torch here: the dashboard and the API import it).

- "paper": known pixels held at their values at every step (Sohl-Dickstein et al. 2015,
  section 2.5, figure 5; diffusion.chains.posterior_chains.inpaint_paper_chain);
- "repaint": RePaint's resampling (Lugmayr et al. 2022; inpaint_repaint_chain);
- "guided": reconstruction guidance with the known pixels replaced at each step's noise level
  (Ho et al. 2022; diffusion.chains.posterior_guided), beyond the paper.
"""

from __future__ import annotations

METHODS = ("paper", "repaint", "guided")
DESCRIPTIONS = {
    "paper": "Paper (Sohl-Dickstein 2015, sec. 2.5)",
    "repaint": "RePaint (resampling)",
    "guided": "Guided (reconstruction guidance)",
}
GUIDANCE = 8.0
"""The guided method's default weight w (Ho et al.'s w_r), chosen on the six validation holes of
benchmarks/coarse_validation.py; the table it was chosen from is in docs/model-notes.md
"Guided inpainting" (one place for the numbers)."""
BIHARMONIC = "biharmonic"
"""`inpaint`'s coarse value for the biharmonic start (`diffusion.chains.posterior_coarse`): the
chain starts from scikit-image's biharmonic fill of the hole, diffused forward to t0."""
BIHARMONIC_NOISE = 0.125
"""The biharmonic start's t0 (and "auto"'s, which starts so on a hole wider than the model's
training patches): the first step whose forward noise reaches this many standard deviations
of the data (`posterior_coarse.refine_step`; step 638 of the photos model's 1,000, about 6
grey levels), chosen among 1/16 to 1 on the eight validation holes of
benchmarks/coarse_validation.py (the table: docs/model-notes.md "The biharmonic start")."""
INPAINT_START = "auto"
"""The start the worker and the CLI use (`inpaint`'s coarse): the biharmonic start when a box of
the model's training size fits inside the hole, else one pass from pi; the plan says which."""
STARTS = ("auto", "off", BIHARMONIC)
"""The starts the CLI offers: "off" is one pass from pi (the paper's chain for every hole)."""
INPAINT_CONTEXT = 64
"""Pixels of context around the missing ones that the worker's and the CLI's inpainting chain
runs on (beyond the multi-scale net's reach of about 40 pixels); the rest of the image is
known and kept."""
MAX_GUIDANCE = 100.0
"""The largest weight accepted: far beyond any useful one (the guided step then overshoots)."""


def guidance_error(weight: object) -> str | None:
    """Why `weight` is not a guidance weight (a real number in [0, MAX_GUIDANCE]), or None."""
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        return f"the guidance weight must be a number, got {weight!r}"
    if not 0 <= weight <= MAX_GUIDANCE:  # NaN fails both comparisons
        return f"the guidance weight must be between 0 and {MAX_GUIDANCE:g}, got {weight!r}"
    return None
