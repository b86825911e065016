/**
 * A portal session's theme (docs/portal.md, Theming): what the SaaS backend asks the portal page to
 * look like, stored with the session (migration 0029) and read by the page from GET /portal/session.
 * Each value is checked here, strictly, since the page sets it as a CSS custom property or an image
 * source: a mode (light, dark, auto), a #rrggbb colour, a logo as an https: URL or a small data: image.
 * The page's Content-Security-Policy already allows images from https: origins and data: (portal.ts),
 * so a logo needs no change to it, and nothing is fetched by Carteiro itself.
 */
import { InvalidPortalThemeError } from '../errors/errors.ts';
import type { PortalTheme } from '../ledger/portal-sessions.ts';

/** The JSON schema of `theme`: its shape only; the values are checked below, for a 422 naming the field. */
export const portalThemeSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { mode: { type: 'string' }, primary_color: { type: 'string' }, logo_url: { type: 'string' } },
} as const;

const MODES = new Set(['light', 'dark', 'auto']);
const HEX_COLOUR = /^#[0-9a-f]{6}$/i;
const MAX_LOGO_URL_CHARS = 2048;
/** A data: logo is kept with every session and sent to every page load: a small image only. */
export const MAX_DATA_LOGO_CHARS = 32 * 1024;
const DATA_IMAGE = /^data:image\/(?:png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/]+={0,2}$/;

function checkLogo(value: string): void {
  const field = 'theme.logo_url';
  if (value.startsWith('data:')) {
    if (value.length > MAX_DATA_LOGO_CHARS)
      throw new InvalidPortalThemeError(field, `a data: logo may be at most ${MAX_DATA_LOGO_CHARS} characters; link a larger one by its https: URL`);
    if (!DATA_IMAGE.test(value))
      throw new InvalidPortalThemeError(field, 'a data: logo must be a base64 PNG, JPEG, GIF, WebP or SVG image (data:image/png;base64,…)');
    return;
  }
  if (value.length > MAX_LOGO_URL_CHARS) throw new InvalidPortalThemeError(field, `at most ${MAX_LOGO_URL_CHARS} characters`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidPortalThemeError(field, 'not a URL: give an https:// URL or a data:image/…;base64 image');
  }
  if (url.protocol !== 'https:') throw new InvalidPortalThemeError(field, 'must be an https:// URL (or a data:image/…;base64 image)');
  if (url.username || url.password) throw new InvalidPortalThemeError(field, 'must not carry credentials');
}

/** The theme as stored, every value checked; null when none (or an empty one) was given. */
export function checkPortalTheme(theme: PortalTheme | undefined): PortalTheme | null {
  if (!theme) return null;
  if (theme.mode !== undefined && !MODES.has(theme.mode)) throw new InvalidPortalThemeError('theme.mode', 'must be light, dark or auto');
  if (theme.primary_color !== undefined && !HEX_COLOUR.test(theme.primary_color)) {
    throw new InvalidPortalThemeError('theme.primary_color', 'must be a #rrggbb colour, e.g. #0f766e');
  }
  if (theme.logo_url !== undefined) checkLogo(theme.logo_url);
  const checked: PortalTheme = {};
  if (theme.mode !== undefined) checked.mode = theme.mode;
  if (theme.primary_color !== undefined) checked.primary_color = theme.primary_color.toLowerCase();
  if (theme.logo_url !== undefined) checked.logo_url = theme.logo_url;
  return Object.keys(checked).length > 0 ? checked : null;
}
