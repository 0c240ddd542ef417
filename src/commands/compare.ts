import { compareRuns, formatComparison, resolveRun } from '../reports/compare.js';
import { openReportTracking } from './report.js';

/** `vcp-exp compare <a> <b>`: params and metrics of two runs (or trials) side by side. */
export async function compareCommand(
  a: string,
  b: string,
  options: { trackingUri?: string },
): Promise<void> {
  const tracking = await openReportTracking(options.trackingUri);
  try {
    const [ra, rb] = [await resolveRun(tracking.client, a), await resolveRun(tracking.client, b)];
    const highlight = process.stdout.isTTY ? (s: string) => `\x1b[1;33m${s}\x1b[0m` : undefined;
    console.log(formatComparison(compareRuns(ra, rb, tracking.client.trackingUri), highlight));
  } finally {
    await tracking.close();
  }
}
