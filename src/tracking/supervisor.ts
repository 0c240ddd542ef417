/**
 * Keeps the managed MLflow server of a sweep up. Every few seconds it checks the server's
 * process and /health; when the process is gone (a worker left serving alone counts as gone:
 * nothing would restart it), or /health fails several times in a row, the whole process group
 * is stopped and a new server started on the same port, so the URL the running trials were
 * given stays valid. Meanwhile `ready()` makes new trials wait; the running ones journal what
 * they log and deliver it when the server is back.
 */
import { UserError } from '../errors.js';
import { isAlive, isHealthy, killServer, startLocalServer, type LocalServer } from './server.js';

export interface SupervisorOptions {
  stateDir: string;
  env?: NodeJS.ProcessEnv;
  /** Between checks (default 2 s). */
  intervalMs?: number;
  /** Failed /health answers in a row, with the process alive, that count as a hung server (default 3). */
  hungAfter?: number;
  /** Start attempts before giving up (default 5). */
  attempts?: number;
  log: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ServerSupervisor {
  private server: LocalServer;
  private timer: NodeJS.Timeout | undefined;
  private restarting: Promise<void> | undefined;
  private failures = 0;
  private stopped = false;
  private checking = false;
  /** Servers started by the supervisor (the current one is stopped with the sweep). */
  restarts = 0;
  /** Set when the server could not be brought back; trials then fail as unreachable. */
  gaveUp: string | undefined;

  constructor(
    server: LocalServer,
    private readonly options: SupervisorOptions,
  ) {
    this.server = server;
  }

  get current(): LocalServer {
    return this.server;
  }

  start(): this {
    this.timer = setInterval(() => void this.check(), this.options.intervalMs ?? 2_000);
    this.timer.unref();
    return this;
  }

  /** Resolves once the server is up (at once unless it is being restarted). */
  async ready(): Promise<void> {
    if (!this.restarting && !this.stopped && !this.gaveUp && !isAlive(this.server.pid))
      await this.check();
    await this.restarting;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.restarting?.catch(() => undefined);
  }

  /** One check; starts a restart when the server is dead or hung. */
  async check(): Promise<void> {
    if (this.checking || this.restarting || this.stopped || this.gaveUp) return;
    this.checking = true;
    try {
      const { pid, url } = this.server;
      if (!isAlive(pid)) return void this.restart(`its process ${pid} is gone`);
      if (await isHealthy(url, 2_000)) {
        this.failures = 0;
        return;
      }
      if (++this.failures >= (this.options.hungAfter ?? 3))
        return void this.restart(`no answer from ${url}/health ${this.failures} times in a row`);
    } finally {
      this.checking = false;
    }
  }

  private restart(why: string): Promise<void> {
    const { pid, port } = this.server;
    this.restarting = (async () => {
      this.options.log(
        `the MLflow server died (${why}): restarting it on port ${port}; new trials wait, running ones journal what they log`,
      );
      await killServer(pid, 2_000); // its whole group: a worker left serving would hold the port
      const attempts = this.options.attempts ?? 5;
      for (let attempt = 1; ; attempt++) {
        try {
          this.server = await startLocalServer({
            stateDir: this.options.stateDir,
            port,
            env: this.options.env,
          });
          this.restarts++;
          this.failures = 0;
          this.options.log(`MLflow server back at ${this.server.url} (pid ${this.server.pid})`);
          return;
        } catch (error) {
          const reason = error instanceof UserError ? error.message.split('\n')[0] : String(error);
          if (attempt >= attempts || this.stopped) {
            this.gaveUp = reason;
            this.options.log(`could not restart the MLflow server: ${reason}`);
            return;
          }
          await sleep(1_000 * attempt);
        }
      }
    })().finally(() => (this.restarting = undefined));
    return this.restarting;
  }
}
