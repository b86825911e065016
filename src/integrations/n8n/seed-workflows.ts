/**
 * The seed's seven n8n workflows, each a Webhook trigger at N8N_WEBHOOK_URL/webhook/<path> receiving
 * one event type. `carteiro n8n seed` (and POST /n8n/workflows/seed) loads them; discovery falls back
 * to their path → event type map for workflows that carry no routing tags or name list.
 */
export type SeedWorkflow = { workflowId: string; name: string; path: string; eventTypes: readonly string[] };

export const SEED_WORKFLOWS: readonly SeedWorkflow[] = [
  { workflowId: 'dkbY8I5uombxmvgj', name: 'User Registration', path: 'user-registration', eventTypes: ['user.registered'] },
  { workflowId: 'FldlvK2bWumCZKjB', name: 'Payment Processed', path: 'payment-processed', eventTypes: ['payment.confirmed'] },
  { workflowId: 'lObbf36H57cqVoTu', name: 'WhatsApp Integration', path: 'whatsapp-connected', eventTypes: ['integration.whatsapp.connected'] },
  { workflowId: 'azDbM1j9UpSvU1wl', name: 'OpenAI Integration', path: 'openai-connected', eventTypes: ['integration.openai.connected'] },
  { workflowId: 'jd2ydLGtQhvbC2q8', name: 'Agent Created', path: 'agent-created', eventTypes: ['agent.created'] },
  { workflowId: 'xFfJRPSsgxZpx0NH', name: 'Template Applied', path: 'template-applied', eventTypes: ['template.applied'] },
  { workflowId: '5a8pr08Hyyw3DmHk', name: 'Onboarding Complete', path: 'onboarding-complete', eventTypes: ['onboarding.completed'] },
];

export const SEED_PATH_EVENTS: ReadonlyMap<string, readonly string[]> = new Map(SEED_WORKFLOWS.map((w) => [w.path, w.eventTypes]));
