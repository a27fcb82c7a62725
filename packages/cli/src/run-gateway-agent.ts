import { createTracker, type Budget } from "@bulkhead/budget";
import { startAgent, type AgentJob, type AgentSession } from "@bulkhead/agents";
import type { AgentProvider, BudgetKind, TaskSpec, UsageReport } from "@bulkhead/core";
import type { Gateway } from "@bulkhead/gateway";

/** A gateway budget kind as dispatch and continue report it (the names the stream meter uses). */
const stoppedName = (kind: BudgetKind): string => kind.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);

/** How an agent run through the gateway ended, and what the gateway booked for it. */
export interface GatewayAgentRun {
  job: AgentJob;
  exitCode: number;
  /** The gateway tracker's report: from the upstream's own answers, never the agent's output. */
  report: UsageReport;
  /** The first budget that stopped or refused a call on the wire, or null. */
  stoppedBy: string | null;
  /** Model calls the gateway served for the run (refused ones included). */
  calls: number;
  /**
   * Tokens of tool results the gateway charged to the tool-call budget (counted locally: the
   * upstream reports them inside the prompt tokens, so the report's context read includes them).
   */
  toolResultTokens: number;
  /** The agent conversation the run continued, when it resumed one. */
  resumed?: string;
}

/**
 * Runs a provider's agent in a session sealed to `gateway` (dispatch's and continue's one way):
 * the session is added to the gateway with `budget`, which the gateway enforces on the wire, and
 * a fresh tracker books every call from the upstream's answers. With `resume` (an earlier job of
 * the session), the agent continues that job's conversation. Resolves once the agent has ended;
 * the gateway session is removed whatever happens.
 */
export async function runGatewayAgent(
  session: AgentSession,
  {
    gateway,
    provider,
    prompt,
    resume,
    budget,
    spec,
    progress,
  }: {
    gateway: Gateway;
    provider: AgentProvider;
    prompt: string;
    /** A job id of an earlier run in this session: its agent conversation is continued. */
    resume?: string;
    budget: Budget;
    spec: TaskSpec;
    progress: (line: string) => void;
  },
): Promise<GatewayAgentRun> {
  const tracker = createTracker({ taskId: spec.id ?? "task" });
  const handle = gateway.addSession({
    sessionId: `${spec.id ?? "task"}-${Date.now().toString(36)}`,
    budget,
    tracker,
    repo: spec.ownership.primaryRepo,
    operation: "agent",
  });
  let stoppedBy: string | null = null;
  const onRefused = (event: { sessionId: string; kind: BudgetKind }) => {
    if (event.sessionId !== handle.sessionId || stoppedBy) return;
    stoppedBy = stoppedName(event.kind);
    progress(`the gateway refused a call on the ${stoppedBy} budget (spent, or the call did not fit what is left)`);
  };
  gateway.on("budget-refused", onRefused);
  gateway.on("generation-stopped", onRefused);
  try {
    const run = await startAgent(session, { provider, prompt, gateway: { token: handle.token }, ...(resume ? { resume } : {}) });
    progress(`agent running as job ${run.job.id}${run.resumed ? ` (conversation ${run.resumed})` : ""}`);
    const { exitCode } = await run.job.wait();
    const toolResultTokens = gateway.audit(handle.sessionId).reduce((sum, record) => sum + record.toolResultTokens, 0);
    const { calls } = handle.remove();
    return {
      job: run.job,
      exitCode,
      report: tracker.report(),
      stoppedBy,
      calls,
      toolResultTokens,
      ...(run.resumed ? { resumed: run.resumed } : {}),
    };
  } finally {
    gateway.off("budget-refused", onRefused);
    gateway.off("generation-stopped", onRefused);
    gateway.removeSession(handle.sessionId);
  }
}
