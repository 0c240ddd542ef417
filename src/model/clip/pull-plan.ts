/**
 * The resolution order of `weights pull`, decided from a repository's file list: its
 * model.safetensors (beside a Hugging Face CLIP config.json), else its safetensors conversion
 * pull request, else its pytorch_model.bin, else the OpenCLIP layout — and where the tokenizer
 * comes from when the repository ships none.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { checkHubId, checkpointCacheDir } from './cache.js';
import { isHfClipConfig } from './config.js';
import { remoteMetadata, withRetries } from './download.js';
import { findHfSnapshot } from './hf-cache.js';
import {
  CONVERSION_BOT,
  conversionPrCandidates,
  pullRequestCommits,
  revisionInfo,
  type ConversionPr,
} from './hub-api.js';
import { readManifest, type WeightsFormat } from './manifest.js';
import { OPEN_CLIP_CONFIG, OPEN_CLIP_WEIGHTS } from './open-clip.js';
import type { Listing, PullContext } from './pull-context.js';
import {
  localListing,
  onlineListing,
  readRepoJson,
  TOKENIZER_FILES,
  TORCH_FILE,
} from './pull-listing.js';
import { WEIGHTS_FILE } from './weights.js';

/** Where OpenCLIP repositories without tokenizer files take theirs (open_clip does the same). */
export const DEFAULT_TOKENIZER_REPO = 'openai/clip-vit-large-patch14';

export interface Plan {
  format: WeightsFormat;
  repo: Listing;
  /** Where the weights file is read from (the repository, or its conversion pull request). */
  weights: { listing: Listing; name: string };
  tokenizer: Listing;
  pr?: ConversionPr;
}

function describeFiles(files: Set<string>): string {
  const list = [...files].sort();
  return list.length === 0
    ? 'no files'
    : `${list.slice(0, 12).join(', ')}${list.length > 12 ? ', …' : ''}`;
}

/** Chooses the format from a repository's files; throws, naming what is there, when none fits. */
export async function planFormat(ctx: PullContext, repo: Listing): Promise<Plan> {
  const has = (name: string) => repo.files.has(name);
  const where = `${repo.id} (${repo.revision}${repo.commit && repo.commit !== repo.revision ? `, commit ${repo.commit.slice(0, 12)}` : ''})`;
  const config = has('config.json') ? await readRepoJson(ctx, repo, 'config.json') : undefined;
  const tokenizer = async () => (has('tokenizer.json') ? repo : tokenizerListing(ctx));
  if (isHfClipConfig(config)) {
    const plan = async (format: WeightsFormat, weights: Plan['weights'], pr?: ConversionPr) => ({
      format,
      repo,
      weights,
      tokenizer: await tokenizer(),
      pr,
    });
    if (has(WEIGHTS_FILE)) return plan('safetensors', { listing: repo, name: WEIGHTS_FILE });
    if (has('model.safetensors.index.json') || has('pytorch_model.bin.index.json'))
      throw new UserError(
        `${where}: the weights are sharded (*.index.json); sharded checkpoints are not read`,
        { hint: 'CLIP models fit one file: look for another revision or repository of them' },
      );
    const pr = repo.online ? await conversionPr(ctx, repo) : undefined;
    if (pr) {
      const listing: Listing = {
        id: repo.id,
        revision: pr.revision,
        commit: pr.commit,
        files: new Set([WEIGHTS_FILE]),
        snapshot: findHfSnapshot(ctx.hfRoot, repo.id, pr.commit),
        online: true,
      };
      return plan('conversion-pr', { listing, name: WEIGHTS_FILE }, pr);
    }
    if (has(TORCH_FILE)) {
      refuseTorch(ctx, where, TORCH_FILE);
      return plan('pytorch_model.bin', { listing: repo, name: TORCH_FILE });
    }
    throw new UserError(
      `${where}: no ${WEIGHTS_FILE}, no ${TORCH_FILE} and no safetensors conversion pull request`,
      {
        hint: `the repository has ${describeFiles(repo.files)}; pass a --revision that has the weights`,
      },
    );
  }
  if (has(OPEN_CLIP_CONFIG)) {
    const name = OPEN_CLIP_WEIGHTS.find(has);
    if (!name)
      throw new UserError(
        `${where}: ${OPEN_CLIP_CONFIG} but no ${OPEN_CLIP_WEIGHTS.join(' or ')}`,
        {
          hint: `the repository has ${describeFiles(repo.files)}`,
        },
      );
    if (name.endsWith('.bin')) refuseTorch(ctx, where, name);
    return {
      format: 'open_clip',
      repo,
      weights: { listing: repo, name },
      tokenizer: await tokenizer(),
    };
  }
  if (config !== undefined)
    throw new UserError(
      `${where}: config.json is not a CLIP config (model_type ${JSON.stringify((config as { model_type?: unknown })?.model_type)}) and there is no ${OPEN_CLIP_CONFIG}`,
      {
        hint: 'vcp-exp reads CLIP checkpoints: Hugging Face CLIPModel repositories (e.g. openai/clip-vit-large-patch14-336) or OpenCLIP/timm *.openai ones',
      },
    );
  if (repo.files.size === 0)
    throw new UserError(
      `${where}: nothing found at ${ctx.url(repo.id, repo.revision, 'config.json')} (404)`,
      { hint: 'check the model id, the revision and the endpoint' },
    );
  throw new UserError(
    `${where}: no config.json and no ${OPEN_CLIP_CONFIG}: not a CLIP checkpoint`,
    {
      hint: `the repository has ${describeFiles(repo.files)}`,
    },
  );
}

function refuseTorch(ctx: PullContext, where: string, name: string): void {
  if (ctx.options.safetensorsOnly)
    throw new UserError(
      `${where}: the weights are published only as ${name} and --safetensors-only was given`,
      {
        hint: `drop --safetensors-only: ${name} is read by a restricted reader that runs no pickle code (only tensors and dicts are built)`,
      },
    );
}

/**
 * The newest open conversion pull request by the conversion bot whose safetensors came from
 * this revision's weights (it branched from this commit, or its pytorch_model.bin is the same
 * file). Others are skipped with a note saying why.
 */
async function conversionPr(ctx: PullContext, repo: Listing): Promise<ConversionPr | undefined> {
  const api = <T>(action: string, run: () => Promise<T>) =>
    withRetries(`${repo.id}: Hub API`, ctx.http, run, undefined, action);
  const candidates = await api('pull request lookup', () =>
    conversionPrCandidates(ctx.client, repo.id),
  );
  if (!candidates) {
    ctx.notes.push(
      `${ctx.endpoint} lists no pull requests: the conversion pull request cannot be looked up`,
    );
    return undefined;
  }
  for (const c of candidates) {
    if (c.author !== CONVERSION_BOT) {
      ctx.notes.push(
        `ignored pull request #${c.num} by ${c.author}: only ${CONVERSION_BOT}'s conversions are used`,
      );
      continue;
    }
    const { commit, parent } = await api('commit lookup', () =>
      pullRequestCommits(ctx.client, repo.id, c.num),
    );
    const info = await api('revision lookup', () => revisionInfo(ctx.client, repo.id, commit));
    if (!info?.files.includes(WEIGHTS_FILE)) {
      ctx.notes.push(`ignored pull request #${c.num}: it has no ${WEIGHTS_FILE}`);
      continue;
    }
    if (parent !== repo.commit) {
      const [ours, theirs] = await Promise.all([
        remoteMetadata(
          ctx.url(repo.id, repo.commit ?? repo.revision, TORCH_FILE),
          TORCH_FILE,
          ctx.http,
        ),
        remoteMetadata(ctx.url(repo.id, commit, TORCH_FILE), TORCH_FILE, ctx.http),
      ]);
      if (!ours?.sha256 || ours.sha256 !== theirs?.sha256) {
        ctx.notes.push(
          `ignored pull request #${c.num}: it branched from ${parent?.slice(0, 12) ?? 'an unknown commit'} and converted another ${TORCH_FILE} than ${repo.revision}'s`,
        );
        continue;
      }
    }
    return { ...c, revision: `refs/pr/${c.num}`, commit, parent };
  }
  return undefined;
}

/** The tokenizer repository for checkpoints without tokenizer files: our cache, the hub cache, the server. */
async function tokenizerListing(ctx: PullContext): Promise<Listing> {
  const id = ctx.options.tokenizerFrom ?? DEFAULT_TOKENIZER_REPO;
  checkHubId(id);
  const ours = checkpointCacheDir(id, 'main', ctx.cacheRoot);
  if (existsSync(join(ours, 'tokenizer.json'))) {
    // Our own copy of that repository: its files are linked as a snapshot's would be.
    const commit = (await readManifest(ours))?.commit;
    return {
      id,
      revision: 'main',
      commit,
      files: new Set(TOKENIZER_FILES.filter((f) => existsSync(join(ours, f)))),
      snapshot: { dir: ours, commit: commit ?? 'main' },
      online: false,
    };
  }
  const local = localListing(ctx, id, 'main');
  if (local?.files.has('tokenizer.json')) return local;
  if (ctx.offline)
    throw new UserError(
      `${ctx.id}: the checkpoint ships no tokenizer and ${id} is not available offline`,
      { hint: 'pull it once online, or pass --tokenizer-from <a CLIP repository you have>' },
    );
  ctx.notes.push(
    `tokenizer taken from ${id} (the checkpoint ships none; pass --tokenizer-from to choose another)`,
  );
  return onlineListing(ctx, id, 'main');
}

/** Whether every file the plan needs can be read from disk (no network needed). */
export function isLocal(plan: Plan): boolean {
  const local = (l: Listing, name: string) =>
    !!l.snapshot && existsSync(join(l.snapshot.dir, name));
  return (
    local(plan.weights.listing, plan.weights.name) &&
    local(plan.repo, plan.format === 'open_clip' ? OPEN_CLIP_CONFIG : 'config.json') &&
    local(plan.tokenizer, 'tokenizer.json')
  );
}
