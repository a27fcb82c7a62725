import { InvalidArgumentError } from "@bulkhead/core";
import type { SessionRegistration } from "@bulkhead/sandbox";

/**
 * Runs `work` with the team's session registry when `BULKHEAD_STORE` names a PostgreSQL database
 * (this host's name: `BULKHEAD_HOST`, else the hostname), or with undefined when no store is
 * configured. @bulkhead/postgres (and `pg`) is loaded only then, and the pool is closed after.
 */
export async function withTeamRegistration<TResult>(
  work: (registration: SessionRegistration | undefined) => Promise<TResult>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<TResult> {
  const url = env.BULKHEAD_STORE;
  if (url === undefined || url === "") return work(undefined);
  if (!/^postgres(ql)?:\/\//.test(url))
    throw new InvalidArgumentError(
      "BULKHEAD_STORE",
      `expected a postgres:// connection string, got ${JSON.stringify(url)}: fix or unset it`,
    );
  const { createPostgresSessionRegistry } = await import("@bulkhead/postgres");
  const registry = createPostgresSessionRegistry({ connectionString: url, maxConnections: 2 });
  try {
    return await work({ registry, ...(env.BULKHEAD_HOST ? { host: env.BULKHEAD_HOST } : {}) });
  } finally {
    await registry.close();
  }
}
