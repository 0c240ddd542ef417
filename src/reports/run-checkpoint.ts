/**
 * The checkpoint a trial ran with, fetched from MLflow: a trial that trained logged it under
 * `checkpoint/`; a trial that reused or was given one points to it with `vcp.checkpoint_from`
 * (the run that logged it, or a local directory). Downloaded once per run into a cache folder.
 */
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS } from '../model/checkpoint.js';
import { TRIAL_TAGS } from '../runner/trial.js';
import { ArtifactStore } from '../tracking/artifacts.js';
import type { MlflowClient } from '../tracking/client.js';
import type { Run } from '../tracking/types.js';
import { resolveRun } from './compare.js';

const ARTIFACT_DIR = 'checkpoint';
const RUN_ID = /^[0-9a-f]{32}$/;

const tag = (run: Run, key: string) => run.data.tags.find((t) => t.key === key)?.value;
const isCheckpoint = (dir: string) =>
  existsSync(join(dir, CHECKPOINT_CONFIG)) && existsSync(join(dir, CHECKPOINT_WEIGHTS));

/**
 * The local directory of the checkpoint of `ref` (a run id or a trial id), downloading it into
 * `<cacheDir>/<run id>/` when it is an artifact.
 */
export async function fetchRunCheckpoint(
  client: MlflowClient,
  ref: string,
  cacheDir: string,
): Promise<{ dir: string; runId: string; source: string }> {
  const run = await resolveRun(client, ref);
  const store = new ArtifactStore(client);
  const logged = async (owner: Run): Promise<boolean> =>
    (await store.list(owner.info.run_id, ARTIFACT_DIR)).some((f) =>
      f.path.endsWith(`/${CHECKPOINT_WEIGHTS}`),
    );
  let owner = run;
  if (!(await logged(run))) {
    const from = tag(run, TRIAL_TAGS.checkpointFrom);
    if (from && !RUN_ID.test(from)) {
      if (isCheckpoint(from)) return { dir: from, runId: run.info.run_id, source: from };
      throw new UserError(
        `run ${run.info.run_id} evaluated the checkpoint ${from}, which is not here and was not logged to MLflow`,
        { hint: 'run predict on the machine that holds it, with --checkpoint' },
      );
    }
    if (!from) {
      throw new UserError(
        `run ${run.info.run_id} (${ref}) has no logged checkpoint and no ${TRIAL_TAGS.checkpointFrom} tag`,
        { hint: 'pass the run or trial id of a vcp-exp trial that finished training' },
      );
    }
    owner = await client.getRun(from);
    if (!(await logged(owner)))
      throw new UserError(`run ${from}, which ${ref} reused, has no logged checkpoint`);
  }
  const runId = owner.info.run_id;
  const dir = join(cacheDir, runId);
  if (!isCheckpoint(dir)) {
    const partial = `${dir}.partial-${process.pid}`;
    await rm(partial, { recursive: true, force: true });
    await store.downloadDir(runId, ARTIFACT_DIR, partial);
    await rm(dir, { recursive: true, force: true });
    await rename(partial, dir);
  }
  return { dir, runId, source: `MLflow run ${runId}` };
}
