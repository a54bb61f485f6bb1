"""In-process baselines in their own interpreters, driven line by line so runs can be interleaved with
the server's: noise from anything else on the machine then falls on every contender alike.

    python -m benchmarks.inprocess PIPELINE     # reads "IMAGE WIDTHxHEIGHT" lines, answers seconds;
                                                # "rss" answers the process's peak RSS in MB

One process per pipeline keeps one pipeline's peak memory from hiding another's.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.pipelines import PIPELINES

REPO = Path(__file__).resolve().parents[1]


class Worker:
    """The client side: one pipeline in a subprocess."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.inprocess", pipeline],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )

    def _ask(self, line: str) -> float:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline()
        if not answer:
            raise RuntimeError(f"in-process worker {self.pipeline} died")
        return float(answer)

    def run(self, image: Path, size: tuple[int, int]) -> float:
        """Seconds for one run of the pipeline on ``image``."""
        return self._ask(f"{image} {size[0]}x{size[1]}")

    def peak_rss_mb(self) -> float:
        return self._ask("rss")

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=30)


def main(argv: list[str]) -> int:
    (name,) = argv
    pipeline = PIPELINES[name]
    for line in sys.stdin:
        command = line.split()
        if command == ["rss"]:
            answer = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        else:
            image, size_text = command
            width, height = (int(part) for part in size_text.split("x"))
            started = time.perf_counter()
            pipeline(Path(image), (width, height))
            answer = time.perf_counter() - started
        print(f"{answer:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
