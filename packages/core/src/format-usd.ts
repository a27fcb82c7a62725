/**
 * Dollars as people read them: to the cent, or to 4 significant digits under a cent
 * (`$0.03`, `$12.50`, `$0.002849`), never a float's tail such as `$0.028499999999999998`.
 */
export function formatUsd(usd: number): string {
  if (!Number.isFinite(usd)) return "$?";
  const sign = usd < 0 ? "-" : "";
  const amount = Math.abs(usd);
  if (amount === 0) return "$0.00";
  if (amount >= 0.01) return `${sign}$${amount.toFixed(2)}`;
  // Under a cent: 4 significant digits, written out (no exponent).
  const digits = Math.max(4, 3 - Math.floor(Math.log10(amount)));
  return `${sign}$${Number(amount.toPrecision(4)).toFixed(Math.min(digits, 20)).replace(/0+$/, "")}`;
}
