#!/usr/bin/env node
'use strict';
// The addon under AddressSanitizer + UndefinedBehaviorSanitizer (gcc's, the compiler the torch
// wheel is built for), in build-sanitize/ beside the normal build:
//   node scripts/sanitize.js build            # npm run build:sanitize
//   node scripts/sanitize.js test [suites…]   # npm run test:sanitize: safetensors, JSON, bridge suites
//   node scripts/sanitize.js run CMD…         # any command with the sanitized addon
// node is not instrumented, so the ASan runtime is preloaded (LD_PRELOAD, it must come first) and
// the sanitized addon is chosen with LETHE_ADDON. Leak checking is off here (node frees nothing at
// exit); every other finding aborts the process, so a test or fuzz run fails on the first one.
const fs = require('fs');
const path = require('path');
const { spawnSync, execFileSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const ADDON = path.join(ROOT, 'build-sanitize', 'Release', 'lethe.node');
const SUITES = ['test/safetensors.test.ts', 'test/cli-inspect.test.ts', 'test/native-bridge.test.ts'];

function runtime() {
  let lib;
  try {
    lib = execFileSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
  } catch {
    lib = '';
  }
  if (!lib || !fs.existsSync(lib)) {
    console.error('[lethe] libasan.so not found: install gcc with its sanitizer runtime (Debian: libasan8, part of gcc-12)');
    process.exit(1);
  }
  return fs.realpathSync(lib);
}

function env() {
  if (!fs.existsSync(ADDON)) {
    console.error(`[lethe] ${path.relative(ROOT, ADDON)} is missing: run \`npm run build:sanitize\` first`);
    process.exit(1);
  }
  return {
    ...process.env,
    LETHE_ADDON: ADDON,
    LD_PRELOAD: [runtime(), process.env.LD_PRELOAD].filter(Boolean).join(':'),
    // Torch's own allocator and node's shutdown free in ways LSan reports but that are not ours.
    ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0',
    UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1',
  };
}

function run(cmd, args, extraEnv) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', env: extraEnv });
  if (r.error) throw r.error;
  return r.status === null ? 1 : r.status;
}

const [what, ...rest] = process.argv.slice(2);
if (what === 'build') {
  const { writeConfig, resolveLibtorch } = require('./libtorch');
  if (!fs.existsSync(path.join(ROOT, 'build-config', 'torch.json'))) writeConfig(resolveLibtorch());
  const args = [require.resolve('cmake-js/bin/cmake-js'), 'build', '--out', 'build-sanitize', '--CDLETHE_SANITIZE=ON'];
  if (spawnSync('ninja', ['--version'], { stdio: 'ignore' }).status === 0) args.push('--generator', 'Ninja');
  args.push('--parallel', process.env.LETHE_BUILD_JOBS || String(require('os').cpus().length));
  const status = run(process.execPath, args, process.env);
  if (status === 0) {
    // The build must load under the runtime, or every later run fails for a reason that is not a finding.
    const probe = run(process.execPath, ['-e', "require(process.env.LETHE_ADDON).nativeInfo()"], env());
    if (probe !== 0) {
      console.error('[lethe] the sanitized addon was built but does not load with the ASan runtime preloaded');
      process.exit(probe);
    }
    console.error(`[lethe] sanitized addon built: ${path.relative(ROOT, ADDON)}`);
  }
  process.exit(status);
} else if (what === 'test') {
  const suites = rest.length ? rest : SUITES;
  process.exit(run(process.execPath, [require.resolve('jest/bin/jest'), '--runInBand', ...suites], env()));
} else if (what === 'run' && rest.length) {
  process.exit(run(rest[0], rest.slice(1), env()));
} else {
  console.error('usage: node scripts/sanitize.js build | test [suites…] | run CMD…');
  process.exit(2);
}
