// Pauses a session's container through the one paused-read helper and waits to be killed, as a
// controller killed during fetchCode or changes() would be.
//   pause-and-die.ts <home> <session id>
import { getSession } from "../src/index.js";
import { withSessionPaused } from "../src/pause-session.js";

const [home, id] = process.argv.slice(2) as [string, string];
const session = getSession(id, { home });
await withSessionPaused(session, async () => {
  process.stdout.write("paused\n");
  // Held until the parent kills this process with SIGKILL.
  await new Promise(() => setInterval(() => undefined, 60_000));
});
