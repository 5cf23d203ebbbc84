"""The learning-rate diagnosis of any model and optimizer: its face is :func:`diagnose`, the :class:`Diagnosis` it
returns and :func:`calibrated_lr`, the suggestion rule fitted on the calibration's architectures."""

from helpers.diagnosis.calibration import calibrated_lr
from helpers.diagnosis.diagnose import Diagnosis, diagnose

__all__ = ["Diagnosis", "calibrated_lr", "diagnose"]
