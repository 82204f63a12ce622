"""Online adaptation on SHD-repro (``delayprop adapt``): the reports of single runs reduced to
results/adapt/summary.json, the tables of docs/adaptation.md and the figures
results/adapt/curves_<network>.png.

Every report is one ``delayprop adapt`` run (one network, one new speaker, one setting, one
seed), kept in results/adapt/records/<network>_s<speaker>_<setting>_seed<k>.json with its
command. The commands, from the repository root (OUT any folder; ``<tag>`` below is the
record's name, e.g. ``pub_s4_reh20_seed0``)::

    A="delayprop adapt results/models/eprop_pub_seed0 --data ../shared/data/shd-repro"
    B="delayprop adapt results/models/eprop_aug_seed0 --data ../shared/data/shd-repro"
    for s in 4 5; do
      # the reference and the candidates, seed 0 (curve every 25 samples)
      for c in "lr3e-4|--lr 3e-4" "lr1e-4|--lr 1e-4" "lr2e-4|--lr 2e-4" \
               "reh20|--lr 3e-4 --rehearsal 20" "reh20r2|--lr 3e-4 --rehearsal 20 --replay 2" \
               "reh100|--lr 3e-4 --rehearsal 100" \
               "reh100r2|--lr 3e-4 --rehearsal 100 --replay 2" \
               "reh100r4|--lr 3e-4 --rehearsal 100 --replay 4" \
               "dlr3e-3|--lr 3e-4 --delay-lr 3e-3" "hidden|--lr 3e-4 --params weights,delays" \
               "rlr3e-5|--lr 3e-4 --readout-lr 3e-5"; do
        $A --speaker $s --seed 0 ${c#*|} --out OUT/pub_s${s}_${c%%|*}_seed0
      done
      # the reference, the chosen setting and lr 1e-4 over seeds 1, 2 (pub) and 0, 1, 2
      # (aug), curve every 50 samples
      for c in "lr3e-4|--lr 3e-4" "reh100|--lr 3e-4 --rehearsal 100" "lr1e-4|--lr 1e-4"; do
        for k in 1 2; do
          $A --speaker $s --seed $k ${c#*|} --eval-every 50 --out OUT/pub_s${s}_${c%%|*}_seed$k
        done
        for k in 0 1 2; do
          $B --speaker $s --seed $k ${c#*|} --eval-every 50 --out OUT/aug_s${s}_${c%%|*}_seed$k
        done
      done
      # the chosen setting in a chip's number formats, seeds 0, 1, 2
      for k in 0 1 2; do
        for c in "w8s|--weight-bits 8" "w8n|--weight-bits 8 --rounding nearest" \
                 "w8s-d2|--weight-bits 8 --delay-frac-bits 2" "w4s|--weight-bits 4"; do
          $A --speaker $s --seed $k --lr 3e-4 --rehearsal 100 ${c#*|} --eval-every 50 \
             --out OUT/pub_s${s}_reh100-${c%%|*}_seed$k
        done
        for c in "w8s|--weight-bits 8" "w8n|--weight-bits 8 --rounding nearest"; do
          $B --speaker $s --seed $k --lr 3e-4 --rehearsal 100 ${c#*|} --eval-every 50 \
             --out OUT/aug_s${s}_reh100-${c%%|*}_seed$k
        done
      done
    done
    python results/adapt/summarize.py OUT/*/adapt.json

``python results/adapt/summarize.py results/adapt/records/*.json`` remakes the summary, the
tables and the figures from the kept records.

Selection, on validation only (seed 0, speakers 4 and 5 pooled): a setting qualifies if its
gain in the new speakers' validation accuracy is at least 80% of the reference's (lr 3e-4,
no mitigation) and the known speakers' validation accuracy (the run's validation samples,
never trained on) drops by at most 3 points; of those, the one with the highest new-speaker
validation accuracy. If none qualifies, forgetting comes first: of the settings whose known
speakers' validation accuracy drops by at most 3 points, the one with the highest
new-speaker validation accuracy. The held-out parts and the known speakers' test samples
play no part.
"""

from __future__ import annotations

import json
import shutil
import statistics as st
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORDS = HERE / "records"
REFERENCE = "lr3e-4"
#: a setting named <chosen>-w<bits><rounding>[-d<frac bits>] is the chosen one run in a chip's
#: number formats (--weight-bits, --rounding, --delay-frac-bits): a measurement of that
#: deployment, not a candidate of the selection
VARIANT = "-w"


def is_variant(setting: str) -> bool:
    return VARIANT in setting


def tag_of(rep: dict) -> tuple[str, int, str, int]:
    """(network, speaker, setting, seed) from the --out folder name of the run (its
    adapt.json) or from the name of a kept record (records/pub_s4_reh20_seed0.json)."""
    path = Path(rep["_path"])
    name = path.parent.name if path.name == "adapt.json" else path.stem  # pub_s4_reh20_seed0
    net, spk, *setting, seed = name.split("_")
    return net, int(spk[1:]), "_".join(setting), int(seed[4:])


def load(paths: list[str]) -> list[dict]:
    reps = []
    for p in paths:
        rep = json.loads(Path(p).read_text())
        rep["_path"] = str(p)
        reps.append(rep)
    return reps


def pool(reps: list[dict]) -> dict:
    """Speakers pooled for one (network, setting, seed): new-speaker parts weighted by their
    samples, known speakers averaged over the runs."""
    out = {}
    for when in ("before", "after"):
        o = {}
        for key, size in (("new_held", "held"), ("new_val", "val")):
            rows = [r["speakers"][0] for r in reps]
            n = sum(r["sizes"][size] for r in rows)
            o[key] = sum(r[when][key] * r["sizes"][size] for r in rows) / n
        for key in ("known_test", "known_val"):
            vals = [r["speakers"][0][when][key] for r in reps]
            o[key] = None if None in vals else sum(vals) / len(vals)
        out[when] = o
    out["gain"] = {k: out["after"][k] - out["before"][k] for k in out["after"]
                   if out["after"][k] is not None}
    return out


def mean_std(xs: list[float]) -> dict:
    """Mean, std (ddof 1) and the t-based 95% interval of the mean, in points."""
    from delayprop.experiments.stats import mean_interval

    ci = mean_interval([100 * x for x in xs])
    return {"mean": 100 * st.mean(xs), "std": 100 * st.stdev(xs) if len(xs) > 1 else 0.0,
            "n": len(xs), "ci95": [ci.low, ci.high] if len(xs) > 1 else None}


def main(paths: list[str]) -> dict:
    reps = load(paths)
    groups: dict[tuple, list[dict]] = {}
    for r in reps:
        net, spk, setting, seed = tag_of(r)
        groups.setdefault((net, setting, seed), []).append(r)
        RECORDS.mkdir(exist_ok=True)
        dest = RECORDS / f"{net}_s{spk}_{setting}_seed{seed}.json"
        if Path(r["_path"]).resolve() != dest.resolve():
            shutil.copyfile(r["_path"], dest)
    pooled = {k: pool(v) for k, v in sorted(groups.items())}

    # selection on validation, seed 0, per network
    selection = {}
    for net in sorted({k[0] for k in pooled}):
        cands = {s: p for (n, s, seed), p in pooled.items()
                 if n == net and seed == 0 and not is_variant(s)}
        if REFERENCE not in cands:
            continue
        ref_gain = cands[REFERENCE]["gain"]["new_val"]
        rows = []
        for s, p in sorted(cands.items()):
            kv = p["gain"].get("known_val")
            ok = (p["gain"]["new_val"] >= 0.8 * ref_gain and kv is not None and kv >= -0.03)
            rows.append({"setting": s, "new_val_before": p["before"]["new_val"],
                         "new_val_after": p["after"]["new_val"],
                         "new_val_gain": p["gain"]["new_val"],
                         "share_of_reference_gain": p["gain"]["new_val"] / ref_gain,
                         "known_val_before": p["before"]["known_val"],
                         "known_val_after": p["after"]["known_val"],
                         "known_val_change": kv, "qualifies": ok})
        ok = [r for r in rows if r["qualifies"] and r["setting"] != REFERENCE]
        rule = "qualifies: highest new-speaker validation accuracy"
        if not ok:  # forgetting first: of those within 3 points, the largest gain
            ok = [r for r in rows if r["setting"] != REFERENCE
                  and r["known_val_change"] is not None and r["known_val_change"] >= -0.03]
            rule = ("none qualifies: of the settings within 3 points of forgetting, the "
                    "highest new-speaker validation accuracy")
        chosen = max(ok, key=lambda r: r["new_val_after"])["setting"] if ok else None
        selection[net] = {"rows": rows, "chosen": chosen, "rule": rule}
    for sel in selection.values():  # a speaker hold-out run has no known validation
        if all(r["known_val_change"] is None for r in sel["rows"]) and "pub" in selection:
            sel["chosen"] = selection["pub"]["chosen"]
            sel["rule"] = ("no known-speaker validation samples (the run holds out whole "
                           "speakers for validation): the setting chosen for pub")

    # held-out results over seeds, per network and setting
    results = {}
    for net in sorted({k[0] for k in pooled}):
        for s in sorted({k[1] for k in pooled if k[0] == net}):
            seeds = sorted(k[2] for k in pooled if k[0] == net and k[1] == s)
            ps = [pooled[(net, s, k)] for k in seeds]
            rows = [r["speakers"][0] for k in seeds for r in groups[(net, s, k)]]
            buf = rows[0]["rehearsal"]
            results[f"{net}/{s}"] = {
                "seeds": seeds,
                "new_held_before": mean_std([p["before"]["new_held"] for p in ps]),
                "new_held_after": mean_std([p["after"]["new_held"] for p in ps]),
                "new_held_gain": mean_std([p["gain"]["new_held"] for p in ps]),
                "known_test_before": mean_std([p["before"]["known_test"] for p in ps]),
                "known_test_after": mean_std([p["after"]["known_test"] for p in ps]),
                "known_test_change": mean_std([p["gain"]["known_test"] for p in ps]),
                "rehearsal_bytes": buf["bytes"] if buf else 0,
                "chip_format": rows[0].get("chip_format"),
                "ms_per_step_median": st.median(r["ms_per_step"] for r in rows),
                "per_seed": [{"seed": k, **p} for k, p in zip(seeds, ps)],
            }
    target = {}
    for net, sel in selection.items():
        ref, ch = results.get(f"{net}/{REFERENCE}"), results.get(f"{net}/{sel['chosen']}")
        if ref and ch:
            share = ch["new_held_gain"]["mean"] / ref["new_held_gain"]["mean"]
            lost = -ch["known_test_change"]["mean"]
            target[net] = {"chosen": sel["chosen"], "share_of_reference_gain": share,
                           "known_points_lost": lost,
                           "met": share >= 0.8 and lost <= 3.0}
    summary = {"what": __doc__.split("\n\n")[0].replace("\n", " "),
               "made_by": "python results/adapt/summarize.py <adapt.json reports> "
                          "(commands: this script's docstring and each record)",
               "selection": selection, "results": results, "target": target}
    (HERE / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(tables(summary))
    plot(groups, selection)
    return summary


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def tables(summary: dict) -> str:
    lines = []
    for net, sel in summary["selection"].items():
        lines += [f"Selection ({net}, seed 0, speakers 4 and 5 pooled, validation parts only)",
                  "",
                  "| setting | new speakers val. before -> after (%) | share of reference "
                  "gain | known speakers val. before -> after (%) | qualifies |",
                  "|---|---|---|---|---|"]
        for r in sel["rows"]:
            lines.append(f"| {r['setting']} | {100 * r['new_val_before']:.2f} -> "
                         f"{100 * r['new_val_after']:.2f} | "
                         f"{100 * r['share_of_reference_gain']:.0f}% | "
                         f"{pct(r['known_val_before'])} -> {pct(r['known_val_after'])} | "
                         f"{'yes' if r['qualifies'] else 'no'} |")
        lines += ["", f"chosen: {sel['chosen']} ({sel['rule']})", ""]
    lines += ["Held out (new speakers 4 and 5 pooled) and known speakers' test, mean +- std "
              "over seeds [t-based 95% interval]", "",
              "| network / setting | seeds | new speakers before (%) | after (%) | gain "
              "(points) | known before (%) | after (%) | change (points) | buffer (bytes) |",
              "|---|---|---|---|---|---|---|---|---|"]

    def ms(d):
        return f"{d['mean']:.2f} +- {d['std']:.2f}"

    def ci(d):
        lo_hi = d.get("ci95")
        return f"{ms(d)} [{lo_hi[0]:+.2f}, {lo_hi[1]:+.2f}]" if lo_hi else ms(d)

    for key, r in summary["results"].items():
        lines.append(f"| {key} | {','.join(map(str, r['seeds']))} | "
                     f"{ms(r['new_held_before'])} | {ms(r['new_held_after'])} | "
                     f"{ci(r['new_held_gain'])} | {ms(r['known_test_before'])} | "
                     f"{ms(r['known_test_after'])} | {ci(r['known_test_change'])} | "
                     f"{r['rehearsal_bytes']:,} |")
    for net, t in summary["target"].items():
        lines += ["", f"{net}: chosen {t['chosen']}: {100 * t['share_of_reference_gain']:.0f}% "
                      f"of the reference's held-out gain, {t['known_points_lost']:.2f} points "
                      f"lost on the known speakers: target {'met' if t['met'] else 'not met'}"]
    return "\n".join(lines)


def plot(groups: dict, selection: dict) -> None:
    """Seed 0: held-out accuracy of each new speaker and the known speakers' test accuracy
    along the stream, one panel per setting run over every seed (the reference first, then
    the chosen one)."""
    from delayprop.plots import _plt, _save

    plt = _plt()
    for net, sel in selection.items():
        settings = sorted({s for (n, s, seed) in groups
                           if n == net and seed == 0 and not is_variant(s)})
        # the settings run over every seed (the reference, the chosen one and any kept for
        # comparison); the other candidates are in the selection table
        multi = {s for (n, s, seed) in groups if n == net and seed != 0 and not is_variant(s)}
        settings = [s for s in settings if s in multi] or settings
        order = [REFERENCE, sel["chosen"]] + [s for s in settings
                                              if s not in (REFERENCE, sel["chosen"])]
        order = [s for s in order if s in settings]
        cols = 2
        rows = (len(order) + 1) // 2
        fig, axes = plt.subplots(rows, cols, figsize=(9.6, 3.4 * rows), sharey=True,
                                 squeeze=False)
        for ax, setting in zip(axes.flat, order):
            for rep in sorted(groups[(net, setting, 0)],
                              key=lambda r: r["speakers"][0]["speaker"]):
                r = rep["speakers"][0]
                k = [p["samples"] for p in r["curve"]]
                line, = ax.plot(k, [100 * p["new_held"] for p in r["curve"]], "-o", ms=3,
                                label=f"new speaker {r['speaker']} (held out)")
                ax.plot(k, [100 * p["known_test"] for p in r["curve"]], "--s", ms=3,
                        color=line.get_color(),
                        label=f"known speakers (test), adapting to {r['speaker']}")
            role = {REFERENCE: " (reference)", sel["chosen"]: " (chosen)"}.get(setting, "")
            ax.set_title(f"{net}: {setting}{role}", fontsize=9)
            ax.grid(alpha=0.3)
        for ax in axes.flat[len(order):]:
            ax.axis("off")
        for k, ax in enumerate(axes.flat[:len(order)]):
            if k + cols >= len(order):  # the lowest panel of its column
                ax.set_xlabel("new speaker's samples learned (one pass, batch 1)")
                ax.tick_params(labelbottom=True)
        for ax in axes[:, 0]:
            ax.set_ylabel("accuracy (%)")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.tight_layout(rect=(0, 0.45 / (3.4 * rows), 1, 1))
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8)
        _save(fig, HERE / f"curves_{net}.png")


if __name__ == "__main__":
    main(sys.argv[1:])
