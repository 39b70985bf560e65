/**
 * The webhook bench's receiver, run in a worker thread so it does not share the sender's event
 * loop: the shared test receiver, answering 204 and posting each arrival's time and `at`. Posts
 * `{ url }` once listening; any message from the parent closes it.
 */
import { parentPort } from "node:worker_threads";
import { startReceiver } from "../test/support/receiver.ts";

const receiver = await startReceiver();
receiver.handler = (request, res) => {
  res.writeHead(204).end();
  parentPort!.postMessage({ time: request.time, at: Date.parse(JSON.parse(request.body).at) });
};
parentPort!.once("message", () => void receiver.close().then(() => process.exit(0)));
parentPort!.postMessage({ url: receiver.url() });
