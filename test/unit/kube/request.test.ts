import net from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { kubeRequest, parseWarningHeader } from "../../../src/kube/request.js";

describe("parseWarningHeader", () => {
  it("splits joined warnings and unescapes quotes", () => {
    expect(parseWarningHeader('299 - "app-snapshots: runs \\"a b\\" as ONE", 299 - "second, with comma"')).toEqual([
      'app-snapshots: runs "a b" as ONE',
      "second, with comma",
    ]);
  });
});

describe("kubeRequest", () => {
  it("fails, instead of hanging, when the apiserver accepts the connection and never answers", async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => void sockets.push(socket)); // accepts, says nothing
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as net.AddressInfo;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: `https://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: "u", token: "t" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    try {
      await expect(kubeRequest(kc, "GET", "/api/v1/namespaces/velero/secrets/keys", undefined, "application/json", 200)).rejects.toThrow(
        "GET /api/v1/namespaces/velero/secrets/keys: no answer within 200 ms",
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });
});
