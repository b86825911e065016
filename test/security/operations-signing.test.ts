/** Every destination is signed: the operations webhook too, so its URL alone, with no secret to sign with, is refused at start. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config/config.ts';

test('CARTEIRO_OPERATIONS_WEBHOOK_URL with neither its own secret nor WEBHOOK_SECRET is a configuration error', () => {
  const url = 'https://ops.example.com/hooks';
  assert.throws(
    () => loadConfig({ CARTEIRO_OPERATIONS_WEBHOOK_URL: url }),
    (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /CARTEIRO_OPERATIONS_WEBHOOK_SECRET/);
      assert.match(err.message, /WEBHOOK_SECRET/);
      return true;
    },
  );
  assert.equal(loadConfig({ CARTEIRO_OPERATIONS_WEBHOOK_URL: url, WEBHOOK_SECRET: 'shared-secret-1' }).operations.webhookUrl, url);
  assert.equal(
    loadConfig({ CARTEIRO_OPERATIONS_WEBHOOK_URL: url, CARTEIRO_OPERATIONS_WEBHOOK_SECRET: 'ops-secret-1' }).operations.webhookSecret,
    'ops-secret-1',
  );
  assert.equal(loadConfig({}).operations.webhookUrl, undefined);
});
