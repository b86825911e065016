/** Types for parse-prometheus-text-format (it ships none): prom2json's shape. */
declare module 'parse-prometheus-text-format' {
  export type Labels = Record<string, string>;
  export type Sample = { value: string; labels?: Labels };
  export type HistogramSample = { buckets: Record<string, string>; count: string; sum: string; labels?: Labels };
  export type MetricFamily = {
    name: string;
    help: string;
    type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
    metrics: (Sample | HistogramSample)[];
  };
  export default function parsePrometheusTextFormat(text: string): MetricFamily[];
}
