// The one helper every bench uses, so every figure is taken the same way: the machine's load
// average before and after, at least 3 runs of each case (interleaved, so a burst of load from
// someone else hits every case alike), min and median, and the ratio to the baseline measured in
// the same run. A run taken while the 1-minute load average exceeds the core count is marked
// UNDER LOAD: its absolute figures are not the machine's, only its ratios are comparable.
import { readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";

/** Runs per case: `BENCH_RUNS`, never fewer than 3. */
export const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 3));

/** One case of a bench: a label and the work timed once per run. */
export interface BenchCase {
  label: string;
  run: () => unknown;
  /** Called before each run, untimed (a fresh copy, a cleared cache). */
  before?: () => unknown;
  /** Called after each run, untimed (removing what the run made: a container, a clone). */
  after?: () => unknown;
}

/** Options of {@link measure}. */
export interface MeasureOptions {
  /**
   * The order of the cases within a round. `fixed`: as given. `rotate`: round n starts with case
   * n (so no case always meets the coldest page cache). `shuffle`: a fresh random order per round
   * (so no case always follows the same one, when one leaves state the next one pays for).
   * @default "fixed"
   */
  order?: "fixed" | "rotate" | "shuffle";
}

/** The timings of one case, in milliseconds: wall time, and CPU time (this process, its threads and its finished children). */
export interface Sample {
  label: string;
  ms: number[];
  min: number;
  median: number;
  cpuMs: number[];
}

/**
 * CPU time used so far by this process (all threads) and by its children that have exited, in
 * ms. Under load, wall time is mostly waiting for a core; CPU time is the work itself.
 */
export function cpuTime(): number {
  const own = process.cpuUsage();
  let children = 0;
  try {
    // /proc/self/stat fields 16 and 17: cutime and cstime, in clock ticks (100 per second).
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    children = (Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    // Not Linux: children's CPU is not counted.
  }
  return (own.user + own.system) / 1000 + children;
}

/** The load when a bench began: pass it to {@link report}. */
export interface LoadMark {
  title: string;
  load: number[];
  cores: number;
  startedAt: string;
}

const cores = availableParallelism();
const round = (values: number[]) => values.map((value) => value.toFixed(2));

/** Prints the title, machine and load average; returns the mark {@link report} closes. */
export function begin(title: string): LoadMark {
  const mark = { title, load: loadavg(), cores, startedAt: new Date().toISOString() };
  console.log(`\n${title}`);
  console.log(
    `machine: ${cores} cores, Node ${process.version}, ${process.env.BENCH_MACHINE ?? "this machine"}; load average before: ${round(mark.load).join(" ")}`,
  );
  return mark;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Times `run` once, in milliseconds. */
export async function time(run: () => unknown): Promise<number> {
  return (await timeWithCpu(run)).ms;
}

/** Times `run` once: wall and CPU milliseconds. */
export async function timeWithCpu(run: () => unknown): Promise<{ ms: number; cpuMs: number }> {
  const cpu = cpuTime();
  const start = process.hrtime.bigint();
  await run();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, cpuMs: cpuTime() - cpu };
}

/**
 * Runs every case `runs` times, round-robin, and returns one sample per case. Run n of every case
 * is in round n, whatever the order: {@link pairedRatio} relies on it.
 */
export async function measure(cases: readonly BenchCase[], runs = RUNS, options: MeasureOptions = {}): Promise<Sample[]> {
  const timings = cases.map(() => [] as number[]);
  const cpu = cases.map(() => [] as number[]);
  const positions = [...cases.keys()];
  for (let index = 0; index < runs; index++) {
    const order =
      options.order === "rotate"
        ? positions.map((position) => (position + index) % cases.length)
        : options.order === "shuffle"
          ? shuffled(positions)
          : positions;
    for (const position of order) {
      const entry = cases[position]!;
      await entry.before?.();
      const taken = await timeWithCpu(entry.run);
      timings[position]!.push(taken.ms);
      cpu[position]!.push(taken.cpuMs);
      await entry.after?.();
    }
  }
  return cases.map((entry, position) => toSample(entry.label, timings[position]!, cpu[position]!));
}

function shuffled(values: readonly number[]): number[] {
  const result = [...values];
  for (let index = result.length - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1));
    [result[index], result[other]] = [result[other]!, result[index]!];
  }
  return result;
}

/**
 * The median of the per-round ratios `sample` ÷ `baseline` (run n of each was taken in the same
 * round, seconds apart): less exposed to the machine's drift than the ratio of two medians.
 */
export function pairedRatio(sample: Sample, baseline: Sample): number {
  return median(sample.ms.slice(0, baseline.ms.length).map((ms, index) => ms / baseline.ms[index]!));
}

/** A sample from timings taken elsewhere (per-operation latencies, say). */
export function toSample(label: string, ms: readonly number[], cpuMs: readonly number[] = []): Sample {
  return { label, ms: [...ms], min: Math.min(...ms), median: median(ms), cpuMs: [...cpuMs] };
}

/** True when the 1-minute load average exceeded the core count before or after. */
export function underLoad(mark: LoadMark, after = loadavg()): boolean {
  return Math.max(mark.load[0]!, after[0]!) > cores;
}

export interface ReportOptions {
  /** The label of the baseline sample; ratios are to its median. @default the first sample */
  baseline?: string;
  /** Extra columns per sample, e.g. files/s: label → value. */
  extra?: Record<string, (sample: Sample) => string>;
  /** Lines printed under the table. */
  notes?: string[];
}

/**
 * Prints a Markdown table (min, median, time ÷ baseline, speed × baseline per sample), the load
 * average after, and UNDER LOAD when it applies. Returns the ratios by label.
 */
export function report(mark: LoadMark, samples: readonly Sample[], options: ReportOptions = {}): Record<string, number> {
  const after = loadavg();
  const loaded = underLoad(mark, after);
  const base = samples.find((sample) => sample.label === options.baseline) ?? samples[0]!;
  const extra = Object.entries(options.extra ?? {});
  const runs = Math.min(...samples.map((sample) => sample.ms.length));
  console.log(`\n${mark.title}: ${runs}+ runs each, interleaved; ratios to the median of "${base.label}"${loaded ? "; UNDER LOAD" : ""}`);
  const withCpu = samples.every((sample) => sample.cpuMs.length > 0);
  const cpuHeader = withCpu ? " median CPU ms | CPU ÷ baseline |" : "";
  console.log(
    `| case | min ms | median ms | time ÷ baseline | speed × baseline |${cpuHeader}${extra.map(([name]) => ` ${name} |`).join("")}`,
  );
  console.log(`|---|---:|---:|---:|---:|${withCpu ? "---:|---:|" : ""}${extra.map(() => "---:|").join("")}`);
  const ratios: Record<string, number> = {};
  for (const sample of samples) {
    const ratio = sample.median / base.median;
    ratios[sample.label] = ratio;
    console.log(
      `| ${sample.label} | ${format(sample.min)} | ${format(sample.median)} | ${ratio.toFixed(2)}× | ${(1 / ratio).toFixed(2)}× |${
        withCpu ? ` ${format(median(sample.cpuMs))} | ${(median(sample.cpuMs) / median(base.cpuMs)).toFixed(2)}× |` : ""
      }${extra.map(([, value]) => ` ${value(sample)} |`).join("")}`,
    );
  }
  for (const note of options.notes ?? []) console.log(note);
  console.log(
    `load average before: ${round(mark.load).join(" ")}; after: ${round(after).join(" ")} on ${cores} cores${
      loaded ? " — UNDER LOAD: other work shared the cores; trust the ratios, not the absolute times" : " — quiet"
    }`,
  );
  return ratios;
}

function format(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(1) : ms.toFixed(3);
}
