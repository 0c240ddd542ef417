/**
 * The trial's own log (`logs/trial.log` of its run): a config summary, then one timestamped
 * line per progress event (phases, epochs with loss and time, evaluation progress, one line
 * per product with its headline metrics). The trial process writes these lines to its stdout,
 * which the executor sends to the log file together with stderr (warnings, errors).
 */
import { describeBackend, type BackendInfo } from '../model/backend.js';
import type { Trial } from './spec-types.js';
import type { TrialEvent } from './trial-events.js';

const show = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** Model fields too long for the summary line (the run's params and config.json hold them). */
const LONG_FIELDS = new Set(['templates', 'state_words']);

/** What the trial runs, in a few lines. */
export function configSummary(trial: Trial, backend?: BackendInfo): string[] {
  const { method, model, train, eval: evaluation } = trial.config;
  const point = Object.entries(trial.point)
    .map(([k, v]) => `${k}=${show(v)}`)
    .join(' ');
  const fields = Object.entries(model)
    .filter(([k]) => !LONG_FIELDS.has(k))
    .map(([k, v]) => `${k}=${show(v)}`)
    .join(' ');
  const lines = [
    `trial ${trial.id} (training key ${trial.trainingKey}), seed ${trial.seed}${point ? `, ${point}` : ''}`,
    `method ${method}: ${fields}`,
  ];
  if (train.checkpoint) lines.push(`train: evaluates the checkpoint ${train.checkpoint}`);
  else if (train.dataset) {
    const ds = train.dataset;
    const augment = Object.entries(train.augment)
      .map(([k, v]) => `${k}=${show(v)}`)
      .join(' ');
    lines.push(
      `train: ${ds.format} ${ds.root} products=${show(ds.products)} split=${ds.split}; ${train.epochs} epochs, batch ${train.batch_size} (micro ${train.micro_batch}); augment ${augment}`,
    );
  }
  for (const d of evaluation.datasets)
    lines.push(`eval ${d.name}: ${d.format} ${d.root} products=${show(d.products)} (test split)`);
  lines.push(
    `eval: PRO ${evaluation.pro}, ${evaluation.prompts === null ? 'training prompts' : `${evaluation.prompts.length} test-time prompt pair(s)`}`,
  );
  if (backend) lines.push(`backend: ${describeBackend(backend)}`);
  return lines;
}

const pct = (v: number) => (100 * v).toFixed(2);

/** A log line for an event (undefined: not logged, e.g. single optimiser steps). */
export function trialLogLine(event: TrialEvent): string | undefined {
  switch (event.type) {
    case 'log':
      return event.text;
    case 'phase':
      return `${event.phase}: ${event.detail}`;
    case 'step':
      return undefined;
    case 'epoch':
      return `epoch ${event.epoch + 1}/${event.epochs}: loss ${event.loss.toFixed(4)}${event.seconds === undefined ? '' : ` (${event.seconds.toFixed(1)} s)`}`;
    case 'images':
      return `evaluate ${event.dataset}: ${event.done}/${event.total} images (${event.rate.toFixed(1)} images/s), at ${event.product}`;
    case 'product': {
      const metrics = Object.entries(event.metrics ?? {})
        .map(([k, v]) => `${k} ${pct(v)}`)
        .join(', ');
      const counts =
        event.images === undefined
          ? ''
          : ` ${event.images} image${event.images === 1 ? '' : 's'} (${event.anomalous ?? 0} anomalous)`;
      const defects = event.defects ? `; ${event.defects} defect types evaluated separately` : '';
      return `evaluate ${event.dataset}/${event.product} (${event.done}/${event.total}):${counts}${metrics ? `, ${metrics} %` : ''}${event.seconds === undefined ? '' : ` in ${event.seconds.toFixed(1)} s`}${defects}`;
    }
    case 'done': {
      const t = event.summary.timings;
      return `done in ${t.total_s.toFixed(1)} s (train ${t.train_s.toFixed(1)} s, evaluation ${t.eval_s.toFixed(1)} s, features ${t.features_s.toFixed(1)} s)`;
    }
  }
}

/** Writes event lines with a wall-clock time, e.g. `[12:03:04] epoch 2/5: loss 0.5123 (3.1 s)`. */
export class TrialLog {
  constructor(private readonly write: (line: string) => void) {}

  line(text: string): void {
    const time = new Date().toISOString().slice(11, 19);
    for (const part of text.split('\n')) this.write(`[${time}] ${part}`);
  }

  event(event: TrialEvent): void {
    const text = trialLogLine(event);
    if (text !== undefined) this.line(text);
  }
}
