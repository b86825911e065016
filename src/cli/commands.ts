/** Sub-commands beyond the core ones (triggers, n8n, …), each in its own module. */
import type { Config } from '../config/config.ts';
import { triggersCommand } from './triggers-command.ts';
import { n8nCommand } from './n8n-command.ts';
import { keysCommand } from '../security/reencrypt-command.ts';

export type CliCommand = {
  name: string;
  summary: string;
  /** Printed for `carteiro <name> --help` (and with usage errors). */
  usage: string;
  run(config: Config, args: string[]): Promise<number>;
};

export const EXTRA_COMMANDS: CliCommand[] = [triggersCommand, n8nCommand, keysCommand];
