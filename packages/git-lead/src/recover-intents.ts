import type { Journal, JournalEntry } from "./journal.js";
import { readBranch } from "./git-refs.js";

type Intent = Extract<JournalEntry, { type: "intent" }>;

/** The journal's intents that have no outcome yet: the entry a lead was working on when it stopped. */
export function openIntents(entries: readonly JournalEntry[]): Intent[] {
  // In journal order: an outcome ends the intents before it, not a later attempt of the same submission.
  const open = new Map<string, Intent>();
  for (const entry of entries) {
    if (entry.type === "intent") open.set(entry.id, entry);
    else if (entry.type !== "pushed") open.delete(entry.id);
  }
  return [...open.values()];
}

/**
 * Finishes or rolls back what a stopped lead left in flight: an intent whose commit the branch
 * points at counts (`finish` journals it, brings checkouts along and writes the result); any other
 * is rolled back with an `aborted` entry, and its submission, still queued, runs again from the
 * start: its own journaled gates included.
 */
export async function recoverIntents({
  entries,
  journal,
  gitdir,
  branch,
  finish,
  landed,
}: {
  /** The journal as read by the caller. */
  entries: readonly JournalEntry[];
  journal: Journal;
  gitdir: string;
  branch: string;
  finish: (intent: Intent) => Promise<void>;
  /** Whether the intent's commit landed; by default, whether the branch points at it. A lead on a shared remote asks the remote. */
  landed?: (intent: Intent) => Promise<boolean>;
}): Promise<{ finished: string[]; rolledBack: string[] }> {
  const outcome = { finished: [] as string[], rolledBack: [] as string[] };
  const tip = await readBranch(gitdir, branch);
  for (const intent of openIntents(entries)) {
    if (landed ? await landed(intent) : intent.commit === tip) {
      await finish(intent);
      outcome.finished.push(intent.id);
    } else {
      await journal.append({
        type: "aborted",
        id: intent.id,
        reason: "the lead stopped before the branch moved",
        at: new Date().toISOString(),
      });
      outcome.rolledBack.push(intent.id);
    }
  }
  return outcome;
}
