"""The seed projects' design, rebuilt as they built it, as the benchmark's baseline."""
