import { chmodSync } from "node:fs";
import { createServer, request, type Server } from "node:http";

/**
 * Stands in for the model gateway until it is merged: HTTP on a unix socket, checks the session
 * token, and sends the real key upstream in its place. The box only ever holds the token.
 */
export async function credentialSwap(socketPath: string, upstream: string, { token, apiKey }: { token: string; apiKey: string }) {
  const seen: string[] = [];
  const server: Server = createServer((incoming, answer) => {
    // Anthropic clients send x-api-key; OpenAI clients a bearer token.
    const key = String(incoming.headers["x-api-key"] ?? incoming.headers.authorization?.replace(/^Bearer /, "") ?? "");
    seen.push(key);
    if (key !== token) {
      answer.writeHead(401, { "content-type": "application/json" });
      answer.end(JSON.stringify({ type: "error", error: { type: "authentication_error", message: "wrong session token" } }));
      return;
    }
    const target = new URL(incoming.url ?? "/", upstream);
    const outgoing = request(
      target,
      {
        method: incoming.method,
        headers: {
          ...incoming.headers,
          host: target.host,
          ...(incoming.headers["x-api-key"] !== undefined ? { "x-api-key": apiKey } : { authorization: `Bearer ${apiKey}` }),
        },
      },
      (response) => {
        answer.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(answer);
      },
    );
    outgoing.on("error", () => answer.destroy());
    incoming.pipe(outgoing);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  chmodSync(socketPath, 0o666);
  return { server, seen };
}
