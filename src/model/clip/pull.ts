/**
 * `vcp-exp weights pull <id>`: a CLIP checkpoint directory (config.json, model.safetensors,
 * tokenizer files) in our cache, from whatever the repository publishes. Resolution order:
 *  1. what is already local, without the network: our cache (a directory with a manifest), then
 *     Python's Hugging Face cache (refs/<revision> → snapshots/<commit>/), used where it lies;
 *  2. `model.safetensors` on the revision (a Hugging Face CLIP config.json next to it);
 *  3. the repository's safetensors conversion pull request (Hub API; opened by SFconvertbot and
 *     converted from the same pytorch_model.bin), pinned by its commit and named;
 *  4. `pytorch_model.bin`, read by the restricted torch-zip reader and converted here;
 *  5. the OpenCLIP / timm layout (open_clip_config.json + open_clip_model.safetensors or
 *     open_clip_pytorch_model.bin, OpenAI parameter names), converted here.
 * (pull-plan.ts decides 2–5, pull-listing.ts lists, pull-files.ts fetches.) Every file is pinned
 * to the commit the revision resolved to and verified (size, sha256, and weights that parse with
 * every tensor the config needs) before it is placed; the manifest is written last.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { PickleRefused } from '../../io/pickle.js';
import { parseClipConfig, type ClipConfig } from './config.js';
import { convertTorchBin } from './convert-torch.js';
import { hfRepoDir } from './hf-cache.js';
import {
  MANIFEST_FILE,
  readManifest,
  writeManifest,
  type WeightsFormat,
  type WeightsManifest,
} from './manifest.js';
import { convertOpenClip, OPEN_CLIP_CONFIG, openClipConfigToHf } from './open-clip.js';
import { PullContext, type FileStatus, type PullOptions } from './pull-context.js';
import { fetchSource, placeFile, removeStale, replaceFile, SOURCE_DIR } from './pull-files.js';
import { localListing, onlineListing, TOKENIZER_FILES, TORCH_FILE } from './pull-listing.js';
import { isLocal, planFormat, type Plan } from './pull-plan.js';
import { openTensorSource } from './tensor-source.js';
import {
  checkWeightsFile,
  inspectClipCheckpoint,
  rememberHash,
  sha256File,
  WEIGHTS_FILE,
  type CheckpointSummary,
} from './weights.js';

export { DEFAULT_ENDPOINT, resolveEndpoint } from './pull-context.js';
export type { FileStatus, PullOptions } from './pull-context.js';
export { DEFAULT_TOKENIZER_REPO } from './pull-plan.js';

export interface PullResult {
  dir: string;
  /** The commit the revision resolved to, when known. */
  commit?: string;
  format: WeightsFormat;
  /** One sentence: where the weights came from. */
  origin: string;
  files: { name: string; status: FileStatus }[];
  checkpoint: CheckpointSummary;
  manifest: WeightsManifest;
  /** Things the user should know (ignored pull requests, skipped tensors). */
  notes: string[];
}

export async function pullClipCheckpoint(options: PullOptions): Promise<PullResult> {
  const ctx = new PullContext(options);
  if (!options.refresh) {
    const ours = await fromOurCache(ctx);
    if (ours) return ours;
    const local = localListing(ctx, ctx.id, ctx.revision);
    if (local) {
      const plan = await planFormat(ctx, local).catch((error: unknown) => {
        if (ctx.offline) throw error;
        return undefined; // an incomplete or unusable snapshot: ask the server
      });
      if (plan && isLocal(plan)) return assemble(ctx, plan);
    }
  }
  if (ctx.offline)
    throw new UserError(
      `${ctx.where} is not available offline: not in ${ctx.dir} nor in the Hugging Face cache ${hfRepoDir(ctx.hfRoot, ctx.id)}`,
      {
        hint: 'unset HF_HUB_OFFLINE (or drop --offline) to download it, or download it with Python first',
      },
    );
  return assemble(ctx, await planFormat(ctx, await onlineListing(ctx, ctx.id, ctx.revision)));
}

/** Our directory, complete (a manifest for this revision, every file of it there). */
async function fromOurCache(ctx: PullContext): Promise<PullResult | undefined> {
  const manifest = await readManifest(ctx.dir);
  if (!manifest || manifest.id !== ctx.id || manifest.revision !== ctx.revision) return undefined;
  if (!Object.keys(manifest.files).every((name) => existsSync(join(ctx.dir, name))))
    return undefined;
  return {
    dir: ctx.dir,
    commit: manifest.commit,
    format: manifest.format,
    origin: `already in ${ctx.dir} (${describeOrigin(manifest)}); nothing downloaded`,
    files: Object.keys(manifest.files).map((name) => ({ name, status: 'up to date' })),
    checkpoint: await inspectClipCheckpoint(ctx.dir),
    manifest,
    notes: [],
  };
}

/** Fetches (or finds) what the plan needs, converts if needed, and writes the manifest last. */
async function assemble(ctx: PullContext, plan: Plan): Promise<PullResult> {
  await mkdir(ctx.dir, { recursive: true });
  await unlink(join(ctx.dir, MANIFEST_FILE)).catch(() => undefined);
  const { config, configFile } = await placeConfigAndTokenizer(ctx, plan);
  const weights = join(ctx.dir, WEIGHTS_FILE);
  const { listing, name } = plan.weights;
  let source: WeightsManifest['source'];
  let ignored: string[] = [];
  if (plan.format === 'safetensors' || plan.format === 'conversion-pr') {
    await placeFile(ctx, listing, WEIGHTS_FILE, false, (file) =>
      checkWeightsFile(file, config, configFile).then(() => undefined),
    );
    source = {
      file: WEIGHTS_FILE,
      revision: listing.revision,
      commit: listing.commit,
      ...ctx.records[WEIGHTS_FILE],
      from: ctx.statusOf(WEIGHTS_FILE) === 'hf-cache' ? 'hf-cache' : 'download',
    };
  } else {
    const fetched = await fetchSource(ctx, listing, name);
    source = {
      file: name,
      revision: listing.revision,
      commit: listing.commit,
      sha256: fetched.sha256,
      size: (await stat(fetched.path)).size,
      from: fetched.from,
    };
    ctx.progress.note(`${name}: converting to ${WEIGHTS_FILE} (restricted reader: no code runs)`);
    await removeStale(weights);
    try {
      if (plan.format === 'pytorch_model.bin') {
        ignored = (await convertTorchBin(fetched.path, config, weights, name)).ignored;
      } else {
        const tensors = await openTensorSource(fetched.path);
        try {
          await convertOpenClip(tensors, config, weights, name);
        } finally {
          await tensors.close();
        }
      }
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      if (fetched.ours) await unlink(fetched.path).catch(() => undefined);
      throw new UserError(`${ctx.where}: ${error.message}`, {
        hint:
          error instanceof PickleRefused
            ? `${name} is not a plain state dict and may be malicious: nothing from it was run${fetched.ours ? ' and the download was deleted' : ''}. Use safetensors weights instead (a conversion pull request, another revision or repository)`
            : fetched.ours
              ? `the download was deleted: run the command again; if it fails the same way, ${ctx.id}'s ${name} is broken at this revision`
              : `${fetched.path} is damaged: delete it from the Hugging Face cache (huggingface-cli delete-cache) and run the command again`,
        cause: error,
      });
    }
    if (ignored.length)
      ctx.notes.push(
        `${name}: left out ${ignored.length} tensor(s) a CLIPModel does not use: ${ignored.join(', ')}`,
      );
    await rememberHash(weights, await sha256File(weights));
    await ctx.record(WEIGHTS_FILE, 'converted');
  }
  await checkWeightsFile(weights, config, configFile);
  const manifest: WeightsManifest = {
    version: 1,
    id: ctx.id,
    revision: ctx.revision,
    commit: plan.repo.commit,
    endpoint: plan.repo.online ? ctx.endpoint : undefined,
    format: plan.format,
    source,
    pullRequest: plan.pr && {
      num: plan.pr.num,
      title: plan.pr.title,
      author: plan.pr.author,
      commit: plan.pr.commit,
    },
    tokenizer:
      plan.tokenizer === plan.repo
        ? undefined
        : {
            id: plan.tokenizer.id,
            revision: plan.tokenizer.revision,
            commit: plan.tokenizer.commit,
          },
    ignored: ignored.length ? ignored : undefined,
    files: ctx.records,
    createdAt: new Date().toISOString(),
  };
  const checkpoint = await inspectClipCheckpoint(ctx.dir);
  await writeManifest(ctx.dir, manifest);
  await rm(join(ctx.dir, SOURCE_DIR), { recursive: true, force: true });
  return {
    dir: ctx.dir,
    commit: plan.repo.commit,
    format: plan.format,
    origin: describeOrigin(manifest),
    files: ctx.files,
    checkpoint,
    manifest,
    notes: ctx.notes,
  };
}

/** config.json (as published, or converted from open_clip_config.json) and the tokenizer files. */
async function placeConfigAndTokenizer(
  ctx: PullContext,
  plan: Plan,
): Promise<{ config: ClipConfig; configFile: string }> {
  const tokenizerJson = (await placeFile(ctx, plan.tokenizer, 'tokenizer.json', false))!;
  for (const name of TOKENIZER_FILES.slice(1)) await placeFile(ctx, plan.tokenizer, name, true);
  if (plan.format !== 'open_clip') {
    const configFile = (await placeFile(ctx, plan.repo, 'config.json', false))!;
    const raw: unknown = JSON.parse(await readFile(configFile, 'utf8'));
    return { config: parseClipConfig(raw, `${ctx.where}: config.json`), configFile };
  }
  const source = await fetchSource(ctx, plan.repo, OPEN_CLIP_CONFIG);
  const tokenizer = JSON.parse(await readFile(tokenizerJson, 'utf8')) as {
    added_tokens?: { id?: number; content?: string }[];
  };
  const special = (content: string) =>
    tokenizer.added_tokens?.find((t) => t.content === content)?.id;
  const hfConfig = openClipConfigToHf(
    JSON.parse(await readFile(source.path, 'utf8')),
    `${ctx.where}: ${OPEN_CLIP_CONFIG}`,
    { bos: special('<|startoftext|>'), eos: special('<|endoftext|>') },
  );
  const configFile = join(ctx.dir, 'config.json');
  await replaceFile(configFile, `${JSON.stringify(hfConfig, null, 2)}\n`);
  await ctx.record('config.json', 'converted');
  return { config: parseClipConfig(hfConfig, configFile), configFile };
}

/** One sentence saying where a checkpoint's weights came from. */
export function describeOrigin(m: WeightsManifest): string {
  const at = (revision: string, commit?: string) =>
    `${revision}${commit && commit !== revision ? ` @ ${commit.slice(0, 12)}` : ''}`;
  const where = `${at(m.source.revision, m.source.commit)}${m.source.from === 'hf-cache' ? ' from the Hugging Face cache' : ''}`;
  switch (m.format) {
    case 'safetensors':
      return `${WEIGHTS_FILE} of ${m.id} ${where}`;
    case 'conversion-pr':
      return `${WEIGHTS_FILE} of pull request #${m.pullRequest?.num} "${m.pullRequest?.title}" by ${m.pullRequest?.author} (${where})`;
    case 'pytorch_model.bin':
      return `converted from ${TORCH_FILE} of ${m.id} ${where} (restricted reader)`;
    case 'open_clip':
      return `converted from the OpenCLIP layout (${m.source.file}) of ${m.id} ${where}${m.tokenizer ? `, tokenizer from ${m.tokenizer.id}` : ''}`;
  }
}
