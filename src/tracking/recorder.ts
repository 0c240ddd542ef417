/**
 * What a trial records its results to: an MLflow run (RunLogger) or, for `vcp-exp train`
 * without a tracking server, a directory (DirectoryRun). The trial pipeline
 * (src/runner/trial.ts) knows only this interface.
 */
export interface TrialRecorder {
  /** The MLflow run id, or `local:<dir>` for a directory. */
  readonly runId: string;
  setTags(tags: Record<string, string>): void;
  logMetric(key: string, value: number, step?: number): void;
  logMetrics(values: Record<string, number>, step?: number): void;
  /** Keeps a file as `<artifactPath>/<file name>`. */
  logArtifact(localPath: string, artifactPath?: string): Promise<void>;
  /** Everything recorded so far is delivered (or safely kept) when this resolves. */
  flush(): Promise<void>;
}
