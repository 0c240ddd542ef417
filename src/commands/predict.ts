/**
 * `vcp-exp predict (--checkpoint DIR | --run ID) IMAGE... --out DIR [--dump DIR]
 * [--raw npy|png16] [--normalize none|set] [--alpha A] [--sigma S]`: anomaly maps of images.
 * Per image: a heat-map overlay at the image's own size, the final map at the model's S×S
 * (float32 .npy or 16-bit PNG) and the image score printed. See src/model/predict.ts.
 */
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { initBackend, describeBackend, type BackendChoice } from '../model/backend.js';
import { cacheRoot } from '../model/clip/cache.js';
import { predictFiles, type PredictNormalize } from '../model/predict.js';
import { fetchRunCheckpoint } from '../reports/run-checkpoint.js';
import { chooseTrackingUri } from '../tracking/tracking-uri.js';
import { openReportTracking } from './report.js';

export interface PredictCommandOptions {
  backend: string;
  checkpoint?: string;
  run?: string | number;
  trackingUri?: string;
  out?: string;
  dump?: string;
  raw?: string;
  normalize?: string;
  alpha?: string | number;
  sigma?: string | number;
}

function number(
  flag: string,
  value: string | number | undefined,
  ok: (v: number) => boolean,
  expected: string,
) {
  if (value === undefined) return undefined;
  const v = Number(value);
  if (!Number.isFinite(v) || !ok(v))
    throw new UserError(`${flag}: got "${value}", expected ${expected}`);
  return v;
}

async function checkpointDir(options: PredictCommandOptions): Promise<string> {
  if (options.checkpoint !== undefined && options.run !== undefined)
    throw new UserError('predict: give --checkpoint DIR or --run ID, not both');
  if (options.checkpoint !== undefined) return String(options.checkpoint);
  if (options.run === undefined)
    throw new UserError('predict: --checkpoint DIR or --run ID is required', {
      hint: 'a directory written by vcp-exp train / vcp-exp import, or the run id or trial id of a trial in MLflow',
    });
  const tracking = await openReportTracking(chooseTrackingUri({ flag: options.trackingUri }));
  try {
    const found = await fetchRunCheckpoint(
      tracking.client,
      String(options.run),
      join(cacheRoot(), 'mlflow-checkpoints'),
    );
    console.error(`checkpoint of ${String(options.run)}: ${found.source} → ${found.dir}`);
    return found.dir;
  } finally {
    await tracking.close();
  }
}

export async function predictCommand(
  images: string[],
  options: PredictCommandOptions,
): Promise<void> {
  if (!options.out) throw new UserError('predict: --out DIR is required');
  if (images.length === 0) throw new UserError('predict: give at least one image');
  const raw = options.raw ?? 'npy';
  if (raw !== 'npy' && raw !== 'png16')
    throw new UserError(`--raw: got "${raw}", expected npy or png16`);
  const normalize = options.normalize ?? 'none';
  if (normalize !== 'none' && normalize !== 'set')
    throw new UserError(`--normalize: got "${normalize}", expected none or set`, {
      hint: 'none: each image on its own (raw map and score); set: min–max over the given images, as evaluation does over a product',
    });
  const overrides: Record<string, unknown> = {};
  const alpha = number(
    '--alpha',
    options.alpha,
    (v) => v >= 0 && v <= 1,
    'a number in [0, 1] (weight of the VCP map)',
  );
  const sigma = number(
    '--sigma',
    options.sigma,
    (v) => v >= 0,
    'a number ≥ 0 (pixels; 0 disables smoothing)',
  );
  if (alpha !== undefined) overrides.alpha = alpha;
  if (sigma !== undefined) overrides.sigma = sigma;
  const checkpoint = await checkpointDir(options);
  const info = await initBackend(options.backend as BackendChoice);
  console.error(`backend: ${describeBackend(info)}`);
  const results = await predictFiles({
    checkpoint,
    images,
    out: options.out,
    dump: options.dump,
    raw,
    normalize: normalize as PredictNormalize,
    overrides,
  });
  console.error(
    normalize === 'none'
      ? 'maps and scores are raw (each image on its own); --normalize set scales them over the given images'
      : 'maps and scores are min–max normalised over the given images',
  );
  for (const r of results)
    console.log(`${r.file}\tscore ${r.score.toFixed(6)}\tmax ${r.max.toFixed(6)}`);
}
