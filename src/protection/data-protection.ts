/**
 * Personal data in event payloads, encrypted at rest.
 *
 * At ingestion, the value of every key named in CARTEIRO_PII_FIELDS (case-insensitive, at any depth,
 * inside arrays too) is replaced by `enc:v1:<keyId>:…` (AES-256-GCM, crypto/secret-box.ts). The
 * sealed plaintext is the value's JSON text, so numbers, objects and arrays come back as they were.
 * A string a client sends that already looks sealed is sealed as well, so that every `enc:v1:` value
 * in the ledger is Carteiro's own and opening it is never ambiguous.
 *
 * On the way out everything sealed is opened: by the worker before signing (an event with nothing
 * sealed and no allow-list keeps the no-parse fast path), and by the API for authorised callers.
 */
import type { SecretBox } from '../crypto/secret-box.ts';
import { pickFields, selectIncludeFields, setOwn, type IncludeFields } from './minimal-payload.ts';
import { isRawJson, parseKeepingNumbers } from '../util/exact-json.ts';

export const SEALED_PREFIX = 'enc:v1:';
const SEALED_IN_JSON = `"${SEALED_PREFIX}`;

export type DispatchData = {
  event_type: string;
  data_text: string;
  /** false for data stored as written (not yet through sealing): a string in it that looks sealed is not ours to open. */
  data_sealed?: boolean;
  include_fields?: IncludeFields | null | undefined;
};

export type DataProtection = {
  readonly piiFields: ReadonlySet<string>;
  /** The JSON text stored for an event's data, with personal fields sealed. */
  sealData(data: Record<string, unknown>): string;
  /**
   * A copy with every sealed value opened, for display. A value no configured key opens (its key was
   * removed from CARTEIRO_ENCRYPTION_KEYS) stays as its ciphertext rather than failing the request.
   */
  reveal<T>(value: T): T;
  /** The `data` a dispatch sends: allow-list applied and sealed values opened. Throws if a key is missing. */
  prepareDispatchData(d: DispatchData): string;
  /** Re-seals every sealed value in `value` with the newest key; `changed` counts what was re-sealed. */
  reseal<T>(value: T): { value: T; changed: number };
  /** A receiver's response body as stored in the attempt log: sealed whole, whatever it holds. */
  sealResponseBody(body: string): string;
  /** An attempt as shown: its response body opened where Carteiro sealed it (or left as ciphertext if its key is gone). */
  openAttempt<T extends { response_body: string | null; response_sealed: boolean }>(attempt: T): Omit<T, 'response_sealed'>;
};

/** Response bodies up to this length are sealed once per distinct text (sealResponseBody). */
const SHORT_BODY_CHARS = 256;
const SHORT_BODIES_KEPT = 256;

export function createDataProtection(box: SecretBox, opts: { piiFields: readonly string[] }): DataProtection {
  const piiFields: ReadonlySet<string> = new Set(opts.piiFields.map((f) => f.toLowerCase()));
  // Cheap test on the plain JSON text: most events have no personal key, and then one plain
  // JSON.stringify is all ingestion pays (a false positive only costs the replacer pass).
  const escapedInJson = [...piiFields].some((f) => JSON.stringify(f) !== `"${f}"`);
  const mayHavePii = escapedInJson
    ? /(?:)/
    : piiFields.size
      ? new RegExp(`"(?:${[...piiFields].map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})":`, 'i')
      : null;
  const seal = (value: unknown) => box.seal(JSON.stringify(value));
  const shortBodies = new Map<string, string>();
  const isSealed = (v: unknown): v is string => typeof v === 'string' && v.startsWith(SEALED_PREFIX);

  function open(sealed: string): unknown {
    const text = box.open(sealed);
    try {
      return JSON.parse(text);
    } catch {
      return text; // sealed by something that stored a bare string
    }
  }

  function mapSealed(value: unknown, f: (sealed: string) => unknown): unknown {
    if (isSealed(value)) return f(value);
    if (Array.isArray(value)) return value.map((v) => mapSealed(v, f));
    if (value !== null && typeof value === 'object' && !isRawJson(value)) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) setOwn(out, k, mapSealed(v, f));
      return out;
    }
    return value;
  }

  return {
    piiFields,
    sealData(data) {
      const text = JSON.stringify(data);
      if (!text.includes(SEALED_IN_JSON) && !(mayHavePii && mayHavePii.test(text))) return text;
      return JSON.stringify(data, (key, value) => {
        if (value === null || value === undefined || key === '') return value;
        if (piiFields.has(key.toLowerCase()) || isSealed(value)) return seal(value);
        return value;
      });
    },

    reveal<T>(value: T): T {
      return mapSealed(value, (sealed) => {
        try {
          return open(sealed);
        } catch {
          return sealed;
        }
      }) as T;
    },

    prepareDispatchData(d) {
      const include = selectIncludeFields(d.include_fields, d.event_type);
      const mayHoldSealed = d.data_sealed !== false && d.data_text.includes(SEALED_IN_JSON);
      if (include === null && !mayHoldSealed) return d.data_text;
      // Numbers a double cannot hold (a bigint column captured in the database) are kept as written.
      let data = parseKeepingNumbers(d.data_text);
      // Open first, then pick: a path may reach inside a value that was sealed whole.
      if (mayHoldSealed) data = mapSealed(data, open);
      if (include !== null) data = pickFields(data, include);
      return JSON.stringify(data);
    },

    sealResponseBody(body) {
      if (body.length > SHORT_BODY_CHARS) return box.seal(body);
      // Receivers mostly answer with the same few words ("ok", n8n's "Workflow was started"), and a
      // seal costs about 6 µs, an eighth of a delivery's worker CPU: equal short bodies share one
      // ciphertext per process and key, which tells a reader of the database only that they are equal.
      let sealed = shortBodies.get(body);
      if (sealed === undefined) {
        if (shortBodies.size >= SHORT_BODIES_KEPT) shortBodies.delete(shortBodies.keys().next().value as string);
        sealed = box.seal(body);
      } else {
        shortBodies.delete(body); // re-inserted below: the map's order is least recently used first
      }
      shortBodies.set(body, sealed);
      return sealed;
    },

    openAttempt({ response_sealed, ...attempt }) {
      if (!response_sealed || attempt.response_body === null) return attempt;
      try {
        return { ...attempt, response_body: box.open(attempt.response_body) };
      } catch {
        return attempt;
      }
    },

    reseal<T>(value: T) {
      let changed = 0;
      const out = mapSealed(value, (sealed) => {
        if (sealed.startsWith(`${SEALED_PREFIX}${box.primaryKeyId}:`)) return sealed;
        changed++;
        return box.seal(box.open(sealed));
      }) as T;
      return { value: out, changed };
    },
  };
}
