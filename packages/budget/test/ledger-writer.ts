// A child process for the ledger tests: settles leases on a budget backed by a file ledger and
// prints, after each durable flush, the spend it knows is on disk.
//   ledger-writer.ts <path> <budget-id> <rounds> <per-round>
import { createBudget, createFileLedger } from "../src/index.js";

const [path, id, rounds, perRound] = process.argv.slice(2);
const ledger = createFileLedger({ path: path!, flushIntervalMs: 1 });
const budget = createBudget({ id: id!, limits: { generation: 1e12 }, ledger });
let spent = 0;
for (let round = 0; round < Number(rounds); round++) {
  for (let index = 0; index < Number(perRound); index++) {
    const lease = budget.reserve({ amounts: { generation: 10 } });
    const amount = 1 + ((round * 7 + index) % 10);
    budget.settle({ lease, spent: amount });
    spent += amount;
  }
  await ledger.flush();
  process.stdout.write(`durable ${spent}\n`);
}
await ledger.close();
