// `kubectl port-forward` from the host, as an admin reaches a Service or pod: the local port kubectl picked, and
// a close that stops it.
import { spawn } from "node:child_process";
import { toolPath } from "../cluster/binaries.js";

export interface PortForward {
  port: number;
  close(): void;
}

export async function portForward(kubeconfig: string, namespace: string, target: string, remotePort: number): Promise<PortForward> {
  const forward = spawn(toolPath("kubectl"), ["--kubeconfig", kubeconfig, "-n", namespace, "port-forward", target, `:${remotePort}`], { stdio: ["ignore", "pipe", "pipe"] });
  let said = "";
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`port-forward said nothing usable in 30 s: ${said}`)), 30_000);
      const read = (chunk: Buffer) => {
        said += chunk.toString();
        const match = new RegExp(`Forwarding from 127\\.0\\.0\\.1:(\\d+) -> ${remotePort}`).exec(said);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      };
      forward.stdout.on("data", read);
      forward.stderr.on("data", read);
      forward.once("exit", (code) => reject(new Error(`port-forward exited with ${code}: ${said}`)));
    });
    return { port, close: () => forward.kill() };
  } catch (err) {
    forward.kill();
    throw err;
  }
}
