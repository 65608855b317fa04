"""Run every benchmark on the shipped checkpoint; each prints one JSON object per figure.

    python bench/run.py                  # decoding, the explorer (AppTest and Chromium), the map, recall, training
    python bench/scale.py                # separately: a map of a million lines (about 45 minutes)
    python bench/run.py --budget-minutes 10   # plus the 10-minute training run
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-minutes", type=float, default=0, help="also train from scratch for this long")
    args = parser.parse_args()
    runs = [["decoding.py"], ["app_budgets.py"], ["browser.py"], ["map.py"], ["recall.py"], ["directions.py"],
            ["training.py", "--budget-minutes", str(args.budget_minutes)]]
    failed = 0
    for script, *options in runs:  # separate processes: no benchmark warms another's caches
        failed += subprocess.run([sys.executable, str(BENCH / script), *options]).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
