/**
 * The one answer to "are we running in CI": the `CI` variable that CI services (and `.ci/run`'s
 * caller) set, counted as set unless it is empty, "0" or "false".
 */
export function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = (env.CI ?? '').trim().toLowerCase();
  return value !== '' && value !== '0' && value !== 'false';
}
