"""Turns bench/peers results (drive.py's files) into the tables of docs/peers.md.

  python report.py --results DIR --out DIR/peers.md [--docs docs/peers.md]

With --docs, the text between the markers `<!-- peers:results:begin -->` and
`<!-- peers:results:end -->` in that file is replaced; everything else in it is left alone.
Every figure and every cell of the feature table comes from the result files; nothing here is
typed by hand except the rule that turns a result into a cell (FEATURES below).
"""

import argparse
import json
import math
import os
import statistics

BEGIN, END = "<!-- peers:results:begin -->", "<!-- peers:results:end -->"
TOOLS = ["trainmeter", "zeus", "codecarbon", "carbontracker", "eco2ai", "profiler"]
VARIANT_TOOL = {"trainmeter": "trainmeter", "trainmeter_torch": "trainmeter",
                "profiler_schedule": "profiler", "zeus_window": "zeus",
                "codecarbon_task": "codecarbon", "carbontracker_epoch": "carbontracker",
                "python_floor": None}
VARIANT_TEXT = {
    "trainmeter": "trainmeter `session.step()` scope",
    "trainmeter_torch": "trainmeter scope + `track_memory` (per-step tensor peaks)",
    "profiler_schedule": "PyTorch profiler, `schedule(wait=1, warmup=1, active=3)` + `step()`",
    "zeus_window": "Zeus `begin_window`/`end_window`",
    "codecarbon_task": "CodeCarbon `start_task`/`stop_task`",
    "carbontracker_epoch": "carbontracker `epoch_start`/`epoch_end` (an epoch per step)",
    "python_floor": "floor: 2 × `perf_counter_ns` + a list-slot write (Python)",
}


def jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def fnum(x, nd=0):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{nd}f}"


def fpct(x):
    return "n/a" if x is None else f"{x:+.1f} %"


def load(l):
    return "/".join(f"{v:.1f}" for v in l) if l else "?"


# --- item 1 ---------------------------------------------------------------------------------
def step_cost(rows):
    out = ["| step | language, torch | hook | hook alone, CPU per call | × trainmeter's | "
           "base step, CPU | added in the step, CPU: median [IQR of pairs] | added in the step, wall: median | "
           "load (1/5/15 min) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    ref = {r["size"]: r.get("alone_cpu_ns") for r in rows if r["variant"] == "trainmeter"}
    order = ["trainmeter", "trainmeter_torch", "profiler_schedule", "python_floor", "zeus_window",
             "codecarbon_task", "carbontracker_epoch"]
    for size in ("tiny", "medium"):
        for r in sorted((r for r in rows if r["size"] == size),
                        key=lambda r: (r["lang"] != "cpp", order.index(r["variant"]))):
            c, w = r["cpu"], r["wall"]
            tm, al = ref.get(size), r.get("alone_cpu_ns")
            ratio = "1" if r["variant"] == "trainmeter" else (
                f"{al / tm:,.1f}×" if tm and tm > 0 and al is not None else "n/a")
            out.append(
                f"| {size} | {'C++' if r['lang'] == 'cpp' else 'Python'} {r['torch'].split('+')[0]} | "
                f"{VARIANT_TEXT[r['variant']]} | {fnum(al)} ns | {ratio} | "
                f"{fnum(c['base_ns_p50'] / 1e3, 1)} µs | "
                f"{fnum(c['added_ns_p50'])} ns [{fnum(c['added_ns_p25'])} … {fnum(c['added_ns_p75'])}] | "
                f"{fnum(w['added_ns_p50'])} ns | {load(r.get('load_at_start'))} |")
    return "\n".join(out)


# --- item 2 ---------------------------------------------------------------------------------
def wraps_in(meta, t0, t1):
    """Package-counter wraps between t0 and t1 (CLOCK_MONOTONIC), from the writer's own
    parameters: the counter is (offset + W t) mod range."""
    w = meta["watts"]["package-0"] * 1e6
    rng, off = meta["range_uj"]["package-0"], meta["offset_uj"]["package-0"]
    e = lambda t: off + w * (t - meta["t0_monotonic"])
    return int(e(t1) // rng) - int(e(t0) // rng)


def fake_measured(r):
    """(package J, dram J, package+dram J, what the figure is) as the tool reported them."""
    t = r["tool"]
    if t == "trainmeter":
        comps = {c["name"]: c for c in (r.get("energy") or {}).get("components", [])}
        pkg = (comps.get("cpu") or {}).get("machine_energy_j")
        dram = (comps.get("dram") or {}).get("machine_energy_j")
        return pkg, dram, None, "report `energy.components[].machine_energy_j` (cpu, dram)"
    j = r.get("joules") or {}
    if t == "zeus":
        return j.get("package-0"), j.get("dram-0"), None, "`Measurement.cpu_energy[0]`, `.dram_energy[0]`"
    if t == "codecarbon":
        return j.get("cpu"), None, None, "`cpu_energy` (package only; its `ram_energy` is the RAM estimate, see below)"
    if t == "carbontracker":
        v = next(iter(j.values()), None)
        return None, None, v, "its `energy_usage()` of the cpu component (package and dram together), before its PUE of 1.58"
    if t == "eco2ai":
        return None, None, None, "does not read RAPL"
    return None, None, None, ""


def energy_fake(rows):
    out = ["| tool | round | duration (its own) | wraps in its window | package: truth → measured | error | "
           "DRAM: truth → measured | error | package+DRAM: truth → measured | error | figure used | load |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    summary = {}
    for r in rows:
        meta = r.get("fake") or {}
        d = r.get("duration_s")
        if not meta or d is None:
            out.append(f"| {r['tool']} | {r.get('round')} | n/a | | | | | | | | {r.get('error', '')} | |")
            continue
        wpk, wdr = meta["watts"]["package-0"], meta["watts"]["dram"]
        tpk, tdr = wpk * d, wdr * d
        pkg, dram, both, what = fake_measured(r)
        err = lambda m, t: None if m is None else (m / t - 1) * 100
        nw = wraps_in(meta, r["t_start"], r["t_end"])
        cells = []
        for truth, m in ((tpk, pkg), (tdr, dram), (tpk + tdr, both if both is not None else
                                                   (pkg + dram if pkg is not None and dram is not None else None))):
            cells.append(f"{truth:,.1f} J → {fnum(m, 1)}{' J' if m is not None else ''}")
            cells.append(fpct(err(m, truth)))
        summary.setdefault(r["tool"], []).append((err(pkg, tpk), err(dram, tdr), nw))
        out.append(f"| {r['tool']} | {r.get('round')} | {d:.2f} s | {nw} | " + " | ".join(cells) +
                   f" | {what} | {load(r.get('load_at_start'))} |")
    return "\n".join(out), summary


def carbontracker_samples(rows):
    lines = []
    for r in rows:
        if r["tool"] != "carbontracker":
            continue
        for name, s in (r.get("power_samples_w") or {}).items():
            lines.append(f"- round {r.get('round')}: devices {s['devices']}, samples in W "
                         f"(appended in turn) {[round(w, 2) for w in s['watts']]}")
    return "\n".join(lines)


# --- item 3 ---------------------------------------------------------------------------------
def energy_estimate(rows):
    out = ["| tool | duration | CPU energy | CPU mean power | RAM energy | RAM mean power | "
           "how (constants it used, from the run) | load at start → end |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        d = r.get("duration_s")
        t = r["tool"]
        cpu = ram = None
        how = ""
        if t == "trainmeter":
            comps = {c["name"]: c for c in (r.get("energy") or {}).get("components", [])}
            c, m = comps.get("cpu") or {}, comps.get("dram") or {}
            cpu, ram = c.get("energy_j"), m.get("energy_j")
            how = "cpu: %s, %s; constants %s; inputs %s" % (
                c.get("source"), c.get("provenance"), json.dumps(c.get("constants")),
                json.dumps(c.get("inputs")))
            if m:
                how += "; dram/ram: %s, constants %s" % (m.get("source"), json.dumps(m.get("constants")))
        elif "error" in r:
            how = "no figure: " + r["error"]
        else:
            j = r.get("joules") or {}
            cpu = j.get("cpu", j.get("package-0"))
            ram = j.get("ram", j.get("dram-0"))
            if t == "carbontracker" and len(j) == 1:  # one component named after the device
                cpu = next(iter(j.values()))
            how = json.dumps(r.get("constants")) if r.get("constants") else r.get("note", "")
            if r.get("note"):
                how = r["note"] + ("; " + json.dumps(r.get("constants")) if r.get("constants") else "")
        pw = lambda e: fnum(e / d, 2) + " W" if e is not None and d else "n/a"
        out.append(f"| {t} | {fnum(d, 1)} s | {fnum(cpu, 1)}{' J' if cpu is not None else ''} | {pw(cpu)} | "
                   f"{fnum(ram, 1)}{' J' if ram is not None else ''} | {pw(ram)} | {how.replace('|', '/')} | "
                   f"{load(r.get('load_at_start'))} → {load(r.get('load_at_end'))} |")
    return "\n".join(out)


# --- item 4 ---------------------------------------------------------------------------------
def csv_compat(c):
    if not c:
        return "(not run)"
    ok = lambda x: "**ok**" if x and x.get("ok") else "**failed**: %s" % (x or {}).get("error")
    lines = [f"CodeCarbon {c.get('codecarbon_version')}, over `trainmeter {c['command']}` (exit {c['export_rc']}).", ""]
    cols = c.get("columns", {})
    lines.append(f"- Columns: {len(cols.get('trainmeter', []))} written, {len(cols.get('codecarbon', []))} in "
                 f"`EmissionsData`; missing {cols.get('missing')}, extra {cols.get('extra')}, same order: "
                 f"{cols.get('same_order')}.")
    lines.append(f"- `EmissionsData(**row)` for every row ({c['emissions_data']['rows']}): {ok(c['emissions_data'])}.")
    if "has_valid_headers" in c:
        lines.append(f"- `FileOutput.has_valid_headers()`: {ok(c['has_valid_headers'])}, returned "
                     f"`{c['has_valid_headers'].get('value')}`.")
        fa = c["file_output_append"]
        lines.append(f"- `FileOutput.out()` appending a CodeCarbon row to trainmeter's file: {ok(fa)}; rows after: "
                     f"{fa.get('rows_after')}, backup files made: {fa.get('backed_up_files')}.")
    for k, v in (c.get("dashboard") or {}).items():
        extra = ""
        if k == "get_global_emissions_choropleth_data":
            row = v.get("own_country_row")
            extra = (f"; its row for the CSV's country: {json.dumps(row)}" if row else
                     "; **no row for the CSV's country_iso_code** (the map is keyed by alpha-3 codes)")
        lines.append(f"- dashboard `{k}`: {ok(v)}{extra}.")
    lines += ["", "| value | CodeCarbon read | trainmeter's report |", "| --- | --- | --- |"]
    for k, v in (c.get("values") or {}).items():
        if k == "dashboard_summary":
            continue
        rep = {kk: vv for kk, vv in v.items() if kk != "codecarbon_read"}
        lines.append(f"| {k} | {v.get('codecarbon_read')} | {'; '.join(f'{kk}: {vv}' for kk, vv in rep.items())} |")
    if "dashboard_summary" in (c.get("values") or {}):
        lines.append(f"\nThe dashboard's project summary (`get_project_summary`): "
                     f"`{json.dumps(c['values']['dashboard_summary'])}`.")
    return "\n".join(lines)


# --- item 5 ---------------------------------------------------------------------------------
def features(step_rows, fake_rows, est_rows, compat):
    """Each cell is computed from what the tool handed back in these runs."""
    by = {t: {"step": [], "fake": [], "est": []} for t in TOOLS}
    for r in step_rows:
        t = VARIANT_TOOL.get(r["variant"])
        if t:
            by[t]["step"].append(r)
    for r in fake_rows:
        by[r["tool"]]["fake"].append(r)
    for r in est_rows:
        by[r["tool"]]["est"].append(r)

    tm_reports = []
    for r in fake_rows + est_rows:
        if r["tool"] == "trainmeter" and r.get("report") and os.path.exists(r["report"]):
            with open(r["report"]) as f:
                tm_reports.append(json.load(f))
    rep = tm_reports[-1] if tm_reports else {}

    def obs(t, key):
        return [r.get("observed", {}).get(key) for r in by[t]["step"] if r.get("observed")]

    def per_step_time(t):
        if t == "trainmeter":
            steps = rep.get("steps") if isinstance(rep.get("steps"), list) else []
            ph = (rep.get("phases") or {}).get("train") or {}
            return (f"yes: {len(steps)} step records, p50 {fnum((ph.get('step_time_ns') or {}).get('p50'))} ns"
                    if steps else "no")
        v = [x for x in obs(t, "per_step_time_s") if x]
        return f"yes: last step {v[-1] * 1e3:.2f} ms" if v else "no"

    def per_step_energy(t):
        if t == "trainmeter":
            steps = rep.get("steps") if isinstance(rep.get("steps"), list) else []
            e = [s.get("energy_j") for s in steps if s.get("energy_j") is not None]
            return f"yes: {len(e)} of {len(steps)} steps have energy_j (apportioned)" if e else "no"
        if t == "carbontracker":
            ep = obs(t, "epochs")
            wp = obs(t, "distinct_power_sample_lists")
            return (f"no: {ep[-1]} one-step epochs shared {wp[-1]} power samplings (1 s each; an epoch "
                    f"shorter than that gets the previous epoch's samples)") if ep and wp else "no"
        v = [x for x in obs(t, "per_step_energy_j") if x]
        if not v:
            return "no"
        last = {k: vv for k, vv in v[-1].items() if vv}
        return f"yes: last step {json.dumps(last)}" if last else "no (all zero/empty)"

    def per_phase(t):
        if t == "trainmeter":
            return f"yes: phases {sorted((rep.get('phases') or {}).keys())} (named phases via `step(n, \"eval\")`)"
        if t == "codecarbon":
            v = [x for x in obs(t, "task_names") if x]
            return f"yes: named tasks ({v[-1]})" if v else "no"
        if t == "zeus":
            return "yes: named windows" if by[t]["step"] else "no"
        if t == "profiler":
            v, n = obs(t, "profiler_step_events_per_cycle"), obs(t, "events_per_cycle")
            return (f"yes: {v[-1]} ProfilerStep events among {n[-1]} per 3-step cycle; `record_function` "
                    f"names") if v and v[-1] else "no"
        return "no"

    def memory_peaks(t):
        if t == "trainmeter":
            m = rep.get("memory") or {}
            return (f"yes: peak RSS {fnum((m.get('peak_rss_bytes') or 0) / 2**20, 1)} MiB ({m.get('peak_rss_source')}), "
                    f"peak tensor bytes {json.dumps(m.get('peak_tensor_bytes'))}")
        if t == "codecarbon":
            v = [x for x in obs(t, "ram_used_gb") if x]
            return f"no peak: ram_used_gb {v[-1]:.2f} (a reading, not a peak)" if v else "no"
        return "no"

    def per_component(t):
        if t == "trainmeter":
            comps = [(c["name"], c["provenance"]) for c in (rep.get("energy") or {}).get("components", [])]
            fr = [r for r in by[t]["fake"]]
            names = sorted({c["name"] for r in fr for c in (r.get("energy") or {}).get("components", [])})
            return f"yes: {names} on RAPL; {comps} here"
        runs = [sorted(k for k, v in (r.get("joules") or {}).items() if v) for r in by[t]["fake"] + by[t]["est"]]
        keys = max(runs, key=len) if runs else []
        return f"{'yes' if len(keys) > 1 else 'no'}: {keys}" if keys else "no"

    def per_process(t):
        if t == "trainmeter":
            fake = [c for r in by[t]["fake"] for c in (r.get("energy") or {}).get("components", [])][:2]
            return "yes: " + ", ".join(
                f"{c['name']} by {c.get('attribution')}: {fnum(c.get('energy_j'), 1)} of {fnum(c.get('machine_energy_j'), 1)} J"
                for c in fake)
        for r in by[t]["est"]:
            c = r.get("constants") or {}
            if c.get("tracking_mode") == "process":
                return "yes: tracking_mode=process (CPU load of this process)"
            if c.get("cpu_processes") == "current":
                return "yes: cpu_processes=current"
        return "no: whole machine/package"

    def distributed(t):
        if t == "trainmeter":
            run = rep.get("run") or {}
            return f"yes: run.rank={run.get('rank')}, world_size={run.get('world_size')} (and `trainmeter merge`)"
        return "no rank field in its output"

    rows = [("per step (time)", per_step_time), ("per step (energy)", per_step_energy),
            ("per phase", per_phase), ("memory peaks", memory_peaks),
            ("per component", per_component), ("per process", per_process),
            ("distributed", distributed)]
    out = ["| | " + " | ".join(TOOLS) + " |", "| --- | " + " | ".join("---" for _ in TOOLS) + " |"]
    for name, fn in rows:
        out.append(f"| {name} | " + " | ".join(fn(t).replace("|", "/") for t in TOOLS) + " |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--docs")
    a = ap.parse_args()
    R = lambda n: os.path.join(a.results, n)
    with open(R("machine.json")) as f:
        mach = json.load(f)
    steps = jsonl(R("step_cost.jsonl"))
    fake = jsonl(R("energy_fake.jsonl"))
    est = jsonl(R("energy_estimate.jsonl"))
    compat = json.load(open(R("csv_compat.json"))) if os.path.exists(R("csv_compat.json")) else None
    fake_table, _ = energy_fake(fake)
    build = json.load(open(R("build.json"))) if os.path.exists(R("build.json")) else {}
    text = [BEGIN,
            "<!-- Generated by bench/peers/py/report.py from bench/peers/run.sh's results; do not edit by hand. -->",
            "",
            f"Run of {mach['date_utc']}: `nproc` {mach['nproc']}, CPU \"{mach['cpu_model']}\", "
            f"{mach['mem_gb']:.0f} GiB, kernel {mach['kernel']}, Python {mach['python']}; "
            f"`uptime` at the start: `{mach['uptime']}`.",
            "trainmeter built from " + (f"{build.get('trainmeter_src')} at {build.get('trainmeter_commit')}"
                                        f"{' with uncommitted changes' if build.get('uncommitted_changes') else ''}"
                                        f", libtorch {build.get('libtorch_prefix')}"
                                        + (f"; {build['note']}" if build.get("note") else "")
                                        if build else "(build.json missing)") + ".",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(mach["versions"].items())) + ".",
            "", "### 1. Per-step cost of the hook", "", step_cost(steps),
            "", "### 2. Energy on counters whose truth we set", "", fake_table,
            "", "carbontracker's power samples (its `power_usages`):", "", carbontracker_samples(fake),
            "", "### 3. Estimates where no counter exists (this machine)", "", energy_estimate(est),
            "", "### 4. CodeCarbon's code over trainmeter's CSV", "", csv_compat(compat),
            "", "### 5. What each tool measured in these runs", "", features(steps, fake, est, compat),
            "", END]
    body = "\n".join(text) + "\n"
    with open(a.out, "w") as f:
        f.write(body)
    if a.docs:
        with open(a.docs) as f:
            doc = f.read()
        if BEGIN in doc and END in doc:
            doc = doc[:doc.index(BEGIN)] + body.rstrip("\n") + doc[doc.index(END) + len(END):]
        else:
            doc = doc.rstrip("\n") + "\n\n" + body
        tmp = a.docs + ".tmp"
        with open(tmp, "w") as f:
            f.write(doc)
        os.replace(tmp, a.docs)


if __name__ == "__main__":
    main()
