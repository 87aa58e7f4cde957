/** Evaluation output: a text table for the terminal, and a report folder (JSON, HTML, image grids). */
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { toRgb8 } from '../image';
import type { Tensor } from '../tensor';
import { targetRate, type ErasureEvaluation, type PromptResult } from './evaluate';

const pct = (v: number | undefined) => (v === undefined ? '   -' : `${Math.round(v * 100)}%`.padStart(4));

export function promptTable(results: PromptResult[]): string {
  const w = Math.max(6, ...results.map((r) => r.prompt.length));
  const lines = [`${'prompt'.padEnd(w)}  shape color style  all  sunny poster`];
  for (const r of results)
    lines.push(`${r.prompt.padEnd(w)}  ${pct(r.rates.shape)}  ${pct(r.rates.color)}  ${pct(r.rates.style)} ${pct(r.rates.all)}  ${pct(r.sunny)}  ${pct(r.memorized)}`);
  return lines.join('\n');
}

export function erasureTable(ev: ErasureEvaluation): string {
  const s = ev.summary;
  const row = (name: string, v: { base: number; erased: number } | null, note: string) =>
    v ? `${name.padEnd(24)} ${pct(v.base)}  →  ${pct(v.erased)}   ${note}` : `${name.padEnd(24)}    -        -   ${note}`;
  return [
    `erasing "${s.concept}" (${s.kind})             base    erased`,
    row('efficacy (target)', s.efficacy, 'target attribute in images of target prompts (lower is better)'),
    row('specificity: related', s.specificity.related, 'related prompts fully correct (closer to base is better)'),
    row('specificity: unrelated', s.specificity.unrelated, 'unrelated prompts fully correct'),
    row('robustness', s.robustness, 'target attribute via misspellings and paraphrases'),
    row('memorized poster', s.memorized, 'copies of the memorized poster among target and robustness images'),
    row(`generalization: trained (${s.generalization.trained?.prompts.length ?? 0})`, s.generalization.trained, 'target attribute via the target and robustness prompts it trained on'),
    row(`  held out (${s.generalization.heldOut?.prompts.length ?? 0})`, s.generalization.heldOut, 'the same via those it never saw (other templates, misspellings, paraphrases)'),
    ...(s.kept ? [row('kept attributes', s.kept, "target prompts' other named attributes (color, shape) still right")] : []),
    ...(s.anchor
      ? [
          row(`anchor: ${s.anchor.text}`, s.anchor.rate, 'target prompts showing the anchor (higher is better)'),
          ...Object.entries(s.anchor.attributes).map(([k, v]) => row(`  anchor ${k} ${s.anchor!.expect[k as 'shape']}`, v ?? null, '')),
        ]
      : []),
    ...Object.entries(s.drift).map(
      ([k, d]) => `target prompts' ${k}s (what they became)\n  base:   ${distribution(d!.base)}\n  erased: ${distribution(d!.erased)}`,
    ),
  ].join('\n');
}

/** Labels by share, largest first, those under 2% left out: "circle 93.8%, face 4.2%". */
export function distribution(d: Record<string, number>): string {
  const shown = Object.entries(d)
    .filter(([, v]) => v >= 0.02)
    .sort((a, b) => b[1] - a[1]);
  return shown.length ? shown.map(([k, v]) => `${k} ${(v * 100).toFixed(1)}%`).join(', ') : '-';
}

async function gridPng(rows: Tensor[], scale = 2): Promise<Buffer> {
  const n = Math.max(...rows.map((r) => r.shape[0]));
  const size = rows[0].shape[2] * scale;
  const composites: sharp.OverlayOptions[] = [];
  for (const [ri, images] of rows.entries())
    for (let i = 0; i < images.shape[0]; i++) {
      const { data, width, height } = toRgb8(images, i);
      const input = await sharp(data, { raw: { width, height, channels: 3 } }).resize(width * scale, height * scale, { kernel: 'nearest' }).png().toBuffer();
      composites.push({ input, left: i * size, top: ri * size });
    }
  return sharp({ create: { width: n * size, height: rows.length * size, channels: 3, background: '#ffffff' } }).composite(composites).png().toBuffer();
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function strip(results: PromptResult[]) {
  return results.map(({ images: _images, ...rest }) => rest);
}

/** Replaces `dir` with a complete report (written beside it first, then renamed into place). */
async function writeFolder(dir: string, files: Record<string, Buffer | string>): Promise<void> {
  const abs = path.resolve(dir);
  const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    for (const [name, data] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(tmp, name)), { recursive: true });
      fs.writeFileSync(path.join(tmp, name), data);
    }
    const old = `${tmp}.old`;
    if (fs.existsSync(abs)) fs.renameSync(abs, old);
    fs.renameSync(tmp, abs);
    fs.rmSync(old, { recursive: true, force: true });
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

export async function writeModelReport(dir: string, meta: Record<string, unknown>, results: PromptResult[]): Promise<void> {
  const files: Record<string, Buffer | string> = { 'results.json': JSON.stringify({ ...meta, results: strip(results) }, null, 2) + '\n' };
  const rows: string[] = [];
  for (const [i, r] of results.entries()) {
    let img = '';
    if (r.images) {
      files[`grids/${i}.png`] = await gridPng([r.images]);
      img = `<img src="grids/${i}.png" alt="${esc(r.prompt)}">`;
    }
    rows.push(`<tr><td>${esc(r.prompt)}</td><td>${pct(r.rates.shape)}</td><td>${pct(r.rates.color)}</td><td>${pct(r.rates.style)}</td><td>${pct(r.rates.all)}</td><td>${pct(r.sunny)}</td><td>${pct(r.memorized)}</td><td>${img}</td></tr>`);
  }
  files['index.html'] = page('Lethe evaluation', `<pre>${esc(JSON.stringify(meta, null, 2))}</pre><table><tr><th>prompt</th><th>shape</th><th>color</th><th>style</th><th>all</th><th>sunny</th><th>poster</th><th>images</th></tr>${rows.join('\n')}</table>`);
  await writeFolder(dir, files);
}

export async function writeErasureReport(dir: string, meta: Record<string, unknown>, ev: ErasureEvaluation): Promise<void> {
  const json = {
    ...meta,
    summary: ev.summary,
    base: Object.fromEntries(Object.entries(ev.base).map(([k, v]) => [k, strip(v)])),
    erased: Object.fromEntries(Object.entries(ev.erased).map(([k, v]) => [k, strip(v)])),
  };
  const files: Record<string, Buffer | string> = { 'results.json': JSON.stringify(json, null, 2) + '\n' };
  const sections: string[] = [];
  const trained = new Set(ev.summary.generalization.trained?.prompts ?? []);
  let g = 0;
  for (const group of Object.keys(ev.base)) {
    const targeted = group === 'target' || group === 'robustness';
    const rows: string[] = [];
    for (const [i, b] of ev.base[group].entries()) {
      const e = ev.erased[group][i];
      let img = '';
      if (b.images && e.images) {
        files[`grids/${g}.png`] = await gridPng([b.images, e.images]);
        img = `<img src="grids/${g}.png" alt="${esc(b.prompt)}: base (top), erased (bottom)">`;
        g++;
      }
      // Target and robustness prompts show what efficacy counts (the erased attribute, poster
      // copies included) and the copies; the others show fully correct images, as specificity.
      const cells = targeted
        ? `<td>${pct(targetRate([b], ev.sets.target))} → ${pct(targetRate([e], ev.sets.target))}</td><td>${pct(b.memorized)} → ${pct(e.memorized)}</td>`
        : `<td>${pct(b.rates.all)} → ${pct(e.rates.all)}</td>`;
      const mark = targeted ? (trained.has(b.prompt) ? ' <small>(trained on)</small>' : ' <small>(held out)</small>') : '';
      rows.push(`<tr><td>${esc(b.prompt)}${mark}</td>${cells}<td>${img}</td></tr>`);
    }
    const head = targeted ? `<th>${esc(ev.summary.concept)} in the images, base → erased</th><th>poster copies</th>` : '<th>all expected attributes, base → erased</th>';
    sections.push(`<h2>${esc(group)}</h2><table><tr><th>prompt</th>${head}<th>base (top row) / erased (bottom row)</th></tr>${rows.join('\n')}</table>`);
  }
  files['index.html'] = page(`Lethe: erasing "${esc(ev.summary.concept)}"`, `<pre>${esc(erasureTable(ev))}</pre><pre>${esc(JSON.stringify(meta, null, 2))}</pre>${sections.join('\n')}`);
  await writeFolder(dir, files);
}

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title><style>body{font-family:sans-serif;margin:2em}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:middle}img{image-rendering:pixelated}</style></head><body><h1>${title}</h1>${body}</body></html>\n`;
}
