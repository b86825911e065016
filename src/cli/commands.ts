/**
 * Sub-commands beyond the core ones (triggers, n8n, the operator's daily work, …), each in its own
 * module, loaded only when it runs: `carteiro events` does not load the n8n, key or capture code (a
 * CLI call is a new process, and loading every command's modules was most of its start).
 */
import type { CliCommand } from './sub-command.ts';

/** A sub-command as the overview lists it; `load` gives the command itself. */
export type CommandEntry = { name: string; summary: string; load(): Promise<CliCommand> };

export const EXTRA_COMMANDS: CommandEntry[] = [
  {
    name: 'triggers',
    summary: 'capture table rows as events: add|remove|list|install-seed|uninstall-seed',
    load: async () => (await import('./triggers-command.ts')).triggersCommand,
  },
  { name: 'n8n', summary: 'n8n workflows as destinations: seed|discover|list', load: async () => (await import('./n8n-command.ts')).n8nCommand },
  {
    name: 'keys',
    summary: 'keys reencrypt: re-seal endpoint secrets and personal data under the newest encryption key',
    load: async () => (await import('./keys-command.ts')).keysCommand,
  },
  { name: 'send', summary: 'send an event: send <type> --data JSON', load: async () => (await import('./operator-commands.ts')).sendCommand },
  { name: 'tail', summary: 'follow deliveries live: tail [--type T] [--endpoint E]', load: async () => (await import('./operator-commands.ts')).tailCommand },
  {
    name: 'events',
    summary: 'list events, or show one with its deliveries and attempts',
    load: async () => (await import('./operator-commands.ts')).eventsCommand,
  },
  {
    name: 'endpoints',
    summary: 'list and manage endpoints: create|update|rotate|test|enable|disable',
    load: async () => (await import('./operator-commands.ts')).endpointsCommand,
  },
  {
    name: 'templates',
    summary: "list the transformation templates, or print one's code: templates [name]",
    load: async () => (await import('./operator-commands.ts')).templatesCommand,
  },
  {
    name: 'replay',
    summary: "replay an event's finished deliveries: replay <event>",
    load: async () => (await import('./operator-commands.ts')).replayCommand,
  },
  {
    name: 'recover',
    summary: 'queue the events an endpoint missed: recover --endpoint E --since T [--dry-run]',
    load: async () => (await import('./operator-commands.ts')).recoverCommand,
  },
  {
    name: 'verify',
    summary: "check a webhook request's signatures locally: verify --secret S < request",
    load: async () => (await import('./webhook-tools.ts')).verifyCommand,
  },
  {
    name: 'listen',
    summary: 'a local receiver that verifies and prints webhooks: listen --port P',
    load: async () => (await import('./webhook-tools.ts')).listenCommand,
  },
];
