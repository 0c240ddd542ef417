/**
 * Parsers for what Slurm's commands print (squeue, scontrol, sinfo, sbatch) and for the
 * messages slurmstepd writes into a job's output file. Pure functions, tested against output
 * captured from Slurm 22.05.
 */

/** squeue's output format: one array task per line with -r, fields split by '|'. */
export const SQUEUE_FORMAT = '%F|%K|%A|%T|%r|%N|%M|%l';

export interface QueuedTask {
  /** "<array job id>_<task id>". */
  jobId: string;
  arrayJobId: string;
  taskId: number;
  /** The task's own job id (the array record's id while it is still pending in it). */
  rawJobId: string;
  /** PENDING, RUNNING, COMPLETED, CANCELLED, … (squeue %T). */
  state: string;
  reason: string;
  node: string;
  /** Time used and limit, as squeue prints them. */
  elapsed: string;
  limit: string;
}

/** `squeue -h -r --states=all -o SQUEUE_FORMAT` → array tasks (other jobs are skipped). */
export function parseSqueue(text: string): QueuedTask[] {
  const out: QueuedTask[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split('|');
    if (f.length < 8) continue;
    const [arrayJobId, task, rawJobId, state, reason, node, elapsed, limit] = f;
    if (!/^\d+$/.test(arrayJobId) || !/^\d+$/.test(task)) continue;
    out.push({
      jobId: `${arrayJobId}_${task}`,
      arrayJobId,
      taskId: Number(task),
      rawJobId,
      state,
      reason: reason === 'None' ? '' : reason,
      node: node === '(null)' ? '' : node,
      elapsed,
      limit,
    });
  }
  return out;
}

/** `scontrol -o show job <id>`: one line per job of `Key=Value` pairs (values may hold spaces). */
export function parseScontrolJobs(text: string): Record<string, string>[] {
  const jobs: Record<string, string>[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('JobId=')) continue;
    const fields: Record<string, string> = {};
    const keys = [...line.matchAll(/(?:^|\s)([A-Za-z][\w:/]*)=/g)];
    keys.forEach((m, i) => {
      const start = m.index! + m[0].length;
      const end = i + 1 < keys.length ? keys[i + 1].index! : line.length;
      fields[m[1]] = line.slice(start, end).trim();
    });
    jobs.push(fields);
  }
  return jobs;
}

/** sbatch --parsable prints "<job id>" or "<job id>;<cluster>". */
export function parseSbatchJobId(stdout: string): string | undefined {
  const id = stdout.trim().split('\n').at(-1)?.split(';')[0].trim();
  return id && /^\d+$/.test(id) ? id : undefined;
}

export interface Gres {
  name: string;
  type?: string;
  count: number;
}

/**
 * A gres list as sinfo %G prints it ("gpu:a100:4(S:0-1),gpu:v100:2", "(null)") or as a job
 * asks for it ("gpu:1", "gpu:a100:2", "gpu").
 */
export function parseGres(text: string): Gres[] {
  const out: Gres[] = [];
  const clean = text.trim();
  if (!clean || clean === '(null)') return out;
  // Split on commas outside parentheses ("gpu:4(S:0-1)" holds a socket list).
  for (const item of clean.split(/,(?![^()]*\))/)) {
    const spec = item.replace(/\(.*\)$/, '').trim();
    if (!spec) continue;
    const parts = spec.split(':');
    const last = parts.at(-1)!;
    const hasCount = /^\d+[KMG]?$/.test(last) && parts.length > 1;
    const count = hasCount ? Number.parseInt(last, 10) : 1;
    const named = hasCount ? parts.slice(0, -1) : parts;
    out.push({ name: named[0], type: named[1], count });
  }
  return out;
}

export interface StepdMessage {
  /** Slurm's cause: undefined for a plain scancel, else e.g. "TIME LIMIT", "PREEMPTION". */
  cause?: string;
  jobId: string;
  node: string;
  at: string;
  line: string;
}

/**
 * The last "*** JOB <id> ON <node> CANCELLED AT <time> [DUE TO <cause>] ***" line slurmstepd
 * wrote into an output file: how a task was stopped, still there after Slurm forgot the job.
 */
export function lastStepdMessage(log: string): StepdMessage | undefined {
  const re = /\*\*\* JOB (\d+) ON (\S+) CANCELLED AT (\S+)(?: DUE TO ([A-Z][A-Z ]*?))? \*\*\*/g;
  let found: StepdMessage | undefined;
  for (const m of log.matchAll(re)) {
    const start = log.lastIndexOf('\n', m.index) + 1;
    const end = log.indexOf('\n', m.index);
    found = {
      jobId: m[1],
      node: m[2],
      at: m[3],
      cause: m[4],
      line: log.slice(start, end < 0 ? undefined : end).trim(),
    };
  }
  return found;
}

/** `scontrol show config` lines "Key = Value" → map. */
export function parseConfig(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+)\s*=\s*(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2].trim();
  }
  return out;
}
