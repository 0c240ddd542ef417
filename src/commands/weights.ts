import { UserError } from '../errors.js';
import { cacheRoot } from '../model/clip/cache.js';
import { hfHubCacheRoot } from '../model/clip/hf-cache.js';
import { createProgress, humanBytes } from '../model/clip/progress.js';

export interface WeightsCommandOptions {
  revision: string | number;
  cacheDir?: string;
  endpoint?: string;
  hfCache?: boolean;
  refresh?: boolean;
  offline?: boolean;
  safetensorsOnly?: boolean;
  tokenizerFrom?: string;
  maxBytes?: string | number;
  json?: boolean;
}

const ACTIONS = ['pull', 'list', 'verify'] as const;
const EXAMPLE = 'vcp-exp weights pull openai/clip-vit-large-patch14-336';

/**
 * `vcp-exp weights pull <hub-id>`: a CLIP checkpoint into the cache, from whichever format the
 * repository publishes; `weights list`: what is available locally (ours and Python's Hugging
 * Face cache); `weights verify <hub-id>`: re-hash and re-validate a local copy.
 */
export async function weightsCommand(
  action: string,
  id: string | number | undefined,
  options: WeightsCommandOptions,
): Promise<void> {
  if (!(ACTIONS as readonly string[]).includes(action))
    throw new UserError(`weights: unknown action "${action}"; available: ${ACTIONS.join(', ')}`, {
      hint: EXAMPLE,
    });
  // The argument parser turns digit-only values (a short commit hash) into numbers.
  const revision = String(options.revision);
  const roots = { root: options.cacheDir ?? cacheRoot(), hfRoot: hfHubCacheRoot() };
  if (action === 'list') return list(roots, options.json === true);
  if (!id)
    throw new UserError(`weights ${action}: missing the model id`, {
      hint:
        action === 'pull' ? EXAMPLE : 'vcp-exp weights verify openai/clip-vit-large-patch14-336',
    });
  if (action === 'verify') return verify(String(id), revision, roots);
  const maxBytes = options.maxBytes === undefined ? undefined : Number(options.maxBytes);
  if (maxBytes !== undefined && !(Number.isSafeInteger(maxBytes) && maxBytes > 0))
    throw new UserError(
      `weights pull: --max-bytes ${options.maxBytes} is not a positive number of bytes`,
    );
  const { pullClipCheckpoint } = await import('../model/clip/pull.js');
  const result = await pullClipCheckpoint({
    id: String(id),
    revision,
    cacheDir: options.cacheDir,
    endpoint: options.endpoint,
    hfCache: options.hfCache,
    refresh: options.refresh,
    offline: options.offline,
    safetensorsOnly: options.safetensorsOnly,
    tokenizerFrom: options.tokenizerFrom,
    maxBytes,
    progress: createProgress(process.stderr),
  });
  const { config, tensorCount, weightsBytes } = result.checkpoint;
  const v = config.vision;
  console.log(
    `${id}@${revision}${result.commit ? ` (commit ${result.commit.slice(0, 12)})` : ''} → ${result.dir}`,
  );
  console.log(`weights: ${result.origin}`);
  for (const note of result.notes) console.log(`note: ${note}`);
  console.log(
    `CLIP: vision ${v.layers}×${v.width} patch ${v.patchSize} at ${v.imageSize}px, text ${config.text.layers}×${config.text.width}, ` +
      `embed ${config.projectionDim}; ${tensorCount} tensors, ${humanBytes(weightsBytes)}; sha256 ${result.manifest.files['model.safetensors']?.sha256}`,
  );
  console.log(
    `refer to these weights as "${id}"${revision === 'main' ? '' : ` (revision ${revision})`} or by the directory above`,
  );
}

async function list(roots: { root: string; hfRoot: string }, json: boolean): Promise<void> {
  const { listLocalWeights } = await import('../model/clip/inventory.js');
  const entries = await listLocalWeights(roots);
  if (json) {
    console.log(JSON.stringify(entries, null, 2));
    return;
  }
  if (entries.length === 0) {
    console.log(`no CLIP weights in ${roots.root} nor in the Hugging Face cache ${roots.hfRoot}`);
    console.log(`download some with: ${EXAMPLE}`);
    return;
  }
  const rows = [
    ['ID', 'REVISION', 'FORMAT', 'WHERE', 'SIZE', 'SHA256'],
    ...entries.map((e) => [
      e.id,
      e.revision.length > 24 ? `${e.revision.slice(0, 21)}…` : e.revision,
      e.format,
      e.where,
      e.size === undefined ? '-' : humanBytes(e.size),
      e.sha256 ?? '(not hashed yet)',
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const row of rows)
    console.log(
      row
        .map((cell, i) => cell.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    );
  for (const e of entries)
    if (e.format.endsWith('(convert)')) {
      console.log(
        `\n"(convert)" entries are used after one offline conversion: vcp-exp weights pull <id>`,
      );
      break;
    }
}

async function verify(
  id: string,
  revision: string,
  roots: { root: string; hfRoot: string },
): Promise<void> {
  const { verifyLocalWeights } = await import('../model/clip/inventory.js');
  const report = await verifyLocalWeights(id, revision, roots);
  for (const c of report.checks)
    console.log(
      `${c.ok ? 'ok  ' : 'BAD '} ${c.file}: sha256 ${c.ok ? c.actual : `${c.actual}, expected ${c.expected}`} (${c.against})`.replace(
        'sha256',
        c.against.includes('git sha1') ? 'git sha1' : 'sha256',
      ),
    );
  const bad = report.checks
    .filter((c) => !c.ok)
    .map((c) => `${c.file} does not match its ${c.against}`);
  const problems = [...bad, ...report.problems];
  if (problems.length > 0)
    throw new UserError(
      `weights verify ${id} (${revision}): ${problems.length} problem${problems.length > 1 ? 's' : ''} in ${report.dir}: ${problems.join('; ')}`,
      {
        hint:
          report.where === 'vcp-exp'
            ? `delete ${report.dir} and run: vcp-exp weights pull ${id}${revision === 'main' ? '' : ` --revision ${revision}`}`
            : `the Hugging Face cache entry is damaged: delete ${report.dir} (or run huggingface-cli delete-cache) and download it again`,
      },
    );
  console.log(
    `${id} (${revision}): ${report.checks.length} files verified, checkpoint valid (${report.dir})`,
  );
}
