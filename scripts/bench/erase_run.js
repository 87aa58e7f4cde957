'use strict';
// One erasure (any method) in a fresh process (so its peak RSS is its own); prints JSON.
// Peak RSS is VmHWM from /proc: Linux carries getrusage's maxrss over fork and exec, so a child of
// a bench process that had built a 3 GB UNet would report 3 GB.
const fs = require('fs');
function peakRssMiB() {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {}
  return process.resourceUsage().maxRSS / 1024;
}
// argv[2]: JSON { model, concept, threads, out, and any erase() options (the rest come from the model's defaults) }
const { threads, ...o } = JSON.parse(process.argv[2]);
const lethe = require('../..');
lethe.setThreads(threads);
const t0 = Date.now();
lethe
  .erase({ ...o, checkpointEvery: 0 })
  .then((r) => {
    process.stdout.write(
      JSON.stringify({ wallSeconds: (Date.now() - t0) / 1000, loopSeconds: Object.values(r.breakdown).reduce((a, b) => a + b, 0), breakdownSeconds: r.breakdown, peakRssMiB: peakRssMiB(), losses: r.losses }) + '\n',
    );
  })
  .catch((e) => {
    process.stderr.write(String(e.stack || e) + '\n');
    process.exit(1);
  });
