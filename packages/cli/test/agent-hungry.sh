#!/bin/sh
# An agent that spends past its budget in its first message and would then go on for ten
# minutes: dispatch must stop it while it runs.
echo '{"type":"assistant","message":{"id":"m1","usage":{"input_tokens":400,"output_tokens":800}}}'
sleep 600
echo '{"type":"result","subtype":"success","is_error":false,"num_turns":9,"usage":{"input_tokens":400,"output_tokens":900}}'
