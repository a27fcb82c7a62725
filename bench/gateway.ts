// bench/gateway: what the model gateway adds, measured against the same scripted upstream
// reached directly, in one run. The upstream runs in its own process (this file, started with
// --upstream); the client and the gateway share this one, so every cycle the gateway spends is
// a cycle the client does not get.
//   - added latency per request (p50, p99): small non-streamed Messages calls, and small streams;
//   - streamed throughput: one long Anthropic stream (16-character deltas), bytes per second;
//   - 64 concurrent streams: every byte and every usage arrives, nothing is left reserved.
// Run with `npm run bench -- gateway`.
import { spawn } from "node:child_process";
import { Agent, request } from "node:http";
import { createInterface } from "node:readline";
import { createBudget, normalizeUsage, usageOnly } from "@bulkhead/budget";
import { createGateway } from "@bulkhead/gateway";
import { createScriptedUpstream } from "@bulkhead/test-utils";
import { begin, median, report, RUNS, toSample } from "./lib/bench-helper.js";

const LATENCY_REQUESTS = Number(process.env.BENCH_LATENCY_REQUESTS ?? 400);
const STREAM_DELTAS = Number(process.env.BENCH_STREAM_DELTAS ?? 20_000);
const CONCURRENT = 64;
const MODEL = "claude-sonnet-4-5";
const KEY = "sk-ant-bench-key-0000";

interface Answer {
  status: number;
  bytes: number;
  text: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function post(base: string, headers: Record<string, string>, body: Record<string, unknown>, keepText = false): Promise<Answer> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const outgoing = request(
      `${base}/v1/messages`,
      {
        method: "POST",
        agent,
        headers: {
          ...headers,
          "content-type": "application/json",
          "anthropic-version": "2023-06-01",
          "content-length": String(Buffer.byteLength(payload)),
        },
      },
      (response) => {
        let bytes = 0;
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => {
          bytes += chunk.length;
          if (keepText) chunks.push(chunk);
        });
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, bytes, text: keepText ? Buffer.concat(chunks).toString() : "" }),
        );
        response.on("error", reject);
      },
    );
    outgoing.on("error", reject);
    outgoing.end(payload);
  });
}

const percentile = (values: number[], share: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * share))]!;
const ms = (value: number) => `${value.toFixed(3)} ms`;

async function latency(base: string, headers: Record<string, string>, stream: boolean): Promise<number[]> {
  const times: number[] = [];
  for (let index = 0; index < LATENCY_REQUESTS; index++) {
    const started = performance.now();
    const answer = await post(base, headers, {
      model: MODEL,
      max_tokens: 64,
      stream,
      bench_deltas: 4,
      messages: [{ role: "user", content: "hi" }],
    });
    times.push(performance.now() - started);
    if (answer.status !== 200) throw new Error(`status ${answer.status}`);
  }
  return times;
}

/** One long stream: its wall time in ms (its bytes are the same on both paths). */
async function throughput(base: string, headers: Record<string, string>): Promise<number> {
  const started = performance.now();
  const answer = await post(base, headers, {
    model: MODEL,
    max_tokens: 1_000_000,
    stream: true,
    bench_deltas: STREAM_DELTAS,
    messages: [{ role: "user", content: "go" }],
  });
  const elapsed = performance.now() - started;
  if (answer.status !== 200) throw new Error(`status ${answer.status}`);
  return elapsed;
}

/** Starts this file in a child process in one role and reads the first line it prints. */
async function child(role: string, ...args: string[]) {
  const started = spawn(
    process.execPath,
    [
      ...process.execArgv,
      ...(role === "--gateway" && process.env.BENCH_PROFILE ? ["--cpu-prof", "--cpu-prof-dir", process.env.BENCH_PROFILE] : []),
      import.meta.filename,
      role,
      ...args,
    ],
    {
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  const lines = createInterface({ input: started.stdout! });
  const next = () => new Promise<string>((resolve) => lines.once("line", resolve));
  return { process: started, first: await next(), next };
}

async function main(): Promise<void> {
  const upstream = await child("--upstream");
  const upstreamUrl = upstream.first;
  const gateway = await child("--gateway", upstreamUrl);
  const { url: gatewayUrl, token } = JSON.parse(gateway.first) as { url: string; token: string };
  const direct = { "x-api-key": KEY };
  const through = { "x-api-key": token };

  // Warm both paths (connections, tiktoken, JIT).
  await latency(upstreamUrl, direct, false);
  await latency(gatewayUrl, through, false);

  // Through bench/lib/bench-helper: the load before and after, RUNS rounds (≥ 3), each round the
  // direct path then the gateway, min and median of the rounds, ratios to the direct path.
  const mark = begin(
    `bench/gateway: ${RUNS} rounds; per round the p50 of ${LATENCY_REQUESTS} sequential requests, and one ${STREAM_DELTAS}-delta stream; then ${CONCURRENT} concurrent streams`,
  );
  const samples = [];
  const notes: string[] = [];
  for (const stream of [false, true]) {
    const directP50: number[] = [];
    const gatewayP50: number[] = [];
    const directAll: number[] = [];
    const gatewayAll: number[] = [];
    for (let round = 0; round < RUNS; round++) {
      const directTimes = await latency(upstreamUrl, direct, stream);
      const gatewayTimes = await latency(gatewayUrl, through, stream);
      directP50.push(median(directTimes));
      gatewayP50.push(median(gatewayTimes));
      directAll.push(...directTimes);
      gatewayAll.push(...gatewayTimes);
    }
    const label = stream ? "small stream" : "non-streamed";
    samples.push(toSample(`${label}: direct to the upstream, p50 per request`, directP50));
    samples.push(toSample(`${label}: through the gateway, p50 per request`, gatewayP50));
    notes.push(
      `${label}: added p50 ${ms(median(gatewayAll) - median(directAll))}, p99 direct ${ms(percentile(directAll, 0.99))} / gateway ${ms(percentile(gatewayAll, 0.99))} over all ${directAll.length} requests per side`,
    );
  }
  report(mark, samples.slice(0, 2), { baseline: samples[0]!.label, notes: notes.slice(0, 1) });
  report(mark, samples.slice(2), { baseline: samples[2]!.label, notes: notes.slice(1) });

  const directStream: number[] = [];
  const gatewayStream: number[] = [];
  const cpu = async () => {
    gateway.process.stdin!.write("cpu\n");
    return Number(await gateway.next());
  };
  let gatewayCpuMicros = 0;
  for (let round = 0; round < RUNS; round++) {
    directStream.push(await throughput(upstreamUrl, direct));
    const before = await cpu();
    gatewayStream.push(await throughput(gatewayUrl, through));
    gatewayCpuMicros += (await cpu()) - before;
  }
  const streamBytes = (
    await post(upstreamUrl, direct, { model: MODEL, max_tokens: 1_000_000, stream: true, bench_deltas: STREAM_DELTAS, messages: [] })
  ).bytes;
  const rate = (sample: { median: number }) => `${(streamBytes / 1e3 / sample.median).toFixed(1)} MB/s`;
  report(
    mark,
    [toSample("one long stream, direct to the upstream", directStream), toSample("one long stream, through the gateway", gatewayStream)],
    {
      extra: { "MB/s (median)": rate },
      notes: [
        `stream of ${(streamBytes / 1e6).toFixed(1)} MB; the gateway process's CPU: ${(gatewayCpuMicros / 1000 / RUNS).toFixed(0)} ms per stream = ${((streamBytes * RUNS) / gatewayCpuMicros).toFixed(1)} MB/s per CPU core`,
      ],
    },
  );

  // 64 concurrent streams through the gateway: every one whole, every usage booked exactly.
  gateway.process.stdin!.write("mark\n");
  await gateway.next();
  const started = performance.now();
  const answers = await Promise.all(
    Array.from({ length: CONCURRENT }, () =>
      post(
        gatewayUrl,
        through,
        { model: MODEL, max_tokens: 100_000, stream: true, bench_deltas: 500, messages: [{ role: "user", content: "go" }] },
        true,
      ),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  gateway.process.stdin!.write("report\n");
  const booked = JSON.parse(await gateway.next()) as { calls: number; exact: number; reserved: number };
  const whole = answers.filter(
    (answer) =>
      answer.status === 200 &&
      answer.text.endsWith('data: {"type":"message_stop"}\n\n') &&
      (answer.text.match(/text_delta/g) ?? []).length === 500,
  );
  console.log(
    `${CONCURRENT} concurrent streams: ${whole.length}/${CONCURRENT} whole, ${booked.exact}/${booked.calls} booked exactly, ${booked.reserved} tokens left reserved, ${(seconds * 1000).toFixed(0)} ms`,
  );
  agent.destroy();
  gateway.process.stdin!.end();
  upstream.process.stdin!.end();
  if (whole.length !== CONCURRENT || booked.exact !== CONCURRENT || booked.calls !== CONCURRENT || booked.reserved !== 0)
    process.exitCode = 1;
}

/** The gateway process: one session; on "mark" it notes the audit length, on "report" it checks the calls since. */
async function serveGateway(upstreamUrl: string): Promise<void> {
  const gateway = await createGateway({ upstreams: { anthropic: upstreamUrl }, credentials: { anthropic: { apiKey: KEY } }, env: {} });
  // Limits on every kind, so every call runs the whole path: count, reserve, clamp, meter, settle, price.
  const budget = createBudget({ id: "bench", limits: { contextRead: 1e12, generation: 1e12, toolCalls: 1e12, sessionTotal: 1e12 } });
  const session = gateway.addSession({ sessionId: "bench", budget });
  console.log(JSON.stringify({ url: gateway.url, token: session.token }));
  const expected = JSON.stringify(
    usageOnly(normalizeUsage("anthropic", { input_tokens: 20, cache_read_input_tokens: 100, output_tokens: 2_000 })),
  );
  let mark = 0;
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === "mark") {
      mark = gateway.audit("bench").length;
      console.log("marked");
    } else if (line === "cpu") {
      const usage = process.cpuUsage();
      console.log(String(usage.user + usage.system));
    } else if (line === "report") {
      const records = gateway.audit("bench").slice(mark);
      const exact = records.filter((record) => record.outcome === "ok" && JSON.stringify(record.usage) === expected).length;
      console.log(JSON.stringify({ calls: records.length, exact, reserved: budget.reserved("sessionTotal") }));
    }
  }
  await gateway.close();
}

if (process.argv.includes("--upstream")) {
  // The upstream process: the body's `bench_deltas` says how many text deltas to stream.
  const upstream = await createScriptedUpstream({
    respond: (recorded) => {
      const deltas = Number(recorded.body?.bench_deltas ?? 4);
      return {
        text: Array.from({ length: deltas }, (_, index) => `tok${String(index).padStart(8, "0")}  ,`),
        usage: { uncachedInputTokens: 20, cacheReadTokens: 100, outputTokens: deltas * 4 },
      };
    },
  });
  console.log(upstream.url);
  process.stdin.resume();
  process.stdin.once("end", () => void upstream.close().then(() => process.exit(0)));
} else if (process.argv.includes("--gateway")) {
  await serveGateway(process.argv[process.argv.indexOf("--gateway") + 1]!);
} else {
  await main();
}
