"""The training engine: data patches, the loop, checkpoints and the run folder."""
