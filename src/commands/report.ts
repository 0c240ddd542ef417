import { join, resolve } from 'node:path';
import { writeReport } from '../reports/report.js';
import { loadSpec } from '../runner/spec.js';
import { openTracking, type Tracking } from '../tracking/connect.js';
import { chooseTrackingUri, type TrackingChoice } from '../tracking/tracking-uri.js';

export interface ReportCommandOptions {
  trackingUri?: string;
  out?: string;
  /** The `key=value` overrides the runs were made with (src/runner/overrides.ts). */
  overrides?: readonly string[];
}

/**
 * The tracking server of a command that reads runs: chosen by the one rule (--tracking-uri,
 * MLFLOW_TRACKING_URI, the spec's tracking.uri, the managed local server; tracking-uri.ts).
 */
export async function openReportTracking(
  choice: TrackingChoice,
): Promise<Pick<Tracking, 'client' | 'close' | 'server'>> {
  return openTracking({
    choice,
    onStarting: (dir) => console.error(`starting the local MLflow server (state in ${dir}) …`),
  });
}

/** `vcp-exp report <spec>`: tables and figures of the spec's MLflow runs under reports/<name>/. */
export async function reportCommand(file: string, options: ReportCommandOptions): Promise<void> {
  const spec = await loadSpec(file, { overrides: options.overrides });
  const tracking = await openReportTracking(
    chooseTrackingUri({
      flag: options.trackingUri,
      spec: { uri: spec.tracking.uri, file: spec.file },
    }),
  );
  try {
    const outDir = resolve(options.out ?? join('reports', spec.name));
    const result = await writeReport({
      spec,
      client: tracking.client,
      outDir,
      log: (l) => console.error(`  ${l}`),
      withSeeds: (seeds) => loadSpec(file, { overrides: options.overrides, seeds }),
    });
    for (const note of result.notes) console.error(`note: ${note}`);
    console.log(`wrote ${result.files.length} files to ${outDir}`);
  } finally {
    await tracking.close();
  }
}
