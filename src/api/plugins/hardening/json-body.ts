/**
 * The API's JSON body parser, stricter than Fastify's default in what can reach a handler:
 *   - the bytes must be valid UTF-8 (Node would otherwise turn bad bytes into U+FFFD silently and
 *     the event would be stored altered), and a charset, if named, must be UTF-8;
 *   - nesting at most MAX_JSON_DEPTH levels (JSON.parse copes with 100,000 levels, but
 *     JSON.stringify, Ajv and Postgres recurse: a 10,000-level body was a 500);
 *   - no string (key or value) with U+0000 or a lone surrogate: Postgres text and jsonb cannot hold
 *     them, so they would fail at insert time as a 500;
 *   - no number that reading it as a double changes (1234567890123456789 would be stored as
 *     1234567890123456800, 1e400 as null): a 422 naming where it is (exact-number.ts);
 *   - no `__proto__` key and no `constructor.prototype` (prototype-poisoning payloads), as Fastify's
 *     own onProtoPoisoning/onConstructorPoisoning: 'error' settings refuse them.
 * Each check is one iterative walk (an explicit stack: no recursion to overflow), bounded by the body
 * limit. Anything refused is a 400 naming the problem.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isUtf8 } from 'node:buffer';
import { CarteiroError, InexactNumberError, ValidationError } from '../../../errors/errors.ts';
import { findInexactNumber } from './exact-number.ts';

/** Deep enough for any real event (Supabase rows with JSON columns included), shallow enough to be safe. */
export const MAX_JSON_DEPTH = 64;

class UnsupportedCharsetError extends CarteiroError {
  constructor(charset: string) {
    super('CARTEIRO_UNSUPPORTED_MEDIA_TYPE', 415, `JSON bodies must be UTF-8, not ${charset.slice(0, 40)}`);
  }
}

const invalid = (message: string) => new ValidationError(message, { field: 'body' });

function checkString(s: string, what: string): void {
  if (s.includes('\u0000')) throw invalid(`body: a ${what} contains the NUL character (\\u0000), which cannot be stored`);
  if (!s.isWellFormed()) throw invalid(`body: a ${what} contains a lone UTF-16 surrogate, which cannot be stored`);
}

/** Throws a 400 when the parsed value breaks one of the rules above. */
export function checkJsonValue(root: unknown, maxDepth = MAX_JSON_DEPTH): void {
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (typeof value === 'string') checkString(value, 'string');
    else if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw invalid('body: a number is too large to represent');
    } else if (value !== null && typeof value === 'object') {
      if (depth > maxDepth) throw invalid(`body nests deeper than ${maxDepth} levels`);
      if (Array.isArray(value)) {
        for (const item of value) stack.push([item, depth + 1]);
      } else {
        for (const key of Object.keys(value)) {
          checkString(key, 'key');
          if (key === '__proto__') throw invalid('body: the key "__proto__" is not allowed');
          const child = (value as Record<string, unknown>)[key];
          if (key === 'constructor' && child !== null && typeof child === 'object' && Object.hasOwn(child, 'prototype')) {
            throw invalid('body: "constructor.prototype" is not allowed');
          }
          stack.push([child, depth + 1]);
        }
      }
    }
  }
}

export function parseJsonBody(raw: Buffer, contentType: string | undefined): unknown {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '')?.[1];
  if (charset && !/^utf-?8$/i.test(charset)) throw new UnsupportedCharsetError(charset);
  if (!isUtf8(raw)) throw invalid('body is not valid UTF-8');
  let text = raw.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') throw invalid('body is empty; send a JSON value or no Content-Type');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalid(`body is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
  const inexact = findInexactNumber(text, 'body');
  if (inexact) throw new InexactNumberError(inexact.path, inexact.source);
  checkJsonValue(value);
  return value;
}

/** Replaces Fastify's application/json parser (call before routes are added). */
export function registerJsonBodyParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, async (request: FastifyRequest, body: Buffer | string) =>
    parseJsonBody(typeof body === 'string' ? Buffer.from(body) : body, request.headers['content-type']),
  );
}
