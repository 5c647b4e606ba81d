import type { Logger } from "./logger.js";
import type { RunningServer } from "./http.js";

export interface LifecycleOptions {
  /** Time between turning unready and closing listeners, so Service endpoints stop routing to us (kubernetes#127335). */
  drainDelayMs?: number;
  /** Time in-flight requests get to finish before their connections are cut. */
  graceMs?: number;
}

type ReadinessCheck = () => boolean;

/**
 * Readiness and graceful shutdown for one process. The order on SIGTERM/SIGINT: readiness turns
 * false, wait `drainDelayMs`, close the serving listeners (in-flight requests finish, idle keep-alive
 * connections close), run cleanup hooks, then close the health listener last so probes see "not ready"
 * until the end. The whole sequence is bounded by drainDelayMs + graceMs + a small margin.
 */
export class Lifecycle {
  private readonly checks = new Map<string, ReadinessCheck>();
  private readonly servers: RunningServer[] = [];
  private healthServer: RunningServer | undefined;
  private readonly cleanups: Array<() => Promise<void> | void> = [];
  private stopping: Promise<void> | undefined;
  readonly drainDelayMs: number;
  readonly graceMs: number;

  constructor(
    private readonly log: Logger,
    options: LifecycleOptions = {},
  ) {
    this.drainDelayMs = options.drainDelayMs ?? 3_000;
    this.graceMs = options.graceMs ?? 20_000;
  }

  /** Readiness is the AND of all named checks, and false once shutdown began. */
  addReadinessCheck(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  readiness(): { ready: boolean; failing: string[] } {
    if (this.stopping) return { ready: false, failing: ["shutting down"] };
    const failing = [...this.checks].filter(([, check]) => !check()).map(([name]) => name);
    return { ready: failing.length === 0, failing };
  }

  get shuttingDown(): boolean {
    return this.stopping !== undefined;
  }

  addServer(server: RunningServer): void {
    this.servers.push(server);
  }

  setHealthServer(server: RunningServer): void {
    this.healthServer = server;
  }

  onShutdown(cleanup: () => Promise<void> | void): void {
    this.cleanups.push(cleanup);
  }

  /** Idempotent: a second signal while stopping waits for the same shutdown. */
  shutdown(reason: string): Promise<void> {
    this.stopping ??= this.runShutdown(reason);
    return this.stopping;
  }

  /** SIGTERM/SIGINT start the shutdown; the process exits 0 when it is done, 1 if it failed. */
  installSignalHandlers(exit: (code: number) => void = (code) => process.exit(code)): void {
    const onSignal = (signal: NodeJS.Signals) => {
      this.shutdown(signal).then(
        () => exit(0),
        (err: unknown) => {
          this.log.error({ err }, "shutdown failed");
          exit(1);
        },
      );
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  }

  private async runShutdown(reason: string): Promise<void> {
    this.log.info({ reason, inFlight: this.servers.reduce((n, s) => n + s.inFlight(), 0) }, "shutting down: readiness is now false");
    for (const server of this.servers) server.drain();
    if (this.drainDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.drainDelayMs));
    await Promise.all(this.servers.map((server) => server.close(this.graceMs)));
    for (const cleanup of this.cleanups) {
      try {
        await cleanup();
      } catch (err) {
        this.log.warn({ err }, "cleanup step failed during shutdown");
      }
    }
    await this.healthServer?.close(1_000);
    this.log.info("shutdown complete");
  }
}
