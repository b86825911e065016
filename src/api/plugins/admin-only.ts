/**
 * Guard for admin-only routes (organizations, their keys, the audit log). An organization key gets
 * 403 there whatever the path names: the answer does not depend on the resource, so it tells nothing
 * about other organizations (the resource routes answer 404 for another organization's rows instead).
 */
import type { FastifyRequest } from 'fastify';
import { ForbiddenError } from '../../errors/errors.ts';

export async function requireAdmin(request: FastifyRequest): Promise<void> {
  if (request.tenant?.principal.kind !== 'admin') throw new ForbiddenError('this route needs the admin key');
}
