'use strict';
// Writes dist/index.mjs so `import { ... } from 'lethe'` works next to `require('lethe')`:
// the names are read from the compiled CommonJS entry, so the two can never drift apart.
const fs = require('fs');
const path = require('path');

const dist = path.resolve(__dirname, '..', 'dist');
const names = Object.keys(require(path.join(dist, 'index.js'))).filter((n) => n !== 'default' && n !== '__esModule');
const body =
  "import lethe from './index.js';\n" +
  `export const { ${names.join(', ')} } = lethe;\n` +
  'export default lethe;\n';
fs.writeFileSync(path.join(dist, 'index.mjs'), body);
