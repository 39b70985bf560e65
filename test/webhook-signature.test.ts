import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { signWebhook, verifyWebhook } from "../src/index.ts";

// Interoperability with the Standard Webhooks reference library (npm `standardwebhooks`), both ways.
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET = `whsec_${btoa("a different secret of 32 bytes..")}`;
// Shaped like the deliverer's: `webhook-id` is `<id>:<at in epoch ms>`, the body is UTF-8 JSON.
const ID = "invoice-42:1767225600000";
const BODY = JSON.stringify({ id: "invoice-42", message: { total: 12.5, note: "café ✓" }, attempt: 1, at: "2026-01-01T00:00:00.000Z" });

interface Signed {
  headers: Record<string, string>;
  body: string;
}

/** Signs `BODY` as `ID` at `timestamp` (unix seconds), returning the `webhook-signature` value. */
type Signer = (secret: string, timestamp: number) => Promise<string>;

const SIGNERS: [string, Signer][] = [
  ["standardwebhooks", async (secret, timestamp) => new Webhook(secret).sign(ID, new Date(timestamp * 1000), BODY)],
  ["signWebhook", (secret, timestamp) => signWebhook({ secret, webhookId: ID, timestamp, body: BODY })],
];

const nowSeconds = () => Math.floor(Date.now() / 1000);

async function signed(sign: Signer, { secret = SECRET, timestamp = nowSeconds() } = {}): Promise<Signed> {
  const signature = await sign(secret, timestamp);
  return { headers: { "webhook-id": ID, "webhook-timestamp": String(timestamp), "webhook-signature": signature }, body: BODY };
}

const withSignature = (message: Signed, signature: string): Signed => ({ ...message, headers: { ...message.headers, "webhook-signature": signature } });

/** The reference verifier as a boolean: true when it returns, false when it refuses. */
function theirVerify({ headers, body }: Signed): boolean {
  try {
    new Webhook(SECRET).verify(body, headers);
    return true;
  } catch (error) {
    if (error instanceof WebhookVerificationError) return false;
    throw error;
  }
}

const ourVerify = ({ headers, body }: Signed) => verifyWebhook({ secret: SECRET, headers, body });

describe("Standard Webhooks interoperability", () => {
  it("signs exactly as the reference library does", async () => {
    const timestamp = 1767225600;
    expect(await signWebhook({ secret: SECRET, webhookId: ID, timestamp, body: BODY })).toBe(new Webhook(SECRET).sign(ID, new Date(timestamp * 1000), BODY));
  });

  it("verifies what the reference library signs", async () => {
    const message = await signed(SIGNERS[0][1]);
    expect(await ourVerify(message)).toBe(true);
    expect(await verifyWebhook({ secret: SECRET, headers: new Headers(message.headers), body: new TextEncoder().encode(BODY) })).toBe(true);
  });

  it("signs what the reference library verifies", async () => {
    const message = await signed(SIGNERS[1][1]);
    expect(new Webhook(SECRET).verify(message.body, message.headers)).toEqual(JSON.parse(BODY));
  });

  const REFUSALS: [string, (sign: Signer) => Promise<Signed>][] = [
    ["a tampered body", async (sign) => ({ ...(await signed(sign)), body: BODY.replace("12.5", "125") })],
    ["a wrong secret", (sign) => signed(sign, { secret: OTHER_SECRET })],
    ["a stale timestamp", (sign) => signed(sign, { timestamp: nowSeconds() - 3600 })],
    [
      "a timestamp changed after signing",
      async (sign) => {
        const message = await signed(sign, { timestamp: nowSeconds() - 60 });
        return { ...message, headers: { ...message.headers, "webhook-timestamp": String(nowSeconds()) } };
      },
    ],
    ["an empty v1 signature", async (sign) => withSignature(await signed(sign), "v1,")],
    [
      "a truncated signature",
      async (sign) => {
        const message = await signed(sign);
        return withSignature(message, message.headers["webhook-signature"].slice(0, -4));
      },
    ],
    [
      "a signature without its base64 padding",
      async (sign) => {
        const message = await signed(sign);
        return withSignature(message, message.headers["webhook-signature"].replace(/=+$/, ""));
      },
    ],
    [
      "only other signature versions",
      async (sign) => {
        const message = await signed(sign);
        const value = message.headers["webhook-signature"].slice("v1,".length);
        return withSignature(message, `v1a,${value} v2,${value} V1,${value}`);
      },
    ],
  ];

  describe.each(SIGNERS)("signed by %s", (_, sign) => {
    it("is accepted by both verifiers as signed", async () => {
      const message = await signed(sign);
      expect({ ours: await ourVerify(message), theirs: theirVerify(message) }).toEqual({ ours: true, theirs: true });
    });

    it.each(REFUSALS)("is refused by both verifiers with %s", async (_, make) => {
      const message = await make(sign);
      expect({ ours: await ourVerify(message), theirs: theirVerify(message) }).toEqual({ ours: false, theirs: false });
    });
  });
});
