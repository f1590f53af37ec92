"""After `sam build`: each function's artefact is an executable aarch64 ELF named bootstrap.

Prints one line per function with its size; exits 1 if any is missing or for another machine.
"""

import os
import pathlib
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUNCTIONS = ["SequentialFunction", "SpawnBlockingFunction", "JoinAllFunction"]
EM_AARCH64 = 183


def problem(path):
    if not path.is_file():
        return "missing"
    header = path.read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        return "not an ELF file"
    machine = struct.unpack_from("<H", header, 18)[0]
    if machine != EM_AARCH64:
        return f"built for machine {machine}, not aarch64 ({EM_AARCH64})"
    if not os.access(path, os.X_OK):
        return "not executable"
    return None


def main():
    build = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".aws-sam" / "build"
    failed = False
    for function in FUNCTIONS:
        path = build / function / "bootstrap"
        reason = problem(path)
        if reason:
            failed = True
            print(f"{path}: {reason}")
        else:
            print(f"{path}: aarch64 bootstrap, {path.stat().st_size / 2**20:.1f} MiB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
