"""Image files and sizes: reading and checking files, the size limits, tiling, sample pictures."""
