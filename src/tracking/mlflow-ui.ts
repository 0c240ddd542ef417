/**
 * What makes an experiment look in MLflow's UI (3.x) as its users expect, and the UI's links.
 * Checked against the UI bundled with the pinned MLflow 3.17.2 (server/js/build), by the
 * screenshots of scripts/mlflow-screenshot.mjs:
 * - `mlflow.experimentKind` = `custom_model_development` marks a model-development experiment
 *   (the UI reads it where its workflow switch is off). In 3.17 the switch is on: the mode
 *   (GenAI | Model training) comes from the URL's `workflowType` parameter, else the browser's
 *   last choice, else GenAI. So every link vcp-exp prints names `workflowType=machine_learning`:
 *   it opens the experiment on its training runs, not on the GenAI overview (traces);
 * - `mlflow.note.content` is the experiment's description;
 * - the runs table's columns are browser state (default: Source, Models, Dataset); a server
 *   cannot change them. What a server can do is save a *view*: an experiment tag
 *   `mlflow.sharedViewState.<id>` holding `{name, createdAt, updatedAt, state}`, listed in the
 *   experiment page's "Views" menu and opened by `…/runs?viewStateShareKey=<id>`.
 */
import type { KeyValue } from './types.js';

export const EXPERIMENT_TAGS = Object.freeze({
  kind: 'mlflow.experimentKind',
  note: 'mlflow.note.content',
});

/** The kind MLflow 3's UI gives model-development (training) experiments. */
export const CUSTOM_MODEL_DEVELOPMENT = 'custom_model_development';

/** Prefix of a saved view's experiment tag; the rest of the key is the view's id. */
export const SHARED_VIEW_PREFIX = 'mlflow.sharedViewState.';
/** The saved view vcp-exp writes: the swept params and the headline metrics as columns. */
export const HEADLINE_VIEW_ID = 'vcp-exp-headline';
/** URL parameter that opens a saved view. */
export const VIEW_PARAM = 'viewStateShareKey';
/** URL parameter (and value) that puts the UI in its "Model training" mode. */
export const MODEL_TRAINING_MODE = 'workflowType=machine_learning';

/** Attribute columns MLflow shows by default; kept in the view. */
const DEFAULT_ATTRIBUTE_COLUMNS = [
  'attributes.`Source`',
  'attributes.`Models`',
  'attributes.`Dataset`',
];

const column = (group: 'params' | 'metrics', key: string) => `${group}.\`${key}\``;

export interface HeadlineView {
  /** Param keys shown as columns (e.g. the sweep axes, `model.heads`). */
  params: readonly string[];
  /** Metric keys shown as columns (e.g. `synth.pixel_auroc`); the first sorts the table. */
  metrics: readonly string[];
}

/**
 * The experiment tag of the headline view. `createdAt` is fixed so that writing it again
 * (every sweep) changes nothing when the columns are the same.
 */
export function headlineViewTag(view: HeadlineView, name = 'vcp-exp: headline metrics'): KeyValue {
  const state = {
    selectedColumns: [
      ...DEFAULT_ATTRIBUTE_COLUMNS,
      ...view.params.map((p) => column('params', p)),
      ...view.metrics.map((m) => column('metrics', m)),
    ],
    ...(view.metrics.length > 0
      ? { orderByKey: column('metrics', view.metrics[0]), orderByAsc: false }
      : {}),
  };
  return {
    key: `${SHARED_VIEW_PREFIX}${HEADLINE_VIEW_ID}`,
    value: JSON.stringify({ name, createdAt: 0, updatedAt: 0, state: JSON.stringify(state) }),
  };
}

const base = (trackingUri: string) => trackingUri.replace(/\/+$/, '');

/** The experiment's runs in the UI's Model-training mode; with the headline view when `view`. */
export function experimentUrl(trackingUri: string, experimentId: string, view = false): string {
  const path = `${base(trackingUri)}/#/experiments/${encodeURIComponent(experimentId)}/runs?${MODEL_TRAINING_MODE}`;
  return view ? `${path}&${VIEW_PARAM}=${HEADLINE_VIEW_ID}` : path;
}

/** The UI's route comparing runs (JSON arrays in the fragment's query, as the UI writes them). */
export function compareRunsPath(runIds: string[], experimentIds: string[]): string {
  const list = (ids: string[]) => encodeURIComponent(JSON.stringify(ids)).replaceAll('%2C', ',');
  return `#/compare-runs?runs=${list(runIds)}&experiments=${list([...new Set(experimentIds)])}`;
}

export function compareUrl(trackingUri: string, runIds: string[], experimentIds: string[]): string {
  return `${base(trackingUri)}/${compareRunsPath(runIds, experimentIds)}`;
}
