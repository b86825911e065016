/** Sub-commands beyond the core ones (triggers, n8n, …), each in its own module. */
import type { CliCommand } from './sub-command.ts';
import { triggersCommand } from './triggers-command.ts';
import { n8nCommand } from './n8n-command.ts';
import { keysCommand } from './keys-command.ts';
import { endpointsCommand, eventsCommand, recoverCommand, replayCommand, sendCommand, tailCommand, templatesCommand } from './operator-commands.ts';
import { listenCommand, verifyCommand } from './webhook-tools.ts';

export const EXTRA_COMMANDS: CliCommand[] = [
  triggersCommand,
  n8nCommand,
  keysCommand,
  // The operator's daily work, over a running Carteiro's API (operator-commands.ts) or locally (webhook-tools.ts).
  sendCommand,
  tailCommand,
  eventsCommand,
  endpointsCommand,
  templatesCommand,
  replayCommand,
  recoverCommand,
  verifyCommand,
  listenCommand,
];
