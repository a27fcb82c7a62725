import { createTracker, meterClaudeCodeStream, type Budget } from "@bulkhead/budget";
import type { TaskSpec } from "@bulkhead/core";
import type { AgentJob } from "@bulkhead/agents";

/**
 * Meters a job that prints Claude Code's stream-json (a project's agent command, or a resumed
 * conversation) while it runs, against the task's budget: when a budget is spent the job is
 * killed there and then. Resolves once the job has ended, with the tracker's report.
 */
export async function meterAgentJob(
  job: AgentJob,
  { budget, spec, progress }: { budget: Budget; spec: TaskSpec; progress: (line: string) => void },
) {
  const tracker = createTracker({ taskId: spec.id ?? "task" });
  const metered = await meterClaudeCodeStream(job.logs({ follow: true }), {
    budget,
    tracker,
    repo: spec.ownership.primaryRepo,
    operation: "agent",
    onStop: (reason) => {
      progress(`the ${reason} budget is spent: stopping the agent`);
      void job.kill().catch(() => undefined);
    },
  });
  const { exitCode } = await job.wait();
  return { metered, exitCode, report: tracker.report() };
}
