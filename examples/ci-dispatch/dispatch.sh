#!/bin/sh
# A CI job composing bulkhead steps with --json: bake the image once, then for every task spec
# dispatch the agent and finish the session, and write one summary line per task.
#
#   dispatch.sh <project.yaml> <tasks-dir> <out-dir>
#
# Exit codes carry the decision: dispatch exits 2 when the scope or the context budget refuses a
# task (nothing was started), finish exits 2 when a cross-repo edit is held for approval. Neither
# fails the job; an exit of 1 from any step does. $BULKHEAD overrides the command (default
# `bulkhead`); JSON is read with node, which every machine running bulkhead has.
set -u
project=$1
tasks=$2
out=$3
bulkhead=${BULKHEAD:-bulkhead}
mkdir -p "$out"
: > "$out/summary.jsonl"

# field a.b < file.json: prints one (dotted) field of a JSON document, or nothing.
field() {
  node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(process.argv[1].split(".").reduce((o, k) => o?.[k], JSON.parse(s)) ?? ""))' "$1"
}
summary() { printf '{"task":"%s","result":"%s","session":"%s","commit":"%s"}\n' "$1" "$2" "$3" "$4" >> "$out/summary.jsonl"; }

$bulkhead build "$project" --json > "$out/build.json" || { echo "build failed: see $out/build.json" >&2; exit 1; }

failed=0
for spec in "$tasks"/*.yaml; do
  task=$(basename "$spec" .yaml)
  $bulkhead dispatch "$project" --spec "$spec" --json > "$out/$task.dispatch.json"
  code=$?
  session=$(field session < "$out/$task.dispatch.json")
  if [ "$code" = 2 ] && [ -z "$session" ]; then
    echo "$task: refused: $(field error.message < "$out/$task.dispatch.json")"
    summary "$task" refused "" ""
    continue
  fi
  if [ "$code" = 2 ]; then
    # The agent ran and a budget stopped it: harvest what it did, the handover says so.
    echo "$task: stopped by the $(field stoppedBy < "$out/$task.dispatch.json") budget"
  elif [ "$code" != 0 ]; then
    echo "$task: dispatch failed, see $out/$task.dispatch.json" >&2
    summary "$task" failed "$session" ""
    failed=1
    [ -n "$session" ] && $bulkhead session rm "$session" --force > /dev/null
    continue
  fi
  $bulkhead finish "$session" --out "$out/$task.handover.md" --json > "$out/$task.finish.json"
  code=$?
  commit=$(field sha < "$out/$task.finish.json")
  case $code in
    0) echo "$task: committed $commit"; summary "$task" committed "$session" "$commit" ;;
    2) echo "$task: committed $commit, cross-repo edits held for approval"; summary "$task" held "$session" "$commit" ;;
    *) echo "$task: finish failed, see $out/$task.finish.json" >&2; summary "$task" failed "$session" ""; failed=1 ;;
  esac
done
exit $failed
