/** Bulk replay as a background job with progress, and job status. */
import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import { isoDate, parseDate, shortText, uuid } from '../schemas.ts';
import { LOWERCASE_UUID } from '../id-normalization.ts';
import { NotFoundError, ValidationError } from '../../errors/errors.ts';
import { findEndpoint } from '../../ledger/endpoints.ts';
import type { JobCatalog } from '../../jobs/job-catalog.ts';

/** What this module uses of the API's services. */
type ReplayRouteDeps = Pick<ApiServices, 'jobs' | 'ledger'>;

type ReplayBody = { status?: 'failed' | 'completed'; event_type?: string; since?: string; until?: string; endpoint_id?: string };

export async function replayRoutes(app: FastifyInstance, services: ReplayRouteDeps): Promise<void> {
  const tags = ['replay'];
  app.post<{ Body: ReplayBody | undefined }>(
    '/replay',
    {
      schema: {
        tags,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { status: { type: 'string', enum: ['failed', 'completed'] }, event_type: shortText, since: isoDate, until: isoDate, endpoint_id: uuid },
        },
      },
    },
    async (request, reply) => {
      const b = request.body ?? {};
      const organizationId = request.tenant.readOrganizationId;
      const since = parseDate('since', b.since);
      const until = parseDate('until', b.until);
      // A job that can match nothing is a mistake in the request, not a job to run.
      if (since && until && until <= since)
        throw new ValidationError('until must be later than since (the range is since ≤ created_at < until)', { field: 'until' });
      // Another organization's endpoint answers as one that does not exist: nothing to learn either way.
      if (b.endpoint_id && !(await findEndpoint(services.ledger.sql, organizationId, b.endpoint_id))) {
        throw new NotFoundError('endpoint_id: endpoint', b.endpoint_id, { field: 'endpoint_id' });
      }
      const payload: JobCatalog['bulk-replay']['payload'] = {
        organizationId,
        status: b.status ?? 'failed',
        eventType: b.event_type,
        since: since?.toISOString(),
        until: until?.toISOString(),
        endpointId: b.endpoint_id,
        requestedAt: new Date().toISOString(),
      };
      const job = await services.jobs.enqueue('bulk-replay', payload);
      reply.code(202);
      return { job_id: job.id, status_url: `/api/webhooks/jobs/${job.id}` };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/jobs/:id',
    // Job ids are UUIDs: lower-cased like every other id the API takes.
    {
      schema: {
        tags,
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100, [LOWERCASE_UUID]: true } } },
      },
    },
    async (request) => {
      const job = await services.jobs.get(request.params.id);
      const owner = (job?.payload as { organizationId?: string | null } | undefined)?.organizationId ?? null;
      const visible = job && (request.tenant.readOrganizationId === null || owner === request.tenant.readOrganizationId);
      if (!job || !visible) throw new NotFoundError('job', request.params.id);
      return { id: job.id, name: job.name, state: job.state, progress: job.progress, result: job.result, error: job.error };
    },
  );
}
