/**
 * Each transformation template renders an event into its service's documented message format: a
 * real Carteiro previews a sample through an endpoint made from the template, and the body is
 * checked against a JSON Schema written from the service's documentation (the limits included):
 *   Slack      incoming webhooks: `text`, Block Kit header/section/context blocks
 *   Discord    execute webhook: `content` ≤ 2000, embeds (title ≤ 256, ≤ 25 fields of ≤ 256/1024), allowed_mentions
 *   Teams      Workflows webhook: a `message` with one Adaptive Card attachment
 *   Google Chat  incoming webhook: `text`
 *   Telegram   Bot API sendMessage: `chat_id`, `text` ≤ 4096, at <bot URL>/sendMessage
 *   n8n        Webhook trigger: a flat JSON body
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { startCarteiro, createEndpoint, type TestCarteiro } from '../support/carteiro.ts';
import { TEMPLATES } from '../../src/delivery/templates/catalog.ts';

/** No DNS here: the services' paths on a loopback host (the destination check resolves the host). */
const HOST = 'http://127.0.0.1:9';
const text = (max: number) => ({ type: 'string', minLength: 1, maxLength: max });
const isoDate = { type: 'string', pattern: '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z$' };

const SCHEMAS: Record<string, object> = {
  slack: {
    type: 'object',
    required: ['text', 'blocks'],
    additionalProperties: false,
    properties: {
      text: text(40_000),
      blocks: {
        type: 'array',
        minItems: 1,
        maxItems: 50,
        items: {
          oneOf: [
            {
              type: 'object',
              required: ['type', 'text'],
              additionalProperties: false,
              properties: {
                type: { const: 'header' },
                text: {
                  type: 'object',
                  required: ['type', 'text'],
                  additionalProperties: false,
                  properties: { type: { const: 'plain_text' }, text: text(150) },
                },
              },
            },
            {
              type: 'object',
              required: ['type', 'text'],
              additionalProperties: false,
              properties: {
                type: { const: 'section' },
                text: { type: 'object', required: ['type', 'text'], additionalProperties: false, properties: { type: { const: 'mrkdwn' }, text: text(3000) } },
              },
            },
            {
              type: 'object',
              required: ['type', 'elements'],
              additionalProperties: false,
              properties: {
                type: { const: 'context' },
                elements: {
                  type: 'array',
                  minItems: 1,
                  maxItems: 10,
                  items: { type: 'object', required: ['type', 'text'], properties: { type: { const: 'mrkdwn' }, text: text(3000) } },
                },
              },
            },
          ],
        },
      },
    },
  },
  discord: {
    type: 'object',
    required: ['content'],
    additionalProperties: false,
    properties: {
      content: text(2000),
      embeds: {
        type: 'array',
        maxItems: 10,
        items: {
          type: 'object',
          additionalProperties: false,
          properties: {
            title: text(256),
            description: text(4096),
            timestamp: isoDate,
            fields: {
              type: 'array',
              maxItems: 25,
              items: {
                type: 'object',
                required: ['name', 'value'],
                additionalProperties: false,
                properties: { name: text(256), value: text(1024), inline: { type: 'boolean' } },
              },
            },
            footer: { type: 'object', required: ['text'], properties: { text: text(2048) } },
          },
        },
      },
      allowed_mentions: { type: 'object', required: ['parse'], properties: { parse: { type: 'array', maxItems: 0 } } },
    },
  },
  teams: {
    type: 'object',
    required: ['type', 'attachments'],
    additionalProperties: false,
    properties: {
      type: { const: 'message' },
      attachments: {
        type: 'array',
        minItems: 1,
        maxItems: 1,
        items: {
          type: 'object',
          required: ['contentType', 'content'],
          properties: {
            contentType: { const: 'application/vnd.microsoft.card.adaptive' },
            contentUrl: { type: 'null' },
            content: {
              type: 'object',
              required: ['type', 'version', 'body'],
              properties: {
                $schema: { const: 'http://adaptivecards.io/schemas/adaptive-card.json' },
                type: { const: 'AdaptiveCard' },
                version: { type: 'string', pattern: '^1\\.[0-6]$' },
                body: {
                  type: 'array',
                  minItems: 1,
                  items: {
                    oneOf: [
                      {
                        type: 'object',
                        required: ['type', 'text'],
                        properties: {
                          type: { const: 'TextBlock' },
                          text: text(10_000),
                          weight: { enum: ['Default', 'Lighter', 'Bolder'] },
                          size: { enum: ['Default', 'Small', 'Medium', 'Large', 'ExtraLarge'] },
                          wrap: { type: 'boolean' },
                          isSubtle: { type: 'boolean' },
                        },
                      },
                      {
                        type: 'object',
                        required: ['type', 'facts'],
                        properties: {
                          type: { const: 'FactSet' },
                          facts: {
                            type: 'array',
                            items: {
                              type: 'object',
                              required: ['title', 'value'],
                              additionalProperties: false,
                              properties: { title: { type: 'string' }, value: { type: 'string' } },
                            },
                          },
                        },
                      },
                    ],
                  },
                },
              },
            },
          },
        },
      },
    },
  },
  'google-chat': { type: 'object', required: ['text'], additionalProperties: false, properties: { text: text(4096) } },
  telegram: {
    type: 'object',
    required: ['chat_id', 'text'],
    additionalProperties: false,
    properties: {
      chat_id: { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^(-?\\d+|@\\w{5,32})$' }] },
      text: text(4096),
      link_preview_options: { type: 'object', properties: { is_disabled: { type: 'boolean' } } },
    },
  },
  n8n: {
    type: 'object',
    required: ['event_type', 'event_id', 'timestamp', 'data'],
    additionalProperties: false,
    properties: { event_type: { type: 'string' }, event_id: { type: 'string' }, timestamp: isoDate, source: { const: 'carteiro' }, data: { type: 'object' } },
  },
  passthrough: {
    type: 'object',
    required: ['id', 'type', 'timestamp', 'data'],
    additionalProperties: false,
    properties: { id: { type: 'string' }, type: { type: 'string' }, timestamp: isoDate, data: { type: 'object' } },
  },
};

/** Data that stresses the messages: markup, mentions, a long value, nesting, and more fields than are shown. */
const SAMPLE = {
  user_id: 'u-42',
  note: '<@U0123> & <!channel> @everyone <b>bold</b>',
  amount: 1500.5,
  plan: { name: 'pro', seats: 3 },
  tags: ['vip', 'new'],
  long: 'x'.repeat(5000),
  ...Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`extra_${i}`, i])),
};

describe('transformation templates', () => {
  let c: TestCarteiro;
  const ajv = new Ajv({ strict: false, allErrors: true });
  before(async () => {
    c = await startCarteiro();
  });
  after(async () => {
    await c?.stop();
  });

  async function render(template: string, url: string, options?: Record<string, string>) {
    const ep = await createEndpoint(c, { url, template, ...(options ? { template_options: options } : {}) });
    assert.equal(ep.template, template);
    const res = await c.request('POST', `endpoints/${ep.id}/transformation/preview`, { event_type: 'deal.won', data: SAMPLE });
    assert.equal(res.status, 200, `${template}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.cancelled, false);
    const validate = ajv.compile(SCHEMAS[template] as object);
    assert.ok(validate(res.body.request.body), `${template}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(res.body.request.body).slice(0, 2000)}`);
    return res.body.request as { url: string; headers: Record<string, string>; body: any };
  }

  test('every template is listed and checked', () => {
    assert.deepEqual(Object.keys(SCHEMAS).sort(), TEMPLATES.map((t) => t.name).sort());
  });

  test('Slack: text and Block Kit blocks, the data escaped so it cannot mention or link', async () => {
    const r = await render('slack', `${HOST}/services/T000/B000/XXXX`);
    assert.equal(r.url, `${HOST}/services/T000/B000/XXXX`);
    assert.equal(r.body.text, 'Deal won (deal.won)');
    const section = r.body.blocks.find((b: any) => b.type === 'section').text.text as string;
    assert.match(section, /\*note:\* &lt;@U0123&gt; &amp; &lt;!channel&gt;/);
    assert.match(section, /_… and 8 more_$/);
    assert.doesNotMatch(section, /<@U0123>/);
  });

  test('Discord: content and an embed; mentions never ping', async () => {
    const r = await render('discord', `${HOST}/api/webhooks/1/abc`);
    assert.equal(r.body.content, '**Deal won** (deal.won)');
    assert.deepEqual(r.body.allowed_mentions, { parse: [] });
    const fields = r.body.embeds[0].fields as { name: string; value: string }[];
    assert.equal(fields.length, 10);
    assert.equal(fields.find((f) => f.name === 'long')?.value.length, 200, 'long values are cut');
    assert.match(r.body.embeds[0].footer.text, /8 more fields$/);
  });

  test('Microsoft Teams: a message with one Adaptive Card', async () => {
    const r = await render('teams', `${HOST}/workflows/abc/triggers/manual/paths/invoke`);
    const card = r.body.attachments[0].content;
    assert.equal(card.body[0].text, 'Deal won');
    assert.deepEqual(card.body[1].facts[0], { title: 'user_id', value: 'u-42' });
    assert.deepEqual(card.body[1].facts.at(-1), { title: '…', value: '8 more fields' });
  });

  test('Google Chat: text, one field per line', async () => {
    const r = await render('google-chat', `${HOST}/v1/spaces/AAA/messages?key=k&token=t`);
    assert.equal(r.url, `${HOST}/v1/spaces/AAA/messages?key=k&token=t`);
    assert.match(r.body.text, /^\*Deal won\* \(deal\.won\)\nuser_id: u-42\n/);
  });

  test('Telegram: sendMessage with the chat_id option, at the bot URL + /sendMessage', async () => {
    const r = await render('telegram', `${HOST}/bot123456:ABC-DEF`, { chat_id: '@carteiro_alerts' });
    assert.equal(r.url, `${HOST}/bot123456:ABC-DEF/sendMessage`);
    assert.equal(r.body.chat_id, '@carteiro_alerts');
    assert.match(r.body.text, /^Deal won \(deal\.won\)\nuser_id: u-42\nnote: <@U0123> & <!channel> @everyone <b>bold<\/b>\n/);
  });

  test('n8n: a flat body and the event type in a header', async () => {
    const r = await render('n8n', `${HOST}/webhook/deals`);
    assert.equal(r.body.event_type, 'deal.won');
    assert.deepEqual(r.body.data, JSON.parse(JSON.stringify(SAMPLE)));
    assert.equal(r.headers['x-carteiro-event-type'], 'deal.won');
  });

  test("passthrough: Carteiro's envelope, unchanged", async () => {
    const r = await render('passthrough', `${HOST}/hooks`);
    assert.equal(r.body.type, 'deal.won');
    assert.deepEqual(r.body.data, JSON.parse(JSON.stringify(SAMPLE)));
  });
});
