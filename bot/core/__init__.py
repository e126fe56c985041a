"""Core of every layer: value objects, the exception tree, the clock and shared words."""
