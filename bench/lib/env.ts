/** A whole-number setting from the environment (a benchmark knob), with its default and bounds; anything else throws. */
export const envInt = (name: string, def: number, min: number, max: number): number => {
  const v = Number(process.env[name] ?? def);
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new Error(`${name} must be a whole number from ${min} to ${max}`);
  return v;
};
