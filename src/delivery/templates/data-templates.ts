/**
 * Templates that keep the event as data: a generic JSON passthrough (the starting point for code of
 * one's own) and n8n's Webhook trigger.
 */
import type { TransformationTemplate } from './template.ts';

export const passthrough: TransformationTemplate = {
  name: 'passthrough',
  title: 'JSON passthrough',
  description: "Sends Carteiro's envelope {id, type, timestamp, data} unchanged: a starting point that shows every field a transformation may change.",
  urlHint: 'any receiver',
  options: [],
  source: () => `// Carteiro template: JSON passthrough. What goes in and comes out: docs/transformations.md.
//
// webhook = {
//   event_type, event_id, timestamp   the event (read-only: the envelope and webhook-id keep them)
//   data                               the event's data; change it to change the envelope's data
//   payload                            set it to send this (an object or array) instead of the envelope
//   headers: {}                        headers to add (not Carteiro's own: signatures, content-type, …)
//   path: null                         e.g. '/orders' to post to the endpoint URL + '/orders'
//   cancel: false                      true: send nothing for this event
// }
function handler(webhook) {
  return webhook;
}
`,
};

export const n8n: TransformationTemplate = {
  name: 'n8n',
  title: 'n8n Webhook trigger',
  description:
    'A flat JSON body for an n8n Webhook node ({{$json.body.event_type}}, {{$json.body.data.…}}), with the event type in a header for an IF or Switch node.',
  urlHint: "the Webhook node's production URL (https://<n8n>/webhook/<path>)",
  options: [],
  source: () => `// Carteiro template: n8n Webhook trigger. The endpoint's URL: the Webhook node's production URL.
// In n8n the body is {{$json.body}}: {{$json.body.event_type}}, {{$json.body.data.user_id}}, …
// What goes in and comes out: docs/transformations.md. Edit freely.
function handler(webhook) {
  webhook.payload = {
    event_type: webhook.event_type,
    event_id: webhook.event_id,
    timestamp: webhook.timestamp,
    source: 'carteiro',
    data: webhook.data,
  };
  webhook.headers['x-carteiro-event-type'] = webhook.event_type;
  return webhook;
}
`,
};
