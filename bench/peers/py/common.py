"""Shared pieces of the Python side of bench/peers: the MLP step, paired timing, and the one
place where each peer is pointed at a fake powercap tree (docs/peers.md, "Pointing the peers at
the fake tree")."""

import json
import logging
import os
import statistics
import sys
import time

import torch

# The MLP of peers_cpp.cpp: Linear(w, w) -> ReLU -> Linear(w, w), MSE loss, SGD.
SIZES = {"tiny": dict(width=64, batch=32, block=200, pairs=61),
         "medium": dict(width=1024, batch=256, block=4, pairs=31)}


class Mlp:
    def __init__(self, width, batch):
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(),
                                       torch.nn.Linear(width, width))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01)
        self.x = torch.randn(batch, width)
        self.y = torch.randn(batch, width)

    def step(self):
        self.opt.zero_grad()
        loss = torch.nn.functional.mse_loss(self.net(self.x), self.y)
        loss.backward()
        self.opt.step()


def quantile(v, q):
    v = sorted(v)
    return v[int(q * (len(v) - 1))]


def paired(variant, size, s, bare_step, hooked_step, extra=None, empty_hook=None, observe=None):
    """Pairs of blocks, bare then hooked (order flipped every pair), in this process. Each block
    is timed on the wall clock and on this thread's CPU clock (the hook's own work on the
    training thread; on a loaded machine the wall clock mostly measures preemption). Returns the
    JSON-able result: ns added per step (median and quartiles of pairs), base step, ratio; then
    `observe()` (what the tool returned for the last step) and the hook alone (alone_ns)."""
    for _ in range(3 * s["block"]):
        hooked_step()
    res = {"wall": ([], [], []), "cpu": ([], [], [])}
    for p in range(s["pairs"]):
        t = {}
        for order in range(2):
            hook_now = (order == 0) == (p % 2 == 0)
            fn = hooked_step if hook_now else bare_step
            w0, c0 = time.perf_counter(), time.thread_time()
            for _ in range(s["block"]):
                fn()
            t[hook_now] = (time.perf_counter() - w0, time.thread_time() - c0)
        for k, i in (("wall", 0), ("cpu", 1)):
            delta, base, ratio = res[k]
            delta.append((t[True][i] - t[False][i]) / s["block"] * 1e9)
            base.append(t[False][i] / s["block"] * 1e9)
            ratio.append(t[True][i] / t[False][i] if t[False][i] > 0 else float("nan"))
    out = {"lang": "python", "torch": torch.__version__, "variant": variant, "size": size,
           "pairs": s["pairs"], "block": s["block"]}
    for k, (delta, base, ratio) in res.items():
        out[k] = {"base_ns_p50": statistics.median(base), "added_ns_p50": statistics.median(delta),
                  "added_ns_p25": quantile(delta, 0.25), "added_ns_p75": quantile(delta, 0.75),
                  "ratio_p50": statistics.median(ratio)}
    if observe:  # what the tool handed back for the last hooked step (before the empty calls)
        out["observed"] = observe()
    if empty_hook:
        out["alone_cpu_ns"], out["alone_calls"] = alone_ns(empty_hook)
    out.update(extra or {})
    return out


def alone_ns(hook, budget_s=0.3, reps=7):
    """The hook alone: CPU ns per call around an empty body, median of `reps` repetitions of
    as many calls as fit in `budget_s` of CPU (at least 20), less an empty loop's."""
    per_call = []
    calls = 20
    t0 = time.thread_time()
    while True:
        for _ in range(calls):
            hook()
        if time.thread_time() - t0 >= budget_s / 4 or calls > 10**6:
            break
        calls *= 2
    for _ in range(reps):
        c0 = time.thread_time()
        for _ in range(calls):
            hook()
        hooked = time.thread_time() - c0
        e0 = time.thread_time()
        for _ in range(calls):
            pass
        per_call.append((hooked - (time.thread_time() - e0)) / calls * 1e9)
    return statistics.median(per_call), calls


def emit(obj, path=None):
    line = json.dumps(obj)
    print(line, flush=True)
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def monotonic():
    return time.monotonic()


# --- pointing each peer at a fake powercap tree ---------------------------------------------
# Each function is the whole of what it takes; docs/peers.md quotes them.

def point_codecarbon(root):
    """CodeCarbon 3.3: IntelRAPL(rapl_dir=...) is a constructor argument (its tests build fake
    trees and pass it), but EmissionsTracker does not expose it: ResourceTracker calls
    cpu.is_rapl_available() and CPU.from_utils(mode="intel_rapl") with the default
    "/sys/class/powercap/intel-rapl/subsystem". We substitute the default in both places."""
    import codecarbon.core.cpu as cc_cpu
    import codecarbon.external.hardware as cc_hw

    rapl_dir = os.path.join(root, "intel-rapl", "subsystem")  # -> root, as in sysfs
    orig_avail = cc_cpu.is_rapl_available
    cc_cpu.is_rapl_available = lambda rapl_dir_=None: orig_avail(rapl_dir)
    base = cc_hw.IntelRAPL

    class FakeTreeRAPL(base):
        def __init__(self, *a, **kw):
            kw["rapl_dir"] = rapl_dir
            super().__init__(*a, **kw)

    cc_hw.IntelRAPL = FakeTreeRAPL
    return "codecarbon.core.cpu.is_rapl_available and codecarbon.external.hardware.IntelRAPL " \
           "get rapl_dir=%s" % rapl_dir


def point_zeus(root):
    """Zeus 0.16: the module constant zeus.device.cpu.rapl.RAPL_DIR (read when RAPLCPUs is built;
    rapl_is_available() is lru-cached, so set it before the first ZeusMonitor)."""
    import zeus.device.cpu.rapl as zr

    zr.RAPL_DIR = os.path.join(root, "intel-rapl")
    zr.rapl_is_available.cache_clear()
    return "zeus.device.cpu.rapl.RAPL_DIR = %s" % zr.RAPL_DIR


def point_carbontracker(root):
    """carbontracker 2.4: the module constant carbontracker.components.cpu.intel.RAPL_DIR."""
    import carbontracker.components.cpu.intel as ci

    ci.RAPL_DIR = root.rstrip("/") + "/"
    return "carbontracker.components.cpu.intel.RAPL_DIR = %s" % ci.RAPL_DIR


def quiet():
    for name in ("codecarbon", "zeus", "carbontracker", "eco2ai", "apscheduler"):
        logging.getLogger(name).setLevel(logging.ERROR)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --- the live fake tree ----------------------------------------------------------------------
FAKE_RAPL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fake_rapl.py")
# Item 2's truth: package 40 W, DRAM 6 W; the package counter wraps 2 s after the writer starts
# and every 7.5 s after that (range 300 J), so an 8 s run sees exactly one wrap.
FAKE_PARAMS = dict(pkg_w=40.0, dram_w=6.0, pkg_range_j=300.0, pkg_first_wrap_s=2.0)


def start_fake_rapl(root, **params):
    """Starts fake_rapl.py on a fresh tree at `root`; returns (process, its ready JSON)."""
    import shutil
    import subprocess

    p = dict(FAKE_PARAMS, **params)
    shutil.rmtree(root, ignore_errors=True)
    ready = root + ".ready"
    if os.path.exists(ready):
        os.remove(ready)
    proc = subprocess.Popen([sys.executable, FAKE_RAPL, root, "--pkg-w", str(p["pkg_w"]),
                             "--dram-w", str(p["dram_w"]), "--pkg-range-j", str(p["pkg_range_j"]),
                             "--pkg-first-wrap-s", str(p["pkg_first_wrap_s"]), "--ready", ready])
    t0 = time.monotonic()
    while not os.path.exists(ready):
        if proc.poll() is not None or time.monotonic() - t0 > 30:
            raise RuntimeError("fake_rapl.py did not start")
        time.sleep(0.01)
    with open(ready) as f:
        return proc, json.load(f)


def stop_fake_rapl(proc):
    proc.terminate()
    proc.wait(timeout=10)
