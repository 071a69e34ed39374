"""Runs every measurement of bench/peers in one go and writes RESULTS/*.jsonl (run.sh calls it).

  python drive.py --results DIR --peers-cpp BIN --cli BIN [--only 1,2,3,4] [--rounds N]
      [--estimate-seconds S]

Items (docs/peers.md): 1 step cost (C++ then Python, tiny then medium, interleaved), 2 energy on
the live fake tree (every tool once per round, rounds interleaved), 3 estimates on this machine,
4 CodeCarbon's own code over trainmeter's CSV export (csv_compat.py). Item 5 (features) is
derived from these files by report.py. Every measurement line carries `uptime` at its start.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import common

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable


def load():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def run_json(cmd, env=None, timeout=900):
    """Runs cmd; returns the JSON lines it printed on stdout."""
    common.log("+", " ".join(cmd))
    p = subprocess.run(cmd, env=dict(os.environ, **(env or {})), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    out = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0:
        common.log(p.stderr[-3000:])
        raise RuntimeError("%s failed (%d)" % (cmd[0], p.returncode))
    return out, p.stderr


def append(path, obj):
    with open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")


def machine(results, cli):
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    freeze = subprocess.run([PY, "-m", "pip", "freeze"], stdout=subprocess.PIPE, text=True).stdout
    wanted = ("torch==", "codecarbon==", "zeus==", "carbontracker==", "eco2ai==", "pandas==",
              "numpy==", "setuptools==")
    versions = {l.split("==")[0]: l.split("==")[1] for l in freeze.splitlines()
                if l.lower().startswith(wanted)}
    info = {"date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "nproc": os.cpu_count(), "cpu_model": cpu, "kernel": platform.release(),
            "python": platform.python_version(), "versions": versions,
            "uptime": subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip(),
            "mem_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30}
    with open(os.path.join(results, "machine.json"), "w") as f:
        json.dump(info, f, indent=1)


def item1(a):
    out = os.path.join(a.results, "step_cost.jsonl")
    fake = os.path.join(a.work, "fake-step")
    for size in ("tiny", "medium"):
        for lang in ("cpp", "python"):
            la = load()
            if lang == "cpp":
                env = {"TRAINMETER_OUTPUT": os.path.join(a.work, "step-cost-%s.json" % size)}
                rows, _ = run_json([a.peers_cpp, "step-cost", "--size", size], env)
            else:
                rows, _ = run_json([PY, os.path.join(HERE, "step_cost.py"), "--size", size,
                                    "--fake-rapl", fake])
            for r in rows:
                r["load_at_start"] = la
                append(out, r)


def trainmeter_run(a, label, seconds, size, env):
    report = os.path.join(a.work, "trainmeter-%s.json" % label)
    env = dict(env, TRAINMETER_OUTPUT=report, TRAINMETER_RUN_NAME="peers-" + label,
               TRAINMETER_COUNTRY="FR")
    rows, _ = run_json([a.peers_cpp, "run", "--size", size, "--seconds", str(seconds)], env)
    with open(report) as f:
        rep = json.load(f)
    res = {"tool": "trainmeter", "label": label, "lang": "cpp", "seconds": seconds, "size": size,
           "t_start": rows[0]["t_start"], "t_end": rows[0]["t_end"], "steps": rows[0]["steps"],
           "report": report}
    return res, rep


def item2(a):
    out = os.path.join(a.results, "energy_fake.jsonl")
    fake = os.path.join(a.work, "fake-energy")
    for rnd in range(a.rounds):
        order = ["trainmeter", "zeus", "codecarbon", "carbontracker", "eco2ai"]
        if rnd % 2:
            order.reverse()
        for tool in order:
            la = load()
            label = "fake-%s-r%d" % (tool, rnd)
            if tool == "trainmeter":
                writer, meta = common.start_fake_rapl(fake)
                try:
                    res, rep = trainmeter_run(a, label, 8, "medium",
                                              {"TRAINMETER_POWERCAP_ROOT": fake,
                                               "TRAINMETER_ENERGY_SOURCES": "rapl"})
                finally:
                    common.stop_fake_rapl(writer)
                res["fake"] = meta
                res["mode"] = "fake_rapl"
                res["energy"] = rep.get("energy")
                res["duration_s"] = duration_of(rep)
            else:
                rows, _ = run_json([PY, os.path.join(HERE, "energy.py"), "--tool", tool,
                                    "--fake-rapl", fake, "--workdir", a.work, "--label", label,
                                    "--size", "medium", "--seconds", "8"])
                res = rows[0]
            res["round"] = rnd
            res["load_at_start"] = la
            append(out, res)


def duration_of(rep):
    run = rep.get("run") or {}
    for k in ("duration_s",):
        if isinstance(run.get(k), (int, float)):
            return run[k]
    if isinstance(run.get("duration_ns"), (int, float)):
        return run["duration_ns"] / 1e9
    return None


def item3(a):
    out = os.path.join(a.results, "energy_estimate.jsonl")
    for tool in ["trainmeter", "codecarbon", "eco2ai", "carbontracker", "zeus"]:
        la = load()
        label = "estimate-%s" % tool
        if tool == "trainmeter":
            res, rep = trainmeter_run(a, label, a.estimate_seconds, "medium", {})
            res["mode"] = "this_machine"
            res["energy"] = rep.get("energy")
            res["carbon"] = rep.get("carbon")
            res["duration_s"] = duration_of(rep)
        else:
            rows, _ = run_json([PY, os.path.join(HERE, "energy.py"), "--tool", tool, "--workdir",
                                a.work, "--label", label, "--size", "medium", "--seconds",
                                str(a.estimate_seconds)])
            res = rows[0]
        res["load_at_start"] = la
        res["load_at_end"] = load()
        append(out, res)


def item4(a):
    report = os.path.join(a.work, "trainmeter-estimate-trainmeter.json")
    if not os.path.exists(report):
        res, _ = trainmeter_run(a, "estimate-trainmeter", a.estimate_seconds, "medium", {})
    rows, _ = run_json([PY, os.path.join(HERE, "csv_compat.py"), "--cli", a.cli, "--report",
                        report, "--workdir", a.work])
    with open(os.path.join(a.results, "csv_compat.json"), "w") as f:
        json.dump(rows[0], f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--work")
    ap.add_argument("--peers-cpp", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--only", default="1,2,3,4")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--estimate-seconds", type=float, default=20)
    a = ap.parse_args()
    a.work = a.work or os.path.join(a.results, "work")
    os.makedirs(a.work, exist_ok=True)
    only = a.only.split(",")
    for item, fn in (("1", item1), ("2", item2), ("3", item3), ("4", item4)):
        if item in only:
            name = {"1": "step_cost.jsonl", "2": "energy_fake.jsonl",
                    "3": "energy_estimate.jsonl", "4": "csv_compat.json"}[item]
            if os.path.exists(os.path.join(a.results, name)):
                os.remove(os.path.join(a.results, name))
    machine(a.results, a.cli)
    for item, fn in (("1", item1), ("2", item2), ("3", item3), ("4", item4)):
        if item in only:
            t0 = time.monotonic()
            fn(a)
            common.log("item %s done in %.0f s" % (item, time.monotonic() - t0))


if __name__ == "__main__":
    main()
