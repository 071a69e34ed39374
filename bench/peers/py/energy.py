"""Items 2 and 3, Python side: one peer measures the energy of a fixed-length run of the MLP.

  python energy.py --tool zeus|codecarbon|carbontracker|eco2ai --seconds S --size medium
      [--fake-rapl ROOT] --workdir DIR --out results/energy.jsonl

With --fake-rapl ROOT this process starts fake_rapl.py on a fresh tree at ROOT (after its own
imports, so the wrap falls 2 s into the run; common.FAKE_PARAMS) and points the peer at it
(item 2); without it the peer sees this machine as it is (no RAPL: item 3,
estimates). Prints one JSON line: the peer's own figures (joules per component it reports, its
own duration), the CLOCK_MONOTONIC interval around its start/stop, and the constants it used
(read from the peer's objects where it keeps them).
"""

import argparse
import glob
import json
import os
import time

import torch

import common

KWH = 3.6e6  # J


def workload(m, seconds):
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < seconds:
        m.step()
        n += 1
    return n


def run_zeus(a, m):
    out = {}
    if a.fake_rapl:
        out["pointed"] = common.point_zeus(a.fake_rapl)
    from zeus.monitor import ZeusMonitor

    try:
        mon = ZeusMonitor(gpu_indices=[], cpu_indices=None)
    except Exception as e:  # no CPU or GPU to monitor
        return dict(out, error="%s: %s" % (type(e).__name__, e))
    t0 = time.monotonic()
    mon.begin_window("run")
    out["steps"] = workload(m, a.seconds)
    meas = mon.end_window("run")
    t1 = time.monotonic()
    out.update(t_start=t0, t_end=t1, duration_s=meas.time)
    comp = {}
    for i, j in (meas.cpu_energy or {}).items():
        comp["package-%d" % i] = j
    for i, j in (meas.dram_energy or {}).items():
        comp["dram-%d" % i] = j
    out["joules"] = comp
    if not comp:
        out["note"] = "no CPU energy: Zeus reads RAPL only (no estimate)"
    return out


def run_codecarbon(a, m):
    out = {}
    if a.fake_rapl:
        out["pointed"] = common.point_codecarbon(a.fake_rapl)
    from codecarbon import OfflineEmissionsTracker

    tr = OfflineEmissionsTracker(country_iso_code="FRA", output_dir=a.workdir,
                                 output_file="codecarbon-%s.csv" % a.label, log_level="error",
                                 measure_power_secs=1, rapl_include_dram=True,
                                 allow_multiple_runs=True, tracking_mode="process")
    t0 = time.monotonic()
    tr.start()
    out["steps"] = workload(m, a.seconds)
    tr.stop()
    t1 = time.monotonic()
    d = tr.final_emissions_data
    out.update(t_start=t0, t_end=t1, duration_s=d.duration,
               joules={"cpu": d.cpu_energy * KWH, "ram": d.ram_energy * KWH},
               watts={"cpu": d.cpu_power, "ram": d.ram_power},
               emissions_kg=d.emissions, country=d.country_iso_code)
    hw = getattr(tr, "_hardware", [])
    out["constants"] = {"hardware": [repr(h) for h in hw], "cpu_model": d.cpu_model,
                        "cpu_count": d.cpu_count, "ram_total_size_gb": d.ram_total_size,
                        "tracking_mode": d.tracking_mode,
                        "cpu_tracker": getattr(getattr(tr, "_resource_tracker", None), "cpu_tracker", None)}
    for h in hw:
        if type(h).__name__ == "CPU":
            out["constants"]["cpu_mode"] = getattr(h, "_mode", None)
            out["constants"]["cpu_tdp_w"] = getattr(h, "_tdp", None)
    out["csv"] = os.path.join(a.workdir, "codecarbon-%s.csv" % a.label)
    return out


def run_carbontracker(a, m):
    out = {}
    if a.fake_rapl:
        out["pointed"] = common.point_carbontracker(a.fake_rapl)
    from carbontracker.tracker import CarbonTracker

    ct = CarbonTracker(epochs=2, epochs_before_pred=0, monitor_epochs=-1, components="cpu",
                       update_interval=1, log_dir=a.workdir, verbose=0, decimal_precision=9)
    t0 = time.monotonic()
    ct.epoch_start()
    out["steps"] = workload(m, a.seconds)
    ct.epoch_end()
    t1 = time.monotonic()
    th = ct.tracker
    out.update(t_start=t0, t_end=t1, duration_s=th.epoch_times[0] if th.epoch_times else None)
    comp, samples = {}, {}
    for c in th.components:
        # power_usages[epoch] is a flat list, the devices' watts appended in turn at each
        # sample ([pkg, dram, pkg, dram, ...]); energy_usage() averages that list as a whole.
        samples[c.name] = {"devices": c.devices(),
                           "watts": list(map(float, c.power_usages[0])) if c.power_usages else []}
        kwh = c.energy_usage(th.epoch_times)[0]  # its own figure, before its PUE of 1.58
        comp["+".join(c.devices())] = float(kwh) * KWH
    out["joules"] = comp
    out["power_samples_w"] = samples
    out["constants"] = {"pue_applied_to_reported_totals": 1.58,
                        "handlers": [{"component": c.name, "handler": type(c.handler).__name__,
                                      **{k: v for k, v in vars(c.handler).items()
                                         if k in ("cpu_brand", "tdp", "average_tdp")}}
                                     for c in th.components]}
    if not th.components:
        out["note"] = "no component available: carbontracker measures RAPL/NVML only"
    ct.stop()
    return out


def run_eco2ai(a, m):
    import eco2ai

    out = {"pointed": None}
    path = os.path.join(a.workdir, "eco2ai-%s.csv" % a.label)
    tr = eco2ai.Tracker(project_name="peers", experiment_description=a.label, file_name=path,
                        measure_period=1, alpha_2_code="FR", ignore_warnings=True)
    t0 = time.monotonic()
    tr.start()
    out["steps"] = workload(m, a.seconds)
    tr.stop()
    t1 = time.monotonic()
    cpu, ram = tr._cpu, tr._ram
    out.update(t_start=t0, t_end=t1, duration_s=t1 - t0,
               joules={"cpu": cpu._consumption * KWH, "ram": ram._consumption * KWH},
               constants={"cpu_name": cpu.name(), "cpu_tdp_w": cpu.tdp(),
                          "cpu_num": cpu.cpu_num(), "cpu_processes": tr._cpu_processes,
                          "ram_w_per_gb": 0.375})
    out["csv"] = path
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True, choices=["zeus", "codecarbon", "carbontracker", "eco2ai"])
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--size", default="medium", choices=sorted(common.SIZES))
    ap.add_argument("--fake-rapl")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--label", default="run")
    ap.add_argument("--out")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    torch.set_num_threads(1)
    common.quiet()
    s = common.SIZES[a.size]
    m = common.Mlp(s["width"], s["batch"])
    for _ in range(3):
        m.step()
    writer = None
    if a.fake_rapl:  # a fresh tree per run, started after the imports: the wrap is 2 s in
        writer, res_fake = common.start_fake_rapl(a.fake_rapl)
    try:
        res = globals()["run_" + a.tool](a, m)
    finally:
        if writer:
            common.stop_fake_rapl(writer)
    if a.fake_rapl:
        res["fake"] = res_fake
    res.update(tool=a.tool, label=a.label, mode="fake_rapl" if a.fake_rapl else "this_machine",
               seconds=a.seconds, size=a.size, lang="python")
    common.emit(res, a.out)


if __name__ == "__main__":
    main()
