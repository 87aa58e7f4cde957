'use strict';
// Runs a Python script of ours (fixture makers, reference benchmarks) with torch and the pinned
// diffusers/transformers on PYTHONPATH. They are installed once per machine into the per-user
// cache; they are never a runtime dependency of Lethe.
//   node scripts/python.js scripts/make_fixtures.py [args...]
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { resolveLibtorch, cacheRoot } = require('./libtorch');

const PY_PINS = ['diffusers==0.35.2', 'transformers==4.57.1', 'numpy==2.4.6', 'regex'];

function pythonDeps() {
  const dir = path.join(cacheRoot(), 'pydeps-' + require('crypto').createHash('sha1').update(PY_PINS.join(' ')).digest('hex').slice(0, 8));
  if (!fs.existsSync(path.join(dir, '.complete'))) {
    const partial = `${dir}.partial-${process.pid}`;
    process.stderr.write(`[lethe] installing ${PY_PINS.join(' ')} into ${dir}\n`);
    const r = spawnSync(process.env.LETHE_PYTHON || 'python3', ['-m', 'pip', 'install', '--no-compile', '--disable-pip-version-check', '--target', partial, ...PY_PINS], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`pip install ${PY_PINS.join(' ')} failed`);
    fs.writeFileSync(path.join(partial, '.complete'), PY_PINS.join('\n'));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(partial, dir);
  }
  return dir;
}

function pythonEnv() {
  const torch = resolveLibtorch();
  const parts = [torch.pythonPath, pythonDeps()].filter(Boolean);
  if (process.env.PYTHONPATH) parts.push(process.env.PYTHONPATH);
  return { ...process.env, PYTHONPATH: parts.join(path.delimiter), PYTHONUNBUFFERED: '1' };
}

module.exports = { pythonEnv };

if (require.main === module) {
  const r = spawnSync(process.env.LETHE_PYTHON || 'python3', process.argv.slice(2), { stdio: 'inherit', env: pythonEnv() });
  process.exit(r.status ?? 1);
}
