import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, openSync, closeSync, readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";

// Ports come from below the kernel's ephemeral range: a port picked by binding 0 lies inside it, and an outgoing
// connection (the apiserver dialing etcd, a test's client) could take it before the child it was meant for binds
// it, which was the harness's intermittent "address already in use" of kube-scheduler's --secure-port.
const PORT_FLOOR = 10_000;
const handedOut = new Set<number>();

function ephemeralFloor(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > PORT_FLOOR + 1_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/** Whether nothing listens on `port` on any address (a listener on :: also holds it for IPv4). */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen({ port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port nothing listens on, outside the ephemeral range and not handed out before by this process. */
export async function freePort(): Promise<number> {
  const ceiling = ephemeralFloor();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_FLOOR + Math.floor(Math.random() * (ceiling - PORT_FLOOR));
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${PORT_FLOOR}-${ceiling - 1} after 200 tries`);
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
