"""The `difflab` command line and the `up` launcher: thin faces over the engine, store, workers."""
