/** One result of a Velero rule: a denial (the apply fails) or a warning (shown to the client). */
export interface Finding {
  severity: "deny" | "warn";
  /** The field it is about, as a path (spec.objectStorage.bucket). */
  field: string;
  message: string;
  /** A policy refusal (403) rather than an invalid object (422). */
  refusal?: boolean;
}

export const deny = (field: string, message: string): Finding => ({ severity: "deny", field, message });
export const refuse = (field: string, message: string): Finding => ({ severity: "deny", field, message, refusal: true });
export const warn = (field: string, message: string): Finding => ({ severity: "warn", field, message });

export const describe = (finding: Finding) => `${finding.field}: ${finding.message}`;
