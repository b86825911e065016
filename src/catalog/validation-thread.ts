/**
 * The thread that compiles organizations' larger schemas and validates events against them
 * (custom-schema.ts). It may be terminated mid-task at any time, so it holds nothing but compiled
 * validators.
 */
import { parentPort } from 'node:worker_threads';
import type { ValidateFunction } from 'ajv';
import { compileCustomSchema } from './custom-schema.ts';
import type { ThreadReply, ThreadRequest } from './isolated-validator.ts';

const validators = new Map<number, ValidateFunction>();

parentPort?.on('message', (m: ThreadRequest) => {
  let reply: ThreadReply;
  try {
    if (m.kind === 'compile') {
      // Each schema in an ajv instance of its own (custom-schema.ts): one kept is one instance kept.
      const validate = compileCustomSchema(m.schema);
      if (m.keep) validators.set(m.key, validate);
      reply = { id: m.id, kind: 'compiled' };
    } else {
      const validate = validators.get(m.key);
      if (!validate) throw new Error(`schema ${m.key} was never compiled on this thread`);
      reply = validate(m.data) === true ? { id: m.id, kind: 'valid' } : { id: m.id, kind: 'invalid', error: validate.errors?.[0] ?? null };
    }
  } catch (err) {
    reply = { id: m.id, kind: 'failed', message: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(reply);
});
