"""Online adaptation to unheard voices (per-step e-prop, examples/online_adaptation.py): the
per-run reports reduced to results/online/summary.json (mean +- std over seeds 0-2 per protocol,
per run and speaker the accuracies before and after, the learning-rate choice).

The networks: results/sota/runs/r13_rd_sum80_drop10_{pub,aug}_seed{0,1,2} (learned readout
delays, per-step loss, dropout 0.1, 80 epochs). Each new speaker's
samples are split in halves (stratified by class); the network learns online, one sample at a
time, from at most 200 of the first half (one pass, Adam, delay lr = 200 x lr) and is scored on
the second half; "known" is the test accuracy on the speakers it was trained on. The lr was
chosen first, on voices that are not the test's (the augmentation run's validation speakers 6
and 8; best pooled held-out accuracy), then used on the test speakers (4 and 5). The commands
that made the reports (from the repository root; each ``--out`` report is an input here)::

    A="python examples/online_adaptation.py --data-dir .devdata/shd --quiet --limit 200 --seed 0"
    R=results/sota/runs
    $A --run $R/r13_rd_sum80_drop10_aug_seed0 --pool val --lr 3e-5 1e-4 3e-4 1e-3 --out val.json
    for k in 0 1 2; do
      $A --lr 3e-4 --run $R/r13_rd_sum80_drop10_aug_seed$k --pool test --exclude 6 8 \\
         --out test_aug_seed$k.json
      $A --lr 3e-4 --run $R/r13_rd_sum80_drop10_pub_seed$k --pool test --out test_pub_seed$k.json
    done
    python results/online/summary.py val.json test_*_seed*.json

(The reports themselves are in git history: commit d28840c, results/online/. The script
examples/online_adaptation.py is too: ``delayprop adapt`` replaces it, results/adapt/.)
"""

from __future__ import annotations

import json
import statistics as st
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "summary.json"
KEEP = ("speaker", "adapt_samples", "held_samples", "held_before", "held_after", "known_after",
        "ms_per_step")


def mean_std(xs: list[float]) -> dict:
    return {"mean": round(100 * st.mean(xs), 2), "std": round(100 * st.stdev(xs), 2),
            "n": len(xs)}


def main(paths: list[str]) -> dict:
    reports = [json.loads(Path(p).read_text()) for p in paths]
    val = [r for r in reports if r["args"]["pool"] == "val"]
    test = [r for r in reports if r["args"]["pool"] == "test"]
    out: dict = {"what": __doc__.split("\n\n")[0].replace("\n", " "), "made_by":
                 "python results/online/summary.py <the reports of "
                 "examples/online_adaptation.py> (commands: this script's docstring)"}
    if val:
        out["lr_choice"] = {"run": val[0]["run"], "command": val[0]["command"],
                            "speakers": val[0]["new_speakers"], "best_lr": val[0]["best_lr"],
                            "pooled": val[0]["pooled"]}
    out["runs"] = [{"run": r["run"], "command": r["command"], "protocol": "aug"
                    if r["run"].rstrip("/").split("_")[-2] == "aug" else "pub",
                    "new_speakers": r["new_speakers"], "known_before": r["known_before"],
                    "pooled": r["pooled"][0],
                    "speakers": [{k: row[k] for k in KEEP} for row in r["rows"]]}
                   for r in test]
    out["table_percent"] = {}
    for proto in ("pub", "aug"):
        runs = [r for r in out["runs"] if r["protocol"] == proto]
        if len(runs) < 2:
            continue
        out["table_percent"][proto] = {
            "seeds": len(runs),
            "unheard_held_out_before": mean_std([r["pooled"]["held_before"] for r in runs]),
            "unheard_held_out_after": mean_std([r["pooled"]["held_after"] for r in runs]),
            "known_before": mean_std([r["known_before"] for r in runs]),
            "known_after": mean_std([r["pooled"]["known_after"] for r in runs]),
        }
    return out


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    summary = main(sys.argv[1:])
    text = json.dumps(summary, indent=1) + "\n"
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(text)
    tmp.replace(OUT)
    print(json.dumps(summary["table_percent"], indent=1))
