import yargs from 'yargs';
import * as cacheCmd from './cache';
import * as classifyCmd from './classify';
import * as demo from './demo';
import * as erase from './erase';
import * as evalCmd from './eval';
import * as exportCmd from './export';
import * as generate from './generate';
import * as info from './info';
import * as inspectCmd from './inspect';
import * as world from './world';
import { reportError } from './output';

/** The `lethe` command line: one module per command under src/cli/. */
export async function main(args: string[]): Promise<void> {
  try {
    await yargs(args)
      .scriptName('lethe')
      .command(demo)
      .command(info)
      .command(inspectCmd)
      .command(generate)
      .command(world)
      .command(erase)
      .command(exportCmd)
      .command(evalCmd)
      .command(classifyCmd)
      .command(cacheCmd)
      .demandCommand(1, 'name a command (see --help)')
      .strict()
      .fail((msg, err) => {
        if (err) throw err;
        process.stderr.write(`lethe: LETHE_BAD_ARGUMENT: ${msg} (see lethe --help)\n`);
        process.exit(2);
      })
      .help()
      .parseAsync();
  } catch (e) {
    process.exitCode = reportError(e);
  }
}
