/**
 * The seed's sixteen event types. Each has a JSON schema for its `data` and a priority: payments
 * jump the queue (the seed's high-priority queue), everything else is normal.
 * Schemas name the fields the seed's product sends and stay open to extra fields, so producers can
 * add context without a catalog change; a wrong type on a named field is still rejected.
 */

import type { EventTypeDefinition, JsonSchema } from '../ledger/event-types.ts';

const id = { type: 'string', minLength: 1, maxLength: 200 } as const;
const text = { type: 'string', maxLength: 10_000 } as const;
const email = { type: 'string', maxLength: 320, pattern: '^[^@\\s]+@[^@\\s]+$' } as const;
const metadata = { type: 'object' } as const;
const amount = { type: 'number', minimum: 0 } as const;

function objectSchema(required: string[], properties: Record<string, unknown>): JsonSchema {
  return { type: 'object', required, properties: { ...properties, metadata } };
}

export const BUILTIN_EVENT_TYPES: readonly EventTypeDefinition[] = [
  {
    name: 'user.registered',
    description: 'Novo usuário registrado',
    priority: 'normal',
    schema: objectSchema(['user_id', 'email'], { user_id: id, email, name: text }),
  },
  {
    name: 'user.updated',
    description: 'Usuário atualizado',
    priority: 'normal',
    schema: objectSchema(['user_id'], { user_id: id, email, name: text, changes: { type: 'object' } }),
  },
  {
    name: 'payment.confirmed',
    description: 'Pagamento confirmado',
    priority: 'high',
    schema: objectSchema(['payment_id'], { payment_id: id, user_id: id, amount, currency: { type: 'string', maxLength: 8 } }),
  },
  {
    name: 'payment.failed',
    description: 'Pagamento falhou',
    priority: 'high',
    schema: objectSchema(['payment_id'], { payment_id: id, user_id: id, amount, currency: { type: 'string', maxLength: 8 }, reason: text }),
  },
  {
    name: 'integration.whatsapp.connected',
    description: 'WhatsApp conectado',
    priority: 'normal',
    schema: objectSchema(['user_id'], { integration_id: id, user_id: id, phone_number: text }),
  },
  {
    name: 'integration.openai.connected',
    description: 'OpenAI conectado',
    priority: 'normal',
    schema: objectSchema(['user_id'], { integration_id: id, user_id: id }),
  },
  {
    name: 'integration.disconnected',
    description: 'Integração desconectada',
    priority: 'normal',
    schema: objectSchema(['user_id'], { integration_id: id, user_id: id, provider: text }),
  },
  { name: 'agent.created', description: 'Agente criado', priority: 'normal', schema: objectSchema(['agent_id'], { agent_id: id, name: text, user_id: id }) },
  {
    name: 'agent.updated',
    description: 'Agente atualizado',
    priority: 'normal',
    schema: objectSchema(['agent_id'], { agent_id: id, name: text, user_id: id, changes: { type: 'object' } }),
  },
  { name: 'agent.deleted', description: 'Agente removido', priority: 'normal', schema: objectSchema(['agent_id'], { agent_id: id, user_id: id }) },
  {
    name: 'template.applied',
    description: 'Template aplicado ao agente',
    priority: 'normal',
    schema: objectSchema(['template_id', 'agent_id'], { template_id: id, agent_id: id, user_id: id }),
  },
  {
    name: 'conversation.created',
    description: 'Nova conversa iniciada',
    priority: 'normal',
    schema: objectSchema(['conversation_id'], { conversation_id: id, agent_id: id, user_id: id, channel: text }),
  },
  {
    name: 'conversation.message.added',
    description: 'Nova mensagem adicionada',
    priority: 'normal',
    schema: objectSchema(['conversation_id'], { message_id: id, conversation_id: id, user_id: id, role: text, content: text }),
  },
  {
    name: 'conversation.ended',
    description: 'Conversa finalizada',
    priority: 'normal',
    schema: objectSchema(['conversation_id'], { conversation_id: id, agent_id: id, user_id: id, reason: text }),
  },
  {
    name: 'onboarding.step.completed',
    description: 'Etapa do onboarding concluída',
    priority: 'normal',
    schema: objectSchema(['user_id', 'step'], { user_id: id, step: text }),
  },
  { name: 'onboarding.completed', description: 'Onboarding completo', priority: 'normal', schema: objectSchema(['user_id'], { user_id: id }) },
];

/** `conversation.message.added` → `conversation-message-added`, the seed's route style. */
export function kebabName(eventType: string): string {
  return eventType.replaceAll('.', '-').replaceAll('_', '-');
}

export const EVENT_TYPE_NAME_PATTERN = '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*){1,5}$';
