#!/bin/sh
# A scripted stand-in for a coding agent (no model is called): it does seed 000's task by hand
# and prints a Claude Code stream-json transcript, so the run is metered like a real one.
set -e
cd /workspace/backend-api
cat /workspace/shared-types/src/user.ts > /dev/null
mkdir -p src/middleware
cat > src/middleware/rateLimit.ts <<'TS'
import type { Request, Response, Next } from "../http";

const windowMs = 60_000;
const limit = 100;
const hits = new Map<string, { count: number; start: number }>();

/** 100 requests per minute per user; 429 after that. */
export function rateLimit(request: Request, response: Response, next: Next): void {
  const now = Date.now();
  const entry = hits.get(request.userId) ?? { count: 0, start: now };
  if (now - entry.start > windowMs) Object.assign(entry, { count: 0, start: now });
  entry.count++;
  hits.set(request.userId, entry);
  if (entry.count > limit) return void response.status(429).send("Too Many Requests");
  next();
}
TS
cat > src/routes/index.ts <<'TS'
import { rateLimit } from "../middleware/rateLimit";
import { user } from "./user";

export const routes = [rateLimit, user];
TS
# Out of scope for this task: the guard holds this for the frontend's owners.
printf 'export const onTooManyRequests = () => alert("Slow down");\n' >> /workspace/frontend/src/api.ts
cat <<'JSONL'
{"type":"system","subtype":"init","session_id":"demo-session","model":"claude-sonnet-4-5-20250929","tools":["Read","Edit","Bash"]}
{"type":"assistant","message":{"id":"msg_demo_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Reading the routes and the shared types."}],"usage":{"input_tokens":12,"cache_creation_input_tokens":9800,"cache_read_input_tokens":0,"output_tokens":310}}}
{"type":"assistant","message":{"id":"msg_demo_2","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"tool_use","id":"toolu_demo_1","name":"Edit","input":{"file_path":"src/middleware/rateLimit.ts"}}],"usage":{"input_tokens":8,"cache_creation_input_tokens":600,"cache_read_input_tokens":9800,"output_tokens":2900}}}
{"type":"assistant","message":{"id":"msg_demo_3","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Registered the middleware in src/routes/index.ts."}],"usage":{"input_tokens":6,"cache_creation_input_tokens":200,"cache_read_input_tokens":10400,"output_tokens":640}}}
{"type":"result","subtype":"success","is_error":false,"num_turns":3,"result":"Added rate limiting to the user API.","session_id":"demo-session","total_cost_usd":0.0844,"usage":{"input_tokens":26,"cache_creation_input_tokens":10600,"cache_read_input_tokens":20200,"output_tokens":3850}}
JSONL
