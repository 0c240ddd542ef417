/**
 * What must hold before a sweep goes to Slurm, each failure a UserError saying what to do:
 * a tracking server the compute nodes can reach (not loopback), a shared directory, Slurm's
 * commands and a controller that answers, and the spec's partition and gres on the cluster.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { UserError } from '../../errors.js';
import type { Spec } from '../spec-types.js';
import { partitionGres, partitions, slurmConfig } from './slurm-cli.js';
import { parseGres } from './slurm-parse.js';

/** 127.0.0.0/8, ::1 (also IPv4-mapped), and the unspecified address (which means "this host"). */
export function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase().replace(/^::ffff:/, '');
  return /^127\./.test(a) || a === '::1' || a === '0.0.0.0' || a === '::';
}

/** True when the URI's host is, or resolves only to, loopback addresses. */
export async function isLoopbackUri(uri: string): Promise<boolean> {
  const host = new URL(uri).hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host)) return isLoopbackAddress(host);
  const addresses = await lookup(host, { all: true }).catch(() => []);
  return addresses.length > 0 && addresses.every((a) => isLoopbackAddress(a.address));
}

/** Refuses a tracking URI the compute nodes cannot reach. */
export async function checkTrackingUri(uri: string | undefined): Promise<void> {
  const hint =
    "start an MLflow server the nodes can reach, e.g. on the login node `vcp-exp mlflow ui --host 0.0.0.0 --port 5000` (or `mlflow server --host 0.0.0.0 --port 5000`, or your lab's server), then pass --tracking-uri http://<login node name>:5000 (or set tracking.uri / MLFLOW_TRACKING_URI)";
  if (!uri)
    throw new UserError(
      'the slurm executor needs a tracking server the compute nodes can reach; without --tracking-uri, tracking.uri or MLFLOW_TRACKING_URI vcp-exp would start its managed server on 127.0.0.1 of this machine, which no node can reach',
      { hint },
    );
  if (await isLoopbackUri(uri))
    throw new UserError(
      `tracking URI ${uri} is a loopback address: every Slurm task would talk to MLflow on its own node (127.0.0.1 there), not to this machine's server`,
      { hint },
    );
}

/** Paths written into #SBATCH lines and the job script must be plain (no blanks or quotes). */
export function checkPlainPath(what: string, path: string): void {
  if (/[\s'"\\%]/.test(path))
    throw new UserError(
      `${what} ${JSON.stringify(path)} contains a blank, a quote, a backslash or %`,
      {
        hint: 'Slurm reads job-script paths from #SBATCH lines: use a directory path without them',
      },
    );
}

/** The shared directory of a Slurm sweep (execution.shared_dir), required. */
export function sharedDirOf(spec: Spec): string {
  const dir = spec.execution.shared_dir;
  if (!dir)
    throw new UserError(
      `${spec.file}: execution.shared_dir is required with the slurm executor: a directory the compute nodes and this machine see at the same path, for the feature cache and the checkpoints`,
      {
        hint: 'add e.g. `shared_dir: /scratch/<you>/vcp-exp` (or a directory of the project, if the project is on shared storage) under execution:',
      },
    );
  checkPlainPath('execution.shared_dir', dir);
  return dir;
}

/** Checks Slurm's commands, the controller, and that the spec's partition and gres exist. */
export async function checkCluster(
  spec: Spec,
  env?: NodeJS.ProcessEnv,
): Promise<Record<string, string>> {
  const config = await slurmConfig(env);
  const r = spec.execution.slurm ?? {};
  if (r.gres && r.gpus)
    throw new UserError(
      `${spec.file}: execution.slurm has both gpus (${r.gpus}) and gres (${r.gres})`,
      { hint: 'keep one: gpus: <n> stands for gres gpu:<n>' },
    );
  const known = await partitions(env);
  const wanted = r.partition?.split(',').map((p) => p.trim()) ?? [];
  for (const p of wanted)
    if (!known.names.includes(p))
      throw new UserError(
        `${spec.file}: execution.slurm.partition "${p}" does not exist on this cluster`,
        { hint: `partitions here: ${known.names.join(', ') || '(none)'}` },
      );
  const gres = r.gres ?? (r.gpus ? `gpu:${r.gpus}` : undefined);
  if (gres) {
    const offered = (
      await Promise.all(
        (wanted.length > 0 ? wanted : [known.default]).map((p) => partitionGres(p, env)),
      )
    ).flat();
    const nodes = offered.map(parseGres);
    for (const want of parseGres(gres)) {
      const fits = nodes.some((node) =>
        node.some(
          (g) =>
            g.name === want.name &&
            (want.type === undefined || g.type === want.type) &&
            g.count >= want.count,
        ),
      );
      if (!fits)
        throw new UserError(
          `${spec.file}: no node of partition ${wanted.join(',') || known.default || '(default)'} has gres ${want.name}${want.type ? `:${want.type}` : ''}:${want.count} (execution.slurm.${r.gres ? 'gres' : 'gpus'})`,
          {
            hint: `the nodes offer: ${[...new Set(offered)].join(', ').replaceAll('(null)', 'no gres') || 'no gres'}`,
          },
        );
    }
  }
  return config;
}
