'use strict';
// One ESD erasure in a fresh process (so its peak RSS is its own); prints JSON.
const [model, concept, method, iterations, ddimSteps, lr, threads, out] = process.argv.slice(2);
const lethe = require('../..');
lethe.setThreads(Number(threads));
const t0 = Date.now();
lethe
  .erase({ model, concept, method, iterations: Number(iterations), ddimSteps: Number(ddimSteps), lr: Number(lr), out, checkpointEvery: 0 })
  .then((r) => {
    process.stdout.write(
      JSON.stringify({ wallSeconds: (Date.now() - t0) / 1000, loopSeconds: Object.values(r.breakdown).reduce((a, b) => a + b, 0), breakdownSeconds: r.breakdown, peakRssMiB: process.resourceUsage().maxRSS / 1024, losses: r.losses }) + '\n',
    );
  })
  .catch((e) => {
    process.stderr.write(String(e.stack || e) + '\n');
    process.exit(1);
  });
