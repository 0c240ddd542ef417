/**
 * Command-line entry: parses arguments and hands each command to its module in
 * src/commands/ (imported lazily, so `vcp-exp --help` stays fast). Nothing else lives here.
 */
import { cac } from 'cac';
import { readFileSync } from 'node:fs';
import { exitCodeOf, formatError } from './errors.js';
import type { WeightsCommandOptions } from './commands/weights.js';
import { TRACKING_URI_RULE } from './tracking/tracking-uri.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
const cli = cac('vcp-exp');

/** The --tracking-uri option of every command that talks to MLflow: one rule everywhere. */
const TRACKING_URI_HELP = `[string] MLflow server; chosen by ${TRACKING_URI_RULE}`;
/** What `[...overrides]` accepts (src/runner/overrides.ts). */
const OVERRIDES_NOTE =
  "; overrides: key=value after the spec, e.g. heads=4 train.epochs=2 'sweep.grid.alpha=[0.5,0.8]' seeds=3";

cli.option('--backend <name>', '[string] tfjs backend: auto | tensorflow | wasm | cpu', {
  default: 'auto',
});
cli.option('--debug', '[boolean] print full stack traces on errors');

cli
  .command(
    'setup [part]',
    'Install what vcp-exp needs beyond npm install into the user cache (~/.cache/vcp-exp): the native TensorFlow backend (its GPU build too when an NVIDIA driver is visible) and the pinned MLflow; part: native | gpu | mlflow | all (default)',
  )
  .option('--strict', '[boolean] exit non-zero when a part cannot be set up (default: warn)')
  .option(
    '--gpu',
    '[boolean] also build the GPU build (CUDA 12, ~2 GB download), even without an NVIDIA driver here',
  )
  .option(
    '--wheel',
    "[boolean] native: build from PyPI's TensorFlow wheel without trying the official download",
  )
  .action(
    async (
      part: string | undefined,
      options: { strict?: boolean; wheel?: boolean; gpu?: boolean },
    ) => (await import('./commands/setup.js')).setupCommand(part, options),
  );

cli
  .command(
    'backend',
    'Show the tfjs backend vcp-exp would use, the GPU it computes on or why none, and its matMul speed',
  )
  .action(async (options: { backend: string }) =>
    (await import('./commands/backend.js')).backendCommand(options),
  );

cli
  .command(
    'metrics <maps-dir> <masks-dir>',
    'Evaluate anomaly maps (.npy / 16-bit PNG per image, products = first folder level) against PNG masks',
  )
  .option('--json', '[boolean] print per-product metrics and the mean as JSON')
  .option(
    '--pro <variant>',
    '[string] PRO variant: paper (public cal_pro_score) | exact (AUPRO to FPR 0.3) (default: paper)',
  )
  .action(async (mapsDir: string, masksDir: string, options: { json?: boolean; pro?: string }) =>
    (await import('./commands/metrics.js')).metricsCommand(mapsDir, masksDir, options),
  );

cli
  .command(
    'plan <spec> [...overrides]',
    `Validate an experiment spec and print its trials, the images they read, what is missing here and a time estimate${OVERRIDES_NOTE}`,
  )
  .option('--json', '[boolean] print the plan as JSON')
  .option(
    '--tracking-uri <uri>',
    `[string] MLflow server asked which trials are finished and how long earlier ones took; chosen by ${TRACKING_URI_RULE} (the managed one only if running, or with --mlflow)`,
  )
  .option(
    '--mlflow',
    '[boolean] start the managed MLflow server to check finished trials if it is not running',
  )
  .option(
    '--feature-cache-gb <gb>',
    '[number] the frozen-feature cache budget to plan with (default: as vcp-exp run decides it)',
  )
  .option(
    '--calibrate',
    '[boolean] measure this machine even when earlier runs in MLflow give the per-image costs',
  )
  .option('--no-estimate', '[boolean] no time estimate (measures nothing)')
  .action(
    async (
      spec: string,
      overrides: string[],
      options: {
        json?: boolean;
        trackingUri?: string;
        mlflow?: boolean;
        featureCacheGb?: number;
        calibrate?: boolean;
        estimate?: boolean;
      },
    ) => (await import('./commands/plan.js')).planCommand(spec, { ...options, overrides }),
  );

/** The options `run` and `rerun` share: how the sweep's trials are executed and tracked. */
function withSweepOptions(command: ReturnType<typeof cli.command>) {
  return command
    .option('--workers <n>', '[number] trials at once (default: execution.workers)')
    .option('--fail-fast', '[boolean] start no more trials after the first failure')
    .option(
      '--progress <mode>',
      '[string] plain | fancy (default: fancy on a terminal, plain otherwise)',
    )
    .option('--tracking-uri <uri>', TRACKING_URI_HELP)
    .option(
      '--feature-cache-gb <gb>',
      '[number] disk budget of the frozen-feature cache (default: VCP_EXP_FEATURE_CACHE_GB, execution.feature_cache.budget_gb, or from the free disk space)',
    )
    .option(
      '--executor <name>',
      '[string] local | slurm (default: execution.executor); slurm submits job arrays with sbatch',
    )
    .option(
      '--detach',
      '[boolean] slurm: return once the jobs are submitted (vcp-exp status <spec> follows them)',
    );
}

withSweepOptions(
  cli.command(
    'run <spec> [...overrides]',
    `Run a sweep: every trial of the spec not already FINISHED in MLflow, in worker processes${OVERRIDES_NOTE}`,
  ),
).action(async (spec: string, overrides: string[], options: Record<string, unknown>) =>
  (await import('./commands/run.js')).runCommand(spec, { ...options, overrides }),
);

withSweepOptions(
  cli.command(
    'quickstart',
    'Run the quickstart sweep (tiny CLIP, synthetic data, 12 trials) in the current directory: writes quickstart.yaml, runs it, reports to reports/quickstart/',
  ),
).action(async (options: Record<string, unknown>) =>
  (await import('./commands/quickstart.js')).quickstartCommand(options),
);

withSweepOptions(
  cli.command(
    'rerun <spec> [...overrides]',
    `Add seeds to a sweep (--seeds N per configuration) and run only the new trials (vcp-exp report includes them)${OVERRIDES_NOTE}`,
  ),
)
  .option('--seeds <n>', '[number] seeds per configuration wanted')
  .action(async (spec: string, overrides: string[], options: Record<string, unknown>) =>
    (await import('./commands/run.js')).rerunCommand(spec, { ...options, overrides }),
  );

cli
  .command(
    'status <spec>',
    'Follow the trials of a spec submitted to Slurm (re-attach after --detach); --once prints their state and exits',
  )
  .option('--once', "[boolean] record what has ended, print every trial's state and exit")
  .option(
    '--progress <mode>',
    '[string] plain | fancy (default: fancy on a terminal, plain otherwise)',
  )
  .option('--tracking-uri <uri>', TRACKING_URI_HELP)
  .action(async (spec: string, options: Record<string, unknown>) =>
    (await import('./commands/status.js')).statusCommand(spec, options),
  );

cli
  .command(
    'report <spec> [...overrides]',
    `Regenerate the tables (Markdown, LaTeX, CSV) and figures (SVG, PNG) of a spec from its MLflow runs, every finished seed of each sweep point${OVERRIDES_NOTE} (the same as the run's)`,
  )
  .option('--tracking-uri <uri>', TRACKING_URI_HELP)
  .option('--out <dir>', '[string] output folder (default: reports/<spec name>)')
  .action(
    async (spec: string, overrides: string[], options: { trackingUri?: string; out?: string }) =>
      (await import('./commands/report.js')).reportCommand(spec, { ...options, overrides }),
  );

cli
  .command(
    'compare <a> <b>',
    'Two runs side by side (run ids or trial ids): params with differences marked, metrics, MLflow UI link',
  )
  .option(
    '--tracking-uri <uri>',
    '[string] MLflow server; chosen by --tracking-uri, else MLFLOW_TRACKING_URI, else the managed local server',
  )
  .action(async (a: string, b: string, options: { trackingUri?: string }) =>
    (await import('./commands/compare.js')).compareCommand(a, b, options),
  );

cli
  .command(
    'weights <action> [id]',
    'CLIP weights: `weights pull <hub-id>` (safetensors, a conversion PR, pytorch_model.bin or OpenCLIP, converted safely), `weights list`, `weights verify <hub-id>`',
  )
  .option('--revision <rev>', '[string] branch, tag, refs/pr/N or commit', { default: 'main' })
  .option(
    '--cache-dir <dir>',
    '[string] cache root (default: $VCP_EXP_CACHE, $XDG_CACHE_HOME/vcp-exp or ~/.cache/vcp-exp)',
  )
  .option(
    '--endpoint <url>',
    '[string] Hugging Face-compatible server (default: $HF_ENDPOINT or https://huggingface.co)',
  )
  .option(
    '--hf-cache',
    'pull: download into the Hugging Face cache ($HF_HUB_CACHE or $HF_HOME/hub), where Python finds it too',
  )
  .option(
    '--refresh',
    'pull: ask the server even when a local copy exists (a branch may have moved)',
  )
  .option('--offline', 'pull: never use the network (default when HF_HUB_OFFLINE is set)')
  .option(
    '--safetensors-only',
    'pull: refuse pytorch_model.bin / open_clip_pytorch_model.bin (otherwise read by a restricted reader that runs no pickle code)',
  )
  .option(
    '--tokenizer-from <id>',
    '[string] pull: tokenizer repository for checkpoints that ship none (default openai/clip-vit-large-patch14)',
  )
  .option(
    '--max-bytes <n>',
    '[number] pull: largest file accepted when the server announces no size',
  )
  .option('--json', 'list: print JSON')
  .action(async (action: string, id: string | undefined, options: WeightsCommandOptions) =>
    (await import('./commands/weights.js')).weightsCommand(action, id, options),
  );

cli
  .command(
    'data <action> <dir>',
    'Datasets: `data check <root>` validates a dataset, `data synth <out-dir>` writes a synthetic one',
  )
  .option(
    '--format <format>',
    '[string] check: dataset layout mvtec | visa | meta | folder (default: detected)',
  )
  .option('--products <list>', '[string] comma-separated products (default: all)')
  .option('--quick', '[boolean] check: read image headers only, skip full decoding')
  .option('--seed <n>', '[number] synth: random seed (default: 0)')
  .option('--size <n>', '[number] synth: image side in pixels (default: 256)')
  .option('--train-good <n>', '[number] synth: train/good images per product (default: 10)')
  .option('--test-good <n>', '[number] synth: test/good images per product (default: 5)')
  .option('--test-defect <n>', '[number] synth: test images per defect kind (default: 3)')
  .action(async (action: string, dir: string, options: Record<string, unknown>) =>
    (await import('./commands/data.js')).dataCommand(action, dir, options),
  );

cli
  .command(
    'mlflow <action>',
    'Local MLflow server: `mlflow ui` starts it and keeps it up until Ctrl-C, `mlflow stop`, `mlflow status`',
  )
  .option('--port <n>', '[number] ui: port (default: a free one)')
  .option(
    '--host <address>',
    '[string] ui: address to listen on (default 127.0.0.1; 0.0.0.0 lets Slurm nodes reach it)',
  )
  .option(
    '--compare <runs>',
    '[string] ui: also print the link comparing these runs (run ids, comma-separated)',
  )
  .action(async (action: string, options: { port?: number; host?: string; compare?: string }) =>
    (await import('./commands/mlflow.js')).mlflowCommand(action, options),
  );

cli
  .command(
    'train <spec>',
    'Train one trial of a spec (or reuse its training), evaluate it on the eval datasets, print the metrics and keep everything in --out',
  )
  .option(
    '--out <dir>',
    '[string] output directory (default: .vcp-exp/runs/<spec name>/<trial id>)',
  )
  .option(
    '--retrain',
    '[boolean] train even if a checkpoint of this training exists (in .vcp-exp/checkpoints, shared with vcp-exp run)',
  )
  .option(
    '--feature-cache-gb <gb>',
    '[number] disk budget of the frozen-feature cache (default: VCP_EXP_FEATURE_CACHE_GB, execution.feature_cache.budget_gb, or from the free disk space)',
  )
  .action(
    async (
      spec: string,
      options: { backend: string; out?: string; retrain?: boolean; featureCacheGb?: number },
    ) => (await import('./commands/train.js')).trainCommand(spec, options),
  );

cli
  .command(
    'import <method> [file]',
    "Import a released checkpoint: `import vcp-clip|vip2-clip <file.pth> --clip <dir|hub id> --out <dir>` reads the authors' train.py .pth (without PyTorch, nothing executed)",
  )
  .option(
    '--clip <ref>',
    '[string] the CLIP it was trained on: a checkpoint directory, a known name or a pulled hub id',
  )
  .option(
    '--layers <list>',
    "[string] 1-based vision blocks of its per-layer maps (default: the method's, 6,12,18,24)",
  )
  .option('--image-size <n>', '[number] input size S (default: 518)')
  .option('--out <dir>', '[string] the checkpoint directory to write')
  .action(
    async (
      method: string,
      file: string | undefined,
      options: { clip?: string; layers?: string; imageSize?: number; out?: string },
    ) => (await import('./commands/import.js')).importCommand(method, file, options),
  );

cli
  .command(
    'predict [...images]',
    "Anomaly maps of images with a checkpoint: overlays at each image's size, raw maps, scores (each image on its own)",
  )
  .option('--checkpoint <dir>', '[string] checkpoint directory (vcp-exp train or vcp-exp import)')
  .option('--run <id>', "[string] a trial's checkpoint from MLflow: its run id or trial id")
  .option(
    '--tracking-uri <uri>',
    '[string] with --run: the MLflow server; chosen by --tracking-uri, else MLFLOW_TRACKING_URI, else the managed local server',
  )
  .option('--out <dir>', '[string] output directory for overlays and raw maps')
  .option(
    '--dump <dir>',
    '[string] also write text embeddings, per-layer maps, the fused and final maps and the score as float32 .npy',
  )
  .option('--raw <format>', '[string] raw map format: npy (float32) | png16 (default: npy)')
  .option(
    '--normalize <mode>',
    '[string] none: raw map and score per image | set: min–max over the given images, as evaluation (default: none)',
  )
  .option(
    '--alpha <a>',
    "[number] weight of the VCP map in the fused map (default: the checkpoint's)",
  )
  .option(
    '--sigma <s>',
    "[number] Gaussian smoothing of the final map in pixels, 0 = none (default: the checkpoint's)",
  )
  .action(
    async (images: string[], options: Record<string, string | undefined> & { backend: string }) =>
      (await import('./commands/predict.js')).predictCommand(images, options),
  );

cli.help();
cli.version(pkg.version);

/**
 * The commands that load the native TensorFlow backend in this process (the others leave it
 * to trial and calibration processes, whose output goes to logs, or never load it).
 */
const NATIVE_BACKEND_COMMANDS = new Set(['backend', 'train', 'predict']);

/** Whether the matched command may load the native backend here (not with --backend wasm|cpu). */
function mayLoadNativeBackend(): boolean {
  const backend = String(cli.options.backend);
  return (
    NATIVE_BACKEND_COMMANDS.has(cli.matchedCommand?.name ?? '') &&
    backend !== 'wasm' &&
    backend !== 'cpu'
  );
}

async function main(): Promise<void> {
  cli.parse(process.argv, { run: false });
  // cac has printed the help or version (of a subcommand too): nothing else to do.
  if (cli.options.help || cli.options.version) return;
  if (!cli.matchedCommand) {
    if (cli.args.length > 0) {
      console.error(`unknown command "${cli.args.join(' ')}"; see vcp-exp --help`);
      process.exitCode = 2;
    } else {
      cli.outputHelp();
    }
    return;
  }
  // TensorFlow's C++ start-up lines cannot be silenced in-process: run behind a stderr filter.
  if (mayLoadNativeBackend()) {
    const { runFilteredSelf, wantsFilteredSelf } = await import('./io/filtered-self.js');
    if (wantsFilteredSelf()) return runFilteredSelf();
  }
  await cli.runMatchedCommand();
}

main().catch((error: unknown) => {
  console.error(`vcp-exp: ${formatError(error, Boolean(cli.options.debug))}`);
  process.exitCode = exitCodeOf(error);
});
