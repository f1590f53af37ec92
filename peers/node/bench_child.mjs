// A benchmark child for the Node.js peers: the counterpart of peers/python/bench_child.py.
//
// The write-up's author opens with Node.js's `Promise.all` as the easy baseline; this is
// that function on the AWS SDK for JavaScript v3 (its default keep-alive agent), plus the
// same calls one after another. Prints one JSON line in the shape of the Rust child's report.
// Joins its cgroup before loading the SDK, as loading it is part of a Lambda function's init.

import { readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    function: { type: "string" },
    runs: { type: "string", default: "10" },
    start: { type: "string", default: "warm" },
    "join-cgroup": { type: "string" },
  },
});
if (!["warm", "empty-pool", "cold"].includes(args.start)) {
  throw new Error(`--start is warm, empty-pool or cold, not ${args.start}`);
}
if (args["join-cgroup"]) {
  writeFileSync(args["join-cgroup"], "0");
}

// Init: load the SDK and build its client, as a handler module does at import.
const { S3Client, ListObjectsV2Command, GetObjectAclCommand } = await import("@aws-sdk/client-s3");
const BUCKET_NAME = process.env.BUCKET_NAME;
// local-s3 answers on a loopback host name, where virtual-hosted buckets do not resolve;
// against S3 itself the style makes no difference to the calls' cost.
const newClient = () => new S3Client({ forcePathStyle: true });
let s3 = newClient();

const FUNCTIONS = {
  // The write-up's baseline: every GetObjectAcl at once.
  "node-promise-all": async () => {
    const listing = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET_NAME }));
    return Promise.all(
      listing.Contents.map((entry) => s3.send(new GetObjectAclCommand({ Bucket: BUCKET_NAME, Key: entry.Key }))),
    );
  },
  "node-serial": async () => {
    const listing = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET_NAME }));
    const acls = [];
    for (const entry of listing.Contents) {
      acls.push(await s3.send(new GetObjectAclCommand({ Bucket: BUCKET_NAME, Key: entry.Key })));
    }
    return acls;
  },
};

const fn = FUNCTIONS[args.function];
if (!fn) {
  throw new Error(`--function is one of ${Object.keys(FUNCTIONS).join(", ")}, not ${args.function}`);
}

// performance.now() counts from the process's start (its time origin).
const initMs = performance.now();

function cpuMs() {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e3;
}

// Inodes of this process's open sockets, as the Rust child counts them.
function openSockets() {
  const inodes = new Set();
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith("socket:[")) inodes.add(target.slice("socket:[".length, -1));
    } catch {
      // Closed since the listing.
    }
  }
  return inodes;
}

const cold = args.start === "cold";
const [warmup, runs] = cold ? [0, 1] : [1, Number.parseInt(args.runs, 10)];
const samples = [];
for (let index = 0; index < warmup + runs; index++) {
  if (args.start === "empty-pool" && index > 0) {
    // Outside the measurement: a new client has no open connection, as an hour later.
    s3.destroy();
    s3 = newClient();
  }
  const socketsBefore = openSockets();
  const cpuBefore = cpuMs();
  const started = performance.now();
  const acls = (await fn()).length;
  const [wall, cpu] = cold ? [performance.now(), cpuMs()] : [performance.now() - started, cpuMs() - cpuBefore];
  const opened = [...openSockets()].filter((inode) => !socketsBefore.has(inode)).length;
  if (index >= warmup) {
    samples.push({ wall_ms: wall, cpu_ms: cpu, acls_fetched: acls, failures: 0, connections_opened: opened });
  }
}
// maxRSS is in kilobytes.
process.stdout.write(`${JSON.stringify({ init_ms: initMs, samples, peak_rss_kb: process.resourceUsage().maxRSS })}\n`);
s3.destroy();
