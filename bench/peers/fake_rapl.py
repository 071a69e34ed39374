"""A live fake powercap (RAPL) tree with known watts and a wrap during the run.

The layout is the one tests/energy/energy_fakes.hpp (FakeMachine::zone) builds for trainmeter's
tests (energy_component_test.cpp: package-0, its core sub-zone, dram as intel-rapl:0:1),
powercap/<entry>/{name, energy_uj, max_energy_range_uj}, laid out the way the kernel shows
it so that every peer's discovery finds it:

  ROOT/intel-rapl/intel-rapl:0/{name=package-0, energy_uj, max_energy_range_uj}
  ROOT/intel-rapl/intel-rapl:0/intel-rapl:0:0/{name=core, ...}   (a part of package-0)
  ROOT/intel-rapl/intel-rapl:0/intel-rapl:0:1/{name=dram, ...}
  ROOT/intel-rapl:0   -> intel-rapl/intel-rapl:0            (flat links, as /sys/class/powercap)
  ROOT/intel-rapl:0:0 -> intel-rapl/intel-rapl:0/intel-rapl:0:0
  ROOT/intel-rapl:0:1 -> intel-rapl/intel-rapl:0/intel-rapl:0:1
  ROOT/intel-rapl/subsystem -> ..                         (the class folder, as in sysfs)

Unlike the unit tests' static fake (the test sets a value between two samples), this one moves
with time: a writer process sets energy_uj = (offset + W * (t - t0)) mod range every `period`
seconds, t on CLOCK_MONOTONIC (system-wide, so any process can compute the truth of an interval
it timed: W * (b - a)). Values are written in place at a fixed width (leading zeros), because
some readers (trainmeter) keep the file open and pread it: a rename would leave them on the old
inode, a truncate would let them read an empty file.

  python fake_rapl.py ROOT --pkg-w 40 --dram-w 6 --pkg-range-j 150 --pkg-first-wrap-s 1.5
"""

import argparse
import json
import os
import signal
import sys
import time

WIDTH = 15  # digits; 10^15 uJ = 1 GJ, far above any range used here


def layout(root):
    """Creates the tree; returns {domain: energy_uj path}."""
    pkg = os.path.join(root, "intel-rapl", "intel-rapl:0")
    core = os.path.join(pkg, "intel-rapl:0:0")
    dram = os.path.join(pkg, "intel-rapl:0:1")
    os.makedirs(core, exist_ok=True)
    os.makedirs(dram, exist_ok=True)
    for link, target in (("intel-rapl:0", "intel-rapl/intel-rapl:0"),
                         ("intel-rapl:0:0", "intel-rapl/intel-rapl:0/intel-rapl:0:0"),
                         ("intel-rapl:0:1", "intel-rapl/intel-rapl:0/intel-rapl:0:1"),
                         ("intel-rapl/subsystem", "..")):
        path = os.path.join(root, link)
        if not os.path.islink(path):
            os.symlink(target, path)
    return {"package-0": pkg, "core": core, "dram": dram}


def write_value(fd, uj):
    os.pwrite(fd, (str(int(uj)).zfill(WIDTH) + "\n").encode(), 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--pkg-w", type=float, default=40.0)
    ap.add_argument("--core-w", type=float, default=25.0, help="part of --pkg-w, not added to it")
    ap.add_argument("--dram-w", type=float, default=6.0)
    ap.add_argument("--pkg-range-j", type=float, default=150.0)
    ap.add_argument("--dram-range-j", type=float, default=262143.328850)  # the tests' default
    ap.add_argument("--pkg-first-wrap-s", type=float, default=1.5,
                    help="seconds after start at which the package counter first wraps")
    ap.add_argument("--period", type=float, default=0.002)
    ap.add_argument("--ready", help="file written (JSON: t0, watts, ranges) once the tree exists")
    a = ap.parse_args()

    dirs = layout(a.root)
    domains = {
        "package-0": (a.pkg_w, a.pkg_range_j * 1e6,
                      a.pkg_range_j * 1e6 - a.pkg_w * a.pkg_first_wrap_s * 1e6),
        "core": (a.core_w, a.dram_range_j * 1e6, 7654321.0),
        "dram": (a.dram_w, a.dram_range_j * 1e6, 1234567.0),
    }
    fds = {}
    for name, d in dirs.items():
        watts, rng, offset = domains[name]
        with open(os.path.join(d, "name"), "w") as f:
            f.write(name + "\n")
        with open(os.path.join(d, "max_energy_range_uj"), "w") as f:
            f.write("%d\n" % rng)
        fds[name] = os.open(os.path.join(d, "energy_uj"), os.O_RDWR | os.O_CREAT, 0o644)
        write_value(fds[name], offset)
    t0 = time.monotonic()
    if a.ready:
        tmp = a.ready + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"t0_monotonic": t0, "watts": {k: v[0] for k, v in domains.items()},
                       "range_uj": {k: v[1] for k, v in domains.items()},
                       "offset_uj": {k: v[2] for k, v in domains.items()},
                       "period_s": a.period}, f)
        os.rename(tmp, a.ready)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        t = time.monotonic() - t0
        for name, (watts, rng, offset) in domains.items():
            write_value(fds[name], (offset + watts * t * 1e6) % rng)
        time.sleep(a.period)


if __name__ == "__main__":
    main()
