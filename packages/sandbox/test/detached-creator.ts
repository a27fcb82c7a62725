// Creates a session and exits without cleaning up, as a crashed controller would.
//   detached-creator.ts <home> <repo> <image>
import { createSession, defineProject } from "../src/index.js";

const [home, repo, image] = process.argv.slice(2) as [string, string, string];
const project = defineProject({ name: "detached", repos: [{ name: "app", path: repo }], image: { existing: image } });
const session = await createSession(project, { home });
process.stdout.write(session.id);
process.exit(0);
