/**
 * A local Hugging Face-like file server for download tests (127.0.0.1, random port):
 * `/<id>/resolve/<rev>/<file>` serves small files directly (git-sha1 ETag) and redirects
 * large ones to `/cdn/<file>` with X-Linked-Size / X-Linked-Etag (sha256), like the Hub's LFS.
 * Faults can be switched on per test: a connection cut after N bytes, Range ignored, corrupt
 * bytes, transient 503s, 401s.
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
}

export interface HubServer {
  endpoint: string;
  requests: { method: string; path: string; range?: string; status: number; auth?: string }[];
  faults: Faults;
  /** Clears faults and the request log. */
  reset(): void;
  close(): Promise<void>;
}

const LFS = new Set(['model.safetensors', 'pytorch_model.bin']);
export const COMMIT = '0123456789abcdef0123456789abcdef01234567';

export async function startHubServer(repos: Map<string, Map<string, Buffer>>): Promise<HubServer> {
  const requests: HubServer['requests'] = [];
  const faults: Faults = {};
  let dropped = false;
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
    const cdn = /^\/cdn\/(.+?)\/(.+)$/.exec(url.pathname);
    if (cdn) {
      const body = repos.get(decodeURIComponent(cdn[1]))?.get(cdn[2]);
      if (!body) return (log(404), res.writeHead(404).end());
      return serveBytes(req, res, faults.corrupt ? corrupted(body) : body, log);
    }
    const m = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const body = m && decodeURIComponent(m[2]) === 'main' ? repos.get(m[1])?.get(m[3]) : undefined;
    if (!m || !body) {
      log(404);
      return res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
    }
    if (LFS.has(m[3])) {
      log(302);
      return res
        .writeHead(302, {
          location: `/cdn/${encodeURIComponent(m[1])}/${m[3]}`,
          'x-linked-size': String(body.length),
          'x-linked-etag': `"${createHash('sha256').update(body).digest('hex')}"`,
          'x-repo-commit': COMMIT,
          'content-length': '0',
        })
        .end();
    }
    res.setHeader('etag', `"${createHash('sha1').update(body).digest('hex')}"`);
    res.setHeader('x-repo-commit', COMMIT);
    serveBytes(req, res, body, log);
  };

  function serveBytes(
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    log: (status: number) => void,
  ) {
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (range && !faults.ignoreRange) {
      start = Number(range[1]);
      if (start >= body.length)
        return (log(416), res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end());
      res.writeHead(206, {
        'content-length': body.length - start,
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
      });
      log(206);
    } else {
      res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
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
