/**
 * Announces accepted events on the live bus, folded per organization over a short window: under load
 * one PUBLISH per request was a measurable share of the API's time (the ingest profile), while the
 * dashboard refreshes at most once a second anyway.
 */
import type { LiveBus } from './live-bus.ts';

export const ACCEPTED_ANNOUNCE_WINDOW_MS = 100;

export function createAcceptedAnnouncer(bus: LiveBus, windowMs = ACCEPTED_ANNOUNCE_WINDOW_MS): (organizationId: string, count: number) => void {
  const pending = new Map<string, number>();
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    timer = null;
    for (const [organizationId, count] of pending) bus.publish({ type: 'events.accepted', organization_id: organizationId, count });
    pending.clear();
  };
  return (organizationId, count) => {
    if (count <= 0) return;
    pending.set(organizationId, (pending.get(organizationId) ?? 0) + count);
    if (!timer) {
      timer = setTimeout(flush, windowMs);
      timer.unref();
    }
  };
}
