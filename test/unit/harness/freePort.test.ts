// The harness's ports: outside the kernel's ephemeral range, so no outgoing connection can take one between
// freePort() and the child's bind (kube-scheduler's intermittent "address already in use"), and never twice.
import { readFileSync } from "node:fs";
import net from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "../../cluster/processes.js";

const ephemeralLow = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);

describe("freePort", () => {
  it("hands out distinct ports below the ephemeral range that a child can bind on loopback and on every address", async () => {
    const ports: number[] = [];
    for (let i = 0; i < 50; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    for (const port of ports) expect(port).toBeLessThan(ephemeralLow);
    for (const host of ["127.0.0.1", "::"]) {
      const server = net.createServer();
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(ports[0], host, resolve);
      });
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("skips a port something already listens on", async () => {
    const port = await freePort();
    const held = net.createServer();
    await new Promise<void>((resolve) => held.listen(port, "127.0.0.1", resolve));
    try {
      for (let i = 0; i < 200; i++) expect(await freePort()).not.toBe(port);
    } finally {
      await new Promise((resolve) => held.close(resolve));
    }
  });
});
