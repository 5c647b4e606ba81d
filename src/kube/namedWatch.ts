import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "../server/logger.js";
import { kubeRequest } from "./request.js";

/**
 * Keeps one named object current through list+watch with `fieldSelector=metadata.name=<name>`, the
 * form RBAC authorizes against `resourceNames` (so the role needs no access to its siblings).
 * A failed list or watch is retried every 3 s. The callback gets the object (also after every
 * successful list), or undefined when it is absent or gone; consumers must be idempotent.
 */
export class NamedWatch<T extends KubernetesObject> {
  private readonly informer: ListWatch<T>;
  private stopped = false;
  private listed = false;
  private failed = false;

  constructor(
    kc: KubeConfig,
    private readonly log: Logger,
    /** The collection, e.g. /api/v1/namespaces/ns/secrets or /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations. */
    private readonly collectionPath: string,
    readonly name: string,
    private readonly onChange: (object: T | undefined) => void,
  ) {
    const selector = `metadata.name=${name}`;
    const list = async () => (await kubeRequest(kc, "GET", `${collectionPath}?fieldSelector=${encodeURIComponent(selector)}`)).body as KubernetesListObject<T>;
    this.informer = new ListWatch<T>(collectionPath, new Watch(kc), list, false, undefined, selector);
    this.informer.on("add", (object) => onChange(object));
    this.informer.on("update", (object) => onChange(object));
    this.informer.on("delete", () => onChange(undefined));
    this.informer.on("error", (err: unknown) => {
      this.failed = true;
      if (this.stopped) return;
      this.log.warn({ object: `${collectionPath}/${name}`, err: String(err) }, "list or watch failed; retrying in 3s");
      setTimeout(() => void this.run(), 3_000).unref();
    });
  }

  /** True once a list has succeeded (then current() is authoritative, undefined meaning "absent"). */
  get synced(): boolean {
    return this.listed;
  }

  current(): T | undefined {
    return this.informer.list()[0];
  }

  async start(): Promise<void> {
    await this.run();
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    this.failed = false;
    await this.informer.start();
    if (this.failed) return;
    this.listed = true;
    // Also tell a consumer about an object that is absent (a list with no items raises no event).
    this.onChange(this.current());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer.stop();
  }
}
