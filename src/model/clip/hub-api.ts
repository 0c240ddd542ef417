/**
 * The Hub API calls `weights pull` needs: what a revision is (its commit and file list, via
 * @huggingface/hub's modelInfo), and the repository's safetensors conversion pull request (the
 * one transformers looks up: titled "Adding `safetensors` variant of this model", opened by
 * SFconvertbot; @huggingface/hub has no discussions call, so that one is a plain fetch) with its
 * commits (listCommits). A server without the API (a plain mirror) gives undefined, not an error.
 */
import { HubApiError, listCommits, modelInfo } from '@huggingface/hub';
import { UserError } from '../../errors.js';
import { COMMIT_HASH } from './hf-cache.js';

export const CONVERSION_PR_TITLE = 'Adding `safetensors` variant of this model';
export const CONVERSION_BOT = 'SFconvertbot';

export interface HubClient {
  endpoint: string;
  /** Sent with every request (Authorization when a token is set). */
  headers: Record<string, string>;
}

export interface RevisionInfo {
  commit: string;
  files: string[];
}

export interface ConversionPr {
  num: number;
  /** refs/pr/<num> */
  revision: string;
  title: string;
  author: string;
  /** The PR's head commit. */
  commit: string;
  /** The commit the PR branched from. */
  parent?: string;
}

function clientFetch(client: HubClient): typeof fetch {
  return (input, init) =>
    fetch(input, { ...init, headers: { ...(init?.headers as object), ...client.headers } });
}

/**
 * A failed API call as the caller's retry loop expects it: a UserError when retrying cannot
 * help (access refused, an unexpected answer), the error itself when it can (network, 429, 5xx).
 */
function apiError(client: HubClient, id: string, what: string, error: unknown): Error {
  if (!(error instanceof HubApiError)) return error as Error;
  const status = error.statusCode;
  if (status === 401 || status === 403)
    return new UserError(`${id}: ${client.endpoint} refused ${what} (${status})`, {
      hint: 'the repository is private or gated: accept its licence on the model page and set HF_TOKEN to an access token',
    });
  if (status === 429 || status >= 500) return new Error(`${what} answered ${status}`);
  return new UserError(
    `${id}: ${what} at ${client.endpoint} answered ${status}: ${error.message}`,
    {
      hint: 'check the model id, the revision and the endpoint',
    },
  );
}

/** The commit and files of `revision`, or undefined when the endpoint has no Hub API / no such repo. */
export async function revisionInfo(
  client: HubClient,
  id: string,
  revision: string,
): Promise<RevisionInfo | undefined> {
  try {
    const info = await modelInfo({
      name: id,
      revision,
      hubUrl: client.endpoint,
      additionalFields: ['sha', 'filePaths'],
      fetch: clientFetch(client),
    });
    const sha: unknown = info.sha;
    const files: unknown = info.filePaths;
    if (typeof sha !== 'string' || !COMMIT_HASH.test(sha) || !Array.isArray(files))
      return undefined;
    return { commit: sha, files: files.filter((f): f is string => typeof f === 'string') };
  } catch (error) {
    if (error instanceof HubApiError && (error.statusCode === 404 || error.statusCode === 405))
      return undefined;
    if (error instanceof SyntaxError) return undefined; // not JSON: not the Hub API
    throw apiError(client, id, `the revision "${revision}" lookup`, error);
  }
}

interface ApiDiscussion {
  num?: unknown;
  title?: unknown;
  status?: unknown;
  isPullRequest?: unknown;
  author?: { name?: unknown };
}

/** Open pull requests titled as the conversion bot titles them, newest first, any author. */
export async function conversionPrCandidates(
  client: HubClient,
  id: string,
): Promise<{ num: number; title: string; author: string }[] | undefined> {
  const found: { num: number; title: string; author: string }[] = [];
  for (let page = 0; page < 100; page++) {
    const url = `${client.endpoint}/api/models/${id}/discussions?p=${page}`;
    let body: { discussions?: ApiDiscussion[]; count?: unknown; start?: unknown };
    try {
      const response = await fetch(url, { headers: client.headers });
      if (response.status === 404 || response.status === 405) return undefined;
      if (!response.ok)
        throw new HubApiError(url, response.status, undefined, `answered ${response.status}`);
      body = (await response.json()) as typeof body;
    } catch (error) {
      if (error instanceof SyntaxError) return undefined;
      throw apiError(client, id, 'the pull request listing', error);
    }
    const discussions = Array.isArray(body.discussions) ? body.discussions : [];
    for (const d of discussions) {
      if (
        d.isPullRequest === true &&
        d.status === 'open' &&
        d.title === CONVERSION_PR_TITLE &&
        Number.isSafeInteger(d.num)
      )
        found.push({
          num: d.num as number,
          title: d.title,
          author: typeof d.author?.name === 'string' ? d.author.name : 'deleted',
        });
    }
    const start = Number(body.start ?? 0);
    if (discussions.length === 0 || start + discussions.length >= Number(body.count ?? 0)) break;
  }
  return found.sort((a, b) => b.num - a.num);
}

/** The head commit of refs/pr/<num> and the commit it branched from. */
export async function pullRequestCommits(
  client: HubClient,
  id: string,
  num: number,
): Promise<{ commit: string; parent?: string }> {
  const commits: string[] = [];
  try {
    for await (const c of listCommits({
      repo: { type: 'model', name: id },
      revision: encodeURIComponent(`refs/pr/${num}`),
      hubUrl: client.endpoint,
      batchSize: 2,
      fetch: clientFetch(client),
    })) {
      commits.push(c.oid);
      if (commits.length === 2) break;
    }
  } catch (error) {
    throw apiError(client, id, `the commit listing of refs/pr/${num}`, error);
  }
  if (commits.length === 0)
    throw new UserError(`${id}: refs/pr/${num} has no commits at ${client.endpoint}`);
  return { commit: commits[0], parent: commits[1] };
}
