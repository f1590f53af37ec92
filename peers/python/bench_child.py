"""A benchmark child for the Python peers: the counterpart of `acl-bench invoke`.

Prints one JSON line in the same shape as the Rust child's report. Joins its cgroup before
importing boto3, as importing it is part of a Lambda function's init.
"""

import argparse
import json
import os
import resource
import sys
import time

PROCESS_STARTED = time.perf_counter()


def cpu_ms():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1e3


def open_sockets():
    """Inodes of this process's open sockets, as the Rust child counts them."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--function", required=True)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--start", choices=["warm", "empty-pool", "cold"], default="warm")
    parser.add_argument("--join-cgroup")
    args = parser.parse_args()
    if args.join_cgroup:
        with open(args.join_cgroup, "w") as procs:
            procs.write("0")

    import seed_functions  # noqa: E402  (init: imports boto3 and builds its client)

    function = seed_functions.FUNCTIONS[args.function]
    init_ms = (time.perf_counter() - PROCESS_STARTED) * 1e3
    cold = args.start == "cold"
    warmup, runs = (0, 1) if cold else (1, args.runs)
    samples = []
    for index in range(warmup + runs):
        if args.start == "empty-pool" and index > 0:
            # Outside the measurement: a new client has no open connection, as an hour later.
            seed_functions.s3 = seed_functions.boto3.client("s3")
        sockets_before = open_sockets()
        cpu_before, started = cpu_ms(), time.perf_counter()
        acls = len(function())
        if cold:
            wall, cpu = (time.perf_counter() - PROCESS_STARTED) * 1e3, cpu_ms()
        else:
            wall, cpu = (time.perf_counter() - started) * 1e3, cpu_ms() - cpu_before
        opened = len(open_sockets() - sockets_before)
        if index >= warmup:
            samples.append(
                {"wall_ms": wall, "cpu_ms": cpu, "acls_fetched": acls, "failures": 0, "connections_opened": opened}
            )
    peak_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    json.dump({"init_ms": init_ms, "samples": samples, "peak_rss_kb": peak_rss_kb}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
