/**
 * Templates for chat services' incoming webhooks: each turns a Carteiro event into the service's
 * message, a short title and the data's first fields. The shapes follow each service's documentation
 * (docs/transformations.md, "Templates", links them); test/core/transformation-templates.test.ts checks
 * each against a schema of it.
 */
import { MESSAGE_HELPERS } from './message-helpers.ts';
import type { TransformationTemplate } from './template.ts';

const header = (service: string, url: string) =>
  `// Carteiro template: ${service}. The endpoint's URL: ${url}.\n// What goes in and comes out: docs/transformations.md. Edit freely.\n`;

export const slack: TransformationTemplate = {
  name: 'slack',
  title: 'Slack',
  description: "A Slack incoming webhook message: `text` (the notification) and Block Kit blocks with the event's fields.",
  urlHint: 'the incoming webhook URL Slack gives (https://hooks.slack.com/services/…)',
  options: [],
  source: () => `${header('Slack incoming webhook', 'https://hooks.slack.com/services/…')}
function handler(webhook) {
  const { list, more } = fields(webhook.data);
  const lines = list.map(([name, value]) => '*' + escape(name) + ':* ' + escape(value));
  if (more) lines.push('_… and ' + more + ' more_');
  webhook.payload = {
    text: title(webhook.event_type) + ' (' + webhook.event_type + ')',
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: clip(title(webhook.event_type), 150) } },
      { type: 'section', text: { type: 'mrkdwn', text: clip(lines.join('\\n') || '_no data_', 3000) } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: clip('\`' + webhook.event_type + '\` · ' + webhook.event_id + ' · ' + webhook.timestamp, 3000) }] },
    ],
  };
  return webhook;
}

/** Slack's mrkdwn gives &, < and > a meaning: escaped, data cannot make a link or a mention. */
function escape(text) {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

${MESSAGE_HELPERS}`,
};

export const discord: TransformationTemplate = {
  name: 'discord',
  title: 'Discord',
  description: "A Discord webhook message: `content` and an embed with the event's fields; mentions in the data never ping anyone.",
  urlHint: 'the channel webhook URL Discord gives (https://discord.com/api/webhooks/…)',
  options: [],
  source: () => `${header('Discord webhook', 'https://discord.com/api/webhooks/<id>/<token>')}
function handler(webhook) {
  const { list, more } = fields(webhook.data);
  webhook.payload = {
    content: clip('**' + title(webhook.event_type) + '** (' + webhook.event_type + ')', 2000),
    embeds: [{
      title: clip(webhook.event_type, 256),
      timestamp: webhook.timestamp,
      fields: list.slice(0, 25).map(([name, value]) => ({ name: clip(name, 256), value: clip(value || '—', 1024), inline: value.length <= 40 })),
      footer: { text: clip('event ' + webhook.event_id + (more ? ' · ' + more + ' more fields' : ''), 2048) },
    }],
    // Data may hold "@everyone" or a user id: no mention in it notifies anyone.
    allowed_mentions: { parse: [] },
  };
  return webhook;
}

${MESSAGE_HELPERS}`,
};

export const teams: TransformationTemplate = {
  name: 'teams',
  title: 'Microsoft Teams',
  description: 'An Adaptive Card message for a Teams channel, as its Workflows ("Post to a channel when a webhook request is received") webhook takes it.',
  urlHint: 'the URL of the Teams workflow\'s "When a Teams webhook request is received" trigger',
  options: [],
  source: () => `${header('Microsoft Teams (Workflows webhook, Adaptive Card)', "the workflow trigger's HTTP POST URL")}
function handler(webhook) {
  const { list, more } = fields(webhook.data);
  const facts = list.map(([name, value]) => ({ title: name, value: value }));
  if (more) facts.push({ title: '…', value: more + ' more fields' });
  webhook.payload = {
    type: 'message',
    attachments: [{
      contentType: 'application/vnd.microsoft.card.adaptive',
      contentUrl: null,
      content: {
        $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
        type: 'AdaptiveCard',
        version: '1.4',
        body: [
          { type: 'TextBlock', text: title(webhook.event_type), weight: 'Bolder', size: 'Medium', wrap: true },
          { type: 'FactSet', facts: facts },
          { type: 'TextBlock', text: webhook.event_type + ' · ' + webhook.event_id + ' · ' + webhook.timestamp, isSubtle: true, size: 'Small', wrap: true },
        ],
      },
    }],
  };
  return webhook;
}

${MESSAGE_HELPERS}`,
};

export const googleChat: TransformationTemplate = {
  name: 'google-chat',
  title: 'Google Chat',
  description: "A Google Chat space webhook message: `text`, with the event's fields one per line.",
  urlHint: "the space's incoming webhook URL (https://chat.googleapis.com/v1/spaces/…/messages?key=…&token=…)",
  options: [],
  source: () => `${header('Google Chat incoming webhook', 'https://chat.googleapis.com/v1/spaces/<space>/messages?key=…&token=…')}
function handler(webhook) {
  const { list, more } = fields(webhook.data);
  const lines = ['*' + title(webhook.event_type) + '* (' + webhook.event_type + ')'];
  for (const [name, value] of list) lines.push(name + ': ' + value);
  if (more) lines.push('… and ' + more + ' more');
  lines.push('event ' + webhook.event_id + ' · ' + webhook.timestamp);
  webhook.payload = { text: clip(lines.join('\\n'), 4000) };
  return webhook;
}

${MESSAGE_HELPERS}`,
};

/** A Telegram chat: a numeric id (negative for groups and channels) or a public channel's @username. */
const TELEGRAM_CHAT_ID = /^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$/;

export const telegram: TransformationTemplate = {
  name: 'telegram',
  title: 'Telegram bot',
  description: 'A Telegram Bot API sendMessage call: `chat_id` (the template option) and `text`; the path /sendMessage is added to the endpoint URL.',
  urlHint: 'https://api.telegram.org/bot<token> (without /sendMessage: the template adds it)',
  options: [
    {
      name: 'chat_id',
      description: "The chat to post to: its numeric id (negative for groups and channels) or a channel's @username.",
      required: true,
      pattern: TELEGRAM_CHAT_ID,
    },
  ],
  source: (options) => `${header('Telegram bot (sendMessage)', 'https://api.telegram.org/bot<token>')}
const CHAT_ID = ${JSON.stringify(options.chat_id ?? '<set the chat id>')};

function handler(webhook) {
  const { list, more } = fields(webhook.data);
  const lines = [title(webhook.event_type) + ' (' + webhook.event_type + ')'];
  for (const [name, value] of list) lines.push(name + ': ' + value);
  if (more) lines.push('… and ' + more + ' more');
  lines.push('event ' + webhook.event_id);
  // Plain text (no parse_mode): nothing in the data is read as markup.
  webhook.payload = { chat_id: CHAT_ID, text: clip(lines.join('\\n'), 4096), link_preview_options: { is_disabled: true } };
  webhook.path = '/sendMessage';
  return webhook;
}

${MESSAGE_HELPERS}`,
};
