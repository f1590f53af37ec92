#!/usr/bin/env python3
"""Where a warm call's instructions go: two callgrind profiles' self costs, grouped by what the
work is, their difference divided by the calls between them (docs/benchmark.md, "Where a call's
instructions go").

    breakdown.py FEW.callgrind MANY.callgrind CALLS

Each function's self cost (instructions in its own code, inlined callees included) is put in the
first group whose pattern its symbol or file matches; the groups below are checked in order.
"""

import re
import subprocess
import sys
from collections import defaultdict

# (group, patterns matched against "file:function"), first match wins.
GROUPS = [
    ("process start (aws-lc's jitter entropy; cancels out but for its variance)", [r"jent_", r"jitterentropy"]),
    ("signing (SigV4: canonical request, SHA-256, HMAC)", [r"aws_sigv4", r"\bsha2::", r"\bhmac::", r"sha256_", r"digest::"]),
    ("endpoint resolution (rules engine, URL parsing)", [r"::endpoint", r"endpoint_lib", r"\burl::", r"idna"]),
    ("XML and the response's deserialisation", [r"aws_smithy_xml", r"xmlparser", r"protocol_serde", r"quick_xml"]),
    ("TLS (rustls, aws-lc: records; handshakes of connections re-opened)", [r"rustls", r"aws_lc", r"aws-lc", r"aes_", r"gcm", r"ghash", r"chacha", r"nistz256", r"x25519", r"libcrypto"]),
    ("HTTP (hyper, http, the SDK's HTTP client)", [r"\bhyper", r"\bhttp::", r"httparse", r"\bh2::", r"aws_smithy_http_client", r"aws_smithy_types::body", r"http_body", r"aws_smithy_runtime_api::http"]),
    ("tracing", [r"\btracing", r"\bvaluable"]),
    ("orchestrator, interceptors, config bag, retries", [r"aws_smithy_runtime", r"aws_smithy_types", r"aws_runtime", r"aws_sdk_s3", r"aws_smithy_async", r"aws_smithy_http", r"aws_credential_types", r"aws_types", r"aws_smithy_observability"]),
    ("async runtime (tokio, futures)", [r"\btokio", r"\bfutures", r"\bmio::", r"parking_lot"]),
    ("allocation (malloc, free, realloc)", [r"malloc", r"\bfree\b", r"realloc", r"__rust_alloc", r"__rust_dealloc", r"alloc::alloc", r"_int_free", r"tcache", r"cfree", r"calloc", r"memalign"]),
    ("memory copy and compare (libc)", [r"mem(cpy|move|set|cmp|chr)", r"str(len|cmp)", r"__memcpy", r"__memmove"]),
    ("our code (acl-audit, the bench harness, lambda_runtime)", [r"acl_audit", r"acl_bench", r"lambda_runtime", r"serde"]),
]
OTHER = "other (std, formatting, hashing, the kernel's side of system calls not counted)"


def self_costs(path):
    """Self cost per "file:function" of one callgrind profile."""
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no", path],
        check=True, capture_output=True, text=True,
    ).stdout
    costs = {}
    for line in out.splitlines():
        match = re.match(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$", line)
        if match and ":" in match.group(2) and not match.group(2).startswith("PROGRAM TOTALS"):
            # "file:function [binary]": the function decides the group, the file where it does
            # not (C and assembly from aws-lc name their files better than their functions).
            name = re.sub(r"\s+\[[^\]]*\]$", "", match.group(2).strip())
            costs[name] = costs.get(name, 0) + int(match.group(1).replace(",", ""))
    return costs


def group_of(name):
    file, _, function = name.partition(":")
    for subject in (function, file):
        for group, patterns in GROUPS:
            if any(re.search(pattern, subject) for pattern in patterns):
                return group
    return OTHER


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    few, many, calls = self_costs(sys.argv[1]), self_costs(sys.argv[2]), int(sys.argv[3])
    groups = defaultdict(int)
    for name in set(few) | set(many):
        groups[group_of(name)] += many.get(name, 0) - few.get(name, 0)
    total = sum(groups.values())
    print(f"per call, by what the work is ({calls} calls between the two profiles):")
    for group, cost in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"  {cost / calls:>9,.0f}  {100 * cost / total:5.1f} %  {group}")
    print(f"  {total / calls:>9,.0f}  100.0 %  total")


if __name__ == "__main__":
    main()
