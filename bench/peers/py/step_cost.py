"""Item 1, Python side: what each peer's per-step hook adds to the same MLP step.

  python step_cost.py --size tiny|medium --fake-rapl ROOT --out results/step_cost.jsonl
      [--variants floor,zeus,codecarbon,carbontracker,profiler_schedule]

Each variant is timed as pairs of blocks (bare, hooked; order flipped every pair) in this one
process (common.paired). The energy peers read a live fake powercap tree at ROOT (this process
starts fake_rapl.py there), so that they measure through RAPL as they would on a machine with RAPL counters.
eco2ai has no per-step API (Tracker.start()/stop() only) and is not in this item.
"""

import argparse
import os
import tempfile
import time

import torch

import common


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="tiny", choices=sorted(common.SIZES))
    ap.add_argument("--fake-rapl", required=True)
    ap.add_argument("--out")
    ap.add_argument("--pairs", type=int)
    ap.add_argument("--variants", default="floor,zeus,codecarbon,carbontracker,profiler_schedule")
    a = ap.parse_args()
    torch.set_num_threads(1)
    common.quiet()
    s = dict(common.SIZES[a.size])
    if a.pairs:
        s["pairs"] = a.pairs
    m = common.Mlp(s["width"], s["batch"])
    for _ in range(20):
        m.step()
    variants = a.variants.split(",")
    work = tempfile.mkdtemp(prefix="peers-step-")
    writer, _ = common.start_fake_rapl(a.fake_rapl)
    try:
        run(a, s, m, variants, work)
    finally:
        common.stop_fake_rapl(writer)


def run(a, s, m, variants, work):

    if "floor" in variants:
        # The least a Python hook can do: two clock reads and one slot write.
        ring = [0] * 4096
        idx = [0]

        def floor_step():
            t0 = time.perf_counter_ns()
            m.step()
            i = idx[0] = (idx[0] + 1) & 4095
            ring[i] = time.perf_counter_ns() - t0

        def floor_empty():
            t0 = time.perf_counter_ns()
            i = idx[0] = (idx[0] + 1) & 4095
            ring[i] = time.perf_counter_ns() - t0

        common.emit(common.paired("python_floor", a.size, s, m.step, floor_step,
                                  empty_hook=floor_empty), a.out)

    if "zeus" in variants:
        how = common.point_zeus(a.fake_rapl)
        from zeus.monitor import ZeusMonitor

        mon = ZeusMonitor(gpu_indices=[], cpu_indices=[0])

        last = {}

        def zeus_step():
            mon.begin_window("step")
            m.step()
            last["m"] = mon.end_window("step")

        def zeus_empty():
            mon.begin_window("step")
            mon.end_window("step")

        def zeus_seen():
            w = last["m"]
            return {"per_step_time_s": w.time, "per_step_energy_j": {
                "cpu": w.cpu_energy, "dram": w.dram_energy, "gpu": w.gpu_energy}}

        res = common.paired("zeus_window", a.size, s, m.step, zeus_step, {"pointed": how},
                            empty_hook=zeus_empty, observe=zeus_seen)
        common.emit(res, a.out)
        del mon

    if "codecarbon" in variants:
        how = common.point_codecarbon(a.fake_rapl)
        from codecarbon import OfflineEmissionsTracker

        tr = OfflineEmissionsTracker(country_iso_code="FRA", output_dir=work, save_to_file=False,
                                     log_level="error", rapl_include_dram=True,
                                     allow_multiple_runs=True)
        tr.start()

        last = {}

        def cc_step():
            tr.start_task("step")
            m.step()
            last["t"] = tr.stop_task()

        def cc_empty():
            tr.start_task("step")
            tr.stop_task()

        def cc_seen():  # stop_task() returns an EmissionsData (kWh)
            t = last["t"]
            return {"per_step_time_s": t.duration, "per_step_energy_j": {
                "cpu": t.cpu_energy * 3.6e6, "ram": t.ram_energy * 3.6e6, "gpu": t.gpu_energy * 3.6e6},
                "task_names": sorted(tr._tasks.keys())[:3], "ram_used_gb": t.ram_used_gb}

        res = common.paired("codecarbon_task", a.size, s, m.step, cc_step, {"pointed": how},
                            empty_hook=cc_empty, observe=cc_seen)
        tr.stop()
        common.emit(res, a.out)

    if "carbontracker" in variants:
        how = common.point_carbontracker(a.fake_rapl)
        from carbontracker.tracker import CarbonTracker

        ct = CarbonTracker(epochs=10**9, epochs_before_pred=0, monitor_epochs=-1, components="cpu",
                           update_interval=1, log_dir=work, verbose=0, decimal_precision=6)

        def ct_step():
            ct.epoch_start()
            m.step()
            ct.epoch_end()

        def ct_empty():
            ct.epoch_start()
            ct.epoch_end()

        def ct_seen():
            th = ct.tracker
            # Epochs shorter than a sample get the previous epoch's list object itself.
            lists = [pw for c in th.components for pw in c.power_usages]
            return {"epochs": len(th.epoch_times), "distinct_power_sample_lists": len({id(x) for x in lists if x}),
                    "per_step_time_s": th.epoch_times[-1] if th.epoch_times else None}

        res = common.paired("carbontracker_epoch", a.size, s, m.step, ct_step, {"pointed": how},
                            empty_hook=ct_empty, observe=ct_seen)
        ct.stop()
        common.emit(res, a.out)

    if "profiler_schedule" in variants:
        from torch.profiler import ProfilerActivity, profile, schedule

        with profile(activities=[ProfilerActivity.CPU],
                     schedule=schedule(wait=1, warmup=1, active=3)) as prof:

            def prof_step():
                m.step()
                prof.step()

            res = common.paired("profiler_schedule", a.size, s, m.step, prof_step,
                                empty_hook=prof.step)
        # What the profiler hands over per cycle (a separate short run: on_trace_ready's own
        # cost is not in the timing above).
        cycles = []
        with profile(activities=[ProfilerActivity.CPU], schedule=schedule(wait=1, warmup=1, active=3),
                     on_trace_ready=lambda p: cycles.append(list(p.events()))) as prof:
            for _ in range(10):
                m.step()
                prof.step()
        events = cycles[-1] if cycles else []
        steps = [e for e in events if e.name.startswith("ProfilerStep")]  # "ProfilerStep*" in 2.x
        res["observed"] = {"cycles": len(cycles), "profiler_step_events_per_cycle": len(steps),
                           "events_per_cycle": len(events),
                           "per_step_time_s": steps[-1].cpu_time_total / 1e6 if steps else None}
        common.emit(res, a.out)


if __name__ == "__main__":
    main()
