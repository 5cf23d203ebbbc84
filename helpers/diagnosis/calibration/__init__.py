"""Does the diagnosis's suggestion train well? The evidence of ``07_choosing_a_learning_rate``, computed once and
shipped (``store/calibration-<key>/``, keyed by the :class:`Protocol`).

For each architecture of :mod:`helpers.diagnosis.zoo`, optimizer (plain SGD, Adam) and seed, one *row*:

1. the quick diagnosis (:func:`helpers.diagnosis.diagnose.diagnose`, ``quick=True``) on the first ``n_diagnose``
   training examples: the edge sharpness, c_loss and c_max and their learning rates, and its built-in suggestion;
2. the range test (``torch-lr-finder``) with the same optimizer;
3. a grid of real training runs, ``steps`` minibatches each, held-out loss at the end: a factor-4 ladder, extended
   while its best or its top is at an end, then the factor-2 neighbours of the best (mean over seeds), and per seed
   the midpoint between its largest stable and first divergent learning rate;
4. training at each suggestion (the range test's, the built-in rule's, and the fitted rule's once it is fit).

A suggestion rule η = κ·anchor (anchor: lr_loss, lr_max or their geometric middle; κ and the anchor chosen per
optimizer on the :data:`~helpers.diagnosis.zoo.FIT` architectures only) is scored on the held-out ones. Run as
``python -m helpers.diagnosis.calibration`` in one or more processes (each takes the jobs no other has claimed;
resumable: jobs already stored under the same protocol are kept), then
``python -m helpers.diagnosis.calibration --fitted sgd`` and ``--fitted adam``.
"""

from helpers.diagnosis.calibration.figure import plot_calibration
from helpers.diagnosis.calibration.jobs import calibrate, diagnosed, extend, fitted_runs, grid_runs, ranged, \
    refinements, trained
from helpers.diagnosis.calibration.protocol import (FOLDER_ENV_VAR, OPTIMIZERS, SHIPPED, Protocol, calibration_folder,
                                                    protocol_key, task)
from helpers.diagnosis.calibration.store import cost, job_path, load
from helpers.diagnosis.calibration.table import (METHODS, calibrated_lr, calibration_table, eta_max_comparison,
                                                 fit_rule, grid_outcomes, hits, mean_losses, observed_boundaries,
                                                 rows_with_outcomes, scores, shipped_rule, suggest, unstable,
                                                 with_anchors)

__all__ = ["FOLDER_ENV_VAR", "METHODS", "OPTIMIZERS", "SHIPPED", "Protocol", "calibrate", "calibrated_lr",
           "calibration_folder", "calibration_table", "cost", "diagnosed", "eta_max_comparison", "extend", "fit_rule",
           "fitted_runs", "grid_outcomes", "grid_runs", "hits", "job_path", "load", "mean_losses",
           "observed_boundaries", "plot_calibration", "protocol_key", "ranged", "refinements", "rows_with_outcomes",
           "scores", "shipped_rule", "suggest", "task", "trained", "unstable", "with_anchors"]
