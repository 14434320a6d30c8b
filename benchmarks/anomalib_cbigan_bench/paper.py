"""The CBiGAN paper's MVTec AD Tables II and III, and the FCBiGAN thesis's pixel AUPR, beside a sweep's results.

The published figures ship with this package (``published.json``, read by :func:`published_tables`). They were
parsed once from the method texts (tab-separated table rows) by ``benchmarks/extract_published_tables.py`` with
:func:`paper_rows` and :func:`thesis_rows`, so nothing is typed by hand; a test checks that the file still equals
what the texts give where they are there. Rows are the MVTec AD categories the sweep ran, in the paper's order,
then the texture, object and overall means where a model of the sweep ran every category of the group.

Example:
    >>> import pandas as pd
    >>> from anomalib_cbigan_bench.report import tidy
    >>> frame = tidy(pd.DataFrame({"model.class_path": ["Cbigan"], "data.init_args.category": ["brick"],
    ...                            "image_AUROC": [0.7]}))
    >>> paper_sections(frame, published_tables()["cbigan_paper"])  # no MVTec AD category: nothing to set beside it
    []
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd

from anomalib_cbigan.reports import markdown_table

PUBLISHED_FILE = "published.json"
PAPER_FILE = "cbigan-paper.txt"  # in the folder of method texts (data_roots: PAPERS_DIR)
THESIS_FILE = "fcbigan-thesis-summary.txt"
THESIS_HEADER = "Category\tf-AnoGAN\tFCBiGAN"  # the thesis's Table 2 (pixel AUPR of the MVTec AD textures)
TEXTURES = ("carpet", "grid", "leather", "tile", "wood")
OBJECTS = ("bottle", "cable", "capsule", "hazelnut", "metal_nut", "pill", "screw", "toothbrush", "transistor", "zipper")
# The paper's column order: five textures, their mean, ten objects, their mean, overall mean.
PAPER_COLUMNS = (*TEXTURES, "texture mean", *OBJECTS, "object mean", "overall mean")
GROUPS = {"texture mean": TEXTURES, "object mean": OBJECTS, "overall mean": TEXTURES + OBJECTS}
# Our model classes and the paper's or the thesis's row for the same method.
PAPER_METHODS = {"Cbigan": "CBiGAN (ours)", "Egbad": "EGBAD [16]", "Ganomaly": "GANomaly [14]"}
THESIS_METHODS = {"Fcbigan": "FCBiGAN"}
TABLES = {
    "II": ("maximum balanced accuracy (TPR + TNR) / 2", "image_MaxBalancedAccuracy", ("EGBAD [16]", "CBiGAN (ours)")),
    "III": ("image AUROC", "image_AUROC", ("GANomaly [14]", "EGBAD [16]", "CBiGAN (ours)")),
}


@cache
def published_tables() -> dict[str, Any]:
    """``{"cbigan_paper": {table: {method: {column: value}}}, "fcbigan_thesis": {category: {method: value}}}``.

    Example:
        >>> published_tables()["cbigan_paper"]["III"]["CBiGAN (ours)"]["bottle"]
        0.87
    """
    return json.loads(resources.files(__package__).joinpath(PUBLISHED_FILE).read_text(encoding="utf-8"))


def published_from_texts(paper_text: str, thesis_text: str) -> dict[str, Any]:
    """What :func:`published_tables` holds, parsed from the paper's and the thesis's texts."""
    return {"cbigan_paper": paper_rows(paper_text), "fcbigan_thesis": thesis_rows(thesis_text)}


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


def paper_sections(frame: pd.DataFrame, paper: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """Markdown lines: each paper table (``published_tables()["cbigan_paper"]``) with a column per model of
    ``frame`` (a tidy results frame).

    Empty when the sweep ran no MVTec AD category.
    """
    categories = [category for category in PAPER_COLUMNS if category in set(frame["category"])]
    if not categories:
        return []
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


def thesis_rows(text: str) -> dict[str, dict[str, float]]:
    r"""``{category: {"f-AnoGAN": aupr, "FCBiGAN": aupr}}`` from the thesis's Table 2 (lower-case categories).

    Example:
        >>> thesis_rows("Category\tf-AnoGAN\tFCBiGAN(Max)\nGrid\t0.050\t0.098\n\nTable 2: AUPR ...")
        {'grid': {'f-AnoGAN': 0.05, 'FCBiGAN': 0.098}}
    """
    start = text.index(THESIS_HEADER)
    rows: dict[str, dict[str, float]] = {}
    for line in text[start:].splitlines()[1:]:
        cells = [cell.strip() for cell in line.split("\t")]
        if len(cells) != 3:  # noqa: PLR2004  # the blank line before the caption ends the table
            break
        rows[cells[0].lower()] = {"f-AnoGAN": float(cells[1]), "FCBiGAN": float(cells[2])}
    return rows


def thesis_section(frame: pd.DataFrame, thesis: dict[str, dict[str, float]]) -> list[str]:
    """Markdown lines: the thesis's pixel AUPR (``published_tables()["fcbigan_thesis"]``) beside every model's
    ``pixel_AUPR`` on the textures the sweep ran."""
    if "pixel_AUPR" not in frame:
        return []
    datasets = [dataset for dataset in dict.fromkeys(frame["category"]) if frame.loc[frame["category"] == dataset,
                "category_name"].iloc[0] in thesis]  # fmt: skip
    if not datasets:
        return []
    from .report import _cell

    models = list(dict.fromkeys(frame["model"]))
    rows = []
    for dataset in datasets:
        name = frame.loc[frame["category"] == dataset, "category_name"].iloc[0]
        row = {"dataset": dataset, "thesis f-AnoGAN": f"{thesis[name]['f-AnoGAN']:.3f}",
               "thesis FCBiGAN": f"{thesis[name]['FCBiGAN']:.3f}"}  # fmt: skip
        row |= {model: _cell(frame.loc[(frame["category"] == dataset) & (frame["model"] == model), "pixel_AUPR"])
                for model in models}  # fmt: skip
        rows.append(row)
    return [
        "## Beside the FCBiGAN thesis (Peccia 2021, Table 2: pixel AUPR)",
        "",
        "Thesis columns: full-resolution textures, its own training length; ours: this sweep's `pixel_AUPR`.",
        "",
        markdown_table(rows),
    ]


def published_cells(published: dict[str, Any] | None) -> dict[tuple[str, str], str]:
    """``{(model class, category): "AUROC 0.99, max bal. acc. 0.99"}``: what the paper or the thesis published.

    Image AUROC (Table III) and maximum balanced accuracy (Table II) for the paper's methods, pixel AUPR (Table 2)
    for the thesis's FCBiGAN; ``None`` gives none.

    Example:
        >>> published_cells({"fcbigan_thesis": {"grid": {"f-AnoGAN": 0.05, "FCBiGAN": 0.098}}})
        {('Fcbigan', 'grid'): 'pixel AUPR 0.098'}
    """
    cells: dict[tuple[str, str], str] = {}
    paper = (published or {}).get("cbigan_paper")
    if paper is not None:
        for model_class, method in PAPER_METHODS.items():
            for category in (*TEXTURES, *OBJECTS):
                parts = [f"AUROC {paper['III'][method][category]:.2f}"]
                if method in paper["II"]:
                    parts.append(f"max bal. acc. {paper['II'][method][category]:.2f}")
                cells[(model_class, category)] = ", ".join(parts)
    for category, row in ((published or {}).get("fcbigan_thesis") or {}).items():
        for model_class, method in THESIS_METHODS.items():
            cells[(model_class, category)] = f"pixel AUPR {row[method]:.3f}"
    return cells
