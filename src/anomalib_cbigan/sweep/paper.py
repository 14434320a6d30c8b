"""The CBiGAN paper's MVTec AD Tables II and III beside a sweep's results, for the sweep's report.

The paper's numbers are read from its text (``../shared/papers/cbigan-paper.txt`` beside the checkout,
tab-separated table rows), ours from the sweep's rows: nothing is typed by hand. Rows are the MVTec AD
categories the sweep ran, in the paper's order, then the texture, object and overall means where a
model of the sweep ran every category of the group.

Example:
    >>> import pandas as pd
    >>> from anomalib_cbigan.sweep.report import tidy
    >>> text = "TABLE II: ...\\nCarpet\\tGrid\\n" + "TABLE III: ..."
    >>> frame = tidy(pd.DataFrame({"model.class_path": ["Cbigan"], "data.init_args.category": ["brick"],
    ...                            "image_AUROC": [0.7]}))
    >>> paper_sections(frame, text)  # no MVTec AD category in the sweep: nothing to set beside the paper
    []
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from anomalib_cbigan.reports import markdown_table

# src/anomalib_cbigan/sweep/paper.py -> the checkout's folder -> ../shared
PAPER_TEXT = Path(__file__).resolve().parents[4] / "shared" / "papers" / "cbigan-paper.txt"
TEXTURES = ("carpet", "grid", "leather", "tile", "wood")
OBJECTS = ("bottle", "cable", "capsule", "hazelnut", "metal_nut", "pill", "screw", "toothbrush", "transistor", "zipper")
# The paper's column order: five textures, their mean, ten objects, their mean, overall mean.
PAPER_COLUMNS = (*TEXTURES, "texture mean", *OBJECTS, "object mean", "overall mean")
GROUPS = {"texture mean": TEXTURES, "object mean": OBJECTS, "overall mean": TEXTURES + OBJECTS}
TABLES = {
    "II": ("maximum balanced accuracy (TPR + TNR) / 2", "image_MaxBalancedAccuracy", ("EGBAD [16]", "CBiGAN (ours)")),
    "III": ("image AUROC", "image_AUROC", ("GANomaly [14]", "EGBAD [16]", "CBiGAN (ours)")),
}


def paper_rows(text: str) -> dict[str, dict[str, dict[str, float]]]:
    """``{table: {method label: {column: value}}}`` for the methods in ``TABLES``, from the paper's text."""
    blocks = {"II": text[: text.index("TABLE II:")], "III": text[text.index("TABLE II:") : text.index("TABLE III:")]}
    parsed: dict[str, dict[str, dict[str, float]]] = {}
    for table, block in blocks.items():
        start = block.rindex("Carpet\tGrid")  # the header of this table
        parsed[table] = {}
        for line in block[start:].splitlines():
            cells = [cell.strip() for cell in line.split("\t")]
            label = next((key for key in TABLES[table][2] if cells[0].startswith(key)), None)
            if label is None:
                continue
            values = [float(cell.replace("<i>", "").replace("</i>", "")) for cell in cells[1:] if cell]
            if len(values) != len(PAPER_COLUMNS):
                msg = f"Table {table}, row {label!r}: expected {len(PAPER_COLUMNS)} numbers, got {len(values)}"
                raise ValueError(msg)
            parsed[table][label] = dict(zip(PAPER_COLUMNS, values, strict=True))
    return parsed


def paper_sections(frame: pd.DataFrame, paper_text: str) -> list[str]:
    """Markdown lines: each paper table with a column per model of ``frame`` (a tidy results frame).

    Empty when the sweep ran no MVTec AD category.
    """
    categories = [category for category in PAPER_COLUMNS if category in set(frame["category"])]
    if not categories:
        return []
    paper = paper_rows(paper_text)
    models = list(dict.fromkeys(frame["model"]))
    lines = [
        "## Beside the paper (Carrara et al., ICPR 2020, Tables II and III)",
        "",
        (
            "Paper columns: after 1.2 M batches on a GPU (its GANomaly column is quoted from ITAE [23]); ours: this "
            "sweep's training (the cost table), mean ± std over seeds. A mean row appears where one of our models "
            "ran every category of its group; '—': not run."
        ),
    ]
    for table, (title, metric, methods) in TABLES.items():
        rows = []
        groups = [group for group, members in GROUPS.items() if any(_has_all(frame, m, members) for m in models)]
        for column in [c for c in PAPER_COLUMNS if c in categories or c in groups]:
            row = {"category": f"*{column}*" if column in GROUPS else column}
            row |= {f"paper {label.split(' [')[0].replace(' (ours)', '')}": f"{paper[table][label][column]:.2f}"
                    for label in methods}  # fmt: skip
            row |= {model: _our_cell(frame, model, metric, column) for model in models}
            rows.append(row)
        lines += ["", f"### Table {table}: {title} (`{metric}`)", "", markdown_table(rows)]
    return lines


def _has_all(frame: pd.DataFrame, model: str, categories: tuple[str, ...]) -> bool:
    return set(categories) <= set(frame.loc[frame["model"] == model, "category"])


def _our_cell(frame: pd.DataFrame, model: str, metric: str, column: str) -> str:
    if metric not in frame:
        return "—"
    rows = frame[frame["model"] == model]
    if column in GROUPS:
        if not _has_all(frame, model, GROUPS[column]):
            return "—"
        means = rows[rows["category"].isin(GROUPS[column])].groupby("category")[metric].mean()
        return "—" if means.isna().any() else f"{means.mean():.3f}"
    from .report import _cell  # the report's mean ± std cell (report imports this module)

    return _cell(rows.loc[rows["category"] == column, metric])
