import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalLiveBus, type LiveMessage } from '../../src/coordination/live-bus.ts';
import { createAcceptedAnnouncer } from '../../src/coordination/accepted-events.ts';

test('accepted events are announced once per organization per window, with their total', async () => {
  const bus = createLocalLiveBus();
  const seen: LiveMessage[] = [];
  bus.subscribe((m) => seen.push(m));
  const announce = createAcceptedAnnouncer(bus, 30);
  announce('org-a', 1);
  announce('org-a', 2);
  announce('org-b', 1);
  announce('org-b', 0);
  assert.equal(seen.length, 0, 'nothing before the window closes');
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(seen, [
    { type: 'events.accepted', organization_id: 'org-a', count: 3 },
    { type: 'events.accepted', organization_id: 'org-b', count: 1 },
  ]);
  announce('org-a', 1);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(seen.length, 3, 'a new window starts after a flush');
});
