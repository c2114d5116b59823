"""The bound K and the numbers reported from it."""
