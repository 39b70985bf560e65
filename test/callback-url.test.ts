import { describe, expect, it } from "vitest";
import { createApp } from "../src/http/app.ts";
import { createPitstop } from "../src/index.ts";
import { assemble } from "../src/runtimes/compose.ts";
import { ConfigError, readConfig } from "../src/runtimes/config.ts";
import { memoryStore } from "../src/stores/memory.ts";
import { callbackChecker, checkCallbackUrl, isPrivateHost } from "../src/webhook/callback-url.ts";
import { jsonClient, viaApp } from "./support/http.ts";

/** Refused ranges: [range, first address, last address, the public neighbours just outside]. */
const RANGES: [string, string, string, string[]][] = [
  ["0.0.0.0/8 this network", "0.0.0.0", "0.255.255.255", ["1.0.0.0"]],
  ["10.0.0.0/8 private", "10.0.0.0", "10.255.255.255", ["9.255.255.255", "11.0.0.0"]],
  ["100.64.0.0/10 CGNAT", "100.64.0.0", "100.127.255.255", ["100.63.255.255", "100.128.0.0"]],
  ["127.0.0.0/8 loopback", "127.0.0.0", "127.255.255.255", ["126.255.255.255", "128.0.0.0"]],
  ["169.254.0.0/16 link-local", "169.254.0.0", "169.254.255.255", ["169.253.255.255", "169.255.0.0"]],
  ["172.16.0.0/12 private", "172.16.0.0", "172.31.255.255", ["172.15.255.255", "172.32.0.0"]],
  ["192.0.0.0/24 IETF protocol assignments", "192.0.0.0", "192.0.0.255", ["191.255.255.255", "192.0.1.0"]],
  ["192.0.2.0/24 TEST-NET-1", "192.0.2.0", "192.0.2.255", ["192.0.1.255", "192.0.3.0"]],
  ["192.88.99.0/24 6to4 relay", "192.88.99.0", "192.88.99.255", ["192.88.98.255", "192.88.100.0"]],
  ["192.168.0.0/16 private", "192.168.0.0", "192.168.255.255", ["192.167.255.255", "192.169.0.0"]],
  ["198.18.0.0/15 benchmarking", "198.18.0.0", "198.19.255.255", ["198.17.255.255", "198.20.0.0"]],
  ["198.51.100.0/24 TEST-NET-2", "198.51.100.0", "198.51.100.255", ["198.51.99.255", "198.51.101.0"]],
  ["203.0.113.0/24 TEST-NET-3", "203.0.113.0", "203.0.113.255", ["203.0.112.255", "203.0.114.0"]],
  ["224.0.0.0/4 multicast", "224.0.0.0", "239.255.255.255", ["223.255.255.255"]],
  ["240.0.0.0/4 reserved", "240.0.0.0", "255.255.255.254", []],
  ["255.255.255.255 broadcast", "255.255.255.255", "255.255.255.255", []],
  [":: unspecified", "[::]", "[::]", []],
  ["::1 loopback", "[::1]", "[::1]", []],
  ["::/96 IPv4-compatible (deprecated)", "[::0.0.0.2]", "[::255.255.255.255]", []],
  ["::ffff:0:0/96 IPv4-mapped, private IPv4", "[::ffff:0.0.0.0]", "[::ffff:127.255.255.255]", ["[::ffff:1.0.0.0]", "[::ffff:128.0.0.0]"]],
  ["::ffff:0:0:0/96 SIIT", "[::ffff:0:0.0.0.0]", "[::ffff:0:255.255.255.255]", []],
  ["64:ff9b::/96 NAT64", "[64:ff9b::0.0.0.0]", "[64:ff9b::255.255.255.255]", []],
  ["64:ff9b:1::/48 local NAT64", "[64:ff9b:1::]", "[64:ff9b:1:ffff:ffff:ffff:ffff:ffff]", []],
  ["100::/64 discard", "[100::]", "[100::ffff:ffff:ffff:ffff]", []],
  ["2001::/23 IETF protocol assignments (Teredo 2001::/32 included)", "[2001::]", "[2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff]", ["[2001:200::]"]],
  ["2001:db8::/32 documentation", "[2001:db8::]", "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]", ["[2001:db7:ffff:ffff:ffff:ffff:ffff:ffff]", "[2001:db9::]"]],
  ["2002::/16 6to4", "[2002::]", "[2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff]", ["[2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff]", "[2003::]"]],
  ["2620:4f:8000::/48 AS112", "[2620:4f:8000::]", "[2620:4f:8000:ffff:ffff:ffff:ffff:ffff]", ["[2620:4f:7fff:ffff:ffff:ffff:ffff:ffff]", "[2620:4f:8001::]"]],
  ["3fff::/20 documentation", "[3fff::]", "[3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff]", ["[3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff]", "[3fff:1000::]"]],
  ["outside 2000::/3 below", "[::1:0:0:0]", "[1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]", []],
  ["outside 2000::/3 above (5f00::/16 segment routing included)", "[4000::]", "[fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]", []],
  ["fc00::/7 unique local", "[fc00::]", "[fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]", []],
  ["fe80::/10 link-local", "[fe80::]", "[febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff]", []],
  ["fec0::/10 site-local (deprecated)", "[fec0::]", "[feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]", []],
  ["ff00::/8 multicast", "[ff00::]", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]", []],
];

const PRIVATE = [
  ...RANGES.flatMap(([, first, last]) => [`http://${first}/`, `http://${last}/`]),
  "http://127.0.0.1:8080/hook",
  "http://169.254.169.254/latest/meta-data/",
  "http://[::1]:8080/",
  "http://2130706433/",
  "http://0x7f.1/",
  "http://0/",
  "http://100.100.100.200/",
  "http://[::ffff:127.0.0.1]/",
  "http://[::ffff:a9fe:a9fe]/",
  "http://[::ffff:10.0.0.1]/",
  "http://[::ffff:0:127.0.0.1]/",
  "http://[fd00:ec2::254]/",
  "http://[64:ff9b::10.0.0.1]/",
  "http://[64:ff9b::8.8.8.8]/",
  "http://[64:ff9b:1::7f00:1]/",
  "http://[2002:7f00:1::]/",
  "http://[2002:808:808::]/",
  "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
  "http://[2001:db8::1]/",
  "http://[::8.8.8.8]/",
  "http://localhost:3000/",
  "http://LOCALHOST./",
  "http://api.localhost/",
  "http://a.b.localhost./",
  "https://metadata/",
  "http://Metadata./",
  "http://metadata.google.internal/computeMetadata/v1/",
  "http://METADATA.GOOGLE.INTERNAL./",
  "http://instance-data/latest/meta-data/",
  "http://instance-data./",
  "http://instance-data.ec2.internal/",
  "http://Instance-Data.EC2.Internal./",
];
const PUBLIC = [
  ...RANGES.flatMap(([, , , outside]) => outside.map((host) => `http://${host}/`)),
  "https://example.com/hook",
  "http://8.8.8.8/",
  "http://1.1.1.1/",
  "http://[2606:4700::1111]/",
  "http://[2001:4860:4860::8888]/",
  "http://[::ffff:8.8.8.8]/",
  "https://localhost.example.com/",
  "https://metadata.example.com/",
  "https://instance-data.example.com/",
];
const REFUSAL = /^callback host \S+ is a loopback, private, link-local, special-purpose or metadata address; .*PITSTOP_ALLOW_PRIVATE_CALLBACKS=1\)$/;

describe("callback URL policy", () => {
  it.each(PRIVATE)("refuses %s by default and allows it when private callbacks are allowed", (url) => {
    expect(() => checkCallbackUrl(url)).toThrow(
      expect.objectContaining({ code: "invalid_request", message: expect.stringMatching(REFUSAL), issues: [{ path: ["callback"], message: expect.stringMatching(REFUSAL) }] }),
    );
    expect(isPrivateHost(new URL(url).hostname)).toBe(true);
    expect(checkCallbackUrl(url, { allowPrivate: true })).toBe(new URL(url).href);
  });

  it.each(PUBLIC)("accepts %s", (url) => {
    expect(checkCallbackUrl(url)).toBe(new URL(url).href);
    expect(isPrivateHost(new URL(url).hostname)).toBe(false);
  });

  it("names the host in the message", () => {
    expect(() => checkCallbackUrl("http://[::ffff:0:127.0.0.1]/")).toThrow(
      "callback host [::ffff:0:7f00:1] is a loopback, private, link-local, special-purpose or metadata address; " +
        "such callbacks are refused unless private callbacks are allowed (PITSTOP_ALLOW_PRIVATE_CALLBACKS=1)",
    );
  });

  it("classifies hosts given without a URL: unbracketed IPv6, other IPv4 spellings, trailing dots", () => {
    for (const host of ["::1", "fe80::1%eth0", "0x7f.1", "127.0.0.1.", "LocalHost..", "[not an address]"]) expect(isPrivateHost(host)).toBe(true);
    for (const host of ["2606:4700::1111", "8.8.8.8", "example.com."]) expect(isPrivateHost(host)).toBe(false);
  });

  it("refuses in the engine before storing, and allows with private callbacks allowed", async () => {
    const url = "http://[64:ff9b:1::7f00:1]/hook";
    const pitstop = createPitstop({ checkCallback: callbackChecker() });
    await expect(pitstop.schedule({ message: { id: "m" }, callback: url })).rejects.toMatchObject({
      code: "invalid_request",
      message: expect.stringMatching(REFUSAL),
      issues: [{ path: ["callback"] }],
    });
    expect(await pitstop.get("m")).toBeUndefined();
    const allowing = createPitstop({ checkCallback: callbackChecker({ allowPrivate: true }) });
    expect((await allowing.schedule({ message: { id: "m" }, callback: url })).callback).toBe(url);
    expect(await allowing.get("m")).toMatchObject({ callback: url });
  });

  it.each([
    ["ftp://example.com/x", /absolute http\(s\) URL/],
    ["/relative", /absolute http\(s\) URL/],
    ["https://user:secret@example.com/", /credentials/],
  ])("refuses %s whatever the policy", async (url, message) => {
    for (const pitstop of [createPitstop({ checkCallback: callbackChecker() }), createPitstop({ checkCallback: callbackChecker({ allowPrivate: true }) })]) {
      await expect(pitstop.schedule({ message: { id: "m" }, callback: url })).rejects.toMatchObject({
        code: "invalid_request",
        message: expect.stringMatching(message),
        issues: [{ path: ["callback"] }],
      });
      expect(await pitstop.get("m")).toBeUndefined();
    }
  });

  it("answers 400 invalid_request over HTTP for a private callback", async () => {
    const call = jsonClient("", { transport: viaApp(createApp(createPitstop({ checkCallback: callbackChecker() }))) });
    const response = await call("POST", "/messages", { message: { id: "m" }, callback: "http://[2002:7f00:1::]:9/hook" });
    expect(response.status).toBe(400);
    expect(response.json).toMatchObject({ error: "invalid_request", issues: [{ path: ["callback"] }] });
    expect((await call("GET", "/messages/m")).status).toBe(404);
  });
});

describe("webhook configuration", () => {
  it("has defaults", () => {
    const config = readConfig({});
    expect(config).toMatchObject({ allowPrivateCallbacks: false, webhook: { timeoutMs: 30_000, concurrency: 16 } });
    expect(config.callbackUrl).toBeUndefined();
    expect(config.webhook.signingSecret).toBeUndefined();
  });

  it("reads every variable and turns them into engine options", async () => {
    const config = readConfig({
      PITSTOP_CALLBACK_URL: "http://localhost:9000/hook",
      PITSTOP_SIGNING_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      PITSTOP_ALLOW_PRIVATE_CALLBACKS: "1",
      PITSTOP_WEBHOOK_TIMEOUT: "PT5S",
      PITSTOP_WEBHOOK_CONCURRENCY: "4",
    });
    expect(config).toMatchObject({
      callbackUrl: "http://localhost:9000/hook",
      allowPrivateCallbacks: true,
      webhook: { signingSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", timeoutMs: 5000, concurrency: 4 },
    });
    expect(readConfig({ PITSTOP_WEBHOOK_TIMEOUT: "2500" }).webhook.timeoutMs).toBe(2500);
    const { pitstop } = assemble(config, memoryStore());
    expect((await pitstop.schedule({ message: {} })).callback).toBe("http://localhost:9000/hook");
    expect((await pitstop.schedule({ message: {}, callback: "http://10.1.2.3/" })).callback).toBe("http://10.1.2.3/");
  });

  it.each([
    ["PITSTOP_CALLBACK_URL", "ftp://example.com/"],
    ["PITSTOP_CALLBACK_URL", "not a url"],
    ["PITSTOP_SIGNING_SECRET", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    ["PITSTOP_SIGNING_SECRET", "whsec_%%%"],
    ["PITSTOP_SIGNING_SECRET", "whsec_c2hvcnQ="],
    ["PITSTOP_ALLOW_PRIVATE_CALLBACKS", "maybe"],
    ["PITSTOP_WEBHOOK_TIMEOUT", "soon"],
    ["PITSTOP_WEBHOOK_TIMEOUT", "P1M"],
    ["PITSTOP_WEBHOOK_CONCURRENCY", "0"],
    ["PITSTOP_WEBHOOK_CONCURRENCY", "lots"],
  ])("refuses %s=%s naming the variable", (key, value) => {
    expect(() => readConfig({ [key]: value })).toThrow(ConfigError);
    expect(() => readConfig({ [key]: value })).toThrow(new RegExp(`^${key}`));
  });

  it("never echoes the signing secret in an error", () => {
    expect(() => readConfig({ PITSTOP_SIGNING_SECRET: "whsec_c2hvcnQ=" })).not.toThrow(/c2hvcnQ/);
  });
});
