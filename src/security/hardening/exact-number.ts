/**
 * Finds a number in JSON text that JSON.parse would change: values are read as doubles, so an
 * integer beyond 2^53 (1234567890123456789 → 1234567890123456800), a decimal with more significant
 * digits than a double keeps, or an exponent out of range (1e400 → Infinity, 1e-400 → 0) would be
 * stored and delivered altered. Numbers are compared by value, not spelling: `1.50` and `1.5e0` are
 * kept (as 1.5).
 *
 * A number with at most 15 significant digits and no exponent always survives, so only text with a
 * longer digit run or an exponent after a JSON separator is parsed a second time, with a reviver that
 * sees each number's source text.
 */

/** A number literal that may not survive: 16+ mantissa characters, or an exponent. */
const MAY_BE_INEXACT = /(?:^|[:,[])\s*-?(?:[\d.]{16}|[\d.]+[eE])/;

type SourceReviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;
const parseWithSource = JSON.parse as (text: string, reviver: SourceReviver) => unknown;

const MARK = Symbol('inexact number');
type Marked = { [MARK]: string };

/** The first number in `text` (valid JSON) that reading it changes, with its path under `root` (`body.data.id`). */
export function findInexactNumber(text: string, root: string): { path: string; source: string } | null {
  if (!MAY_BE_INEXACT.test(text)) return null;
  let found = false;
  let marked: unknown;
  try {
    marked = parseWithSource(text, (_key, value, context) => {
      if (typeof value !== 'number' || context?.source === undefined || sameNumber(context.source, value)) return value;
      found = true;
      return { [MARK]: context.source } satisfies Marked;
    });
  } catch {
    return null; // nested too deeply for the reviver: the depth check that follows refuses it
  }
  if (!found) return null;
  const stack: [unknown, string][] = [[marked, root]];
  while (stack.length) {
    const [value, path] = stack.pop() as [unknown, string];
    if (value === null || typeof value !== 'object') continue;
    if (MARK in value) return { path, source: (value as Marked)[MARK] };
    for (const [key, child] of Object.entries(value).reverse()) stack.push([child, `${path}.${key}`]);
  }
  return null;
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
