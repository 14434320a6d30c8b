"""Write the published figures the reports set beside ours (``anomalib_cbigan_bench/published.json``) from the
method texts: the CBiGAN paper's MVTec AD Tables II and III and the FCBiGAN thesis's Table 2.

Run once when a text changes; the file is committed and ships with the harness, and
``tests/unit/test_sweep_paper.py`` checks that it still equals what the texts give.

Usage:
    python benchmarks/extract_published_tables.py [--papers DIR]   # default: $PAPERS_DIR, else ../shared/papers
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from anomalib_cbigan.atomic_files import atomic_write_text
from anomalib_cbigan_bench import paper
from anomalib_cbigan_bench.data_roots import data_root

OUTPUT = Path(paper.__file__).with_name(paper.PUBLISHED_FILE)


def main(argv: list[str] | None = None) -> int:
    """Parse the texts and write the JSON file; print its path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--papers", type=Path, default=None, help="folder of the method texts")
    args = parser.parse_args(argv)
    papers = args.papers or data_root("PAPERS_DIR")
    texts = [papers / paper.PAPER_FILE, papers / paper.THESIS_FILE]
    missing = [str(path) for path in texts if not path.is_file()]
    if missing:
        print(f"error: no method text at {', '.join(missing)} (set PAPERS_DIR or --papers)", file=sys.stderr)
        return 2
    published = paper.published_from_texts(*(path.read_text(encoding="utf-8") for path in texts))
    atomic_write_text(OUTPUT, json.dumps(published, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
