'use strict';
// `npm install` hook: reuse a working prebuilt or built addon, otherwise resolve libtorch and
// build with cmake-js. `--force` always rebuilds.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { resolveLibtorch, writeConfig } = require('./libtorch');

const ROOT = path.resolve(__dirname, '..');
const force = process.argv.includes('--force');

function addonLoads() {
  // Test-load in a child: a broken binary must not take this process down.
  const r = spawnSync(process.execPath, ['-e', `require('node-gyp-build')(${JSON.stringify(ROOT)}).nativeInfo()`], {
    cwd: ROOT,
    stdio: 'ignore',
  });
  return r.status === 0;
}

function main() {
  if (process.env.LETHE_SKIP_NATIVE_BUILD) {
    console.error('[lethe] LETHE_SKIP_NATIVE_BUILD set: not building the addon');
    return;
  }
  if (!force && addonLoads()) {
    console.error('[lethe] native addon already present and loads; `npm run build:native` rebuilds it');
    return;
  }
  let cfg;
  try {
    cfg = writeConfig(resolveLibtorch());
  } catch (e) {
    console.error(`[lethe] ${e.message}`);
    process.exit(1);
  }
  console.error(`[lethe] libtorch ${cfg.fullVersion || cfg.version} from ${cfg.source}: ${cfg.libDir}`);
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const args = [cmakeJs, 'build', '--out', 'build'];
  if (spawnSync('ninja', ['--version'], { stdio: 'ignore' }).status === 0) args.push('--generator', 'Ninja');
  const parallel = process.env.LETHE_BUILD_JOBS || String(Math.max(1, require('os').cpus().length));
  args.push('--parallel', parallel);
  const r = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('[lethe] native build failed (see above). Needs g++ (C++17), cmake >= 3.19 and ideally ninja.');
    process.exit(r.status || 1);
  }
  if (!addonLoads()) {
    console.error('[lethe] the addon was built but does not load: run `node -e "require(\'node-gyp-build\')(\'.\')"` to see why');
    process.exit(1);
  }
  console.error('[lethe] native addon built: build/Release/lethe.node');
}

main();
