"""Choices the loss options accept (kept apart from the torch code so the registry loads without it)."""

CLASS_WEIGHTINGS = ("none", "inverse_frequency")  # per-class weighting of overlap losses
CLASS_WEIGHTS = ("none", "balanced")  # class weights of cross-entropy
