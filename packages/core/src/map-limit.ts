/** Runs `work` over `items` with at most `concurrency` calls in flight; results keep input order. */
export async function mapLimit<TItem, TResult>(
  items: readonly TItem[],
  concurrency: number,
  work: (item: TItem, index: number) => Promise<TResult>,
): Promise<TResult[]> {
  const results = new Array<TResult>(items.length);
  let next = 0;
  const runner = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, runner));
  return results;
}
