#!/usr/bin/env node
/**
 * Drop-in for local-volume-provider's file-server sidecar: LVP's plugin starts its sidecar as
 * `/local-volume-fileserver` with no arguments and only MOUNT_POINT and VELERO_NAMESPACE set, and
 * expects signed-URL downloads on port 3000. Point that path at this program (or set the plugin's
 * `fileserverImage` to our image, which has it) and the same URLs are served, read-only. Extra
 * arguments are passed on, so `--lvp-listen` and the other storage options can still be set.
 */
import { buildProgram } from "./cli.js";

const lvpDefaults = ["storage", "--lvp-listen", ":3000", "--read-only", "--health-listen", "none"];
await buildProgram().parseAsync([process.argv[0]!, process.argv[1]!, ...lvpDefaults, ...process.argv.slice(2)]);
