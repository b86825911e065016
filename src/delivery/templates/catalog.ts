/**
 * The transformation templates (docs/transformations.md, "Templates"): ready code for the destinations
 * Carteiro's users send to. An endpoint created or changed with `template` and no `transformation` gets
 * the template's code, which is then the endpoint's own to edit.
 */
import { InvalidTransformationError } from '../../errors/errors.ts';
import { discord, googleChat, slack, teams, telegram } from './chat-templates.ts';
import { n8n, passthrough } from './data-templates.ts';
import type { TransformationTemplate } from './template.ts';

export const TEMPLATES: readonly TransformationTemplate[] = [slack, discord, teams, googleChat, telegram, n8n, passthrough];
const BY_NAME = new Map(TEMPLATES.map((t) => [t.name, t]));

/** The template of that name; throws InvalidTransformationError naming `template` when there is none. */
export function findTemplate(name: string): TransformationTemplate {
  const t = BY_NAME.get(name);
  if (!t)
    throw new InvalidTransformationError(
      'template',
      `"${name.slice(0, 100)}" is not a template (the templates are ${TEMPLATES.map((x) => x.name).join(', ')})`,
    );
  return t;
}

/** A template as the API lists it: its code with placeholders for the options. */
export function presentTemplate(t: TransformationTemplate) {
  return {
    name: t.name,
    title: t.title,
    description: t.description,
    url_hint: t.urlHint,
    options: t.options.map((o) => ({ name: o.name, description: o.description, required: o.required })),
    source: t.source({}),
  };
}

/**
 * A template's code made with `options`. Throws InvalidTransformationError naming `template` (no such
 * template) or `template_options.<name>` (unknown, missing or malformed).
 */
export function renderTemplate(name: string, options: Record<string, unknown> | undefined): string {
  const t = findTemplate(name);
  const given = options ?? {};
  for (const key of Object.keys(given)) {
    if (!t.options.some((o) => o.name === key)) {
      const takes = t.options.length ? `takes ${t.options.map((o) => o.name).join(', ')}` : 'takes no options';
      throw new InvalidTransformationError(`template_options.${key.slice(0, 100)}`, `the ${t.name} template ${takes}`);
    }
  }
  const values: Record<string, string> = {};
  for (const o of t.options) {
    const v = given[o.name];
    if (v === undefined || v === null || v === '') {
      if (o.required) throw new InvalidTransformationError(`template_options.${o.name}`, `is required by the ${t.name} template: ${o.description}`);
      continue;
    }
    const text = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : v;
    if (typeof text !== 'string' || !o.pattern.test(text)) throw new InvalidTransformationError(`template_options.${o.name}`, `is not valid: ${o.description}`);
    values[o.name] = text;
  }
  return t.source(values);
}
