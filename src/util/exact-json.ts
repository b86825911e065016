/**
 * JSON numbers and doubles. JSON.parse reads every number as a double, so an integer beyond 2^53
 * (1234567890123456789 → 1234567890123456800), a decimal with more significant digits than a double
 * keeps, or an exponent out of range (1e400 → Infinity) comes back changed. A number with at most 15
 * significant digits and no exponent always survives, so text without a longer digit run or an
 * exponent after a JSON separator needs no care (mayHoldInexactNumber), and the rest is read with a
 * reviver that sees each number's source text.
 */

/** A number literal that may not survive: 16+ mantissa characters, or an exponent. */
const MAY_BE_INEXACT = /(?:^|[:,[])\s*-?(?:[\d.]{16}|[\d.]+[eE])/;

type SourceReviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;
const parseWithSource = JSON.parse as (text: string, reviver: SourceReviver) => unknown;
const rawJson = (JSON as unknown as { rawJSON(text: string): object }).rawJSON;
const isRawJsonValue = (JSON as unknown as { isRawJSON(value: unknown): boolean }).isRawJSON;

/** Whether `text` may hold a number that JSON.parse would change (false: it certainly does not). */
export function mayHoldInexactNumber(text: string): boolean {
  return MAY_BE_INEXACT.test(text);
}

/**
 * Parses `text` (stored JSON, valid), keeping every number JSON.parse would change as its source
 * text (JSON.rawJSON), so JSON.stringify writes it back exactly. Such a value is an opaque object:
 * code that walks the result checks isRawJson.
 */
export function parseKeepingNumbers(text: string): unknown {
  if (!mayHoldInexactNumber(text)) return JSON.parse(text);
  return parseWithSource(text, (_key, value, context) =>
    typeof value === 'number' && context?.source !== undefined && !sameNumber(context.source, value) ? rawJson(context.source) : value,
  );
}

/** Whether `value` is a number kept as its source text by parseKeepingNumbers. */
export function isRawJson(value: unknown): boolean {
  return value !== null && typeof value === 'object' && isRawJsonValue(value);
}

/**
 * Parses `text` (valid JSON) and calls `visit` with each number JSON.parse would change, with its
 * source text; `visit` returns what to put in its place.
 */
export function parseMarkingInexact(text: string, mark: (source: string) => unknown): unknown {
  return parseWithSource(text, (_key, value, context) =>
    typeof value === 'number' && context?.source !== undefined && !sameNumber(context.source, value) ? mark(context.source) : value,
  );
}

/** Whether the number written `source` equals `value`, compared as exact decimals. */
export function sameNumber(source: string, value: number): boolean {
  return Number.isFinite(value) && decimal(source) === decimal(String(value));
}

/** A JSON (or JS) number's exact value as `<sign><digits>e<exponent>`, without leading or trailing zeros. */
function decimal(text: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return text;
  const fraction = m[3] ?? '';
  const digits = `${m[2]}${fraction}`.replace(/^0+/, '');
  const significant = digits.replace(/0+$/, '');
  if (significant === '') return '0';
  const exponent = BigInt(m[4] ?? '0') - BigInt(fraction.length) + BigInt(digits.length - significant.length);
  return `${m[1]}${significant}e${exponent}`;
}
