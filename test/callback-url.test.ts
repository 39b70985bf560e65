import { describe, expect, it } from "vitest";
import { createApp } from "../src/app.ts";
import { callbackChecker, checkCallbackUrl } from "../src/callback-url.ts";
import { ConfigError, engineOptions, readConfig } from "../src/config.ts";
import { createPitstop } from "../src/pitstop.ts";
import { jsonClient, viaApp } from "./support/http.ts";

const PRIVATE = [
  "http://127.0.0.1:8080/hook",
  "http://10.0.0.1/",
  "http://169.254.169.254/latest/meta-data/",
  "http://[::1]:8080/",
  "http://localhost:3000/",
  "http://LOCALHOST./",
  "http://api.localhost/",
  "http://2130706433/",
  "http://0x7f.1/",
  "http://0/",
  "http://100.64.0.1/",
  "http://100.100.100.200/",
  "http://172.16.0.1/",
  "http://172.31.255.255/",
  "http://192.168.1.1/",
  "http://[::ffff:127.0.0.1]/",
  "http://[::ffff:a9fe:a9fe]/",
  "http://[::]/",
  "http://[fd00:ec2::254]/",
  "http://[fc00::1]/",
  "http://[fe80::1]/",
  "http://[64:ff9b::10.0.0.1]/",
  "http://metadata.google.internal/computeMetadata/v1/",
  "https://metadata/",
];
const PUBLIC = [
  "https://example.com/hook",
  "http://8.8.8.8/",
  "http://172.32.0.1/",
  "http://100.128.0.1/",
  "http://11.0.0.1/",
  "http://[2001:db8::1]/",
  "http://[::ffff:8.8.8.8]/",
  "https://localhost.example.com/",
];

describe("callback URL policy", () => {
  it.each(PRIVATE)("refuses %s by default and allows it when private callbacks are allowed", async (url) => {
    const pitstop = createPitstop();
    await expect(pitstop.schedule({ message: { id: "m" }, callback: url })).rejects.toMatchObject({
      code: "invalid_request",
      message: expect.stringMatching(/loopback, private, link-local or metadata address.*PITSTOP_ALLOW_PRIVATE_CALLBACKS=1/),
      issues: [{ path: ["callback"] }],
    });
    expect(await pitstop.get("m")).toBeUndefined();
    const allowing = createPitstop({ checkCallback: callbackChecker({ allowPrivate: true }) });
    expect((await allowing.schedule({ message: { id: "m" }, callback: url })).callback).toBe(new URL(url).href);
    expect(await allowing.get("m")).toMatchObject({ callback: new URL(url).href });
  });

  it.each(PUBLIC)("accepts %s", (url) => {
    expect(checkCallbackUrl(url)).toBe(new URL(url).href);
  });

  it.each([
    ["ftp://example.com/x", /absolute http\(s\) URL/],
    ["/relative", /absolute http\(s\) URL/],
    ["https://user:secret@example.com/", /credentials/],
  ])("refuses %s whatever the policy", async (url, message) => {
    for (const pitstop of [createPitstop(), createPitstop({ checkCallback: callbackChecker({ allowPrivate: true }) })]) {
      await expect(pitstop.schedule({ message: { id: "m" }, callback: url })).rejects.toMatchObject({ code: "invalid_request", message: expect.stringMatching(message) });
      expect(await pitstop.get("m")).toBeUndefined();
    }
  });

  it("answers 400 invalid_request over HTTP for a private callback", async () => {
    const call = jsonClient("", { transport: viaApp(createApp(createPitstop())) });
    const response = await call("POST", "/messages", { message: { id: "m" }, callback: "http://127.0.0.1:9/hook" });
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
    const pitstop = createPitstop(engineOptions(config));
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
