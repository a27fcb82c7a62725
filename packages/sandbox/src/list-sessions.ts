import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import Docker from "dockerode";
import { LABEL } from "./build-image.js";
import { homeLabel } from "./container-spec.js";
import { defaultHome, type SessionState } from "./session-state-store.js";

/** Sessions on this host, from their state files and their containers' labels. */
export async function listSessions({
  project,
  docker = new Docker(),
  home = defaultHome(),
}: { project?: string; docker?: Docker; home?: string } = {}): Promise<
  { id: string; project: string; createdAt: string; container: string }[]
> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${LABEL}.session`, `${LABEL}.home=${homeLabel(home)}`] },
  });
  const byId = new Map(containers.map((container) => [container.Labels[`${LABEL}.session`]!, container.State]));
  const dir = join(home, "sessions");
  const ids = existsSync(dir)
    ? readdirSync(dir).filter((name) => existsSync(join(dir, name, "state.json")) && statSync(join(dir, name)).isDirectory())
    : [];
  return ids
    .map((id) => JSON.parse(readFileSync(join(dir, id, "state.json"), "utf8")) as SessionState)
    .filter((state) => !project || state.project === project)
    .map((state) => ({ id: state.id, project: state.project, createdAt: state.createdAt, container: byId.get(state.id) ?? "missing" }))
    .sort((left, right) => left.createdAt.localeCompare(right.createdAt));
}
