import type { Session } from "./session.js";

/**
 * Runs host-side work on the workspace with the session's container paused (when it runs), so
 * nothing in it changes meanwhile: see {@link workspaceGit}. Every paused read of a workspace
 * goes through here.
 */
export async function withSessionPaused<TResult>(session: Session, work: () => Promise<TResult>): Promise<TResult> {
  const state = await session.container.inspect().then(
    (info) => info.State,
    () => undefined,
  );
  if (!state?.Running || state.Paused) return work();
  await session.container.pause();
  try {
    return await work();
  } finally {
    await session.container.unpause().catch(() => undefined);
  }
}
