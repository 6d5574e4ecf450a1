// One autocannon run for benchmarks/harness.py: prints one JSON line with autocannon's own
// result and the CPU of the load alone (process.cpuUsage around the run: node's start-up
// and the require of autocannon excluded, as the harness does for the engine and Locust).
//
//     NODE_PATH="$(npm root -g)" node benchmarks/bench_autocannon.js URL CONNECTIONS AMOUNT TIMEOUT_S
'use strict';
const autocannon = require('autocannon');

const [url, connections, amount, timeout] = process.argv.slice(2);
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
autocannon(
  { url, connections: Number(connections), amount: Number(amount), timeout: Number(timeout) },
  (err, result) => {
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    if (err) {
      console.error(String(err));
      process.exit(1);
    }
    const out = { result, run_cpu_s: (cpu.user + cpu.system) / 1e6, call_wall_s: wall };
    out.version = require('autocannon/package.json').version;
    console.log(JSON.stringify(out));
  },
);
