"""The SPR compressor's CPU per document in this tree and in another checkout of the project,
alternated, on the SPR bench corpus: for checking that a change kept the compressor's speed.

    git worktree add /tmp/before <commit>
    .venv/bin/python bench/spr_tree_compare.py /tmp/before [--alternations 5] [--passes 7]

Each measurement runs in a fresh interpreter that imports `tasks.spr.compress` from the tree
being measured (the file it loaded is printed), then times `compress` over the 63 documents at
the bench's two ratios: CPU seconds, best of `--passes`. The trees alternate so that a change
of load hits both; the best run of each tree is compared. A check, not a benchmark with a
target (`make bench` does not run it: it needs the other tree).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
RATIOS = (0.3, 0.15)

CHILD = """
import importlib.util, json, sys, time
sys.path.insert(0, {tree!r})
import tasks.spr.compress  # the measured tree's, imported before the bench imports it
module = sys.modules["tasks.spr.compress"]  # (tasks.spr exports a function of that name)
spec = importlib.util.spec_from_file_location("spr_bench", {bench!r})
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
docs = [text for _, text in bench.corpus()]
best = {{}}
for ratio in {ratios!r}:
    best[ratio] = float("inf")
    for _ in range({passes}):
        started = time.process_time()
        for text in docs:
            bench.ours(text, ratio)
        best[ratio] = min(best[ratio], (time.process_time() - started) / len(docs))
print(json.dumps({{"file": module.__file__, "ms": {{str(r): s * 1e3 for r, s in best.items()}}}}))
"""


def measure(tree: Path, passes: int) -> dict:
    code = CHILD.format(
        tree=str(tree), bench=str(HERE / "bench" / "spr_bench.py"), ratios=RATIOS, passes=passes
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"measuring {tree} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="another checkout of this project")
    parser.add_argument("--alternations", type=int, default=5)
    parser.add_argument("--passes", type=int, default=7)
    args = parser.parse_args()
    trees = {"other": args.other.resolve(), "this": HERE}
    best = {name: dict.fromkeys(map(str, RATIOS), float("inf")) for name in trees}
    for round_no in range(1, args.alternations + 1):
        for name, tree in trees.items():
            run = measure(tree, args.passes)
            cells = " / ".join(f"{run['ms'][str(r)]:.2f}" for r in RATIOS)
            print(f"round {round_no} {name:5} {cells} ms  ({run['file']})")
            for ratio, ms in run["ms"].items():
                best[name][ratio] = min(best[name][ratio], ms)
    ratios = " / ".join(map(str, RATIOS))
    print(f"\nbest run of each tree, CPU ms per document at ratio {ratios}:")
    for name in trees:
        print(f"  {name:5} " + " / ".join(f"{best[name][str(r)]:.2f}" for r in RATIOS))
    print(
        "  this / other: "
        + " / ".join(f"{best['this'][str(r)] / best['other'][str(r)]:.3f}" for r in RATIOS)
    )


if __name__ == "__main__":
    main()
