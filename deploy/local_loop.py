"""The local loop end to end, without Docker or an AWS account: local-s3 on loopback, the three
functions served by `cargo lambda watch`, invoked with `cargo lambda invoke` and the payloads in
fixtures/, as `make invoke-local` does. Checks each function's JSON reply, an error's type, and
that each invocation logged its metrics line (EMF), failed ones included.

Run from the repository root after `cargo build --workspace` (it uses target/debug/local-s3),
with cargo-lambda on PATH: `make local-loop-test`.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUNCTIONS = ["sequential", "spawn-blocking", "join-all"]
BUCKET = "acl-audit-demo"  # the bucket fixtures/console.json names
RESULTS = "acl-audit-results"  # where fixtures/state-machine-part.json's part writes its report
OBJECTS = 100


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_local_s3():
    process = subprocess.Popen(
        [str(ROOT / "target/debug/local-s3"), "--port", "0", "--seed-bucket", BUCKET, "--objects", str(OBJECTS),
         "--create-bucket", RESULTS, "--print-env", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    # One line once it serves: the environment a client needs, as a JSON object.
    return process, json.loads(process.stdout.readline())


def invoke(port, function, payload_file):
    run = subprocess.run(
        ["cargo", "lambda", "invoke", function, "-A", "127.0.0.1", "-P", str(port), "--data-file", str(payload_file),
         "--output-format", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return run.returncode, run.stdout, run.stderr


def invoke_with(port, function, body):
    """Invokes `function` with `body` as the payload's exact text."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as payload:
        payload.write(body)
    try:
        return invoke(port, function, payload.name)
    finally:
        os.unlink(payload.name)


def main():
    local_s3, s3_env = start_local_s3()
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    with tempfile.NamedTemporaryFile("w", suffix=".env", delete=False) as env_file:
        for name, value in s3_env.items():
            env_file.write(f"{name}={value}\n")
        env_file.write(f"BUCKET_NAME={BUCKET}\n")
        # Nothing from a developer's own AWS set-up may reach the functions.
        env_file.write("AWS_CONFIG_FILE=/nonexistent/aws/config\n")
        env_file.write("AWS_SHARED_CREDENTIALS_FILE=/nonexistent/aws/credentials\n")
        env_file.write("AWS_EC2_METADATA_DISABLED=true\n")
    watch = subprocess.Popen(
        ["cargo", "lambda", "watch", "--ignore-changes", "-A", "127.0.0.1", "-P", str(port), "--env-file",
         env_file.name],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    failures = []
    successes, emf_lines = 0, []
    try:
        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or watch.poll() is not None:
                    raise SystemExit("cargo lambda watch did not start:\n" + pathlib.Path(log.name).read_text())
                time.sleep(0.5)
        for function in FUNCTIONS:
            for fixture in ["eventbridge-scheduled.json", "console.json"]:
                code, out, err = invoke(port, function, ROOT / "fixtures" / fixture)
                if code != 0:
                    failures.append(f"{function} {fixture}: exit {code}: {err.strip()}")
                    continue
                report = json.loads(out)
                expected = {"strategy": function, "bucket": BUCKET, "objects_listed": OBJECTS, "acls_fetched": OBJECTS,
                            "objects_not_fetched": 0, "truncated": None, "resume": None}
                for field, value in expected.items():
                    if report.get(field) != value:
                        failures.append(f"{function} {fixture}: {field} = {report.get(field)!r}, expected {value!r}")
                if report["failures"]["count"] != 0 or report["audit"]["readable_by_all_users"]["count"] != OBJECTS // 10:
                    failures.append(f"{function} {fixture}: unexpected counts {report['failures']} {report['audit']}")
                successes += 1
            code, out, err = invoke_with(port, function, json.dumps({"bucket": "no-such-bucket"}))
            if code == 0 or "NoSuchBucket" not in out + err:
                failures.append(f"{function} missing bucket: expected a NoSuchBucket error, got {code}: {out} {err}")
        # A part of a state machine run, as the parts file hands it to a join-all worker.
        code, out, err = invoke(port, "join-all", ROOT / "fixtures" / "state-machine-part.json")
        if code != 0:
            failures.append(f"join-all state-machine-part.json: exit {code}: {err.strip()}")
        else:
            report = json.loads(out)
            if (report.get("objects_listed"), report.get("acls_fetched")) != (3, 3):
                failures.append(f"join-all state-machine-part.json: {report.get('objects_listed')} listed, "
                                f"{report.get('acls_fetched')} fetched, expected 3 and 3")
            successes += 1
        # Bodies that are not JSON never reach our code: the runtime refuses them, with a clear
        # message and the function stays up for the next event.
        for body in ["not json", ""]:
            code, out, err = invoke_with(port, "join-all", body)
            if code == 0 or "failed to deserialize" not in out + err:
                failures.append(f"join-all body {body!r}: expected a deserialization error, got {code}: {out} {err}")
        code, out, err = invoke(port, "join-all", ROOT / "fixtures" / "console.json")
        if code != 0:
            failures.append(f"join-all after bad bodies: exit {code}: {err.strip()}")
        else:
            successes += 1
        time.sleep(1)
        emf_lines = [line for line in pathlib.Path(log.name).read_text().splitlines() if '"_aws"' in line]
        if len(emf_lines) < successes:
            failures.append(f"{len(emf_lines)} metrics lines logged for {successes} successful invocations")
        # A failed run logs its line too (FailedRuns 1); a bucket it could not read is no
        # dimension of its own (an invoker could make up names without bound): "unknown".
        failed_lines = [json.loads(line[line.index("{"):]) for line in emf_lines if '"FailedRuns":1' in line]
        if len(failed_lines) < len(FUNCTIONS) or any(r["Bucket"] != "unknown" for r in failed_lines):
            failures.append(f"expected a FailedRuns line per function's missing-bucket run: {failed_lines}")
    finally:
        watch.terminate()
        local_s3.terminate()
        watch.wait(timeout=30)
        local_s3.wait(timeout=30)
        os.unlink(env_file.name)
    for failure in failures:
        print(failure)
    if failures:
        print("watch log:\n" + pathlib.Path(log.name).read_text()[-4000:])
    os.unlink(log.name)
    print(
        f"local loop: {len(FUNCTIONS)} functions, {successes} reports checked, {len(emf_lines)} metrics lines, "
        f"{'FAILED' if failures else 'OK'}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
