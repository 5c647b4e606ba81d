/** The part of a Mutating/ValidatingWebhookConfiguration that caBundle upkeep reads. */
export interface WebhookConfigurationView {
  metadata?: { name?: string };
  webhooks?: Array<{ name: string; clientConfig?: { caBundle?: string } }>;
}

export interface JsonPatchOp {
  op: "test" | "add";
  path: string;
  value: unknown;
}

/**
 * The JSON Patch that puts `bundlePem` into every webhook of the configuration, or undefined when
 * all of them already carry exactly those bytes. Each change is guarded by a `test` of the
 * webhook's name at that index, so a concurrent edit of the list fails the patch instead of
 * writing into the wrong entry.
 */
export function caBundlePatch(configuration: WebhookConfigurationView, bundlePem: string): JsonPatchOp[] | undefined {
  const wanted = Buffer.from(bundlePem).toString("base64");
  const ops = (configuration.webhooks ?? []).flatMap((webhook, index): JsonPatchOp[] =>
    webhook.clientConfig?.caBundle === wanted
      ? []
      : [
          { op: "test", path: `/webhooks/${index}/name`, value: webhook.name },
          { op: "add", path: `/webhooks/${index}/clientConfig/caBundle`, value: wanted },
        ],
  );
  return ops.length > 0 ? ops : undefined;
}

/** True when every configuration exists and each of its webhooks carries exactly `bundlePem`. */
export function bundlePublished(configurations: Array<WebhookConfigurationView | undefined>, bundlePem: string): boolean {
  return configurations.every((configuration) => configuration !== undefined && caBundlePatch(configuration, bundlePem) === undefined);
}
