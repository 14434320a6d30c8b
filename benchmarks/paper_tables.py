"""The CBiGAN paper's Tables II and III with a column for each of our results, generated from files.

Reads the paper's numbers from its text (``../shared/papers/cbigan-paper.txt``, tab-separated
table rows) and ours from the reproduction's results CSV (``benchmarks/mvtec_reproduction.py``),
and writes ``benchmarks/paper_tables.md``: one row per MVTec AD category plus the texture,
object and overall means; a cell we have not run says so. Nothing here is typed by hand.

Usage:
    python benchmarks/paper_tables.py [--results benchmarks/results/mvtec/results.csv]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
from pathlib import Path

HERE = Path(__file__).parent
PAPER = HERE.parent.parent / "shared" / "papers" / "cbigan-paper.txt"
TEXTURES = ("carpet", "grid", "leather", "tile", "wood")
OBJECTS = ("bottle", "cable", "capsule", "hazelnut", "metal_nut", "pill", "screw", "toothbrush", "transistor", "zipper")
# The paper's column order: five textures, their mean, ten objects, their mean, overall mean.
PAPER_COLUMNS = (*TEXTURES, "texture mean", *OBJECTS, "object mean", "overall mean")
TABLES = {
    "II": ("Maximum balanced accuracy (TPR + TNR) / 2", "image_MaxBalancedAccuracy",
           {"EGBAD [16]": "Egbad", "CBiGAN (ours)": "Cbigan"}),
    "III": ("Image AUROC", "image_AUROC",
            {"GANomaly [14]": "Ganomaly", "EGBAD [16]": "Egbad", "CBiGAN (ours)": "Cbigan"}),
}  # fmt: skip
OUR_MODELS = ("Cbigan", "Egbad", "Fcbigan", "Ganomaly")
NOT_RUN = "not run"


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


def our_values(results: Path, metric: str) -> dict[str, dict[str, float]]:
    """``{model: {category: value}}`` from a results CSV (finished jobs only)."""
    values: dict[str, dict[str, float]] = {}
    if results.exists():
        with results.open() as handle:
            for row in csv.DictReader(handle):
                if row.get("status", "done") == "done" and row.get(metric, "") not in ("", None):
                    values.setdefault(row["model"], {})[row["category"]] = float(row[metric])
    return values


def _mean(values: dict[str, float], categories: tuple[str, ...]) -> float | None:
    """Mean over ``categories``, only when all of them were run (a partial mean would mislead)."""
    if all(category in values for category in categories):
        return statistics.fmean(values[c] for c in categories)
    return None


def table_markdown(table: str, paper: dict[str, dict[str, float]], ours: dict[str, dict[str, float]]) -> str:
    """One paper table as category rows, paper columns then ours."""
    title, metric, methods = TABLES[table]
    header = [f"paper {label.split(' [')[0].replace(' (ours)', '')}" for label in methods]
    header += [f"ours {model}" for model in OUR_MODELS]
    lines = [f"## Table {table}: {title} (`{metric}`)", "",
             "| category | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]  # fmt: skip
    groups = (("texture mean", TEXTURES), ("object mean", OBJECTS), ("overall mean", TEXTURES + OBJECTS))
    for column in (*TEXTURES, "texture mean", *OBJECTS, "object mean", "overall mean"):
        cells = [f"{paper[label][column]:.2f}" for label in methods]
        for model in OUR_MODELS:
            values = ours.get(model, {})
            if column in dict(groups):
                value = _mean(values, dict(groups)[column])
            else:
                value = values.get(column)
            if model == "Fcbigan" and column in (*OBJECTS, "object mean", "overall mean"):
                cells.append("n/a (textures only)")
            else:
                cells.append(NOT_RUN if value is None else f"{value:.2f}")
        name = f"*{column}*" if column.endswith("mean") else column
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(paper_text: str, results: Path) -> str:
    """The whole Markdown document."""
    paper = paper_rows(paper_text)
    parts = [
        "# The CBiGAN paper's MVTec AD tables, with ours",
        "",
        (
            f"Generated by `python benchmarks/paper_tables.py` from the paper's text and `{results.name}` "
            "(written by `benchmarks/mvtec_reproduction.py`); do not edit by hand. Paper columns: Carrara et al., "
            "ICPR 2020, Tables II and III (their GANomaly column is quoted from ITAE [23]). "
            f"'{NOT_RUN}': no finished job for that model and category; a mean needs every category of its group."
        ),
    ]
    for table in TABLES:
        parts += ["", table_markdown(table, paper[table], our_values(results, TABLES[table][1]))]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> Path:
    """Write the tables; return their path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=HERE / "results" / "mvtec" / "results.csv")
    parser.add_argument("--paper", type=Path, default=PAPER)
    parser.add_argument("--output", type=Path, default=HERE / "paper_tables.md")
    args = parser.parse_args(argv)
    text = render(args.paper.read_text(), args.results)
    tmp = args.output.with_name(f".{args.output.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, args.output)
    print(f"wrote {args.output}")
    return args.output


if __name__ == "__main__":
    main()
