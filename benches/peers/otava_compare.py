"""Apache Otava on an llmpulse history, for `cargo bench -p llmpulse --bench watch_otava`.

Reads the history's records, makes the per-run aggregates Otava is fed in practice (each
target's median latency, success rate and mean coverage per run), runs Otava's change-point
detection (E-divisive means, as `otava analyze` does) on each series, and prints one JSON
object: every change point as {target, metric, index, run_start}.

    python otava_compare.py HISTORY_DIR [--window-len 30] [--max-pvalue 0.001]
"""
import argparse
import collections
import glob
import json
import os
import statistics

from otava.analysis import compute_change_points


def main():
    p = argparse.ArgumentParser()
    p.add_argument("history")
    p.add_argument("--window-len", type=int, default=30)
    p.add_argument("--max-pvalue", type=float, default=0.001)
    a = p.parse_args()
    runs = collections.defaultdict(lambda: collections.defaultdict(list))
    starts = {}
    for path in glob.glob(os.path.join(a.history, "records", "*", "*.jsonl")):
        for line in open(path, encoding="utf-8"):
            r = json.loads(line)
            cell = runs[(r["target"], r["run_id"])]
            cell["success"].append(1.0 if r["success"] else 0.0)
            if r["success"]:
                cell["latency"].append(r["latency_sec"])
                if r.get("coverage_score") is not None:
                    cell["coverage"].append(r["coverage_score"])
            starts.setdefault(r["run_id"], r["timestamp"])
    series = collections.defaultdict(list)
    for (target, run_id), cell in sorted(runs.items(), key=lambda kv: (kv[0][0], starts[kv[0][1]])):
        series[(target, "latency_p50")].append((run_id, statistics.median(cell["latency"]) if cell["latency"] else float("nan")))
        series[(target, "success_rate")].append((run_id, statistics.fmean(cell["success"])))
        series[(target, "coverage")].append((run_id, statistics.fmean(cell["coverage"]) if cell["coverage"] else float("nan")))
    out = []
    for (target, metric), points in sorted(series.items()):
        values = [v for _, v in points]
        cps, _ = compute_change_points(values, window_len=a.window_len, max_pvalue=a.max_pvalue)
        for cp in cps:
            out.append({"target": target, "metric": metric, "index": int(cp.index),
                        "runs": len(values), "run_start": starts[points[int(cp.index)][0]]})
    print(json.dumps({"change_points": out}))


if __name__ == "__main__":
    main()
