/**
 * Whether an organization exists, for the admin key naming one (X-Organization-Id, or organization_id
 * in an event). Without the check a typo would store events for no organization, or fail on a
 * foreign key as a 500. Organizations are never deleted through the API, so a found id is remembered
 * (per ledger, bounded); a missing one is looked up again next time.
 */
import type { Sql } from '../ledger/connection.ts';
import { findOrganization } from '../ledger/organizations.ts';

const MAX_REMEMBERED = 10_000;
const known = new WeakMap<Sql, Set<string>>();

export async function organizationExists(sql: Sql, id: string): Promise<boolean> {
  let seen = known.get(sql);
  if (!seen) known.set(sql, (seen = new Set()));
  if (seen.has(id)) return true;
  const found = (await findOrganization(sql, id)) !== undefined;
  if (found) {
    if (seen.size >= MAX_REMEMBERED) seen.clear();
    seen.add(id);
  }
  return found;
}
