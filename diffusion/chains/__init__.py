"""Reverse chains: full and strided sampling and the posterior chains (denoising, inpainting)."""
