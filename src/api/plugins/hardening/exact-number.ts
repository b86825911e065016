/**
 * Finds a number in a JSON body that JSON.parse would change (util/exact-json.ts says which), so it
 * can be refused instead of stored and delivered altered. Numbers are compared by value, not
 * spelling: `1.50` and `1.5e0` are kept (as 1.5).
 */
import { mayHoldInexactNumber, parseMarkingInexact } from '../../../util/exact-json.ts';

const MARK = Symbol('inexact number');
type Marked = { [MARK]: string };

/** The first number in `text` (valid JSON) that reading it changes, with its path under `root` (`body.data.id`). */
export function findInexactNumber(text: string, root: string): { path: string; source: string } | null {
  if (!mayHoldInexactNumber(text)) return null;
  let found = false;
  let marked: unknown;
  try {
    marked = parseMarkingInexact(text, (source) => {
      found = true;
      return { [MARK]: source } satisfies Marked;
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
