/**
 * The operator commands (send, events, endpoints, …) are parsed by commander. This turns one commander
 * program into a CliCommand: `--help` prints commander's help for the (sub)command named and nothing
 * else, and every way out has a fixed exit code: 0 done, 1 the API refused or could not be reached (or,
 * for verify, the signature did not verify), 2 a usage error (commander's, or a bad flag value).
 */
import { Command, CommanderError } from 'commander';
import type { Config } from '../config/config.ts';
import { UsageError, type CliCommand } from './sub-command.ts';
import { ApiError } from './api-client.ts';

export type Ctx = {
  /** The configuration, read once the command runs (never for --help). */
  config(): Config;
  /** The exit code the command ends with, when it is not 0 and not an error thrown. */
  exitCode: number;
};

/** A command's root, with the settings every subcommand inherits. */
export function rootCommand(name: string): Command {
  return (
    new Command(`carteiro ${name}`)
      // A parent's options (endpoints --json) before its action only: after it, they are the action's.
      .enablePositionalOptions()
      .exitOverride()
      .helpOption('-h, --help', 'print this help and do nothing else')
      .showHelpAfterError(`(carteiro ${name} --help for usage)`)
      .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) })
  );
}

const NO_CONFIG: Ctx = {
  config() {
    throw new Error('help never reads the configuration');
  },
  exitCode: 0,
};

/** The subcommand `args` names (`endpoints create …` → create), for its help. */
function named(root: Command, args: string[]): Command {
  let cmd = root;
  for (const arg of args) {
    if (arg.startsWith('-')) continue;
    const sub = cmd.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!sub) break;
    cmd = sub;
  }
  return cmd;
}

export function fromCommander(name: string, build: (ctx: Ctx) => Command): CliCommand {
  return {
    name,
    get usage() {
      return build(NO_CONFIG).helpInformation().trimEnd();
    },
    helpFor: (args) => named(build(NO_CONFIG), args).helpInformation().trimEnd(),
    async run(config: Config, args: string[]): Promise<number> {
      const ctx: Ctx = { config: () => config, exitCode: 0 };
      try {
        await build(ctx).parseAsync(args, { from: 'user' });
        return ctx.exitCode;
      } catch (err) {
        if (err instanceof CommanderError) return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2;
        if (err instanceof UsageError) {
          console.error(`error: ${err.message}\n(carteiro ${name} --help for usage)`);
          return 2;
        }
        if (err instanceof ApiError) {
          console.error(`error: ${err.message}`);
          return 1;
        }
        throw err;
      }
    },
  };
}

/** Rows as aligned columns. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}
