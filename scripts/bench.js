'use strict';
// `npm run bench`: every benchmark section, each measured next to its reference in the same run,
// printed as one JSON document (and written to --out FILE if given). `--quick` shortens each
// section for a smoke run; `--only NAME[,NAME]` picks sections.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { pythonEnv } = require('./python');

const SECTIONS = {
  matmul: require('./bench/matmul'),
  unet: require('./bench/unet'),
  generate: require('./bench/generate'),
  esd: require('./bench/esd'),
  ca: require('./bench/ca'),
  fewshot: require('./bench/fewshot'),
  'prompt-memory': require('./bench/prompt_memory'),
  doco: require('./bench/doco'),
};

function arg(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main() {
  const lethe = require('..');
  const threads = Number(process.env.LETHE_THREADS || os.cpus().length);
  lethe.setThreads(threads);
  const quick = process.argv.includes('--quick');
  const only = arg('--only')?.split(',');
  const info = lethe.nativeInfo();
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGiB: os.totalmem() / 2 ** 30 },
    torch: info.torchVersion,
    cudaAvailable: info.cudaAvailable,
    threads,
    quick,
    sections: {},
  };
  const env = pythonEnv();
  for (const [name, run] of Object.entries(SECTIONS)) {
    if (only && !only.includes(name)) continue;
    process.stderr.write(`[bench] ${name}…\n`);
    result.sections[name] = await run({ lethe, threads, pythonEnv: env, quick });
  }
  const text = JSON.stringify(result, null, 2);
  process.stdout.write(text + '\n');
  const out = arg('--out');
  if (out) {
    const tmp = `${out}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, text + '\n');
    fs.renameSync(tmp, path.resolve(out));
  }
}

main().catch((e) => {
  process.stderr.write(`[bench] ${e.stack || e}\n`);
  process.exit(1);
});
