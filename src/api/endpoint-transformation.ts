/**
 * An endpoint's `transformation`, `template` and `template_options` (docs/transformations.md) as the
 * API takes them on create and PATCH, turned into the columns to write. Code is checked (compiled,
 * `handler` defined, top level run under the limits) before anything is written: a refusal is a 422
 * naming the field, and nothing changes.
 *
 *   template: "slack"                  the template's code (with template_options) becomes the transformation
 *   transformation: "function …"       this code; `template` alongside only labels where it came from
 *   transformation: null               no transformation (and no template)
 *   template: null                     forget the label; the code stays
 */
import { InvalidTransformationError } from '../errors/errors.ts';
import { TEMPLATES, findTemplate, renderTemplate } from '../delivery/templates/catalog.ts';
import { TRANSFORMATION_MAX_CHARS, type Transformer } from '../delivery/transformation/transformer.ts';

export type TransformationFields = {
  transformation?: string | null;
  template?: string | null;
  template_options?: Record<string, string | number>;
};

/** The request schema's properties. `check` and the template catalog do the rest, naming the field. */
export const transformationFieldSchemas = {
  transformation: {
    type: ['string', 'null'],
    maxLength: TRANSFORMATION_MAX_CHARS,
    description: 'JavaScript: `function handler(webhook) { … return webhook; }` (docs/transformations.md); null removes it.',
  },
  template: {
    type: ['string', 'null'],
    maxLength: 40,
    description: `A preset whose code becomes the transformation when none is given: ${TEMPLATES.map((t) => t.name).join(', ')}.`,
  },
  template_options: {
    type: 'object',
    maxProperties: 10,
    additionalProperties: { type: ['string', 'integer'], maxLength: 200 },
    description: 'Values the template is made with (e.g. telegram: {"chat_id": "-1001234567890"}).',
  },
} as const;

type Columns = { transformation?: string | null; template?: string | null };

export async function transformationColumns(f: TransformationFields, transformer: Transformer): Promise<Columns> {
  const { transformation, template, template_options: options } = f;
  if (options !== undefined && (typeof template !== 'string' || transformation !== undefined)) {
    throw new InvalidTransformationError('template_options', "goes with `template` alone (without `transformation`): it fills in the template's code");
  }
  if (typeof template === 'string') {
    if (transformation === null)
      throw new InvalidTransformationError('template', "a template is code: leave out `transformation` to use the template's, or drop `template`");
    if (transformation === undefined) {
      const source = renderTemplate(template, options);
      await transformer.check(source, 'template');
      return { transformation: source, template };
    }
    findTemplate(template); // the label must name a template
  }
  if (transformation === null) return { transformation: null, template: null };
  if (transformation === undefined) return template === null ? { template: null } : {};
  await transformer.check(transformation);
  return template === undefined ? { transformation } : { transformation, template };
}
