/**
 * MLflow REST API 2.0 entities as the tracking server returns them (JSON of the protobuf
 * messages in mlflow/protos/service.proto). Numbers that are int64 in the proto arrive as
 * strings or numbers depending on the server; the client normalises them to numbers.
 */

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';
export type LifecycleStage = 'active' | 'deleted';
export type ViewType = 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';

export interface KeyValue {
  key: string;
  value: string;
}

export type Param = KeyValue;
export type RunTag = KeyValue;

export interface Metric {
  key: string;
  value: number;
  /** Milliseconds since the epoch. */
  timestamp: number;
  step: number;
}

export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage: LifecycleStage;
  last_update_time?: number;
  creation_time?: number;
  tags: RunTag[];
}

export interface RunInfo {
  run_id: string;
  run_name?: string;
  experiment_id: string;
  user_id?: string;
  status: RunStatus;
  start_time?: number;
  end_time?: number;
  artifact_uri: string;
  lifecycle_stage: LifecycleStage;
}

export interface RunData {
  /** The latest value of each metric. */
  metrics: Metric[];
  params: Param[];
  tags: RunTag[];
}

export interface Run {
  info: RunInfo;
  data: RunData;
}

export interface FileInfo {
  path: string;
  is_dir: boolean;
  file_size?: number;
}

/** One log-batch request's content. */
export interface Batch {
  metrics: Metric[];
  params: Param[];
  tags: RunTag[];
}

export interface SearchRunsOptions {
  experimentIds: string[];
  /** MLflow search filter, e.g. `tags."vcp.trial_id" = 'abc' and attributes.status = 'FINISHED'`. */
  filter?: string;
  orderBy?: string[];
  runViewType?: ViewType;
  /** Stop after this many runs (default: all of them, page by page). */
  maxResults?: number;
  pageSize?: number;
}

export interface CreateRunOptions {
  experimentId: string;
  runName?: string;
  /** Milliseconds since the epoch (default: now). */
  startTime?: number;
  tags?: Record<string, string>;
}

/** A dataset reference logged as a run input (MLflow's Dataset entity). */
export interface DatasetRef {
  name: string;
  /** Identifies the content among datasets of the same name (MLflow shows it beside the name). */
  digest: string;
  /** e.g. "local" (a path on this machine). */
  source_type: string;
  /** JSON, e.g. {"uri": "/data/mvtec"}. */
  source: string;
  /** JSON; MLflow renders `{"mlflow_colspec": [...]}` as a table of columns. */
  schema?: string;
  /** JSON summary shown with the dataset (counts, products). */
  profile?: string;
}

/** A dataset used by a run, with input tags (`mlflow.data.context`: training, evaluation). */
export interface DatasetInput {
  tags: RunTag[];
  dataset: DatasetRef;
}
