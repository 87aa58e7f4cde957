'use strict';
// Finds libtorch for the native build and records the choice in build-config/torch.json,
// the one file that both CMakeLists.txt and binding.gyp read (docs/architecture.md, "Build").
//
// Order: LIBTORCH (an unpacked official libtorch) -> the `torch` of the active Python ->
// a pinned `torch` wheel from PyPI installed once into a per-user cache shared by every clone.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const PINNED_TORCH = '2.8.0';
const ROOT = path.resolve(__dirname, '..');
const CONFIG_PATH = path.join(ROOT, 'build-config', 'torch.json');

function log(msg) {
  process.stderr.write(`[lethe] ${msg}\n`);
}

function cacheRoot() {
  if (process.env.LETHE_CACHE_DIR) return process.env.LETHE_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'lethe');
}

function pythonExe() {
  return process.env.LETHE_PYTHON || process.env.PYTHON || 'python3';
}

// Probe a torch package through Python: version, ABI and CUDA come from torch itself.
const PROBE = [
  'import json, os, torch',
  'd = os.path.dirname(torch.__file__)',
  'print(json.dumps({"version": torch.__version__.split("+")[0], "fullVersion": torch.__version__,',
  ' "root": d, "cxx11abi": int(torch._C._GLIBCXX_USE_CXX11_ABI), "cuda": torch.version.cuda}))',
].join('\n');

function probePython(extraPath) {
  const env = { ...process.env };
  if (extraPath) env.PYTHONPATH = extraPath + (env.PYTHONPATH ? path.delimiter + env.PYTHONPATH : '');
  const r = spawnSync(pythonExe(), ['-c', PROBE], { env, encoding: 'utf8' });
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || 'python failed').trim().split('\n').pop() };
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop());
  } catch (e) {
    return { error: `unexpected probe output: ${r.stdout}` };
  }
}

function describeLayout(torchRoot) {
  // torchRoot holds include/ and lib/ (true both for the wheel's torch/ folder and a libtorch zip).
  const libDir = path.join(torchRoot, 'lib');
  const has = (name) => fs.existsSync(path.join(libDir, `lib${name}.so`));
  if (!has('torch_cpu') || !has('c10')) return null;
  const cudaLibs = has('torch_cuda') ? ['c10_cuda', 'torch_cuda'].filter(has) : [];
  return {
    includeDirs: [path.join(torchRoot, 'include'), path.join(torchRoot, 'include', 'torch', 'csrc', 'api', 'include')],
    libDir,
    libs: ['c10', 'torch_cpu', 'torch'],
    cudaLibs,
  };
}

function fromLibtorchEnv(dir) {
  const layout = describeLayout(dir);
  if (!layout) return { error: `LIBTORCH=${dir} has no lib/libtorch_cpu.so and lib/libc10.so` };
  let version = 'unknown';
  const bv = path.join(dir, 'build-version');
  if (fs.existsSync(bv)) version = fs.readFileSync(bv, 'utf8').trim();
  // Official zips are built either with the old or the cxx11 ABI; the mangled names tell which.
  const c10 = fs.readFileSync(path.join(layout.libDir, 'libc10.so'));
  const cxx11abi = c10.includes(Buffer.from('St7__cxx11')) ? 1 : 0;
  const cuda = layout.cudaLibs.length ? 'unknown' : null;
  return { source: 'LIBTORCH', root: dir, version: version.split('+')[0], fullVersion: version, cxx11abi, cuda, ...layout };
}

function installPinnedWheel(target) {
  const partial = `${target}.partial-${process.pid}`;
  log(`libtorch: installing torch==${PINNED_TORCH} from PyPI into ${target} (once per machine, several GB)`);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const r = spawnSync(
    pythonExe(),
    ['-m', 'pip', 'install', '--no-compile', '--disable-pip-version-check', '--target', partial, `torch==${PINNED_TORCH}`],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (r.status !== 0) {
    fs.rmSync(partial, { recursive: true, force: true });
    return { error: `pip install torch==${PINNED_TORCH} failed (exit ${r.status}${r.error ? ', ' + r.error.message : ''})` };
  }
  // Rename last, so a half-finished install is never mistaken for a cached one.
  try {
    fs.renameSync(partial, target);
  } catch (e) {
    if (!fs.existsSync(path.join(target, 'torch'))) throw e;
    fs.rmSync(partial, { recursive: true, force: true }); // another clone finished first
  }
  return {};
}

function fromCache({ allowInstall }) {
  const target = path.join(cacheRoot(), `torch-${PINNED_TORCH}`);
  if (!fs.existsSync(path.join(target, 'torch', 'lib', 'libtorch_cpu.so'))) {
    if (!allowInstall) return { error: `no cached wheel at ${target}` };
    const r = installPinnedWheel(target);
    if (r.error) return r;
  }
  const probe = probePython(target);
  if (probe.error) return { error: `cached wheel at ${target} does not import: ${probe.error}` };
  const layout = describeLayout(probe.root);
  if (!layout) return { error: `cached wheel at ${target} lacks libtorch libraries` };
  return { source: 'cache', pythonPath: target, ...probe, ...layout };
}

function fromActivePython() {
  const probe = probePython(null);
  if (probe.error) return { error: `${pythonExe()} has no usable torch (${probe.error})` };
  const layout = describeLayout(probe.root);
  if (!layout) return { error: `torch at ${probe.root} ships no libtorch libraries` };
  return { source: 'python', pythonPath: path.dirname(probe.root), ...probe, ...layout };
}

/** Resolve libtorch; throws an Error listing every source tried when none works. */
function resolveLibtorch({ allowInstall = true } = {}) {
  const tried = [];
  if (process.env.LIBTORCH) {
    const r = fromLibtorchEnv(path.resolve(process.env.LIBTORCH));
    if (!r.error) return r;
    // An explicit LIBTORCH that is wrong is a mistake to report, not to paper over.
    throw new Error(`LIBTORCH is set but unusable: ${r.error}`);
  }
  tried.push('LIBTORCH (not set)');
  const py = fromActivePython();
  if (!py.error) return py;
  tried.push(`active Python: ${py.error}`);
  const installed = fromCache({ allowInstall });
  if (!installed.error) return installed;
  tried.push(`pinned wheel torch==${PINNED_TORCH} into ${cacheRoot()}: ${installed.error}`);
  throw new Error(
    `libtorch could not be found or installed. Tried:\n  - ${tried.join('\n  - ')}\n` +
      'Point LIBTORCH at an unpacked libtorch (https://pytorch.org, CPU or CUDA build), ' +
      'or install torch in the active Python (pip install torch), then run `npm run build:native`.',
  );
}

function writeConfig(cfg) {
  const out = { ...cfg, pinned: PINNED_TORCH, resolvedAt: new Date().toISOString() };
  fs.mkdirSync(path.dirname(CONFIG_PATH), { recursive: true });
  const tmp = `${CONFIG_PATH}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(out, null, 2) + '\n');
  fs.renameSync(tmp, CONFIG_PATH);
  return out;
}

module.exports = { resolveLibtorch, writeConfig, CONFIG_PATH, PINNED_TORCH, cacheRoot, probePython };

if (require.main === module) {
  try {
    const cfg = writeConfig(resolveLibtorch());
    console.log(JSON.stringify(cfg, null, 2));
  } catch (e) {
    log(e.message);
    process.exit(1);
  }
}
