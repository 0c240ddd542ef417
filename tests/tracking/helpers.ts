/**
 * Shared set-up for the tracking integration tests: a real `mlflow server` (the venv of
 * `vcp-exp setup`, src/tracking/mlflow-install.ts) on a free loopback port with a temporary state directory, and a small HTTP proxy
 * in front of it that can drop answers or inject errors.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import {
  createServer,
  request,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MlflowClient } from '../../src/tracking/client.js';
import type { RetryPolicy } from '../../src/tracking/http.js';
import { startLocalServer, type LocalServer } from '../../src/tracking/server.js';
import { projectVenvDir, unavailable } from '../requirements.js';

export const VENV_BIN = join(projectVenvDir(), 'bin');

export type TestServer =
  | {
      ok: true;
      server: LocalServer;
      stateDir: string;
      client: (retry?: Partial<RetryPolicy>) => MlflowClient;
      cleanup: () => Promise<void>;
    }
  | { ok: false; reason: string };

/** Fast retries so that tests of failure paths take seconds, not the default ~30 s. */
export const FAST_RETRY: Partial<RetryPolicy> = { attempts: 3, baseDelayMs: 50, maxDelayMs: 200 };

/**
 * Starts a managed server in a fresh state directory (on loopback unless `host` says
 * otherwise). In CI a failure throws (the test file fails); elsewhere it prints and returns
 * the reason so that tests can skip (tests/requirements.ts).
 */
export async function startTestServer(
  label: string,
  options: { host?: string } = {},
): Promise<TestServer> {
  const stateDir = mkdtempSync(join(tmpdir(), `vcp-mlflow-${label}-`));
  try {
    if (!existsSync(join(VENV_BIN, 'mlflow')))
      throw new Error(`${VENV_BIN}/mlflow is missing: run npm run setup:mlflow`);
    const started = Date.now();
    const server = await startLocalServer({
      stateDir,
      host: options.host,
      env: { ...process.env, MLFLOW_TRACKING_URI: '' },
    });
    console.log(
      `# mlflow server for ${label} up at ${server.url} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    return {
      ok: true,
      server,
      stateDir,
      client: (retry) => new MlflowClient({ trackingUri: server.url, env: {}, retry }),
      cleanup: async () => {
        await server.stop();
        rmSync(stateDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(stateDir, { recursive: true, force: true });
    return { ok: false, reason: unavailable('mlflow', (error as Error).message.split('\n')[0]) };
  }
}

/** Runs Python code with the venv's MLflow and returns its stdout. */
export function python(code: string, args: string[] = []): string {
  const r = spawnSync(join(VENV_BIN, 'python'), ['-c', code, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export type ProxyAction = 'forward' | 'drop-answer' | { status: number; body: string };

export interface Proxy {
  url: string;
  /** Every request seen: method, path (without query) and body. */
  seen: Array<{ method: string; path: string; body: string }>;
  close(): Promise<void>;
}

/**
 * A loopback HTTP proxy to `upstream`. `decide` picks per request: forward it, forward it but
 * cut the connection instead of answering (the server applied it, the client never hears),
 * or answer itself without forwarding.
 */
export async function startProxy(
  upstream: string,
  decide: (method: string, path: string, body: string) => ProxyAction,
): Promise<Proxy> {
  const target = new URL(upstream);
  const seen: Proxy['seen'] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = (req.url ?? '/').split('?')[0];
      seen.push({ method: req.method ?? 'GET', path, body: body.toString('utf8') });
      const action = decide(req.method ?? 'GET', path, body.toString('utf8'));
      if (typeof action === 'object') {
        res.writeHead(action.status, { 'content-type': 'application/json' }).end(action.body);
        return;
      }
      const headers = { ...req.headers, host: target.host };
      const up = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
        (upRes) => {
          const upChunks: Buffer[] = [];
          upRes.on('data', (c: Buffer) => upChunks.push(c));
          upRes.on('end', () => {
            if (action === 'drop-answer') {
              req.socket.destroy();
              return;
            }
            res.writeHead(upRes.statusCode ?? 502, upRes.headers).end(Buffer.concat(upChunks));
          });
        },
      );
      up.on('error', () => req.socket.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
