// An "apiserver" that accepts connections and never answers, with a kubeconfig pointing at it: for proving that
// a lookup made on the admission path gives up instead of hanging.
import net from "node:net";
import { KubeConfig } from "@kubernetes/client-node";

export async function silentApiserver(): Promise<{ kc: KubeConfig; close: () => void }> {
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
  return {
    kc,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}
