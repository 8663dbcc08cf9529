"""The laptop side of the product: a local engine that runs the real ASL, and a simulated fleet."""
