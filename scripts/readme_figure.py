"""Draw the README's figure, docs/phase_diagram.png, from the stored results of 03_phase_diagrams at its defaults:
widths at depth 4, depths at width 128, and every width at depth 2. Run: .venv/bin/python scripts/readme_figure.py"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from helpers.chapters.parameters import chapter_parameters  # noqa: E402
from helpers.chapters.sweeps import phase_diagram_sweeps  # noqa: E402
from helpers.core.files import write_bytes  # noqa: E402
from helpers.analysis.phases import average_constants, critical_constants  # noqa: E402
from helpers.analysis.plots import plot_phase_diagram  # noqa: E402
from helpers.sweeps.compute import run_sweeps  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "phase_diagram.png"


def main() -> None:
    p = chapter_parameters("03_phase_diagrams")
    sweeps = phase_diagram_sweeps(p)
    constants = pd.concat([critical_constants(run_sweeps(sweeps[g])) for g in ("by_width", "by_depth", "shallow")])
    constants = constants.drop_duplicates(["sweep", "seed"])
    depth, width = constants.depth, constants.width
    panels = {f"depth {p.depth}, widths {p.widths}": constants[(depth == p.depth) & width.isin(p.widths)],
              f"width 128, depths {p.depths}": constants[(width == 128) & depth.isin(p.depths)],
              f"depth {p.shallow_depth}, every width": constants[depth == p.shallow_depth]}
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True, constrained_layout=True)
    for ax, (title, part) in zip(axes, panels.items()):
        averages = average_constants(part)
        plot_phase_diagram(averages, ax, degree=min(p.fit_degree, len(averages) - 1))
        ax.set_title(f"FCN, {title}", fontsize=9)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=7, fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_bytes(OUT, buffer.getvalue())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
