"""Entry point: `python -m runner <run_dir>`, the run's secrets as JSON on stdin."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

from runner.main import run

# Agents share the machine with the control plane: below it in the CPU queue, so the API
# and the orchestration stay responsive however many agents run. An agent mostly waits on
# its model anyway; git and the agent's tools inherit the niceness.
NICENESS = 10


def main(argv: list[str], secrets: str | None = None) -> int:
    """Run the spec in argv[1]. `secrets` (the run token and credentials) come from the
    launcher through memory: the fork server's request, or else our stdin."""
    if secrets is None:
        secrets = sys.stdin.read()
        # Nothing else comes that way; the agent must not inherit the pipe.
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.nice(NICENESS)
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
    return asyncio.run(run(Path(argv[1]).resolve(), secrets or None))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
