import type { AgentEvent, AgentProvider } from "@bulkhead/core";
import { InvalidArgumentError } from "@bulkhead/core";

/** A job as `@bulkhead/sandbox` runs it (structural: this package does not import the sandbox). */
export interface AgentJob {
  readonly id: string;
  logs(options?: { follow?: boolean }): AsyncGenerator<string>;
  wait(): Promise<{ exitCode: number }>;
  kill(): Promise<void>;
}

/** The parts of a sandbox `Session` an agent run needs. */
export interface AgentSession {
  readonly id: string;
  readonly state: { readonly gateway?: { readonly baseUrl: string } };
  exec(command: readonly string[], options?: { stdin?: string }): Promise<{ exitCode: number | null; stderr: string }>;
  inject(job: { command?: string[]; env?: Record<string, string>; id?: string }): Promise<AgentJob>;
  job(id: string): AgentJob;
}

export interface StartAgentOptions {
  provider: AgentProvider;
  /** The task prompt; no prompt, no run. */
  prompt: string;
  /** The session's gateway token, and its base URL in the box. @default baseUrl: the session's gateway route */
  gateway: { token: string; baseUrl?: string };
  /** A job id of an earlier run in this session: its agent conversation is continued. */
  resume?: string;
  /** A model, when not the provider's default. */
  model?: string;
  /** The new job's id. @default generated */
  jobId?: string;
}

/** A started agent run: its job, and its output as events. */
export interface AgentRun {
  readonly job: AgentJob;
  readonly provider: AgentProvider;
  /** The agent conversation this run continues, when it resumes one. */
  readonly resumed?: string;
  /** The run's events as they are written, until the job ends. */
  events(): AsyncGenerator<AgentEvent>;
}

/** Parses a stream of output chunks with a provider's parser. */
export async function* agentEvents(chunks: AsyncIterable<string>, provider: AgentProvider): AsyncGenerator<AgentEvent> {
  const parser = provider.createParser();
  for await (const chunk of chunks) yield* parser.push(chunk);
  yield* parser.end();
}

/** The agent conversation id an earlier job recorded (its last `init` or `result` event). */
export async function agentSessionIdOf(job: AgentJob, provider: AgentProvider): Promise<string | undefined> {
  let found: string | undefined;
  for await (const event of agentEvents(job.logs(), provider))
    if ((event.type === "init" || event.type === "result") && event.agentSessionId) found = event.agentSessionId;
  return found;
}

/**
 * Runs an agent in a session through its provider: writes the provider's files, starts the
 * agent as a detached job of the session's (non-root) user, pointed at the gateway. With
 * `resume: <jobId>`, the earlier job's conversation is found in its output and continued.
 *
 * @example
 * const run = await startAgent(session, { provider: claudeCode(), prompt, gateway: { token } });
 * for await (const event of run.events()) console.log(formatAgentEvent(event));
 */
export async function startAgent(session: AgentSession, options: StartAgentOptions): Promise<AgentRun> {
  const { provider, prompt, gateway, resume, model, jobId } = options;
  if (typeof prompt !== "string" || prompt.trim() === "")
    throw new InvalidArgumentError("options.prompt", "an agent needs a task prompt: render one with renderTaskPrompt");
  if (typeof gateway?.token !== "string" || gateway.token === "")
    throw new InvalidArgumentError("options.gateway.token", "expected the session's gateway token");
  const baseUrl = gateway.baseUrl ?? session.state.gateway?.baseUrl;
  if (!baseUrl)
    throw new InvalidArgumentError(
      "options.gateway.baseUrl",
      `session ${session.id} has no gateway route: create it with createSession(project, { gateway: { socketPath } }), or pass gateway.baseUrl`,
    );
  let resumed: string | undefined;
  if (resume !== undefined) {
    resumed = await agentSessionIdOf(session.job(resume), provider);
    if (!resumed)
      throw new InvalidArgumentError(
        "options.resume",
        `job ${resume} of session ${session.id} printed no ${provider.name} conversation id to resume`,
      );
  }
  const invocation = provider.invocation({
    prompt,
    gateway: { baseUrl, token: gateway.token },
    ...(resumed ? { resume: resumed } : {}),
    ...(model ? { model } : {}),
  });
  for (const file of invocation.files) {
    // Written as the session user, through the box's own shell: the host never writes into it.
    const written = await session.exec(["/bin/sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "sh", file.path], {
      stdin: file.content,
    });
    if (written.exitCode !== 0)
      throw new InvalidArgumentError("provider", `${provider.name}: cannot write ${file.path} in the box: ${written.stderr.trim()}`);
  }
  const job = await session.inject({ command: [...invocation.command], env: { ...invocation.env }, ...(jobId ? { id: jobId } : {}) });
  return {
    job,
    provider,
    ...(resumed ? { resumed } : {}),
    events: () => agentEvents(job.logs({ follow: true }), provider),
  };
}
