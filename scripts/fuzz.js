#!/usr/bin/env node
'use strict';
// Structure-aware fuzzing of what Lethe reads from strangers: safetensors files (header and data),
// the JSON reader behind headers and diffusers config.json files, and delta metadata.
//   node scripts/fuzz.js [--cases 100000] [--seed 1] [--only safetensors,json,delta] [--out FILE]
//   npm run fuzz      # 100,000 cases under the sanitizer build (scripts/sanitize.js)
// Seeded and reproducible: a failure prints its target, case number and seed, and `--seed S
// --from N --cases 1` replays it. Every case must end in one of two ways:
//   rejected: a LetheError with code LETHE_BAD_CHECKPOINT (anything else is a finding);
//   accepted: the file loads, every tensor holds exactly the bytes its header points at (checked
//             against an independent JS reading of the header), and it round-trips through
//             saveSafetensors; JSON texts equal JSON.parse's reading of them.
// A sanitizer report aborts the process (non-zero exit). Headers are also timed at growing sizes:
// the time per byte must not grow with the size (the reader is linear).
const fs = require('fs');
const os = require('os');
const path = require('path');
const yargs = require('yargs');

const argv = yargs(process.argv.slice(2))
  .option('cases', { type: 'number', default: 100000, describe: 'cases in all, shared by the targets' })
  .option('seed', { type: 'number', default: 1 })
  .option('from', { type: 'number', default: 0, describe: 'first case number (to replay one)' })
  .option('only', { type: 'string', describe: 'comma-separated targets: safetensors, json, delta' })
  .option('out', { type: 'string', describe: 'write the summary JSON here too' })
  .option('keep', { type: 'string', describe: 'copy each failing safetensors case into this folder' })
  .strict()
  .parseSync();

const lethe = require('..');
const { native } = require('../dist/native');
const { readDeltaInfo, DELTA_FORMAT, DELTA_FORMAT_VERSION } = require('../dist/erase/delta');

const ROOT = path.resolve(__dirname, '..');
const TMP = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'lethe-fuzz-'));

// ---- seeded randomness (mulberry32), one stream per case so any case replays alone ----
function rngFor(seed, n) {
  let a = (seed * 0x9e3779b1 + n * 0x85ebca6b) >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r = {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    chance: (p) => next() < p,
  };
  return r;
}

// ---- safetensors seeds ----
const ITEM = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, BOOL: 1 };
function build(header, data, { lengthDelta = 0, pad = 0 } = {}) {
  const json = Buffer.from(JSON.stringify(header) + ' '.repeat(pad));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Math.max(0, json.length + lengthDelta)));
  return Buffer.concat([len, json, data]);
}

/** A valid header and data: a few tensors of random dtypes and shapes, laid out contiguously. */
function validSeed(r) {
  const n = 1 + r.int(6);
  const header = {};
  if (r.chance(0.5)) header.__metadata__ = { format: r.pick(['pt', 'lethe-delta']), note: r.pick(['', 'x', 'é', '"q"', '\\']) };
  let offset = 0;
  const parts = [];
  for (let i = 0; i < n; i++) {
    const dtype = r.pick(Object.keys(ITEM));
    const rank = r.int(4);
    const shape = Array.from({ length: rank }, () => (r.chance(0.1) ? 0 : 1 + r.int(5)));
    const bytes = shape.reduce((a, b) => a * b, 1) * ITEM[dtype];
    const data = Buffer.alloc(bytes);
    for (let k = 0; k < bytes; k++) data[k] = r.int(256);
    if (dtype === 'BOOL') for (let k = 0; k < bytes; k++) data[k] &= 1;
    header[r.pick(['unet.', 'text_encoder.', 'extra.', '', 'a/b.'] ) + `t${i}` + r.pick(['', '.weight', '.bias'])] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
    parts.push(data);
  }
  return { header, data: Buffer.concat(parts) };
}

const HUGE = [2 ** 31, 2 ** 32, 2 ** 53, 2 ** 62, 2 ** 63, 2 ** 64, -1, -(2 ** 63), 1e300];
const ODD_VALUES = [null, true, 'x', 1.5, [], {}, -0, '1', [1, 2, 3]];
const DTYPES = [...Object.keys(ITEM), 'F8_E4M3', 'U16', 'I8', 'f32', '', 'F32 ', 'BF16\u0000'];

/** One field-wise mutation of a parsed header (lengths, offsets, dtypes, shapes, names, metadata). */
function mutateHeader(r, header) {
  // A field an earlier mutation made odd may not take this one: then the header stays as it is.
  try {
    mutateHeaderOnce(r, header);
  } catch {
    /* no mutation */
  }
}
function mutateHeaderOnce(r, header) {
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const name = names.length ? r.pick(names) : undefined;
  const e = name ? header[name] : undefined;
  switch (r.int(14)) {
    case 0: if (e) e.data_offsets[r.int(2)] += r.pick([-8, -1, 1, 2, 8, 1024]); break;
    case 1: if (e) e.data_offsets[r.int(2)] = r.pick(HUGE); break;
    case 2: if (e) e.data_offsets = r.pick([[0], [0, 1, 2], 'x', null, [1.5, 4], [4, 0]]); break;
    case 3: if (e) e.dtype = r.pick(DTYPES); break;
    case 4: if (e) e.shape = [...e.shape, r.pick([0, 1, 2, ...HUGE])]; break;
    case 5: if (e && e.shape.length) e.shape[r.int(e.shape.length)] = r.pick([0, 3, 1.5, '2', null, ...HUGE]); break;
    case 6: if (e) e.shape = r.pick([null, 'x', {}, [[]], [0, 2 ** 62, 2 ** 62]]); break;
    case 7: if (e) delete e[r.pick(['dtype', 'shape', 'data_offsets'])]; break;
    case 8: if (e) e[r.pick(['dtype', 'shape', 'data_offsets', 'extra'])] = r.pick(ODD_VALUES); break;
    case 9: if (name) { header[r.pick(['', ' ', '__metadata__', name + '\u0000', 'é'.repeat(3), '\ud83d\ude00'])] = header[name]; delete header[name]; } break;
    case 10: header.__metadata__ = r.pick([1, 'x', [], { a: 1 }, { a: null }, { a: 'b', c: { d: 'e' } }]); break;
    case 11: if (name) header[name] = r.pick(ODD_VALUES); break;
    case 12: if (e && names.length > 1) { const other = header[r.pick(names)]; if (other && other.data_offsets) e.data_offsets = [...other.data_offsets]; } break;
    default: if (e) e.data_offsets = [e.data_offsets[0], e.data_offsets[0]]; break;
  }
}

/** Raw JSON text edits that JSON.stringify cannot produce (duplicates, nesting, literals, numbers). */
const TEXT_EDITS = [
  (s, r) => s.replace(/"(\w[^"]*)":/, (m) => `${m}1,${m}`),  // a duplicate key
  (s) => s.replace('{', '{"z":' + '['.repeat(70) + ']'.repeat(70) + ','),  // too deep
  (s, r) => s.replace(/\d+/, r.pick(['01', '1.', '1e', '-', '1e400', '0x10', '1_0', '99999999999999999999', 'NaN', 'Infinity', '1.0', '-0'])),
  (s, r) => s.replace(/"/, r.pick(['"\\u', '"\\ud800', '"\\uDC00x', '"\\x41', '"\u0001', '"\\'])),
  (s, r) => s + r.pick([' ', '\n', 'x', ',', '}', '\u0000']),
  (s, r) => r.pick(['\ufeff', ' ', '\u00a0', '[', '']) + s,
  (s, r) => s.replace(/true|false|null|\[/, r.pick(['tru', 'nul', 'True', '[[', '{'])),
  (s, r) => s.slice(0, r.int(s.length + 1)),
  (s, r) => s.replace(/,/, r.pick([',,', '', ' , ', ':'])),
];

function mutateBytes(r, b) {
  const out = Buffer.from(b);
  const kind = r.int(6);
  if (kind === 0 && out.length) for (let i = 0, n = 1 + r.int(4); i < n; i++) out[r.int(out.length)] = r.int(256);
  else if (kind === 1 && out.length) return out.subarray(0, r.int(out.length));
  else if (kind === 2) return Buffer.concat([out, Buffer.alloc(1 + r.int(64), r.int(256))]);
  else if (kind === 3 && out.length >= 8) out.writeBigUInt64LE(BigInt(r.pick([0, 1, 2, 7, 100 * 2 ** 20 + 1, 2 ** 53, out.length, out.length - 7])), 0);
  else if (kind === 4 && out.length > 9) { const i = 8 + r.int(out.length - 8); out[i] ^= 1 << r.int(8); }
  else if (kind === 5) return Buffer.concat([Buffer.from(r.pick([[0x80, 0x02], [0x80, 0x04, 0x95], [0x50, 0x4b, 0x03, 0x04]])), out.subarray(r.int(4))]);
  return out;
}

/** What the file's own header says, read here independently of the native reader. */
function jsReading(bytes) {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const tensors = {};
  for (const [k, v] of Object.entries(header)) if (k !== '__metadata__') tensors[k] = { ...v, bytes: bytes.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]) };
  return tensors;
}

const raw = (t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
const isBad = (e) => e instanceof Error && e.code === 'LETHE_BAD_CHECKPOINT';

class Finding extends Error {}

async function safetensorsCase(r, i) {
  const { header, data } = validSeed(r);
  let bytes;
  const mode = r.int(4);
  if (mode === 0) { mutateHeader(r, header); bytes = build(header, data, { pad: r.int(9) }); }
  else if (mode === 1) { bytes = build(header, data); let s = bytes.subarray(8).toString('latin1'); const n = Number(bytes.readBigUInt64LE(0)); let h = s.slice(0, n); h = r.pick(TEXT_EDITS)(h, r); const hb = Buffer.from(h, 'latin1'); const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(hb.length)); bytes = Buffer.concat([len, hb, data]); }
  else if (mode === 2) bytes = mutateBytes(r, build(header, data));
  else { mutateHeader(r, header); mutateHeader(r, header); bytes = mutateBytes(r, build(header, data, { lengthDelta: r.pick([0, 0, -1, 1]) })); }
  const file = path.join(TMP, `case.safetensors`);
  fs.writeFileSync(file, bytes);
  let headerOk, loadOk, h, loaded;
  try { h = lethe.readSafetensorsHeader(file); headerOk = true; } catch (e) { if (!isBad(e)) throw new Finding(`header read failed with ${e.code || e.name}: ${e.message}`); headerOk = false; }
  try { loaded = await lethe.loadSafetensors(file); loadOk = true; } catch (e) { if (!isBad(e)) throw new Finding(`load failed with ${e.code || e.name}: ${e.message}`); loadOk = false; }
  if (headerOk !== loadOk) throw new Finding(`header read ${headerOk ? 'accepted' : 'refused'} what load ${loadOk ? 'accepted' : 'refused'}`);
  if (!loadOk) return 'rejected';
  let mine;
  try { mine = jsReading(bytes); } catch (e) { throw new Finding(`accepted a file whose header JSON.parse cannot read: ${e.message}`); }
  const names = Object.keys(mine).sort();
  if (JSON.stringify(names) !== JSON.stringify(Object.keys(loaded.tensors).sort()) || h.tensors.length !== names.length) throw new Finding('accepted tensor names differ from the header');
  for (const k of names) {
    const t = loaded.tensors[k];
    if (JSON.stringify(t.shape) !== JSON.stringify(mine[k].shape)) throw new Finding(`tensor ${k}: shape ${t.shape} vs header ${mine[k].shape}`);
    if (!raw(t).equals(mine[k].bytes)) throw new Finding(`tensor ${k}: loaded bytes differ from the file's`);
  }
  const again = path.join(TMP, 'again.safetensors');
  await lethe.saveSafetensors(again, loaded.tensors, { metadata: loaded.metadata });
  const back = await lethe.loadSafetensors(again);
  for (const k of names) if (!raw(back.tensors[k]).equals(raw(loaded.tensors[k]))) throw new Finding(`tensor ${k} changed in a save/load round trip`);
  if (JSON.stringify(back.metadata) !== JSON.stringify(loaded.metadata)) throw new Finding('metadata changed in a round trip');
  return 'accepted';
}

// ---- JSON (diffusers config.json and headers) against JSON.parse ----
const CONFIG_SEEDS = (() => {
  const out = [];
  const walk = (d) => {
    for (const f of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, f.name);
      if (f.isDirectory()) walk(p);
      else if (f.name.endsWith('.json') && fs.statSync(p).size < 200000) out.push(fs.readFileSync(p, 'utf8'));
    }
  };
  for (const d of ['models', 'test/fixtures/models']) if (fs.existsSync(path.join(ROOT, d))) walk(path.join(ROOT, d));
  return out.length ? out : ['{"a": 1}'];
})();

function depth(v) {
  if (v === null || typeof v !== 'object') return 0;
  let m = 0;
  for (const x of Object.values(v)) m = Math.max(m, depth(x));
  return 1 + m;
}
const sameJson = (a, b) => {
  if (typeof a === 'number' && typeof b === 'number') return a === b || (Number.isNaN(a) && Number.isNaN(b));
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return a === b;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameJson(a[k], b[k]));
};

function jsonCase(r) {
  let text = r.pick(CONFIG_SEEDS);
  for (let k = 0, n = 1 + r.int(3); k < n; k++) {
    if (r.chance(0.6)) text = r.pick(TEXT_EDITS)(text, r);
    else { const b = mutateBytes(r, Buffer.concat([Buffer.alloc(8), Buffer.from(text)])).subarray(8); text = b.toString('latin1'); }
  }
  const bytes = Buffer.from(text, 'latin1');
  let ours, theirs, oursOk = true, theirsOk = true;
  let refusal = '';
  try { ours = native().jsonProbe(bytes); } catch (e) { if (!isBad(e)) throw new Finding(`JSON reader failed with ${e.code || e.name}: ${e.message}`); oursOk = false; refusal = e.message; }
  try { theirs = JSON.parse(bytes.toString('utf8')); } catch { theirsOk = false; }
  const utf8 = bytes.equals(Buffer.from(bytes.toString('utf8')));
  if (oursOk && !utf8) throw new Finding(`accepted a text that is not UTF-8: ${JSON.stringify(text.slice(0, 80))}`);
  if (oursOk && !theirsOk) throw new Finding(`accepted text JSON.parse refuses: ${JSON.stringify(text.slice(0, 80))}`);
  if (!oursOk) {
    // Deliberate refusals of texts JSON.parse takes: duplicate keys, nesting past 64, lone surrogates.
    if (theirsOk && utf8 && !/duplicate key|nested too deeply|surrogate|control character/.test(refusal))
      throw new Finding(`refused text JSON.parse reads (${refusal}): ${JSON.stringify(text.slice(0, 80))}`);
    return 'rejected';
  }
  if (!sameJson(ours, theirs)) throw new Finding(`read differently from JSON.parse: ${JSON.stringify(text.slice(0, 80))}`);
  if (depth(ours) > 65) throw new Finding('accepted nesting past the bound');
  return 'accepted';
}

// ---- delta metadata ----
async function deltaCase(r) {
  const metadata = {
    format: DELTA_FORMAT, format_version: DELTA_FORMAT_VERSION, method: 'esd-x',
    concepts: JSON.stringify(['circle']), base_fingerprints: JSON.stringify({ unet: 'a'.repeat(64) }), base_fingerprint: 'a'.repeat(64),
  };
  const keys = Object.keys(metadata);
  for (let k = 0, n = 1 + r.int(3); k < n; k++) {
    const key = r.pick([...keys, 'prompt_memory_layers', 'hyperparameters']);
    metadata[key] = r.pick([
      '', 'null', '[]', '{}', '1', '"x"', '[1]', '{"unet":1}', '{"unet":null}', '{"text_encoder":"b"}', '[["a"]]', '{"__proto__":{"x":1}}',
      '{"constructor":"x"}', 'x'.repeat(r.int(2000)), JSON.stringify(['a', 'b']).slice(0, r.int(8)), '3', '2', '0', 'lethe-delta ', '\u0000',
    ]);
    if (r.chance(0.2)) delete metadata[key];
  }
  const tensors = { [r.pick(['unet.a.weight', 'text_encoder.b', 'extra.prompt_memory.k', 'extra', 'other.x', 'unet'])]: { dtype: 'float32', shape: [2], data: Float32Array.from([1, 2]) } };
  const file = path.join(TMP, 'delta.safetensors');
  await lethe.saveSafetensors(file, tensors, { metadata });
  try {
    const info = readDeltaInfo(file);
    if (!info || typeof info.baseFingerprints !== 'object' || !Array.isArray(info.concepts)) throw new Finding('accepted a delta with unusable fields');
    return 'accepted';
  } catch (e) {
    if (e instanceof Finding) throw e;
    if (isBad(e)) return 'rejected';
    throw new Finding(`delta metadata failed with ${e.code || e.name}: ${e.message}`);
  }
}

// ---- linear time: the same header shape at growing sizes ----
function timeHeaders() {
  const rows = [];
  for (const n of [20000, 80000, 320000]) {
    const header = {};
    for (let i = 0; i < n; i++) header[`t${i}`] = { dtype: 'U8', shape: [1], data_offsets: [i, i + 1] };
    const file = path.join(TMP, 'big.safetensors');
    fs.writeFileSync(file, build(header, Buffer.alloc(n)));
    const bytes = fs.statSync(file).size;
    let best = Infinity;
    for (let k = 0; k < 3; k++) {
      const t0 = process.hrtime.bigint();
      lethe.readSafetensorsHeader(file);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    }
    rows.push({ tensors: n, bytes, seconds: best, nsPerByte: (best * 1e9) / bytes });
    fs.rmSync(file);
  }
  return rows;
}

(async () => {
  const targets = { safetensors: safetensorsCase, json: jsonCase, delta: deltaCase };
  const only = argv.only ? argv.only.split(',').map((s) => s.trim()) : Object.keys(targets);
  for (const t of only) if (!targets[t]) throw new Error(`unknown target '${t}' (safetensors, json, delta)`);
  const summary = { seed: argv.seed, from: argv.from, sanitizer: !!process.env.LETHE_ADDON, targets: {}, findings: [] };
  for (const t of only) summary.targets[t] = { cases: 0, accepted: 0, rejected: 0 };
  const t0 = Date.now();
  for (let i = argv.from; i < argv.from + argv.cases; i++) {
    const target = only[i % only.length];
    const r = rngFor(argv.seed, i);
    try {
      const outcome = await targets[target](r, i);
      summary.targets[target].cases++;
      summary.targets[target][outcome]++;
    } catch (e) {
      summary.targets[target].cases++;
      const kept = path.join(TMP, target === 'delta' ? 'delta.safetensors' : 'case.safetensors');
      if (argv.keep && fs.existsSync(kept)) fs.copyFileSync(kept, path.join(argv.keep, `${target}-${argv.seed}-${i}.safetensors`));
      summary.findings.push({ target, case: i, replay: `node scripts/fuzz.js --seed ${argv.seed} --from ${i} --cases 1`, what: e instanceof Finding ? e.message : `crash in the harness: ${e.stack}` });
      if (summary.findings.length >= 20) break;
    }
    if ((i - argv.from + 1) % 10000 === 0) process.stderr.write(`[fuzz] ${i - argv.from + 1} cases, ${summary.findings.length} findings, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  }
  summary.seconds = (Date.now() - t0) / 1000;
  if (only.includes('safetensors')) {
    summary.headerTiming = timeHeaders();
    const ns = summary.headerTiming.map((x) => x.nsPerByte);
    // Linear: 16× the bytes must not cost more than 3× as much per byte (quadratic would cost 16×).
    summary.linear = ns[ns.length - 1] / ns[0] < 3;
    if (!summary.linear) summary.findings.push({ target: 'safetensors', what: `header time per byte grows with size: ${ns.map((x) => x.toFixed(1)).join(' / ')} ns` });
  }
  summary.crashes = 0;  // a crash or sanitizer report ends the process before this line
  fs.rmSync(TMP, { recursive: true, force: true });
  const text = JSON.stringify(summary, null, 2);
  process.stdout.write(text + '\n');
  if (argv.out) fs.writeFileSync(argv.out, text + '\n');
  const n = Object.values(summary.targets).reduce((a, t) => a + t.cases, 0);
  process.stderr.write(`[fuzz] ${n} cases, ${summary.findings.length} findings\n`);
  process.exit(summary.findings.length ? 1 : 0);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
