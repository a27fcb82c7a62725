#!/bin/sh
# The e2e test's scripted agent (no model): edits the primary repo and, out of bounds, the frontend.
echo 'export const limit = 100;' > /workspace/backend-api/src/limit.ts
echo '// retry on 429' >> /workspace/frontend/src/api.ts
echo '{"type":"assistant","message":{"id":"m1","usage":{"input_tokens":100,"cache_read_input_tokens":900,"output_tokens":250}}}'
echo '{"type":"result","subtype":"success","is_error":false,"num_turns":1,"total_cost_usd":0.01,"usage":{"input_tokens":100,"cache_read_input_tokens":900,"output_tokens":250}}'
