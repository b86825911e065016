/** Sub-commands beyond the core ones (triggers, n8n, …), each in its own module. */
import type { CliCommand } from './sub-command.ts';
import { triggersCommand } from './triggers-command.ts';
import { n8nCommand } from './n8n-command.ts';
import { keysCommand } from './keys-command.ts';

export const EXTRA_COMMANDS: CliCommand[] = [triggersCommand, n8nCommand, keysCommand];
