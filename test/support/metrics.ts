/**
 * Scrapes a Carteiro /metrics over HTTP and reads it with a real Prometheus text-format parser
 * (parse-prometheus-text-format, prom2json's shape), so a test sees what Prometheus would.
 */
import assert from 'node:assert/strict';
import parsePrometheusTextFormat, { type HistogramSample, type Labels, type MetricFamily, type Sample } from 'parse-prometheus-text-format';

export type Scrape = {
  families: Map<string, MetricFamily>;
  /** The value of the sample of `name` whose labels include `labels` (0 when there is none: a counter not yet moved). */
  value(name: string, labels?: Labels): number;
  /** A histogram's count and sum for the sample whose labels include `labels`. */
  histogram(name: string, labels?: Labels): { count: number; sum: number };
  /** Every sample of `name`, with its labels. */
  samples(name: string): { labels: Labels; value: number }[];
};

export async function scrape(url: string, key: string | null): Promise<Scrape> {
  const res = await fetch(url, key ? { headers: { authorization: `Bearer ${key}` } } : {});
  const text = await res.text();
  assert.equal(res.status, 200, `scrape of ${url}: ${res.status} ${text.slice(0, 200)}`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseScrape(text);
}

export function parseScrape(text: string): Scrape {
  const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
  const matches = (sample: { labels?: Labels }, labels: Labels) => Object.entries(labels).every(([k, v]) => sample.labels?.[k] === v);
  const family = (name: string) => families.get(name);
  return {
    families,
    value(name, labels = {}) {
      const f = family(name);
      if (!f) return 0;
      assert.notEqual(f.type, 'HISTOGRAM', `${name} is a histogram`);
      const found = (f.metrics as Sample[]).filter((s) => matches(s, labels));
      assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
      return found[0] ? Number(found[0].value) : 0;
    },
    histogram(name, labels = {}) {
      const f = family(name);
      if (!f) return { count: 0, sum: 0 };
      assert.equal(f.type, 'HISTOGRAM', `${name} is a ${f.type}`);
      const found = (f.metrics as HistogramSample[]).filter((s) => matches(s, labels));
      assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
      return found[0] ? { count: Number(found[0].count), sum: Number(found[0].sum) } : { count: 0, sum: 0 };
    },
    samples(name) {
      return ((family(name)?.metrics ?? []) as Sample[]).map((s) => ({ labels: s.labels ?? {}, value: Number(s.value) }));
    },
  };
}
