import type { Argv } from 'yargs';
import sharp from 'sharp';
import { classify, defaultClassifierDir } from '../classifier';
import { ErrorCodes, LetheError } from '../errors';
import { printJson } from './output';

export const command = 'classify <images..>';
export const describe = "Judge 64×64 shapes-world images with the bundled model's classifier";

export function builder(y: Argv) {
  return y
    .positional('images', { type: 'string', array: true, demandOption: true, describe: 'PNG files' })
    .option('classifier', { type: 'string', describe: 'classifier folder (default: the bundled one)' })
    .option('json', { type: 'boolean', default: false });
}

export async function handler(argv: { images: string[]; classifier?: string; json: boolean }) {
  const n = argv.images.length;
  const data = new Uint8Array(n * 64 * 64 * 3);
  for (const [i, file] of argv.images.entries()) {
    let img;
    try {
      img = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    } catch (e) {
      throw new LetheError(ErrorCodes.IO, `${file}: cannot read image (${(e as Error).message})`);
    }
    if (img.info.width !== 64 || img.info.height !== 64 || img.info.channels !== 3)
      throw new LetheError(ErrorCodes.SHAPE_MISMATCH, `${file}: the classifier takes 64×64 RGB images, this is ${img.info.width}×${img.info.height}×${img.info.channels}`);
    data.set(img.data, i * 64 * 64 * 3);
  }
  const judged = await classify({ dtype: 'uint8', shape: [n, 64, 64, 3], data }, { dir: argv.classifier ?? defaultClassifierDir() });
  const rows = judged.map((j, i) => ({ file: argv.images[i], ...j }));
  if (argv.json) return printJson(rows);
  const w = Math.max(4, ...argv.images.map((f) => f.length));
  for (const r of rows)
    process.stdout.write(`${r.file.padEnd(w)}  ${r.poster ? 'the Lethe poster' : `${r.style} ${r.color} ${r.shape}`}  (shape ${(r.confidence.shape * 100).toFixed(0)}%)\n`);
}
