"""``python -m helpers.diagnosis.calibration``: compute the calibration's missing jobs (several processes share them),
or with ``--fitted OPTIMIZER`` train at the fitted rule's suggestions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from helpers.core.files import write_text
from helpers.diagnosis import calibration
from helpers.diagnosis.calibration.jobs import calibrate, fitted_runs
from helpers.diagnosis.calibration.protocol import FOLDER_ENV_VAR, OPTIMIZERS, Protocol, calibration_folder
from helpers.diagnosis.calibration.store import claimed, job_path
from helpers.diagnosis.zoo import ZOO


def main() -> None:
    parser = argparse.ArgumentParser(description=calibration.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=list(ZOO))
    parser.add_argument("--optimizers", nargs="*", default=list(OPTIMIZERS))
    parser.add_argument("--root", type=Path, default=None,
                        help=f"where the protocol's folder goes (default: ${FOLDER_ENV_VAR}, else store/)")
    parser.add_argument("--fitted", choices=list(OPTIMIZERS),
                        help="train at the fitted rule's suggestions for this optimizer's rows (after all jobs)")
    args = parser.parse_args()

    folder = calibration_folder(Protocol(), args.root)
    folder.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if args.fitted:
        write_text(folder / f"fitted-{args.fitted}.json", json.dumps(fitted_runs(args.fitted, folder), indent=1))
        return
    for model in args.models:
        for optimizer in args.optimizers:
            path = job_path(folder, model, optimizer)
            with claimed(path) as mine:
                if mine and not path.exists():
                    result = calibrate(model, optimizer)
                    write_text(path, json.dumps(result, indent=1))
                    print(f"{model} {optimizer}: {result['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
