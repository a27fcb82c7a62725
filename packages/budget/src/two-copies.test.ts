import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { createTempDir } from "@bulkhead/test-utils";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const packages = join(import.meta.dirname, "..", "..");
const workspaceModules = join(packages, "..", "node_modules");

// Run in a plain Node process against two copies of the built packages, as an application with
// @bulkhead/budget installed twice (a dependency pinning another version) sees them: two module
// instances of every class, one realm, the same `Symbol.for` registry.
const check = `
import * as coreA from "./a/node_modules/@bulkhead/core/dist/index.js";
import * as budgetA from "./a/node_modules/@bulkhead/budget/dist/index.js";
import * as coreB from "./b/node_modules/@bulkhead/core/dist/index.js";
import * as budgetB from "./b/node_modules/@bulkhead/budget/dist/index.js";

const caught = (work) => { try { work(); } catch (error) { return error; } throw new Error("expected a throw"); };
const fromB = budgetB.createBudget({ id: "b", limits: { generation: 10 } });
const exceeded = caught(() => fromB.reserve({ amounts: { generation: 11 } }));
const invalid = caught(() => budgetB.createBudget({ limits: { generation: -1 } }));
const nested = caught(() => budgetA.createBudget({ id: "a", parent: fromB, limits: {} }));
let middleware = "accepted";
try { budgetA.budgetMiddleware({ budget: fromB }); } catch (error) { middleware = error.message; }
console.log(JSON.stringify({
  distinctClasses: budgetA.Budget !== budgetB.Budget && coreA.BulkheadError !== coreB.BulkheadError,
  notInstanceof: !(fromB instanceof budgetA.Budget) && !(exceeded instanceof budgetA.BudgetExceededError),
  budgetAcross: budgetA.Budget.isInstance(fromB),
  budgetBack: budgetB.Budget.isInstance(budgetA.createBudget({ limits: {} })),
  plainObjectIsNoBudget: budgetA.Budget.isInstance({ id: "b", reserve() {} }),
  exceededAcross: budgetA.BudgetExceededError.isInstance(exceeded),
  exceededData: exceeded.data,
  exceededIsBulkhead: coreA.BulkheadError.isInstance(exceeded),
  exceededIsNotLease: budgetA.LeaseNotActiveError.isInstance(exceeded),
  exceededIsNotInvalid: coreA.InvalidArgumentError.isInstance(exceeded),
  invalidAcross: coreA.InvalidArgumentError.isInstance(invalid),
  invalidIsNotExceeded: budgetA.BudgetExceededError.isInstance(invalid),
  middleware,
  nested: { invalid: coreA.InvalidArgumentError.isInstance(nested), message: nested.message },
}));
`;

describe("two installed copies", () => {
  it("recognise each other's budgets and errors, each error class by its own marker", async () => {
    await using dir = createTempDir("bulkhead-two-copies-");
    for (const copy of ["a", "b"]) {
      for (const name of ["core", "budget"]) {
        const dist = join(packages, name, "dist");
        if (!existsSync(join(dist, "index.js"))) throw new Error(`packages/${name}/dist is missing: run npm run build first`);
        const target = join(dir.path, copy, "node_modules", "@bulkhead", name);
        mkdirSync(target, { recursive: true });
        cpSync(join(packages, name, "package.json"), join(target, "package.json"));
        cpSync(dist, join(target, "dist"), { recursive: true });
      }
    }
    // Third-party dependencies (zod, tiktoken, ...) resolve from the workspace, one level up.
    symlinkSync(workspaceModules, join(dir.path, "node_modules"));
    writeFileSync(join(dir.path, "check.mjs"), check);
    const { stdout } = await run(process.execPath, ["check.mjs"], { cwd: dir.path });
    expect(JSON.parse(stdout)).toEqual({
      distinctClasses: true,
      notInstanceof: true,
      budgetAcross: true,
      budgetBack: true,
      plainObjectIsNoBudget: false,
      exceededAcross: true,
      exceededData: { budgetId: "b", kind: "generation", requested: 11, available: 10, limit: 10 },
      exceededIsBulkhead: true,
      exceededIsNotLease: false,
      exceededIsNotInvalid: false,
      invalidAcross: true,
      invalidIsNotExceeded: false,
      middleware: "accepted",
      nested: {
        invalid: true,
        message: expect.stringContaining('budget "b" was created by another copy of @bulkhead/budget') as unknown,
      },
    });
  });
});
