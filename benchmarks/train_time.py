"""Full training time and peak memory of the assistant's model (spaCy pipeline + NLU + core).

Run: .venv/bin/python benchmarks/train_time.py   (target: ≤ 5 minutes on 2 cores)
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.launcher import rasa_env, train_command  # noqa: E402
from bot.nlu.spacy_pipeline import save_pipeline  # noqa: E402
from bot.settings import PROJECT_ROOT  # noqa: E402


def main() -> None:
    started = time.perf_counter()
    save_pipeline()
    spacy_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run(
            train_command(Path(out), "--force"),
            cwd=PROJECT_ROOT,
            env=rasa_env(),
            check=True,
            capture_output=True,
        )
        rasa_seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"spaCy pipeline build: {spacy_seconds:.1f} s")
    print(f"rasa train (NLU + core, from scratch): {rasa_seconds:.0f} s")
    print(
        f"total: {(spacy_seconds + rasa_seconds) / 60:.1f} min, "
        f"peak training memory {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
