import { UserError } from '../errors.js';
import { pullClipCheckpoint } from '../model/clip/pull.js';
import { createProgress, humanBytes } from '../model/clip/progress.js';

export interface WeightsCommandOptions {
  revision: string | number;
  cacheDir?: string;
  endpoint?: string;
}

const ACTIONS = ['pull'] as const;

/** `vcp-exp weights pull <hub-id>`: downloads a Hugging Face CLIP checkpoint into the cache. */
export async function weightsCommand(
  action: string,
  id: string | number | undefined,
  options: WeightsCommandOptions,
): Promise<void> {
  if (action !== 'pull') {
    throw new UserError(`weights: unknown action "${action}"; available: ${ACTIONS.join(', ')}`, {
      hint: 'vcp-exp weights pull openai/clip-vit-large-patch14-336',
    });
  }
  if (!id)
    throw new UserError('weights pull: missing the model id', {
      hint: 'vcp-exp weights pull openai/clip-vit-large-patch14-336',
    });
  // The argument parser turns digit-only values (a short commit hash) into numbers.
  const revision = String(options.revision);
  const result = await pullClipCheckpoint({
    id: String(id),
    revision,
    cacheDir: options.cacheDir,
    endpoint: options.endpoint,
    progress: createProgress(process.stderr),
  });
  const { config, tensorCount, weightsBytes } = result.checkpoint;
  const v = config.vision;
  console.log(
    `${id}@${revision}${result.commit ? ` (commit ${result.commit.slice(0, 12)})` : ''} → ${result.dir}`,
  );
  console.log(
    `CLIP: vision ${v.layers}×${v.width} patch ${v.patchSize} at ${v.imageSize}px, text ${config.text.layers}×${config.text.width}, ` +
      `embed ${config.projectionDim}; ${tensorCount} tensors, ${humanBytes(weightsBytes)}`,
  );
  console.log(`refer to these weights as "${id}" (revision ${revision}) or by the directory above`);
}
