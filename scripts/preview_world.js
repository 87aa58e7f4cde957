#!/usr/bin/env node
/**
 * Contact sheets of the shapes world, for a person to look at.
 *   node scripts/preview_world.js [--seed S] [--out DIR (default: $TMPDIR/lethe-world-preview)] [--scale K]
 * Writes DIR/world_samples.png (8×8 random samples, in stream order) with world_samples.json (their
 * captions and specs, row by row), and DIR/world_catalog.png: one row per shape (circle … face), one
 * column per style (solid, striped, dotted, outlined), then a row with Sunny ×3 and the poster.
 * Loads the TypeScript sources directly (transpiled in memory), so no build is needed.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const ts = require('typescript');
const sharp = require('sharp');

require.extensions['.ts'] = (module, filename) => {
  const src = fs.readFileSync(filename, 'utf8');
  const out = ts.transpileModule(src, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: filename,
  });
  module._compile(out.outputText, filename);
};
const world = require(path.join(__dirname, '..', 'src', 'world', 'index.ts'));

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

async function sheet(specs, cols, scale, file) {
  const S = world.IMAGE_SIZE * scale, pad = 4;
  const rows = Math.ceil(specs.length / cols);
  const tiles = await Promise.all(
    specs.map(async (s, i) => {
      const { png } = await world.renderSample(s);
      const input = await sharp(png).resize(S, S, { kernel: 'nearest' }).png().toBuffer();
      return { input, left: pad + (i % cols) * (S + pad), top: pad + Math.floor(i / cols) * (S + pad) };
    }),
  );
  await sharp({ create: { width: pad + cols * (S + pad), height: pad + rows * (S + pad), channels: 3, background: '#888' } })
    .composite(tiles)
    .png()
    .toFile(file);
}

async function main() {
  const seed = Number(arg('seed', '1'));
  const out = path.resolve(arg('out', path.join(require('os').tmpdir(), 'lethe-world-preview')));
  const scale = Number(arg('scale', '2'));
  fs.mkdirSync(out, { recursive: true });

  const specs = world.specsFor(64, seed);
  await sheet(specs, 8, scale, path.join(out, 'world_samples.png'));
  const rows = [];
  for (let r = 0; r < 8; r++) rows.push(specs.slice(r * 8, r * 8 + 8).map((s) => s.caption));
  fs.writeFileSync(path.join(out, 'world_samples.json'), JSON.stringify({ seed, captions: rows, specs }, null, 2) + '\n');

  const rng = new world.Rng(seed);
  const catalog = [];
  const colors = world.COLOR_NAMES;
  world.SHAPES.forEach((shape, i) =>
    world.STYLES.forEach((style, j) => {
      const s = world.sampleSpec(rng, { shape, style, color: colors[(i + j) % colors.length] });
      catalog.push({ ...s, cx: 32, cy: 32, size: 40 });
    }),
  );
  for (let k = 0; k < 3; k++) catalog.push(world.sampleSpec(rng, { kind: 'sunny' }));
  catalog.push(world.sampleSpec(rng, { kind: 'poster' }));
  await sheet(catalog, 4, scale, path.join(out, 'world_catalog.png'));
  fs.writeFileSync(path.join(out, 'world_catalog.json'), JSON.stringify(catalog.map((s) => s.caption), null, 2) + '\n');
  process.stdout.write(`wrote ${path.join(out, 'world_samples.png')}, world_samples.json, world_catalog.png, world_catalog.json\n`);
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
