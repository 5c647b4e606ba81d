import type { Command } from "commander";
import { generateCertificateFiles } from "../certs/files.js";
import { collect } from "./options.js";


export function registerCerts(program: Command): void {
  const certs = program.command("certs").description("webhook TLS certificates");
  certs
    .command("generate")
    .description("write a CA (kept if already there) and a serving certificate for local use")
    .option("--out <dir>", "folder for ca.crt, ca.key, tls.crt, tls.key", "certs")
    .option("--dns <name>", "DNS name for the certificate; repeatable", collect, [])
    .option("--ip <address>", "IP address for the certificate; repeatable", collect, [])
    .option("--days <n>", "serving certificate validity in days", "365")
    .action((options: { out: string; dns: string[]; ip: string[]; days: string }) => {
      const dnsNames = options.dns.length + options.ip.length === 0 ? ["localhost"] : options.dns;
      const ipAddresses = options.dns.length + options.ip.length === 0 ? ["127.0.0.1"] : options.ip;
      const files = generateCertificateFiles({ dir: options.out, dnsNames, ipAddresses, validityDays: Number(options.days) });
      process.stdout.write(
        `${files.reusedCa ? "kept CA" : "wrote CA"} ${files.caCert}\nwrote serving certificate ${files.cert} (key ${files.key}, mode 0600) for ${[...dnsNames, ...ipAddresses].join(", ")}\n`,
      );
    });
}
