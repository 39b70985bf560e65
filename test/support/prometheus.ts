import { expect } from "vitest";

/** One sample line. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A metric family: HELP, TYPE and its samples. */
export interface Family {
  help: string;
  type: string;
  samples: Sample[];
}

/**
 * A strict parser of the Prometheus text exposition format (0.0.4): every family has HELP then
 * TYPE before its samples, sample names belong to the family (`_bucket`, `_sum`, `_count` for a
 * histogram), label values are quoted with `\\`, `\"` and `\n` escapes, and anything else throws.
 */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: { name: string; family: Family } | undefined;
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a line feed");
  for (const line of text.slice(0, -1).split("\n")) {
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (help) {
      if (families.has(help[1]!)) throw new Error(`family ${help[1]} twice`);
      current = { name: help[1]!, family: { help: help[2]!, type: "", samples: [] } };
      families.set(help[1]!, current.family);
      continue;
    }
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      if (current?.name !== type[1] || current.family.type !== "" || current.family.samples.length > 0) throw new Error(`TYPE out of place: ${line}`);
      current.family.type = type[2]!;
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample || !current || current.family.type === "") throw new Error(`bad line: ${line}`);
    const [, name, rawLabels, rawValue] = sample;
    const suffixes = current.family.type === "histogram" ? ["_bucket", "_sum", "_count"] : [""];
    if (!suffixes.some((s) => name === current!.name + s)) throw new Error(`sample ${name} outside its family ${current.name}`);
    const labels: Record<string, string> = {};
    if (rawLabels !== undefined) {
      const pair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
      let at = 0;
      while (at < rawLabels.length) {
        pair.lastIndex = at;
        const m = pair.exec(rawLabels);
        if (!m) throw new Error(`bad labels: ${rawLabels}`);
        labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
        at = pair.lastIndex;
      }
    }
    const value = rawValue === "+Inf" ? Infinity : rawValue === "-Inf" ? -Infinity : Number(rawValue);
    if (Number.isNaN(value) && rawValue !== "NaN") throw new Error(`bad value: ${line}`);
    current.family.samples.push({ name: name!, labels, value });
  }
  for (const [name, family] of families) if (family.type === "histogram") checkHistogram(name, family);
  return families;
}

/** Buckets ascending and cumulative, ending in `+Inf` equal to `_count`, with a `_sum`, per series. */
function checkHistogram(name: string, family: Family) {
  const series = new Map<string, Sample[]>();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(rest);
    if (!series.has(key)) series.set(key, []);
    series.get(key)!.push(s);
  }
  for (const samples of series.values()) {
    const buckets = samples.filter((s) => s.name === `${name}_bucket`);
    const bounds = buckets.map((b) => (b.labels.le === "+Inf" ? Infinity : Number(b.labels.le)));
    expect(bounds.at(-1)).toBe(Infinity);
    for (let i = 1; i < buckets.length; i++) {
      expect(bounds[i]).toBeGreaterThan(bounds[i - 1]!);
      expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    }
    const count = samples.find((s) => s.name === `${name}_count`);
    expect(samples.find((s) => s.name === `${name}_sum`)).toBeDefined();
    expect(count?.value).toBe(buckets.at(-1)!.value);
  }
}
