/**
 * MLflow tags of the Slurm executor. Everything the runner needs to follow a submitted trial
 * again later (`vcp-exp status`, a second `vcp-exp run`) is on the trial's run: its array
 * task, where its Slurm output and job script are, and whether its end was recorded.
 */
export const SLURM_TAGS = Object.freeze({
  /** "slurm" on the sweep run and the trial runs of a Slurm sweep. */
  executor: 'vcp.executor',
  /** The array task, "<array job id>_<task id>". */
  jobId: 'vcp.slurm_job_id',
  /** The user who submitted it (squeue is asked about that user's jobs). */
  user: 'vcp.slurm_user',
  /** The task's own job id (SLURM_JOB_ID), the id in slurmstepd's messages. */
  rawJobId: 'vcp.slurm_raw_job_id',
  node: 'vcp.slurm_node',
  restarts: 'vcp.slurm_restarts',
  /** Slurm's final state (COMPLETED, FAILED, CANCELLED, TIMEOUT, …, or VANISHED). */
  state: 'vcp.slurm_state',
  /** Slurm's reason for that state (squeue %r / scontrol Reason), with the exit code. */
  reason: 'vcp.slurm_reason',
  log: 'vcp.slurm_log',
  script: 'vcp.slurm_script',
  events: 'vcp.slurm_events',
  /** The trial whose training (same training key) this task waits for, if any. */
  after: 'vcp.slurm_after_trial',
  /** "true" once the runner recorded the task's end (state, reason, log and script artifacts). */
  recorded: 'vcp.slurm_recorded',
});
