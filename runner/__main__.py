"""Entry point: `python -m runner <run_dir>`."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from runner.main import run


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # One INFO line per ingest request would drown the runner's own messages.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if len(argv) != 2:
        logging.error("usage: python -m runner <run_dir>")
        return 2
    return asyncio.run(run(Path(argv[1]).resolve()))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
