import { compareRuns, formatComparison, resolveRun } from '../reports/compare.js';
import { chooseTrackingUri } from '../tracking/tracking-uri.js';
import { openReportTracking } from './report.js';

/**
 * `vcp-exp compare <a> <b>`: params and metrics of two runs (or trials) side by side, and where
 * to see them in the MLflow UI: the compare link when the server stays up (a named server, or
 * a managed one that was already running), else the command that starts the UI on them.
 */
export async function compareCommand(
  a: string,
  b: string,
  options: { trackingUri?: string },
): Promise<void> {
  const tracking = await openReportTracking(chooseTrackingUri({ flag: options.trackingUri }));
  try {
    const [ra, rb] = [await resolveRun(tracking.client, a), await resolveRun(tracking.client, b)];
    const highlight = process.stdout.isTTY ? (s: string) => `\x1b[1;33m${s}\x1b[0m` : undefined;
    const comparison = compareRuns(ra, rb, tracking.client.trackingUri);
    const stopsAfter = tracking.server !== undefined && !tracking.server.reused;
    const where = stopsAfter
      ? `MLflow UI: npx vcp-exp mlflow ui --compare ${ra.info.run_id},${rb.info.run_id}   (starts the local server and prints the link to these two runs)`
      : `MLflow UI: ${comparison.url}`;
    console.log(formatComparison(comparison, highlight, where));
  } finally {
    await tracking.close();
  }
}
