/**
 * The process logger. JSON lines (pino) for machines: when CARTEIRO_LOG_FORMAT=json, or by default
 * when stdout is not a terminal. On a terminal, by default, short lines for a person:
 * `12:00:01 WARN  ledger unavailable at start; retrying attempt=2 retryInMs=2000`.
 */
import pino, { type Logger } from 'pino';

export type LogFormat = 'pretty' | 'json';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const OMITTED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'role', 'component', 'reqId']);

function field(v: unknown): string {
  if (typeof v === 'string') return /\s/.test(v) ? JSON.stringify(v) : v;
  if (v && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string') {
    const e = v as { message: string; stack?: string };
    return JSON.stringify(e.stack ?? e.message);
  }
  return JSON.stringify(v);
}

/** One JSON log line as a person reads it. */
export function prettyLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json);
  } catch {
    return json;
  }
  const time = new Date(typeof o.time === 'number' ? o.time : Date.now()).toTimeString().slice(0, 8);
  const extra = Object.entries(o)
    .filter(([k, v]) => !OMITTED.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${field(v)}`);
  return `${time} ${LEVELS[o.level as number] ?? 'LOG  '} ${String(o.msg ?? '')}${extra.length ? ` ${extra.join(' ')}` : ''}\n`;
}

export function createLogger(o: { level: string; format: LogFormat; base?: Record<string, unknown> }): Logger {
  const options = { level: o.level, ...(o.base ? { base: o.base } : {}) };
  if (o.format === 'json') return pino(options);
  const out = o.level === 'silent' ? undefined : { write: (line: string) => void process.stderr.write(prettyLine(line)) };
  return pino(options, out);
}
