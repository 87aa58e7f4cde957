'use strict';
// What the calibration scripts (calibrate-esd.js, calibrate-ca.js, calibrate-fewshot.js) share:
// grids from comma-separated flags and how rates print.

/** A flag's comma-separated values (one undefined entry when it was not given: the default applies). */
const list = (v) => (v === undefined ? [undefined] : String(v).split(',').map((x) => x.trim()).filter(Boolean));
const num = (v) => (v === undefined ? undefined : Number(v));
/** A rate as a percentage with one decimal; — when absent. */
const pct = (v) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}`);
/** base→erased. */
const pair = (v) => (v ? `${pct(v.base)}→${pct(v.erased)}` : '—');

module.exports = { list, num, pct, pair };
