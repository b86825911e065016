/**
 * Verifies a delivery the way an n8n workflow (or any receiver) would: over the exact body bytes,
 * with the seed's verify function and with the public `standardwebhooks` package. A secret that is not
 * `whsec_…` (the seed's WEBHOOK_SECRET is any string) is used as raw key bytes: `{format: 'raw'}`.
 */
import { Webhook } from 'standardwebhooks';
import { verifySeedSignature } from '../../src/delivery/signature.ts';

export function verifyDelivery(secret: string, rawBody: string | Buffer, headers: Record<string, string>): { seed: boolean; standard: boolean } {
  const body = typeof rawBody === 'string' ? rawBody : rawBody.toString('utf8');
  const seed =
    typeof headers['x-webhook-signature'] === 'string' &&
    typeof headers['x-webhook-timestamp'] === 'string' &&
    verifySeedSignature(secret, headers['x-webhook-timestamp'], body, headers['x-webhook-signature']);
  let standard = false;
  try {
    const wh = secret.startsWith('whsec_') ? new Webhook(secret) : new Webhook(Buffer.from(secret, 'utf8'), { format: 'raw' });
    wh.verify(body, {
      'webhook-id': headers['webhook-id'] as string,
      'webhook-timestamp': headers['webhook-timestamp'] as string,
      'webhook-signature': headers['webhook-signature'] as string,
    });
    standard = true;
  } catch {
    standard = false;
  }
  return { seed, standard };
}

/** Valid data for each seed event type (the catalog checks it). */
export const SEED_EVENT_DATA: Record<string, Record<string, unknown>> = {
  'user.registered': { user_id: 'u-1', email: 'joao@example.com', name: 'João Silva' },
  'payment.confirmed': { payment_id: 'pay-1', user_id: 'u-1', amount: 49.9, currency: 'BRL' },
  'integration.whatsapp.connected': { user_id: 'u-1', integration_id: 'int-wa', phone_number: '+5511999999999' },
  'integration.openai.connected': { user_id: 'u-1', integration_id: 'int-oa' },
  'agent.created': { agent_id: 'ag-1', name: 'Assistente de Vendas', user_id: 'u-1' },
  'template.applied': { template_id: 'tpl-1', agent_id: 'ag-1', user_id: 'u-1' },
  'onboarding.completed': { user_id: 'u-1' },
};
