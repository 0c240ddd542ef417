/**
 * A local Hugging Face-like server for download tests (127.0.0.1, random port):
 * - `/<id>/resolve/<rev>/<file>` (rev = a branch such as main, `refs/pr/N` URL-encoded, or a
 *   commit) serves small files directly (git-sha1 ETag) and redirects large ones to `/cdn/…`
 *   with X-Linked-Size / X-Linked-Etag (sha256), like the Hub's LFS; X-Repo-Commit on both.
 * - the Hub API routes the clients use: `/api/models/<id>/revision/<rev>` (sha + siblings),
 *   `/api/models/<id>/commits/<rev>` (newest first), `/api/models/<id>/discussions?p=N`
 *   (50 a page, like the Hub).
 * Faults can be switched on per test: a connection cut after N bytes, Range ignored, corrupt
 * bytes, transient 503s, 401s, a body longer than announced, no size or hash announced, no API.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Faults {
  /** Close the socket after this many body bytes on the first GET of an LFS file. */
  dropAfter?: number;
  ignoreRange?: boolean;
  /** Flip one byte of every LFS body (headers still announce the true sha256). */
  corrupt?: boolean;
  /** Answer 503 to this many requests first. */
  unavailable?: number;
  /** Answer 401 to everything. */
  unauthorized?: boolean;
  /** LFS GETs stream this many bytes (chunked, endless in effect) whatever was announced. */
  oversize?: number;
  /** No Content-Length, ETag or X-Linked-* anywhere (chunked bodies), like a bare static server. */
  hideMetadata?: boolean;
  /** The /api routes answer 404, like a plain mirror. */
  noApi?: boolean;
}

export interface Discussion {
  num: number;
  title: string;
  author: string;
  status?: 'open' | 'closed' | 'merged' | 'draft';
  isPullRequest?: boolean;
}

/** A repository: files per revision (`main` required; `refs/pr/N` for pull requests). */
export interface HubRepo {
  revisions: Map<string, Map<string, Buffer>>;
  /** Revision → commit (default: main → COMMIT, others a hash of id and revision). */
  commits?: Map<string, string>;
  /** Revision → the commit its first commit was made on (default: main's commit). */
  parents?: Map<string, string>;
  discussions?: Discussion[];
}

export interface HubServer {
  endpoint: string;
  requests: { method: string; path: string; range?: string; status: number; auth?: string }[];
  faults: Faults;
  /** Clears faults and the request log. */
  reset(): void;
  close(): Promise<void>;
}

const LFS = new Set([
  'model.safetensors',
  'pytorch_model.bin',
  'open_clip_model.safetensors',
  'open_clip_pytorch_model.bin',
]);
export const COMMIT = '0123456789abcdef0123456789abcdef01234567';
export const CONVERSION_PR_TITLE = 'Adding `safetensors` variant of this model';

export function commitOf(id: string, revision: string): string {
  return revision === 'main'
    ? COMMIT
    : createHash('sha1').update(`${id}@${revision}`).digest('hex');
}

function normalise(repo: Map<string, Buffer> | HubRepo): HubRepo {
  return repo instanceof Map ? { revisions: new Map([['main', repo]]) } : repo;
}

export async function startHubServer(
  input: Map<string, Map<string, Buffer> | HubRepo>,
): Promise<HubServer> {
  const repos = new Map([...input].map(([id, repo]) => [id, normalise(repo)]));
  const requests: HubServer['requests'] = [];
  const faults: Faults = {};
  let dropped = false;

  const commit = (id: string, repo: HubRepo, revision: string) =>
    repo.commits?.get(revision) ?? commitOf(id, revision);
  /** A revision name or a commit → [revision, files]. */
  const lookup = (id: string, rev: string): [string, Map<string, Buffer>] | undefined => {
    const repo = repos.get(id);
    if (!repo) return undefined;
    for (const [revision, files] of repo.revisions)
      if (rev === revision || rev === commit(id, repo, revision)) return [revision, files];
    return undefined;
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const log = (status: number) =>
      requests.push({
        method: req.method ?? '',
        path: url.pathname,
        range: req.headers.range,
        status,
        auth: req.headers.authorization,
      });
    if (faults.unavailable && faults.unavailable > 0) {
      faults.unavailable--;
      log(503);
      return res.writeHead(503).end('busy');
    }
    if (faults.unauthorized) {
      log(401);
      return res.writeHead(401).end('Repository not found');
    }
    if (url.pathname.startsWith('/api/')) return api(url, res, log);
    const cdn = /^\/cdn\/([^/]+)\/([0-9a-f]{40})\/(.+)$/.exec(url.pathname);
    if (cdn) {
      const body = lookup(decodeURIComponent(cdn[1]), cdn[2])?.[1].get(cdn[3]);
      if (!body) return (log(404), res.writeHead(404).end());
      if (faults.oversize !== undefined) return endless(res, faults.oversize, log);
      return serveBytes(req, res, faults.corrupt ? corrupted(body) : body, log);
    }
    const m = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const found = m ? lookup(m[1], decodeURIComponent(m[2])) : undefined;
    const body = found?.[1].get(m![3]);
    if (!m || !found || !body) {
      log(404);
      return res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
    }
    const sha = commit(m[1], repos.get(m[1])!, found[0]);
    if (LFS.has(m[3])) {
      log(302);
      return res
        .writeHead(302, {
          location: `/cdn/${encodeURIComponent(m[1])}/${sha}/${m[3]}`,
          ...(faults.hideMetadata
            ? {}
            : {
                'x-linked-size': String(body.length),
                'x-linked-etag': `"${createHash('sha256').update(body).digest('hex')}"`,
              }),
          'x-repo-commit': sha,
          'content-length': '0',
        })
        .end();
    }
    if (!faults.hideMetadata) {
      const gitSha = createHash('sha1').update(`blob ${body.length}\0`).update(body).digest('hex');
      res.setHeader('etag', `"${gitSha}"`);
    }
    res.setHeader('x-repo-commit', sha);
    serveBytes(req, res, body, log);
  };

  function json(
    res: ServerResponse,
    log: (status: number) => void,
    status: number,
    value: unknown,
  ) {
    log(status);
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
  }

  function api(url: URL, res: ServerResponse, log: (status: number) => void) {
    if (faults.noApi) return (log(404), res.writeHead(404).end('Not Found'));
    const m = /^\/api\/models\/(.+?)\/(revision|commits|discussions)(?:\/([^/]+))?$/.exec(
      url.pathname,
    );
    const repo = m ? repos.get(m[1]) : undefined;
    if (!m || !repo) return json(res, log, 404, { error: 'Repository not found' });
    const [, id, kind, rawRev] = m;
    if (kind === 'discussions') {
      const page = Number(url.searchParams.get('p') ?? 0);
      const all = repo.discussions ?? [];
      const slice = all.slice(page * 50, page * 50 + 50);
      return json(res, log, 200, {
        discussions: slice.map((d) => ({
          num: d.num,
          title: d.title,
          status: d.status ?? 'open',
          isPullRequest: d.isPullRequest ?? true,
          author: { name: d.author },
          repo: { name: id, type: 'model' },
          createdAt: '2023-01-01T00:00:00.000Z',
          pinned: false,
          numComments: 1,
        })),
        count: all.length,
        start: page * 50,
        numClosedDiscussions: 0,
      });
    }
    const found = lookup(id, decodeURIComponent(rawRev ?? 'main'));
    if (!found) return json(res, log, 404, { error: 'Revision not found' });
    const [revision, files] = found;
    const sha = commit(id, repo, revision);
    if (kind === 'revision') {
      return json(res, log, 200, {
        _id: `id-${id}`,
        id,
        sha,
        private: false,
        gated: false,
        downloads: 0,
        likes: 0,
        lastModified: '2023-01-01T00:00:00.000Z',
        siblings: [...files.keys()].map((rfilename) => ({ rfilename })),
      });
    }
    const parent = repo.parents?.get(revision) ?? commit(id, repo, 'main');
    const history = revision === 'main' ? [sha] : [sha, parent];
    return json(
      res,
      log,
      200,
      history.map((c, i) => ({
        id: c,
        title: i === 0 && revision !== 'main' ? CONVERSION_PR_TITLE : 'initial commit',
        message: '',
        authors: [{ user: 'someone', avatar: '' }],
        date: '2023-01-01T00:00:00.000Z',
      })),
    );
  }

  function serveBytes(
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    log: (status: number) => void,
  ) {
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    const length = (n: number) => (faults.hideMetadata ? {} : { 'content-length': n });
    if (range && !faults.ignoreRange) {
      start = Number(range[1]);
      if (start >= body.length)
        return (log(416), res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end());
      res.writeHead(206, {
        ...length(body.length - start),
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
      });
      log(206);
    } else {
      res.writeHead(200, { ...length(body.length), 'accept-ranges': 'bytes' });
      log(200);
    }
    if (req.method === 'HEAD') return res.end();
    const rest = body.subarray(start);
    if (faults.dropAfter !== undefined && !dropped && rest.length > faults.dropAfter) {
      dropped = true;
      res.write(rest.subarray(0, faults.dropAfter), () =>
        setTimeout(() => res.socket?.destroy(), 20),
      );
      return;
    }
    res.end(rest);
  }

  /** Streams `total` bytes in 64 kB chunks, as fast as the client takes them. */
  function endless(res: ServerResponse, total: number, log: (status: number) => void) {
    log(200);
    res.writeHead(200);
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    res.on('close', () => (sent = total));
    pump();
  }

  function corrupted(body: Buffer): Buffer {
    const copy = Buffer.from(body);
    copy[copy.length >> 1] ^= 0xff;
    return copy;
  }

  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    faults,
    reset() {
      for (const key of Object.keys(faults)) delete faults[key as keyof Faults];
      requests.length = 0;
      dropped = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
