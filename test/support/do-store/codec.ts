/** JSON that keeps Maps and `undefined` arguments, for the store proxy and its test worker. */
export const encode = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (v instanceof Map ? { $map: [...v] } : v === undefined ? { $undefined: true } : v));

export const decode = <T>(text: string): T =>
  JSON.parse(text, (_key, v: unknown) => {
    if (!v || typeof v !== "object") return v;
    if ("$map" in v) return new Map((v as { $map: [unknown, unknown][] }).$map);
    return "$undefined" in v ? undefined : v;
  }) as T;
