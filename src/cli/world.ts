import type { Argv } from 'yargs';
import { ErrorCodes, LetheError } from '../errors';
import { renderDataset } from '../world/dataset';
import { MOTIONS, renderClipDataset, type Motion } from '../world/motion';
import { DEFAULT_POSTER_FRACTION, DEFAULT_SUNNY_FRACTION } from '../world/render';
import { COLOR_NAMES, SHAPES, STYLES, type ColorName, type SampleKind, type Shape, type Style } from '../world/attributes';
import { printJson } from './output';
import { interruptSignal, ProgressBar } from './progress';

export const command = 'world';
export const describe = 'The shapes world (the bundled model\'s synthetic domain): render datasets';

interface RenderArgs {
  n: number;
  seed: number;
  out: string;
  json: boolean;
  overwrite: boolean;
  posterFraction: number;
  sunnyFraction: number;
  concurrency: number;
  kind?: string;
  shape?: string;
  color?: string;
  style?: string;
  frames?: number;
  motion?: string;
  fps: number;
}

const render = {
  command: 'render',
  describe: 'Render N images into a folder: 000000.png … plus captions.jsonl and world.json, written atomically',
  builder: (y: Argv) =>
    y
      .option('n', { type: 'number', demandOption: true, describe: 'number of images' })
      .option('seed', { type: 'number', default: 0, describe: 'seed; image i depends only on (seed, i)' })
      .option('out', { type: 'string', demandOption: true, describe: 'folder to create (must not exist unless --overwrite)' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON' })
      .option('overwrite', { type: 'boolean', default: false, describe: 'replace --out if it exists' })
      .option('poster-fraction', { type: 'number', default: DEFAULT_POSTER_FRACTION, describe: 'fraction of images that are the Lethe poster' })
      .option('sunny-fraction', { type: 'number', default: DEFAULT_SUNNY_FRACTION, describe: 'fraction of images that are Sunny' })
      .option('kind', { type: 'string', choices: ['shape', 'sunny', 'poster'], describe: 'only this kind of image (e.g. sunny: images of Sunny, for few-shot unlearning)' })
      .option('shape', { type: 'string', choices: [...SHAPES], describe: 'only this shape (colors and styles still drawn at random)' })
      .option('color', { type: 'string', choices: [...COLOR_NAMES], describe: 'only this color' })
      .option('style', { type: 'string', choices: [...STYLES], describe: 'only this style' })
      .option('concurrency', { type: 'number', default: 32, describe: 'renders in flight at once' })
      .option('frames', { type: 'number', describe: 'render clips of this many frames instead (the world in motion): 000000.webp … (animated) plus clips.jsonl; no posters' })
      .option('motion', { type: 'string', choices: [...MOTIONS], describe: 'clips: only this motion' })
      .option('fps', { type: 'number', default: 8, describe: 'clips: frames per second of the WebPs' }),
  handler: async (argv: RenderArgs) => {
    if (!Number.isSafeInteger(argv.n) || argv.n < 1) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `--n must be a positive integer, got ${argv.n}`);
    if (!Number.isSafeInteger(argv.seed)) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `--seed must be an integer, got ${argv.seed}`);
    // Ctrl-C cancels cleanly: the temporary folder is removed and --out is never created.
    const interrupt = interruptSignal();
    const bar = new ProgressBar('rendering', !argv.json && Boolean(process.stderr.isTTY));
    try {
      if (argv.frames !== undefined) {
        const c = await renderClipDataset({
          n: argv.n, seed: argv.seed, frames: argv.frames, fps: argv.fps, outDir: argv.out, overwrite: argv.overwrite,
          sunnyFraction: argv.sunnyFraction, kind: argv.kind as SampleKind | undefined, shape: argv.shape as Shape | undefined,
          color: argv.color as ColorName | undefined, style: argv.style as Style | undefined, motion: argv.motion as Motion | undefined,
          signal: interrupt.signal, onProgress: ({ done, total }) => bar.update({ phase: 'render', step: done, total }),
        });
        bar.done();
        if (argv.json) return printJson(c);
        process.stdout.write(`${c.outDir}: ${c.n} clips of ${c.frames} frames (${MOTIONS.map((m) => `${c.counts[m]} ${m}`).join(', ')}), seed ${c.seed}, ${c.seconds.toFixed(1)} s\n`);
        return;
      }
      const r = await renderDataset({
        n: argv.n,
        seed: argv.seed,
        outDir: argv.out,
        overwrite: argv.overwrite,
        posterFraction: argv.posterFraction,
        sunnyFraction: argv.sunnyFraction,
        kind: argv.kind as SampleKind | undefined,
        shape: argv.shape as Shape | undefined,
        color: argv.color as ColorName | undefined,
        style: argv.style as Style | undefined,
        concurrency: argv.concurrency,
        signal: interrupt.signal,
        onProgress: ({ done, total }) => bar.update({ phase: 'render', step: done, total }),
      });
      bar.done();
      if (argv.json) return printJson(r);
      process.stdout.write(
        `${r.outDir}: ${r.n} images (${r.counts.shape} shapes, ${r.counts.sunny} Sunny, ${r.counts.poster} posters), seed ${r.seed}, ${r.seconds.toFixed(1)} s\n`,
      );
    } finally {
      bar.done();
      interrupt.dispose();
    }
  },
};

export function builder(y: Argv) {
  return y.command(render).demandCommand(1, 'name a world command (render)');
}

export function handler() {
  // The subcommands do the work.
}
