"""Mean +- std over seeds 0-2 of the online adaptation runs (commands.sh, commands2.sh):
prints and writes results/online/summary.md.  python results/online/summary.py"""

import json
import statistics as st
from pathlib import Path

HERE = Path(__file__).resolve().parent


def ms(xs: list[float]) -> str:
    return f"{st.mean(xs):.2f} +- {st.stdev(xs):.2f}"


lines = ["| network (round 13's recipe) | seeds | unheard speakers' held-out halves, before (%) | "
         "after 200 samples each (%) | known speakers' test accuracy, before (%) | after (%) |",
         "|---|---|---|---|---|---|"]
for proto, name in (("pub", "published protocol"), ("aug", "augmentation protocol")):
    files = [HERE / f"adapt_test_{proto}.json"] + [HERE / f"adapt_test_{proto}_seed{k}.json"
                                                   for k in (1, 2)]
    runs = [json.loads(f.read_text()) for f in files if f.exists()]
    if len(runs) < 2:
        continue
    pooled = [r["pooled"][0] for r in runs]
    lines.append(
        f"| {name} | {len(runs)} | {ms([100 * p['held_before'] for p in pooled])} | "
        f"**{ms([100 * p['held_after'] for p in pooled])}** | "
        f"{ms([100 * r['known_before'] for r in runs])} | "
        f"{ms([100 * p['known_after'] for p in pooled])} |")
text = "\n".join(lines) + "\n"
print(text, end="")
(HERE / "summary.md").write_text(text)
