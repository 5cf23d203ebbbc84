"""The study's networks, their output variants, losses, and the uv model."""
