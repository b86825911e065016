/**
 * What the sub-commands with actions (`carteiro triggers …`, `carteiro n8n …`) share: output that
 * tests can capture, usage errors, and "exactly one known action, then options" parsing.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import type { Config } from '../config/config.ts';

export type CliCommand = {
  name: string;
  /** Printed for `carteiro <name> --help` (and with usage errors). */
  usage: string;
  /** The help for `carteiro <name> <args…> --help` when it depends on the action named (default: usage). */
  helpFor?(args: string[]): string;
  run(config: Config, args: string[]): Promise<number>;
};

export type Output = { out(line: string): void; err(line: string): void };
export const CONSOLE: Output = { out: (l) => console.log(l), err: (l) => console.error(l) };

/** A mistake in how the command was called: printed with the usage, exit code 2. */
export class UsageError extends Error {}

export type OptionValues<O extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<{ options: O; allowPositionals: true }>>['values'];

export function parseAction<O extends ParseArgsOptionsConfig>(
  args: string[],
  options: O,
  actions: Record<string, unknown>,
): { action: string; values: OptionValues<O> } {
  const parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  if (parsed.positionals.length !== 1) throw new UsageError('name one action');
  const action = parsed.positionals[0] as string;
  if (!Object.hasOwn(actions, action)) throw new UsageError(`unknown action "${action}"`);
  return { action, values: parsed.values as OptionValues<O> };
}

/** `--help` or `-h` anywhere before a `--`: the command prints its usage and does nothing else. */
export function wantsHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}
