/**
 * The artifact paths a trial run holds beside its metrics: the one place that builds and parses
 * them, used by the runner (src/runner/trial-artifacts.ts) that writes them and the reports
 * (src/reports/artifact-figures.ts) that read them. docs/reports.md describes the contents.
 *   results/<dataset>.csv
 *   samples/<dataset>/<product>/<name>_{image,mask,overlay}.png
 *   attention/<dataset>/<product>/<name>_layer<k>.npy   float32 [H, 2, L]
 *   text_embeddings/<dataset>/<product>.npy              float32 [N, 2, D]
 */

/** The trial process's own log (progress, warnings, errors). */
export const TRIAL_LOG_ARTIFACT = 'logs/trial.log';

export const SAMPLE_PARTS = ['image', 'mask', 'overlay'] as const;
export type SamplePart = (typeof SAMPLE_PARTS)[number];

/** Top-level artifact folders (for listing one kind of a run's artifacts). */
export const ARTIFACT_DIRS = Object.freeze({
  results: 'results',
  samples: 'samples',
  attention: 'attention',
  textEmbeddings: 'text_embeddings',
});

/**
 * How a product (a dataset's folder name, which may hold any character) is named in MLflow
 * metric keys (`<dataset>.<product>.<metric>`) and artifact paths: every character other
 * than A–Z, a–z, 0–9, "_" and "-" becomes "_" (`grid+(1) é` → `grid__1___`). MLflow rejects
 * most punctuation in keys, and a "." would split the key in the wrong place. Products of
 * one dataset whose keys collide are refused before a sweep runs.
 */
export function productKey(product: string): string {
  return product.replace(/[^A-Za-z0-9_-]/g, '_') || '_';
}

/** A path segment: no separator, not empty, not a dot name (it would change the path). */
function segment(value: string, what: string): string {
  if (value === '' || value === '.' || value === '..' || /[\\/]/.test(value)) {
    throw new Error(
      `artifact path: ${what} "${value}" cannot be a path segment (empty, "."/".." or contains a slash)`,
    );
  }
  return value;
}

export function resultsPath(dataset: string): string {
  return `${ARTIFACT_DIRS.results}/${segment(dataset, 'dataset')}.csv`;
}

export function samplePath(
  dataset: string,
  product: string,
  name: string,
  part: SamplePart,
): string {
  return `${ARTIFACT_DIRS.samples}/${segment(dataset, 'dataset')}/${segment(product, 'product')}/${segment(name, 'sample name')}_${part}.png`;
}

export function attentionPath(
  dataset: string,
  product: string,
  name: string,
  layer: number,
): string {
  if (!Number.isInteger(layer) || layer < 0)
    throw new Error(`artifact path: layer ${layer} is not a block index`);
  return `${ARTIFACT_DIRS.attention}/${segment(dataset, 'dataset')}/${segment(product, 'product')}/${segment(name, 'sample name')}_layer${layer}.npy`;
}

export function textEmbeddingsPath(dataset: string, product: string): string {
  return `${ARTIFACT_DIRS.textEmbeddings}/${segment(dataset, 'dataset')}/${segment(product, 'product')}.npy`;
}

export interface SampleArtifact {
  dataset: string;
  product: string;
  name: string;
  part: SamplePart;
}
export interface AttentionArtifact {
  dataset: string;
  product: string;
  name: string;
  layer: number;
}
export interface TextEmbeddingsArtifact {
  dataset: string;
  product: string;
}

const SAMPLE_RE = /^samples\/([^/]+)\/([^/]+)\/([^/]+)_(image|mask|overlay)\.png$/;
const ATTENTION_RE = /^attention\/([^/]+)\/([^/]+)\/([^/]+)_layer(\d+)\.npy$/;
const TEXT_RE = /^text_embeddings\/([^/]+)\/([^/]+)\.npy$/;

/** The parts of a sample picture path, or null when `path` is not one. */
export function parseSamplePath(path: string): SampleArtifact | null {
  const m = SAMPLE_RE.exec(path);
  return m ? { dataset: m[1], product: m[2], name: m[3], part: m[4] as SamplePart } : null;
}

export function parseAttentionPath(path: string): AttentionArtifact | null {
  const m = ATTENTION_RE.exec(path);
  return m ? { dataset: m[1], product: m[2], name: m[3], layer: Number(m[4]) } : null;
}

export function parseTextEmbeddingsPath(path: string): TextEmbeddingsArtifact | null {
  const m = TEXT_RE.exec(path);
  return m ? { dataset: m[1], product: m[2] } : null;
}

/** The folder part of an artifact path (what MLflow's log-artifact calls the artifact path). */
export function artifactDir(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/**
 * The part of a per-defect-type metric key between the dataset and the metric:
 * `<dataset>.<product>/<defect>.<metric>` (a slash cannot occur in a product's own key).
 */
export function defectMetricPrefix(product: string, defect: string): string {
  return `${productKey(product)}/${productKey(defect)}`;
}
