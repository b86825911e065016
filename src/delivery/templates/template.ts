/** A ready transformation for a destination service (docs/transformations.md, "Templates"). */
export type TransformationTemplate = {
  /** What `template` names on an endpoint: slack, discord, … */
  name: string;
  title: string;
  description: string;
  /** What the endpoint's URL should be. */
  urlHint: string;
  /** Values the code is made with (`template_options`): each is written into it as a constant. */
  options: TemplateOption[];
  /** The code, with the options' values filled in (absent ones as placeholders, for the listing). */
  source(options: Record<string, string>): string;
};

export type TemplateOption = { name: string; description: string; required: boolean; pattern: RegExp };
