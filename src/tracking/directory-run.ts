/**
 * A run recorded into a local directory instead of MLflow (`vcp-exp train --out DIR`):
 * artifacts are copied to `<dir>/<artifact path>/<name>`, tags and metric histories are
 * written to `<dir>/run.json` on every flush.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { TrialRecorder } from './recorder.js';

export interface RecordedMetric {
  value: number;
  step: number;
}

export class DirectoryRun implements TrialRecorder {
  readonly runId: string;
  readonly tags: Record<string, string> = {};
  readonly metrics: Record<string, RecordedMetric[]> = {};

  constructor(readonly dir: string) {
    this.dir = resolve(dir);
    this.runId = `local:${this.dir}`;
  }

  setTags(tags: Record<string, string>): void {
    Object.assign(this.tags, tags);
  }

  logMetric(key: string, value: number, step = 0): void {
    (this.metrics[key] ??= []).push({ value, step });
  }

  logMetrics(values: Record<string, number>, step = 0): void {
    for (const [key, value] of Object.entries(values)) this.logMetric(key, value, step);
  }

  async logArtifact(localPath: string, artifactPath = ''): Promise<void> {
    const targetDir = join(this.dir, artifactPath);
    const target = join(targetDir, basename(localPath));
    if (resolve(localPath) === target) return; // written in place already
    await mkdir(targetDir, { recursive: true });
    await copyFile(localPath, target);
  }

  async flush(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFile(
      join(this.dir, 'run.json'),
      `${JSON.stringify({ tags: this.tags, metrics: this.metrics }, null, 2)}\n`,
    );
  }
}
