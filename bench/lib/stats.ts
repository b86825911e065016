// Latency summaries shared by the receiver and the ceiling.
// Samples live in a growable Float64Array: no per-sample allocation on the hot
// path, and a typed-array sort is numeric and fast.

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export const EMPTY_SUMMARY: LatencySummary = { count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0 };

export class SampleBuffer {
  #data: Float64Array;
  #length = 0;
  #limit: number;
  /** Samples not recorded because `limit` was reached (kept honest, never silent). */
  dropped = 0;

  constructor(initialCapacity = 65_536, limit = 10_000_000) {
    this.#data = new Float64Array(initialCapacity);
    this.#limit = limit;
  }

  get length(): number {
    return this.#length;
  }

  push(v: number): void {
    if (this.#length === this.#data.length) {
      if (this.#length >= this.#limit) {
        this.dropped++;
        return;
      }
      const next = new Float64Array(Math.min(this.#data.length * 2, this.#limit));
      next.set(this.#data);
      this.#data = next;
    }
    this.#data[this.#length++] = v;
  }

  clear(): void {
    this.#length = 0;
    this.dropped = 0;
  }

  summary(): LatencySummary {
    return summarize(this.#data.subarray(0, this.#length));
  }
}

/** Nearest-rank percentiles; sorts a copy so the caller's samples are untouched. */
export function summarize(samples: Float64Array): LatencySummary {
  const n = samples.length;
  if (n === 0) return { ...EMPTY_SUMMARY };
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  const at = (p: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))]!;
  return { count: n, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[n - 1]!, mean: sum / n };
}
