import { invalid } from "../errors.ts";

/** Options of {@link checkCallbackUrl}. */
export interface CallbackPolicy {
  /** Accept loopback, private, link-local and metadata hosts (local development, tests). @default false */
  allowPrivate?: boolean;
}

/** Refused IPv4 ranges as [network, prefix length]. */
const PRIVATE_V4: [string, number][] = [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT (also Alibaba's metadata 100.100.100.200)
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, AWS/GCP/Azure metadata 169.254.169.254
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
];
const PRIVATE_NAMES = new Set(["localhost", "metadata.google.internal", "metadata"]);

const v4Number = (dotted: string) => dotted.split(".").reduce((n, part) => n * 256 + Number(part), 0);
const V4_RANGES = PRIVATE_V4.map(([network, bits]) => ({ network: v4Number(network), size: 2 ** (32 - bits) }));

function isPrivateV4(address: number): boolean {
  return V4_RANGES.some(({ network, size }) => address >= network && address < network + size);
}

/** The eight 16-bit words of an IPv6 address (without brackets), or undefined. */
function ipv6Words(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const words = (part: string) =>
    part === ""
      ? []
      : part.split(":").flatMap((group) => {
          if (!group.includes(".")) return [parseInt(group, 16)];
          const v4 = v4Number(group);
          return [Math.floor(v4 / 65536), v4 % 65536];
        });
  const head = words(halves[0]);
  const tail = halves.length === 2 ? words(halves[1]) : [];
  const zeros = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const all = [...head, ...Array<number>(Math.max(0, zeros)).fill(0), ...tail];
  return all.length === 8 && all.every((w) => w >= 0 && w <= 0xffff) ? all : undefined;
}

function isPrivateV6(w: number[]): boolean {
  const embeddedV4 = w[6] * 65536 + w[7];
  const zeroUpTo = (n: number) => w.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(6)) return isPrivateV4(embeddedV4); // ::, ::1 and IPv4-compatible ::a.b.c.d
  if (zeroUpTo(5) && w[5] === 0xffff) return isPrivateV4(embeddedV4); // IPv4-mapped ::ffff:a.b.c.d
  if (w[0] === 0x64 && w[1] === 0xff9b && w.slice(2, 6).every((x) => x === 0)) return isPrivateV4(embeddedV4); // NAT64
  return (
    (w[0] & 0xfe00) === 0xfc00 || // unique local fc00::/7, AWS metadata fd00:ec2::254
    (w[0] & 0xffc0) === 0xfe80 || // link-local fe80::/10
    (w[0] & 0xffc0) === 0xfec0 // deprecated site-local fec0::/10
  );
}

/** True for a host (as `URL.hostname` gives it) that names this machine, a private network or a metadata service. */
export function isPrivateHost(hostname: string): boolean {
  const host = hostname.replace(/\.$/, "");
  if (host.startsWith("[")) {
    const words = ipv6Words(host.slice(1, -1));
    return words === undefined || isPrivateV6(words);
  }
  // The URL parser already turned every IPv4 spelling (0x7f.1, 2130706433, 127.1) into dotted decimal.
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return isPrivateV4(v4Number(host));
  return PRIVATE_NAMES.has(host) || host.endsWith(".localhost");
}

/**
 * Checks a callback URL and returns it normalized: an absolute http(s) URL without credentials
 * and, unless `allowPrivate`, whose host is not loopback, private (10/8, 172.16/12, 192.168/16,
 * fc00::/7), link-local, CGNAT, 0.0.0.0/8, `localhost`, `*.localhost`, or a cloud metadata
 * address, IPv4-mapped IPv6 forms included.
 *
 * Only the literal host is checked, never what a name resolves to (Workers cannot resolve names
 * before a fetch): a public name pointing at a private address passes.
 * @throws PitstopError `invalid_request` on the `callback` field.
 */
export function checkCallbackUrl(url: string, policy: CallbackPolicy = {}): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid("callback must be an absolute http(s) URL", ["callback"]);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw invalid("callback must be an absolute http(s) URL", ["callback"]);
  }
  if (parsed.username !== "" || parsed.password !== "") {
    throw invalid("callback must not contain credentials (fetch refuses them)", ["callback"]);
  }
  if (!policy.allowPrivate && isPrivateHost(parsed.hostname)) {
    throw invalid(
      `callback host ${parsed.hostname} is a loopback, private, link-local or metadata address; ` +
        "such callbacks are refused unless private callbacks are allowed (PITSTOP_ALLOW_PRIVATE_CALLBACKS=1)",
      ["callback"],
    );
  }
  return parsed.href;
}

/** A `checkCallback` for `createPitstop` applying `policy`. */
export function callbackChecker(policy: CallbackPolicy = {}): (url: string) => string {
  return (url) => checkCallbackUrl(url, policy);
}
