import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { writeReport } from '../reports/report.js';
import { loadSpec } from '../runner/spec.js';
import { MlflowClient } from '../tracking/client.js';
import { openTracking, type Tracking } from '../tracking/connect.js';

export interface ReportCommandOptions {
  trackingUri?: string;
  out?: string;
}

/**
 * The tracking server: --tracking-uri, else the spec's tracking.uri, else MLFLOW_TRACKING_URI,
 * else the managed local server.
 */
export async function openReportTracking(
  uri: string | undefined,
): Promise<Pick<Tracking, 'client' | 'close'>> {
  if (uri) {
    if (!/^https?:\/\//.test(uri))
      throw new UserError(`--tracking-uri "${uri}" is not an http(s) MLflow server`, {
        hint: 'pass e.g. http://127.0.0.1:5000',
      });
    return { client: new MlflowClient({ trackingUri: uri }), close: async () => undefined };
  }
  return openTracking({
    onStarting: (dir) => console.error(`starting the local MLflow server (state in ${dir}) …`),
  });
}

/** `vcp-exp report <spec>`: tables and figures of the spec's MLflow runs under reports/<name>/. */
export async function reportCommand(file: string, options: ReportCommandOptions): Promise<void> {
  const spec = await loadSpec(file);
  const tracking = await openReportTracking(options.trackingUri ?? spec.tracking.uri);
  try {
    const outDir = resolve(options.out ?? join('reports', spec.name));
    const result = await writeReport({
      spec,
      client: tracking.client,
      outDir,
      log: (l) => console.error(`  ${l}`),
    });
    for (const note of result.notes) console.error(`note: ${note}`);
    console.log(`wrote ${result.files.length} files to ${outDir}`);
  } finally {
    await tracking.close();
  }
}
