/**
 * What a dispatch sends: its envelope (or a batch's), opened and allow-listed by data protection, run
 * through the endpoint's transformation when it has one; then the signed POST itself. With a
 * transformation the code decides the body (and may add headers, extend the path, or cancel) before
 * anything is signed: what `send` signs is what it made.
 */
import type { ClaimedDispatch } from '../ledger/claims.ts';
import { buildBatchEnvelope, buildEnvelope } from '../delivery/envelope.ts';
import { signatureHeaders } from '../delivery/signature.ts';
import type { HttpSender, PostOptions, SendResult } from '../delivery/http-sender.ts';
import type { Transformer } from '../delivery/transformation/transformer.ts';
import type { Delivery } from './batches.ts';
import type { SecretResolver } from './signing-secrets.ts';
import type { StaticHeaderResolver } from './static-headers.ts';

/** What a dispatch will send, or why it sends nothing (busy sandbox, cancel) or fails before sending. */
export type Outgoing =
  | { kind: 'send'; url: string; body: Buffer; added: Record<string, string> | null }
  | { kind: 'busy' }
  | { kind: 'cancel'; durationMs: number }
  | { kind: 'failed'; error: string; durationMs: number };

export type RequestMakerDeps = {
  sender: HttpSender;
  secrets: SecretResolver;
  staticHeaders: StaticHeaderResolver;
  userAgent: string;
  prepareData?: ((d: ClaimedDispatch) => string) | undefined;
  transformer?: Transformer | undefined;
};

export type RequestMaker = {
  outgoing(d: Delivery): Promise<Outgoing>;
  send(d: ClaimedDispatch, request: Extract<Outgoing, { kind: 'send' }>, traceparent: string | undefined): Promise<SendResult>;
};

export function createRequestMaker(deps: RequestMakerDeps): RequestMaker {
  const { sender, secrets, staticHeaders, userAgent } = deps;
  /**
   * What a dispatch sends. With a transformation, the code decides the body (and may add headers,
   * extend the path, or cancel) before anything is signed: what send() signs is what it made.
   */
  async function outgoing(d: Delivery): Promise<Outgoing> {
    // A batch: the members' envelopes in one (a batching endpoint has no transformation: endpoint-input.ts).
    if (d.members && d.batch_id) {
      const events = d.members.map((m) =>
        buildEnvelope(m.webhook_event_id, m.event_type, m.event_created_at, deps.prepareData ? deps.prepareData(m) : m.data_text),
      );
      return { kind: 'send', url: d.url, body: Buffer.from(buildBatchEnvelope(d.batch_id, events)), added: null };
    }
    const data = deps.prepareData ? deps.prepareData(d) : d.data_text;
    // Encoded once: these bytes are signed (twice) and sent.
    if (!d.transformation)
      return { kind: 'send', url: d.url, body: Buffer.from(buildEnvelope(d.webhook_event_id, d.event_type, d.event_created_at, data)), added: null };
    if (!deps.transformer) return { kind: 'failed', error: 'transformations are not available in this worker', durationMs: 0 };
    const t = await deps.transformer.apply(
      d.webhook_endpoint_id,
      d.transformation,
      { id: d.webhook_event_id, type: d.event_type, createdAt: d.event_created_at, dataJson: data },
      d.url,
    );
    switch (t.kind) {
      case 'busy':
      case 'cancel':
        return t;
      case 'failed':
        return { kind: 'failed', error: t.reason, durationMs: Math.round(t.durationMs) };
      default:
        return { kind: 'send', url: t.request.url, body: Buffer.from(t.request.body), added: t.request.headers };
    }
  }

  /** One signed POST of the dispatch; with tracing on, the attempt span's traceparent goes along. */
  function send(d: ClaimedDispatch, request: Extract<Outgoing, { kind: 'send' }>, traceparent: string | undefined): Promise<SendResult> {
    const { body, added } = request;
    // Signed when a connection takes the request, not before it queues for one: a secret rotated
    // meanwhile (its overlap over) must not sign, and the timestamp must be the sending moment's.
    const headers = () => {
      const sentAt = now();
      const timestamp = Math.floor(sentAt / 1000);
      const signing = secrets(d, sentAt);
      // A batch's webhook-id is the batch's own; each event keeps its id inside the body.
      const messageId = d.batch_id ?? d.webhook_event_id;
      const own: Record<string, string> = signing
        ? signatureHeaders(signing, messageId, timestamp, body)
        : { 'webhook-id': messageId, 'webhook-timestamp': String(timestamp) };
      // The endpoint's static headers, then a transformation's (made for this event, so they win),
      // then Carteiro's own. Neither may name ours (endpoint-input.ts, contract.ts refuse them); ours go last all the same.
      const fixed = staticHeaders(d);
      const h: Record<string, string> = fixed || added ? { ...fixed, ...added, ...own } : own;
      h['user-agent'] = userAgent;
      // Not signed (signatures cover the id, the timestamp and the body): a receiver verifies as before.
      if (traceparent !== undefined) h.traceparent = traceparent;
      return h;
    };
    const postOpts: PostOptions = { queueKey: d.webhook_endpoint_id };
    // The endpoint's own deadline (migration 0027), within the service's.
    if (d.timeout_ms != null) postOpts.timeoutMs = d.timeout_ms;
    return sender.post(request.url, body, headers, postOpts);
  }

  return { outgoing, send };
}

const now = () => Date.now();
