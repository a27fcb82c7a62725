#!/bin/sh
# The continuation test's scripted agent (Claude Code's stream-json, no model). First run: opens
# conversation conv-7f3a, spends past the generation budget, and would go on for ten minutes.
# Resumed (BULKHEAD_RESUME): continues that same conversation and finishes the task.
# A reshaped continuation (BULKHEAD_CONTINUATION=spec): a new conversation that finishes quickly.
if [ -n "$BULKHEAD_RESUME" ]; then
  c="$BULKHEAD_RESUME"
  echo "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"$c\"}"
  echo 'export const done = true;' > /workspace/backend-api/src/done.ts
  echo "{\"type\":\"assistant\",\"session_id\":\"$c\",\"message\":{\"id\":\"m2\",\"usage\":{\"input_tokens\":100,\"output_tokens\":300}}}"
  echo "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"session_id\":\"$c\",\"num_turns\":2,\"usage\":{\"input_tokens\":100,\"output_tokens\":300}}"
elif [ "$BULKHEAD_CONTINUATION" = "spec" ]; then
  echo '{"type":"system","subtype":"init","session_id":"conv-new"}'
  echo '{"type":"result","subtype":"success","is_error":false,"session_id":"conv-new","num_turns":1,"usage":{"input_tokens":50,"output_tokens":20}}'
else
  echo '{"type":"system","subtype":"init","session_id":"conv-7f3a"}'
  echo '{"type":"assistant","session_id":"conv-7f3a","message":{"id":"m1","usage":{"input_tokens":100,"output_tokens":800}}}'
  sleep 600
fi
