import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, openSync, closeSync, readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";

/** Finds a free loopback port by binding to 0; the harness hands it to a child straight away. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((file) => existsSync(file));

export interface Child {
  name: string;
  process: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
  /** The last lines the child wrote, for error messages. */
  tail(lines?: number): string;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a child whose output goes to a log file. With setpriv (util-linux) the kernel sends it
 * SIGKILL if we die, so even a killed test runner leaves no orphaned etcd or apiserver behind.
 */
export function startChild(name: string, command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = {}): Child {
  const fd = openSync(logFile, "a");
  const [file, argv] = setpriv ? [setpriv, ["--pdeathsig", "SIGKILL", "--", command, ...args]] : [command, args];
  const child = spawn(file, argv, { stdio: ["ignore", fd, fd], env: { ...process.env, ...env } });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const tail = (lines = 25) => {
    try {
      return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  };
  return {
    name,
    process: child,
    logFile,
    exited,
    tail,
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on("error", () => resolve(0));
  });
}

/** Polls `url` until it answers 200; fails at once, with the child's log tail, if the child exits first. */
export async function waitForHttp200(child: Child, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.process.exitCode !== null) throw new Error(`${child.name} exited with ${child.process.exitCode} before ${url} answered:\n${child.tail()}`);
    if ((await httpStatus(url)) === 200) return;
    if (Date.now() > deadline) throw new Error(`${child.name}: ${url} did not answer 200 within ${timeoutMs} ms:\n${child.tail()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
