/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format (version 0.0.4). Web-standard only, so it runs on every runtime.
 */

/** Label names to values. */
export type Labels = Record<string, string>;

/** Escapes a label value: backslash, double quote and line feed. */
const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

const labelText = (labels: Labels) => {
  const entries = Object.entries(labels);
  return entries.length === 0 ? "" : `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
};

const number = (value: number) => (value === Infinity ? "+Inf" : value === -Infinity ? "-Inf" : Number.isNaN(value) ? "NaN" : String(value));

/** Series keyed by their label values, in a fixed label order. */
class Series<T> {
  readonly map = new Map<string, { labels: Labels; value: T }>();
  constructor(
    readonly labelNames: readonly string[],
    private readonly init: () => T,
  ) {}

  of(labels: Labels): T {
    const key = this.labelNames.map((n) => labels[n] ?? "").join("\u0000");
    let entry = this.map.get(key);
    if (!entry) {
      const ordered = Object.fromEntries(this.labelNames.map((n) => [n, labels[n] ?? ""]));
      this.map.set(key, (entry = { labels: ordered, value: this.init() }));
    }
    return entry.value;
  }
}

interface Metric {
  render(): string;
}

/** A counter or a gauge. */
export class Scalar implements Metric {
  private readonly series: Series<{ v: number }>;
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly type: "counter" | "gauge",
    labelNames: readonly string[] = [],
  ) {
    this.series = new Series(labelNames, () => ({ v: 0 }));
  }

  inc(labels: Labels = {}, by = 1): void {
    this.series.of(labels).v += by;
  }

  set(labels: Labels, value: number): void {
    this.series.of(labels).v = value;
  }

  /** Drops every series (a gauge refilled from a fresh reading). */
  reset(): void {
    this.series.map.clear();
  }

  render(): string {
    const head = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
    const noLabels = this.series.labelNames.length === 0 && this.series.map.size === 0 ? `${this.name} 0\n` : "";
    return head + noLabels + [...this.series.map.values()].map((s) => `${this.name}${labelText(s.labels)} ${number(s.value.v)}\n`).join("");
  }
}

/** A histogram's observations per bucket (not cumulative). */
export interface HistogramTotals {
  /** Upper bounds, ascending. */
  bounds: number[];
  /** One count per bound, then the count above the last bound. */
  counts: number[];
}

/** A histogram over fixed upper bounds (seconds, say); `+Inf` is added. */
export class Histogram implements Metric {
  private readonly series: Series<{ counts: number[]; sum: number; count: number }>;
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly buckets: readonly number[],
    labelNames: readonly string[] = [],
  ) {
    this.series = new Series(labelNames, () => ({ counts: buckets.map(() => 0), sum: 0, count: 0 }));
  }

  observe(labels: Labels, value: number): void {
    const s = this.series.of(labels);
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  /** Observations per bucket over every series: `counts[i]` ≤ `bounds[i]`, the last one above them all. */
  totals(): HistogramTotals {
    const counts = [...this.buckets.map(() => 0), 0];
    for (const { value } of this.series.map.values()) {
      value.counts.forEach((n, i) => (counts[i]! += n));
      counts[this.buckets.length]! += value.count - value.counts.reduce((a, b) => a + b, 0);
    }
    return { bounds: [...this.buckets], counts };
  }

  render(): string {
    let out = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} histogram\n`;
    for (const { labels, value } of this.series.map.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += value.counts[i]!;
        out += `${this.name}_bucket${labelText({ ...labels, le: number(bound) })} ${cumulative}\n`;
      });
      out += `${this.name}_bucket${labelText({ ...labels, le: "+Inf" })} ${value.count}\n`;
      out += `${this.name}_sum${labelText(labels)} ${number(value.sum)}\n`;
      out += `${this.name}_count${labelText(labels)} ${value.count}\n`;
    }
    return out;
  }
}

/** Metrics rendered together, in the order they were added. */
export class Registry {
  private readonly metrics: Metric[] = [];

  add<M extends Metric>(metric: M): M {
    this.metrics.push(metric);
    return metric;
  }

  /** The whole exposition, `text/plain; version=0.0.4`. */
  render(): string {
    return this.metrics.map((m) => m.render()).join("");
  }
}
