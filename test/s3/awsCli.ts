// The AWS CLI as the S3 tests run it: a private config (path addressing) and the test credentials in `dir`, the
// machine's CA and credential settings removed, the server's CA given with --ca-bundle over HTTPS.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { awsTool } from "./clientTools.js";
import { CREDENTIALS_FILE_TEXT, type S3TestServer } from "./harness.js";
import { runToolOk, type RunOptions, type ToolRun } from "./runTool.js";

export interface AwsCliOptions {
  /** s3.max_concurrent_requests in the config (the CLI's default is 10). */
  maxConcurrentRequests?: number;
  /** Put before every command's own arguments (e.g. --debug). */
  globalArgs?: string[];
  timeoutMs?: number;
}

export function awsCli(dir: string, signal: AbortSignal, options: AwsCliOptions = {}): (s3: S3TestServer, args: string[]) => Promise<ToolRun> {
  const concurrency = options.maxConcurrentRequests ? `    max_concurrent_requests = ${options.maxConcurrentRequests}\n` : "";
  writeFileSync(join(dir, "config"), `[default]\ns3 =\n    addressing_style = path\n${concurrency}`);
  writeFileSync(join(dir, "credentials"), CREDENTIALS_FILE_TEXT);
  const env: RunOptions["env"] = {
    HOME: dir,
    AWS_CONFIG_FILE: join(dir, "config"),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, "credentials"),
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: undefined,
    AWS_SECRET_ACCESS_KEY: undefined,
    AWS_CA_BUNDLE: undefined,
    REQUESTS_CA_BUNDLE: undefined,
    SSL_CERT_FILE: undefined,
  };
  const tls = (s3: S3TestServer) => (s3.ca ? ["--ca-bundle", join(s3.work, "ca.pem")] : []);
  return (s3, args) => runToolOk(awsTool(), ["--endpoint-url", s3.url, ...tls(s3), ...(options.globalArgs ?? []), ...args], { env, signal, timeoutMs: options.timeoutMs ?? 100_000 });
}
