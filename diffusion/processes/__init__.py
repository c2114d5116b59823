"""The diffusion processes: the Process interface, Gaussian and binomial diffusion, forward
schedules, the temporal readout."""
