import ipaddr from "ipaddr.js";
import { invalid } from "../errors.ts";

/** Options of {@link checkCallbackUrl}. */
export interface CallbackPolicy {
  /** Accept loopback, private, link-local, special-purpose and metadata hosts (local development, tests). @default false */
  allowPrivate?: boolean;
}

/** Names of this machine and of cloud metadata services (GCP, AWS), compared without a trailing dot. */
const PRIVATE_NAMES = new Set(["localhost", "metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"]);
/** IANA's global unicast space: every IPv6 address outside it is special-purpose or unallocated. */
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR("2000::/3");

/**
 * True for plain global unicast: an IPv4 address in none of ipaddr.js's special ranges, or an
 * IPv6 address in 2000::/3 and in none of them. IPv6 ranges that embed an IPv4 address (6to4,
 * Teredo, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, SIIT ::ffff:0:0:0/96, the deprecated
 * IPv4-compatible ::/96) are refused whatever address they embed: a relay or translator may
 * deliver them to a private host. IPv4-mapped ::ffff:0:0/96 is no tunnel but the IPv4 address
 * itself, so it is judged as that address.
 */
function isGlobalUnicast(address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  if (address.range() !== "unicast") return false;
  return address instanceof ipaddr.IPv4 || address.match(GLOBAL_UNICAST_V6);
}

/**
 * True for a host (as `URL.hostname` gives it; an IPv6 address bracketed or not) that is not a
 * plain global unicast address, or that names this machine (`localhost`, `*.localhost`) or a
 * cloud metadata service (`metadata`, `metadata.google.internal`, `instance-data`,
 * `instance-data.ec2.internal`), in any case and with or without trailing dots.
 */
export function isPrivateHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.+$/, "");
  const literal = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (ipaddr.isValid(literal)) return !isGlobalUnicast(ipaddr.process(literal));
  if (host.startsWith("[")) return true;
  return PRIVATE_NAMES.has(host) || host.endsWith(".localhost");
}

/**
 * Checks a callback URL and returns it normalized: an absolute http(s) URL without credentials
 * and, unless `allowPrivate`, whose host passes {@link isPrivateHost}: loopback, private,
 * link-local, CGNAT, multicast, broadcast, documentation, benchmarking and other reserved
 * addresses are refused, as are 6to4, Teredo and NAT64 addresses, `localhost`, `*.localhost` and
 * cloud metadata names. IPv4 spellings (0x7f.1, 2130706433) reach it already normalized by the
 * URL parser.
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
      `callback host ${parsed.hostname} is a loopback, private, link-local, special-purpose or metadata address; ` +
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
