"""What a sweep's table says: constants and phases, saturation, ablations, figures."""
