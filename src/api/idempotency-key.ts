import type { FastifyRequest } from 'fastify';
import { ValidationError } from '../errors/errors.ts';

/** The request's Idempotency-Key header (1 to 200 characters), else the key the body gave (if any). */
export function idempotencyKey(request: FastifyRequest, fromBody?: string | undefined): string | undefined {
  const header = request.headers['idempotency-key'];
  if (header === undefined) return fromBody;
  if (typeof header !== 'string' || header.length === 0 || header.length > 200) {
    throw new ValidationError('Idempotency-Key must be 1 to 200 characters', { field: 'headers.idempotency-key' });
  }
  return header;
}
