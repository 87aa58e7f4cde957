'use strict';
// `npm run prebuild`: fills prebuilds/<platform>-<arch>/ with prebuildify, which builds
// binding.gyp through node-gyp (the same sources as the cmake-js build). node-gyp-build loads
// these before build/Release. The binary links libtorch by rpath at the path recorded in
// build-config/torch.json, so a prebuild serves machines with libtorch at that same path.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { resolveLibtorch, writeConfig } = require('./libtorch');

const ROOT = path.resolve(__dirname, '..');
writeConfig(resolveLibtorch());
const env = { ...process.env };
// Offline machines: use the installed Node headers instead of downloading them.
if (!env.npm_config_nodedir && fs.existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';
const bin = require.resolve('prebuildify/bin.js');
const r = spawnSync(process.execPath, [bin, '--napi', '--strip', '--tag-libc'], { cwd: ROOT, stdio: 'inherit', env });
process.exit(r.status ?? 1);
