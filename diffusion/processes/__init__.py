"""The diffusion processes: the Process interface, Gaussian and binomial diffusion, the forward
schedules and the temporal readout."""
