// Probot 13 no-op GitHub App for the webhook intake benchmark (ops/bench/webhooks.sh).
// Probot verifies X-Hub-Signature-256 with WEBHOOK_SECRET, parses the payload and dispatches it
// to the handler below, which does nothing. Env: PORT, WEBHOOK_SECRET, APP_ID, PRIVATE_KEY_PATH.
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { Probot, createNodeMiddleware } from "probot";

const probot = new Probot({
  appId: process.env.APP_ID ?? "1",
  privateKey: readFileSync(process.env.PRIVATE_KEY_PATH, "utf8"),
  secret: process.env.WEBHOOK_SECRET,
  logLevel: process.env.LOG_LEVEL ?? "warn",
});
const app = (a) => {
  a.on("push", async () => {});
};
const middleware = createNodeMiddleware(app, { probot, webhooksPath: "/github/webhook" });
const server = createServer((req, res) => {
  middleware(req, res, () => {
    res.writeHead(404);
    res.end();
  });
});
const port = Number(process.env.PORT ?? 3000);
server.listen(port, "127.0.0.1", () => console.log(`probot no-op app on 127.0.0.1:${port}`));
