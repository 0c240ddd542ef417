/**
 * Free space on the state directory's file system (checkpoints, feature cache, trial work
 * directories, journals and, for the managed server, MLflow's store), checked before the
 * sweep and before every trial: a trial started on a nearly full disk fails late, after its
 * work, and a full disk can take the tracking store down with it. VCP_EXP_MIN_FREE_MB sets
 * the floor (default 512; 0 turns the check off).
 */
import { statfs } from 'node:fs/promises';
import { UserError } from '../errors.js';

export const DEFAULT_MIN_FREE_MB = 512;

/** The floor in bytes from VCP_EXP_MIN_FREE_MB (an invalid value is an error naming it). */
export function minFreeBytes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.VCP_EXP_MIN_FREE_MB?.trim();
  if (!raw) return DEFAULT_MIN_FREE_MB * 1024 * 1024;
  const mb = Number(raw);
  if (!Number.isFinite(mb) || mb < 0)
    throw new UserError(`VCP_EXP_MIN_FREE_MB="${raw}": expected a number of megabytes ≥ 0`);
  return mb * 1024 * 1024;
}

/** Bytes available to this user on the file system holding `path`. */
export async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/** "disk full at <path>: …" when less than the floor is free, else undefined. */
export async function lowDiskSpace(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  const floor = minFreeBytes(env);
  if (floor === 0) return undefined;
  const free = await freeBytes(path);
  return free < floor
    ? `disk full at ${path}: ${mb(free)} free, at least ${mb(floor)} needed before a trial starts (VCP_EXP_MIN_FREE_MB)`
    : undefined;
}
