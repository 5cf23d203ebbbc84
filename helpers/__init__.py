"""Early training dynamics of deep networks: data, models, losses, curvature and sweeps.

Import what you need from the submodules, e.g. ``from helpers.curvature.operators import top_eigenvalue``.
Importing the package does nothing but define ``__version__``.
"""

__version__ = "0.7.0"
